//! Card testing (velocity): many small or declined card-not-present attempts on one card in a
//! short window, the way fraudsters check stolen card numbers before a big purchase.

use serde::Deserialize;

use super::{busiest_window_containing, masked_card, DetectInput, Evidence, Fact, Signal};
use crate::event::EventBody;
use crate::time::{Span, Timestamp, MINUTE};
use crate::vocab::Type;

/// Parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Window the attempts fall in.
    pub window: Span,
    /// Attempts (small or declined) in the window that fire the detector.
    pub min_attempts: usize,
    /// An approved attempt at most this many euros counts as "small".
    pub small_amount_eur: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params { window: Span(10 * MINUTE), min_attempts: 5, small_amount_eur: 5.0 }
    }
}

/// Facts of a card-testing signal.
pub const FACTS: &[(&str, Type)] =
    &[("card", Type::Str), ("attempts", Type::Num), ("declined", Type::Num), ("window_minutes", Type::Num)];

/// Counts suspicious card-not-present attempts on the event's card (state includes the event).
pub fn detect(input: &DetectInput<'_>, p: &Params) -> Option<Signal> {
    let event = input.event?;
    let EventBody::CardTransaction(t) = &event.body else { return None };
    if t.channel.is_physical() {
        return None;
    }
    let card = input.state.card(&t.card_id)?;
    let suspicious = |declined: bool, eur: f64| declined || eur <= p.small_amount_eur;
    if !suspicious(!t.approved, t.money.to_eur().unwrap_or(f64::MAX)) {
        return None;
    }
    let mut times = [Timestamp::default(); crate::state::CNP_ATTEMPTS];
    let mut n = 0;
    for a in card.cnp.iter().filter(|a| suspicious(a.declined, f64::from(a.amount_eur))) {
        times[n] = a.at;
        n += 1;
    }
    let (attempts, end) = busiest_window_containing(&times[..n], event.ts, p.window.0);
    if attempts < p.min_attempts {
        return None;
    }
    let declined =
        card.cnp.iter().filter(|a| a.declined && a.at <= end && end.millis_since(a.at) <= p.window.0).count();
    let mut facts = vec![
        ("card", Fact::Text(masked_card(&t.card_id))),
        ("attempts", Fact::Num(attempts as f64)),
        ("declined", Fact::Num(declined as f64)),
        ("window_minutes", Fact::Num((p.window.0 / MINUTE) as f64)),
    ];
    super::event_facts(event, &mut facts);
    Some(Signal {
        at: event.ts,
        facts,
        evidence: vec![Evidence::from_event(event)],
        money_at_risk_eur: t.money.to_eur().unwrap_or(0.0),
    })
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
    fn spread_out_attempts_are_fine() {
        let events: Vec<Event> = (0..5).map(|i| attempt(i, i * 12, 1.0, "declined")).collect();
        assert!(run(&events).is_none());
    }

    #[test]
    fn ordinary_online_shopping_is_fine() {
        let events: Vec<Event> = (0..6).map(|i| attempt(i, i, 40.0, "approved")).collect();
        assert!(run(&events).is_none());
    }
}
