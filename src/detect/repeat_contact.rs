//! Repeat contact (customer effort): the customer had to contact us again and again about the
//! same unresolved problem within days. Effort and unresolved problems destroy loyalty; this
//! sends the case to a person who owns it.

use serde::Deserialize;

use super::{DetectInput, Evidence, Fact, Signal};
use crate::event::EventBody;
use crate::state::hash_text;
use crate::time::{Span, Timestamp, DAY};
use crate::vocab::Type;

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
    let same: Vec<_> = input.state.contacts.iter().filter(|m| m.reason == reason).collect();
    // Windows ending at an unresolved contact at or after this one, reaching back over it;
    // contacts before the last resolution inside the window do not count.
    let mut best: Option<(usize, Timestamp, Timestamp)> = None; // (count, first, end)
    for end in same.iter().filter(|m| !m.resolved && m.at >= now && m.at.millis_since(now) <= p.window.0) {
        let end = end.at;
        let start = same
            .iter()
            .filter(|m| m.resolved && m.at <= end)
            .map(|m| m.at.plus(1))
            .max()
            .unwrap_or(Timestamp(i64::MIN))
            .max(end.plus(-p.window.0));
        if start > now {
            continue;
        }
        let open: Vec<Timestamp> =
            same.iter().filter(|m| !m.resolved && m.at >= start && m.at <= end).map(|m| m.at).collect();
        let first = open.iter().copied().min().unwrap_or(now);
        if best.is_none_or(|(n, ..)| open.len() > n) {
            best = Some((open.len(), first, end));
        }
    }
    let (contacts, first, end) = best?;
    if contacts < p.min_contacts {
        return None;
    }
    let facts = vec![
        ("reason", Fact::Text(c.reason.clone())),
        ("contacts", Fact::Num(contacts as f64)),
        ("days", Fact::Num(((end.millis_since(first) as f64 / DAY as f64) * 10.0).round() / 10.0)),
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
    fn found_whatever_the_arrival_order() {
        let s = run(&[
            contact(3, 5, "card_blocked", false),
            contact(2, 3, "card_blocked", false),
            contact(1, 1, "card_blocked", false),
        ]);
        assert_eq!(s.expect("late arrival").num("contacts"), Some(3.0));
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
