//! Care principles on streams we did not tune for: populations drawn from a seed by
//! `ingest::variations` (cadences, payday jitter, how many payments, amounts, payer spellings,
//! code spellings, spacing, burst sizes, offsets), run through the engine with the default rule
//! pack, as a property over seeds:
//!
//! - every recurring income that stops (with the card going quiet, or money moved to the
//!   customer's own account elsewhere) is found, within its cadence plus its tolerance plus a
//!   bounded delay (the card's quiet period where that is the sign, a day of re-evaluation, and
//!   the gap until the partition's time moves on), and never before the payment was due;
//! - a raise, a new employer or a steady income never pages anyone;
//! - every spelling of a code counts as one (three unresolved contacts are a repeat; a complaint
//!   in a resolved category recurs), and a resolution in between breaks the repeat;
//! - a customer's usual large purchases, a bill by card each month and cash on payday never page,
//!   while a quiet customer's first-ever large purchase does.

use callahead::event::decode;
use callahead::ingest::variations::{firings, generate, score, Firing, Kind, Label, VariationSpec};
use callahead::state::flows::slack;
use callahead::time::{Timestamp, DAY, HOUR};
use proptest::prelude::*;

use crate::common::rules;

/// Every rule firing of the population's stream through one engine.
fn run(lines: &[String]) -> Vec<Firing> {
    firings(rules(), lines).0
}

/// The latest a stopped income may be found: its expected date plus its tolerance (or, where
/// the sign is the card going quiet, a week of quiet after the card stopped), plus a day of
/// re-evaluation and two hours for the partition's time to move on.
fn deadline(label: &Label) -> Timestamp {
    let expected = label.expected_at.expect("a stopped income has an expected date");
    let period = (label.cadence_days.expect("and a cadence") * DAY as f64) as i64;
    let mut due = expected.plus(slack(period));
    if let Some(stop) = label.card_stopped_at {
        due = due.max(stop.plus(7 * DAY));
    }
    due.plus(DAY + 2 * HOUR)
}

/// The oracle for an ordinary customer's random transfers: three incoming ones in a row, each
/// within 15% of the others, at gaps that each fit one cadence (weekly, fortnightly, monthly).
fn has_rhythm(lines: &[String], customer: &str) -> bool {
    let incoming: Vec<(Timestamp, f64)> = lines
        .iter()
        .filter(|l| {
            l.contains(&format!(r#""customer_id":"{customer}""#)) && l.contains(r#""direction":"in""#)
        })
        .map(|l| {
            let e = decode(l.as_bytes()).unwrap();
            let callahead::event::EventBody::Transfer(t) = &e.body else { unreachable!() };
            (e.ts, t.money.amount)
        })
        .collect();
    incoming.windows(3).any(|w| {
        let (lo, hi) = w.iter().fold((f64::MAX, 0f64), |(lo, hi), (_, a)| (lo.min(*a), hi.max(*a)));
        let gaps: Vec<f64> = w.windows(2).map(|p| p[1].0.millis_since(p[0].0) as f64 / DAY as f64).collect();
        let band = |g: f64| {
            callahead::state::flows::CADENCES.iter().position(|(_, lo, hi)| (*lo..=*hi).contains(&g))
        };
        hi <= 1.15 * lo && band(gaps[0]).is_some() && band(gaps[0]) == band(gaps[1])
    })
}

fn check(seed: u64) {
    let population = generate(&VariationSpec {
        seed,
        per_kind: 8,
        ordinary: 40,
        days: 150,
        kinds: Kind::PRINCIPLES.to_vec(),
    });
    let firings = run(&population.lines);
    let of = |customer: &str| firings.iter().filter(|f| f.customer_id == customer).collect::<Vec<_>>();
    for label in &population.labels {
        let theirs = of(&label.customer_id);
        match label.rule {
            Some(rule) => {
                let found = theirs.iter().find(|f| f.rule == rule);
                let found = found.unwrap_or_else(|| {
                    panic!(
                        "seed {seed}: {} ({:?}) not found by `{rule}`; fired: {theirs:?}",
                        label.customer_id, label.kind
                    )
                });
                if rule == "income_stopped" {
                    let expected = label.expected_at.unwrap();
                    assert!(
                        found.at > expected,
                        "seed {seed}: {} found before the payment was due",
                        label.customer_id
                    );
                    assert!(
                        found.at <= deadline(label),
                        "seed {seed}: {} ({:?}, every {} days) found {:.1} days after the expected date, bound {:.1}",
                        label.customer_id,
                        label.kind,
                        label.cadence_days.unwrap(),
                        found.at.millis_since(expected) as f64 / DAY as f64,
                        deadline(label).millis_since(expected) as f64 / DAY as f64
                    );
                }
            }
            None => {
                let paged: Vec<_> = theirs
                    .iter()
                    .filter(|f| label.quiet_from.is_none_or(|from| f.at >= from))
                    // Random transfers that happen to form a real rhythm are a real pattern.
                    .filter(|f| {
                        !(label.kind == Kind::Ordinary
                            && f.rule == "income_stopped"
                            && has_rhythm(&population.lines, &label.customer_id))
                    })
                    .collect();
                assert!(
                    paged.is_empty(),
                    "seed {seed}: {} ({:?}) paged: {paged:?}",
                    label.customer_id,
                    label.kind
                )
            }
        }
    }
    // The scorer agrees with the checks above.
    for s in score(&population.labels, &firings) {
        assert_eq!(s.found, s.expected, "{s:?}");
        // Ordinary customers' pages were checked against the oracle above.
        assert!(s.false_positives.iter().all(|(kind, _)| *kind == Kind::Ordinary), "{s:?}");
    }
}

proptest! {
    // A fixed seed for the cases, so CI runs the same populations every time; the detection
    // bench (`benches/detection.rs`) scores three other seeds' larger populations.
    #![proptest_config(ProptestConfig {
        cases: 16,
        rng_seed: proptest::test_runner::RngSeed::Fixed(21),
        ..ProptestConfig::default()
    })]

    #[test]
    fn care_principles_hold_on_populations_we_did_not_tune_for(seed in 1u64..1_000_000) {
        check(seed);
    }
}

/// The property can fail: with the codes compared as written (each spelling its own code), the
/// spelled-many-ways repeat contacts are not all found.
#[test]
fn the_spelling_property_is_not_vacuous() {
    let population = generate(&VariationSpec {
        seed: 5,
        per_kind: 8,
        ordinary: 0,
        days: 150,
        kinds: Kind::PRINCIPLES.to_vec(),
    });
    let spelled: Vec<&Label> =
        population.labels.iter().filter(|l| l.kind == Kind::ContactsSpelledManyWays).collect();
    let distinct_as_written = spelled
        .iter()
        .filter(|l| {
            let mut reasons: Vec<String> = population
                .lines
                .iter()
                .filter(|line| line.contains(&format!(r#""customer_id":"{}""#, l.customer_id)))
                .filter(|line| line.contains("support_contact"))
                .map(|line| {
                    line.split(r#""reason":""#).nth(1).unwrap().split('"').next().unwrap().to_string()
                })
                .collect();
            reasons.sort();
            reasons.dedup();
            reasons.len() > 1
        })
        .count();
    assert!(distinct_as_written >= spelled.len() / 2, "most customers' contacts are spelled in several ways");
}
