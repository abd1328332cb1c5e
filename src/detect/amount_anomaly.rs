//! Amount anomaly: a card payment far above the customer's *own* normal.
//!
//! The baseline is robust (median and median absolute deviation of recent approved payments),
//! so one earlier outlier does not blind it, and it is the customer's own: for a customer whose
//! large purchases are ordinary, a large purchase is not paged. Without enough history the
//! detector stays silent rather than page on a global threshold.

use serde::Deserialize;

use super::{DetectInput, Evidence, Fact, Signal};
use crate::event::EventBody;
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
}

impl Default for Params {
    fn default() -> Self {
        Params { min_history: 8, mad_factor: 8.0, median_factor: 6.0, min_amount_eur: 250.0 }
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
