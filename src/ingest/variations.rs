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
}

impl Default for VariationSpec {
    fn default() -> Self {
        VariationSpec { seed: 1, per_kind: 20, ordinary: 100, days: 150 }
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

    /// The rule that must find this kind of customer; `None`: nobody may be paged.
    pub fn expected_rule(self) -> Option<&'static str> {
        match self {
            Kind::IncomeStopsCardQuiet | Kind::IncomeStopsMoneyMoved => Some("income_stopped"),
            Kind::ContactsSpelledManyWays => Some("repeat_contact"),
            Kind::ComplaintRecurs => Some("complaint_recurrence"),
            Kind::FirstEverLargePurchase => Some("amount_anomaly"),
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
    /// For a stopped income: when the missed payment was expected, its cadence in days and the
    /// day the card went quiet (if it did), to measure how long finding it took.
    pub expected_at: Option<Timestamp>,
    pub cadence_days: Option<f64>,
    pub card_stopped_at: Option<Timestamp>,
    /// For a customer nobody may page: from when (a quiet customer's first-ever large payment
    /// may page: it is unusual; its repetitions, their pattern, may not). `None`: from the start.
    pub quiet_from: Option<Timestamp>,
}

/// A generated population: JSON lines in time order, and the labels.
#[derive(Debug, Clone)]
pub struct Population {
    pub lines: Vec<String>,
    pub labels: Vec<Label>,
}

/// The first instant of the stream.
pub fn start() -> Timestamp {
    Timestamp::parse_rfc3339("2026-02-02T00:00:00Z").expect("a valid instant")
}

struct Out {
    events: Vec<(Timestamp, String)>,
    n: u64,
}

impl Out {
    fn push(&mut self, customer: &str, at: Timestamp, body: &str) {
        self.n += 1;
        // Any offset: the instant matters, not the text.
        let offset = [0i32, 60, -300, 330][(self.n % 4) as usize];
        let ts = crate::ingest::generator::local_rfc3339(at, offset);
        self.events.push((
            at,
            format!(r#"{{"event_id":"v{}","customer_id":"{customer}","ts":"{ts}",{body}}}"#, self.n),
        ));
    }

    fn profile(&mut self, c: &str, at: Timestamp) {
        self.push(
            c,
            at,
            r#""type":"customer_profile","name":"Test Customer","email":"t@example.com","language":"en","segment":"mass","timezone":"Europe/London","consent":{"email":true},"home":{"country":"GB","city":"London","lat":51.51,"lon":-0.13}"#,
        );
    }

    fn card(&mut self, c: &str, at: Timestamp, amount: f64, merchant: &str, channel: &str) {
        self.push(
            c,
            at,
            &format!(
                r#""type":"card_transaction","card_id":"{c}-card","amount":"{amount:.2}","currency":"EUR","channel":"{channel}","status":"approved","merchant":{{"name":"{merchant}","country":"GB","city":"London","lat":51.51,"lon":-0.13}}"#
            ),
        );
    }

    fn transfer(&mut self, c: &str, at: Timestamp, out: bool, amount: f64, bank: &str, own: bool) {
        let direction = if out { "out" } else { "in" };
        self.push(
            c,
            at,
            &format!(
                r#""type":"transfer","direction":"{direction}","amount":{amount:.2},"currency":"EUR","counterparty_bank":"{bank}","own_account":{own}"#
            ),
        );
    }

    fn contact(&mut self, c: &str, at: Timestamp, reason: &str, resolved: bool) {
        self.push(
            c,
            at,
            &format!(r#""type":"support_contact","channel":"chat","reason":"{reason}","resolved":{resolved},"duration_s":240"#),
        );
    }

    fn complaint(&mut self, c: &str, at: Timestamp, category: &str, severity: &str) {
        self.push(
            c,
            at,
            &format!(r#""type":"complaint","category":"{category}","severity":"{severity}","text":"…""#),
        );
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

/// Daily card spending around `median` euros from `from` to `to` (about `per_day` payments).
fn spending(
    out: &mut Out,
    rng: &mut fastrand::Rng,
    c: &str,
    from: Timestamp,
    to: Timestamp,
    median: f64,
    per_day: f64,
) {
    let mut at = from.plus(rng.i64(0..6 * HOUR));
    while at < to {
        let amount = (median * uniform(rng, 0.5, 1.6)).max(1.0);
        out.card(c, at, amount, ["Corner Shop", "Grocer", "Cafe", "Pharmacy"][rng.usize(..4)], "contactless");
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
    let mut out = Out { events: Vec::new(), n: 0 };
    let mut labels = Vec::new();
    let begin = start();
    let end = begin.plus(spec.days * DAY);
    for kind in Kind::PRINCIPLES {
        for i in 0..spec.per_kind {
            let c = format!("{kind:?}-{i}").to_lowercase();
            let label = customer(&mut out, &mut rng, &c, kind, begin, end);
            labels.push(label);
        }
    }
    for i in 0..spec.ordinary {
        let c = format!("ordinary-{i}");
        labels.push(customer(&mut out, &mut rng, &c, Kind::Ordinary, begin, end));
    }
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
                }
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
                }
                at = at.plus(rng.i64(3..25) * DAY);
            }
        }
    }
    label
}

/// One rule firing for one customer (a task's signal), as the scorer reads it: from the
/// engine's tasks or from another build's `replay` output.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    pub customer_id: String,
    pub rule: String,
    pub at: Timestamp,
}

/// Every rule firing of `lines` through a fresh engine (one partition, as a customer's events
/// arrive in order), each (customer, rule, time) once, and the engine (its state, to measure).
pub fn firings(rules: &crate::rules::RuleSet, lines: &[String]) -> (Vec<Firing>, crate::engine::Engine) {
    let engine = crate::engine::Engine::new(crate::engine::EngineConfig::default());
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
        assert_eq!(a.labels.len(), 3 * Kind::PRINCIPLES.len() + 5);
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
