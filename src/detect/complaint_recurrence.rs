//! Complaint recurrence: a complaint in the same category (its code, after aliases: see
//! `rules::codes`) as one resolved within the last weeks. The fix did not hold; that the customer
//! had to complain again about a problem we called solved is a care signal of its own, whatever
//! the new complaint's severity.
//!
//! A complaint counts as resolved when a support contact about its category was resolved, or
//! when an agent resolved a care task about it as solved or retained (`engine::learn`); the
//! state keeps the newest resolution per category (`CustomerState::resolved_complaints`).

use serde::Deserialize;

use super::{DetectInput, Evidence, Fact, Signal};
use crate::event::EventBody;
use crate::state::hash_text;
use crate::time::{Span, DAY};
use crate::vocab::Type;

/// Parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// How long after a resolution a complaint in its category is a recurrence.
    pub within: Span,
}

impl Default for Params {
    fn default() -> Self {
        Params { within: Span(60 * DAY) }
    }
}

/// Facts of a complaint-recurrence signal.
pub const FACTS: &[(&str, Type)] =
    &[("category", Type::Str), ("severity", Type::Str), ("days_since_resolved", Type::Num)];

/// Fires on a complaint whose category was resolved within `within` before it (state includes
/// the event: its own resolution is never before it).
pub fn detect(input: &DetectInput<'_>, p: &Params) -> Option<Signal> {
    let event = input.event?;
    let EventBody::Complaint(c) = &event.body else { return None };
    let resolved = input.state.complaint_resolved_at(hash_text(&c.category))?;
    let since = event.ts.millis_since(resolved);
    if since <= 0 || since > p.within.0 {
        return None;
    }
    let facts = vec![
        ("category", Fact::Text(c.category.clone())),
        ("severity", Fact::Text(format!("{:?}", c.severity).to_lowercase())),
        ("days_since_resolved", Fact::Num((since as f64 / DAY as f64).round())),
    ];
    Some(Signal { at: event.ts, facts, evidence: vec![Evidence::from_event(event)], money_at_risk_eur: 0.0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testkit::{event, state_after};
    use crate::event::Event;

    fn complaint(i: usize, day: u32, category: &str) -> Event {
        event(&format!(
            r#"{{"event_id":"c{i}","type":"complaint","customer_id":"c","ts":"2026-10-{day:02}T10:00:00Z","category":"{category}","severity":"low"}}"#
        ))
    }

    fn contact(i: usize, day: u32, reason: &str, resolved: bool) -> Event {
        event(&format!(
            r#"{{"event_id":"s{i}","type":"support_contact","customer_id":"c","ts":"2026-10-{day:02}T12:00:00Z","channel":"phone","reason":"{reason}","resolved":{resolved}}}"#
        ))
    }

    fn run(events: &[Event]) -> Option<Signal> {
        let state = state_after(events);
        let last = events.last().unwrap();
        detect(&DetectInput { event: Some(last), state: &state, now: last.ts }, &Params::default())
    }

    #[test]
    fn the_same_category_after_its_resolution_recurs_in_any_spelling() {
        let s = run(&[complaint(1, 1, "fees"), contact(1, 3, "FEES", true), complaint(2, 20, "Fees ")])
            .expect("recurrence");
        assert_eq!(s.fact("category"), Some(&Fact::Text("fees".into())));
        assert_eq!(s.num("days_since_resolved"), Some(17.0));
    }

    #[test]
    fn unresolved_other_or_long_ago_is_no_recurrence() {
        assert!(
            run(&[complaint(1, 1, "fees"), contact(1, 3, "fees", false), complaint(2, 20, "fees")]).is_none()
        );
        assert!(
            run(&[complaint(1, 1, "fees"), contact(1, 3, "fees", true), complaint(2, 20, "app")]).is_none()
        );
        assert!(
            run(&[complaint(1, 1, "fees"), contact(1, 3, "app", true), complaint(2, 20, "fees")]).is_none()
        );
        let p = Params { within: Span(10 * DAY) };
        let events = [complaint(1, 1, "fees"), contact(1, 3, "fees", true), complaint(2, 20, "fees")];
        let state = state_after(&events);
        let last = &events[2];
        assert!(detect(&DetectInput { event: Some(last), state: &state, now: last.ts }, &p).is_none());
    }
}
