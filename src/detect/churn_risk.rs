//! Churn risk: the customer's activity falls well below their *own* normal (including complete
//! silence), together with signs of leaving: money moved to their own account at another bank,
//! a product closed and not replaced, a complaint.
//!
//! Each sign adds to a score; the detector fires when the score reaches `min_score`, so one weak
//! sign alone (a quiet month, one complaint) pages nobody. Silence is found by event-time timers
//! as the stream's time advances (the engine calls this detector with no event); a customer who
//! is always quiet has a long typical gap and so is not "silent".

use serde::Deserialize;

use super::{DetectInput, Evidence, Fact, Signal};
use crate::event::EventKind;
use crate::state::CustomerState;
use crate::time::{Span, Timestamp, DAY};
use crate::vocab::Type;

/// Parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Score that fires the detector.
    pub min_score: u32,
    /// How far back a sign of leaving counts.
    pub lookback: Span,
    /// Silence is at least this long…
    pub min_silence: Span,
    /// …and at least this many of the customer's typical gaps between events.
    pub silence_gaps: f64,
    /// Recent weekly activity below this fraction of the typical is a drop.
    pub drop_ratio: f64,
    /// Customers with fewer typical events per week are too quiet to judge a drop.
    pub min_typical_weekly: f64,
    /// Own-account transfers out below this many euros are housekeeping, not leaving.
    pub min_own_transfer_eur: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            min_score: 3,
            lookback: Span(45 * DAY),
            min_silence: Span(21 * DAY),
            silence_gaps: 6.0,
            drop_ratio: 0.3,
            min_typical_weekly: 2.0,
            min_own_transfer_eur: 500.0,
        }
    }
}

/// Facts of a churn-risk signal: the score, each sign as a number (so that a rule can tell
/// which signs were found, e.g. to pick the script that fits), and `reasons`, the signs' codes
/// (`silent`, `activity_drop`, `moved_money`, `product_closed`, `complaints`) joined by `,`,
/// which a task shows in words in its language.
pub const FACTS: &[(&str, Type)] = &[
    ("score", Type::Num),
    ("reasons", Type::Str),
    ("days_silent", Type::Num),
    ("typical_weekly", Type::Num),
    ("recent_weekly", Type::Num),
    ("silent", Type::Num),
    ("activity_drop", Type::Num),
    ("moved_eur", Type::Num),
    ("product_closed", Type::Num),
    ("complaints", Type::Num),
    ("complaint_category", Type::Str),
];

/// Weeks of history needed before the activity baseline is trusted.
const MIN_WEEKS: u32 = 4;

/// When the customer counts as silent: last activity plus the silence threshold. `None` when
/// the customer has no trusted baseline or is too quiet to judge.
pub fn silence_deadline(state: &CustomerState, now: Timestamp, p: &Params) -> Option<Timestamp> {
    let last = state.activity.last?;
    let typical = state.activity.typical_weekly(now.max(last), MIN_WEEKS)?;
    if typical < p.min_typical_weekly {
        return None;
    }
    let typical_gap = 7.0 * DAY as f64 / typical;
    Some(last.plus(((p.silence_gaps * typical_gap) as i64).max(p.min_silence.0)))
}

/// True while a sign of leaving (money moved to an own account elsewhere, a product closed, a
/// complaint) is within the look-back: until it ages out, a drop against the customer's own
/// normal can become visible as time passes with no further event, so the customer is
/// re-evaluated by timer.
pub fn has_recent_sign(state: &CustomerState, now: Timestamp, p: &Params) -> bool {
    let recent = |at: Timestamp| at <= now && now.millis_since(at) < p.lookback.0;
    state
        .churn
        .own_transfer_out
        .is_some_and(|(at, eur)| recent(at) && f64::from(eur) >= p.min_own_transfer_eur)
        || state.churn.product_closed.is_some_and(|(at, _)| recent(at))
        || state.complaints.iter().any(|c| recent(c.at))
}

/// How often a customer with a recent sign of leaving is re-evaluated: at every UTC midnight of
/// event time (aligned, so the points are the same whenever the timer was set, and a drop is
/// found within a day of becoming visible).
pub const RECHECK: i64 = DAY;

/// The next re-evaluation point strictly after `now`, while a sign is recent.
pub fn next_recheck(state: &CustomerState, now: Timestamp, p: &Params) -> Option<Timestamp> {
    has_recent_sign(state, now, p).then(|| Timestamp((now.0.div_euclid(RECHECK) + 1) * RECHECK))
}

/// Scores the signs of leaving as of `input.now` (state includes the event, if any).
pub fn detect(input: &DetectInput<'_>, p: &Params) -> Option<Signal> {
    let state = input.state;
    let now = input.now;
    let recent = |at: Timestamp| at <= now && now.millis_since(at) <= p.lookback.0;
    let mut score = 0u32;
    let mut reasons: Vec<&str> = Vec::new();
    let (mut silent, mut drop, mut moved_eur, mut closed) = (0.0, 0.0, 0.0, 0.0);
    let last = state.activity.last?;
    let typical = state.activity.typical_weekly(now, MIN_WEEKS).unwrap_or(0.0);
    let recent_weekly = state.activity.recent_weekly(now);
    let days_silent = (now.millis_since(last) / DAY).max(0);
    if silence_deadline(state, now, p).is_some_and(|deadline| now >= deadline) {
        score += 2;
        silent = 1.0;
        reasons.push("silent");
    } else if typical >= p.min_typical_weekly && recent_weekly < p.drop_ratio * typical {
        score += 2;
        drop = 1.0;
        reasons.push("activity_drop");
    }
    let mut money_at_risk = 0.0;
    if let Some((at, eur)) = state.churn.own_transfer_out {
        if recent(at) && f64::from(eur) >= p.min_own_transfer_eur {
            score += 2;
            money_at_risk = f64::from(eur);
            moved_eur = f64::from(eur).round();
            reasons.push("moved_money");
        }
    }
    if state.churn.product_closed.is_some_and(|(at, _)| recent(at)) {
        score += 1;
        closed = 1.0;
        reasons.push("product_closed");
    }
    let complaints = state.complaints.iter().filter(|c| recent(c.at)).count();
    if complaints > 0 {
        score += 1;
        reasons.push("complaints");
    }
    if score < p.min_score {
        return None;
    }
    let mut facts = vec![
        ("score", Fact::Num(f64::from(score))),
        ("reasons", Fact::Text(reasons.join(","))),
        ("days_silent", Fact::Num(days_silent as f64)),
        ("typical_weekly", Fact::Num((typical * 10.0).round() / 10.0)),
        ("recent_weekly", Fact::Num((recent_weekly * 10.0).round() / 10.0)),
        ("silent", Fact::Num(silent)),
        ("activity_drop", Fact::Num(drop)),
        ("moved_eur", Fact::Num(moved_eur)),
        ("product_closed", Fact::Num(closed)),
        ("complaints", Fact::Num(complaints as f64)),
    ];
    // The latest recent complaint's category, while the history still holds it.
    let category = state
        .history
        .iter_newest_first()
        .find(|h| h.kind == EventKind::Complaint && recent(h.at))
        .and_then(|h| h.detail());
    if let (true, Some(category)) = (complaints > 0, category) {
        facts.push(("complaint_category", Fact::Text(category.to_string())));
    }
    let evidence = input.event.map(Evidence::from_event).into_iter().collect();
    Some(Signal { at: now, facts, evidence, money_at_risk_eur: money_at_risk })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testkit::{event, state_after};
    use crate::event::Event;

    /// `per_week` logins a week for ten weeks from 2026-06-01.
    fn active(per_week: usize) -> Vec<Event> {
        let start = Timestamp::parse_rfc3339("2026-06-01T09:00:00Z").unwrap();
        (0..10 * per_week)
            .map(|i| {
                let ts = start.plus((i as i64) * 7 * DAY / per_week as i64);
                event(&format!(
                    r#"{{"event_id":"l{i}","type":"login","customer_id":"c","ts":"{ts}","channel":"mobile","success":true,"device_id":"p"}}"#
                ))
            })
            .collect()
    }

    fn complaint(ts: &str) -> Event {
        event(&format!(
            r#"{{"event_id":"cmp{ts}","type":"complaint","customer_id":"c","ts":"{ts}","category":"fees","severity":"medium"}}"#
        ))
    }

    fn at(ts: &str) -> Timestamp {
        Timestamp::parse_rfc3339(ts).unwrap()
    }

    fn run(events: &[Event], now: Timestamp) -> Option<Signal> {
        let state = state_after(events);
        detect(&DetectInput { event: None, state: &state, now }, &Params::default())
    }

    #[test]
    fn silence_plus_complaint_is_churn_risk() {
        let mut events = active(5);
        events.push(complaint("2026-08-10T09:00:00Z"));
        let s = run(&events, at("2026-09-05T00:00:00Z")).expect("churn risk");
        assert_eq!(s.num("score"), Some(3.0));
        let Some(Fact::Text(reasons)) = s.fact("reasons") else { panic!() };
        assert_eq!(reasons, "silent,complaints");
        assert_eq!(
            (s.num("silent"), s.num("activity_drop"), s.num("moved_eur")),
            (Some(1.0), Some(0.0), Some(0.0))
        );
        assert_eq!(s.fact("complaint_category"), Some(&Fact::Text("fees".into())));
    }

    #[test]
    fn silence_alone_is_not_enough() {
        assert!(run(&active(5), at("2026-09-05T00:00:00Z")).is_none());
    }

    #[test]
    fn always_quiet_customer_is_not_silent() {
        let state = state_after(&active(1));
        assert_eq!(silence_deadline(&state, at("2026-09-05T00:00:00Z"), &Params::default()), None);
        let mut events = active(1);
        events.push(complaint("2026-08-10T09:00:00Z"));
        assert!(run(&events, at("2026-09-05T00:00:00Z")).is_none());
    }

    #[test]
    fn silence_deadline_scales_with_the_customers_rhythm() {
        let state = state_after(&active(5));
        let deadline = silence_deadline(&state, at("2026-08-10T00:00:00Z"), &Params::default()).unwrap();
        let last = state.activity.last.unwrap();
        assert_eq!(deadline.millis_since(last), 21 * DAY, "min_silence dominates for an active customer");
    }

    #[test]
    fn money_moved_out_and_product_closed_while_active() {
        let mut events = active(5);
        events.push(event(
            r#"{"event_id":"t","type":"transfer","customer_id":"c","ts":"2026-08-08T09:00:00Z","direction":"out","amount":"4000.00","currency":"EUR","own_account":true,"counterparty_bank":"Other Bank"}"#,
        ));
        events.push(event(
            r#"{"event_id":"p","type":"product_change","customer_id":"c","ts":"2026-08-08T10:00:00Z","product":"deposit","action":"close"}"#,
        ));
        let s = run(&events, at("2026-08-08T10:00:00Z")).expect("churn risk");
        assert_eq!(s.num("score"), Some(3.0));
        assert_eq!(s.money_at_risk_eur, 4000.0);
        // Moved money while still active: a rule can tell this from silence.
        assert_eq!(
            (s.num("moved_eur"), s.num("silent"), s.num("activity_drop")),
            (Some(4000.0), Some(0.0), Some(0.0))
        );
        assert_eq!(s.num("product_closed"), Some(1.0));
        assert_eq!(s.fact("complaint_category"), None, "no complaint");
    }
}
