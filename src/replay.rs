//! Replay: runs a stream of JSON events through the engine, in order, and keeps every task in
//! its final state, with a summary of what happened. `callahead replay` (backtesting rules on
//! history), `callahead backtest` (two packs side by side) and `callahead demo` use it.
//!
//! Deterministic: the engine is pure and event-time driven, tasks are written in
//! (opened_at, id) order, so the same input and rules give byte-identical output.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use crate::engine::{Engine, EngineConfig};
use crate::event::decode;
use crate::rules::RuleSet;
use crate::task::Task;

/// Invalid lines kept verbatim in the summary; the rest are only counted.
const MAX_REPORTED_INVALID: usize = 50;

/// What a replay saw.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub lines: u64,
    pub events: u64,
    pub duplicates: u64,
    /// Events older than the customer's de-duplication horizon (not applied).
    pub stale: u64,
    pub invalid: BTreeMap<&'static str, u64>,
    /// `line N: reason` for the first invalid lines.
    pub invalid_lines: Vec<String>,
    /// Live rule firings by rule id.
    pub live_hits: BTreeMap<String, u64>,
    /// Shadow rule firings by rule id: what those rules would have opened.
    pub shadow_hits: BTreeMap<String, u64>,
    pub task_changes: u64,
    /// Complaints (opening or enriching a care task) by category, for categories the complaint
    /// playbook has no procedure for.
    pub without_procedure: BTreeMap<String, u64>,
    pub elapsed: Duration,
}

/// A replay in progress.
pub struct Replay<'r> {
    rules: &'r RuleSet,
    engine: Engine,
    tasks: HashMap<String, Task>,
    pub summary: Summary,
}

impl<'r> Replay<'r> {
    /// A replay with a fresh engine.
    pub fn new(rules: &'r RuleSet) -> Self {
        Replay::with_config(rules, EngineConfig::default())
    }

    /// A replay with a fresh engine configured with `config` (e.g. a longer allowed lateness).
    pub fn with_config(rules: &'r RuleSet, config: EngineConfig) -> Self {
        Replay { rules, engine: Engine::new(config), tasks: HashMap::new(), summary: Summary::default() }
    }

    /// Feeds one line (its 1-based number is for error messages).
    pub fn feed(&mut self, line_number: u64, bytes: &[u8]) {
        self.summary.lines += 1;
        let event = match decode(bytes) {
            Ok(e) => e,
            Err(e) => {
                *self.summary.invalid.entry(e.reason_code()).or_default() += 1;
                if self.summary.invalid_lines.len() < MAX_REPORTED_INVALID {
                    self.summary.invalid_lines.push(format!("line {line_number}: {e}"));
                }
                return;
            }
        };
        self.summary.events += 1;
        let out = self.engine.process(self.rules, &event);
        if out.duplicate {
            self.summary.duplicates += 1;
        }
        if out.stale {
            self.summary.stale += 1;
        }
        for hit in out.hits {
            let id = &self.rules.rules[hit.rule].id;
            let map = if hit.shadow { &mut self.summary.shadow_hits } else { &mut self.summary.live_hits };
            *map.entry(id.clone()).or_default() += 1;
        }
        for change in out.changes {
            self.summary.task_changes += 1;
            for category in &change.without_procedure {
                *self.summary.without_procedure.entry(category.clone()).or_default() += 1;
            }
            self.tasks.insert(change.task.id.clone(), change.task);
        }
    }

    /// The engine (for inspecting state after a run).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Every task in its final state, ordered by (opened_at, id).
    pub fn into_tasks(self) -> (Vec<Task>, Summary) {
        let (_, tasks, summary) = self.into_parts();
        (tasks, summary)
    }

    /// The engine (with every customer's state), every task in its final state ordered by
    /// (opened_at, id), and the summary.
    pub fn into_parts(self) -> (Engine, Vec<Task>, Summary) {
        let mut tasks: Vec<Task> = self.tasks.into_values().collect();
        tasks.sort_by(|a, b| a.opened_at.cmp(&b.opened_at).then_with(|| a.id.cmp(&b.id)));
        (self.engine, tasks, self.summary)
    }
}

impl Summary {
    /// The summary as text for a terminal (stderr).
    pub fn render(&self, tasks: &[Task]) -> String {
        let mut out = String::new();
        let invalid: u64 = self.invalid.values().sum();
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let _ = writeln!(
            out,
            "events: {} lines, {} valid, {} duplicates (ignored), {} invalid (skipped)",
            self.lines, self.events, self.duplicates, invalid
        );
        for (reason, n) in &self.invalid {
            let _ = writeln!(out, "  invalid {reason}: {n}");
        }
        if self.stale > 0 {
            let _ = writeln!(
                out,
                "  {} events more than {} days older than their customer's newest: not applied (a resend cannot be told from a first delivery)",
                self.stale,
                crate::state::dedup::HORIZON_DAYS
            );
        }
        for line in &self.invalid_lines {
            let _ = writeln!(out, "  {line}");
        }
        if invalid as usize > self.invalid_lines.len() {
            let _ =
                writeln!(out, "  … and {} more invalid lines", invalid as usize - self.invalid_lines.len());
        }
        let mut by_queue: BTreeMap<&str, u64> = BTreeMap::new();
        let mut by_rule: BTreeMap<&str, u64> = BTreeMap::new();
        for t in tasks {
            *by_queue.entry(t.queue.as_str()).or_default() += 1;
            for r in &t.rules {
                *by_rule.entry(r.as_str()).or_default() += 1;
            }
        }
        let _ = writeln!(out, "tasks: {} ({} changes)", tasks.len(), self.task_changes);
        for (q, n) in &by_queue {
            let _ = writeln!(out, "  queue {q}: {n}");
        }
        for (r, n) in &by_rule {
            let hits = self.live_hits.get(*r).copied().unwrap_or(0);
            let _ = writeln!(out, "  rule {r}: in {n} tasks ({hits} firings)");
        }
        for (r, n) in &self.shadow_hits {
            let _ = writeln!(out, "  shadow rule {r}: would have fired {n} times (paged nobody)");
        }
        for (category, n) in &self.without_procedure {
            let _ = writeln!(
                out,
                "  complaint category `{category}` has no procedure in the playbook: {n} complaint(s)"
            );
        }
        let _ = writeln!(
            out,
            "time: {:.3} s, {:.0} events/s",
            self.elapsed.as_secs_f64(),
            self.lines as f64 / secs
        );
        out
    }
}
