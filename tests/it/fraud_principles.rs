//! Fraud principles on streams we did not tune for: populations drawn from a seed by
//! `ingest::variations` (how many attempts, their spacing and amounts, merchants, how reset
//! reasons are spelled, shares of income or of all money received, silences, distances, how
//! late an event arrives), run through the engine with the default rule pack and an allowed
//! lateness of six hours (`variations::LATENESS`), as a property over seeds:
//!
//! - card testing, low and slow (never more than three attempts in ten minutes) or in a burst,
//!   then a large approved purchase: `card_tested_then_used`, at the purchase;
//! - a password reset (however spelled), a new device and most of the last income out to a bank
//!   never paid, within the hour: `takeover_after_credential_change`, at the transfer; the same
//!   reset and new device, then the usual rent to the usual landlord: nobody paged;
//! - weeks of silence, a new device and most of all money ever received out to a new bank:
//!   `dormant_drain`, at the transfer; silence, then ordinary spending: nobody paged;
//! - a card used at home, then at an ATM far away minutes later, the ATM's event delivered hours
//!   late behind the customer's own later payments at home: `impossible_travel`, at the ATM;
//! - app subscriptions billed together each month, all approved: nobody paged;
//! - contacts and a complaint sent again by the producer days later (same ids): nobody paged.
//!
//! Ordinary customers are in the stream (noise, and the clock); the care property
//! (`care_principles`) checks them.

use callahead::ingest::variations::{firings, generate, Firing, Kind, Label, VariationSpec};
use proptest::prelude::*;

use crate::common::rules;

fn population(seed: u64, kinds: &[Kind]) -> (Vec<Label>, Vec<String>, Vec<Firing>) {
    population_of(seed, 6, kinds)
}

fn population_of(seed: u64, per_kind: usize, kinds: &[Kind]) -> (Vec<Label>, Vec<String>, Vec<Firing>) {
    let spec = VariationSpec { seed, per_kind, ordinary: 30, days: 150, kinds: kinds.to_vec() };
    let population = generate(&spec);
    let firings = firings(rules(), &population.lines).0;
    (population.labels, population.lines, firings)
}

/// What went wrong for the customers of `kinds` in the population of `seed` (empty: nothing).
fn problems(seed: u64, kinds: &[Kind]) -> Vec<String> {
    problems_of(population(seed, kinds), seed)
}

fn problems_of((labels, _, firings): (Vec<Label>, Vec<String>, Vec<Firing>), seed: u64) -> Vec<String> {
    let mut problems = Vec::new();
    for label in labels.iter().filter(|l| l.kind.is_fraud()) {
        let theirs: Vec<&Firing> = firings.iter().filter(|f| f.customer_id == label.customer_id).collect();
        let who = format!("seed {seed}: {} ({:?})", label.customer_id, label.kind);
        match label.rule {
            Some(rule) => {
                let expected = label.expected_at.expect("a fraud's moment");
                let first = theirs.iter().filter(|f| f.rule == rule).map(|f| f.at).min();
                match first {
                    None => problems.push(format!("{who} not found by `{rule}`; fired: {theirs:?}")),
                    Some(at) if at != expected => problems.push(format!(
                        "{who} found by `{rule}` at {at}, not at {expected} (the moment it must come at)"
                    )),
                    Some(_) => {}
                }
            }
            None => {
                if !theirs.is_empty() {
                    problems.push(format!("{who} paged: {theirs:?}"));
                }
            }
        }
    }
    problems
}

fn check(seed: u64, kinds: &[Kind]) {
    let problems = problems(seed, kinds);
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

proptest! {
    // A fixed seed for the cases, so CI runs the same populations every time; the detection
    // bench (`benches/detection.rs`) scores three other seeds' larger populations.
    #![proptest_config(ProptestConfig {
        cases: 12,
        rng_seed: proptest::test_runner::RngSeed::Fixed(22),
        ..ProptestConfig::default()
    })]

    #[test]
    fn fraud_principles_hold_on_populations_we_did_not_tune_for(seed in 1u64..1_000_000) {
        check(seed, &Kind::FRAUD);
    }
}

/// The redelivery property can fail: the same contacts and complaint sent again under new ids
/// (a producer that re-keys its resends) count twice, and two complaints within a week are an
/// escalation.
#[test]
fn the_redelivery_property_is_not_vacuous() {
    let (labels, lines, _) = population(7, &[Kind::Redelivered]);
    let mut seen = std::collections::BTreeSet::new();
    let rekeyed: Vec<String> = lines
        .iter()
        .map(|l| {
            if seen.insert(l.clone()) {
                l.clone()
            } else {
                l.replacen(r#""event_id":"v"#, r#""event_id":"again-v"#, 1)
            }
        })
        .collect();
    assert!(rekeyed.len() > seen.len(), "some lines are resent");
    let fired = firings(rules(), &rekeyed).0;
    let redelivered = labels.iter().filter(|l| l.kind == Kind::Redelivered);
    let paged = redelivered
        .filter(|l| fired.iter().any(|f| f.customer_id == l.customer_id && f.rule == "complaint_escalation"))
        .count();
    assert!(paged >= 3, "re-keyed resends count twice: {paged} of 6 escalated");
}

/// Slow testing with small approved probes: the bench's seed 101 drew `slowcardtesting-22`,
/// seven attempts 4 to 90 minutes apart (declined 1.20, 2.17, 1.39; approved 4.26, 4.37, 4.95;
/// declined 2.50), then 663.96 EUR approved. In the six hours before the purchase five attempts
/// remain, two declined: fewer than half declined or tiny, but a third declined, which an
/// ordinary customer's payments are not. It was missed until the detector took a third declined
/// as testing too.
#[test]
fn slow_testing_with_small_approved_probes_is_found() {
    let problems = problems_of(population_of(101, 25, &[Kind::SlowCardTesting]), 101);
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}
