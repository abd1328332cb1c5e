//! The event path as a pipeline. Three stages run at once, joined by bounded queues (a full
//! queue stops the stage before it: back-pressure without a rule of its own):
//!
//! 1. **fetch** (the consumer loop, [`run`]): takes a batch from Kafka, drops what the restored
//!    state already holds or what was fetched under an earlier ownership, records the offsets
//!    as applied and splits the batch by partition among the engine workers;
//! 2. **engine** ([`super::workers`]): decode and apply, one partition per worker at a time, on
//!    every core;
//! 3. **durable** ([`Durable`]): waits for a batch's shares in order, publishes its dead
//!    letters, writes its task changes, audit records, command results and outbox rows in one
//!    transaction, wakes the outbox relay ([`super::relay`]), marks the changed customers for
//!    the next checkpoint, and then counts the batch as durable.
//!
//! So the store writes batch N while the workers run batch N+1 and Kafka fetches N+2.
//!
//! Offsets: with checkpoints off, a batch's offsets are stored once it is durable (batches
//! become durable in order). With checkpoints on (the default), a checkpoint is prepared only
//! when the pipeline is drained (every fetched batch durable), so the state it copies and the
//! offsets it records cover exactly what is durable; Kafka offsets are stored once that
//! checkpoint is written. A revoke drains the pipeline first for the same reason
//! ([`Hooks`]). A crash anywhere re-delivers from the last stored offsets: at-least-once, made
//! idempotent downstream by task ids and versions.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rdkafka::consumer::Consumer;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tracing::{error, info, warn};

use super::reload::mode_label;
use super::workers::{Job, Output, Workers};
use crate::backoff::Backoff;
use crate::command::CommandResult;
use crate::engine::Engine;
use crate::ingest::kafka::{self as source, EventConsumer, PartitionHooks};
use crate::metrics::Metrics;
use crate::partitions::Admit;
use crate::recovery::Recovery;
use crate::rules::codes::CodeField;
use crate::rules::{RuleSet, SharedRules};
use crate::sink::kafka::{self as sink, DeadLetter};
use crate::store::TaskStore;
use crate::task::{ChangeKind, TaskChange};

/// Batches fetched and split but not yet durable, beyond the one being written.
const DEPTH: usize = 2;

/// Longest a revoke waits for the batches in flight to become durable before letting its
/// partitions go without a checkpoint (their next owner re-reads from the previous one).
const DRAIN_BUDGET: Duration = Duration::from_secs(15);

/// Counts batches fetched and batches durable: the pipeline is drained when they are equal.
#[derive(Debug)]
pub(super) struct Flight {
    fetched: AtomicU64,
    durable: watch::Sender<u64>,
}

impl Flight {
    pub(super) fn new() -> Flight {
        Flight { fetched: AtomicU64::new(0), durable: watch::Sender::new(0) }
    }

    /// Numbers a new batch (from 1).
    fn fetch(&self) -> u64 {
        self.fetched.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Batch `seq` (and every one before it) is durable.
    fn done(&self, seq: u64) {
        self.durable.send_replace(seq);
    }

    /// True when every fetched batch is durable.
    pub(super) fn is_drained(&self) -> bool {
        *self.durable.borrow() >= self.fetched.load(Ordering::SeqCst)
    }

    /// Waits until every batch fetched so far is durable.
    pub(super) async fn drained(&self) {
        let target = self.fetched.load(Ordering::SeqCst);
        let mut rx = self.durable.subscribe();
        // The sender lives as long as `self`.
        let _ = rx.wait_for(|d| *d >= target).await;
    }
}

/// The rebalance hooks of the service: a revoke first drains the pipeline (the state a
/// checkpoint copies must not run ahead of what is durable), then checkpoints and lets go.
pub(super) struct Hooks {
    pub recovery: Arc<Recovery>,
    pub flight: Arc<Flight>,
}

impl PartitionHooks for Hooks {
    fn assigned(&self, partitions: &BTreeSet<i32>) {
        self.recovery.on_assigned(partitions);
    }

    fn revoked(&self, partitions: &BTreeSet<i32>, lost: bool) -> Vec<(String, i32, i64)> {
        let drained = match tokio::runtime::Handle::try_current() {
            Ok(h) => tokio::task::block_in_place(|| {
                h.block_on(tokio::time::timeout(DRAIN_BUDGET, self.flight.drained())).is_ok()
            }),
            Err(_) => self.flight.is_drained(),
        };
        if !drained {
            error!(
                partitions = ?partitions,
                "batches in flight did not become durable in time; letting go without a checkpoint"
            );
        }
        self.recovery.on_revoked(partitions, lost || !drained)
    }
}

/// A batch on its way to the durable stage.
struct InFlight {
    seq: u64,
    /// The workers' shares, in the order they must be written.
    shares: Vec<oneshot::Receiver<Output>>,
    rules: Arc<RuleSet>,
    /// With checkpoints off: the offsets to store once the batch is durable.
    offsets: Vec<(String, i32, i64)>,
}

/// The fetch stage's view of the other stages.
pub(super) struct Fetch {
    pub recovery: Arc<Recovery>,
    pub rules: SharedRules,
    pub workers: Workers,
    pub metrics: Arc<Metrics>,
    pub flight: Arc<Flight>,
    queue: mpsc::Sender<InFlight>,
}

impl Fetch {
    /// Starts the durable stage; returns the fetch stage that feeds it.
    pub(super) fn start(
        durable: Durable,
        recovery: Arc<Recovery>,
        rules: SharedRules,
        workers: Workers,
        flight: Arc<Flight>,
    ) -> Fetch {
        let (queue, batches) = mpsc::channel(DEPTH);
        let metrics = durable.metrics.clone();
        tokio::spawn(durable.run(batches));
        Fetch { recovery, rules, workers, metrics, flight, queue }
    }

    /// Admits a fetched batch and hands it to the workers and the durable stage.
    pub(super) async fn dispatch(&self, batch: Vec<(OwnedMessage, u64)>) {
        let rules = self.rules.read().expect("rules lock poisoned").clone();
        let mut shares: Vec<Vec<OwnedMessage>> = (0..self.workers.len()).map(|_| Vec::new()).collect();
        let (mut already, mut not_owned) = (0u64, 0u64);
        let offsets = {
            let mut partitions = self.recovery.partitions();
            for (m, tag) in batch {
                let (partition, offset) = (m.partition(), m.offset());
                match partitions.admit(m.topic(), partition, offset, tag) {
                    Admit::Apply => {}
                    Admit::AlreadyApplied => {
                        already += 1;
                        continue;
                    }
                    Admit::NotOwned => {
                        not_owned += 1;
                        continue;
                    }
                }
                partitions.applied(m.topic(), partition, offset);
                shares[self.workers.worker_for(partition)].push(m);
            }
            if self.recovery.enabled() {
                Vec::new()
            } else {
                partitions.next_offsets()
            }
        };
        if already > 0 {
            self.metrics.messages_skipped.with_label_values(&["already_applied"]).inc_by(already);
        }
        if not_owned > 0 {
            self.metrics.messages_skipped.with_label_values(&["not_owned"]).inc_by(not_owned);
        }
        let seq = self.flight.fetch();
        let mut receivers = Vec::new();
        for (n, messages) in shares.into_iter().enumerate() {
            if messages.is_empty() {
                continue;
            }
            let (reply, receiver) = oneshot::channel();
            self.workers.submit(n, Job { messages, rules: rules.clone(), reply }).await;
            receivers.push(receiver);
        }
        let batch = InFlight { seq, shares: receivers, rules, offsets };
        if self.queue.send(batch).await.is_err() {
            error!("the durable stage stopped; exiting");
            std::process::exit(70);
        }
    }
}

/// The durable stage: dead letters, the task store, the relay's wake-up, the metrics.
pub(super) struct Durable {
    pub engine: Arc<Engine>,
    pub recovery: Arc<Recovery>,
    pub store: TaskStore,
    pub producer: FutureProducer,
    pub dead_letter_topic: String,
    pub metrics: Arc<Metrics>,
    pub relay: Arc<Notify>,
    pub flight: Arc<Flight>,
    /// Where offsets are stored when checkpoints are off.
    pub consumer: Arc<EventConsumer>,
}

/// A batch's shares put together.
#[derive(Default)]
struct Batch {
    changes: Vec<TaskChange>,
    results: Vec<CommandResult>,
    dead: Vec<DeadLetter>,
    refused: Vec<crate::task::AuditRecord>,
}

impl Durable {
    /// Group commit: the batches already waiting when one arrives (at most [`DEPTH`] more)
    /// become durable together, in one store transaction, so a store whose commit is slow
    /// (PostgreSQL flushes its log on every commit) pays it once for all of them; they are
    /// still counted done one by one, in order.
    async fn run(self, mut batches: mpsc::Receiver<InFlight>) {
        while let Some(first) = batches.recv().await {
            let mut group = vec![first];
            while group.len() <= DEPTH {
                match batches.try_recv() {
                    Ok(b) => group.push(b),
                    Err(_) => break,
                }
            }
            self.make_durable(group).await;
        }
    }

    async fn make_durable(&self, group: Vec<InFlight>) {
        let mut batch = Batch::default();
        let mut broker_times = Vec::new();
        let mut done = Vec::with_capacity(group.len());
        for b in group {
            for share in b.shares {
                let Ok(out) = share.await else {
                    error!("an engine worker stopped; exiting");
                    std::process::exit(70);
                };
                {
                    let mut partitions = self.recovery.partitions();
                    for (p, customer) in &out.touched {
                        partitions.touched(*p, customer);
                    }
                }
                self.count(&b.rules, &out.stats);
                broker_times.extend_from_slice(&out.stats.broker_times);
                batch.changes.extend(out.changes);
                batch.results.extend(out.results);
                batch.dead.extend(out.dead);
                batch.refused.extend(out.refused);
            }
            done.push((b.seq, b.offsets));
        }
        self.publish_dead_letters(&batch.dead).await;
        if !batch.refused.is_empty() {
            let mut backoff = Backoff::new();
            while let Err(e) = self.store.append_audits(&batch.refused).await {
                self.metrics.store_errors.inc();
                warn!(error = %e, "cannot audit refused commands; retrying");
                backoff.wait().await;
            }
            for r in &batch.refused {
                warn!(actor = %r.actor, reason = %r.reason.as_deref().unwrap_or(""), "command refused: not signed with a command key");
            }
        }
        // Most batches change no task: then there is nothing to write.
        if !batch.changes.is_empty() || !batch.results.is_empty() {
            let t = Instant::now();
            self.write(&batch.changes, &batch.results).await;
            self.metrics.batch_seconds.with_label_values(&["store"]).observe(t.elapsed().as_secs_f64());
            if !batch.changes.is_empty() {
                self.relay.notify_one();
            }
        }
        let now =
            SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        for ts in broker_times {
            self.metrics.end_to_end_seconds.observe((now - ts).max(0) as f64 / 1000.0);
        }
        self.observe_state(&batch.changes);
        for (seq, offsets) in done {
            if !offsets.is_empty() {
                store_offsets(&self.consumer, offsets);
            }
            self.flight.done(seq);
        }
    }

    /// Adds a share's counts to the metrics.
    fn count(&self, rules: &RuleSet, stats: &super::workers::Stats) {
        let m = &self.metrics;
        for (topic, kind, n) in &stats.consumed {
            m.events_consumed.with_label_values(&[topic.as_str(), kind.as_str()]).inc_by(*n);
        }
        for (rule, n) in stats.signals.iter().enumerate().filter(|(_, n)| **n > 0) {
            let rule = &rules.rules[rule];
            m.signals.with_label_values(&[rule.id.as_str(), mode_label(rule.mode)]).inc_by(*n);
        }
        for (action, result, n) in &stats.commands {
            m.commands.with_label_values(&[action, result]).inc_by(*n);
        }
        if stats.duplicates > 0 {
            m.duplicates.inc_by(stats.duplicates);
        }
        if stats.stale > 0 {
            m.stale.inc_by(stats.stale);
        }
        for (field, n) in [CodeField::Reason, CodeField::Category].into_iter().zip(stats.unknown_codes) {
            if n > 0 {
                m.codes_unknown.with_label_values(&[field.as_str()]).inc_by(n);
            }
        }
        if stats.applied > 0 {
            // Per event, as the mean of the share (one clock read per share, not per event).
            m.engine_seconds.observe(stats.engine_time.as_secs_f64() / stats.applied as f64);
        }
        m.batch_seconds.with_label_values(&["decode"]).observe(stats.decode_time.as_secs_f64());
        m.batch_seconds.with_label_values(&["engine"]).observe(stats.engine_time.as_secs_f64());
    }

    async fn publish_dead_letters(&self, dead: &[DeadLetter]) {
        if dead.is_empty() {
            return;
        }
        for d in dead {
            self.metrics.events_invalid.with_label_values(&[d.reason]).inc();
        }
        // Rate-limited logging: the first letter of a batch in full, the rest counted.
        let first = &dead[0];
        warn!(
            reason = first.reason,
            error = %first.detail,
            topic = first.message.topic(),
            partition = first.message.partition(),
            offset = first.message.offset(),
            more = dead.len() - 1,
            "refused input sent to the dead-letter topic"
        );
        let mut backoff = Backoff::new();
        while let Err(e) = sink::publish_dead_letters(&self.producer, &self.dead_letter_topic, dead).await {
            self.metrics.publish_errors.inc();
            self.recovery.set_ready(false);
            warn!(error = %e, "cannot publish dead letters; retrying");
            backoff.wait().await;
        }
        self.recovery.set_ready(true);
        self.metrics.dead_letters.inc_by(dead.len() as u64);
    }

    async fn write(&self, changes: &[TaskChange], results: &[CommandResult]) {
        let mut backoff = Backoff::new();
        while let Err(e) = self.store.write(changes, results).await {
            self.metrics.store_errors.inc();
            self.recovery.set_ready(false);
            warn!(error = %e, "cannot write tasks; retrying (consumption paused)");
            backoff.wait().await;
        }
        self.recovery.set_ready(true);
        for c in changes {
            if c.kind == ChangeKind::Erased {
                self.metrics.customers_erased.inc();
                continue;
            }
            let rule = c.task.rules.last().map(String::as_str).unwrap_or("");
            let priority = c.task.priority.to_string();
            self.metrics
                .task_changes
                .with_label_values(&[c.kind.as_str(), c.task.queue.as_str(), rule, &priority])
                .inc();
            // No category label (free text from the source): the log line names it.
            for category in &c.without_procedure {
                self.metrics.complaints_without_procedure.inc();
                info!(task = %c.task.id, category = %category, "complaint category without a procedure in the playbook; the default procedure was shown");
            }
            if c.kind == ChangeKind::Resolved {
                let outcome = c.task.outcome.map_or("", |o| o.as_str());
                for rule in &c.task.rules {
                    self.metrics.task_outcomes.with_label_values(&[rule, outcome]).inc();
                }
            }
            for (step, at) in task_steps(c) {
                let seconds = at.millis_since(c.task.opened_at).max(0) as f64 / 1000.0;
                self.metrics
                    .task_step_seconds
                    .with_label_values(&[c.task.queue.as_str(), step])
                    .observe(seconds);
            }
        }
    }

    fn observe_state(&self, changes: &[TaskChange]) {
        let customers = self.engine.state.len();
        self.metrics.customers_tracked.set(customers as i64);
        // In memory: measured from a sample of the customers (capacities, scaled to all).
        // Stored: measured at each checkpoint.
        let memory = self.engine.state.memory_bytes_sampled(STATE_BYTES_SAMPLE);
        self.metrics.state_bytes.with_label_values(&["memory"]).set(memory as i64);
        self.metrics.customers_expired.inc_by(self.engine.take_expired_count());
        let stored = customers as u64 * self.recovery.stored_bytes_per_customer();
        self.metrics.state_bytes.with_label_values(&["stored"]).set(stored as i64);
        for c in changes {
            if c.kind == ChangeKind::Erased {
                for open in &c.task.context.earlier_tasks {
                    self.metrics.tasks_open.with_label_values(&[open.queue.as_str()]).dec();
                }
                continue;
            }
            let gauge = self.metrics.tasks_open.with_label_values(&[c.task.queue.as_str()]);
            match c.kind {
                ChangeKind::Opened | ChangeKind::Reopened => gauge.inc(),
                ChangeKind::Resolved => gauge.dec(),
                ChangeKind::Enriched | ChangeKind::Updated | ChangeKind::Erased => {}
            }
        }
    }
}

/// Customers whose memory is measured for the `state_bytes` gauge, after every batch (about
/// 0.1 ms; `cargo bench --bench state_size` compares it with the allocator's count).
const STATE_BYTES_SAMPLE: usize = 1_000;

/// The steps of a task's life a change reached, and when (for `callahead_task_step_seconds`):
/// taken by an agent while nobody held it (a claim, or a contact or reassignment of an unheld
/// task), the customer first reached, resolved.
fn task_steps(c: &TaskChange) -> Vec<(&'static str, crate::time::Timestamp)> {
    let work = &c.task.work;
    let mut steps = Vec::new();
    if !matches!(c.kind, ChangeKind::Updated | ChangeKind::Resolved) {
        return steps;
    }
    let was_held = c.audit.before.as_ref().is_some_and(|b| b.assignee.is_some());
    if !was_held && work.assignee.is_some() {
        steps.push(("claim", work.claimed_at.unwrap_or(c.audit.at)));
    }
    if c.audit.action == "contacted" && work.first_contact_at == Some(c.audit.at) {
        steps.push(("first_contact", c.audit.at));
    }
    if c.kind == ChangeKind::Resolved {
        steps.push(("resolve", work.resolved_at.unwrap_or(c.audit.at)));
    }
    steps
}

/// Stores (topic, partition, next offset) for the background commit.
pub(super) fn store_offsets(consumer: &EventConsumer, offsets: Vec<(String, i32, i64)>) {
    for (topic, partition, next) in offsets {
        if let Err(e) = consumer.store_offset(&topic, partition, next - 1) {
            // Revoked meanwhile: the new owner starts from its checkpoint.
            warn!(error = %e, topic, partition, "cannot store offset");
        }
    }
}

/// Settings of the fetch loop.
pub(super) struct Pace {
    pub max: usize,
    pub wait: Duration,
    pub checkpoint_interval: Duration,
}

/// The fetch loop, until `stop` resolves: fetch, dispatch, and (with checkpoints on) prepare a
/// checkpoint every interval at a drained point and store the offsets of the last written one.
/// Returns with the pipeline drained and the last checkpoint written.
pub(super) async fn run(
    fetch: Fetch,
    consumer: Arc<EventConsumer>,
    store: TaskStore,
    pace: Pace,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let recovery = fetch.recovery.clone();
    let mut last_checkpoint = Instant::now();
    let mut checkpointing: Option<tokio::task::JoinHandle<Vec<(String, i32, i64)>>> = None;
    // Wake up at least this often without input, to checkpoint what the last batches changed.
    let idle =
        if pace.checkpoint_interval.is_zero() { Duration::from_secs(1) } else { pace.checkpoint_interval };
    loop {
        tokio::select! {
            _ = &mut stop => break,
            batch = source::next_batch(&consumer, pace.max, pace.wait, idle, |p| recovery.partitions().tag(p)) => match batch {
                Ok(batch) if batch.is_empty() => {
                    if fetch.flight.is_drained() {
                        check_store(&store, &fetch.metrics, &recovery).await; // readiness still reflects the store
                    }
                }
                Ok(batch) => fetch.dispatch(batch).await,
                Err(e) => {
                    warn!(error = %e, "Kafka consumer error; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
        }
        if !recovery.enabled() {
            continue;
        }
        // One checkpoint in flight at a time, written in the background; its offsets are
        // stored once it is durable.
        if checkpointing.as_ref().is_some_and(|c| c.is_finished()) {
            let done = checkpointing.take().expect("just checked").await;
            store_offsets(&consumer, done.unwrap_or_default());
        }
        if checkpointing.is_none() && last_checkpoint.elapsed() >= pace.checkpoint_interval {
            fetch.flight.drained().await;
            checkpointing = Some(recovery.start_checkpoint());
            last_checkpoint = Instant::now();
        }
    }
    fetch.flight.drained().await;
    if let Some(c) = checkpointing.take() {
        store_offsets(&consumer, c.await.unwrap_or_default());
    }
    store_offsets(&consumer, recovery.checkpoint().await);
}

/// Pings the store: not ready while it does not answer.
async fn check_store(store: &TaskStore, metrics: &Metrics, recovery: &Recovery) {
    match store.ping().await {
        Ok(()) => recovery.set_ready(true),
        Err(e) => {
            metrics.store_errors.inc();
            warn!(error = %e, "task store unavailable");
            recovery.set_ready(false);
        }
    }
}
