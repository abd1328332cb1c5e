//! Commands: what agents, customers and the SLA ticker ask of a task, as data.
//!
//! A task has one source of truth, the engine that owns the customer's partition. Nobody changes
//! a task behind its back: an action becomes a [`Command`] keyed by customer, delivered in order
//! with that customer's events (on the commands topic in `serve`, an in-process queue in the
//! demo) and applied by [`crate::engine::Engine::command`]. A command carries its own time (when
//! it was accepted at the edge), so the core stays clock-free and a replay of the same events and
//! commands gives the same task versions.
//!
//! Its JSON form (one message on the commands topic) is an internal contract between instances
//! of this service; [`decode`] validates it like an input event.

use serde::{Deserialize, Serialize};

use crate::task::{ContactChannel, ContactResult, Outcome};
use crate::time::Timestamp;

/// Who may do what. Agents see their own queue; supervisors see all and reassign or reopen;
/// admins also manage tokens; auditors only read. `system`, `customer` and `engine` are the
/// actors that are not people with tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    FraudAgent,
    CareAgent,
    Supervisor,
    Admin,
    Auditor,
    System,
    Customer,
}

impl Role {
    /// The roles a token can have.
    pub const TOKEN_ROLES: [Role; 5] =
        [Role::FraudAgent, Role::CareAgent, Role::Supervisor, Role::Admin, Role::Auditor];

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::FraudAgent => "fraud_agent",
            Role::CareAgent => "care_agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
            Role::System => "system",
            Role::Customer => "customer",
        }
    }

    /// The role named `text`.
    pub fn parse(text: &str) -> Option<Role> {
        [
            Role::FraudAgent,
            Role::CareAgent,
            Role::Supervisor,
            Role::Admin,
            Role::Auditor,
            Role::System,
            Role::Customer,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }

    /// Supervisors and admins act on any task, whoever holds it.
    pub fn overrides(self) -> bool {
        matches!(self, Role::Supervisor | Role::Admin | Role::System | Role::Customer)
    }
}

/// Who sent a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub name: String,
    pub role: Role,
}

/// What is asked of the task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Take the task (compare-and-set: refused while someone else holds it).
    Claim,
    /// Give it back to the queue.
    Release,
    /// Record an attempt to reach the customer.
    Contacted { channel: ContactChannel, result: ContactResult, note: String },
    /// Close it with an outcome and a note.
    Resolve { outcome: Outcome, note: String },
    /// Add a note.
    Note { text: String },
    /// Give it to another agent (supervisors).
    Reassign { to: String, note: String },
    /// Reopen the customer's last resolved task of that queue (supervisors).
    Reopen { note: String },
    /// Hide it from the queue until a time (new signals unsnooze it).
    Snooze { until: Timestamp, reason: String },
    /// Past due: one step more urgent (the SLA ticker), if the task is still at `version`.
    Escalate { version: u32 },
    /// The holder has been idle too long: back to the queue (the claim ticker), if the task is
    /// still at `version`.
    ExpireClaim { version: u32 },
    /// What the outreach sender decided about an e-mail (recorded on the task).
    Outreach { job: String, template: String, decision: String, reason: String },
    /// The customer's one-click answer: `yes` (it was me) or `no` (it was not me).
    CustomerAnswer { answer: String },
    /// Ask the card system to block the task's card (fraud tasks; the holder or a supervisor).
    BlockCard { note: String },
    /// Erase the customer (admins): their state leaves the engine and every stored trace of
    /// them leaves the store, in order with their events. The command's `task_id` is unused
    /// (`-`).
    EraseCustomer,
}

impl Action {
    /// The action's name (as in the audit trail).
    pub fn name(&self) -> &'static str {
        match self {
            Action::Claim => "claim",
            Action::Release => "release",
            Action::Contacted { .. } => "contacted",
            Action::Resolve { .. } => "resolve",
            Action::Note { .. } => "note",
            Action::Reassign { .. } => "reassign",
            Action::Reopen { .. } => "reopen",
            Action::Snooze { .. } => "snooze",
            Action::Escalate { .. } => "escalate",
            Action::ExpireClaim { .. } => "expire_claim",
            Action::Outreach { .. } => "outreach",
            Action::CustomerAnswer { .. } => "customer_answer",
            Action::BlockCard { .. } => "block_card",
            Action::EraseCustomer => "erase_customer",
        }
    }

    /// The free text of the action, if it has one (the audit record's reason).
    pub fn reason(&self) -> Option<&str> {
        match self {
            Action::Contacted { note, .. }
            | Action::Resolve { note, .. }
            | Action::Reassign { note, .. }
            | Action::Reopen { note }
            | Action::BlockCard { note } => Some(note),
            Action::Note { text } => Some(text),
            Action::Snooze { reason, .. } => Some(reason),
            Action::Outreach { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

/// Longest note or reason, in characters.
pub const MAX_TEXT: usize = 2_000;

/// One command for one task of one customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// Unique; the result is found under it, and a redelivered command is applied once.
    pub command_id: String,
    pub customer_id: String,
    pub task_id: String,
    /// When the command was accepted (wall clock at the edge).
    pub at: Timestamp,
    pub actor: Actor,
    pub action: Action,
}

/// Why a command message was refused.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("command is not valid JSON of a known action: {0}")]
    Json(#[from] serde_json::Error),
    #[error("field `{field}`: {why}")]
    Invalid { field: &'static str, why: String },
}

impl CommandError {
    /// Short reason code for metrics and dead letters.
    pub fn reason_code(&self) -> &'static str {
        match self {
            CommandError::Json(_) => "invalid_command",
            CommandError::Invalid { .. } => "invalid_command_field",
        }
    }

    /// The error as a log line or a dead letter's header may carry it: serde's message (which
    /// can quote a value from the input) replaced by its position.
    pub fn redacted(&self) -> String {
        match self {
            CommandError::Json(e) => format!(
                "command is not valid JSON of a known action ({:?} error at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            ),
            other => other.to_string(),
        }
    }
}

/// Decodes and validates one command message.
pub fn decode(bytes: &[u8]) -> Result<Command, CommandError> {
    let command: Command = serde_json::from_slice(bytes)?;
    command.validate()?;
    Ok(command)
}

impl Command {
    /// Checks what a command must carry: ids, a non-empty note where one is required, text
    /// within limits.
    pub fn validate(&self) -> Result<(), CommandError> {
        let invalid = |field, why: &str| Err(CommandError::Invalid { field, why: why.to_string() });
        for (field, value) in
            [("command_id", &self.command_id), ("customer_id", &self.customer_id), ("task_id", &self.task_id)]
        {
            if value.is_empty() || value.len() > 200 {
                return invalid(field, "must be 1 to 200 characters");
            }
        }
        if self.actor.name.trim().is_empty() {
            return invalid("actor.name", "must not be empty");
        }
        // PostgreSQL text cannot hold a NUL: refused here, it never reaches the store.
        let texts = [&self.command_id, &self.customer_id, &self.task_id, &self.actor.name];
        if texts.iter().any(|t| t.contains('\0'))
            || self.action.reason().is_some_and(|t| t.contains('\0'))
            || matches!(&self.action, Action::Reassign { to, .. } if to.contains('\0'))
        {
            return invalid("text", "must not contain a NUL character");
        }
        let required = matches!(
            self.action,
            Action::Resolve { .. }
                | Action::Reassign { .. }
                | Action::Reopen { .. }
                | Action::Note { .. }
                | Action::Snooze { .. }
                | Action::BlockCard { .. }
        );
        if let Some(text) = self.action.reason() {
            if required && text.trim().is_empty() {
                return invalid("note", "a note is required with this action");
            }
            if text.chars().count() > MAX_TEXT {
                return invalid("note", "longer than 2000 characters");
            }
        }
        if let Action::Reassign { to, .. } = &self.action {
            if to.trim().is_empty() {
                return invalid("to", "must name an agent");
            }
        }
        if let Action::CustomerAnswer { answer } = &self.action {
            if answer != "yes" && answer != "no" {
                return invalid("answer", "must be `yes` or `no`");
            }
        }
        if let Action::Snooze { until, .. } = &self.action {
            if *until <= self.at {
                return invalid("until", "must be later than now");
            }
        }
        Ok(())
    }
}

/// Why the engine refused a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// No such open (or reopenable) task for this customer.
    NotFound,
    /// The task's state does not allow it (held by someone else, resolved, changed meanwhile).
    Conflict,
    /// The request does not fit the task (an outcome of the other queue).
    Invalid,
}

/// What became of a command: applied (the task version it produced, or the current one when it
/// changed nothing) or refused with a reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandResult {
    pub command_id: String,
    pub task_id: String,
    pub customer_id: String,
    pub at: Timestamp,
    /// The task version after the command (when applied).
    pub version: Option<u32>,
    pub refusal: Option<Refusal>,
    /// A human-readable reason for a refusal.
    pub detail: Option<String>,
    /// Who holds the task, when a claim was refused because of them.
    pub holder: Option<String>,
}

impl CommandResult {
    /// An applied command.
    pub fn applied(command: &Command, version: u32) -> CommandResult {
        CommandResult {
            command_id: command.command_id.clone(),
            task_id: command.task_id.clone(),
            customer_id: command.customer_id.clone(),
            at: command.at,
            version: Some(version),
            refusal: None,
            detail: None,
            holder: None,
        }
    }

    /// A refused command.
    pub fn refused(command: &Command, refusal: Refusal, detail: impl Into<String>) -> CommandResult {
        CommandResult {
            command_id: command.command_id.clone(),
            task_id: command.task_id.clone(),
            customer_id: command.customer_id.clone(),
            at: command.at,
            version: None,
            refusal: Some(refusal),
            detail: Some(detail.into()),
            holder: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(action: &str) -> String {
        format!(
            r#"{{"command_id":"c1","customer_id":"u1","task_id":"t1","at":"2026-12-01T10:00:00Z",
                "actor":{{"name":"ana","role":"fraud_agent"}},"action":{{{action}}}}}"#
        )
    }

    #[test]
    fn commands_round_trip_through_json() {
        let c =
            decode(json(r#""type":"resolve","outcome":"legitimate","note":"customer confirmed""#).as_bytes())
                .expect("valid");
        assert_eq!(
            c.action,
            Action::Resolve { outcome: Outcome::Legitimate, note: "customer confirmed".into() }
        );
        let again = decode(&serde_json::to_vec(&c).unwrap()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn bad_commands_are_refused_with_the_field() {
        let e =
            decode(json(r#""type":"resolve","outcome":"legitimate","note":"  ""#).as_bytes()).unwrap_err();
        assert!(e.to_string().contains("note is required"), "{e}");
        assert!(decode(json(r#""type":"fly""#).as_bytes()).is_err());
        let nul = decode(json(r#""type":"note","text":"a\u0000b""#).as_bytes()).unwrap_err();
        assert!(nul.to_string().contains("NUL"), "{nul}");
        assert!(decode(json(r#""type":"note","text":"x","extra":1"#).as_bytes()).is_err());
        assert!(decode(json(r#""type":"resolve","outcome":"maybe","note":"x""#).as_bytes()).is_err());
        let e = decode(json(r#""type":"snooze","until":"2026-12-01T09:00:00Z","reason":"later""#).as_bytes())
            .unwrap_err();
        assert!(e.to_string().contains("until"), "{e}");
    }
}
