//! Absence patterns, "after X, no Y within T": what an absence rule remembers of its anchor
//! event, and the signal it gives when the deadline passes with no Y.
//!
//! The matching itself (which events start or end a wait) is the rule's `after` and `absent`
//! conditions, evaluated by the engine; the wait is a [`PendingAbsence`] in the customer's state,
//! fired by the engine's event-time timer at its deadline. Pure: no clock, no I/O.

use super::{Evidence, Fact, Signal};
use crate::event::{Event, EventBody, ProductAction};
use crate::state::PendingAbsence;
use crate::time::{Timestamp, DAY, HOUR};
use crate::vocab::Type;

/// Facts of an absence signal.
pub const FACTS: &[(&str, Type)] = &[
    ("anchor_type", Type::Str),
    ("anchor_detail", Type::Str),
    ("waited_hours", Type::Num),
    ("waited_days", Type::Num),
];

/// What an anchor event was about, in a few words: a complaint's category, a product and what
/// happened to it, a contact's reason, a merchant; empty for other events.
pub fn detail(event: &Event) -> Box<str> {
    match &event.body {
        EventBody::Complaint(c) => c.category.as_str().into(),
        EventBody::ProductChange(p) => {
            let action = match p.action {
                ProductAction::Open => "open",
                ProductAction::Close => "close",
                ProductAction::Downgrade => "downgrade",
                ProductAction::Upgrade => "upgrade",
            };
            format!("{} {action}", p.product).into()
        }
        EventBody::SupportContact(s) => s.reason.as_str().into(),
        EventBody::CardTransaction(t) => t.merchant_name.as_str().into(),
        _ => "".into(),
    }
}

/// A new wait for `deadline`, anchored at `event`.
pub fn pending(rule: u64, event: &Event, within: i64) -> PendingAbsence {
    PendingAbsence {
        rule,
        at: event.ts,
        kind: event.kind(),
        detail: detail(event),
        deadline: event.ts.plus(within),
    }
}

/// The signal of a wait that ran out: at its deadline, with the anchor as evidence.
pub fn signal(p: &PendingAbsence) -> Signal {
    let waited = p.deadline.millis_since(p.at);
    let facts = vec![
        ("anchor_type", Fact::Text(p.kind.as_str().to_string())),
        ("anchor_detail", Fact::Text(p.detail.to_string())),
        ("waited_hours", Fact::Num((waited / HOUR) as f64)),
        ("waited_days", Fact::Num(((waited as f64 / DAY as f64) * 10.0).round() / 10.0)),
    ];
    let summary = if p.detail.is_empty() {
        p.kind.as_str().replace('_', " ")
    } else {
        format!("{}: {}", p.kind.as_str().replace('_', " "), p.detail)
    };
    let evidence = Evidence {
        at: p.at,
        kind: p.kind,
        event_id: None,
        summary,
        money: None,
        country: None,
        city: None,
        card_id: None,
        lat: None,
        lon: None,
        body: None,
    };
    Signal { at: p.deadline, facts, evidence: vec![evidence], money_at_risk_eur: 0.0 }
}

/// True once `now` has reached the wait's deadline.
pub fn is_due(p: &PendingAbsence, now: Timestamp) -> bool {
    p.deadline <= now
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testkit::event;

    #[test]
    fn a_wait_runs_from_its_anchor_and_says_what_it_was_about() {
        let e = event(
            r#"{"event_id":"x","type":"complaint","customer_id":"c","ts":"2026-11-01T10:00:00Z","category":"fees","severity":"high"}"#,
        );
        let p = pending(7, &e, 72 * HOUR);
        assert_eq!(p.deadline.millis_since(e.ts), 72 * HOUR);
        assert!(!is_due(&p, e.ts.plus(72 * HOUR - 1)) && is_due(&p, e.ts.plus(72 * HOUR)));
        let s = signal(&p);
        assert_eq!(s.at, p.deadline);
        assert_eq!(s.num("waited_hours"), Some(72.0));
        assert_eq!(s.num("waited_days"), Some(3.0));
        assert!(matches!(s.fact("anchor_detail"), Some(Fact::Text(t)) if t == "fees"));
        assert_eq!(s.evidence[0].summary, "complaint: fees");
    }
}
