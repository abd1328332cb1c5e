//! The outbox relay: publishes task versions from the store's outbox to the tasks topic, and
//! requests to the card system from the actions outbox to the actions topic, off the event path.
//! The batch that changed a task wrote the version and its outbox row in one transaction, so
//! once that commits the version will be published whatever happens next; the relay runs when a batch wrote to the outbox (woken), at start-up (left over from an earlier
//! run) and every second (a wake-up lost to a failure). A version is published at least once: a
//! crash between publishing and clearing the row publishes it again, with the same task id and
//! version, so consumers de-duplicate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use tokio::sync::Notify;
use tracing::{info_span, warn, Instrument};

use crate::backoff::Backoff;
use crate::metrics::Metrics;
use crate::recovery::Recovery;
use crate::sink::kafka as sink;
use crate::store::{ActionRow, OutboxRow, StoreError, TaskStore};

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
        self.drain::<TaskVersions>().await;
        self.drain::<CardActions>().await;
    }

    /// Publishes every pending row of one outbox, retrying with back-off until it is empty:
    /// read a round, publish it, then clear it (a crash in between publishes it again).
    async fn drain<O: Outbox>(&self) {
        let mut backoff = Backoff::new();
        loop {
            let started = Instant::now();
            let rows = match O::pending(self).await {
                Ok(rows) => rows,
                Err(e) => {
                    self.metrics.store_errors.inc();
                    self.recovery.set_ready(false);
                    warn!(error = %e, "cannot read the {}; retrying", O::NAME);
                    backoff.wait().await;
                    continue;
                }
            };
            if rows.is_empty() {
                return;
            }
            if let Err(e) = O::publish(self, &rows).await {
                self.metrics.publish_errors.inc();
                self.recovery.set_ready(false);
                warn!(error = %e, "cannot publish from the {}; retrying", O::NAME);
                backoff.wait().await;
                continue;
            }
            if let Err(e) = O::clear(self, &rows).await {
                self.metrics.store_errors.inc();
                warn!(error = %e, "cannot clear the {}; retrying (rows may be published twice)", O::NAME);
                backoff.wait().await;
                continue;
            }
            self.recovery.set_ready(true);
            O::published(self, rows.len(), started);
        }
    }
}

/// One outbox the relay drains: where its rows are read, published and cleared.
trait Outbox {
    type Row;
    /// What log lines call it.
    const NAME: &'static str;
    async fn pending(relay: &Relay) -> Result<Vec<Self::Row>, StoreError>;
    async fn publish(relay: &Relay, rows: &[Self::Row]) -> Result<(), KafkaError>;
    async fn clear(relay: &Relay, rows: &[Self::Row]) -> Result<(), StoreError>;
    /// Counts a round published.
    fn published(relay: &Relay, rows: usize, started: Instant);
}

/// Task versions, to the tasks topic.
struct TaskVersions;

impl Outbox for TaskVersions {
    type Row = OutboxRow;
    const NAME: &'static str = "outbox";

    async fn pending(relay: &Relay) -> Result<Vec<OutboxRow>, StoreError> {
        relay.store.pending_outbox(ROWS_PER_ROUND).await
    }

    async fn publish(relay: &Relay, rows: &[OutboxRow]) -> Result<(), KafkaError> {
        sink::publish_tasks(&relay.producer, &relay.topic, rows).await
    }

    async fn clear(relay: &Relay, rows: &[OutboxRow]) -> Result<(), StoreError> {
        relay.store.mark_published(rows).await
    }

    fn published(relay: &Relay, _rows: usize, started: Instant) {
        relay.metrics.batch_seconds.with_label_values(&["publish"]).observe(started.elapsed().as_secs_f64());
    }
}

/// Requests to the card system, to the actions topic.
struct CardActions;

impl Outbox for CardActions {
    type Row = ActionRow;
    const NAME: &'static str = "actions outbox";

    async fn pending(relay: &Relay) -> Result<Vec<ActionRow>, StoreError> {
        relay.store.pending_actions(ROWS_PER_ROUND).await
    }

    async fn publish(relay: &Relay, rows: &[ActionRow]) -> Result<(), KafkaError> {
        sink::publish_actions(&relay.producer, &relay.actions_topic, rows).await
    }

    async fn clear(relay: &Relay, rows: &[ActionRow]) -> Result<(), StoreError> {
        relay.store.mark_actions_published(rows).await
    }

    fn published(relay: &Relay, rows: usize, _started: Instant) {
        relay.metrics.card_actions.inc_by(rows as u64);
    }
}
