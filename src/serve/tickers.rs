//! Wall-clock time at the edge: the SLA ticker and the idle-claim ticker. Every tick they look
//! in the store for open or claimed tasks past due (not yet escalated) and for claims idle past
//! `api.claim_idle_ms`, and send an `escalate` or `expire_claim` command for each, carrying the
//! version they saw (the engine refuses it if the task changed meanwhile, and every instance may
//! tick: the second command for the same version is refused). They also refresh the gauges that
//! come from the store: overdue tasks per queue and precision per rule. The retention purge runs
//! here too, on its own interval.

use std::time::Duration;

use tracing::warn;

use crate::api::now;
use crate::bus::CommandBus;
use crate::command::{Action, Actor, Command, Role};
use crate::config::ApiConfig;
use crate::metrics::Metrics;
use crate::store::{TaskRow, TaskStore};
use crate::time::Timestamp;

/// Tasks looked at per tick and kind.
const PER_TICK: i64 = 500;

/// Runs the tickers until the process ends. Without `escalate` only idle claims are looked for
/// (the demo's historical tasks would all be overdue at once).
pub async fn run(
    store: TaskStore,
    bus: CommandBus,
    metrics: std::sync::Arc<Metrics>,
    config: ApiConfig,
    escalate: bool,
) {
    if config.sla_tick_ms == 0 {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(config.sla_tick_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = once(&store, &bus, &metrics, &config, escalate).await {
            warn!(error = %e, "SLA tick failed; trying again next tick");
        }
    }
}

/// Runs the retention purge every `config.purge_interval_ms` until the process ends (every
/// instance may: a row is deleted once).
pub async fn purge(
    store: TaskStore,
    metrics: std::sync::Arc<Metrics>,
    config: crate::config::RetentionConfig,
) {
    if config.purge_interval_ms == 0 {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(config.purge_interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store.purge(&config.periods(), now().0).await {
            Ok(p) => {
                for (kind, n) in
                    [("resolved_tasks", p.resolved_tasks), ("audit", p.audit), ("outreach", p.outreach)]
                {
                    metrics.retention_purged.with_label_values(&[kind]).inc_by(n);
                }
            }
            Err(e) => warn!(error = %e, "retention purge failed; trying again next interval"),
        }
    }
}

/// Seals new audit rows into the hash chain every second until the process ends (every instance
/// may: they take turns on the chain's head).
pub async fn seal_audit(store: TaskStore) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        loop {
            match store.seal_audit().await {
                Ok(n) if n > 0 => continue, // more may be waiting
                Ok(_) => break,
                Err(e) => {
                    warn!(error = %e, "cannot seal the audit; trying again in a second");
                    break;
                }
            }
        }
    }
}

/// One tick: escalations, expired claims, gauges.
pub async fn once(
    store: &TaskStore,
    bus: &CommandBus,
    metrics: &Metrics,
    config: &ApiConfig,
    escalate: bool,
) -> anyhow::Result<()> {
    let at = now();
    if escalate {
        for row in store.overdue_unescalated(at.0, PER_TICK).await? {
            send(bus, &row, at, "sla", Action::Escalate { version: row.version as u32 }).await?;
        }
    }
    for row in store.held_tasks(PER_TICK).await? {
        if idle_since(&row).is_some_and(|since| at.millis_since(since) >= config.claim_idle_ms as i64) {
            send(bus, &row, at, "claims", Action::ExpireClaim { version: row.version as u32 }).await?;
        }
    }
    // A queue with no unresolved task has no row: its gauge goes back to zero.
    let counts = store.queue_counts(at.0).await?;
    for queue in Metrics::queues() {
        if !counts.iter().any(|(q, ..)| q == queue) {
            metrics.tasks_overdue.with_label_values(&[queue]).set(0);
        }
    }
    for (queue, _open, overdue) in counts {
        metrics.tasks_overdue.with_label_values(&[&queue]).set(overdue);
    }
    for r in store.rule_outcomes().await? {
        if let (_, _, Some(p)) = crate::api::rules_precision(&r.outcomes) {
            metrics.rule_precision.with_label_values(&[&r.rule]).set(p);
        }
    }
    Ok(())
}

/// When the holder last acted on a held task.
fn idle_since(row: &TaskRow) -> Option<Timestamp> {
    let body: serde_json::Value = serde_json::from_str(&row.body).ok()?;
    Timestamp::parse_rfc3339(body["work"]["last_activity_at"].as_str()?).ok()
}

async fn send(
    bus: &CommandBus,
    row: &TaskRow,
    at: Timestamp,
    who: &str,
    action: Action,
) -> anyhow::Result<()> {
    let command = Command {
        // Stable per task version and kind: a retried tick does not make a second command id.
        command_id: format!("{who}_{}_{}", row.id, row.version),
        customer_id: row.customer_id.clone(),
        task_id: row.id.clone(),
        at,
        actor: Actor { name: who.to_string(), role: Role::System },
        action,
    };
    bus.send(&command).await?;
    Ok(())
}
