//! The shared vocabulary: small types that several rooms name (a fact's type, a task's queue and
//! severity, a rule's e-mail). They live here, in a leaf that imports nothing of ours, so that a
//! detector can declare its facts' types and a task its queue without importing `rules` (which
//! imports the detectors): the module circles `detect ⇄ rules` and `task → rules → detect → …`
//! go through this leaf instead.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Static type of a feature or sub-expression (of the rule language: `rules::expr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// A number (evaluated as `f64`).
    Num,
    /// A string, compared by exact byte equality.
    Str,
    /// A boolean.
    Bool,
}

/// Which team's queue a task goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Queue {
    Fraud,
    Care,
}

impl Queue {
    /// The queue's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Queue::Fraud => "fraud",
            Queue::Care => "care",
        }
    }
}

impl fmt::Display for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rule's e-mail to the customer: which template, and whether it may go at any hour (fraud
/// confirmations) or waits for the end of the customer's quiet hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outreach {
    pub template: String,
    pub any_hour: bool,
}

/// How serious a rule's finding is; the base of a task's priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
}
