//! The output: a task for a human, with full context. One task is one incident for one customer
//! in one queue. Its JSON form is the contract with agents' tools and downstream systems
//! (documented in the README, "Task format").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::detect::{DetectorKind, Evidence};
use crate::event::Profile;
use crate::rules::{Queue, Severity};
use crate::time::Timestamp;

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Open,
    Claimed,
    Contacted,
    Resolved,
}

/// How a resolved task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The customer confirmed it was them: teaches trusted countries and devices.
    ConfirmedLegit,
    /// Fraud confirmed: the card or access was blocked.
    ConfirmedFraud,
    /// A care case was handled (the customer was reached and the problem addressed).
    Handled,
    /// Nobody could be reached or nothing needed doing.
    NoAction,
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
    Opened,
    Enriched,
    Resolved,
}

/// A new version of a task, for the sinks (store, topic, outreach).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskChange {
    pub kind: ChangeKind,
    pub task: Task,
}
