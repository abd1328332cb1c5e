//! Card testing, as fraud analysts define it: many small attempts on one card without the card
//! present, mostly declined or tiny, over minutes to hours: a burst, or low and slow (a few an
//! hour, never many in ten minutes), the way stolen card numbers are checked before a large
//! purchase. Scored over a sliding window of the card's last attempts (`window`, hours by
//! default) rather than a count in a fixed few minutes.
//!
//! Testing declines: approved small payments alone (five app subscriptions billed the same
//! morning, a customer's known subscriptions) are not testing; at least `min_declined` attempts
//! must be declined, and declined or tiny ones at least half, or declined ones at least a third
//! (a tester probing with small approved amounts). When the large approved
//! purchase that testing prepares follows within the window, the signal says so
//! (`purchase_eur`), so a rule can raise it to priority 1.

use serde::Deserialize;

use super::{busiest_window_containing, masked_card, DetectInput, Evidence, Fact, Signal};
use crate::event::EventBody;
use crate::state::CnpAttempt;
use crate::time::{Span, Timestamp, HOUR, MINUTE};
use crate::vocab::Type;

/// Parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Sliding window the attempts fall in.
    pub window: Span,
    /// Attempts (small or declined) in the window that make testing.
    pub min_attempts: usize,
    /// Of which at least this many declined.
    pub min_declined: usize,
    /// An approved attempt at most this many euros counts as "small".
    pub small_amount_eur: f64,
    /// An approved attempt at most this many euros is "tiny" (a card tester's amount).
    pub tiny_amount_eur: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            window: Span(6 * HOUR),
            min_attempts: 4,
            min_declined: 1,
            small_amount_eur: 5.0,
            tiny_amount_eur: 2.0,
        }
    }
}

/// Facts of a card-testing signal (`purchase_eur` is 0 unless a large approved purchase
/// followed the attempts).
pub const FACTS: &[(&str, Type)] = &[
    ("card", Type::Str),
    ("attempts", Type::Num),
    ("declined", Type::Num),
    ("window_minutes", Type::Num),
    ("span_minutes", Type::Num),
    ("purchase_eur", Type::Num),
];

/// The suspicious attempts of the busiest window around `at`: (those attempts, declined, declined
/// or tiny, first, last).
fn window_of(
    attempts: &[CnpAttempt],
    at: Timestamp,
    p: &Params,
) -> Option<(Vec<CnpAttempt>, usize, usize, Timestamp, Timestamp)> {
    let suspicious: Vec<&CnpAttempt> =
        attempts.iter().filter(|a| a.declined || f64::from(a.amount_eur) <= p.small_amount_eur).collect();
    let times: Vec<Timestamp> = suspicious.iter().map(|a| a.at).chain(std::iter::once(at)).collect();
    let (_, end) = busiest_window_containing(&times, at, p.window.0);
    let inside: Vec<&&CnpAttempt> =
        suspicious.iter().filter(|a| a.at <= end && end.millis_since(a.at) <= p.window.0).collect();
    let declined = inside.iter().filter(|a| a.declined).count();
    let tiny = inside.iter().filter(|a| a.declined || f64::from(a.amount_eur) <= p.tiny_amount_eur).count();
    let first = inside.iter().map(|a| a.at).min()?;
    let last = inside.iter().map(|a| a.at).max()?;
    Some((inside.into_iter().map(|a| **a).collect(), declined, tiny, first, last))
}

/// Scores the card's card-not-present attempts around the event (state includes the event).
pub fn detect(input: &DetectInput<'_>, p: &Params) -> Option<Signal> {
    let event = input.event?;
    let EventBody::CardTransaction(t) = &event.body else { return None };
    if t.channel.is_physical() {
        return None;
    }
    let card = input.state.card(&t.card_id)?;
    let amount = t.money.to_eur().unwrap_or(f64::MAX);
    // A large approved purchase: was the card tested in the window before it?
    let purchase = t.approved && amount > p.small_amount_eur;
    // Most online payments are on a card with too few suspicious attempts around them to be
    // testing: told without allocating (a window holds only attempts within its length of the
    // event, before it for a purchase).
    let near = card
        .cnp
        .iter()
        .filter(|a| a.declined || f64::from(a.amount_eur) <= p.small_amount_eur)
        .filter(|a| {
            let gap = event.ts.millis_since(a.at);
            if purchase {
                gap > 0 && gap <= p.window.0
            } else {
                gap.abs() <= p.window.0
            }
        })
        .count();
    if near < p.min_attempts {
        return None;
    }
    let attempts: Vec<CnpAttempt> = card.cnp.iter().copied().collect();
    let (inside, declined, tiny, first, last) = if purchase {
        let before: Vec<CnpAttempt> = attempts
            .iter()
            .copied()
            .filter(|a| a.at < event.ts && event.ts.millis_since(a.at) <= p.window.0)
            .collect();
        window_of(&before, before.iter().map(|a| a.at).max()?, p)?
    } else {
        window_of(&attempts, event.ts, p)?
    };
    let count = inside.len();
    // Mostly declined or tiny; or, for a tester probing with small approved amounts, a third
    // declined (an ordinary customer's small payments are rarely declined at all).
    let testing_share = 2 * tiny >= count || 3 * declined >= count;
    if count < p.min_attempts || declined < p.min_declined || !testing_share {
        return None;
    }
    let mut facts = vec![
        ("card", Fact::Text(masked_card(&t.card_id))),
        ("attempts", Fact::Num(count as f64)),
        ("declined", Fact::Num(declined as f64)),
        ("window_minutes", Fact::Num((p.window.0 / MINUTE) as f64)),
        ("span_minutes", Fact::Num((last.millis_since(first) / MINUTE) as f64)),
        ("purchase_eur", Fact::Num(if purchase { amount.round() } else { 0.0 })),
    ];
    super::event_facts(event, &mut facts);
    // The attempts, each with its time and amount, then the event (itself one of the attempts
    // unless it is the purchase).
    let mut evidence: Vec<Evidence> = inside
        .iter()
        .filter(|a| a.at != event.ts || purchase)
        .map(|a| attempt_evidence(a, &t.card_id))
        .collect();
    evidence.sort_by_key(|e| e.at);
    evidence.push(Evidence::from_event(event));
    Some(Signal {
        at: event.ts,
        facts,
        evidence,
        money_at_risk_eur: if amount.is_finite() && amount < f64::MAX { amount } else { 0.0 },
    })
}

/// An earlier attempt on the card as evidence: when, and how much (its merchant is not kept).
fn attempt_evidence(a: &CnpAttempt, card_id: &str) -> Evidence {
    let eur = f64::from(a.amount_eur);
    Evidence {
        at: a.at,
        kind: crate::event::EventKind::CardTransaction,
        event_id: None,
        summary: String::new(),
        money: (eur.is_finite() && eur < f64::from(f32::MAX)).then(|| crate::money::Money {
            amount: (eur * 100.0).round() / 100.0,
            currency: crate::money::Currency(*b"EUR"),
        }),
        country: None,
        city: None,
        card_id: Some(card_id.to_string()),
        lat: None,
        lon: None,
        body: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testkit::{event, state_after};
    use crate::event::Event;

    fn attempt(i: usize, minute: usize, amount: f64, status: &str) -> Event {
        event(&format!(
            r#"{{"event_id":"a{i}","type":"card_transaction","customer_id":"c","ts":"2026-11-24T10:{minute:02}:00Z","card_id":"k",
            "amount":{amount},"currency":"EUR","channel":"ecommerce","status":"{status}",
            "merchant":{{"name":"Shop","country":"US","city":"Dover"}}}}"#
        ))
    }

    fn run(events: &[Event]) -> Option<Signal> {
        let state = state_after(events);
        let last = events.last().unwrap();
        detect(&DetectInput { event: Some(last), state: &state, now: last.ts }, &Params::default())
    }

    #[test]
    fn five_small_or_declined_in_ten_minutes() {
        let events: Vec<Event> =
            (0..5).map(|i| attempt(i, i, 1.0, if i % 2 == 0 { "declined" } else { "approved" })).collect();
        let s = run(&events).expect("card testing");
        assert_eq!(s.num("attempts"), Some(5.0));
        assert_eq!(s.num("declined"), Some(3.0));
    }

    #[test]
    fn burst_found_whatever_the_arrival_order() {
        let mut events: Vec<Event> = (0..5).map(|i| attempt(i, i, 1.0, "declined")).collect();
        events.reverse();
        assert!(run(&events).is_some(), "the earliest attempt arrived last");
    }

    #[test]
    fn low_and_slow_attempts_are_testing_too() {
        // Five declined, twelve minutes apart: never more than one in ten minutes.
        let events: Vec<Event> = (0..5).map(|i| attempt(i, i * 12, 1.0, "declined")).collect();
        let s = run(&events).expect("low and slow");
        assert_eq!(s.num("span_minutes"), Some(48.0));
        assert_eq!(s.num("purchase_eur"), Some(0.0));
    }

    #[test]
    fn approved_subscriptions_billed_together_are_not_testing() {
        let events: Vec<Event> = [0.99, 2.99, 4.99, 0.99, 3.49]
            .into_iter()
            .enumerate()
            .map(|(i, amount)| attempt(i, i, amount, "approved"))
            .collect();
        assert!(run(&events).is_none(), "nothing declined");
    }

    #[test]
    fn the_large_purchase_after_testing_says_so() {
        let mut events: Vec<Event> = (0..4).map(|i| attempt(i, i * 9, 0.5, "declined")).collect();
        events.push(attempt(9, 50, 1_800.0, "approved"));
        let s = run(&events).expect("testing, then the purchase");
        assert_eq!((s.num("purchase_eur"), s.num("attempts")), (Some(1_800.0), Some(4.0)));
        // Every attempt is evidence, in time order, then the purchase.
        let times: Vec<Timestamp> = s.evidence.iter().map(|e| e.at).collect();
        let want: Vec<Timestamp> = events.iter().map(|e| e.ts).collect();
        assert_eq!(times, want);
        assert_eq!(s.evidence[0].money.map(|m| m.amount), Some(0.5));
        assert_eq!(s.money_at_risk_eur, 1_800.0);
        let plain: Vec<Event> = vec![attempt(1, 1, 40.0, "approved"), attempt(2, 50, 1_800.0, "approved")];
        assert!(run(&plain).is_none(), "a purchase with no testing before");
    }

    #[test]
    fn small_approved_probes_with_a_third_declined_are_testing() {
        let mut events: Vec<Event> =
            [(1.2, "declined"), (4.3, "approved"), (4.4, "approved"), (4.9, "approved")]
                .into_iter()
                .enumerate()
                .map(|(i, (amount, status))| attempt(i, i * 11, amount, status))
                .collect();
        assert!(run(&events).is_none(), "one declined of four, the rest approved small: not yet");
        events.push(attempt(4, 50, 2.5, "declined"));
        let s = run(&events).expect("two declined of five");
        assert_eq!((s.num("attempts"), s.num("declined")), (Some(5.0), Some(2.0)));
    }

    #[test]
    fn ordinary_online_shopping_is_fine() {
        let events: Vec<Event> = (0..6).map(|i| attempt(i, i, 40.0, "approved")).collect();
        assert!(run(&events).is_none());
    }
}
