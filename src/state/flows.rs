//! Recurring flows learned per customer: income that arrives (a salary, a pension), payments
//! that leave (rent, a loan), and regular card payments (school fees, a care home, cash on
//! payday), each learned from the events themselves, since no producer says what a transfer is.
//!
//! A flow is one counterparty (a bank for transfers, a merchant for card payments, "ATM" for
//! cash), about one amount, at about one cadence (weekly, fortnightly or monthly). It is learned
//! from as few as two occurrences: the first is kept as a *candidate*; a second from the same
//! counterparty, within [`AMOUNT_TOLERANCE`] of its amount, after a gap that fits a cadence,
//! makes it a flow. From then on:
//! - an occurrence on time (within [`slack`] of the expected date) continues it, whatever its
//!   amount within [`RAISE`] (a raise, a new rent); one of about the same amount continues it
//!   late too (up to a period after the expected date) or after missed cycles;
//! - an occurrence from *another* counterparty when the next is due (within twice the slack), about the same amount ([`TAKEOVER_TOLERANCE`]), takes it over (a new employer, a
//!   new landlord): not a stop;
//! - an occurrence that never comes is what the `income_stopped` detector looks for, by timer.
//!
//! Bounded: at most [`MAX_FLOWS_PER_KIND`] flows and candidates per kind (a new candidate
//! replaces the oldest candidate, never a flow still alive), 32 bytes each, allocated on the
//! first transfer or large card payment. Late and redelivered occurrences never move a flow
//! backwards or count twice in one cycle. Pure: no I/O, no clock.

use serde::{Deserialize, Serialize};

use super::sparse::{SparseList, Text};
use super::Interner;
use crate::time::{Timestamp, DAY};

/// Flows and candidates kept per kind.
pub const MAX_FLOWS_PER_KIND: usize = 3;
/// Two occurrences belong to one flow if the larger is at most this much above the smaller
/// (as a fraction: 0.15 is 15%).
pub const AMOUNT_TOLERANCE: f64 = 0.15;
/// An occurrence on time from the same counterparty continues the flow within this ratio of
/// its amount either way (a raise, a cut, a rent review).
pub const RAISE: f64 = 1.5;
/// An occurrence on time from another counterparty takes a flow over within this fraction of
/// its amount (a new employer paying about the same).
pub const TAKEOVER_TOLERANCE: f64 = 0.35;
/// Card payments below this many euros are not tracked as flows (daily spending is not a
/// pattern worth remembering by merchant; the amount baseline covers it)…
pub const CARD_FLOW_MIN_EUR: f64 = 50.0;
/// …nor those below this many times the customer's median payment (their everyday spending
/// would push the bills out of the few slots).
pub const CARD_FLOW_MEDIANS: f64 = 4.0;
/// The counterparty of every cash withdrawal: which machine is used varies, the habit does not.
pub const ATM: &str = "ATM";

/// The counterparty of a card payment's flow: its merchant, or [`ATM`] for any cash machine.
/// What the state records and what the amount anomaly looks up must agree, so both call this.
pub fn card_party(t: &crate::event::CardTransaction) -> &str {
    if t.channel == crate::event::CardChannel::Atm {
        ATM
    } else {
        &t.merchant_name
    }
}

/// The cadences a flow may have: (nominal period in days, shortest and longest gap that counts
/// as that cadence between two occurrences).
pub const CADENCES: [(f64, f64, f64); 3] = [(7.0, 5.0, 9.5), (14.0, 11.5, 17.5), (30.44, 25.0, 36.0)];

/// Which way a flow goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowKind {
    /// An incoming transfer (salary, pension, benefit).
    Income,
    /// An outgoing transfer (rent, a loan, savings elsewhere).
    Payment,
    /// An approved card payment or cash withdrawal of at least [`CARD_FLOW_MIN_EUR`] and
    /// [`CARD_FLOW_MEDIANS`] times the customer's median payment.
    Card,
}

/// One recurring flow, or a candidate seen once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    /// The latest occurrence.
    pub last_at: Timestamp,
    /// The counterparty as first written (shared through the interner).
    pub party: Text,
    /// The latest occurrence's amount, in euros.
    pub amount_eur: f32,
    /// The cadence in days (one of [`CADENCES`]' nominal periods); 0 for a candidate.
    pub period_days: f32,
    /// [`party_key`] of the counterparty.
    pub key: u32,
    /// Occurrences on the rhythm (saturating): the first two, then each on time (a late one keeps
    /// the flow alive but is no evidence of its rhythm).
    pub count: u16,
    pub kind: FlowKind,
}

impl Flow {
    /// True once seen twice at a cadence (a candidate is not a flow yet).
    pub fn is_established(&self) -> bool {
        self.period_days > 0.0
    }

    /// The cadence in milliseconds (0 for a candidate).
    pub fn period(&self) -> i64 {
        (f64::from(self.period_days) * DAY as f64) as i64
    }

    /// When the next occurrence is expected (a candidate: never).
    pub fn expected(&self) -> Option<Timestamp> {
        self.is_established().then(|| self.last_at.plus(self.period()))
    }

    /// The day of the month (UTC) of its latest occurrence: "about the 25th".
    pub fn day_of_month(&self) -> u8 {
        time::OffsetDateTime::from_unix_timestamp(self.last_at.0.div_euclid(1000)).map_or(0, |t| t.day())
    }

    /// True if an occurrence at `at` of `amount_eur` from `key` would continue this flow: the
    /// same counterparty and kind, on time, the amount within [`RAISE`]; or, for a candidate,
    /// within [`AMOUNT_TOLERANCE`] after a gap that fits a cadence.
    pub fn continued_by(&self, key: u32, amount_eur: f64, at: Timestamp) -> bool {
        if key != self.key {
            return false;
        }
        match self.expected() {
            Some(expected) => {
                on_time(at, expected, self.period()) && within_ratio(amount_eur, self.amount_eur, RAISE)
            }
            // A card payment's second occurrence makes a pattern only a fortnight or a month on
            // (bills): two large payments at one shop a few days apart may be fraud repeating.
            None => {
                let cadence = cadence_of(at.millis_since(self.last_at).abs());
                within_ratio(amount_eur, self.amount_eur, 1.0 + AMOUNT_TOLERANCE)
                    && cadence.is_some_and(|days| self.kind != FlowKind::Card || days >= CADENCES[1].0)
            }
        }
    }
}

/// How far from its expected date an occurrence still counts as on time: a quarter of the
/// period, and at least three days (weekends and bank holidays move paydays).
pub fn slack(period: i64) -> i64 {
    (period / 4).max(3 * DAY)
}

fn on_time(at: Timestamp, expected: Timestamp, period: i64) -> bool {
    at.millis_since(expected).abs() <= slack(period)
}

/// True if `a` and `b` are within `ratio` of each other (both positive).
fn within_ratio(a: f64, b: f32, ratio: f64) -> bool {
    let b = f64::from(b);
    a > 0.0 && b > 0.0 && a.max(b) <= ratio * a.min(b)
}

/// The nominal period in days of the cadence a gap between two occurrences fits, if any.
pub fn cadence_of(gap: i64) -> Option<f64> {
    let days = gap as f64 / DAY as f64;
    CADENCES.iter().find(|(_, lo, hi)| (*lo..=*hi).contains(&days)).map(|(nominal, ..)| *nominal)
}

/// The key a counterparty is matched by: its normal form (`crate::codes`), hashed to 32 bits
/// (a clash between two of one customer's few counterparties is negligible and harmless).
pub fn party_key(party: &str) -> u32 {
    (super::hash_text(&crate::codes::normalize(party)) >> 32) as u32
}

/// Every flow of one customer (allocated on the first occurrence).
pub type Flows = SparseList<Flow>;

/// Records one occurrence of a flow of `kind`: continues a flow, establishes a candidate,
/// takes a flow over for a new counterparty, or starts a candidate (see the module doc).
pub fn observe(
    flows: &mut Flows,
    kind: FlowKind,
    party: &str,
    amount_eur: f64,
    at: Timestamp,
    interner: &Interner,
) {
    if !(amount_eur.is_finite() && amount_eur > 0.0) {
        return;
    }
    let key = party_key(party);
    // The same counterparty: a flow on time, a redelivery or late occurrence of this cycle, an
    // extra payment mid-cycle, or a resumption after missed cycles.
    for f in flows.iter_mut().filter(|f| f.kind == kind && f.key == key && f.is_established()) {
        if !within_ratio(amount_eur, f.amount_eur, RAISE) {
            continue; // a different flow of the same counterparty (a bonus, a refund)
        }
        let period = f.period();
        let expected = f.last_at.plus(period);
        if at <= f.last_at.plus(slack(period)) && at.millis_since(f.last_at) > -period + slack(period) {
            return; // this cycle's occurrence again (late, redelivered, or split): counted once
        }
        if at < f.last_at {
            return; // an older cycle's, arriving late: the flow is already past it
        }
        let same_amount = within_ratio(amount_eur, f.amount_eur, 1.0 + AMOUNT_TOLERANCE);
        if on_time(at, expected, period)
            || (same_amount && (in_next_cycle(at, expected, period) || resumes(at, f.last_at, period)))
        {
            // On time (a new amount too: a raise), or about the same amount late (a payday
            // missed by days is still this flow) or after missed cycles. Only an occurrence on
            // time is evidence of the rhythm: `count` counts those.
            if on_time(at, expected, period) {
                f.count = f.count.saturating_add(1);
            }
            f.last_at = at;
            f.amount_eur = amount_eur as f32;
        } else if at > expected {
            // Neither in its next cycle nor on the rhythm: the old flow ended; this starts anew.
            f.last_at = at;
            f.amount_eur = amount_eur as f32;
            f.period_days = 0.0;
            f.count = 1;
        }
        return; // early: an extra payment inside the cycle, not the flow's
    }
    // A candidate of the same counterparty and amount.
    for f in flows.iter_mut().filter(|f| f.kind == kind && f.key == key && !f.is_established()) {
        if !within_ratio(amount_eur, f.amount_eur, 1.0 + AMOUNT_TOLERANCE) {
            continue;
        }
        let gap = at.millis_since(f.last_at).abs();
        match cadence_of(gap) {
            Some(nominal) => {
                f.period_days = nominal as f32;
                f.count = 2;
                if at > f.last_at {
                    f.last_at = at;
                    f.amount_eur = amount_eur as f32;
                }
            }
            // Closer than any cadence: the same occurrence split, or a burst; keep the newest.
            None if gap < (CADENCES[0].1 * DAY as f64) as i64 => {
                if at > f.last_at {
                    f.last_at = at;
                }
            }
            // Irregular or too far apart: start again from the newer.
            None => {
                if at > f.last_at {
                    f.last_at = at;
                    f.amount_eur = amount_eur as f32;
                }
            }
        }
        return;
    }
    // Another counterparty, on time for a flow of about the same amount: it takes it over.
    if kind != FlowKind::Card {
        let due =
            flows.iter_mut().filter(|f| f.kind == kind && f.key != key && f.is_established()).find(|f| {
                f.expected().is_some_and(|e| takes_over(at, e, f.period()))
                    && within_ratio(amount_eur, f.amount_eur, 1.0 + TAKEOVER_TOLERANCE)
            });
        if let Some(f) = due {
            f.key = key;
            f.party = interner.intern(party);
            f.last_at = at;
            f.amount_eur = amount_eur as f32;
            f.count = f.count.saturating_add(1);
            return;
        }
    }
    // A new candidate, in place of the oldest candidate (or a long-dead flow) when full.
    let of_kind = flows.iter().filter(|f| f.kind == kind).count();
    if of_kind >= MAX_FLOWS_PER_KIND {
        let victim = flows
            .iter()
            .enumerate()
            .filter(|(_, f)| f.kind == kind)
            .filter(|(_, f)| !f.is_established() || is_dead(f, at))
            .min_by_key(|(_, f)| (f.is_established(), f.last_at))
            .map(|(i, _)| i);
        match victim {
            Some(i) => {
                flows.remove(i);
            }
            None => return, // every slot holds a living flow
        }
    }
    flows.push(Flow {
        last_at: at,
        party: interner.intern(party),
        amount_eur: amount_eur as f32,
        period_days: 0.0,
        key,
        count: 1,
        kind,
    });
}

/// True if another counterparty's payment at `at` comes when the flow's next is due: within
/// twice the [`slack`] of the expected date (a new employer's payday may differ by days).
fn takes_over(at: Timestamp, expected: Timestamp, period: i64) -> bool {
    at.millis_since(expected).abs() <= 2 * slack(period)
}

/// True if `at` is the flow's next occurrence: from [`slack`] before its expected date until
/// one more period after it (a payday missed by days, even weeks, is late, not a new flow).
fn in_next_cycle(at: Timestamp, expected: Timestamp, period: i64) -> bool {
    at >= expected.plus(-slack(period)) && at < expected.plus(period)
}

/// True if `at` falls on the flow's rhythm after missed cycles (a payment resumed).
fn resumes(at: Timestamp, last: Timestamp, period: i64) -> bool {
    let gap = at.millis_since(last);
    let cycles = (gap as f64 / period as f64).round() as i64;
    cycles >= 2 && (gap - cycles * period).abs() <= slack(period)
}

/// A flow that missed three cycles: a candidate may take its slot.
fn is_dead(f: &Flow, at: Timestamp) -> bool {
    f.expected().is_some_and(|e| at.millis_since(e) > 2 * f.period() + slack(f.period()))
}

/// The established flows of `kind`.
pub fn established(flows: &Flows, kind: FlowKind) -> impl Iterator<Item = &Flow> + '_ {
    flows.iter().filter(move |f| f.kind == kind && f.is_established())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: i64) -> Timestamp {
        Timestamp(1_780_000_000_000).plus(n * DAY)
    }

    fn run(items: &[(FlowKind, &str, f64, i64)]) -> Flows {
        let interner = Interner::default();
        let mut flows = Flows::default();
        for &(kind, party, amount, d) in items {
            observe(&mut flows, kind, party, amount, day(d), &interner);
        }
        flows
    }

    #[test]
    fn a_flow_takes_32_bytes() {
        assert_eq!(size_of::<Flow>(), 32, "docs/detectors.md states it");
    }

    #[test]
    fn two_occurrences_a_month_apart_make_a_monthly_flow() {
        let f = run(&[
            (FlowKind::Income, "ACME Payroll", 2500.0, 0),
            (FlowKind::Income, "acme payroll", 2510.0, 31),
        ]);
        let flow = established(&f, FlowKind::Income).next().expect("a flow");
        assert_eq!((flow.period_days, flow.count, flow.last_at), (30.44, 2, day(31)));
        assert_eq!(&*flow.party, "ACME Payroll");
    }

    #[test]
    fn cadences_weekly_and_fortnightly() {
        let f = run(&[(FlowKind::Income, "Gig", 300.0, 0), (FlowKind::Income, "Gig", 290.0, 7)]);
        assert_eq!(established(&f, FlowKind::Income).next().unwrap().period_days, 7.0);
        let f = run(&[(FlowKind::Payment, "Landlord", 900.0, 0), (FlowKind::Payment, "Landlord", 900.0, 14)]);
        assert_eq!(established(&f, FlowKind::Payment).next().unwrap().period_days, 14.0);
    }

    #[test]
    fn irregular_gaps_and_different_amounts_are_not_flows() {
        let f = run(&[(FlowKind::Income, "A", 100.0, 0), (FlowKind::Income, "A", 100.0, 21)]);
        assert_eq!(established(&f, FlowKind::Income).count(), 0, "three weeks is no cadence");
        let f = run(&[(FlowKind::Income, "A", 100.0, 0), (FlowKind::Income, "A", 300.0, 30)]);
        assert_eq!(established(&f, FlowKind::Income).count(), 0, "three times the amount");
    }

    #[test]
    fn a_raise_continues_and_a_new_employer_takes_over() {
        let mut items =
            vec![(FlowKind::Income, "Old Co", 2000.0, 0), (FlowKind::Income, "Old Co", 2000.0, 30)];
        items.push((FlowKind::Income, "Old Co", 2600.0, 61)); // a 30% raise
        items.push((FlowKind::Income, "New Co", 2300.0, 92)); // a new employer, on time
        let f = run(&items);
        let flow = established(&f, FlowKind::Income).next().unwrap();
        assert_eq!((&*flow.party, flow.count, flow.last_at, flow.amount_eur), ("New Co", 4, day(92), 2300.0));
    }

    #[test]
    fn late_and_redelivered_occurrences_count_once() {
        let f = run(&[
            (FlowKind::Income, "P", 1000.0, 0),
            (FlowKind::Income, "P", 1000.0, 30),
            (FlowKind::Income, "P", 1000.0, 30), // redelivered
            (FlowKind::Income, "P", 1000.0, 0),  // the first again, late
        ]);
        let flow = established(&f, FlowKind::Income).next().unwrap();
        assert_eq!((flow.count, flow.last_at), (2, day(30)));
    }

    #[test]
    fn memory_is_bounded_and_flows_outlive_one_off_candidates() {
        let mut items =
            vec![(FlowKind::Income, "Salary", 3000.0, 0), (FlowKind::Income, "Salary", 3000.0, 30)];
        for i in 0..40 {
            items.push((
                FlowKind::Income,
                ["a", "b", "c", "d", "e"][i % 5],
                10.0 + i as f64 * 37.0,
                31 + i as i64,
            ));
        }
        let f = run(&items);
        assert!(f.iter().filter(|x| x.kind == FlowKind::Income).count() <= MAX_FLOWS_PER_KIND);
        assert!(established(&f, FlowKind::Income).any(|x| &*x.party == "Salary"));
    }

    #[test]
    fn continued_by_tells_the_second_occurrence_of_a_pattern() {
        let f = run(&[(FlowKind::Card, "Care Home", 1400.0, 0)]);
        let key = party_key("CARE HOME");
        assert!(f[0].continued_by(key, 1400.0, day(30)), "a candidate, a month later");
        assert!(!f[0].continued_by(key, 1400.0, day(20)));
        assert!(!f[0].continued_by(party_key("Other"), 1400.0, day(30)));
        let f = run(&[(FlowKind::Card, "Care Home", 1400.0, 0), (FlowKind::Card, "Care Home", 1400.0, 30)]);
        assert!(f[0].continued_by(key, 1500.0, day(61)), "an established flow, on time");
        assert!(!f[0].continued_by(key, 1500.0, day(45)), "not on time");
    }
}
