//! Rules reloaded without a restart: the rule directory is polled (and re-read on SIGHUP); a
//! valid set replaces the running one whole, an invalid one is refused with every error and the
//! running set stays. The stages read the running set once per batch.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tracing::{error, info};

use crate::metrics::Metrics;
use crate::rules::{Mode, RuleSet, SharedRules};

/// Reloads rules when the directory changes (polled every `poll_ms`; 0: only on SIGHUP).
pub(super) async fn watch(
    dir: PathBuf,
    poll_ms: u64,
    rules: SharedRules,
    metrics: Arc<Metrics>,
    store: crate::store::TaskStore,
) {
    let mut hup =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).expect("SIGHUP handler");
    let mut seen = fingerprint(&dir);
    loop {
        let forced = tokio::select! {
            _ = hup.recv() => true,
            _ = tokio::time::sleep(Duration::from_millis(poll_ms)), if poll_ms > 0 => false,
        };
        let now = fingerprint(&dir);
        if !forced && now == seen {
            continue;
        }
        seen = now;
        match RuleSet::load_dir(&dir) {
            Ok(set) => {
                info!(
                    rules = set.rules.len(),
                    fingerprint = format!("{:016x}", set.fingerprint),
                    "rules reloaded"
                );
                metrics.rules_loaded.set(set.rules.len() as i64);
                metrics.rule_reloads.with_label_values(&["ok"]).inc();
                export_rule_labels(&metrics, &set);
                let summary = {
                    let old = rules.read().expect("rules lock poisoned").clone();
                    reload_summary(&old, &set)
                };
                store.audit_access_later("rules_reloaded", "rules".into(), "system".into(), summary);
                *rules.write().expect("rules lock poisoned") = Arc::new(set);
            }
            Err(errors) => {
                metrics.rule_reloads.with_label_values(&["refused"]).inc();
                let reason = format!(
                    "refused with {} error(s), the first: {}; the running rules stay in force",
                    errors.0.len(),
                    errors.0.first().map(ToString::to_string).unwrap_or_default()
                );
                store.audit_access_later("rules_refused", "rules".into(), "system".into(), reason);
                for e in &errors.0 {
                    error!(error = %e, "rule reload refused; the running rules stay in force");
                }
            }
        }
    }
}

/// What a reload changed, for the audit: the packs' hashes and the rules added, removed and kept.
fn reload_summary(old: &RuleSet, new: &RuleSet) -> String {
    let ids =
        |set: &RuleSet| set.rules.iter().map(|r| r.id.clone()).collect::<std::collections::BTreeSet<_>>();
    let (before, after) = (ids(old), ids(new));
    let added: Vec<_> = after.difference(&before).cloned().collect();
    let removed: Vec<_> = before.difference(&after).cloned().collect();
    format!(
        "rule pack {:016x} -> {:016x}: {} rules; added [{}]; removed [{}]; {} kept (edited or not)",
        old.fingerprint,
        new.fingerprint,
        new.rules.len(),
        added.join(", "),
        removed.join(", "),
        after.intersection(&before).count()
    )
}

/// Exports at zero the series that depend on the rule set (firings per rule and mode, outcomes
/// per rule, e-mails per template and result), so they are scraped before anything happens.
pub(super) fn export_rule_labels(metrics: &Metrics, rules: &RuleSet) {
    let templates = crate::outreach::templates::needed(rules);
    metrics.export_rule_labels(
        rules.rules.iter().map(|r| (r.id.as_str(), mode_label(r.mode))),
        rules.rules.iter().flat_map(|r| {
            crate::task::Outcome::ALL
                .into_iter()
                .filter(|o| o.fits(r.queue))
                .map(|o| (r.id.as_str(), o.as_str()))
        }),
        templates.iter().map(String::as_str),
    );
}

/// The `mode` label of a rule's series.
pub(super) fn mode_label(mode: Mode) -> &'static str {
    if mode == Mode::Shadow {
        "shadow"
    } else {
        "live"
    }
}

/// Names, sizes and modification times of the rule files: changes when any file does.
fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((e.path(), m.len(), m.modified().ok()))
        })
        .collect();
    out.sort();
    out
}
