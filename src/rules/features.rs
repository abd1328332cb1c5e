//! The features a rule condition can read: the event's fields, the customer's features and the
//! signal's facts, each with a name, a type and a way to read it.
//!
//! Names are resolved to [`FeatureId`]s once, when a rule is loaded (so `rules check` catches an
//! unknown feature or a type mismatch); evaluation then reads by id, without string lookups.

use std::cell::OnceCell;

use super::expr::{FeatureId, Features, Schema, Value};
use crate::detect::{DetectorKind, Signal};
use crate::event::{Event, EventBody};
use crate::state::{CustomerState, SpendStats};
use crate::time::{Timestamp, DAY, HOUR};
use crate::vocab::Type;

/// Every event and customer feature (the index into [`FEATURES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum F {
    EventType,
    EventAmount,
    EventAmountEur,
    EventCurrency,
    EventChannel,
    EventApproved,
    EventCountry,
    EventCity,
    EventMcc,
    EventMerchant,
    EventOutgoing,
    EventOwnAccount,
    EventSuccess,
    EventKnownDevice,
    EventResolved,
    EventReason,
    EventCategory,
    EventSeverity,
    EventProduct,
    EventAction,
    EventNewDevice,
    EventNewPayee,
    EventIncomeShare,
    EventContactChanged,
    CustomerHasProfile,
    CustomerSegment,
    CustomerLanguage,
    CustomerHomeCountry,
    CustomerEmailConsent,
    CustomerTrustedCountry,
    CustomerPayments,
    CustomerMedianAmountEur,
    CustomerP90AmountEur,
    CustomerTypicalWeekly,
    CustomerRecentWeekly,
    CustomerDaysSinceActivity,
    CustomerComplaints30d,
    CustomerFailedLogins1h,
    CustomerCards,
    CustomerLastIncomeEur,
}

/// Event and customer features: variant, name, type, one line of documentation.
pub const FEATURES: &[(F, &str, Type, &str)] = &[
    (F::EventType, "event.type", Type::Str, "the event's type, e.g. `card_transaction`"),
    (
        F::EventAmount,
        "event.amount",
        Type::Num,
        "amount in the event's currency (card transactions, transfers)",
    ),
    (F::EventAmountEur, "event.amount_eur", Type::Num, "amount converted to euros (approximate rates)"),
    (F::EventCurrency, "event.currency", Type::Str, "ISO 4217 currency"),
    (F::EventChannel, "event.channel", Type::Str, "card channel, login channel or contact channel"),
    (F::EventApproved, "event.approved", Type::Bool, "card transaction approved"),
    (F::EventCountry, "event.country", Type::Str, "merchant country, or the login's geo country"),
    (F::EventCity, "event.city", Type::Str, "merchant city, or the login's geo city"),
    (F::EventMcc, "event.mcc", Type::Str, "merchant category code"),
    (F::EventMerchant, "event.merchant", Type::Str, "merchant name"),
    (F::EventOutgoing, "event.outgoing", Type::Bool, "transfer direction is out"),
    (
        F::EventOwnAccount,
        "event.own_account",
        Type::Bool,
        "transfer to or from the customer's own account elsewhere",
    ),
    (F::EventSuccess, "event.success", Type::Bool, "login succeeded"),
    (
        F::EventKnownDevice,
        "event.known_device",
        Type::Bool,
        "login device seen before or confirmed by the customer",
    ),
    (F::EventResolved, "event.resolved", Type::Bool, "support contact resolved"),
    (F::EventReason, "event.reason", Type::Str, "support contact reason"),
    (F::EventCategory, "event.category", Type::Str, "complaint category"),
    (F::EventSeverity, "event.severity", Type::Str, "complaint severity: low, medium, high"),
    (F::EventProduct, "event.product", Type::Str, "product changed"),
    (F::EventAction, "event.action", Type::Str, "product action: open, close, downgrade, upgrade"),
    (
        F::EventNewDevice,
        "event.new_device",
        Type::Bool,
        "a successful login from a device never seen, for a customer with a known device (unknown for \
         a customer's first device)",
    ),
    (
        F::EventNewPayee,
        "event.new_payee",
        Type::Bool,
        "money out (not to the customer's own account) to a bank this customer never paid nor was \
         paid by, among the payees and income it remembers",
    ),
    (
        F::EventIncomeShare,
        "event.income_share",
        Type::Num,
        "an outgoing amount as a share of the customer's last income (unknown without income in \
         the last 45 days)",
    ),
    (
        F::EventContactChanged,
        "event.contact_changed",
        Type::Bool,
        "a profile whose e-mail address or phone number differs from the one held",
    ),
    (F::CustomerHasProfile, "customer.has_profile", Type::Bool, "the customer's profile has arrived"),
    (F::CustomerSegment, "customer.segment", Type::Str, "mass, affluent, private or business"),
    (F::CustomerLanguage, "customer.language", Type::Str, "preferred language (ISO 639-1)"),
    (F::CustomerHomeCountry, "customer.home_country", Type::Str, "home country from the profile"),
    (F::CustomerEmailConsent, "customer.email_consent", Type::Bool, "the customer agreed to e-mail"),
    (
        F::CustomerTrustedCountry,
        "customer.trusted_country",
        Type::Bool,
        "the event's country is home, confirmed, or on a travel notice",
    ),
    (F::CustomerPayments, "customer.payments", Type::Num, "approved card payments seen"),
    (
        F::CustomerMedianAmountEur,
        "customer.median_amount_eur",
        Type::Num,
        "median of recent approved card payments, euros",
    ),
    (
        F::CustomerP90AmountEur,
        "customer.p90_amount_eur",
        Type::Num,
        "90th percentile of recent approved card payments, euros",
    ),
    (
        F::CustomerTypicalWeekly,
        "customer.typical_weekly",
        Type::Num,
        "typical events per week (weeks 3–12 back)",
    ),
    (F::CustomerRecentWeekly, "customer.recent_weekly", Type::Num, "events per week over the last two weeks"),
    (
        F::CustomerDaysSinceActivity,
        "customer.days_since_activity",
        Type::Num,
        "days since the customer's last event",
    ),
    (F::CustomerComplaints30d, "customer.complaints_30d", Type::Num, "complaints in the last 30 days"),
    (F::CustomerFailedLogins1h, "customer.failed_logins_1h", Type::Num, "failed logins in the last hour"),
    (F::CustomerCards, "customer.cards", Type::Num, "cards seen"),
    (
        F::CustomerLastIncomeEur,
        "customer.last_income_eur",
        Type::Num,
        "the last income received (a payer's latest payment within 45 days), euros",
    ),
];

/// Ids at and above this are signal facts: `SIGNAL_BASE + index in the detector's facts`.
const SIGNAL_BASE: u16 = 1000;

/// Resolves names for one rule: event and customer features, plus `signal.<fact>` when the rule
/// uses a detector.
pub struct RuleSchema {
    pub detector: Option<DetectorKind>,
}

impl Schema for RuleSchema {
    fn resolve(&self, name: &str) -> Option<(FeatureId, Type)> {
        if let Some(fact) = name.strip_prefix("signal.") {
            let facts = self.detector?.facts();
            let index = facts.iter().position(|(n, _)| *n == fact)?;
            return Some((FeatureId(SIGNAL_BASE + index as u16), facts[index].1));
        }
        FEATURES.iter().position(|(_, n, ..)| *n == name).map(|i| (FeatureId(i as u16), FEATURES[i].2))
    }
}

/// What a condition reads at evaluation time.
pub struct FeatureView<'a> {
    pub event: Option<&'a Event>,
    pub state: &'a CustomerState,
    pub signal: Option<&'a Signal>,
    pub detector: Option<DetectorKind>,
    pub now: Timestamp,
    spend: OnceCell<Option<SpendStats>>,
}

impl<'a> FeatureView<'a> {
    /// A view over an event (or a timer), a customer's state and a signal.
    pub fn new(
        event: Option<&'a Event>,
        state: &'a CustomerState,
        signal: Option<&'a Signal>,
        detector: Option<DetectorKind>,
        now: Timestamp,
    ) -> Self {
        FeatureView { event, state, signal, detector, now, spend: OnceCell::new() }
    }

    fn spend(&self) -> Option<SpendStats> {
        *self.spend.get_or_init(|| self.state.spend.stats())
    }
}

fn s(v: &str) -> Value<'_> {
    Value::Str(v)
}

impl Features for FeatureView<'_> {
    fn get(&self, id: FeatureId) -> Value<'_> {
        use Value::{Bool, Missing, Num};
        if id.0 >= SIGNAL_BASE {
            let (Some(signal), Some(detector)) = (self.signal, self.detector) else { return Missing };
            let Some((name, _)) = detector.facts().get((id.0 - SIGNAL_BASE) as usize) else { return Missing };
            return match signal.fact(name) {
                Some(crate::detect::Fact::Num(v)) => Num(*v),
                Some(crate::detect::Fact::Text(t)) => Value::Str(t),
                None => Missing,
            };
        }
        let Some((feature, ..)) = FEATURES.get(id.0 as usize) else { return Missing };
        let body = self.event.map(|e| &e.body);
        let profile = self.state.profile.as_ref();
        match *feature {
            F::EventType => self.event.map_or(Missing, |e| s(e.kind().as_str())),
            F::EventAmount => match body {
                Some(EventBody::CardTransaction(t)) => Num(t.money.amount),
                Some(EventBody::Transfer(t)) => Num(t.money.amount),
                _ => Missing,
            },
            F::EventAmountEur => match body {
                Some(EventBody::CardTransaction(t)) => t.money.to_eur().map_or(Missing, Num),
                Some(EventBody::Transfer(t)) => t.money.to_eur().map_or(Missing, Num),
                _ => Missing,
            },
            F::EventCurrency => match body {
                Some(EventBody::CardTransaction(t)) => s(t.money.currency.as_str()),
                Some(EventBody::Transfer(t)) => s(t.money.currency.as_str()),
                _ => Missing,
            },
            F::EventChannel => match body {
                Some(EventBody::CardTransaction(t)) => s(t.channel.as_str()),
                Some(EventBody::Login(l)) => s(match l.channel {
                    crate::event::LoginChannel::Mobile => "mobile",
                    crate::event::LoginChannel::Web => "web",
                }),
                Some(EventBody::SupportContact(c)) => s(&c.channel),
                _ => Missing,
            },
            F::EventApproved => match body {
                Some(EventBody::CardTransaction(t)) => Bool(t.approved),
                _ => Missing,
            },
            F::EventCountry => self.event_country().map_or(Missing, |c| s(c.as_str())),
            F::EventCity => match body {
                Some(EventBody::CardTransaction(t)) => s(&t.place.city),
                Some(EventBody::Login(l)) => l.geo.as_ref().map_or(Missing, |g| s(&g.city)),
                _ => Missing,
            },
            F::EventMcc => match body {
                Some(EventBody::CardTransaction(t)) => t.mcc.as_deref().map_or(Missing, s),
                _ => Missing,
            },
            F::EventMerchant => match body {
                Some(EventBody::CardTransaction(t)) => s(&t.merchant_name),
                _ => Missing,
            },
            F::EventOutgoing => match body {
                Some(EventBody::Transfer(t)) => Bool(t.outgoing),
                _ => Missing,
            },
            F::EventOwnAccount => match body {
                Some(EventBody::Transfer(t)) => Bool(t.own_account),
                _ => Missing,
            },
            F::EventSuccess => match body {
                Some(EventBody::Login(l)) => Bool(l.success),
                _ => Missing,
            },
            F::EventKnownDevice => match body {
                Some(EventBody::Login(l)) => Bool(self.state.knows_device(&l.device_id)),
                _ => Missing,
            },
            F::EventResolved => match body {
                Some(EventBody::SupportContact(c)) => Bool(c.resolved),
                _ => Missing,
            },
            F::EventReason => match body {
                Some(EventBody::SupportContact(c)) => s(&c.reason),
                _ => Missing,
            },
            F::EventCategory => match body {
                Some(EventBody::Complaint(c)) => s(&c.category),
                _ => Missing,
            },
            F::EventSeverity => match body {
                Some(EventBody::Complaint(c)) => s(match c.severity {
                    crate::event::ComplaintSeverity::Low => "low",
                    crate::event::ComplaintSeverity::Medium => "medium",
                    crate::event::ComplaintSeverity::High => "high",
                }),
                _ => Missing,
            },
            F::EventProduct => match body {
                Some(EventBody::ProductChange(p)) => s(&p.product),
                _ => Missing,
            },
            F::EventAction => match body {
                Some(EventBody::ProductChange(p)) => s(match p.action {
                    crate::event::ProductAction::Open => "open",
                    crate::event::ProductAction::Close => "close",
                    crate::event::ProductAction::Downgrade => "downgrade",
                    crate::event::ProductAction::Upgrade => "upgrade",
                }),
                _ => Missing,
            },
            F::EventNewDevice => match body {
                Some(EventBody::Login(l)) if !l.success => Bool(false),
                Some(EventBody::Login(_)) if self.state.logins.devices.is_empty() => Missing,
                Some(EventBody::Login(l)) => Bool(!self.state.knows_device(&l.device_id)),
                _ => Missing,
            },
            F::EventNewPayee => match body {
                Some(EventBody::Transfer(t)) if t.outgoing && !t.own_account => {
                    t.counterparty_bank.as_deref().map_or(Missing, |bank| Bool(!self.state.knows_party(bank)))
                }
                _ => Missing,
            },
            F::EventIncomeShare => match body {
                Some(EventBody::Transfer(t)) if t.outgoing => {
                    match (t.money.to_eur(), self.state.last_income_eur(self.now)) {
                        (Some(eur), Some(income)) if income > 0.0 => Num(eur / income),
                        _ => Missing,
                    }
                }
                _ => Missing,
            },
            F::EventContactChanged => match (body, profile) {
                (Some(EventBody::CustomerProfile(new)), Some(held)) => {
                    let held = held.profile();
                    let differs = |a: &Option<String>, b: &Option<String>| {
                        a.as_deref().is_some_and(|a| b.as_deref() != Some(a))
                    };
                    Bool(differs(&new.email, &held.email) || differs(&new.phone, &held.phone))
                }
                _ => Missing,
            },
            F::CustomerHasProfile => Bool(profile.is_some()),
            F::CustomerSegment => profile.map_or(Missing, |p| s(p.segment().as_str())),
            F::CustomerLanguage => profile.map_or(Missing, |p| s(p.language())),
            F::CustomerHomeCountry => {
                profile.and_then(|p| p.home_country()).map_or(Missing, |country| s(country.as_str()))
            }
            F::CustomerEmailConsent => profile.map_or(Missing, |p| Bool(p.email_consent())),
            F::CustomerTrustedCountry => {
                self.event_country().map_or(Missing, |c| Bool(self.state.trusts_country(*c, self.now)))
            }
            F::CustomerPayments => Num(f64::from(self.state.spend.count)),
            F::CustomerMedianAmountEur => self.spend().map_or(Missing, |st| Num(st.median)),
            F::CustomerP90AmountEur => self.spend().map_or(Missing, |st| Num(st.p90)),
            F::CustomerTypicalWeekly => self.state.activity.typical_weekly(self.now, 4).map_or(Missing, Num),
            F::CustomerRecentWeekly => Num(self.state.activity.recent_weekly(self.now)),
            F::CustomerDaysSinceActivity => self
                .state
                .activity
                .last
                .map_or(Missing, |l| Num(self.now.millis_since(l).max(0) as f64 / DAY as f64)),
            F::CustomerComplaints30d => Num(self
                .state
                .complaints
                .iter()
                .filter(|c| c.at <= self.now && self.now.millis_since(c.at) <= 30 * DAY)
                .count() as f64),
            F::CustomerFailedLogins1h => Num(f64::from(self.state.failures_before(self.now, HOUR))),
            F::CustomerCards => Num(self.state.cards.len() as f64),
            F::CustomerLastIncomeEur => self.state.last_income_eur(self.now).map_or(Missing, Num),
        }
    }
}

impl FeatureView<'_> {
    fn event_country(&self) -> Option<&crate::geo::Country> {
        match self.event.map(|e| &e.body) {
            Some(EventBody::CardTransaction(t)) => Some(&t.place.country),
            Some(EventBody::Login(l)) => l.geo.as_ref().map(|g| &g.country),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_feature_name_is_unique_and_resolves() {
        let schema = RuleSchema { detector: None };
        for (i, (feature, name, ty, _)) in FEATURES.iter().enumerate() {
            assert_eq!(*feature as usize, i, "{name}: table order must follow the enum");
            assert_eq!(schema.resolve(name), Some((FeatureId(i as u16), *ty)), "{name}");
        }
        assert_eq!(schema.resolve("signal.speed_kmh"), None, "no detector, no signal facts");
        let travel = RuleSchema { detector: Some(DetectorKind::ImpossibleTravel) };
        assert_eq!(travel.resolve("signal.speed_kmh").map(|(_, t)| t), Some(Type::Num));
        assert_eq!(travel.resolve("event.nope"), None);
    }

    #[test]
    fn every_feature_is_readable() {
        // A feature listed but not matched in `get` would silently read as Missing forever.
        let state = CustomerState::default();
        let view = FeatureView::new(None, &state, None, None, Timestamp(0));
        let always_known = ["customer.has_profile", "customer.payments", "customer.recent_weekly"];
        for (i, (_, name, ..)) in FEATURES.iter().enumerate() {
            let v = view.get(FeatureId(i as u16));
            if always_known.contains(name) {
                assert_ne!(v, Value::Missing, "{name}");
            }
        }
    }
}
