//! The output: a task for a human, with full context. One task is one incident for one customer
//! in one queue. Its JSON form is the contract with agents' tools and downstream systems
//! (documented in the README, "Task format").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::detect::{DetectorKind, Evidence};
use crate::event::Profile;
use crate::time::Timestamp;
use crate::vocab::{Queue, Severity};

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Open,
    Claimed,
    Contacted,
    Resolved,
}

/// How a resolved task ended. Fraud tasks end `confirmed_fraud`, `legitimate` or
/// `unreachable`; care tasks `retained`, `churned`, `resolved_issue` or `unreachable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Fraud confirmed: the card or access was blocked.
    ConfirmedFraud,
    /// The customer confirmed it was them: the engine learns the trip, payment or device.
    Legitimate,
    /// Nobody could be reached.
    Unreachable,
    /// Care: the customer stays.
    Retained,
    /// Care: the customer left anyway.
    Churned,
    /// Care: the customer's problem was solved.
    ResolvedIssue,
    /// Fraud: the customer said "it was me" through an answer link. Their word, not proof: it
    /// teaches no lasting trust (whoever holds the mailbox can click), it only holds back a
    /// repeat alert for the same card, merchant and country for a day.
    CustomerConfirmed,
}

impl Outcome {
    /// Every outcome, in declaration order.
    pub const ALL: [Outcome; 7] = [
        Outcome::ConfirmedFraud,
        Outcome::Legitimate,
        Outcome::Unreachable,
        Outcome::Retained,
        Outcome::Churned,
        Outcome::ResolvedIssue,
        Outcome::CustomerConfirmed,
    ];

    /// The outcome's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::ConfirmedFraud => "confirmed_fraud",
            Outcome::Legitimate => "legitimate",
            Outcome::Unreachable => "unreachable",
            Outcome::Retained => "retained",
            Outcome::Churned => "churned",
            Outcome::ResolvedIssue => "resolved_issue",
            Outcome::CustomerConfirmed => "customer_confirmed",
        }
    }

    /// True if a task of `queue` may end with this outcome.
    pub fn fits(self, queue: Queue) -> bool {
        match queue {
            Queue::Fraud => {
                matches!(
                    self,
                    Outcome::ConfirmedFraud
                        | Outcome::Legitimate
                        | Outcome::Unreachable
                        | Outcome::CustomerConfirmed
                )
            }
            Queue::Care => matches!(
                self,
                Outcome::Retained | Outcome::Churned | Outcome::ResolvedIssue | Outcome::Unreachable
            ),
        }
    }

    /// True if the outcome confirms that the signal was real (the numerator of a rule's
    /// precision): fraud confirmed, or a care case that was a real risk or problem.
    pub fn confirms(self) -> bool {
        matches!(
            self,
            Outcome::ConfirmedFraud | Outcome::Retained | Outcome::Churned | Outcome::ResolvedIssue
        )
    }
}

/// How a contact attempt went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactResult {
    Reached,
    NoAnswer,
    Voicemail,
    WrongNumber,
}

/// How the customer was contacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactChannel {
    Phone,
    Email,
    Sms,
    Chat,
    Branch,
}

/// One attempt to reach the customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactAttempt {
    pub at: Timestamp,
    pub by: String,
    pub channel: ContactChannel,
    pub result: ContactResult,
    pub note: String,
}

/// A note an agent left on the task (also the reason of a resolve, reassign, reopen, snooze).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    pub at: Timestamp,
    pub by: String,
    pub text: String,
}

/// Where a task is in the agents' hands. Every field is always present in JSON (the stored
/// layout of `state::codec` has no field names, so nothing here may be skipped when empty).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Workflow {
    /// The agent who holds the task (claimed or reassigned to them).
    pub assignee: Option<String>,
    /// When the current holder claimed it.
    pub claimed_at: Option<Timestamp>,
    /// The holder's last action on the task: a claim expires after an idle time from here.
    pub last_activity_at: Option<Timestamp>,
    /// Hidden from the queue until then (cleared by new signals).
    pub snoozed_until: Option<Timestamp>,
    pub snooze_reason: Option<String>,
    /// Past its due time while open or claimed: one step more urgent, shown first.
    pub escalated: bool,
    /// When the customer was first reached.
    pub first_contact_at: Option<Timestamp>,
    pub contact_attempts: Vec<ContactAttempt>,
    pub notes: Vec<Note>,
    /// Who resolved it, when, and why.
    pub resolved_by: Option<String>,
    pub resolved_at: Option<Timestamp>,
    pub resolution_note: Option<String>,
    /// Every outreach decision (sent, deferred, suppressed, failed) with its reason.
    pub outreach: Vec<OutreachRecord>,
    /// The customer's answer to a confirmation e-mail.
    pub customer_answer: Option<CustomerAnswer>,
}

/// One decision about an e-mail to the customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutreachRecord {
    pub at: Timestamp,
    /// The outreach job (`<task id>.<template>`).
    pub job: String,
    pub template: String,
    /// `sent`, `deferred`, `suppressed` or `failed`.
    pub decision: String,
    pub reason: String,
}

/// What the customer answered, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerAnswer {
    pub at: Timestamp,
    /// `yes` (it was me) or `no` (it was not me).
    pub answer: String,
}

/// One rule's finding inside a task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignalRecord {
    pub rule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detector: Option<DetectorKind>,
    pub severity: Severity,
    pub at: Timestamp,
    /// The rule's explanation, filled with this signal's numbers.
    pub explanation: String,
    pub facts: BTreeMap<&'static str, serde_json::Value>,
}

/// A short line about one of the customer's recent events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryLine {
    pub at: Timestamp,
    #[serde(rename = "type")]
    pub kind: crate::event::EventKind,
    pub summary: String,
}

/// An earlier or parallel task of the same customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskSummary {
    pub id: String,
    pub queue: Queue,
    pub title: String,
    pub status: TaskStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    pub opened_at: Timestamp,
}

/// The procedure for the complaint a care task is about, from the complaint playbook, in the
/// task's language.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Procedure {
    /// The complaint's category as the complaint gave it.
    pub category: String,
    /// False when the playbook has no procedure for this category: the default one is shown.
    pub known: bool,
    /// The category's name (for an unknown category, the default's name, which says so).
    pub name: String,
    /// The team that owns complaints of this category.
    pub team: String,
    /// Time to resolve the complaint, in hours.
    pub sla_hours: f64,
    /// Whether the agent may offer compensation.
    pub compensation: bool,
    /// The most the agent may offer, in euros; none when there is no limit (or no compensation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compensation_max_eur: Option<f64>,
    /// What the agent does, in order.
    pub steps: Vec<String>,
    /// What the agent says.
    pub script: String,
}

/// Everything an agent needs to "know who I am and why you contacted me".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskContext {
    /// False while the customer's profile has not arrived; the task is still evaluated.
    pub profile_known: bool,
    pub profile: Option<Profile>,
    /// Language of `script` (the customer's, or `en` when the rule has no such version).
    pub language: String,
    /// The events that matter, oldest first.
    pub events: Vec<Evidence>,
    /// The customer's most recent events, newest first.
    pub recent_history: Vec<HistoryLine>,
    pub earlier_tasks: Vec<TaskSummary>,
    pub actions: Vec<String>,
    /// What the agent can say, in the customer's language.
    pub script: String,
    /// The procedure of the complaint the task is about (care tasks whose signals involve a
    /// complaint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub procedure: Option<Procedure>,
    /// The customer's open task in the other queue (a fraud check while care calls, or the
    /// other way round), as of this version: both teams see each other's work.
    pub open_in_other_queue: Vec<TaskSummary>,
}

/// A task for a fraud or care agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    /// Stable: derived from the customer, the queue and the customer's incident number.
    pub id: String,
    /// Bumped on every change; consumers keep the highest.
    pub version: u32,
    pub customer_id: String,
    pub queue: Queue,
    /// Ids of the rules that contributed, in the order they first fired.
    pub rules: Vec<String>,
    /// 1 (most urgent) to 4.
    pub priority: u8,
    pub status: TaskStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Event time of the first signal.
    pub opened_at: Timestamp,
    /// Event time of the latest change.
    pub updated_at: Timestamp,
    /// When the first contact is due, from the priority's SLA.
    pub due_at: Timestamp,
    pub title: String,
    pub explanation: String,
    /// Euros at stake (largest of the signals).
    pub money_at_risk_eur: f64,
    pub signals: Vec<SignalRecord>,
    pub context: TaskContext,
    /// Who holds it, contact attempts, notes, snooze, escalation, resolution.
    pub work: Workflow,
}

impl Task {
    /// The one-line summary other tasks of the customer show.
    pub fn summary(&self) -> TaskSummary {
        TaskSummary {
            id: self.id.clone(),
            queue: self.queue,
            title: self.title.clone(),
            status: self.status,
            outcome: self.outcome,
            opened_at: self.opened_at,
        }
    }
}

/// What happened to a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A new incident.
    Opened,
    /// New signals on an open task.
    Enriched,
    /// An agent, the customer or the SLA ticker changed it (claim, contact, note, snooze, …).
    Updated,
    Resolved,
    /// A supervisor reopened a resolved task.
    Reopened,
    /// Not a task's change: the customer (`task.customer_id`) was erased. The store deletes
    /// every trace of them at this point of the batch (see [`TaskChange::erasure`]).
    Erased,
}

impl ChangeKind {
    /// The kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Opened => "opened",
            ChangeKind::Enriched => "enriched",
            ChangeKind::Updated => "updated",
            ChangeKind::Resolved => "resolved",
            ChangeKind::Reopened => "reopened",
            ChangeKind::Erased => "erased",
        }
    }
}

/// The fields of a task that the audit trail shows before and after a change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditView {
    pub version: u32,
    pub status: TaskStatus,
    pub priority: u8,
    pub assignee: Option<String>,
    pub outcome: Option<Outcome>,
    pub escalated: bool,
    pub snoozed_until: Option<Timestamp>,
    pub due_at: Timestamp,
    pub signals: usize,
    pub contact_attempts: usize,
    pub notes: usize,
}

impl AuditView {
    /// The view of a record about no task (a refused command).
    pub fn nothing() -> AuditView {
        AuditView {
            version: 0,
            status: TaskStatus::Open,
            priority: 0,
            assignee: None,
            outcome: None,
            escalated: false,
            snoozed_until: None,
            due_at: Timestamp(0),
            signals: 0,
            contact_attempts: 0,
            notes: 0,
        }
    }

    /// The audited fields of `task`.
    pub fn of(task: &Task) -> AuditView {
        AuditView {
            version: task.version,
            status: task.status,
            priority: task.priority,
            assignee: task.work.assignee.clone(),
            outcome: task.outcome,
            escalated: task.work.escalated,
            snoozed_until: task.work.snoozed_until,
            due_at: task.due_at,
            signals: task.signals.len(),
            contact_attempts: task.work.contact_attempts.len(),
            notes: task.work.notes.len(),
        }
    }
}

/// One append-only record of the audit trail: who changed which task version, when, how, why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub task_id: String,
    /// The version this change produced.
    pub version: u32,
    pub at: Timestamp,
    /// `engine`, `sla`, an agent's name or `customer`.
    pub actor: String,
    /// The actor's role (`engine`, `system`, `customer`, `fraud_agent`, …).
    pub role: String,
    /// What was done: `opened`, `enriched`, `claim`, `resolve`, `escalate`, …
    pub action: String,
    pub reason: Option<String>,
    /// The command that caused it (none for the engine's own changes).
    pub command_id: Option<String>,
    pub before: Option<AuditView>,
    pub after: AuditView,
}

/// A new version of a task, for the sinks (store, topic, outreach), with its audit record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskChange {
    pub kind: ChangeKind,
    pub task: Task,
    #[serde(skip)]
    pub audit: AuditRecord,
    /// E-mails this change asks for (the rule's outreach, or a follow-up): written to the outbox
    /// with the task version.
    #[serde(skip)]
    pub outreach: Vec<crate::vocab::Outreach>,
    /// Complaint categories this change met that the playbook has no procedure for (the
    /// service counts them).
    #[serde(skip)]
    pub without_procedure: Vec<String>,
    /// What this change asks of the card system (a block): written to the actions outbox with
    /// the task version, published on the actions topic.
    #[serde(skip)]
    pub actions: Vec<CardAction>,
}

impl Task {
    /// A task with nothing in it yet: version 0, open, priority 4, due at `at`, no signals, an
    /// English context without a profile.
    pub fn blank(id: String, customer_id: &str, queue: Queue, at: Timestamp) -> Task {
        Task {
            id,
            version: 0,
            customer_id: customer_id.to_string(),
            queue,
            rules: Vec::new(),
            priority: 4,
            status: TaskStatus::Open,
            outcome: None,
            opened_at: at,
            updated_at: at,
            due_at: at,
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
                procedure: None,
                open_in_other_queue: Vec::new(),
            },
            work: Workflow::default(),
        }
    }
}

impl TaskChange {
    /// The erasure of a customer, in order with the batch's task changes: a marker whose task
    /// carries only the customer id (`id` is empty; the engine lists the open tasks it erased in
    /// `context.earlier_tasks`, for the open-task gauges), and the audit record of who erased them
    /// (its `task_id` names the erasure by a hash of the customer id, never the id).
    pub fn erasure(
        customer_id: &str,
        actor: &str,
        role: &str,
        command_id: &str,
        at: Timestamp,
    ) -> TaskChange {
        let mut task = Task::blank(String::new(), customer_id, Queue::Fraud, at);
        task.status = TaskStatus::Resolved;
        let audit = AuditRecord {
            task_id: erasure_key(customer_id),
            // One record per erasure (a customer who came back may be erased again).
            version: u32::try_from(at.0.div_euclid(1000)).unwrap_or(u32::MAX),
            at,
            actor: actor.to_string(),
            role: role.to_string(),
            action: "erase_customer".to_string(),
            reason: None,
            command_id: Some(command_id.to_string()),
            before: None,
            after: AuditView::of(&task),
        };
        TaskChange {
            kind: ChangeKind::Erased,
            task,
            audit,
            outreach: Vec::new(),
            without_procedure: Vec::new(),
            actions: Vec::new(),
        }
    }
}

/// How the audit names a customer's erasure: `erasure_` and a hash of the customer id, so an
/// auditor can confirm that a given customer was erased without the audit holding the id.
pub fn erasure_key(customer_id: &str) -> String {
    format!("erasure_{:016x}", xxhash_rust::xxh3::xxh3_64(customer_id.as_bytes()))
}

/// A request to the card system, published on the actions topic (`docs/actions.md`,
/// `docs/actions.schema.json`). Its id is derived from the task version that asked for it, so
/// a replay or a redelivery asks again under the same id and the card system acts once.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CardAction {
    /// The idempotency key: `act_<task id>_<version>`.
    pub action_id: String,
    /// What is asked: `block_card`.
    pub action: &'static str,
    pub customer_id: String,
    /// The card's token as the events carried it (never a card number: those are refused at
    /// the door), or none when the task has no card event.
    pub card_token: Option<String>,
    /// Why: `customer_reported_fraud` (a customer's "no") or `agent_block` (an agent's action).
    pub reason: &'static str,
    pub task_id: String,
    pub task_version: u32,
    /// Who asked (`customer`, or the agent's name) and when.
    pub requested_by: String,
    pub requested_at: Timestamp,
}

impl CardAction {
    /// A block of the card of `task` (as of its current version), for `reason`.
    pub fn block(task: &Task, reason: &'static str, by: &str, at: Timestamp) -> CardAction {
        CardAction {
            action_id: format!("act_{}_{}", task.id, task.version),
            action: "block_card",
            customer_id: task.customer_id.clone(),
            card_token: task.context.events.iter().rev().find_map(|e| e.card_id.clone()),
            reason,
            task_id: task.id.clone(),
            task_version: task.version,
            requested_by: by.to_string(),
            requested_at: at,
        }
    }
}

impl TaskChange {
    /// A change made by the engine itself (a new incident, new signals).
    pub fn by_engine(kind: ChangeKind, task: Task, before: Option<AuditView>) -> TaskChange {
        let audit = AuditRecord {
            task_id: task.id.clone(),
            version: task.version,
            at: task.updated_at,
            actor: "engine".to_string(),
            role: "engine".to_string(),
            action: kind.as_str().to_string(),
            reason: task.rules.last().map(|r| format!("rule {r}")),
            command_id: None,
            before,
            after: AuditView::of(&task),
        };
        TaskChange {
            kind,
            task,
            audit,
            outreach: Vec::new(),
            without_procedure: Vec::new(),
            actions: Vec::new(),
        }
    }
}
