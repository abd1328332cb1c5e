//! Complaint escalation: a high-severity complaint, or repeated complaints in a window. Every
//! complaint has a category, and every category a procedure in the complaint playbook
//! (`rules::playbook`), which the task carries; the detector only says which category.

use serde::Deserialize;

use super::{busiest_window_containing, DetectInput, Evidence, Fact, Signal};
use crate::event::EventBody;
use crate::time::{Span, Timestamp, DAY};
use crate::vocab::Type;

/// Parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Complaints in the window that fire the detector.
    pub min_complaints: usize,
    /// Window the complaints fall in.
    pub window: Span,
    /// Whether one high-severity complaint fires on its own.
    pub high_severity_fires: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params { min_complaints: 2, window: Span(7 * DAY), high_severity_fires: true }
    }
}

/// Facts of a complaint-escalation signal.
pub const FACTS: &[(&str, Type)] =
    &[("category", Type::Str), ("severity", Type::Str), ("complaints", Type::Num)];

/// Escalates a complaint that is serious or repeated (state includes the event).
pub fn detect(input: &DetectInput<'_>, p: &Params) -> Option<Signal> {
    let event = input.event?;
    let EventBody::Complaint(c) = &event.body else { return None };
    let now = event.ts;
    let times: Vec<Timestamp> = input.state.complaints.iter().map(|m| m.at).collect();
    let (count, _) = busiest_window_containing(&times, now, p.window.0);
    let high = c.severity == crate::event::ComplaintSeverity::High;
    if !(high && p.high_severity_fires) && count < p.min_complaints {
        return None;
    }
    let facts = vec![
        ("category", Fact::Text(c.category.clone())),
        ("severity", Fact::Text(format!("{:?}", c.severity).to_lowercase())),
        ("complaints", Fact::Num(count as f64)),
    ];
    Some(Signal { at: now, facts, evidence: vec![Evidence::from_event(event)], money_at_risk_eur: 0.0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testkit::{event, state_after};
    use crate::event::Event;

    fn complaint(i: usize, day: u32, severity: &str) -> Event {
        event(&format!(
            r#"{{"event_id":"c{i}","type":"complaint","customer_id":"c","ts":"2026-11-{day:02}T10:00:00Z","category":"fees","severity":"{severity}"}}"#
        ))
    }

    fn run(events: &[Event]) -> Option<Signal> {
        let state = state_after(events);
        let last = events.last().unwrap();
        detect(&DetectInput { event: Some(last), state: &state, now: last.ts }, &Params::default())
    }

    #[test]
    fn one_high_severity_complaint() {
        let s = run(&[complaint(1, 1, "high")]).expect("escalation");
        assert_eq!(s.fact("severity"), Some(&Fact::Text("high".into())));
    }

    #[test]
    fn one_low_complaint_is_handled_normally() {
        assert!(run(&[complaint(1, 1, "low")]).is_none());
    }

    #[test]
    fn two_in_a_week() {
        let s = run(&[complaint(1, 1, "low"), complaint(2, 5, "medium")]).expect("escalation");
        assert_eq!(s.num("complaints"), Some(2.0));
        assert!(run(&[complaint(1, 1, "low"), complaint(2, 20, "medium")]).is_none());
        assert!(run(&[complaint(2, 5, "medium"), complaint(1, 1, "low")]).is_some(), "late arrival");
    }
}
