//! Amount anomaly: a card payment far above the customer's *own* normal.
//!
//! The baseline is robust (median and median absolute deviation of recent approved payments),
//! so one earlier outlier does not blind it, and it is the customer's own: for a customer whose
//! large purchases are ordinary, a large purchase is not paged. Without enough history the
//! detector stays silent rather than page on a global threshold.
//!
//! A customer's normal is longer than their last few payments: a payment above the recent
//! baseline is still normal when it is within the customer's pattern of large payments of the
//! last four months (`state::SpendPeaks`: at least `min_peak_periods` fortnights with a payment
//! no smaller than it divided by `peak_headroom`), or when it repeats a recurring payment
//! (`state::flows`: the same merchant, or cash, about the same amount, a fortnight or a month on)
//! from its second occurrence. A large payment an agent confirmed as fraud is forgotten by both
//! (`engine::learn`), so it never makes the next one normal.

use serde::Deserialize;

use super::{DetectInput, Evidence, Fact, Signal};
use crate::event::EventBody;
use crate::state::flows::{self, FlowKind};
use crate::vocab::Type;

/// Parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Approved payments needed before the baseline is trusted.
    pub min_history: usize,
    /// The amount must exceed the median by this many (robust) standard deviations…
    pub mad_factor: f64,
    /// …and be at least this many times the median…
    pub median_factor: f64,
    /// …and at least this many euros.
    pub min_amount_eur: f64,
    /// Fortnights of the last four months with a payment about as large (see `peak_headroom`)
    /// that make a large payment part of the customer's pattern (0 turns the long memory off).
    pub min_peak_periods: usize,
    /// How far above an earlier large payment a payment may be and still be in the pattern.
    pub peak_headroom: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            min_history: 8,
            mad_factor: 8.0,
            median_factor: 6.0,
            min_amount_eur: 250.0,
            min_peak_periods: 1,
            peak_headroom: 1.5,
        }
    }
}

/// Facts of an amount-anomaly signal.
pub const FACTS: &[(&str, Type)] = &[
    ("amount_eur", Type::Num),
    ("median_eur", Type::Num),
    ("p90_eur", Type::Num),
    ("ratio", Type::Num),
    ("history", Type::Num),
];

/// Compares a card payment with the customer's spending baseline.
pub fn detect(input: &DetectInput<'_>, p: &Params) -> Option<Signal> {
    let event = input.event?;
    let EventBody::CardTransaction(t) = &event.body else { return None };
    let amount = t.money.to_eur()?;
    if amount <= p.min_amount_eur {
        return None; // most payments: no need for the baseline's statistics
    }
    let stats = input.state.spend.stats()?;
    if stats.samples < p.min_history {
        return None;
    }
    // A customer who always pays the same has a MAD near zero: floor the spread.
    let spread = stats.mad.max(0.25 * stats.median).max(1.0);
    let threshold =
        (stats.median + p.mad_factor * spread).max(stats.median * p.median_factor).max(p.min_amount_eur);
    if amount <= threshold {
        return None;
    }
    // A payment the customer confirmed as theirs is part of their normal (feedback loop).
    let confirmed = input.state.learned.as_deref().map_or(0.0, |l| f64::from(l.confirmed_spend_eur));
    if amount <= confirmed * 1.25 {
        return None;
    }
    // The customer's longer normal: their pattern of large payments, and recurring payments.
    let state = input.state;
    if state.peaks.is_usual(amount, event.ts, p.min_peak_periods, p.peak_headroom) {
        return None;
    }
    let key = flows::party_key(flows::card_party(t));
    if state.flows.iter().any(|f| f.kind == FlowKind::Card && f.continued_by(key, amount, event.ts)) {
        return None;
    }
    let mut facts = vec![
        ("amount_eur", Fact::Num(amount.round())),
        ("median_eur", Fact::Num(stats.median.round())),
        ("p90_eur", Fact::Num(stats.p90.round())),
        ("ratio", Fact::Num((amount / stats.median.max(1.0) * 10.0).round() / 10.0)),
        ("history", Fact::Num(stats.samples as f64)),
    ];
    super::event_facts(event, &mut facts);
    Some(Signal {
        at: event.ts,
        facts,
        evidence: vec![Evidence::from_event(event)],
        money_at_risk_eur: amount,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testkit::{card, state_after};
    use crate::event::Event;

    fn history(amount: f64, n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| {
                let ts = format!("2026-11-{:02}T12:00:00Z", 1 + i % 20);
                card(
                    &format!("h{i}"),
                    &ts,
                    "k",
                    "contactless",
                    amount + (i % 5) as f64,
                    "Paris",
                    "FR",
                    48.85,
                    2.35,
                )
            })
            .collect()
    }

    fn run(history: &[Event], amount: f64) -> Option<Signal> {
        let state = state_after(history);
        let now = card("x", "2026-11-24T12:00:00Z", "k", "ecommerce", amount, "Paris", "FR", 48.85, 2.35);
        detect(&DetectInput { event: Some(&now), state: &state, now: now.ts }, &Params::default())
    }

    #[test]
    fn quiet_spender_big_purchase_is_anomalous() {
        let s = run(&history(20.0, 12), 1500.0).expect("anomaly");
        assert!(s.num("ratio").unwrap() > 50.0);
        assert_eq!(s.num("amount_eur"), Some(1500.0));
    }

    #[test]
    fn big_spender_big_purchase_is_normal() {
        assert!(run(&history(1200.0, 12), 1500.0).is_none());
    }

    /// A daily spender who buys something large every two weeks or so: after two of them, the
    /// next one no larger is normal, though the recent amounts hold only small payments.
    #[test]
    fn a_large_purchase_every_fortnight_is_the_customers_normal() {
        let mut events = Vec::new();
        let start = crate::time::Timestamp::parse_rfc3339("2026-08-01T12:00:00Z").unwrap();
        for d in 0..60 {
            let ts = start.plus(d * crate::time::DAY);
            events.push(card(
                &format!("d{d}"),
                &ts.to_string(),
                "k",
                "contactless",
                18.0,
                "Paris",
                "FR",
                48.85,
                2.35,
            ));
            if d % 15 == 3 {
                let amount = [700.0, 950.0, 820.0, 640.0][(d / 15) as usize];
                events.push(card(
                    &format!("b{d}"),
                    &ts.to_string(),
                    "k",
                    "ecommerce",
                    amount,
                    "Paris",
                    "FR",
                    48.85,
                    2.35,
                ));
            }
        }
        let state = state_after(&events);
        let at = start.plus(62 * crate::time::DAY).to_string();
        let next = card("x", &at, "k", "ecommerce", 900.0, "Paris", "FR", 48.85, 2.35);
        let input = DetectInput { event: Some(&next), state: &state, now: next.ts };
        assert!(detect(&input, &Params::default()).is_none(), "no larger than the earlier ones");
        let much_more = card("y", &at, "k", "ecommerce", 3000.0, "Paris", "FR", 48.85, 2.35);
        let input = DetectInput { event: Some(&much_more), state: &state, now: much_more.ts };
        assert!(detect(&input, &Params::default()).is_some(), "three times the largest is not");
    }

    /// A payment to the same merchant, about the same amount, a month after the first, is the
    /// customer's pattern from its second occurrence (a care home paid by card).
    #[test]
    fn a_recurring_payment_is_normal_from_its_second_occurrence() {
        let mut events = history(20.0, 12);
        events.push(card("r1", "2026-10-25T09:00:00Z", "k", "ecommerce", 1400.0, "Lyon", "FR", 45.76, 4.83));
        let state = state_after(&events);
        let again = card("r2", "2026-11-24T09:00:00Z", "k", "ecommerce", 1420.0, "Lyon", "FR", 45.76, 4.83);
        let input = DetectInput { event: Some(&again), state: &state, now: again.ts };
        assert!(detect(&input, &Params::default()).is_none());
        // The recurrence alone (the long memory off): another merchant is not the same payment.
        let no_peaks = Params { min_peak_periods: 0, ..Params::default() };
        let input = DetectInput { event: Some(&again), state: &state, now: again.ts };
        assert!(detect(&input, &no_peaks).is_none());
        let elsewhere =
            card("r3", "2026-11-24T09:00:00Z", "k", "ecommerce", 1420.0, "Nice", "FR", 43.7, 7.26);
        let input = DetectInput { event: Some(&elsewhere), state: &state, now: elsewhere.ts };
        assert!(detect(&input, &no_peaks).is_some(), "another merchant: the first of its kind");
    }

    #[test]
    fn new_customer_is_not_paged() {
        assert!(run(&history(20.0, 3), 5000.0).is_none());
    }

    #[test]
    fn small_absolute_amounts_are_not_paged() {
        // 10x a tiny median is still small money.
        assert!(run(&history(2.0, 12), 60.0).is_none());
    }
}
