//! Income stopped: a recurring income (a salary, a pension: `state::flows`) whose next payment
//! is overdue beyond its own cadence plus a grace, with what else changed since.
//!
//! What did not happen is found by event-time timers (the engine asks [`next_timer`] when the
//! customer's timer is due, and calls this detector with no event): a flow is judged once its
//! grace has passed, then re-judged every midnight for `follow` days, so a change that comes
//! later (the card going quiet, money moved away) is seen within a day. A payment that keeps
//! arriving with a new amount or from a new payer (a raise, a new employer) continues the flow
//! in the state, so it never looks stopped.
//!
//! A stop alone is a weak signal (the payer may be late; the customer may have retired); with a
//! card that went quiet, activity well below the customer's own normal, money moved to the
//! customer's own account elsewhere, or regular payments that stopped too, it is strong. The
//! facts say which (`changes`, codes a task shows in words in its language), so a rule can page
//! on the strong case at once and on the weak case only after a longer wait.

use serde::Deserialize;

use super::{DetectInput, Fact, Signal};
use crate::state::flows::{established, slack, Flow, FlowKind};
use crate::state::CustomerState;
use crate::time::{Span, Timestamp, DAY};
use crate::vocab::Type;

/// Parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Incomes worth less than this many euros a month (the amount scaled by its cadence: a
    /// weekly 150 is 650 a month) are not watched (interest, small refunds, pocket money).
    pub min_monthly_eur: f64,
    /// Occurrences a flow needs before its absence is noticed (2: from the second payment).
    pub min_occurrences: u16,
    /// A payment is overdue this long after its expected date, at least…
    pub grace: Span,
    /// …and at least this fraction of its cadence (weekends, bank holidays, month lengths).
    pub grace_ratio: f64,
    /// How long after becoming overdue the flow is re-judged daily (and reported).
    pub follow: Span,
    /// The card is quiet when unused for this many of its typical gaps between payments…
    pub card_quiet_gaps: f64,
    /// …and at least this long.
    pub card_quiet_min: Span,
    /// Recent weekly activity below this fraction of the customer's typical is a drop.
    pub drop_ratio: f64,
    /// Money moved to the customer's own account elsewhere counts from this fraction of the
    /// income's amount.
    pub moved_ratio: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            min_monthly_eur: 400.0,
            min_occurrences: 2,
            grace: Span(3 * DAY),
            grace_ratio: 0.2,
            follow: Span(30 * DAY),
            card_quiet_gaps: 4.0,
            card_quiet_min: Span(7 * DAY),
            drop_ratio: 0.4,
            moved_ratio: 0.25,
        }
    }
}

/// Facts of an income-stopped signal. `changes` lists the codes of what else changed
/// (`card_quiet`, `activity_drop`, `moved_money`, `payments_stopped`), joined by `,`; `strong`
/// is 1 when there is any.
pub const FACTS: &[(&str, Type)] = &[
    ("payer", Type::Str),
    ("usual_amount_eur", Type::Num),
    ("usual_day", Type::Num),
    ("last_paid", Type::Str),
    ("cadence_days", Type::Num),
    ("days_overdue", Type::Num),
    ("occurrences", Type::Num),
    ("changes", Type::Str),
    ("strong", Type::Num),
    ("score", Type::Num),
    ("card_quiet_days", Type::Num),
    ("moved_eur", Type::Num),
    ("payments_stopped", Type::Num),
];

/// When `flow` counts as stopped: its expected date plus the grace.
pub fn overdue_at(flow: &Flow, p: &Params) -> Option<Timestamp> {
    let expected = flow.expected()?;
    let grace = p.grace.0.max((p.grace_ratio * flow.period() as f64) as i64).max(slack(flow.period()));
    Some(expected.plus(grace))
}

/// The incomes this detector watches.
fn watched<'a>(state: &'a CustomerState, p: &'a Params) -> impl Iterator<Item = &'a Flow> + 'a {
    established(&state.flows, FlowKind::Income).filter(move |f| {
        let monthly = f64::from(f.amount_eur) * 30.44 / f64::from(f.period_days).max(1.0);
        f.count >= p.min_occurrences && monthly >= p.min_monthly_eur
    })
}

/// The next time the customer must be judged after `now`: the first overdue point still to
/// come, or the next midnight while a flow is overdue and within `follow`.
pub fn next_timer(state: &CustomerState, now: Timestamp, p: &Params) -> Option<Timestamp> {
    watched(state, p)
        .filter_map(|f| overdue_at(f, p))
        .filter_map(|due| {
            if due > now {
                Some(due)
            } else if now.millis_since(due) < p.follow.0 {
                Some(Timestamp((now.0.div_euclid(DAY) + 1) * DAY))
            } else {
                None
            }
        })
        .min()
}

/// True if some watched income is overdue at `now` and still followed.
pub fn is_due(state: &CustomerState, now: Timestamp, p: &Params) -> bool {
    watched(state, p)
        .filter_map(|f| overdue_at(f, p))
        .any(|due| due <= now && now.millis_since(due) <= p.follow.0)
}

/// Judges the customer's incomes at `now` (a timer; an event is not needed).
pub fn detect(input: &DetectInput<'_>, p: &Params) -> Option<Signal> {
    let state = input.state;
    let now = input.now;
    // The income overdue longest among those followed.
    let (flow, due) = watched(state, p)
        .filter_map(|f| overdue_at(f, p).map(|due| (f, due)))
        .filter(|(_, due)| *due <= now && now.millis_since(*due) <= p.follow.0)
        .max_by_key(|(f, due)| (now.millis_since(*due), f.count))?;
    let expected = flow.expected()?;
    let days_overdue = (now.millis_since(expected) / DAY).max(0);
    let mut changes: Vec<&str> = Vec::new();
    // The card went quiet: unused for several of its typical gaps since the income was due.
    let mut card_quiet_days = 0;
    if let (Some(last_card), Some(first)) = (state.last_card_use(), state.activity.first) {
        let known_days = (last_card.millis_since(first) as f64 / DAY as f64).max(1.0);
        let typical_gap = known_days / f64::from(state.spend.count.max(1)) * DAY as f64;
        let quiet = now.millis_since(last_card);
        if state.spend.count >= 4
            && quiet >= p.card_quiet_min.0
            && quiet as f64 >= p.card_quiet_gaps * typical_gap
            && last_card < due
        {
            card_quiet_days = quiet / DAY;
            changes.push("card_quiet");
        }
    }
    // Activity well below the customer's own normal (any activity, not only the card).
    if card_quiet_days == 0 {
        if let Some(typical) = state.activity.typical_weekly(now, 4) {
            if typical >= 2.0 && state.activity.recent_weekly(now) < p.drop_ratio * typical {
                changes.push("activity_drop");
            }
        }
    }
    // Money moved to the customer's own account elsewhere, since about the last payment.
    let mut moved_eur = 0.0;
    if let Some((at, eur)) = state.churn.own_transfer_out {
        let since = flow.last_at.plus(-7 * DAY);
        if at >= since && at <= now && f64::from(eur) >= p.moved_ratio * f64::from(flow.amount_eur) {
            moved_eur = f64::from(eur).round();
            changes.push("moved_money");
        }
    }
    // Regular payments (rent, a loan) that stopped too: due after the income's last payment
    // (one that had stopped before is not something that changed since).
    let payments_stopped = established(&state.flows, FlowKind::Payment)
        .filter(|f| f.count >= 2)
        .filter_map(|f| overdue_at(f, p))
        .filter(|due| *due > flow.last_at && *due <= now)
        .count();
    if payments_stopped > 0 {
        changes.push("payments_stopped");
    }
    let strong = !changes.is_empty();
    let facts = vec![
        ("payer", Fact::Text(flow.party.to_string())),
        ("usual_amount_eur", Fact::Num(f64::from(flow.amount_eur).round())),
        ("usual_day", Fact::Num(f64::from(flow.day_of_month()))),
        ("last_paid", Fact::Text(flow.last_at.to_string()[..10].to_string())),
        ("cadence_days", Fact::Num(f64::from(flow.period_days).round())),
        ("days_overdue", Fact::Num(days_overdue as f64)),
        ("occurrences", Fact::Num(f64::from(flow.count))),
        ("changes", Fact::Text(changes.join(","))),
        ("strong", Fact::Num(if strong { 1.0 } else { 0.0 })),
        ("score", Fact::Num(1.0 + changes.len() as f64)),
        ("card_quiet_days", Fact::Num(card_quiet_days as f64)),
        ("moved_eur", Fact::Num(moved_eur)),
        ("payments_stopped", Fact::Num(payments_stopped as f64)),
    ];
    Some(Signal { at: now, facts, evidence: Vec::new(), money_at_risk_eur: f64::from(flow.amount_eur) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testkit::{card, event, state_after};
    use crate::event::Event;

    fn at(days: i64) -> Timestamp {
        Timestamp::parse_rfc3339("2026-03-25T08:00:00Z").unwrap().plus(days * DAY)
    }

    fn salary(i: i64, payer: &str, amount: f64) -> Event {
        event(&format!(
            r#"{{"event_id":"s{i}","type":"transfer","customer_id":"c","ts":"{}","direction":"in","amount":{amount},"currency":"EUR","counterparty_bank":"{payer}"}}"#,
            at(i * 30 + i / 3)
        ))
    }

    /// Four months of salary and daily card payments, the card stopping at `card_until` days.
    fn customer(months: i64, card_until: i64) -> Vec<Event> {
        let mut events: Vec<Event> = (0..months).map(|i| salary(i, "Acme Payroll", 2400.0)).collect();
        for d in 0..card_until {
            let ts = at(d).plus(4 * 3_600_000).to_string();
            events.push(card(&format!("k{d}"), &ts, "k", "contactless", 25.0, "Paris", "FR", 48.85, 2.35));
        }
        events
    }

    fn run(events: &[Event], now: Timestamp) -> Option<Signal> {
        let state = state_after(events);
        detect(&DetectInput { event: None, state: &state, now }, &Params::default())
    }

    #[test]
    fn a_salary_that_stops_with_the_card_going_quiet_is_strong() {
        // Salaries on days 0, 30, 60, 91; the next is due about day 121; the card stops at 118.
        let events = customer(4, 118);
        assert!(run(&events, at(125)).is_none(), "within its grace");
        let s = run(&events, at(140)).expect("overdue");
        assert_eq!(s.fact("payer"), Some(&Fact::Text("Acme Payroll".into())));
        assert_eq!(s.num("usual_amount_eur"), Some(2400.0));
        assert_eq!(s.num("strong"), Some(1.0));
        assert_eq!(s.fact("changes"), Some(&Fact::Text("card_quiet".into())));
        assert!(s.num("days_overdue").unwrap() >= 15.0);
    }

    #[test]
    fn a_stop_alone_is_weak_and_a_raise_or_new_employer_is_no_stop() {
        let events = customer(4, 160);
        let s = run(&events, at(140)).expect("overdue");
        assert_eq!((s.num("strong"), s.fact("changes")), (Some(0.0), Some(&Fact::Text(String::new()))));
        let mut raised = customer(4, 160);
        raised.push(salary(4, "Acme Payroll", 3100.0));
        assert!(run(&raised, at(140)).is_none(), "a raise keeps the flow");
        let mut moved = customer(4, 160);
        moved.push(salary(4, "Globex Bank", 2250.0));
        assert!(run(&moved, at(140)).is_none(), "a new employer keeps the flow");
    }

    #[test]
    fn timers_come_at_the_overdue_point_then_daily_then_stop() {
        let state = state_after(&customer(4, 160));
        let p = Params::default();
        let flow = established(&state.flows, FlowKind::Income).next().unwrap();
        let due = overdue_at(flow, &p).unwrap();
        assert_eq!(next_timer(&state, at(100), &p), Some(due));
        let next = next_timer(&state, due.plus(3_600_000), &p).unwrap();
        assert_eq!(next.0 % DAY, 0, "midnight");
        assert!(is_due(&state, due, &p) && !is_due(&state, due.plus(-1), &p));
        assert_eq!(next_timer(&state, due.plus(p.follow.0 + DAY), &p), None);
    }
}
