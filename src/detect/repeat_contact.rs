//! Repeat contact (customer effort): the customer had to contact us again and again about the
//! same unresolved problem within days. Effort and unresolved problems destroy loyalty; this
//! sends the case to a person who owns it.

use serde::Deserialize;

use super::{DetectInput, Evidence, Fact, Signal};
use crate::event::EventBody;
use crate::rules::expr::Type;
use crate::state::hash_text;
use crate::time::{Span, DAY};

/// Parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Unresolved contacts about one reason that fire the detector.
    pub min_contacts: usize,
    /// Window the contacts fall in.
    pub window: Span,
}

impl Default for Params {
    fn default() -> Self {
        Params { min_contacts: 3, window: Span(7 * DAY) }
    }
}

/// Facts of a repeat-contact signal.
pub const FACTS: &[(&str, Type)] = &[("reason", Type::Str), ("contacts", Type::Num), ("days", Type::Num)];

/// Counts unresolved contacts about the event's reason since it was last resolved.
pub fn detect(input: &DetectInput<'_>, p: &Params) -> Option<Signal> {
    let event = input.event?;
    let EventBody::SupportContact(c) = &event.body else { return None };
    if c.resolved {
        return None;
    }
    let reason = hash_text(&c.reason);
    let now = event.ts;
    let same: Vec<_> = input
        .state
        .contacts
        .iter()
        .filter(|m| m.reason == reason && m.at <= now && now.millis_since(m.at) <= p.window.0)
        .collect();
    let last_resolved = same.iter().filter(|m| m.resolved).map(|m| m.at).max();
    let open: Vec<_> =
        same.iter().filter(|m| !m.resolved && last_resolved.is_none_or(|r| m.at > r)).collect();
    if open.len() < p.min_contacts {
        return None;
    }
    let first = open.iter().map(|m| m.at).min().unwrap_or(now);
    let facts = vec![
        ("reason", Fact::Text(c.reason.clone())),
        ("contacts", Fact::Num(open.len() as f64)),
        ("days", Fact::Num(((now.millis_since(first) as f64 / DAY as f64) * 10.0).round() / 10.0)),
    ];
    Some(Signal { at: now, facts, evidence: vec![Evidence::from_event(event)], money_at_risk_eur: 0.0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testkit::{event, state_after};
    use crate::event::Event;

    fn contact(i: usize, day: u32, reason: &str, resolved: bool) -> Event {
        event(&format!(
            r#"{{"event_id":"s{i}","type":"support_contact","customer_id":"c","ts":"2026-11-{day:02}T10:00:00Z","channel":"phone","reason":"{reason}","resolved":{resolved}}}"#
        ))
    }

    fn run(events: &[Event]) -> Option<Signal> {
        let state = state_after(events);
        let last = events.last().unwrap();
        detect(&DetectInput { event: Some(last), state: &state, now: last.ts }, &Params::default())
    }

    #[test]
    fn third_unresolved_call_about_the_same_thing() {
        let s = run(&[
            contact(1, 1, "card_blocked", false),
            contact(2, 3, "card_blocked", false),
            contact(3, 5, "card_blocked", false),
        ])
        .expect("repeat contact");
        assert_eq!(s.num("contacts"), Some(3.0));
        assert_eq!(s.num("days"), Some(4.0));
    }

    #[test]
    fn different_reasons_do_not_add_up() {
        assert!(run(&[
            contact(1, 1, "fees", false),
            contact(2, 2, "app", false),
            contact(3, 3, "card_blocked", false)
        ])
        .is_none());
    }

    #[test]
    fn a_resolution_resets_the_count() {
        assert!(run(&[
            contact(1, 1, "card_blocked", false),
            contact(2, 2, "card_blocked", true),
            contact(3, 3, "card_blocked", false),
            contact(4, 4, "card_blocked", false)
        ])
        .is_none());
    }

    #[test]
    fn spread_over_weeks_is_not_effort_spike() {
        assert!(run(&[contact(1, 1, "x", false), contact(2, 10, "x", false), contact(3, 20, "x", false)])
            .is_none());
    }
}
