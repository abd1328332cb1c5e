//! The outbox relay: publishes task versions from the store's outbox to the tasks topic, and
//! requests to the card system from the actions outbox to the actions topic, off the event path.
//! The batch that changed a task wrote the version and its outbox row in one transaction, so once that commits the version will be published whatever happens next; the
//! relay runs when a batch wrote to the outbox (woken), at start-up (left over from an earlier
//! run) and every second (a wake-up lost to a failure). A version is published at least once: a
//! crash between publishing and clearing the row publishes it again, with the same task id and
//! version, so consumers de-duplicate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::producer::FutureProducer;
use tokio::sync::Notify;
use tracing::{info_span, warn, Instrument};

use crate::backoff::Backoff;
use crate::metrics::Metrics;
use crate::recovery::Recovery;
use crate::sink::kafka as sink;
use crate::store::TaskStore;

/// Rows published per round trip.
const ROWS_PER_ROUND: i64 = 5_000;

/// How often the relay looks at the outbox without being woken.
const SWEEP: Duration = Duration::from_secs(1);

/// The tasks-topic relay of one instance.
pub(super) struct Relay {
    pub store: TaskStore,
    pub producer: FutureProducer,
    pub topic: String,
    /// Where requests to the card system go.
    pub actions_topic: String,
    pub metrics: Arc<Metrics>,
    /// Readiness: not ready while the broker or the store refuses.
    pub recovery: Arc<Recovery>,
    /// Woken by the batch stage after a write to the outbox.
    pub wake: Arc<Notify>,
}

impl Relay {
    /// Runs until the process ends.
    pub(super) async fn run(self) {
        loop {
            self.publish_pending().instrument(info_span!("publish")).await;
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(SWEEP) => {}
            }
        }
    }

    /// Publishes every pending row of both outboxes (task versions, then requests to the card
    /// system), retrying with back-off until they are empty.
    pub(super) async fn publish_pending(&self) {
        self.publish_tasks().await;
        self.publish_actions().await;
    }

    /// Publishes every pending request to the card system, retrying with back-off.
    async fn publish_actions(&self) {
        let mut backoff = Backoff::new();
        loop {
            let rows = match self.store.pending_actions(ROWS_PER_ROUND).await {
                Ok(rows) => rows,
                Err(e) => {
                    self.metrics.store_errors.inc();
                    self.recovery.set_ready(false);
                    warn!(error = %e, "cannot read the actions outbox; retrying");
                    backoff.wait().await;
                    continue;
                }
            };
            if rows.is_empty() {
                return;
            }
            if let Err(e) = sink::publish_actions(&self.producer, &self.actions_topic, &rows).await {
                self.metrics.publish_errors.inc();
                self.recovery.set_ready(false);
                warn!(error = %e, "cannot publish card actions; retrying");
                backoff.wait().await;
                continue;
            }
            if let Err(e) = self.store.mark_actions_published(&rows).await {
                self.metrics.store_errors.inc();
                warn!(error = %e, "cannot clear the actions outbox; retrying (actions may be published twice)");
                backoff.wait().await;
                continue;
            }
            self.metrics.card_actions.inc_by(rows.len() as u64);
            self.recovery.set_ready(true);
        }
    }

    /// Publishes every pending task version, retrying with back-off until the outbox is empty.
    async fn publish_tasks(&self) {
        let mut backoff = Backoff::new();
        loop {
            let started = Instant::now();
            let rows = match self.store.pending_outbox(ROWS_PER_ROUND).await {
                Ok(rows) => rows,
                Err(e) => {
                    self.metrics.store_errors.inc();
                    self.recovery.set_ready(false);
                    warn!(error = %e, "cannot read the outbox; retrying");
                    backoff.wait().await;
                    continue;
                }
            };
            if rows.is_empty() {
                return;
            }
            if let Err(e) = sink::publish_tasks(&self.producer, &self.topic, &rows).await {
                self.metrics.publish_errors.inc();
                self.recovery.set_ready(false);
                warn!(error = %e, "cannot publish tasks; retrying");
                backoff.wait().await;
                continue;
            }
            if let Err(e) = self.store.mark_published(&rows).await {
                self.metrics.store_errors.inc();
                warn!(error = %e, "cannot clear the outbox; retrying (tasks may be published twice)");
                backoff.wait().await;
                continue;
            }
            self.recovery.set_ready(true);
            self.metrics
                .batch_seconds
                .with_label_values(&["publish"])
                .observe(started.elapsed().as_secs_f64());
        }
    }
}
