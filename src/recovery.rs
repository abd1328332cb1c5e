//! State that survives restarts and follows its partitions: checkpoint each owned partition's
//! changed customers (with the offsets they cover) into the store, restore a partition's state
//! when it is assigned, checkpoint and forget it when it is revoked.
//!
//! The I/O edge around [`crate::partitions`] (bookkeeping) and [`crate::state::codec`] (bytes).
//! The consumer's rebalance callback calls [`Recovery::on_assigned`] and
//! [`Recovery::on_revoked`] synchronously, before librdkafka assigns or lets go of the
//! partitions, so a partition is never processed before its restore ends, and another instance
//! never restores it before this one's last checkpoint. The batch loop calls
//! [`Recovery::start_checkpoint`] every `checkpoint_interval_ms` (the state is encoded then, and
//! written in the background while the loop goes on) and [`Recovery::checkpoint`] at shutdown;
//! Kafka offsets are stored only up to a durable checkpoint. A restore's reading, decoding and
//! installing run on every core (`recovery/load.rs`).
//!
//! Why the store and not a changelog topic: one transaction holds a partition's changed
//! customers and its offsets, so they always agree without Kafka transactions, and an upsert per
//! customer is compaction for free. Costs and figures: `docs/recovery.md`.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tracing::{error, info, info_span, warn, Instrument};

use crate::engine::Engine;
use crate::metrics::Metrics;
use crate::partitions::{Offsets, Partitions};
use crate::state::{codec, CustomerState};
use crate::store::{PartitionCheckpoint, StoreError, TaskStore};

mod load;
pub use load::{load_partition, Loaded};

/// Longest time a revoke spends checkpointing (it blocks the group's rebalance): past it, the
/// partitions are let go anyway and their next owner re-reads from the previous checkpoint
/// (still exact, just slower).
const REVOKE_BUDGET: Duration = Duration::from_secs(15);

/// One partition's checkpoint, prepared (its changed customers copied) and waiting to be written.
struct Job {
    partition: i32,
    /// The ownership it was prepared under: its result counts only if that still holds.
    tag: u64,
    epoch: i64,
    checkpoint: PartitionCheckpoint,
    /// Copies of the changed customers' states, encoded by the writer.
    states: Vec<(Box<str>, Box<CustomerState>)>,
    dirty: Vec<Box<str>>,
    /// Changed customers no longer in memory (expired): their rows are deleted.
    removed: Vec<Box<str>>,
}

/// Per-partition state recovery of one instance.
pub struct Recovery {
    engine: Arc<Engine>,
    store: TaskStore,
    group: String,
    enabled: bool,
    partitions: Mutex<Partitions>,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    /// Mean encoded bytes of the customers in recent checkpoints (a moving average).
    stored_mean: AtomicU64,
    /// Held while a checkpoint is written: one at a time, in the order they were prepared.
    writing: tokio::sync::Mutex<()>,
    /// The group gave this instance its first assignment (possibly empty) and it was restored.
    assigned: AtomicBool,
    runtime: tokio::runtime::Handle,
    /// The running rules: what a checkpoint does not keep of a task (its complaint procedure)
    /// is derived again from their playbook when a customer is restored.
    rules: Option<crate::rules::SharedRules>,
}

impl Recovery {
    /// `enabled = false` keeps state in memory only (no checkpoints, no restores).
    pub fn new(
        engine: Arc<Engine>,
        store: TaskStore,
        group: String,
        enabled: bool,
        metrics: Arc<Metrics>,
        ready: Arc<AtomicBool>,
    ) -> Recovery {
        Recovery {
            engine,
            store,
            group,
            enabled,
            partitions: Mutex::new(Partitions::default()),
            metrics,
            ready,
            assigned: AtomicBool::new(false),
            writing: tokio::sync::Mutex::new(()),
            stored_mean: AtomicU64::new(0),
            runtime: tokio::runtime::Handle::current(),
            rules: None,
        }
    }

    /// Restores customers with the running rules' playbook (see [`incident::restore_context`]).
    ///
    /// [`incident::restore_context`]: crate::incident::restore_context
    pub fn with_rules(mut self, rules: crate::rules::SharedRules) -> Recovery {
        self.rules = Some(rules);
        self
    }

    /// The owned partitions' bookkeeping.
    pub fn partitions(&self) -> MutexGuard<'_, Partitions> {
        self.partitions.lock().expect("partitions lock poisoned")
    }

    /// Restores newly assigned partitions (blocking: called from the rebalance callback).
    pub fn on_assigned(&self, partitions: &BTreeSet<i32>) {
        let new: Vec<i32> = partitions.iter().copied().filter(|p| !self.partitions().owns(*p)).collect();
        if !new.is_empty() {
            self.block_on(async {
                for p in new {
                    self.restore(p).instrument(info_span!("restore", partition = p)).await;
                }
            });
        }
        self.assigned.store(true, Ordering::Relaxed);
        self.set_ready(true);
    }

    /// Checkpoints revoked partitions and forgets their customers (blocking: called from the
    /// rebalance callback). Returns the checkpointed offsets to store before letting go. A
    /// `lost` assignment (this instance was expelled from the group; another may own the
    /// partitions already) is forgotten without a checkpoint.
    pub fn on_revoked(&self, partitions: &BTreeSet<i32>, lost: bool) -> Vec<(String, i32, i64)> {
        let mine: Vec<i32> = partitions.iter().copied().filter(|p| self.partitions().owns(*p)).collect();
        if mine.is_empty() {
            return Vec::new();
        }
        let offsets = if lost {
            warn!(partitions = ?mine, "partitions lost (expelled from the group): released without a checkpoint");
            Vec::new()
        } else {
            let jobs = self.prepare(&mine);
            if self.enabled {
                self.block_on(self.write(jobs, Some(Instant::now() + REVOKE_BUDGET)))
            } else {
                self.partitions().next_offsets().into_iter().filter(|(_, p, _)| mine.contains(p)).collect()
            }
        };
        for p in mine {
            self.release(p);
        }
        offsets
    }

    /// Forgets a partition: its bookkeeping, its customers, their open tasks in the gauge.
    fn release(&self, partition: i32) {
        self.partitions().release(partition);
        self.count_open_tasks(partition, -1);
        let forgotten = self.engine.release(partition);
        self.metrics.customers_tracked.set(self.engine.state.len() as i64);
        self.metrics.partitions_owned.set(self.partitions().owned().len() as i64);
        info!(partition, customers = forgotten, "partition released");
    }

    /// Checkpoints every owned partition with changes and waits; returns the offsets now
    /// durable, to store in Kafka. Retries until the store accepts (used at shutdown).
    pub async fn checkpoint(&self) -> Vec<(String, i32, i64)> {
        if !self.enabled {
            return self.applied_offsets();
        }
        let owned = self.partitions().owned(); // the guard must not outlive this line
        let jobs = self.prepare(&owned);
        self.write(jobs, None).await
    }

    /// Starts a checkpoint of every owned partition with changes: the state is encoded now, the
    /// write happens in the background while the loop goes on; the task's result is the offsets
    /// then durable, to store in Kafka.
    pub fn start_checkpoint(self: &Arc<Self>) -> tokio::task::JoinHandle<Vec<(String, i32, i64)>> {
        let owned = self.partitions().owned(); // the guard must not outlive this line
        let jobs = self.prepare(&owned);
        let me = self.clone();
        tokio::spawn(async move { me.write(jobs, None).await })
    }

    /// Offsets to store in Kafka when checkpoints are off: everything applied.
    pub fn applied_offsets(&self) -> Vec<(String, i32, i64)> {
        self.partitions().next_offsets()
    }

    /// Mean bytes per customer as stored, from recent checkpoints (0 before the first).
    pub fn stored_bytes_per_customer(&self) -> u64 {
        self.stored_mean.load(Ordering::Relaxed)
    }

    /// Adds (`sign` 1) or removes (-1) the open tasks of a partition's customers to the
    /// open-tasks gauge.
    fn count_open_tasks(&self, partition: i32, sign: i64) {
        let customers = self.engine.state.customers.iter().filter(|e| e.partition == partition);
        for entry in customers {
            for task in entry.incidents.iter().flat_map(|i| i.open.iter()) {
                self.metrics.tasks_open.with_label_values(&[task.queue.as_str()]).add(sign);
            }
        }
    }

    fn observe_stored(&self, customers: usize, bytes: usize) {
        if customers == 0 {
            return;
        }
        let now = (bytes / customers) as u64;
        let before = self.stored_mean.load(Ordering::Relaxed);
        let mean = if before == 0 { now } else { (before * 7 + now) / 8 };
        self.stored_mean.store(mean, Ordering::Relaxed);
    }

    /// True when checkpoints are on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Takes the pending changes of `which` and copies their customers: the state as of now,
    /// with the offsets it covers. Runs where the engine runs (the batch loop or the rebalance
    /// callback), so no event is applied between reading the offsets and encoding the state.
    fn prepare(&self, which: &[i32]) -> Vec<Job> {
        let mut jobs = Vec::new();
        for &partition in which {
            let (tag, taken) = {
                let mut p = self.partitions();
                (p.tag(partition), p.take_pending(partition))
            };
            let Some((dirty, offsets, epoch)) = taken else { continue };
            // A copy costs a fraction of encoding, which the writer does off the loop.
            let mut removed = Vec::new();
            let states: Vec<(Box<str>, Box<CustomerState>)> = dirty
                .iter()
                .filter_map(|id| match self.engine.state.customers.get(id) {
                    Some(state) => Some((id.clone(), state.clone())),
                    None => {
                        removed.push(id.clone());
                        None
                    }
                })
                .collect();
            let checkpoint = PartitionCheckpoint { offsets, newest: self.engine.newest(partition) };
            jobs.push(Job { partition, tag, epoch, checkpoint, states, dirty, removed });
        }
        jobs
    }

    /// Writes prepared checkpoints, one at a time across the instance (an older checkpoint of a
    /// partition never lands after a newer one), each retried until written or `deadline`
    /// passes (none: until written). A partition another instance claimed meanwhile is released,
    /// not retried. Returns the offsets now durable of partitions still owned as prepared.
    async fn write(&self, jobs: Vec<Job>, deadline: Option<Instant>) -> Vec<(String, i32, i64)> {
        let mut durable = Vec::new();
        if jobs.is_empty() {
            return durable;
        }
        let _turn = match deadline {
            None => self.writing.lock().await,
            Some(d) => match tokio::time::timeout_at(d.into(), self.writing.lock()).await {
                Ok(turn) => turn,
                Err(_) => {
                    error!("a checkpoint in flight does not finish; letting go without one");
                    return durable;
                }
            },
        };
        'jobs: for job in jobs {
            let Job { partition, tag, epoch, checkpoint, states, dirty, removed } = job;
            let current = || self.partitions().tag(partition) == tag;
            let started = Instant::now();
            let rows: Vec<(Box<str>, Vec<u8>)> =
                states.into_iter().map(|(id, state)| (id, codec::encode(&state))).collect();
            let bytes: usize = rows.iter().map(|(_, b)| b.len()).sum();
            let mut backoff = crate::backoff::Backoff::new();
            loop {
                let save = self.store.save_checkpoint_removing(
                    &self.group,
                    partition,
                    epoch,
                    &checkpoint,
                    &rows,
                    &removed,
                );
                match save.instrument(info_span!("checkpoint", partition, customers = rows.len())).await {
                    Ok(()) => break,
                    Err(e @ StoreError::Fenced { .. }) => {
                        error!(error = %e, partition, "another instance owns this partition now; releasing it");
                        if current() {
                            self.release(partition);
                        }
                        continue 'jobs;
                    }
                    Err(e) => {
                        self.metrics.store_errors.inc();
                        self.set_ready(false);
                        warn!(error = %e, partition, "cannot write the state checkpoint; retrying");
                        if deadline.is_some_and(|d| Instant::now() >= d) {
                            error!(
                                partition,
                                "giving up on the checkpoint: the next owner re-reads from the previous one"
                            );
                            if current() {
                                self.partitions().untake(partition, dirty);
                            }
                            continue 'jobs;
                        }
                        backoff.wait().await;
                    }
                }
            }
            self.set_ready(true);
            self.metrics.checkpoint_seconds.observe(started.elapsed().as_secs_f64());
            self.metrics.checkpointed_customers.inc_by(rows.len() as u64);
            self.metrics.checkpointed_bytes.inc_by(bytes as u64);
            self.observe_stored(rows.len(), bytes);
            if current() {
                self.partitions().checkpointed(partition, checkpoint.offsets.clone());
                durable.extend(checkpoint.offsets.into_iter().map(|(topic, next)| (topic, partition, next)));
            }
        }
        durable
    }

    /// Loads a partition's checkpoint into the engine and takes ownership of it. Retries while
    /// the store is unavailable; the service reports not ready meanwhile.
    async fn restore(&self, partition: i32) {
        if !self.enabled {
            self.partitions().own(partition, Offsets::new(), 0);
            self.metrics.partitions_owned.set(self.partitions().owned().len() as i64);
            return;
        }
        let started = Instant::now();
        self.set_ready(false);
        self.metrics.partitions_restoring.inc();
        info!(partition, "restoring partition state");
        let mut backoff = crate::backoff::Backoff::new();
        let (epoch, checkpoint, customers, bytes) = loop {
            // Claim first: from now on an earlier owner cannot write this partition's state.
            let epoch = match self.store.claim_partition(&self.group, partition).await {
                Ok(epoch) => epoch,
                Err(e) => {
                    self.metrics.store_errors.inc();
                    warn!(error = %e, partition, "cannot claim the partition in the store; retrying");
                    backoff.wait().await;
                    continue;
                }
            };
            let playbook =
                self.rules.as_ref().map(|r| r.read().expect("rules lock poisoned").playbook.clone());
            let metrics = self.metrics.clone();
            let progress = move |customers, bytes| {
                metrics.restored_customers.inc_by(customers);
                metrics.restored_bytes.inc_by(bytes);
            };
            let result =
                load_partition(&self.store, &self.group, &self.engine, partition, playbook, 0, progress)
                    .await;
            match result {
                Ok(loaded) => {
                    if loaded.corrupt > 0 {
                        self.metrics.restore_corrupt.inc_by(loaded.corrupt);
                    }
                    self.observe_stored(loaded.customers as usize, loaded.bytes as usize);
                    break (epoch, loaded.checkpoint, loaded.customers, loaded.bytes);
                }
                Err(e) => {
                    self.metrics.store_errors.inc();
                    warn!(error = %e, partition, "cannot read the state checkpoint; retrying");
                    backoff.wait().await;
                }
            }
        };
        let offsets = match checkpoint {
            Some(c) => {
                self.engine.restore(partition, c.newest, []);
                c.offsets
            }
            None => Offsets::new(),
        };
        self.count_open_tasks(partition, 1);
        let seconds = started.elapsed().as_secs_f64();
        self.partitions().own(partition, offsets.clone(), epoch);
        self.metrics.partitions_owned.set(self.partitions().owned().len() as i64);
        self.metrics.partitions_restoring.dec();
        self.metrics.restore_seconds.observe(seconds);
        self.metrics.customers_tracked.set(self.engine.state.len() as i64);
        if self.metrics.partitions_restoring.get() == 0 {
            self.set_ready(true);
        }
        info!(partition, epoch, customers, bytes, seconds, offsets = ?offsets, "partition restored");
    }

    /// Reports ready (if the first assignment was restored and no restore is running) or not
    /// ready (a dependency fails).
    pub fn set_ready(&self, ready: bool) {
        let ready =
            ready && self.assigned.load(Ordering::Relaxed) && self.metrics.partitions_restoring.get() == 0;
        self.ready.store(ready, Ordering::Relaxed);
        self.metrics.ready.set(i64::from(ready));
    }

    /// Runs a future to completion from synchronous code on a runtime thread (the rebalance
    /// callback runs inside the consumer's poll, on the batch loop's thread).
    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        match tokio::runtime::Handle::try_current() {
            Ok(h) => tokio::task::block_in_place(|| h.block_on(f)),
            Err(_) => self.runtime.block_on(f),
        }
    }
}

impl crate::ingest::kafka::PartitionHooks for Recovery {
    fn assigned(&self, partitions: &BTreeSet<i32>) {
        self.on_assigned(partitions);
    }

    fn revoked(&self, partitions: &BTreeSet<i32>, lost: bool) -> Vec<(String, i32, i64)> {
        self.on_revoked(partitions, lost)
    }
}
