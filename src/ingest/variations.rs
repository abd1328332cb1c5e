//! Populations that vary each principle of section 4's domain care, for property tests and the
//! detection benchmark: a stream that was *not* written to fit the detectors.
//!
//! [`crate::ingest::generator`] plants one hand-written case per scenario; this module draws
//! many customers per principle from a seed, each with its own cadence, amounts, jitter,
//! spellings and spacing, and labels each with what should happen ([`Label`]): the rule that
//! must find them (and from when), or none. Principles covered:
//!
//! - income that stops (weekly, fortnightly, monthly; 2 to 5 payments seen; payday jitter;
//!   payer spelled differently), after which the card goes quiet or money moves to the
//!   customer's own account elsewhere: `income_stopped`;
//! - income that keeps arriving with a raise, or from a new employer (amount and payday
//!   shifted), or steadily: nobody paged;
//! - one problem written many ways (case, separators, stray spaces, camel case, aliases) by
//!   different systems: three or more unresolved contacts are a `repeat_contact`; a complaint
//!   about a category resolved weeks ago is a `complaint_recurrence`; a resolution in between
//!   means no repeat;
//! - a customer's longer normal: large purchases every ten to twenty days since the stream
//!   began, a bill paid by card each month, cash on payday: never an `amount_anomaly`; a
//!   quiet customer's first-ever large purchase still is;
//! - ordinary customers with random transfers, contacts and spending: nobody paged.
//!
//! Fraud principles ([`Kind::FRAUD`]):
//!
//! - card testing, low and slow (4 to 8 card-not-present attempts, each at another merchant,
//!   4 to 90 minutes apart: never four in ten minutes) or in a burst (20 to 90 seconds apart),
//!   tiny or small amounts, mostly declined, then one large approved online purchase:
//!   `card_tested_then_used`, at the purchase; app subscriptions billed together each month,
//!   all approved: nobody paged;
//! - a password reset spelled as other systems spell it, a first login from a new device and
//!   50–95% of the last income out to a bank never paid, within the hour:
//!   `takeover_after_credential_change`, at the transfer; the same reset and new device, then
//!   the usual rent to the usual landlord: nobody paged;
//! - 30 to 90 days of silence, a new device and 50–100% of all money ever received out to a
//!   bank never paid: `dormant_drain`, at the transfer; silence, then ordinary spending:
//!   nobody paged;
//! - a card used at home, then at an ATM more than 1,500 km away 15 to 50 minutes later, the
//!   ATM's event delivered after 1 to 5 of the customer's later payments at home, hours late but
//!   within [`LATENESS`]: `impossible_travel`, at the ATM;
//! - two unresolved contacts and a complaint sent again by the producer days later, with the
//!   same ids and times: nobody paged.
//!
//! Lines are ordered by delivery time (a late or resent line where the producer sent it), and
//! [`firings`] replays them with an allowed lateness of [`LATENESS`] (six hours).
//!
//! Deterministic: the same [`VariationSpec`] gives the same lines. Pure: no I/O.

use serde::Serialize;

use crate::time::{Timestamp, DAY, HOUR, MINUTE};

/// What to generate.
#[derive(Debug, Clone)]
pub struct VariationSpec {
    pub seed: u64,
    /// Customers per principle (each kind of [`Kind`]).
    pub per_kind: usize,
    /// Ordinary customers (noise, and the clock that moves event time on).
    pub ordinary: usize,
    /// Days the stream covers.
    pub days: i64,
    /// The principles drawn (default: every one, [`Kind::PRINCIPLES`] then [`Kind::FRAUD`]).
    /// The care kinds and the ordinary customers come from the seed's first random stream and
    /// the fraud kinds from a second, so a population of care kinds alone is the same with or
    /// without the fraud kinds beside it.
    pub kinds: Vec<Kind>,
}

impl Default for VariationSpec {
    fn default() -> Self {
        VariationSpec { seed: 1, per_kind: 20, ordinary: 100, days: 150, kinds: Kind::all() }
    }
}

/// The principle a customer varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    IncomeStopsCardQuiet,
    IncomeStopsMoneyMoved,
    IncomeRaise,
    IncomeNewEmployer,
    IncomeSteady,
    ContactsSpelledManyWays,
    ContactsResolvedBetween,
    ComplaintRecurs,
    LargePurchasesRegularly,
    BillByCardMonthly,
    CashOnPayday,
    FirstEverLargePurchase,
    SlowCardTesting,
    BurstCardTesting,
    SubscriptionsBilledTogether,
    TakeoverAfterReset,
    ResetThenUsualRent,
    DormantDrained,
    DormantReturnsOrdinary,
    LateAtmAbroad,
    Redelivered,
    Ordinary,
}

impl Kind {
    /// Every kind but `Ordinary`, in order.
    pub const PRINCIPLES: [Kind; 12] = [
        Kind::IncomeStopsCardQuiet,
        Kind::IncomeStopsMoneyMoved,
        Kind::IncomeRaise,
        Kind::IncomeNewEmployer,
        Kind::IncomeSteady,
        Kind::ContactsSpelledManyWays,
        Kind::ContactsResolvedBetween,
        Kind::ComplaintRecurs,
        Kind::LargePurchasesRegularly,
        Kind::BillByCardMonthly,
        Kind::CashOnPayday,
        Kind::FirstEverLargePurchase,
    ];

    /// The fraud principles, in order.
    pub const FRAUD: [Kind; 9] = [
        Kind::SlowCardTesting,
        Kind::BurstCardTesting,
        Kind::SubscriptionsBilledTogether,
        Kind::TakeoverAfterReset,
        Kind::ResetThenUsualRent,
        Kind::DormantDrained,
        Kind::DormantReturnsOrdinary,
        Kind::LateAtmAbroad,
        Kind::Redelivered,
    ];

    /// Every principle: [`Kind::PRINCIPLES`] then [`Kind::FRAUD`].
    pub fn all() -> Vec<Kind> {
        Kind::PRINCIPLES.iter().chain(Kind::FRAUD.iter()).copied().collect()
    }

    /// Whether the kind is one of [`Kind::FRAUD`].
    pub fn is_fraud(self) -> bool {
        Kind::FRAUD.contains(&self)
    }

    /// The rule that must find this kind of customer; `None`: nobody may be paged.
    pub fn expected_rule(self) -> Option<&'static str> {
        match self {
            Kind::IncomeStopsCardQuiet | Kind::IncomeStopsMoneyMoved => Some("income_stopped"),
            Kind::ContactsSpelledManyWays => Some("repeat_contact"),
            Kind::ComplaintRecurs => Some("complaint_recurrence"),
            Kind::FirstEverLargePurchase => Some("amount_anomaly"),
            Kind::SlowCardTesting | Kind::BurstCardTesting => Some("card_tested_then_used"),
            Kind::TakeoverAfterReset => Some("takeover_after_credential_change"),
            Kind::DormantDrained => Some("dormant_drain"),
            Kind::LateAtmAbroad => Some("impossible_travel"),
            _ => None,
        }
    }
}

/// What should happen to one customer.
#[derive(Debug, Clone, Serialize)]
pub struct Label {
    pub customer_id: String,
    pub kind: Kind,
    /// The rule that must open a task for them (`None`: no task at all).
    pub rule: Option<&'static str>,
    /// When the rule should find them, to measure how long finding it took: for a stopped
    /// income, when the missed payment was expected; for a fraud, the event time of the event
    /// the task must come at (the purchase after card testing, the transfer out, the late ATM
    /// withdrawal), to the second. For a stopped income also its cadence in days and the day the
    /// card went quiet (if it did).
    pub expected_at: Option<Timestamp>,
    pub cadence_days: Option<f64>,
    pub card_stopped_at: Option<Timestamp>,
    /// For a customer nobody may page: from when (a quiet customer's first-ever large payment
    /// may page: it is unusual; its repetitions, their pattern, may not). `None`: from the start.
    pub quiet_from: Option<Timestamp>,
}

/// A generated population: JSON lines in delivery order (event time, except for the events
/// a principle delivers late or twice), and the labels.
#[derive(Debug, Clone)]
pub struct Population {
    pub lines: Vec<String>,
    pub labels: Vec<Label>,
}

/// The first instant of the stream.
pub fn start() -> Timestamp {
    Timestamp::parse_rfc3339("2026-02-02T00:00:00Z").expect("a valid instant")
}

/// Where something happens: a customer's home, a shop, an ATM.
#[derive(Debug, Clone, Copy)]
struct Place {
    country: &'static str,
    city: &'static str,
    lat: f64,
    lon: f64,
    timezone: &'static str,
}

const LONDON: Place =
    Place { country: "GB", city: "London", lat: 51.51, lon: -0.13, timezone: "Europe/London" };

/// Homes of the customers whose card travels (`LateAtmAbroad`).
const HOMES: &[Place] = &[
    LONDON,
    Place { country: "DE", city: "Berlin", lat: 52.52, lon: 13.40, timezone: "Europe/Berlin" },
    Place { country: "FR", city: "Paris", lat: 48.86, lon: 2.35, timezone: "Europe/Paris" },
    Place { country: "ES", city: "Madrid", lat: 40.42, lon: -3.70, timezone: "Europe/Madrid" },
    Place { country: "PL", city: "Warsaw", lat: 52.23, lon: 21.01, timezone: "Europe/Warsaw" },
    Place { country: "IT", city: "Rome", lat: 41.90, lon: 12.50, timezone: "Europe/Rome" },
];

/// Cities where a stolen card's ATM withdrawal happens (each more than 1,500 km from some homes;
/// the generator picks one that is, for the home at hand).
const FAR: &[Place] = &[
    Place { country: "US", city: "New York", lat: 40.71, lon: -74.01, timezone: "America/New_York" },
    Place { country: "TH", city: "Bangkok", lat: 13.76, lon: 100.50, timezone: "Asia/Bangkok" },
    Place { country: "BR", city: "Sao Paulo", lat: -23.55, lon: -46.63, timezone: "America/Sao_Paulo" },
    Place { country: "AE", city: "Dubai", lat: 25.20, lon: 55.27, timezone: "Asia/Dubai" },
    Place { country: "TR", city: "Istanbul", lat: 41.01, lon: 28.98, timezone: "Europe/Istanbul" },
    Place { country: "MA", city: "Casablanca", lat: 33.57, lon: -7.59, timezone: "Africa/Casablanca" },
    Place { country: "PT", city: "Lisbon", lat: 38.72, lon: -9.14, timezone: "Europe/Lisbon" },
];

impl Place {
    fn km_to(&self, other: &Place) -> f64 {
        let p = |x: &Place| crate::geo::Point { lat: x.lat, lon: x.lon };
        p(self).distance_km(&p(other))
    }
}

/// The lines being written, each with its *delivery* time: when the producer sends it, which is
/// its event time unless it arrives late or is sent again ([`Out::deliver_at`],
/// [`Out::redeliver`]). [`generate`] orders the stream by delivery time.
struct Out {
    events: Vec<(Timestamp, String)>,
    n: u64,
}

impl Out {
    /// Writes one event delivered on time; returns its index, to deliver it late or again.
    fn push(&mut self, customer: &str, at: Timestamp, body: &str) -> usize {
        self.n += 1;
        // Any offset: the instant matters, not the text.
        let offset = [0i32, 60, -300, 330][(self.n % 4) as usize];
        let ts = crate::ingest::generator::local_rfc3339(at, offset);
        self.events.push((
            at,
            format!(r#"{{"event_id":"v{}","customer_id":"{customer}","ts":"{ts}",{body}}}"#, self.n),
        ));
        self.events.len() - 1
    }

    /// Delivers line `index` at `when` instead of at its event time (a late event).
    fn deliver_at(&mut self, index: usize, when: Timestamp) {
        self.events[index].0 = when;
    }

    /// Sends line `index` once more at `when`: the same event id and time (a producer's resend).
    fn redeliver(&mut self, index: usize, when: Timestamp) {
        let line = self.events[index].1.clone();
        self.events.push((when, line));
    }

    fn profile(&mut self, c: &str, at: Timestamp) {
        self.profile_in(c, at, LONDON);
    }

    fn profile_in(&mut self, c: &str, at: Timestamp, home: Place) {
        let Place { country, city, lat, lon, timezone } = home;
        self.push(
            c,
            at,
            &format!(
                r#""type":"customer_profile","name":"Test Customer","email":"t@example.com","language":"en","segment":"mass","timezone":"{timezone}","consent":{{"email":true}},"home":{{"country":"{country}","city":"{city}","lat":{lat},"lon":{lon}}}"#
            ),
        );
    }

    fn card(&mut self, c: &str, at: Timestamp, amount: f64, merchant: &str, channel: &str) -> usize {
        self.card_at(c, at, amount, merchant, channel, true, LONDON)
    }

    #[allow(clippy::too_many_arguments)]
    fn card_at(
        &mut self,
        c: &str,
        at: Timestamp,
        amount: f64,
        merchant: &str,
        channel: &str,
        approved: bool,
        place: Place,
    ) -> usize {
        let status = if approved { "approved" } else { "declined" };
        let Place { country, city, lat, lon, .. } = place;
        self.push(
            c,
            at,
            &format!(
                r#""type":"card_transaction","card_id":"{c}-card","amount":"{amount:.2}","currency":"EUR","channel":"{channel}","status":"{status}","merchant":{{"name":"{merchant}","country":"{country}","city":"{city}","lat":{lat},"lon":{lon}}}"#
            ),
        )
    }

    fn login(&mut self, c: &str, at: Timestamp, device: &str, success: bool, geo: Option<Place>) -> usize {
        let channel = if device.ends_with("laptop") { "web" } else { "mobile" };
        let geo = geo.map_or(String::new(), |Place { country, city, lat, lon, .. }| {
            format!(r#","geo":{{"country":"{country}","city":"{city}","lat":{lat},"lon":{lon}}}"#)
        });
        self.push(
            c,
            at,
            &format!(
                r#""type":"login","channel":"{channel}","success":{success},"device_id":"{device}","ip":"192.0.2.7"{geo}"#
            ),
        )
    }

    fn transfer(&mut self, c: &str, at: Timestamp, out: bool, amount: f64, bank: &str, own: bool) -> usize {
        let direction = if out { "out" } else { "in" };
        self.push(
            c,
            at,
            &format!(
                r#""type":"transfer","direction":"{direction}","amount":{amount:.2},"currency":"EUR","counterparty_bank":"{bank}","own_account":{own}"#
            ),
        )
    }

    fn contact(&mut self, c: &str, at: Timestamp, reason: &str, resolved: bool) -> usize {
        self.contact_via(c, at, "chat", reason, resolved)
    }

    fn contact_via(&mut self, c: &str, at: Timestamp, channel: &str, reason: &str, resolved: bool) -> usize {
        self.push(
            c,
            at,
            &format!(r#""type":"support_contact","channel":"{channel}","reason":"{reason}","resolved":{resolved},"duration_s":240"#),
        )
    }

    fn complaint(&mut self, c: &str, at: Timestamp, category: &str, severity: &str) -> usize {
        self.push(
            c,
            at,
            &format!(r#""type":"complaint","category":"{category}","severity":"{severity}","text":"…""#),
        )
    }
}

/// One of the ways other systems write `words` (lower-case words of one code): lower, upper,
/// capitalised or mixed words,
/// separators `_`, `-`, `.` or spaces (sometimes doubled), camel case, stray spaces around.
/// (Case changes inside a word, `FeE`, are not a spelling any system uses.)
pub fn spelling(rng: &mut fastrand::Rng, words: &[&str]) -> String {
    let cased: Vec<String> = match rng.u8(..4) {
        0 => words.iter().map(|w| w.to_string()).collect(),
        1 => words.iter().map(|w| w.to_uppercase()).collect(),
        2 => words.iter().map(|w| capitalised(w)).collect(),
        // Mixed: some words upper case, the others lower.
        _ => words.iter().map(|w| if rng.bool() { w.to_uppercase() } else { w.to_string() }).collect(),
    };
    let joined = match rng.u8(..6) {
        0 => cased.join("_"),
        1 => cased.join("-"),
        2 => cased.join("."),
        3 => cased.join(" "),
        4 => cased.join("  "),
        // Camel case: the words capitalised and run together.
        _ => words.iter().map(|w| capitalised(w)).collect(),
    };
    let pad = |rng: &mut fastrand::Rng| if rng.u8(..3) == 0 { " " } else { "" };
    format!("{}{joined}{}", pad(rng), pad(rng))
}

/// `word` with its first letter in upper case.
fn capitalised(word: &str) -> String {
    let mut c = word.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

/// Codes written by "other systems", as words; some are aliases in the default pack's table.
const PROBLEMS: &[&[&str]] = &[
    &["fee", "dispute"],
    &["card", "blocked"],
    &["transfer", "delay"],
    &["atm", "not", "dispensing"],
    &["statement", "question"],
    &["cannot", "log", "in"],
];

/// Complaint categories as words (the first four have procedures, the last none).
const CATEGORIES: &[&[&str]] = &[&["fees"], &["app"], &["card"], &["mis", "selling"], &["branch", "closure"]];

fn uniform(rng: &mut fastrand::Rng, lo: f64, hi: f64) -> f64 {
    lo + rng.f64() * (hi - lo)
}

/// Daily card spending around `median` euros from `from` to `to` (about `per_day` payments), in
/// London.
fn spending(
    out: &mut Out,
    rng: &mut fastrand::Rng,
    c: &str,
    from: Timestamp,
    to: Timestamp,
    median: f64,
    per_day: f64,
) {
    spending_at(out, rng, c, (from, to), median, per_day, LONDON)
}

/// [`spending`] at `home`, over `during` (from, to).
fn spending_at(
    out: &mut Out,
    rng: &mut fastrand::Rng,
    c: &str,
    during: (Timestamp, Timestamp),
    median: f64,
    per_day: f64,
    home: Place,
) {
    let (from, to) = during;
    let mut at = from.plus(rng.i64(0..6 * HOUR));
    while at < to {
        let amount = (median * uniform(rng, 0.5, 1.6)).max(1.0);
        let shop = ["Corner Shop", "Grocer", "Cafe", "Pharmacy"][rng.usize(..4)];
        out.card_at(c, at, amount, shop, "contactless", true, home);
        let gap = (DAY as f64 / per_day * uniform(rng, 0.5, 1.5)) as i64;
        at = at.plus(gap.max(20 * MINUTE));
    }
}

/// Payment dates of a flow with `cadence` days, from `first`: weekly and fortnightly by the
/// day count, monthly on about the same day of each month (±`jitter` days).
fn paydays(
    rng: &mut fastrand::Rng,
    first: Timestamp,
    cadence: f64,
    count: usize,
    jitter: i64,
) -> Vec<Timestamp> {
    (0..count)
        .map(|k| {
            let nominal = first.plus((k as f64 * cadence * DAY as f64) as i64);
            let shift = if k == 0 || jitter == 0 { 0 } else { rng.i64(-jitter..=jitter) * DAY };
            nominal.plus(shift)
        })
        .collect()
}

/// Generates the population.
pub fn generate(spec: &VariationSpec) -> Population {
    let mut rng = fastrand::Rng::with_seed(spec.seed);
    let mut fraud_rng = fastrand::Rng::with_seed(spec.seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut out = Out { events: Vec::new(), n: 0 };
    let mut labels = Vec::new();
    let begin = start();
    let end = begin.plus(spec.days * DAY);
    let name = |kind: Kind, i: usize| format!("{kind:?}-{i}").to_lowercase();
    for &kind in spec.kinds.iter().filter(|k| !k.is_fraud()) {
        for i in 0..spec.per_kind {
            let label = customer(&mut out, &mut rng, &name(kind, i), kind, begin, end);
            labels.push(label);
        }
    }
    for i in 0..spec.ordinary {
        let c = format!("ordinary-{i}");
        labels.push(customer(&mut out, &mut rng, &c, Kind::Ordinary, begin, end));
    }
    for &kind in spec.kinds.iter().filter(|k| k.is_fraud()) {
        for i in 0..spec.per_kind {
            labels.push(fraud_customer(&mut out, &mut fraud_rng, &name(kind, i), kind, begin, end));
        }
    }
    // By delivery time: a late or resent line goes where the producer sent it.
    out.events.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    Population { lines: out.events.into_iter().map(|(_, l)| l).collect(), labels }
}

fn customer(
    out: &mut Out,
    rng: &mut fastrand::Rng,
    c: &str,
    kind: Kind,
    begin: Timestamp,
    end: Timestamp,
) -> Label {
    let mut label = Label {
        customer_id: c.to_string(),
        kind,
        rule: kind.expected_rule(),
        expected_at: None,
        cadence_days: None,
        card_stopped_at: None,
        quiet_from: None,
    };
    if rng.u8(..4) != 0 {
        out.profile(c, begin.plus(rng.i64(0..DAY)));
    }
    let median = uniform(rng, 8.0, 60.0);
    let per_day = uniform(rng, 0.6, 3.0);
    match kind {
        Kind::IncomeStopsCardQuiet
        | Kind::IncomeStopsMoneyMoved
        | Kind::IncomeRaise
        | Kind::IncomeNewEmployer
        | Kind::IncomeSteady => {
            let cadence = [7.0, 14.0, 30.44][rng.usize(..3)];
            let jitter = if cadence > 20.0 { rng.i64(0..=3) } else { rng.i64(0..=1) };
            let seen = 2 + rng.usize(..4); // payments before the change: 2 to 5
            let amount = uniform(rng, 600.0, 5_000.0) * cadence / 30.44;
            let payer = ["Acme Payroll", "City Council", "Northwind Ltd", "State Pension"][rng.usize(..4)];
            // The change comes around day 90–110; payments start `seen` cadences before it.
            let change = begin.plus(rng.i64(90..110) * DAY);
            let first = change.plus(-((seen as f64 * cadence * DAY as f64) as i64));
            // Stopping kinds get `seen` payments; the others keep being paid until the end.
            let total = if matches!(kind, Kind::IncomeStopsCardQuiet | Kind::IncomeStopsMoneyMoved) {
                seen
            } else {
                (end.millis_since(first) as f64 / (cadence * DAY as f64)).ceil() as usize
            };
            let mut days = paydays(rng, first.plus(8 * HOUR), cadence, total, jitter);
            days.retain(|at| *at < end);
            let spend_from = begin.min(first);
            // A new employer pays its own amount, on its own payday, from the change on.
            let new_amount = amount * uniform(rng, 0.8, 1.25);
            let new_shift = rng.i64(-2..=2) * DAY;
            let mut spend_to = end;
            for (k, at) in days.iter().enumerate() {
                let after_change = k >= seen;
                let noisy = amount * uniform(rng, 0.98, 1.02);
                // Other systems write the same payer in other cases now and then.
                let written = if rng.u8(..3) == 0 { payer.to_uppercase() } else { payer.to_string() };
                match (kind, after_change) {
                    (Kind::IncomeRaise, true) => out.transfer(c, *at, false, noisy * 1.25, &written, false),
                    (Kind::IncomeNewEmployer, true) => {
                        let pay = new_amount * uniform(rng, 0.98, 1.02);
                        out.transfer(c, at.plus(new_shift), false, pay, "Globex Payroll", false)
                    }
                    _ => out.transfer(c, *at, false, noisy, &written, false),
                };
            }
            if let Some(last) = days.last().copied() {
                let expected = last.plus((cadence * DAY as f64) as i64);
                if matches!(kind, Kind::IncomeStopsCardQuiet | Kind::IncomeStopsMoneyMoved) {
                    label.expected_at = Some(expected);
                    label.cadence_days = Some(cadence);
                }
                if kind == Kind::IncomeStopsCardQuiet {
                    // The card goes quiet around when the money should have come.
                    let stop = expected.plus(rng.i64(-3 * DAY..2 * DAY)).max(last.plus(DAY));
                    spend_to = stop;
                    label.card_stopped_at = Some(stop);
                }
                if kind == Kind::IncomeStopsMoneyMoved {
                    let moved = last.plus(rng.i64(DAY..(cadence * DAY as f64) as i64));
                    out.transfer(c, moved, true, amount * uniform(rng, 0.4, 0.9), "Neo Bank", true);
                }
            }
            spending(out, rng, c, spend_from, spend_to, median, per_day);
        }
        Kind::ContactsSpelledManyWays | Kind::ContactsResolvedBetween => {
            spending(out, rng, c, begin, end, median, per_day);
            let words = PROBLEMS[rng.usize(..PROBLEMS.len())];
            let count = 3 + rng.usize(..2);
            let mut at = begin.plus(rng.i64(30..100) * DAY);
            for k in 0..count {
                let resolved = kind == Kind::ContactsResolvedBetween && k == count - 2;
                out.contact(c, at, &spelling(rng, words), resolved);
                at = at.plus(rng.i64(6 * HOUR..2 * DAY));
            }
        }
        Kind::ComplaintRecurs => {
            spending(out, rng, c, begin, end, median, per_day);
            let words = CATEGORIES[rng.usize(..CATEGORIES.len())];
            let first = begin.plus(rng.i64(20..80) * DAY);
            out.complaint(c, first, &spelling(rng, words), "medium");
            out.contact(c, first.plus(rng.i64(2 * HOUR..2 * DAY)), &spelling(rng, words), true);
            out.complaint(c, first.plus(rng.i64(5..50) * DAY), &spelling(rng, words), "low");
        }
        Kind::LargePurchasesRegularly => {
            spending(out, rng, c, begin, end, median, per_day);
            let base = median * uniform(rng, 15.0, 60.0);
            let mut at = begin.plus(rng.i64(0..3 * DAY));
            label.quiet_from = Some(at.plus(1));
            while at < end {
                let shop = ["Design Store", "Electronics", "Travel Agency", "Furniture"][rng.usize(..4)];
                out.card(c, at, base * uniform(rng, 0.8, 1.2), shop, "ecommerce");
                at = at.plus(rng.i64(10..21) * DAY + rng.i64(0..DAY));
            }
        }
        Kind::BillByCardMonthly => {
            spending(out, rng, c, begin, end, median, per_day);
            let bill = median * uniform(rng, 20.0, 80.0);
            let merchant =
                ["Oakwood Care Home", "St Mary School", "Riverside Rent", "Gym Premium"][rng.usize(..4)];
            let first = begin.plus(rng.i64(0..4 * DAY));
            let days = paydays(rng, first, 30.44, 6, 2);
            label.quiet_from = Some(first.plus(1));
            for at in days.into_iter().filter(|at| *at < end) {
                out.card(c, at, bill * uniform(rng, 0.99, 1.01), merchant, "ecommerce");
            }
        }
        Kind::CashOnPayday => {
            spending(out, rng, c, begin, end, median, per_day);
            let income = uniform(rng, 1_200.0, 4_000.0);
            let cash = (income * uniform(rng, 0.15, 0.35) / 10.0).round() * 10.0;
            let first = begin.plus(rng.i64(0..3 * DAY) + 7 * HOUR);
            let days = paydays(rng, first, 30.44, 5, 2);
            // The first withdrawal may come up to 30 hours after the first pay.
            label.quiet_from = Some(first.plus(31 * HOUR));
            for at in days.into_iter().filter(|at| *at < end) {
                out.transfer(c, at, false, income, "Employer Bank", false);
                let atm = ["High St ATM", "Station ATM", "Mall ATM"][rng.usize(..3)];
                out.card(c, at.plus(rng.i64(HOUR..30 * HOUR)), cash, atm, "atm");
            }
        }
        Kind::FirstEverLargePurchase => {
            spending(out, rng, c, begin, end, median, per_day);
            let at = begin.plus(rng.i64(40..120) * DAY);
            out.card(c, at, (median * uniform(rng, 20.0, 60.0)).max(400.0), "Luxury Watches", "ecommerce");
        }
        Kind::SlowCardTesting
        | Kind::BurstCardTesting
        | Kind::SubscriptionsBilledTogether
        | Kind::TakeoverAfterReset
        | Kind::ResetThenUsualRent
        | Kind::DormantDrained
        | Kind::DormantReturnsOrdinary
        | Kind::LateAtmAbroad
        | Kind::Redelivered => unreachable!("{kind:?} is drawn by fraud_customer"),
        Kind::Ordinary => {
            spending(out, rng, c, begin, end, median, per_day);
            let mut at = begin.plus(rng.i64(0..20) * DAY);
            while at < end {
                match rng.u8(..3) {
                    // Amounts spread over two orders of magnitude (log-uniform), so that a run of
                    // similar ones on a rhythm (a real pattern) is rare by chance.
                    0 => out.transfer(
                        c,
                        at,
                        rng.bool(),
                        10f64.powf(uniform(rng, 1.0, 3.3)),
                        "Other Bank",
                        false,
                    ),
                    1 => {
                        let words = PROBLEMS[rng.usize(..PROBLEMS.len())];
                        out.contact(c, at, &spelling(rng, words), true)
                    }
                    _ => out.card(c, at, median * uniform(rng, 2.0, 4.0), "Department Store", "card_present"),
                };
                at = at.plus(rng.i64(3..25) * DAY);
            }
        }
    }
    label
}

/// `at` to the whole second (the lines' timestamps carry seconds): a label's instant is the
/// event's, exactly.
fn whole_second(at: Timestamp) -> Timestamp {
    Timestamp(at.0.div_euclid(1_000) * 1_000)
}

/// Online shops a card tester tries numbers at (each attempt at another).
const TEST_SHOPS: &[&str] = &[
    "Gift Cards 4U",
    "Donate Now",
    "eBooks Direct",
    "PhoneTopUp",
    "Cheap VPN",
    "Game Coins",
    "Music Store",
    "Parking App",
    "Charity Run",
    "Web Hosting Co",
    "Sticker Shop",
    "Tip Jar",
];

/// App stores and subscriptions billed by card, with a monthly price each.
const SUBSCRIPTIONS: &[(&str, f64)] = &[
    ("App Store", 0.99),
    ("Google Play", 2.99),
    ("Netflix", 13.99),
    ("Spotify", 10.99),
    ("Disney Plus", 8.99),
    ("iCloud Storage", 2.99),
    ("YouTube Premium", 11.99),
    ("Xbox Game Pass", 14.99),
    ("Audible", 9.99),
    ("News Daily", 4.99),
];

/// How other systems write "password reset" (codes.toml's `credential_change` and its aliases).
const RESET_SPELLINGS: &[&str] = &[
    "password_reset",
    "Password Reset",
    "PASSWORD-RESET",
    "forgot password",
    "reset password",
    "Reset Credentials",
    "pin reset",
];

/// Banks a customer has never paid: where stolen money goes.
const MULE_BANKS: &[&str] =
    &["Quick Crypto Bank", "Far Away Bank", "Offshore Trust", "Instant Pay Ltd", "Nova Wallet"];

/// Draws one customer of a fraud principle ([`Kind::FRAUD`]).
fn fraud_customer(
    out: &mut Out,
    rng: &mut fastrand::Rng,
    c: &str,
    kind: Kind,
    begin: Timestamp,
    end: Timestamp,
) -> Label {
    let mut label = Label {
        customer_id: c.to_string(),
        kind,
        rule: kind.expected_rule(),
        expected_at: None,
        cadence_days: None,
        card_stopped_at: None,
        quiet_from: None,
    };
    let median = uniform(rng, 8.0, 60.0);
    let per_day = uniform(rng, 0.6, 3.0);
    let phone = format!("{c}-phone");
    match kind {
        Kind::SlowCardTesting | Kind::BurstCardTesting => {
            if rng.u8(..4) != 0 {
                out.profile(c, begin.plus(rng.i64(0..DAY)));
            }
            spending(out, rng, c, begin, end, median, per_day);
            let attempts = 4 + rng.usize(..5);
            // Mostly declined: more than half, at least one.
            let declined = attempts / 2 + 1 + rng.usize(..=(attempts - attempts / 2 - 1));
            let mut is_declined: Vec<bool> = (0..attempts).map(|k| k < declined).collect();
            rng.shuffle(&mut is_declined);
            let mut shops = TEST_SHOPS.to_vec();
            rng.shuffle(&mut shops);
            let mut at = whole_second(begin.plus(rng.i64(20 * DAY..140 * DAY)));
            for (k, declined) in is_declined.into_iter().enumerate() {
                if k > 0 {
                    // Low and slow: 4 to 90 minutes apart (never four in ten minutes); a burst: 20
                    // to 90 seconds.
                    at = at.plus(match kind {
                        Kind::SlowCardTesting => rng.i64(4 * MINUTE..=90 * MINUTE),
                        _ => rng.i64(20_000..=90_000),
                    });
                    at = whole_second(at);
                }
                let amount = if rng.bool() { uniform(rng, 0.5, 2.0) } else { uniform(rng, 2.0, 5.0) };
                let shop_place = FAR[rng.usize(..FAR.len())];
                out.card_at(c, at, amount, shops[k], "ecommerce", !declined, shop_place);
            }
            let purchase = whole_second(at.plus(rng.i64(5 * MINUTE..=60 * MINUTE)));
            let shop = ["Electronics Online", "Luxury Bags", "Phone Store", "Sneaker Drop"][rng.usize(..4)];
            out.card_at(
                c,
                purchase,
                uniform(rng, 150.0, 1_500.0),
                shop,
                "ecommerce",
                true,
                FAR[rng.usize(..FAR.len())],
            );
            label.expected_at = Some(purchase);
        }
        Kind::SubscriptionsBilledTogether => {
            if rng.u8(..4) != 0 {
                out.profile(c, begin.plus(rng.i64(0..DAY)));
            }
            spending(out, rng, c, begin, end, median, per_day);
            let mut subscriptions = SUBSCRIPTIONS.to_vec();
            rng.shuffle(&mut subscriptions);
            subscriptions.truncate(4 + rng.usize(..3));
            let first = begin.plus(rng.i64(0..28 * DAY) + rng.i64(0..DAY));
            for day in paydays(rng, first, 30.44, 6, 1).into_iter().filter(|at| *at < end) {
                // Billed one after another within a few minutes, in any order.
                rng.shuffle(&mut subscriptions);
                let mut at = day;
                for (shop, price) in &subscriptions {
                    out.card(c, at, *price, shop, "ecommerce");
                    at = at.plus(rng.i64(5_000..=3 * MINUTE));
                }
            }
        }
        Kind::TakeoverAfterReset | Kind::ResetThenUsualRent => {
            if rng.u8(..4) != 0 {
                out.profile(c, begin.plus(rng.i64(0..DAY)));
            }
            spending(out, rng, c, begin, end, median, per_day);
            logins(out, rng, c, &phone, (begin, end));
            let months = 2 + rng.usize(..3);
            let income = uniform(rng, 1_500.0, 4_500.0);
            let rent = income * uniform(rng, 0.25, 0.45);
            let payer = ["Acme Payroll", "Northwind Ltd", "City Council"][rng.usize(..3)];
            let landlord = ["Landlord Bank", "Homes Lettings", "Riverside Estates"][rng.usize(..3)];
            let rent_after = rng.i64(1..=5) * DAY + rng.i64(0..8 * HOUR);
            // The last income 20 to 26 days before the end: the next is not yet due.
            let last = end.plus(-rng.i64(20..=26) * DAY).plus(8 * HOUR);
            let first = last.plus(-(((months - 1) as f64 * 30.44 * DAY as f64) as i64));
            let days = paydays(rng, first, 30.44, months, 1);
            for (k, at) in days.iter().enumerate() {
                out.transfer(c, *at, false, income * uniform(rng, 0.99, 1.01), payer, false);
                let final_month = k + 1 == months;
                if !(final_month && kind == Kind::ResetThenUsualRent) {
                    out.transfer(c, at.plus(rent_after), true, rent, landlord, false);
                }
            }
            let last_income = days.last().copied().expect("two months at least");
            // The reset: on the usual rent day for the one who pays the rent after it; some
            // days after the rent for the one whose money is taken.
            let reset = whole_second(match kind {
                Kind::ResetThenUsualRent => last_income.plus(rent_after - rng.i64(5 * MINUTE..50 * MINUTE)),
                _ => last_income.plus(rent_after + rng.i64(DAY..8 * DAY)),
            });
            let reason = RESET_SPELLINGS[rng.usize(..RESET_SPELLINGS.len())];
            out.contact_via(c, reset, ["phone", "chat", "email"][rng.usize(..3)], reason, rng.bool());
            // The new-device login and the money out: all within the hour, spacing random.
            let login = whole_second(reset.plus(rng.i64(MINUTE..40 * MINUTE)));
            let geo = if rng.bool() { Some(LONDON) } else { None };
            out.login(c, login, &format!("{c}-new-{}", rng.u32(..1000)), true, geo);
            let transfer =
                whole_second(login.plus(rng.i64(MINUTE..=reset.plus(59 * MINUTE).millis_since(login))));
            match kind {
                Kind::ResetThenUsualRent => {
                    // The usual landlord, now and then written in capitals.
                    let written =
                        if rng.u8(..3) == 0 { landlord.to_uppercase() } else { landlord.to_string() };
                    out.transfer(c, transfer, true, rent * uniform(rng, 0.97, 1.03), &written, false);
                }
                _ => {
                    let bank = MULE_BANKS[rng.usize(..MULE_BANKS.len())];
                    out.transfer(c, transfer, true, income * uniform(rng, 0.5, 0.95), bank, false);
                    label.expected_at = Some(transfer);
                }
            }
        }
        Kind::DormantDrained | Kind::DormantReturnsOrdinary => {
            if rng.u8(..4) != 0 {
                out.profile(c, begin.plus(rng.i64(0..DAY)));
            }
            // Active for two to six weeks, silent for 30 to 90 days, back before the end.
            let silence = rng.i64(30..=90) * DAY + rng.i64(0..DAY);
            let active_to = begin.plus(rng.i64(14..=42) * DAY);
            let back = whole_second(active_to.plus(silence));
            logins(out, rng, c, &phone, (begin, active_to));
            spending(out, rng, c, begin, active_to, median, per_day * 0.5);
            let mut received = 0.0;
            // Each from another payer: two from one payer a fortnight apart would be an income
            // that stopped, which it is right to page.
            let mut payers =
                ["Aunt Bank", "Marketplace Payouts", "Tax Refund", "Old Employer", "Friend Bank"];
            rng.shuffle(&mut payers);
            for payer in &payers[..2 + rng.usize(..4)] {
                let amount = uniform(rng, 200.0, 3_000.0);
                out.transfer(
                    c,
                    begin.plus(rng.i64(DAY..active_to.millis_since(begin))),
                    false,
                    amount,
                    payer,
                    false,
                );
                received += (amount * 100.0).round() / 100.0;
            }
            // Every event before the silence ends by `active_to`: spending and logins stop there.
            match kind {
                Kind::DormantDrained => {
                    let login = whole_second(back);
                    out.login(c, login, &format!("{c}-new-{}", rng.u32(..1000)), true, None);
                    let drain = whole_second(login.plus(rng.i64(2 * MINUTE..6 * HOUR)));
                    let bank = MULE_BANKS[rng.usize(..MULE_BANKS.len())];
                    out.transfer(c, drain, true, received * uniform(rng, 0.5, 1.0), bank, false);
                    label.expected_at = Some(drain);
                }
                _ => {
                    if rng.bool() {
                        out.login(c, back, &phone, true, None);
                    }
                    spending(out, rng, c, back.plus(MINUTE), end, median, per_day);
                }
            }
        }
        Kind::LateAtmAbroad => {
            let home = HOMES[rng.usize(..HOMES.len())];
            out.profile_in(c, begin.plus(rng.i64(0..DAY)), home);
            spending_at(out, rng, c, (begin, end), median, per_day, home);
            let far: Vec<Place> = FAR.iter().copied().filter(|p| home.km_to(p) > 1_500.0).collect();
            let atm_place = far[rng.usize(..far.len())];
            let before = whole_second(begin.plus(rng.i64(20 * DAY..140 * DAY)));
            out.card_at(
                c,
                before,
                median * uniform(rng, 0.5, 2.0),
                "Home Supermarket",
                "card_present",
                true,
                home,
            );
            let atm = whole_second(before.plus(rng.i64(15 * MINUTE..=50 * MINUTE)));
            let withdrawal = (uniform(rng, 100.0, 800.0) / 20.0).round() * 20.0;
            let line = out.card_at(c, atm, withdrawal, "Airport ATM", "atm", true, atm_place);
            // 1 to 5 of the customer's own later payments at home reach us before it does.
            let mut at = atm;
            for _ in 0..1 + rng.usize(..5) {
                at = whole_second(at.plus(rng.i64(5 * MINUTE..=55 * MINUTE)));
                let shop = ["Home Bakery", "Local Pharmacy", "Corner Shop"][rng.usize(..3)];
                out.card_at(c, at, median * uniform(rng, 0.5, 1.5), shop, "contactless", true, home);
            }
            let delivered = at.plus(rng.i64(1_000..10 * MINUTE));
            assert!(delivered.millis_since(atm) < LATENESS, "the late ATM stays within the allowed lateness");
            out.deliver_at(line, delivered);
            label.expected_at = Some(atm);
        }
        Kind::Redelivered => {
            if rng.u8(..4) != 0 {
                out.profile(c, begin.plus(rng.i64(0..DAY)));
            }
            spending(out, rng, c, begin, end, median, per_day);
            let mut problems = PROBLEMS.to_vec();
            rng.shuffle(&mut problems);
            let mut at = begin.plus(rng.i64(10..130) * DAY);
            let mut sent = Vec::new();
            for words in &problems[..2] {
                sent.push(out.contact(c, at, &spelling(rng, words), false));
                at = at.plus(rng.i64(HOUR..2 * DAY));
            }
            let category = CATEGORIES[rng.usize(..CATEGORIES.len())];
            sent.push(out.complaint(c, at, &spelling(rng, category), "low"));
            // The producer sends them all again, days later, the same ids and times.
            let mut resend = at.plus(rng.i64(2 * DAY..=6 * DAY));
            for line in sent {
                out.redeliver(line, resend);
                resend = resend.plus(rng.i64(1_000..MINUTE));
            }
        }
        other => unreachable!("{other:?} is not a fraud principle"),
    }
    label
}

/// Successful logins from the customer's usual `device`, every few days over `during`.
fn logins(out: &mut Out, rng: &mut fastrand::Rng, c: &str, device: &str, during: (Timestamp, Timestamp)) {
    let (from, to) = during;
    let mut at = from.plus(rng.i64(HOUR..DAY));
    while at < to {
        out.login(c, at, device, true, None);
        at = at.plus(rng.i64(2 * DAY..10 * DAY));
    }
}

/// One rule firing for one customer (a task's signal), as the scorer reads it: from the
/// engine's tasks or from another build's `replay` output.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    pub customer_id: String,
    pub rule: String,
    pub at: Timestamp,
}

/// The allowed lateness the populations are replayed with: six hours, not the engine's default
/// ten minutes, because `LateAtmAbroad` delivers an ATM withdrawal hours late and every such
/// delay stays within this. (Timers fire by event time, so a care signal's time does not move;
/// only its firing waits for the watermark.)
pub const LATENESS: i64 = 6 * HOUR;

/// Every rule firing of `lines` through a fresh engine (one partition, as a customer's events
/// arrive in delivery order) with an allowed lateness of [`LATENESS`], each (customer, rule,
/// time) once, and the engine (its state, to measure).
pub fn firings(rules: &crate::rules::RuleSet, lines: &[String]) -> (Vec<Firing>, crate::engine::Engine) {
    let config = crate::engine::EngineConfig { allowed_lateness: LATENESS, ..Default::default() };
    let engine = crate::engine::Engine::new(config);
    let mut firings = Vec::new();
    for line in lines {
        let event = crate::event::decode(line.as_bytes()).expect("generated lines decode");
        for change in engine.process(rules, &event).changes {
            for s in &change.task.signals {
                let f =
                    Firing { customer_id: change.task.customer_id.clone(), rule: s.rule.clone(), at: s.at };
                if !firings.contains(&f) {
                    firings.push(f);
                }
            }
        }
    }
    (firings, engine)
}

/// How one rule did on a population.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RuleScore {
    pub rule: String,
    /// Customers labelled with this rule, and how many of them it found.
    pub expected: usize,
    pub found: usize,
    /// Customers labelled "nobody paged" whom it paged, by their kind.
    pub false_positives: Vec<(Kind, usize)>,
    /// For a stopped income: hours from the missed payment's expected date to the firing.
    pub delay_hours: Vec<f64>,
}

impl RuleScore {
    /// Found / expected (1 when nothing was expected).
    pub fn recall(&self) -> f64 {
        if self.expected == 0 {
            1.0
        } else {
            self.found as f64 / self.expected as f64
        }
    }

    /// Customers paged who should not have been.
    pub fn false_positive_total(&self) -> usize {
        self.false_positives.iter().map(|(_, n)| n).sum()
    }
}

/// Scores firings against the labels, per rule (every rule labelled or fired, sorted by name).
pub fn score(labels: &[Label], firings: &[Firing]) -> Vec<RuleScore> {
    use std::collections::{BTreeMap, BTreeSet};
    let by_customer: BTreeMap<&str, &Label> = labels.iter().map(|l| (l.customer_id.as_str(), l)).collect();
    let mut rules: BTreeSet<&str> = labels.iter().filter_map(|l| l.rule).collect();
    rules.extend(firings.iter().map(|f| f.rule.as_str()));
    rules
        .into_iter()
        .map(|rule| {
            // Each customer's first firing of the rule, and their last (a look-alike's firings
            // after its `quiet_from` are false positives).
            let mut first: BTreeMap<&str, Timestamp> = BTreeMap::new();
            let mut last: BTreeMap<&str, Timestamp> = BTreeMap::new();
            for f in firings.iter().filter(|f| f.rule == rule) {
                let at = first.entry(f.customer_id.as_str()).or_insert(f.at);
                *at = (*at).min(f.at);
                let at = last.entry(f.customer_id.as_str()).or_insert(f.at);
                *at = (*at).max(f.at);
            }
            let mut s = RuleScore { rule: rule.to_string(), ..RuleScore::default() };
            let mut fps: BTreeMap<Kind, usize> = BTreeMap::new();
            for l in labels.iter().filter(|l| l.rule == Some(rule)) {
                s.expected += 1;
                if let Some(at) = first.get(l.customer_id.as_str()) {
                    s.found += 1;
                    if let Some(expected) = l.expected_at {
                        s.delay_hours.push(at.millis_since(expected) as f64 / HOUR as f64);
                    }
                }
            }
            for (customer, at) in &last {
                let late_enough = |l: &&&Label| l.quiet_from.is_none_or(|from| *at >= from);
                if let Some(l) = by_customer.get(customer).filter(|l| l.rule.is_none()).filter(late_enough) {
                    *fps.entry(l.kind).or_default() += 1;
                }
            }
            s.false_positives = fps.into_iter().collect();
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_population_and_every_line_decodes() {
        let spec = VariationSpec { per_kind: 3, ordinary: 5, ..VariationSpec::default() };
        let a = generate(&spec);
        assert_eq!(a.lines, generate(&spec).lines);
        assert_ne!(a.lines, generate(&VariationSpec { seed: 2, ..spec.clone() }).lines);
        for line in &a.lines {
            crate::event::decode(line.as_bytes()).unwrap_or_else(|e| panic!("{e}: {line}"));
        }
        assert_eq!(a.labels.len(), 3 * (Kind::PRINCIPLES.len() + Kind::FRAUD.len()) + 5);
    }

    #[test]
    fn late_and_resent_lines_are_placed_by_delivery_time() {
        let spec = VariationSpec {
            per_kind: 5,
            ordinary: 0,
            kinds: vec![Kind::LateAtmAbroad, Kind::Redelivered],
            ..VariationSpec::default()
        };
        let lines = generate(&spec).lines;
        let events: Vec<crate::event::Event> =
            lines.iter().map(|l| crate::event::decode(l.as_bytes()).expect("decodes")).collect();
        for i in 0..5 {
            let c = format!("lateatmabroad-{i}");
            let theirs: Vec<&crate::event::Event> = events.iter().filter(|e| e.customer_id == c).collect();
            let atm = theirs.iter().position(|e| {
                e.event_id.starts_with('v')
                    && matches!(&e.body,
                crate::event::EventBody::CardTransaction(t) if t.channel == crate::event::CardChannel::Atm)
            });
            let atm = atm.expect("an ATM withdrawal");
            let newest = theirs[..atm].iter().map(|e| e.ts).max().expect("payments before it");
            assert!(newest > theirs[atm].ts, "{c}: delivered after later payments");
            assert!(newest.millis_since(theirs[atm].ts) < LATENESS, "{c}: within the allowed lateness");
            let ids: Vec<&str> = events
                .iter()
                .filter(|e| e.customer_id == format!("redelivered-{i}"))
                .map(|e| e.event_id.as_str())
                .collect();
            let mut distinct = ids.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(ids.len(), distinct.len() + 3, "the two contacts and the complaint sent twice");
        }
    }

    #[test]
    fn spellings_vary_and_normalise_to_one_code() {
        let mut rng = fastrand::Rng::with_seed(3);
        let spelled: std::collections::BTreeSet<String> =
            (0..50).map(|_| spelling(&mut rng, &["fee", "dispute"])).collect();
        assert!(spelled.len() > 10, "{spelled:?}");
        for s in &spelled {
            assert_eq!(crate::codes::normalize(s), "fee_dispute", "{s:?}");
        }
    }
}
