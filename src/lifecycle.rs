//! The task lifecycle: a [`Command`] applied to one customer's incidents.
//!
//! `open → claimed → contacted → resolved`, with `release` (back to open), `reassign`
//! (supervisors), `reopen` (supervisors, the customer's last resolved task of a queue), `snooze`
//! (until a time; new signals unsnooze), `escalate` (past due: one step more urgent) and
//! `expire_claim` (an idle holder loses the claim). Pure: the caller (the engine) holds the
//! customer's lock, so commands and events of one customer are applied one at a time, in order.
//!
//! Invariants:
//! - a claim is compare-and-set: a task held by someone else is refused with who holds it;
//! - only the holder (or a supervisor, an admin, the customer, the system) changes a held task;
//! - a resolved task leaves the open list, so the next signal opens a new incident; the last
//!   resolved task per queue is kept for `reopen`, which is refused while that queue has another
//!   open task (one open task per customer and queue);
//! - every applied change bumps the version once and carries one audit record;
//! - a command that would change nothing (a claim by the holder) is applied without a new
//!   version.

use crate::command::{Action, Command, CommandResult, Refusal, Role};
use crate::incident::{CustomerIncidents, MAX_EARLIER};
use crate::task::{
    AuditRecord, AuditView, CardAction, ChangeKind, ContactAttempt, ContactResult, CustomerAnswer, Note,
    Outcome, OutreachRecord, Task, TaskChange, TaskStatus,
};
use crate::vocab::Queue;

/// Notes and contact attempts kept per task (the oldest dropped first).
pub const MAX_NOTES: usize = 20;

/// What applying a command did.
#[derive(Debug)]
pub struct Applied {
    pub result: CommandResult,
    /// The new task versions: none when the command changed nothing, one usually, two when a
    /// customer's "no" on a closed task is recorded there and opens (or reaches) an open task.
    pub changes: Vec<TaskChange>,
}

/// The reason a card block asked for by the customer's "no" carries.
pub const CUSTOMER_REPORTED: &str = "customer_reported_fraud";

/// The reason a card block asked for by an agent carries.
pub const AGENT_BLOCK: &str = "agent_block";

/// Applies `command` to the customer's incidents (created empty if the customer has none).
pub fn apply(incidents: &mut CustomerIncidents, command: &Command) -> Applied {
    let refused = |refusal, detail: String| Applied {
        result: CommandResult::refused(command, refusal, detail),
        changes: Vec::new(),
    };
    match &command.action {
        Action::Reopen { note } => return reopen(incidents, command, note),
        Action::CustomerAnswer { answer } => return customer_answer(incidents, command, answer == "yes"),
        Action::EraseCustomer => {
            return refused(Refusal::Invalid, "an erasure is the engine's, not a task's".to_string());
        }
        _ => {}
    }
    let Some(index) = incidents.open.iter().position(|t| t.id == command.task_id) else {
        let detail = if incidents.resolved.iter().any(|t| t.id == command.task_id)
            || incidents.earlier.iter().any(|t| t.id == command.task_id)
        {
            format!("task {} is resolved", command.task_id)
        } else {
            format!("no open task {} for this customer", command.task_id)
        };
        let refusal = if detail.ends_with("is resolved") { Refusal::Conflict } else { Refusal::NotFound };
        return refused(refusal, detail);
    };
    let task = &mut incidents.open[index];
    let before = AuditView::of(task);
    let actor = &command.actor;
    let at = command.at;
    let holder = task.work.assignee.clone();
    let holds = holder.as_deref() == Some(actor.name.as_str());
    // A held task is changed by its holder, or by someone whose role overrides the claim.
    let may_change_held = holder.is_none() || holds || actor.role.overrides();
    let conflict_held = |what: &str| {
        let mut a = refused(
            Refusal::Conflict,
            format!("cannot {what}: task is held by {}", holder.as_deref().unwrap_or("nobody")),
        );
        a.result.holder = holder.clone();
        a
    };
    let mut kind = ChangeKind::Updated;
    let mut overridden: Option<String> = None;
    let mut actions = Vec::new();
    match &command.action {
        Action::Claim => {
            if holds {
                return Applied {
                    result: CommandResult::applied(command, task.version),
                    changes: Vec::new(),
                };
            }
            if holder.is_some() {
                return conflict_held("claim");
            }
            task.work.assignee = Some(actor.name.clone());
            task.work.claimed_at = Some(at);
            task.work.last_activity_at = Some(at);
            task.status = TaskStatus::Claimed;
        }
        Action::Release => {
            if holder.is_none() {
                return refused(Refusal::Conflict, "cannot release: task is not claimed".to_string());
            }
            if !may_change_held {
                return conflict_held("release");
            }
            release(task);
        }
        Action::Contacted { channel, result, note } => {
            if !may_change_held {
                return conflict_held("record a contact");
            }
            if holder.is_none() && !actor.role.overrides() {
                claim_for(task, &actor.name, at);
            }
            task.work.last_activity_at = Some(at);
            push_capped(
                &mut task.work.contact_attempts,
                ContactAttempt {
                    at,
                    by: actor.name.clone(),
                    channel: *channel,
                    result: *result,
                    note: note.clone(),
                },
            );
            if *result == ContactResult::Reached {
                task.status = TaskStatus::Contacted;
                task.work.first_contact_at.get_or_insert(at);
            }
        }
        Action::Resolve { outcome, note } => {
            if !outcome.fits(task.queue) {
                return refused(
                    Refusal::Invalid,
                    format!("outcome {} is not an outcome of the {} queue", outcome.as_str(), task.queue),
                );
            }
            if !may_change_held {
                return conflict_held("resolve");
            }
            if *outcome == Outcome::CustomerConfirmed {
                return refused(
                    Refusal::Invalid,
                    "customer_confirmed is recorded by the customer's own answer, not by an agent"
                        .to_string(),
                );
            }
            // "Legitimate" teaches lasting trust: only the agent who holds the task (who has
            // spoken to the customer) may say so, or a supervisor overriding (audited as such).
            let supervises = matches!(actor.role, Role::Supervisor | Role::Admin);
            if task.queue == Queue::Fraud && *outcome == Outcome::Legitimate && !holds && !supervises {
                return refused(
                    Refusal::Conflict,
                    "cannot resolve as legitimate: claim the task first (only its holder or a supervisor may)"
                        .to_string(),
                );
            }
            if supervises && !holds {
                overridden = holder.clone().or_else(|| Some("nobody".to_string()));
            }
            task.status = TaskStatus::Resolved;
            task.outcome = Some(*outcome);
            task.work.resolved_by = Some(actor.name.clone());
            task.work.resolved_at = Some(at);
            task.work.resolution_note = Some(note.clone());
            task.work.snoozed_until = None;
            push_capped(&mut task.work.notes, Note { at, by: actor.name.clone(), text: note.clone() });
            kind = ChangeKind::Resolved;
        }
        Action::Note { text } => {
            if holds {
                task.work.last_activity_at = Some(at);
            }
            push_capped(&mut task.work.notes, Note { at, by: actor.name.clone(), text: text.clone() });
        }
        Action::Reassign { to, note } => {
            if !matches!(actor.role, Role::Supervisor | Role::Admin) {
                return refused(Refusal::Invalid, "only supervisors reassign".to_string());
            }
            if holder.as_deref() == Some(to.as_str()) {
                return Applied {
                    result: CommandResult::applied(command, task.version),
                    changes: Vec::new(),
                };
            }
            claim_for(task, to, at);
            push_capped(&mut task.work.notes, Note { at, by: actor.name.clone(), text: note.clone() });
        }
        Action::Snooze { until, reason } => {
            if !may_change_held {
                return conflict_held("snooze");
            }
            task.work.snoozed_until = Some(*until);
            task.work.snooze_reason = Some(reason.clone());
            if holds {
                task.work.last_activity_at = Some(at);
            }
        }
        Action::Escalate { version } => {
            if task.version != *version || task.work.escalated {
                return refused(Refusal::Conflict, "task changed since it was found overdue".to_string());
            }
            if task.due_at > at {
                return refused(Refusal::Conflict, format!("task is not due until {}", task.due_at));
            }
            task.work.escalated = true;
            task.priority = task.priority.saturating_sub(1).max(1);
        }
        Action::ExpireClaim { version } => {
            if task.version != *version || holder.is_none() {
                return refused(Refusal::Conflict, "task changed since its claim was found idle".to_string());
            }
            release(task);
        }
        Action::Outreach { job, template, decision, reason } => {
            push_capped(
                &mut task.work.outreach,
                OutreachRecord {
                    at,
                    job: job.clone(),
                    template: template.clone(),
                    decision: decision.clone(),
                    reason: reason.clone(),
                },
            );
        }
        Action::BlockCard { note } => {
            if task.queue != Queue::Fraud {
                return refused(Refusal::Invalid, "only a fraud task blocks a card".to_string());
            }
            if holder.is_none() && !matches!(actor.role, Role::Supervisor | Role::Admin) {
                return refused(Refusal::Conflict, "cannot block the card: claim the task first".to_string());
            }
            if !may_change_held {
                return conflict_held("block the card");
            }
            if holds {
                task.work.last_activity_at = Some(at);
            }
            push_capped(&mut task.work.notes, Note { at, by: actor.name.clone(), text: note.clone() });
            actions.push(AGENT_BLOCK);
        }
        Action::Reopen { .. } | Action::CustomerAnswer { .. } | Action::EraseCustomer => {
            unreachable!("handled above")
        }
    }
    task.version += 1;
    task.updated_at = task.updated_at.max(at);
    let version = task.version;
    let mut audit = audit(task, command, Some(before));
    if let Some(holder) = overridden {
        audit.reason =
            Some(format!("supervisor override (held by {holder}): {}", audit.reason.unwrap_or_default()));
    }
    let actions =
        actions.into_iter().map(|reason| CardAction::block(task, reason, &actor.name, at)).collect();
    // As of this version: the other queue's open task may have come or gone since the last.
    let others = crate::incident::open_in_other_queue(&incidents.open, incidents.open[index].queue);
    incidents.open[index].context.open_in_other_queue = others;
    let task =
        if kind == ChangeKind::Resolved { close(incidents, index) } else { incidents.open[index].clone() };
    Applied {
        result: CommandResult::applied(command, version),
        changes: vec![TaskChange {
            kind,
            task,
            audit,
            outreach: Vec::new(),
            without_procedure: Vec::new(),
            actions,
        }],
    }
}

/// Moves the resolved open task at `index` to the resolved ones (the last per queue, whole) and
/// the earlier ones (summaries); returns it.
fn close(incidents: &mut CustomerIncidents, index: usize) -> Task {
    let task = incidents.open.swap_remove(index);
    incidents.earlier.insert(0, task.summary());
    incidents.earlier.truncate(MAX_EARLIER);
    incidents.resolved.retain(|t| t.queue != task.queue);
    incidents.resolved.push(task.clone());
    task
}

/// The template of the e-mail that tells a customer who answered "it was not me" what happens
/// next.
pub const FOLLOW_UP: &str = "fraud_followup";

/// The customer's one-click answer (`yes`: it was me; `no`: it was not me).
///
/// A "yes" is the customer's word, not proof (whoever holds the mailbox can click): on an open
/// task nobody holds it resolves the task as `customer_confirmed`, which teaches no lasting
/// trust; on a task an agent holds, or after a "no", it is recorded and the agent decides; on a
/// closed task it is refused (the page says the matter is closed).
///
/// A "no" is never refused and never lost: on an open task, in any state, it is recorded, the
/// task becomes most urgent with the card's block first, the card system is asked to block the
/// card and the customer is told what happens next. On a resolved (or forgotten) task it is
/// recorded on that task when it is still kept whole, and brought to the customer's open fraud
/// task, or to a new priority-1 fraud task that names the old one among its earlier tasks.
fn customer_answer(incidents: &mut CustomerIncidents, command: &Command, yes: bool) -> Applied {
    let at = command.at;
    let by = command.actor.name.as_str();
    let link = command.command_id.as_str();
    let answer = CustomerAnswer { at, answer: if yes { "yes" } else { "no" }.to_string() };
    if let Some(index) = incidents.open.iter().position(|t| t.id == command.task_id) {
        let task = &mut incidents.open[index];
        let before = AuditView::of(task);
        let said_no = task.work.customer_answer.as_ref().is_some_and(|a| a.answer == "no");
        task.work.customer_answer = Some(answer);
        let mut change = TaskChange::by_engine(ChangeKind::Updated, task.clone(), None);
        if yes {
            let text = match (&task.work.assignee, said_no) {
                (Some(holder), _) => format!(
                    "The customer answered by e-mail ({link}): it was them. {holder} holds the task and decides."
                ),
                (None, true) => format!(
                    "The customer answered by e-mail ({link}): it was them, after answering that it was not. \
                     The \"no\" stands until an agent speaks to them."
                ),
                (None, false) => {
                    let note = format!(
                        "The customer confirmed by e-mail ({link}): it was them. Their word, not proof: nothing \
                         is trusted for good."
                    );
                    task.status = TaskStatus::Resolved;
                    task.outcome = Some(Outcome::CustomerConfirmed);
                    task.work.resolved_by = Some(by.to_string());
                    task.work.resolved_at = Some(at);
                    task.work.resolution_note = Some(note.clone());
                    task.work.snoozed_until = None;
                    change.kind = ChangeKind::Resolved;
                    note
                }
            };
            push_capped(&mut task.work.notes, Note { at, by: by.to_string(), text });
        } else {
            report(task, at, by, format!("The customer answered by e-mail ({link}): it was NOT them."));
        }
        task.version += 1;
        task.updated_at = task.updated_at.max(at);
        change.audit = audit(task, command, Some(before));
        if !yes {
            change.actions.push(CardAction::block(task, CUSTOMER_REPORTED, by, at));
            change.outreach.push(follow_up());
        }
        let others = crate::incident::open_in_other_queue(&incidents.open, incidents.open[index].queue);
        incidents.open[index].context.open_in_other_queue = others;
        change.task = if change.kind == ChangeKind::Resolved {
            close(incidents, index)
        } else {
            incidents.open[index].clone()
        };
        return Applied {
            result: CommandResult::applied(command, change.task.version),
            changes: vec![change],
        };
    }
    let closed = incidents.resolved.iter().any(|t| t.id == command.task_id)
        || incidents.earlier.iter().any(|t| t.id == command.task_id);
    if yes {
        let (refusal, detail) = if closed {
            (Refusal::Conflict, format!("task {} is resolved: the matter is closed", command.task_id))
        } else {
            (Refusal::NotFound, format!("no open task {} for this customer", command.task_id))
        };
        return Applied { result: CommandResult::refused(command, refusal, detail), changes: Vec::new() };
    }
    // A "no" after the task was closed: it reaches a person through an open fraud task.
    let target_index = match incidents.open.iter().position(|t| t.queue == Queue::Fraud) {
        Some(i) => i,
        None => {
            let number = incidents.opened[0];
            incidents.opened[0] += 1;
            let from = incidents.resolved.iter().find(|t| t.id == command.task_id);
            let task =
                crate::incident::reported_task(&command.customer_id, number, at, &command.task_id, from);
            incidents.open.push(task);
            incidents.open.len() - 1
        }
    };
    let target_id = incidents.open[target_index].id.clone();
    let mut changes = Vec::new();
    if let Some(old) = incidents.resolved.iter_mut().find(|t| t.id == command.task_id) {
        let before = AuditView::of(old);
        old.work.customer_answer = Some(answer.clone());
        let text = format!(
            "The customer answered by e-mail ({link}) after this task was closed: it was NOT them. \
             Fraud task {target_id} is open for it."
        );
        push_capped(&mut old.work.notes, Note { at, by: by.to_string(), text });
        old.version += 1;
        old.updated_at = old.updated_at.max(at);
        let mut change = TaskChange::by_engine(ChangeKind::Updated, old.clone(), None);
        change.audit = audit(old, command, Some(before));
        changes.push(change);
    }
    let earlier = incidents.earlier.iter().filter(|t| t.id != target_id).cloned().collect::<Vec<_>>();
    let task = &mut incidents.open[target_index];
    let opened = task.version == 0;
    let before = (!opened).then(|| AuditView::of(task));
    task.work.customer_answer = Some(answer);
    report(
        task,
        at,
        by,
        format!(
            "The customer answered by e-mail ({link}): it was NOT them, about task {}, already closed.",
            command.task_id
        ),
    );
    task.context.earlier_tasks = earlier;
    task.version += 1;
    task.updated_at = task.updated_at.max(at);
    let kind = if opened { ChangeKind::Opened } else { ChangeKind::Updated };
    let mut change = TaskChange::by_engine(kind, task.clone(), None);
    change.audit = audit(task, command, before);
    change.actions.push(CardAction::block(task, CUSTOMER_REPORTED, by, at));
    change.outreach.push(follow_up());
    let others = crate::incident::open_in_other_queue(&incidents.open, Queue::Fraud);
    incidents.open[target_index].context.open_in_other_queue = others.clone();
    change.task.context.open_in_other_queue = others;
    let mut result =
        CommandResult::applied(command, changes.first().map_or(change.task.version, |c| c.task.version));
    result.detail = Some(format!("recorded; fraud task {target_id} is open for it"));
    changes.push(change);
    Applied { result, changes }
}

/// A customer's "no" on an open task: the most urgent priority and SLA, the card's block first
/// among the suggested actions, and the answer in the notes.
fn report(task: &mut Task, at: crate::time::Timestamp, by: &str, text: String) {
    task.priority = 1;
    task.due_at = task.due_at.min(at.plus(crate::incident::SLA[0]));
    task.work.snoozed_until = None;
    task.work.snooze_reason = None;
    task.context.actions.retain(|a| a != "block_card");
    task.context.actions.insert(0, "block_card".to_string());
    push_capped(&mut task.work.notes, Note { at, by: by.to_string(), text });
}

fn follow_up() -> crate::vocab::Outreach {
    crate::vocab::Outreach { template: FOLLOW_UP.to_string(), any_hour: true }
}

/// Reopens the customer's last resolved task of its queue.
fn reopen(incidents: &mut CustomerIncidents, command: &Command, note: &str) -> Applied {
    let refused = |refusal, detail: String| Applied {
        result: CommandResult::refused(command, refusal, detail),
        changes: Vec::new(),
    };
    if !matches!(command.actor.role, Role::Supervisor | Role::Admin) {
        return refused(Refusal::Invalid, "only supervisors reopen".to_string());
    }
    if incidents.open.iter().any(|t| t.id == command.task_id) {
        return refused(Refusal::Conflict, format!("task {} is not resolved", command.task_id));
    }
    let Some(index) = incidents.resolved.iter().position(|t| t.id == command.task_id) else {
        return refused(
            Refusal::NotFound,
            format!("task {} is not this customer's last resolved task of its queue", command.task_id),
        );
    };
    let queue: Queue = incidents.resolved[index].queue;
    if let Some(other) = incidents.open.iter().find(|t| t.queue == queue) {
        return refused(
            Refusal::Conflict,
            format!("the customer has another open {queue} task ({}): add to that one", other.id),
        );
    }
    let mut task = incidents.resolved.remove(index);
    let before = AuditView::of(&task);
    task.status = TaskStatus::Open;
    task.outcome = None;
    task.work.assignee = None;
    task.work.claimed_at = None;
    task.work.resolved_by = None;
    task.work.resolved_at = None;
    task.work.resolution_note = None;
    push_capped(
        &mut task.work.notes,
        Note { at: command.at, by: command.actor.name.clone(), text: note.to_string() },
    );
    task.version += 1;
    task.updated_at = task.updated_at.max(command.at);
    incidents.earlier.retain(|t| t.id != task.id);
    task.context.open_in_other_queue = crate::incident::open_in_other_queue(&incidents.open, task.queue);
    let audit = audit(&task, command, Some(before));
    incidents.open.push(task.clone());
    Applied {
        result: CommandResult::applied(command, task.version),
        changes: vec![TaskChange {
            kind: ChangeKind::Reopened,
            task,
            audit,
            outreach: Vec::new(),
            without_procedure: Vec::new(),
            actions: Vec::new(),
        }],
    }
}

fn claim_for(task: &mut Task, who: &str, at: crate::time::Timestamp) {
    task.work.assignee = Some(who.to_string());
    task.work.claimed_at = Some(at);
    task.work.last_activity_at = Some(at);
    if task.status == TaskStatus::Open {
        task.status = TaskStatus::Claimed;
    }
}

fn release(task: &mut Task) {
    task.work.assignee = None;
    task.work.claimed_at = None;
    task.work.last_activity_at = None;
    task.status = TaskStatus::Open;
}

fn push_capped<T>(items: &mut Vec<T>, item: T) {
    if items.len() >= MAX_NOTES {
        items.remove(0);
    }
    items.push(item);
}

fn audit(task: &Task, command: &Command, before: Option<AuditView>) -> AuditRecord {
    AuditRecord {
        task_id: task.id.clone(),
        version: task.version,
        at: command.at,
        actor: command.actor.name.clone(),
        role: command.actor.role.as_str().to_string(),
        action: command.action.name().to_string(),
        reason: command.action.reason().map(str::to_string),
        command_id: Some(command.command_id.clone()),
        before,
        after: AuditView::of(task),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Actor;
    use crate::incident::task_id;
    use crate::task::{ContactChannel, Outcome};
    use crate::time::{Timestamp, HOUR};

    fn task(queue: Queue, number: u32) -> Task {
        let mut t = Task::blank(task_id("c1", queue, number), "c1", queue, Timestamp(0));
        t.version = 1;
        t.rules = vec!["r".into()];
        t.priority = 2;
        t.due_at = Timestamp(2 * HOUR);
        t.title = "t".into();
        t.explanation = "e".into();
        t
    }

    fn incidents() -> CustomerIncidents {
        CustomerIncidents { open: vec![task(Queue::Fraud, 0)], opened: [1, 0], ..Default::default() }
    }

    fn cmd(id: &str, who: &str, role: Role, at: i64, action: Action) -> Command {
        Command {
            command_id: id.into(),
            customer_id: "c1".into(),
            task_id: task_id("c1", Queue::Fraud, 0),
            at: Timestamp(at),
            actor: Actor { name: who.into(), role },
            action,
        }
    }

    fn resolve(outcome: Outcome) -> Action {
        Action::Resolve { outcome, note: "done".into() }
    }

    #[test]
    fn every_version_names_the_other_queues_open_task_as_it_then_is() {
        let mut inc = incidents();
        inc.open.push(task(Queue::Care, 0));
        let claimed = apply(&mut inc, &cmd("1", "ana", Role::FraudAgent, 10, Action::Claim))
            .changes
            .into_iter()
            .next()
            .unwrap();
        let others: Vec<_> =
            claimed.task.context.open_in_other_queue.iter().map(|t| (t.queue, t.status)).collect();
        assert_eq!(others, [(Queue::Care, TaskStatus::Open)]);
        inc.open.retain(|t| t.queue == Queue::Fraud);
        let noted =
            apply(&mut inc, &cmd("2", "ana", Role::FraudAgent, 11, Action::Note { text: "x".into() }));
        assert!(
            noted.changes.into_iter().next().unwrap().task.context.open_in_other_queue.is_empty(),
            "the care task is gone"
        );
    }

    #[test]
    fn a_claim_is_compare_and_set() {
        let mut inc = incidents();
        let a = apply(&mut inc, &cmd("1", "ana", Role::FraudAgent, 10, Action::Claim));
        assert_eq!(a.result.version, Some(2));
        let change = a.changes.into_iter().next().expect("claimed");
        assert_eq!(change.task.status, TaskStatus::Claimed);
        assert_eq!(change.audit.action, "claim");
        assert_eq!(change.audit.before.as_ref().unwrap().assignee, None);
        assert_eq!(change.audit.after.assignee.as_deref(), Some("ana"));
        let b = apply(&mut inc, &cmd("2", "bob", Role::FraudAgent, 11, Action::Claim));
        assert_eq!(b.result.refusal, Some(Refusal::Conflict));
        assert_eq!(b.result.holder.as_deref(), Some("ana"));
        assert!(b.changes.is_empty());
        let again = apply(&mut inc, &cmd("3", "ana", Role::FraudAgent, 12, Action::Claim));
        assert_eq!((again.result.version, again.changes.is_empty()), (Some(2), true), "no new version");
        let other = apply(&mut inc, &cmd("4", "bob", Role::FraudAgent, 13, resolve(Outcome::Legitimate)));
        assert_eq!(other.result.refusal, Some(Refusal::Conflict), "only the holder resolves");
    }

    #[test]
    fn the_lifecycle_runs_open_claimed_contacted_resolved_and_reopens() {
        let mut inc = incidents();
        apply(&mut inc, &cmd("1", "ana", Role::FraudAgent, 10, Action::Claim));
        let attempt =
            |result| Action::Contacted { channel: ContactChannel::Phone, result, note: String::new() };
        let a = apply(&mut inc, &cmd("2", "ana", Role::FraudAgent, 20, attempt(ContactResult::NoAnswer)));
        assert_eq!(
            a.changes.into_iter().next().unwrap().task.status,
            TaskStatus::Claimed,
            "no answer is not contact"
        );
        let a = apply(&mut inc, &cmd("3", "ana", Role::FraudAgent, 30, attempt(ContactResult::Reached)));
        let t = a.changes.into_iter().next().unwrap().task;
        assert_eq!(
            (t.status, t.work.first_contact_at, t.work.contact_attempts.len()),
            (TaskStatus::Contacted, Some(Timestamp(30)), 2)
        );
        let wrong = apply(&mut inc, &cmd("4", "ana", Role::FraudAgent, 40, resolve(Outcome::Retained)));
        assert_eq!(wrong.result.refusal, Some(Refusal::Invalid), "a care outcome on a fraud task");
        let done = apply(&mut inc, &cmd("5", "ana", Role::FraudAgent, 50, resolve(Outcome::ConfirmedFraud)));
        let change = done.changes.into_iter().next().unwrap();
        assert_eq!(
            (change.kind, change.task.version, change.task.outcome),
            (ChangeKind::Resolved, 5, Some(Outcome::ConfirmedFraud))
        );
        assert!(inc.open.is_empty(), "a resolved task leaves the open list");
        assert_eq!(inc.earlier[0].outcome, Some(Outcome::ConfirmedFraud));
        let late = apply(&mut inc, &cmd("6", "ana", Role::FraudAgent, 60, Action::Note { text: "x".into() }));
        assert_eq!(late.result.refusal, Some(Refusal::Conflict));
        let agent =
            apply(&mut inc, &cmd("7", "ana", Role::FraudAgent, 70, Action::Reopen { note: "no".into() }));
        assert_eq!(agent.result.refusal, Some(Refusal::Invalid), "agents do not reopen");
        let r = apply(
            &mut inc,
            &cmd("8", "sue", Role::Supervisor, 80, Action::Reopen { note: "customer called back".into() }),
        );
        let t = r.changes.into_iter().next().unwrap().task;
        assert_eq!((t.status, t.outcome, t.version, t.work.assignee), (TaskStatus::Open, None, 6, None));
        assert_eq!(inc.open.len(), 1);
        assert!(inc.earlier.is_empty(), "no longer an earlier task");
    }

    #[test]
    fn reopening_is_refused_while_the_queue_has_another_open_task() {
        let mut inc = incidents();
        apply(&mut inc, &cmd("1", "ana", Role::FraudAgent, 10, resolve(Outcome::Unreachable)));
        inc.open.push(task(Queue::Fraud, 1));
        let r = apply(&mut inc, &cmd("2", "sue", Role::Supervisor, 20, Action::Reopen { note: "n".into() }));
        assert_eq!(r.result.refusal, Some(Refusal::Conflict));
        assert!(r.result.detail.unwrap().contains(&task_id("c1", Queue::Fraud, 1)));
    }

    #[test]
    fn supervisors_reassign_and_release_overrides_the_holder() {
        let mut inc = incidents();
        apply(&mut inc, &cmd("1", "ana", Role::FraudAgent, 10, Action::Claim));
        let agent = apply(
            &mut inc,
            &cmd("2", "ana", Role::FraudAgent, 20, Action::Reassign { to: "bob".into(), note: "n".into() }),
        );
        assert_eq!(agent.result.refusal, Some(Refusal::Invalid));
        let r = apply(
            &mut inc,
            &cmd(
                "3",
                "sue",
                Role::Supervisor,
                30,
                Action::Reassign { to: "bob".into(), note: "ana is off".into() },
            ),
        );
        let t = r.changes.into_iter().next().unwrap().task;
        assert_eq!((t.work.assignee.as_deref(), t.status), (Some("bob"), TaskStatus::Claimed));
        assert_eq!(t.work.notes.last().unwrap().text, "ana is off");
        let r = apply(&mut inc, &cmd("4", "sue", Role::Supervisor, 40, Action::Release));
        assert_eq!(r.changes.into_iter().next().unwrap().task.work.assignee, None);
    }

    #[test]
    fn escalation_and_claim_expiry_apply_only_to_the_version_seen() {
        let mut inc = incidents();
        let sla = |id: &str, at, action| cmd(id, "sla", Role::System, at, action);
        let early = apply(&mut inc, &sla("1", HOUR, Action::Escalate { version: 1 }));
        assert_eq!(early.result.refusal, Some(Refusal::Conflict), "not due yet");
        let e = apply(&mut inc, &sla("2", 3 * HOUR, Action::Escalate { version: 1 }));
        let t = e.changes.into_iter().next().unwrap().task;
        assert_eq!((t.priority, t.work.escalated, t.version), (1, true, 2));
        let twice = apply(&mut inc, &sla("3", 3 * HOUR, Action::Escalate { version: 2 }));
        assert_eq!(twice.result.refusal, Some(Refusal::Conflict), "escalated once");
        apply(&mut inc, &cmd("4", "ana", Role::FraudAgent, 4 * HOUR, Action::Claim));
        let stale = apply(&mut inc, &sla("5", 5 * HOUR, Action::ExpireClaim { version: 2 }));
        assert_eq!(
            stale.result.refusal,
            Some(Refusal::Conflict),
            "the claim is newer than what the ticker saw"
        );
        let x = apply(&mut inc, &sla("6", 5 * HOUR, Action::ExpireClaim { version: 3 }));
        let t = x.changes.into_iter().next().unwrap().task;
        assert_eq!((t.status, t.work.assignee), (TaskStatus::Open, None));
    }

    #[test]
    fn an_agents_block_asks_the_card_system_once_per_version() {
        let mut inc = incidents();
        let block = || Action::BlockCard { note: "stolen".into() };
        let unclaimed = apply(&mut inc, &cmd("1", "ana", Role::FraudAgent, 10, block()));
        assert_eq!(unclaimed.result.refusal, Some(Refusal::Conflict), "claim first");
        apply(&mut inc, &cmd("2", "ana", Role::FraudAgent, 11, Action::Claim));
        let change = apply(&mut inc, &cmd("3", "ana", Role::FraudAgent, 12, block())).changes.remove(0);
        assert_eq!(change.actions.len(), 1);
        let a = &change.actions[0];
        assert_eq!((a.action, a.reason, a.requested_by.as_str()), ("block_card", AGENT_BLOCK, "ana"));
        assert_eq!(a.action_id, format!("act_{}_{}", change.task.id, change.task.version), "idempotency key");
        let by_customer = apply(
            &mut inc,
            &cmd(
                "4",
                "customer",
                Role::Customer,
                13,
                Action::Resolve { outcome: Outcome::CustomerConfirmed, note: "x".into() },
            ),
        );
        assert_eq!(by_customer.result.refusal, Some(Refusal::Invalid), "only the answer link records it");
    }

    #[test]
    fn snooze_hides_until_a_time_and_unknown_tasks_are_not_found() {
        let mut inc = incidents();
        let s = apply(
            &mut inc,
            &cmd(
                "1",
                "ana",
                Role::FraudAgent,
                10,
                Action::Snooze { until: Timestamp(HOUR), reason: "abroad".into() },
            ),
        );
        assert_eq!(s.changes.into_iter().next().unwrap().task.work.snoozed_until, Some(Timestamp(HOUR)));
        let mut c = cmd("2", "ana", Role::FraudAgent, 10, Action::Claim);
        c.task_id = "tsk_nope".into();
        assert_eq!(apply(&mut inc, &c).result.refusal, Some(Refusal::NotFound));
    }
}
