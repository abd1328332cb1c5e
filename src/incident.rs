//! Signals → incident → task change: the stable incident key, open-or-enrich, priority, SLA and
//! the human-readable explanation.
//!
//! Invariants:
//! - at most one open task per customer and queue: new signals enrich it;
//! - a task's id is a pure function of (customer, queue, the customer's incident number in that
//!   queue), so processing the same events again yields the same ids;
//! - for the same incident, a priority segment is never less urgent than `mass`, and more money
//!   at risk is never less urgent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::detect::{Evidence, Fact, Signal};
use crate::event::Segment;
use crate::rules::{Queue, Rule, Severity};
use crate::state::{CustomerState, HistoryItem};
use crate::task::{
    AuditView, ChangeKind, HistoryLine, SignalRecord, Task, TaskChange, TaskContext, TaskStatus, TaskSummary,
    Workflow,
};
use crate::time::{Timestamp, HOUR, MINUTE};

/// Money at risk from which a task is one step more urgent, in euros.
pub const HIGH_VALUE_EUR: f64 = 1_000.0;
/// Time to first contact per priority (index 0 = priority 1): 30 min, 2 h, 24 h, 72 h.
pub const SLA: [i64; 4] = [30 * MINUTE, 2 * HOUR, 24 * HOUR, 72 * HOUR];
/// Signals kept per task (the oldest are dropped from the list, never from `rules`).
const MAX_SIGNALS: usize = 20;
/// Evidence items kept per task.
const MAX_EVIDENCE: usize = 20;
/// Earlier tasks remembered per customer.
pub const MAX_EARLIER: usize = 5;

/// A customer's open tasks and incident counters. Lives in the customer's state (and is stored
/// with it: tasks in the layout of `state::codec`, not in their JSON form).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CustomerIncidents {
    #[serde(with = "crate::state::codec::tasks")]
    pub open: Vec<Task>,
    /// Incidents opened so far, per queue (fraud, care): the next task's number.
    pub opened: [u32; 2],
    #[serde(with = "crate::state::codec::task_summaries")]
    pub earlier: Vec<TaskSummary>,
    /// The last resolved task per queue, whole, so a supervisor can reopen it.
    #[serde(with = "crate::state::codec::tasks")]
    pub resolved: Vec<Task>,
}

/// A rule that fired, with what its detector saw.
pub struct Firing<'r> {
    pub rule: &'r Rule,
    pub signal: Signal,
}

/// Priority 1 (most urgent) to 4 from severity, segment and money at risk.
pub fn priority(severity: Severity, segment: Option<Segment>, money_at_risk_eur: f64) -> u8 {
    let mut p: i32 = match severity {
        Severity::Critical => 1,
        Severity::High => 2,
        Severity::Medium => 3,
        Severity::Low => 4,
    };
    if segment.is_some_and(Segment::is_priority) {
        p -= 1;
    }
    if money_at_risk_eur >= HIGH_VALUE_EUR {
        p -= 1;
    }
    p.clamp(1, 4) as u8
}

/// When first contact is due for a task of `priority` opened at `at`.
pub fn due_at(priority: u8, at: Timestamp) -> Timestamp {
    at.plus(SLA[(priority.clamp(1, 4) - 1) as usize])
}

/// The stable task id for a customer's n-th incident in a queue.
pub fn task_id(customer_id: &str, queue: Queue, number: u32) -> String {
    let key = format!("{customer_id}\u{0}{}\u{0}{number}", queue.as_str());
    format!("tsk_{:016x}", xxhash_rust::xxh3::xxh3_64(key.as_bytes()))
}

fn queue_index(queue: Queue) -> usize {
    match queue {
        Queue::Fraud => 0,
        Queue::Care => 1,
    }
}

fn fact_json(f: &Fact) -> serde_json::Value {
    match f {
        Fact::Num(v) => {
            serde_json::Number::from_f64(*v).map_or(serde_json::Value::Null, serde_json::Value::Number)
        }
        Fact::Text(t) => serde_json::Value::String(t.clone()),
    }
}

/// Opens or enriches the customer's tasks for rules that fired. Returns the changed tasks.
pub fn open_or_enrich(
    firings: Vec<Firing<'_>>,
    state: &mut CustomerState,
    customer_id: &str,
) -> Vec<TaskChange> {
    let mut incidents = state.incidents.take().map(|b| *b).unwrap_or_default();
    let mut changes = Vec::new();
    for queue in [Queue::Fraud, Queue::Care] {
        let mut for_queue: Vec<&Firing<'_>> = firings.iter().filter(|f| f.rule.queue == queue).collect();
        if for_queue.is_empty() {
            continue;
        }
        // Most severe first: it names the task.
        for_queue.sort_by_key(|f| f.rule.severity);
        let (mut task, kind) = match incidents.open.iter().position(|t| t.queue == queue) {
            Some(i) => {
                // New activity: a snoozed task comes back to the queue; a claim is kept.
                let mut task = incidents.open.swap_remove(i);
                task.work.snoozed_until = None;
                task.work.snooze_reason = None;
                (task, ChangeKind::Enriched)
            }
            None => {
                let number = incidents.opened[queue_index(queue)];
                incidents.opened[queue_index(queue)] += 1;
                (new_task(customer_id, queue, number, for_queue[0].signal.at), ChangeKind::Opened)
            }
        };
        let before = (kind == ChangeKind::Enriched).then(|| AuditView::of(&task));
        for firing in &for_queue {
            add_signal(&mut task, firing, state);
        }
        task.version += 1;
        refresh_context(&mut task, state, &incidents);
        incidents.open.push(task.clone());
        let mut change = TaskChange::by_engine(kind, task, before);
        for firing in &for_queue {
            if let Some(o) = &firing.rule.outreach {
                if !change.outreach.contains(o) {
                    change.outreach.push(o.clone());
                }
            }
        }
        changes.push(change);
    }
    state.incidents = Some(Box::new(incidents));
    changes
}

fn new_task(customer_id: &str, queue: Queue, number: u32, at: Timestamp) -> Task {
    Task {
        id: task_id(customer_id, queue, number),
        version: 0,
        customer_id: customer_id.to_string(),
        queue,
        rules: Vec::new(),
        priority: 4,
        status: TaskStatus::Open,
        outcome: None,
        opened_at: at,
        updated_at: at,
        due_at: due_at(4, at),
        title: String::new(),
        explanation: String::new(),
        money_at_risk_eur: 0.0,
        signals: Vec::new(),
        context: TaskContext {
            profile_known: false,
            profile: None,
            language: "en".to_string(),
            events: Vec::new(),
            recent_history: Vec::new(),
            earlier_tasks: Vec::new(),
            actions: Vec::new(),
            script: String::new(),
        },
        work: Workflow::default(),
    }
}

/// The customer's language, `en` without a profile.
fn language(state: &CustomerState) -> &str {
    state.profile.as_ref().map_or("en", |p| p.language.as_str())
}

fn customer_placeholder(state: &CustomerState, customer_id: &str, name: &str) -> Option<String> {
    let profile = state.profile.as_deref();
    match name {
        "customer_name" => {
            Some(profile.and_then(|p| p.name.clone()).unwrap_or_else(|| "customer".to_string()))
        }
        "customer_id" => Some(customer_id.to_string()),
        "segment" => Some(profile.map_or("unknown", |p| p.segment.as_str()).to_string()),
        _ => None,
    }
}

fn add_signal(task: &mut Task, firing: &Firing<'_>, state: &CustomerState) {
    let rule = firing.rule;
    let signal = &firing.signal;
    let lang = language(state);
    let extra = |name: &str| customer_placeholder(state, &task.customer_id, name);
    let explanation = rule.explanation.get(lang).render(&signal.facts, &extra);
    let was_most_severe = task.signals.iter().all(|s| rule.severity < s.severity);
    if task.signals.is_empty() || was_most_severe {
        task.title = rule.title.get(lang).render(&signal.facts, &extra);
        task.context.script = rule.script.get(lang).render(&signal.facts, &extra);
        task.context.language = rule.script.language_for(lang).to_string();
    }
    if !task.rules.contains(&rule.id) {
        task.rules.push(rule.id.clone());
    }
    for action in &rule.actions {
        if !task.context.actions.contains(action) {
            task.context.actions.push(action.clone());
        }
    }
    for e in &signal.evidence {
        push_evidence(&mut task.context.events, e);
    }
    // Euros converted with approximate rates: cents are the honest precision.
    task.money_at_risk_eur = task.money_at_risk_eur.max((signal.money_at_risk_eur * 100.0).round() / 100.0);
    let segment = state.profile.as_ref().map(|p| p.segment);
    let p = priority(rule.severity, segment, task.money_at_risk_eur);
    if task.signals.is_empty() || p < task.priority {
        task.priority = p;
    }
    task.due_at = if task.signals.is_empty() {
        due_at(task.priority, signal.at)
    } else {
        task.due_at.min(due_at(task.priority, signal.at))
    };
    task.opened_at = task.opened_at.min(signal.at);
    task.updated_at = task.updated_at.max(signal.at);
    task.signals.push(SignalRecord {
        rule: rule.id.clone(),
        detector: rule.detector_kind(),
        severity: rule.severity,
        at: signal.at,
        explanation,
        facts: signal.facts.iter().map(|(n, f)| (*n, fact_json(f))).collect::<BTreeMap<_, _>>(),
    });
    if task.signals.len() > MAX_SIGNALS {
        task.signals.remove(0);
    }
    task.explanation = task.signals.iter().map(|s| s.explanation.as_str()).collect::<Vec<_>>().join("\n");
}

fn push_evidence(events: &mut Vec<Evidence>, e: &Evidence) {
    if events.iter().any(|x| x.at == e.at && x.summary == e.summary) {
        return;
    }
    let pos = events.partition_point(|x| x.at <= e.at);
    events.insert(pos, e.clone());
    if events.len() > MAX_EVIDENCE {
        events.remove(0);
    }
}

/// Profile, history and the customer's other tasks as of now.
fn refresh_context(task: &mut Task, state: &CustomerState, incidents: &CustomerIncidents) {
    task.context.profile_known = state.profile.is_some();
    task.context.profile = state.profile.as_deref().cloned();
    task.context.recent_history = state.history.iter_newest_first().map(history_line).collect();
    task.context.earlier_tasks = incidents
        .open
        .iter()
        .filter(|t| t.id != task.id)
        .map(Task::summary)
        .chain(incidents.earlier.iter().cloned())
        .collect();
}

fn history_line(h: &HistoryItem) -> HistoryLine {
    let mut summary = h.kind.as_str().replace('_', " ");
    if let Some(m) = h.money {
        summary.push_str(&format!(" {m}"));
    }
    if let Some(d) = &h.detail {
        summary.push_str(&format!(" · {d}"));
    }
    if let Some(c) = h.country {
        summary.push_str(&format!(" · {c}"));
    }
    HistoryLine { at: h.at, kind: h.kind, summary }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_segments_are_never_less_urgent() {
        for severity in [Severity::Critical, Severity::High, Severity::Medium, Severity::Low] {
            for money in [0.0, 500.0, 5_000.0] {
                let mass = priority(severity, Some(Segment::Mass), money);
                for seg in [Segment::Affluent, Segment::Private, Segment::Business] {
                    assert!(priority(severity, Some(seg), money) <= mass);
                }
                assert!(priority(severity, None, money) == mass, "unknown profile is treated as mass");
                assert!(priority(severity, Some(Segment::Mass), money * 10.0 + 1_000.0) <= mass);
            }
        }
        assert_eq!(priority(Severity::High, Some(Segment::Private), 5_000.0), 1);
        assert_eq!(priority(Severity::Low, Some(Segment::Mass), 0.0), 4);
    }

    #[test]
    fn task_ids_are_stable_and_distinct() {
        assert_eq!(task_id("c1", Queue::Fraud, 0), task_id("c1", Queue::Fraud, 0));
        assert_ne!(task_id("c1", Queue::Fraud, 0), task_id("c1", Queue::Care, 0));
        assert_ne!(task_id("c1", Queue::Fraud, 0), task_id("c1", Queue::Fraud, 1));
        assert_ne!(task_id("c1", Queue::Fraud, 10), task_id("c11", Queue::Fraud, 0));
    }

    #[test]
    fn sla_follows_priority() {
        let t = Timestamp(0);
        assert_eq!(due_at(1, t), Timestamp(30 * MINUTE));
        assert_eq!(due_at(4, t), Timestamp(72 * HOUR));
    }
}
