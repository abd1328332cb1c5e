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
use crate::phrases;
use crate::rules::playbook::{Compensation, Playbook};
use crate::rules::Rule;
use crate::state::{CustomerState, HistoryItem};
use crate::task::{
    AuditView, ChangeKind, HistoryLine, Procedure, SignalRecord, Task, TaskChange, TaskSummary,
};
use crate::time::{Timestamp, HOUR, MINUTE};
use crate::vocab::{Queue, Severity};

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

/// Opens or enriches the customer's tasks for rules that fired. Returns the changed tasks: the
/// opened and enriched ones, and then, when a task opened while the customer has an open task
/// in the other queue, that task's new version, which names the new one.
pub fn open_or_enrich(
    firings: Vec<Firing<'_>>,
    state: &mut CustomerState,
    customer_id: &str,
    playbook: &Playbook,
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
        let mut without_procedure: Vec<String> = Vec::new();
        for firing in &for_queue {
            if let Some(category) = add_signal(&mut task, firing, state, playbook) {
                if !without_procedure.contains(&category) {
                    without_procedure.push(category);
                }
            }
        }
        task.version += 1;
        refresh_context(&mut task, state, &incidents, playbook);
        incidents.open.push(task.clone());
        let mut change = TaskChange::by_engine(kind, task, before);
        change.without_procedure = without_procedure;
        for firing in &for_queue {
            if let Some(o) = &firing.rule.outreach {
                if !change.outreach.contains(o) {
                    change.outreach.push(o.clone());
                }
            }
        }
        changes.push(change);
    }
    if !firings.is_empty() {
        link_queues(&mut incidents, &mut changes, state, playbook);
    }
    state.incidents = Some(Box::new(incidents));
    changes
}

/// The customer's open tasks in the other queue than `queue`, as summaries.
pub fn open_in_other_queue(open: &[Task], queue: Queue) -> Vec<TaskSummary> {
    open.iter().filter(|t| t.queue != queue).map(Task::summary).collect()
}

/// The customer's other tasks as `id` sees them: the other open ones, then the resolved ones.
fn earlier_for(incidents: &CustomerIncidents, id: &str) -> Vec<TaskSummary> {
    incidents
        .open
        .iter()
        .filter(|t| t.id != id)
        .map(Task::summary)
        .chain(incidents.earlier.iter().cloned())
        .collect()
}

/// After the changes of one event: every changed task lists the other queue's open task as it
/// now is, and an open task that did not change gets a new version (`linked`) when a task opened
/// in the other queue, so that each team sees the other's work on the customer.
fn link_queues(
    incidents: &mut CustomerIncidents,
    changes: &mut Vec<TaskChange>,
    state: &CustomerState,
    playbook: &Playbook,
) {
    let opened: Vec<(Queue, String, Timestamp)> = changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Opened)
        .map(|c| (c.task.queue, c.task.id.clone(), c.task.updated_at))
        .collect();
    for i in 0..incidents.open.len() {
        let queue = incidents.open[i].queue;
        let id = incidents.open[i].id.clone();
        let changed = changes.iter().position(|c| c.task.id == id);
        let opened_beside = opened.iter().find(|(q, ..)| *q != queue);
        if changed.is_none() && opened_beside.is_none() {
            continue; // unchanged: its next version will say how things then are
        }
        let others = open_in_other_queue(&incidents.open, queue);
        let earlier = earlier_for(incidents, &id);
        let task = &mut incidents.open[i];
        task.context.open_in_other_queue = others;
        task.context.earlier_tasks = earlier;
        if let Some(c) = changed {
            changes[c].task.context.open_in_other_queue = task.context.open_in_other_queue.clone();
            changes[c].task.context.earlier_tasks = task.context.earlier_tasks.clone();
        } else if let Some((other_queue, new_id, at)) = opened_beside {
            let before = AuditView::of(task);
            task.version += 1;
            task.updated_at = task.updated_at.max(*at);
            refresh_procedure(task, playbook, state);
            let mut change = TaskChange::by_engine(ChangeKind::Updated, task.clone(), Some(before));
            change.audit.action = "linked".to_string();
            change.audit.reason = Some(format!("task {new_id} opened in the {other_queue} queue"));
            changes.push(change);
        }
    }
}

/// A new priority-1 fraud task (number `number`, version 0: the caller sets the first version)
/// for a customer who answered "it was not me" about a task already closed: what the closed
/// task `closed_id` knew (`from`, when it is still kept whole: its rules, signals and context), in the
/// customer's language, due within the first SLA.
pub fn reported_task(
    customer_id: &str,
    number: u32,
    at: Timestamp,
    closed_id: &str,
    from: Option<&Task>,
) -> Task {
    let mut task = new_task(customer_id, Queue::Fraud, number, at);
    if let Some(old) = from {
        task.rules = old.rules.clone();
        task.signals = old.signals.clone();
        task.money_at_risk_eur = old.money_at_risk_eur;
        task.context = old.context.clone();
        task.context.actions.retain(|a| a != "block_card");
        task.context.procedure = None;
    }
    let language = phrases::supported(&task.context.language);
    task.title = phrases::filled("report.title", language, &[]);
    task.explanation = phrases::filled("report.explanation", language, &[("task", closed_id)]);
    task.priority = 1;
    task.due_at = due_at(1, at);
    task
}

fn new_task(customer_id: &str, queue: Queue, number: u32, at: Timestamp) -> Task {
    let mut task = Task::blank(task_id(customer_id, queue, number), customer_id, queue, at);
    task.due_at = due_at(4, at);
    task
}

/// The customer's language, `en` without a profile.
fn language(state: &CustomerState) -> &str {
    state.profile.as_ref().map_or("en", |p| p.language())
}

/// The language of a rule's texts for this customer: theirs when both the rule and the phrase
/// catalogue have it, else English.
fn language_for<'r>(rule: &'r Rule, state: &CustomerState) -> &'r str {
    rule.script.language_for(phrases::supported(language(state)))
}

fn customer_placeholder(
    state: &CustomerState,
    customer_id: &str,
    name: &str,
    language: &str,
) -> Option<String> {
    let profile = state.profile.as_ref();
    match name {
        "customer_name" => Some(
            profile.and_then(|p| p.name()).unwrap_or_else(|| phrases::code("word", "customer", language)),
        ),
        "customer_id" => Some(customer_id.to_string()),
        "segment" => {
            Some(phrases::code("segment", profile.map_or("unknown", |p| p.segment().as_str()), language))
        }
        _ => None,
    }
}

/// The complaint category a signal is about: a complaint escalation's or a complaint event's
/// `category`, the latest complaint of a churn risk, an absence anchored on a complaint.
pub fn complaint_category<'a>(facts: &'a [(&str, Fact)]) -> Option<&'a str> {
    let text = |name: &str| {
        facts.iter().find(|(n, _)| *n == name).and_then(|(_, f)| match f {
            Fact::Text(t) => Some(t.as_str()),
            Fact::Num(_) => None,
        })
    };
    text("category")
        .or_else(|| text("complaint_category"))
        .or_else(|| (text("anchor_type") == Some("complaint")).then(|| text("anchor_detail")).flatten())
}

/// [`complaint_category`] of a signal as a task keeps it.
pub fn recorded_category(record: &SignalRecord) -> Option<&str> {
    let text = |name: &str| record.facts.get(name).and_then(|v| v.as_str());
    text("category")
        .or_else(|| text("complaint_category"))
        .or_else(|| (text("anchor_type") == Some("complaint")).then(|| text("anchor_detail")).flatten())
}

/// A signal's facts as the texts show them in `language`: codes put into words (a severity, a
/// contact reason, a card channel, an event type, a complaint category's name, the signs of
/// churn); numbers and data as they are.
fn localized_facts(
    facts: &[(&'static str, Fact)],
    language: &str,
    playbook: &Playbook,
) -> Vec<(&'static str, Fact)> {
    let category = complaint_category(facts).map(|c| playbook.name_of(c, language));
    let text_of = |name: &str| {
        facts.iter().find(|(n, _)| *n == name).and_then(|(_, f)| match f {
            Fact::Text(t) => Some(t.as_str()),
            Fact::Num(_) => None,
        })
    };
    facts
        .iter()
        .map(|(name, fact)| {
            let Fact::Text(value) = fact else { return (*name, fact.clone()) };
            let shown = match *name {
                "severity" => phrases::code("severity", value, language),
                "category" | "complaint_category" => playbook.name_of(value, language),
                "reason" => phrases::code("reason", value, language),
                "channel" => phrases::code("card", value, language),
                "event_type" | "anchor_type" | "first_type" | "last_type" => {
                    phrases::code("kind", value, language)
                }
                "reasons" => phrases::churn_reasons(facts, language, category.as_deref()),
                "changes" => phrases::income_changes(facts, language),
                "anchor_detail" | "first_detail" | "last_detail" => {
                    match text_of(&name.replace("_detail", "_type")) {
                        Some("complaint") => playbook.name_of(value, language),
                        Some("support_contact") => phrases::code("reason", value, language),
                        _ => value.clone(),
                    }
                }
                _ => value.clone(),
            };
            (*name, Fact::Text(shown))
        })
        .collect()
}

/// What a rule says about one signal in one language: the texts a task carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Texts {
    pub title: String,
    pub explanation: String,
    pub script: String,
}

/// Renders a rule's title, explanation and script for `signal` in `language`; `customer` fills
/// the customer's placeholders. The script is the first script variant that fits the signal;
/// else, for a care rule's signal about a complaint (a `category` fact), the script of the
/// category's procedure in the playbook; else the rule's `script`.
pub fn render_texts(
    rule: &Rule,
    playbook: &Playbook,
    signal: &Signal,
    language: &str,
    customer: &dyn Fn(&str) -> Option<String>,
) -> Texts {
    let facts = localized_facts(&signal.facts, language, playbook);
    let procedure_script = || {
        if rule.queue != Queue::Care {
            return None;
        }
        let category = signal.fact("category").and_then(|f| match f {
            Fact::Text(t) => Some(t.as_str()),
            Fact::Num(_) => None,
        })?;
        playbook.render(category, language, customer).map(|p| p.script)
    };
    let script = match rule.variant_for(signal) {
        Some(variant) => variant.get(language).render(&facts, customer),
        None => procedure_script().unwrap_or_else(|| rule.script.get(language).render(&facts, customer)),
    };
    Texts {
        title: rule.title.get(language).render(&facts, customer),
        explanation: rule.explanation.get(language).render(&facts, customer),
        script,
    }
}

/// Renders one of `rule`'s texts (its title, explanation, script or a script variant) for
/// `signal` in `language`, facts put into words as in [`render_texts`].
pub fn render_in(
    playbook: &Playbook,
    text: &crate::rules::Localized,
    signal: &Signal,
    language: &str,
    customer: &dyn Fn(&str) -> Option<String>,
) -> String {
    text.get(language).render(&localized_facts(&signal.facts, language, playbook), customer)
}

/// The procedure for a complaint of `category`, in `language`, as a task carries it.
pub fn procedure(
    playbook: &Playbook,
    category: &str,
    language: &str,
    customer: &dyn Fn(&str) -> Option<String>,
) -> Option<Procedure> {
    let p = playbook.render(category, language, customer)?;
    Some(Procedure {
        category: category.to_string(),
        known: p.known,
        name: p.name,
        team: p.team,
        sla_hours: p.sla_hours,
        compensation: p.compensation != Compensation::No,
        compensation_max_eur: match p.compensation {
            Compensation::UpToEur(eur) => Some(eur),
            Compensation::No | Compensation::Yes => None,
        },
        steps: p.steps,
        script: p.script,
    })
}

/// Adds a firing to a task. Returns the category of the complaint this signal's event is, when
/// the playbook has no procedure for it (care tasks only; each complaint event is counted once,
/// not again by a later signal that only recalls it).
fn add_signal(
    task: &mut Task,
    firing: &Firing<'_>,
    state: &CustomerState,
    playbook: &Playbook,
) -> Option<String> {
    let rule = firing.rule;
    let signal = &firing.signal;
    let lang = language_for(rule, state).to_string();
    let customer_id = task.customer_id.clone();
    let texts = render_texts(rule, playbook, signal, &lang, &|name| {
        customer_placeholder(state, &customer_id, name, &lang)
    });
    let was_most_severe = task.signals.iter().all(|s| rule.severity < s.severity);
    if task.signals.is_empty() || was_most_severe {
        task.title = texts.title;
        task.context.script = texts.script;
        task.context.language = lang.clone();
    }
    if !task.rules.contains(&rule.id) {
        task.rules.push(rule.id.clone());
    }
    for action in &rule.actions {
        if !task.context.actions.contains(action) {
            task.context.actions.push(action.clone());
        }
    }
    let category_name = |category: &str| playbook.name_of(category, &lang);
    for e in &signal.evidence {
        let mut e = e.clone();
        if let Some(body) = e.body.take() {
            e.summary = phrases::evidence(&body, &lang, &category_name);
        } else if e.event_id.is_none() {
            // Known only by its type and what it was about: an absence's anchor (its detail a
            // fact), or a sequence's earlier link (its detail the summary, see
            // `detect::sequence`).
            let text = |name: &str| match signal.fact(name) {
                Some(Fact::Text(t)) => Some(t.as_str()),
                _ => None,
            };
            let link = std::mem::take(&mut e.summary);
            let detail = match text("anchor_type") {
                Some(kind) => text("anchor_detail").filter(|d| !d.is_empty() && kind == e.kind.as_str()),
                None => Some(link.as_str()).filter(|d| !d.is_empty()),
            };
            let country = e.country.map(|c| c.as_str().to_string());
            e.summary = phrases::history(e.kind, e.money, detail, country.as_deref(), &lang, &category_name);
        }
        push_evidence(&mut task.context.events, &e);
    }
    // Euros converted with approximate rates: cents are the honest precision.
    task.money_at_risk_eur = task.money_at_risk_eur.max((signal.money_at_risk_eur * 100.0).round() / 100.0);
    let segment = state.profile.as_ref().map(|p| p.segment());
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
        explanation: texts.explanation,
        facts: signal.facts.iter().map(|(n, f)| (*n, fact_json(f))).collect::<BTreeMap<_, _>>(),
    });
    if task.signals.len() > MAX_SIGNALS {
        task.signals.remove(0);
    }
    task.explanation = task.signals.iter().map(|s| s.explanation.as_str()).collect::<Vec<_>>().join("\n");
    let category = complaint_category(&signal.facts)?;
    let is_the_complaint = signal
        .evidence
        .iter()
        .any(|e| matches!(e.body.as_deref(), Some(crate::event::EventBody::Complaint(_))));
    (task.queue == Queue::Care && is_the_complaint && !playbook.knows(category)).then(|| category.to_string())
}

/// Adds an evidence item in time order, unless the task has it already (the same line at the
/// same time, or, for an item that names no event, an item of the same type at the same time).
fn push_evidence(events: &mut Vec<Evidence>, e: &Evidence) {
    let same = |x: &Evidence| {
        x.at == e.at
            && (x.summary == e.summary
                || (x.kind == e.kind && (x.event_id.is_none() || e.event_id.is_none())))
    };
    if events.iter().any(same) {
        return;
    }
    let pos = events.partition_point(|x| x.at <= e.at);
    events.insert(pos, e.clone());
    if events.len() > MAX_EVIDENCE {
        events.remove(0);
    }
}

/// Profile, history, the customer's other tasks and the complaint's procedure as of now.
fn refresh_context(
    task: &mut Task,
    state: &CustomerState,
    incidents: &CustomerIncidents,
    playbook: &Playbook,
) {
    task.context.profile_known = state.profile.is_some();
    task.context.profile = state.profile.as_ref().map(|p| p.profile());
    let lang = task.context.language.clone();
    task.context.recent_history =
        state.history.iter_newest_first().map(|h| history_line(h, &lang, playbook)).collect();
    task.context.earlier_tasks = earlier_for(incidents, &task.id);
    task.context.open_in_other_queue = open_in_other_queue(&incidents.open, task.queue);
    refresh_procedure(task, playbook, state);
}

/// A care task's procedure: the one of the latest complaint among its signals.
fn refresh_procedure(task: &mut Task, playbook: &Playbook, state: &CustomerState) {
    if task.queue != Queue::Care {
        return;
    }
    let Some(category) = task.signals.iter().rev().find_map(recorded_category).map(str::to_string) else {
        return;
    };
    let lang = task.context.language.clone();
    let customer_id = task.customer_id.clone();
    task.context.procedure =
        procedure(playbook, &category, &lang, &|name| customer_placeholder(state, &customer_id, name, &lang));
}

/// What a checkpoint does not keep of a customer's tasks, derived again after a restore: each
/// task's open task in the other queue and its complaint procedure (from `playbook`, the
/// running rule set's).
pub fn restore_context(state: &mut CustomerState, playbook: &Playbook) {
    let Some(mut incidents) = state.incidents.take() else { return };
    for i in 0..incidents.open.len() {
        let others = open_in_other_queue(&incidents.open, incidents.open[i].queue);
        incidents.open[i].context.open_in_other_queue = others;
        refresh_procedure(&mut incidents.open[i], playbook, state);
    }
    for task in &mut incidents.resolved {
        refresh_procedure(task, playbook, state);
    }
    state.incidents = Some(incidents);
}

fn history_line(h: &HistoryItem, language: &str, playbook: &Playbook) -> HistoryLine {
    let summary = phrases::history(
        h.kind,
        h.money(),
        h.detail(),
        h.country().as_ref().map(|c| c.as_str()),
        language,
        &|category| playbook.name_of(category, language),
    );
    HistoryLine { at: h.at, kind: h.kind, summary }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testkit::event;
    use crate::rules::RuleSet;
    use crate::state::Interner;

    const RULES: &str = r#"
[[rule]]
id = "payment"
queue = "fraud"
severity = "high"
on = ["card_transaction"]
when = "event.amount_eur > 0"
title.en = "Payment of {amount} at {merchant}"
title.ru = "Платёж {amount}: {merchant}"
explanation.en = "A {channel} payment."
explanation.ru = "Платёж ({channel})."
script.en = "Was it you, {customer_name}?"
script.ru = "Это были вы, {customer_name}?"
actions = ["confirm_with_customer"]

[[rule]]
id = "complaint"
queue = "care"
severity = "high"
detector = "complaint_escalation"
title.en = "Complaint: {category} ({severity})"
title.ru = "Жалоба: {category} ({severity})"
explanation.en = "{complaints} complaint(s)."
explanation.ru = "Жалоб: {complaints}."
script.en = "Hello"
script.ru = "Здравствуйте"
actions = ["call_customer"]

[[procedure]]
category = "fees"
team = "billing"
sla = "2d"
compensation = 50
name.en = "fees"
name.ru = "комиссии"
steps.en = ["Check the fee"]
steps.ru = ["Проверьте комиссию"]
script.en = "Hello {customer_name}, about the fee."
script.ru = "Здравствуйте, {customer_name}! По поводу комиссии."

[[procedure]]
category = "*"
team = "desk"
sla = "3d"
compensation = false
name.en = "\"{category}\" (no procedure)"
name.ru = "«{category}» (нет процедуры)"
steps.en = ["Listen"]
steps.ru = ["Выслушайте"]
script.en = "Hello"
script.ru = "Здравствуйте"
"#;

    fn rules() -> RuleSet {
        RuleSet::from_sources(&[("r.toml".to_string(), RULES.to_string())]).expect("valid")
    }

    fn russian_customer() -> CustomerState {
        let mut state = CustomerState::default();
        state.apply(
            &event(
                r#"{"event_id":"p","type":"customer_profile","customer_id":"c","ts":"2026-11-01T09:00:00Z","name":"Anna Petrova","language":"ru","segment":"mass"}"#,
            ),
            &Interner::default(),
        );
        state
    }

    fn complaint(id: &str, category: &str) -> (crate::event::Event, Signal) {
        let e = event(&format!(
            r#"{{"event_id":"{id}","type":"complaint","customer_id":"c","ts":"2026-11-02T10:00:00Z","category":"{category}","severity":"high"}}"#
        ));
        let signal = Signal {
            at: e.ts,
            facts: vec![
                ("category", Fact::Text(category.into())),
                ("severity", Fact::Text("high".into())),
                ("complaints", Fact::Num(1.0)),
            ],
            evidence: vec![Evidence::from_event(&e)],
            money_at_risk_eur: 0.0,
        };
        (e, signal)
    }

    #[test]
    fn a_complaint_task_is_in_the_customers_language_with_its_procedure() {
        let rules = rules();
        let mut state = russian_customer();
        let (_, signal) = complaint("k1", "fees");
        let changes =
            open_or_enrich(vec![Firing { rule: &rules.rules[1], signal }], &mut state, "c", &rules.playbook);
        let task = &changes[0].task;
        assert_eq!(task.title, "Жалоба: комиссии (высокая)");
        assert_eq!(task.context.events[0].summary, "жалоба (важность: высокая): комиссии");
        assert_eq!(
            task.context.script, "Здравствуйте, Anna Petrova! По поводу комиссии.",
            "the procedure's script"
        );
        let p = task.context.procedure.as_ref().expect("a procedure");
        assert!(p.known && p.compensation && p.compensation_max_eur == Some(50.0) && p.sla_hours == 48.0);
        assert_eq!(p.steps, ["Проверьте комиссию"]);
        assert!(changes[0].without_procedure.is_empty());
        // A category without a procedure: the default, said so, and counted.
        let (_, signal) = complaint("k2", "branch_closure");
        let changes =
            open_or_enrich(vec![Firing { rule: &rules.rules[1], signal }], &mut state, "c", &rules.playbook);
        assert_eq!(changes[0].without_procedure, ["branch_closure"]);
        let p = changes[0].task.context.procedure.as_ref().unwrap();
        assert!(!p.known);
        assert_eq!(
            (p.category.as_str(), p.name.as_str()),
            ("branch_closure", "«branch_closure» (нет процедуры)")
        );
    }

    #[test]
    fn a_task_opening_in_one_queue_links_the_other_queues_open_task() {
        let rules = rules();
        let mut state = russian_customer();
        let (_, signal) = complaint("k1", "fees");
        let care =
            open_or_enrich(vec![Firing { rule: &rules.rules[1], signal }], &mut state, "c", &rules.playbook);
        let care_id = care[0].task.id.clone();
        assert!(care[0].task.context.open_in_other_queue.is_empty());
        let payment = event(
            r#"{"event_id":"t","type":"card_transaction","customer_id":"c","ts":"2026-11-02T11:00:00Z","card_id":"k","amount":40,"currency":"EUR","channel":"ecommerce","status":"approved","merchant":{"name":"Shop","country":"FR","city":"Paris"}}"#,
        );
        let mut facts = Vec::new();
        crate::detect::event_facts(&payment, &mut facts);
        let signal = Signal {
            at: payment.ts,
            facts,
            evidence: vec![Evidence::from_event(&payment)],
            money_at_risk_eur: 40.0,
        };
        let changes =
            open_or_enrich(vec![Firing { rule: &rules.rules[0], signal }], &mut state, "c", &rules.playbook);
        assert_eq!(changes.len(), 2, "the new fraud task and a new version of the care task");
        let (fraud, linked) = (&changes[0], &changes[1]);
        assert_eq!(fraud.kind, ChangeKind::Opened);
        assert_eq!(fraud.task.title, "Платёж 40.00 EUR: Shop");
        assert_eq!(fraud.task.explanation, "Платёж (онлайн-оплата).");
        assert_eq!(
            fraud.task.context.open_in_other_queue.iter().map(|t| &t.id).collect::<Vec<_>>(),
            [&care_id]
        );
        assert_eq!(
            (linked.kind, linked.task.id.as_str(), linked.task.version),
            (ChangeKind::Updated, care_id.as_str(), 2)
        );
        assert_eq!(linked.audit.action, "linked");
        assert_eq!(linked.task.context.open_in_other_queue[0].id, fraud.task.id);
        assert_eq!(linked.task.context.open_in_other_queue[0].queue, Queue::Fraud);
        // A new signal on an open task links nothing new.
        let (_, signal) = complaint("k3", "fees");
        let changes =
            open_or_enrich(vec![Firing { rule: &rules.rules[1], signal }], &mut state, "c", &rules.playbook);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].task.context.open_in_other_queue[0].id, fraud.task.id);
        // What a checkpoint does not keep comes back on restore.
        let before: Vec<Task> = state.incidents.as_ref().unwrap().open.clone();
        for t in &mut state.incidents.as_mut().unwrap().open {
            t.context.procedure = None;
            t.context.open_in_other_queue.clear();
        }
        restore_context(&mut state, &rules.playbook);
        assert_eq!(state.incidents.as_ref().unwrap().open, before);
    }

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
