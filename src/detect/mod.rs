//! Built-in detectors: pure functions of (event, customer state, parameters) → signal.
//!
//! One file per detector. A detector never does I/O, never reads a clock and never mutates
//! state; it says *what* it saw as a [`Signal`] with named facts (numbers and words for the
//! explanation and for rule conditions) and the evidence (the events that matter). Whether a
//! signal pages anyone is decided by the rule that uses the detector (see `rules`).
//!
//! To add a detector: write `detect/<name>.rs` with a `Params` struct (serde, defaults, no
//! unknown fields), a `FACTS` list and a `detect` function; add it to [`DetectorKind`] and
//! [`DetectorParams`] below.

pub mod absence;
pub mod account_takeover;
pub mod amount_anomaly;
pub mod card_testing;
pub mod churn_risk;
pub mod complaint_escalation;
pub mod complaint_recurrence;
pub mod dormant_drain;
pub mod impossible_travel;
pub mod income_stopped;
pub mod repeat_contact;
pub mod sequence;

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::event::{Event, EventBody, EventKind};
use crate::geo::Country;
use crate::money::Money;
use crate::state::{CustomerState, PhysicalUse};
use crate::time::Timestamp;
use crate::vocab::Type;

/// A named fact of a signal: what templates print and conditions test.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    Num(f64),
    Text(String),
}

impl Fact {
    /// How a fact reads in an explanation: whole numbers without decimals, small numbers with one.
    pub fn render(&self, out: &mut String) {
        match self {
            Fact::Text(t) => out.push_str(t),
            Fact::Num(v) if v.fract() == 0.0 || v.abs() >= 100.0 => {
                let _ = write!(out, "{v:.0}");
            }
            Fact::Num(v) => {
                let _ = write!(out, "{v:.1}");
            }
        }
    }
}

/// One event that matters to a signal, as the agent sees it in the task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub at: Timestamp,
    #[serde(rename = "type")]
    pub kind: EventKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// One line a human reads: "contactless 12.50 EUR at Cafe Lumiere, Paris FR".
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub money: Option<Money>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<Country>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    /// What was seen, without words: the task puts `summary` into its own language from it
    /// (`phrases::evidence`). Not part of the task's JSON, and not kept once the task has its
    /// summary.
    #[serde(skip)]
    pub body: Option<Box<EventBody>>,
}

impl Evidence {
    /// The evidence an event gives.
    pub fn from_event(event: &Event) -> Evidence {
        let mut e = Evidence {
            at: event.ts,
            kind: event.kind(),
            event_id: Some(event.event_id.clone()),
            summary: String::new(),
            money: None,
            country: None,
            city: None,
            card_id: None,
            lat: None,
            lon: None,
            body: Some(Box::new(event.body.clone())),
        };
        match &event.body {
            EventBody::CustomerProfile(_) => e.summary = "profile updated".into(),
            EventBody::CardTransaction(t) => {
                let status = if t.approved { "" } else { " (declined)" };
                e.summary = format!(
                    "{} {} at {}, {} {}{status}",
                    t.channel.as_str(),
                    t.money,
                    t.merchant_name,
                    t.place.city,
                    t.place.country
                );
                e.money = Some(t.money);
                e.country = Some(t.place.country);
                e.city = Some(t.place.city.clone());
                e.card_id = Some(t.card_id.clone());
                e.lat = t.place.point.map(|p| p.lat);
                e.lon = t.place.point.map(|p| p.lon);
            }
            EventBody::Login(l) => {
                let outcome = if l.success { "successful" } else { "failed" };
                let known =
                    l.geo.as_ref().map(|g| format!(" from {}, {}", g.city, g.country)).unwrap_or_default();
                e.summary =
                    format!("{outcome} {:?} login, device {}{known}", l.channel, l.device_id).to_lowercase();
                e.country = l.geo.as_ref().map(|g| g.country);
                e.city = l.geo.as_ref().map(|g| g.city.clone());
            }
            EventBody::Transfer(t) => {
                let dir = if t.outgoing { "outgoing" } else { "incoming" };
                let own = if t.own_account { " (own account)" } else { "" };
                let bank = t.counterparty_bank.as_deref().map(|b| format!(" with {b}")).unwrap_or_default();
                e.summary = format!("{dir} transfer {}{bank}{own}", t.money);
                e.money = Some(t.money);
            }
            EventBody::SupportContact(c) => {
                let state = if c.resolved { "resolved" } else { "unresolved" };
                e.summary = format!("{} contact about {} ({state})", c.channel, c.reason_text);
            }
            EventBody::Complaint(c) => {
                e.summary = format!("{:?} complaint: {}", c.severity, c.category_text).to_lowercase();
            }
            EventBody::ProductChange(p) => {
                e.summary = format!("{:?} {}", p.action, p.product).to_lowercase();
            }
            EventBody::TravelNotice(n) => {
                let cs: Vec<&str> = n.countries.iter().map(Country::as_str).collect();
                e.summary = format!("travel notice: {} from {} to {}", cs.join(", "), n.from, n.to);
            }
        }
        e
    }

    /// The evidence a remembered physical card use gives.
    pub fn from_use(card_id: &str, u: &PhysicalUse) -> Evidence {
        Evidence {
            at: u.at,
            kind: EventKind::CardTransaction,
            event_id: None,
            summary: format!(
                "{} {} at {}, {} {}",
                u.channel.as_str(),
                u.money,
                u.merchant,
                u.city,
                u.country
            ),
            money: Some(u.money),
            country: Some(u.country),
            city: Some(u.city.to_string()),
            card_id: Some(card_id.to_string()),
            // Stored as f32: round away the float noise (1e-4 degrees is about 10 m).
            lat: Some((f64::from(u.lat) * 1e4).round() / 1e4),
            lon: Some((f64::from(u.lon) * 1e4).round() / 1e4),
            body: Some(Box::new(EventBody::CardTransaction(crate::event::CardTransaction {
                card_id: card_id.to_string(),
                money: u.money,
                channel: u.channel,
                approved: true,
                merchant_name: u.merchant.to_string(),
                mcc: None,
                place: crate::event::Place {
                    country: u.country,
                    city: u.city.to_string(),
                    point: Some(crate::geo::Point { lat: f64::from(u.lat), lon: f64::from(u.lon) }),
                },
            }))),
        }
    }
}

/// What a detector saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    /// Event time of the observation (the event's, or the timer's for timer-driven detectors).
    pub at: Timestamp,
    pub facts: Vec<(&'static str, Fact)>,
    /// The events that matter, oldest first.
    pub evidence: Vec<Evidence>,
    /// Euros the customer or the bank could lose (0 when not about money).
    pub money_at_risk_eur: f64,
}

impl Signal {
    /// A fact by name.
    pub fn fact(&self, name: &str) -> Option<&Fact> {
        self.facts.iter().find(|(n, _)| *n == name).map(|(_, f)| f)
    }

    /// A numeric fact by name.
    pub fn num(&self, name: &str) -> Option<f64> {
        match self.fact(name) {
            Some(Fact::Num(v)) => Some(*v),
            _ => None,
        }
    }
}

/// What a detector looks at: the event (none when an event-time timer fired), the customer's
/// state and the current event time.
pub struct DetectInput<'a> {
    pub event: Option<&'a Event>,
    pub state: &'a CustomerState,
    pub now: Timestamp,
}

/// The built-in detectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectorKind {
    ImpossibleTravel,
    AmountAnomaly,
    CardTesting,
    AccountTakeover,
    ChurnRisk,
    RepeatContact,
    ComplaintEscalation,
    // New kinds go last: tasks in checkpoints name a kind by its position.
    IncomeStopped,
    ComplaintRecurrence,
    DormantDrain,
}

/// When a detector reads the customer's state relative to applying the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Compares the event with the past (the state does not include the event yet).
    BeforeApply,
    /// Counts the event with the past (the state includes it).
    AfterApply,
}

impl DetectorKind {
    /// Every detector.
    pub const ALL: [DetectorKind; 10] = [
        DetectorKind::ImpossibleTravel,
        DetectorKind::AmountAnomaly,
        DetectorKind::CardTesting,
        DetectorKind::AccountTakeover,
        DetectorKind::ChurnRisk,
        DetectorKind::RepeatContact,
        DetectorKind::ComplaintEscalation,
        DetectorKind::IncomeStopped,
        DetectorKind::ComplaintRecurrence,
        DetectorKind::DormantDrain,
    ];

    /// Name in rule files.
    pub fn name(self) -> &'static str {
        match self {
            DetectorKind::ImpossibleTravel => "impossible_travel",
            DetectorKind::AmountAnomaly => "amount_anomaly",
            DetectorKind::CardTesting => "card_testing",
            DetectorKind::AccountTakeover => "account_takeover",
            DetectorKind::ChurnRisk => "churn_risk",
            DetectorKind::RepeatContact => "repeat_contact",
            DetectorKind::ComplaintEscalation => "complaint_escalation",
            DetectorKind::IncomeStopped => "income_stopped",
            DetectorKind::ComplaintRecurrence => "complaint_recurrence",
            DetectorKind::DormantDrain => "dormant_drain",
        }
    }

    /// Parses a name from a rule file.
    pub fn parse(name: &str) -> Option<DetectorKind> {
        DetectorKind::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Event types that can make this detector fire.
    pub fn triggers(self) -> &'static [EventKind] {
        use EventKind::*;
        match self {
            DetectorKind::ImpossibleTravel | DetectorKind::AmountAnomaly | DetectorKind::CardTesting => {
                &[CardTransaction]
            }
            DetectorKind::AccountTakeover => &[CardTransaction, Transfer, Login],
            // Activity itself is never a sign of leaving; silence is found by timers.
            DetectorKind::ChurnRisk => &[Transfer, ProductChange, Complaint],
            DetectorKind::RepeatContact => &[SupportContact],
            DetectorKind::ComplaintEscalation | DetectorKind::ComplaintRecurrence => &[Complaint],
            // Only by timer: an income that does not come has no event.
            DetectorKind::IncomeStopped => &[],
            DetectorKind::DormantDrain => &[Transfer],
        }
    }

    /// True if its signals carry the [`EVENT_FACTS`] of the event that made it fire (so a
    /// rule's templates may use `{city}`, `{merchant}`, …): the rule checker refuses them for
    /// the others, whose signals are not about one event.
    pub fn carries_event_facts(self) -> bool {
        matches!(
            self,
            DetectorKind::AmountAnomaly | DetectorKind::CardTesting | DetectorKind::AccountTakeover
        )
    }

    /// True if the detector also runs on event-time timers (when nothing happens).
    pub fn uses_timers(self) -> bool {
        matches!(self, DetectorKind::ChurnRisk | DetectorKind::IncomeStopped)
    }

    /// Whether the detector reads the state before or after the event is applied.
    pub fn phase(self) -> Phase {
        match self {
            DetectorKind::ImpossibleTravel | DetectorKind::AmountAnomaly | DetectorKind::DormantDrain => {
                Phase::BeforeApply
            }
            _ => Phase::AfterApply,
        }
    }

    /// The facts its signals carry, with their types.
    pub fn facts(self) -> &'static [(&'static str, Type)] {
        match self {
            DetectorKind::ImpossibleTravel => impossible_travel::FACTS,
            DetectorKind::AmountAnomaly => amount_anomaly::FACTS,
            DetectorKind::CardTesting => card_testing::FACTS,
            DetectorKind::AccountTakeover => account_takeover::FACTS,
            DetectorKind::ChurnRisk => churn_risk::FACTS,
            DetectorKind::RepeatContact => repeat_contact::FACTS,
            DetectorKind::ComplaintEscalation => complaint_escalation::FACTS,
            DetectorKind::IncomeStopped => income_stopped::FACTS,
            DetectorKind::ComplaintRecurrence => complaint_recurrence::FACTS,
            DetectorKind::DormantDrain => dormant_drain::FACTS,
        }
    }
}

/// A detector with its parameters from a rule file.
#[derive(Debug, Clone, PartialEq)]
pub enum DetectorParams {
    ImpossibleTravel(impossible_travel::Params),
    AmountAnomaly(amount_anomaly::Params),
    CardTesting(card_testing::Params),
    AccountTakeover(account_takeover::Params),
    ChurnRisk(churn_risk::Params),
    RepeatContact(repeat_contact::Params),
    ComplaintEscalation(complaint_escalation::Params),
    IncomeStopped(income_stopped::Params),
    ComplaintRecurrence(complaint_recurrence::Params),
    DormantDrain(dormant_drain::Params),
}

impl DetectorParams {
    /// Reads a detector's parameters (unknown keys are errors; missing keys take defaults).
    pub fn from_toml(kind: DetectorKind, table: toml::Table) -> Result<DetectorParams, String> {
        fn read<T: serde::de::DeserializeOwned>(table: toml::Table) -> Result<T, String> {
            T::deserialize(table).map_err(|e| e.message().to_string())
        }
        let params = match kind {
            DetectorKind::ImpossibleTravel => DetectorParams::ImpossibleTravel(read(table)?),
            DetectorKind::AmountAnomaly => DetectorParams::AmountAnomaly(read(table)?),
            DetectorKind::CardTesting => DetectorParams::CardTesting(read(table)?),
            DetectorKind::AccountTakeover => DetectorParams::AccountTakeover(read(table)?),
            DetectorKind::ChurnRisk => DetectorParams::ChurnRisk(read(table)?),
            DetectorKind::RepeatContact => DetectorParams::RepeatContact(read(table)?),
            DetectorKind::ComplaintEscalation => DetectorParams::ComplaintEscalation(read(table)?),
            DetectorKind::IncomeStopped => DetectorParams::IncomeStopped(read(table)?),
            DetectorKind::ComplaintRecurrence => DetectorParams::ComplaintRecurrence(read(table)?),
            DetectorKind::DormantDrain => DetectorParams::DormantDrain(read(table)?),
        };
        if let DetectorParams::CardTesting(p) = &params {
            if !(1..=crate::state::CNP_ATTEMPTS).contains(&p.min_attempts) {
                return Err(format!(
                    "min_attempts = {} is not within 1..={} (attempts remembered per card)",
                    p.min_attempts,
                    crate::state::CNP_ATTEMPTS
                ));
            }
        }
        Ok(params)
    }

    /// Which detector.
    pub fn kind(&self) -> DetectorKind {
        match self {
            DetectorParams::ImpossibleTravel(_) => DetectorKind::ImpossibleTravel,
            DetectorParams::AmountAnomaly(_) => DetectorKind::AmountAnomaly,
            DetectorParams::CardTesting(_) => DetectorKind::CardTesting,
            DetectorParams::AccountTakeover(_) => DetectorKind::AccountTakeover,
            DetectorParams::ChurnRisk(_) => DetectorKind::ChurnRisk,
            DetectorParams::RepeatContact(_) => DetectorKind::RepeatContact,
            DetectorParams::ComplaintEscalation(_) => DetectorKind::ComplaintEscalation,
            DetectorParams::IncomeStopped(_) => DetectorKind::IncomeStopped,
            DetectorParams::ComplaintRecurrence(_) => DetectorKind::ComplaintRecurrence,
            DetectorParams::DormantDrain(_) => DetectorKind::DormantDrain,
        }
    }

    /// Runs the detector.
    pub fn detect(&self, input: &DetectInput<'_>) -> Option<Signal> {
        match self {
            DetectorParams::ImpossibleTravel(p) => impossible_travel::detect(input, p),
            DetectorParams::AmountAnomaly(p) => amount_anomaly::detect(input, p),
            DetectorParams::CardTesting(p) => card_testing::detect(input, p),
            DetectorParams::AccountTakeover(p) => account_takeover::detect(input, p),
            DetectorParams::ChurnRisk(p) => churn_risk::detect(input, p),
            DetectorParams::RepeatContact(p) => repeat_contact::detect(input, p),
            DetectorParams::ComplaintEscalation(p) => complaint_escalation::detect(input, p),
            DetectorParams::IncomeStopped(p) => income_stopped::detect(input, p),
            DetectorParams::ComplaintRecurrence(p) => complaint_recurrence::detect(input, p),
            DetectorParams::DormantDrain(p) => dormant_drain::detect(input, p),
        }
    }

    /// For a detector that runs on timers: when the customer must next be judged after `now`
    /// (`None`: no timer needed). Other detectors: `None`.
    pub fn next_timer(&self, state: &CustomerState, now: Timestamp) -> Option<Timestamp> {
        match self {
            DetectorParams::ChurnRisk(p) => {
                let silence = churn_risk::silence_deadline(state, now, p).filter(|&d| d > now);
                silence.into_iter().chain(churn_risk::next_recheck(state, now, p)).min()
            }
            DetectorParams::IncomeStopped(p) => income_stopped::next_timer(state, now, p),
            _ => None,
        }
    }

    /// The event types whose arrival may give a customer a timer they did not need before (a
    /// sign of leaving, an income learned). Otherwise this detector's need for a timer changes
    /// only with the week of event time (the weekly activity baseline it reads counts whole
    /// past weeks), which lets the engine skip asking again within the week.
    pub fn timer_inputs(&self) -> &'static [EventKind] {
        match self {
            DetectorParams::ChurnRisk(_) => {
                &[EventKind::Transfer, EventKind::Complaint, EventKind::ProductChange]
            }
            DetectorParams::IncomeStopped(_) => &[EventKind::Transfer],
            _ => &[],
        }
    }

    /// What an event may bring *earlier* than a customer's pending timer (which re-computes
    /// everything when it fires): churn's re-evaluation once a sign of leaving appears (its
    /// silence deadline only moves later with activity), an income's overdue point.
    pub fn earlier_timer(&self, state: &CustomerState, now: Timestamp) -> Option<Timestamp> {
        match self {
            DetectorParams::ChurnRisk(p) => churn_risk::next_recheck(state, now, p),
            DetectorParams::IncomeStopped(p) => income_stopped::next_timer(state, now, p),
            _ => None,
        }
    }

    /// For a detector that runs on timers: whether a timer at `at` has anything to judge (a
    /// shortcut: the detector would find nothing otherwise).
    pub fn timer_due(&self, state: &CustomerState, at: Timestamp) -> bool {
        match self {
            DetectorParams::ChurnRisk(p) => {
                churn_risk::silence_deadline(state, at, p).is_some_and(|d| d <= at)
                    || churn_risk::has_recent_sign(state, at, p)
            }
            DetectorParams::IncomeStopped(p) => income_stopped::is_due(state, at, p),
            _ => false,
        }
    }
}

/// The busiest window of length `window` that contains `x`: (items in it, its end). `times`
/// must include `x`. Considering every window around `x` (not only the one ending at `x`) makes
/// burst detectors independent of arrival order: whichever event of a burst arrives last still
/// sees the whole burst.
pub fn busiest_window_containing(times: &[Timestamp], x: Timestamp, window: i64) -> (usize, Timestamp) {
    times
        .iter()
        .filter(|&&end| end >= x && end.millis_since(x) <= window)
        .map(|&end| (times.iter().filter(|&&t| t <= end && end.millis_since(t) <= window).count(), end))
        .max_by_key(|&(count, end)| (count, std::cmp::Reverse(end)))
        .unwrap_or((0, x))
}

/// A card id as shown in explanations: its last four characters.
pub fn masked_card(card_id: &str) -> String {
    let tail: String = card_id.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    format!("…{tail}")
}

/// Facts every event-triggered signal may carry (for templates of rules with or without a
/// detector): filled from the event where it has them.
pub const EVENT_FACTS: &[(&str, Type)] = &[
    ("event_type", Type::Str),
    ("amount", Type::Str),
    ("merchant", Type::Str),
    ("city", Type::Str),
    ("country", Type::Str),
    ("channel", Type::Str),
    ("category", Type::Str),
];

/// The [`EVENT_FACTS`] of an event.
pub fn event_facts(event: &Event, facts: &mut Vec<(&'static str, Fact)>) {
    facts.push(("event_type", Fact::Text(event.kind().as_str().to_string())));
    match &event.body {
        EventBody::CardTransaction(t) => {
            facts.push(("amount", Fact::Text(t.money.to_string())));
            facts.push(("merchant", Fact::Text(t.merchant_name.clone())));
            facts.push(("city", Fact::Text(t.place.city.clone())));
            facts.push(("country", Fact::Text(t.place.country.to_string())));
            facts.push(("channel", Fact::Text(t.channel.as_str().to_string())));
        }
        EventBody::Transfer(t) => facts.push(("amount", Fact::Text(t.money.to_string()))),
        EventBody::Login(l) => {
            if let Some(g) = &l.geo {
                facts.push(("city", Fact::Text(g.city.clone())));
                facts.push(("country", Fact::Text(g.country.to_string())));
            }
        }
        EventBody::Complaint(c) => facts.push(("category", Fact::Text(c.category.clone()))),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busiest_window_sees_the_whole_burst_from_any_member() {
        let t = |m: i64| Timestamp(m * 60_000);
        let times = [t(0), t(1), t(2), t(3), t(4), t(30)];
        for x in &times[..5] {
            assert_eq!(busiest_window_containing(&times, *x, 10 * 60_000).0, 5, "from {x:?}");
        }
        assert_eq!(busiest_window_containing(&times, t(30), 10 * 60_000).0, 1);
    }
}

#[cfg(test)]
pub(crate) mod testkit {
    //! Builders for detector tests.
    use crate::event::{decode, Event};
    use crate::state::{CustomerState, Interner};

    pub fn event(json: &str) -> Event {
        decode(json.as_bytes()).unwrap_or_else(|e| panic!("{e}: {json}"))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn card(
        id: &str,
        ts: &str,
        card: &str,
        channel: &str,
        amount: f64,
        city: &str,
        country: &str,
        lat: f64,
        lon: f64,
    ) -> Event {
        event(&format!(
            r#"{{"event_id":"{id}","type":"card_transaction","customer_id":"c","ts":"{ts}","card_id":"{card}",
            "amount":{amount},"currency":"EUR","channel":"{channel}","status":"approved",
            "merchant":{{"name":"Shop {city}","country":"{country}","city":"{city}","lat":{lat},"lon":{lon}}}}}"#
        ))
    }

    /// Applies events to a fresh state.
    pub fn state_after(events: &[Event]) -> CustomerState {
        let mut s = CustomerState::default();
        let interner = Interner::default();
        for e in events {
            s.apply(e, &interner);
        }
        s
    }
}
