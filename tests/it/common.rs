//! Shared helpers: the default rule pack, a replay of lines, a task's identity.

use std::path::PathBuf;
use std::sync::OnceLock;

use callahead::replay::Replay;
use callahead::rules::RuleSet;
use callahead::task::Task;

/// The repository root (where `rules/` lives).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The default rule pack, loaded once.
pub fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| RuleSet::load_dir(&root().join("rules")).expect("default rules are valid"))
}

/// Replays JSON lines through a fresh engine; returns the final tasks.
pub fn replay<S: AsRef<str>>(lines: &[S]) -> Vec<Task> {
    let mut r = Replay::new(rules());
    for (i, line) in lines.iter().enumerate() {
        r.feed(i as u64 + 1, line.as_ref().as_bytes());
    }
    r.into_tasks().0
}

/// What identifies a task's outcome independent of event order: id, customer, queue and the
/// set of rules that contributed.
pub fn identity(tasks: &[Task]) -> Vec<(String, String, &'static str, Vec<String>)> {
    let mut out: Vec<_> = tasks
        .iter()
        .map(|t| {
            let mut rules = t.rules.clone();
            rules.sort();
            (t.id.clone(), t.customer_id.clone(), t.queue.as_str(), rules)
        })
        .collect();
    out.sort();
    out
}
