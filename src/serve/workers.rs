//! Engine workers: the CPU stage of the pipeline, one thread per core by default. A batch's
//! messages are split by partition number and every partition always goes to the same worker
//! (`partition mod workers`), whose queue is first in, first out: a partition is processed in
//! order, by one thread at a time, so its customers' events and commands are applied in order
//! and its event time and timers advance only with its own messages. Different partitions run
//! on different cores at once (the engine takes `&self`; its state map locks per customer and
//! its timers per partition).
//!
//! A worker decodes its share of the batch first, then applies it, reading the clock twice per
//! share rather than per event; what it counts (events per topic and type, signals per rule,
//! commands per action and result) is aggregated per share and added to the metrics once per
//! batch by the batch stage.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::message::{Message, OwnedMessage};
use tokio::sync::{mpsc, oneshot};
use tracing::error;

use crate::command::{self, Command, CommandResult, Refusal};
use crate::engine::Engine;
use crate::event::{self, Event, EventKind};
use crate::ingest::kafka::key_text;
use crate::rules::RuleSet;
use crate::sink::kafka::DeadLetter;
use crate::task::TaskChange;

/// Jobs waiting per worker: with the batch stage's own queue, how far fetching may run ahead.
const QUEUE: usize = 2;

/// What every worker needs to know.
pub(super) struct Context {
    pub engine: Arc<Engine>,
    /// Messages of this topic are commands; of any other input topic, events.
    pub commands_topic: String,
    /// The keys commands must be signed with (`bus` module doc).
    pub command_keys: Arc<Vec<crate::outreach::links::LinkKey>>,
    /// Refuse events without a key (with checkpoints, a customer's state follows the key).
    pub require_key: bool,
}

/// One worker's share of a batch.
pub(super) struct Job {
    pub messages: Vec<OwnedMessage>,
    /// The rule set of the whole batch (read once per batch).
    pub rules: Arc<RuleSet>,
    pub reply: oneshot::Sender<Output>,
}

/// What a share of a batch caused.
#[derive(Default)]
pub(super) struct Output {
    pub changes: Vec<TaskChange>,
    /// Audit records of commands refused for their signature.
    pub refused: Vec<crate::task::AuditRecord>,
    pub results: Vec<CommandResult>,
    pub dead: Vec<DeadLetter>,
    /// Customers whose state changed, with their partition (for the next checkpoint).
    pub touched: Vec<(i32, Box<str>)>,
    pub stats: Stats,
}

/// Counts of a share of a batch, added to the metrics once per batch.
#[derive(Default)]
pub(super) struct Stats {
    /// Events applied per (topic, type).
    pub consumed: Vec<(String, EventKind, u64)>,
    /// Firings per rule (index in the batch's rule set).
    pub signals: Vec<u64>,
    pub duplicates: u64,
    /// Events beyond their customer's de-duplication horizon (not applied).
    pub stale: u64,
    /// Events with a code the rule pack does not know, per field (reason, category).
    pub unknown_codes: [u64; 2],
    /// Commands per (action, result).
    pub commands: Vec<(&'static str, &'static str, u64)>,
    /// Events and commands given to the engine.
    pub applied: u64,
    pub decode_time: Duration,
    pub engine_time: Duration,
    /// Broker timestamps of the messages processed (milliseconds).
    pub broker_times: Vec<i64>,
}

impl Stats {
    fn count_event(&mut self, topic: &str, kind: EventKind) {
        match self.consumed.iter_mut().find(|(t, k, _)| t == topic && *k == kind) {
            Some((_, _, n)) => *n += 1,
            None => self.consumed.push((topic.to_string(), kind, 1)),
        }
    }

    fn count_command(&mut self, action: &'static str, result: &'static str) {
        match self.commands.iter_mut().find(|(a, r, _)| *a == action && *r == result) {
            Some((_, _, n)) => *n += 1,
            None => self.commands.push((action, result, 1)),
        }
    }
}

/// The running workers.
pub(super) struct Workers {
    queues: Vec<mpsc::Sender<Job>>,
}

impl Workers {
    /// Starts `count` worker threads (at least one).
    pub(super) fn start(count: usize, context: Arc<Context>) -> std::io::Result<Workers> {
        let mut queues = Vec::new();
        for n in 0..count.max(1) {
            let (tx, rx) = mpsc::channel(QUEUE);
            let context = context.clone();
            std::thread::Builder::new().name(format!("engine-{n}")).spawn(move || work(&context, rx))?;
            queues.push(tx);
        }
        Ok(Workers { queues })
    }

    /// Number of workers.
    pub(super) fn len(&self) -> usize {
        self.queues.len()
    }

    /// The worker that processes `partition` (always the same one).
    pub(super) fn worker_for(&self, partition: i32) -> usize {
        partition.rem_euclid(self.queues.len() as i32) as usize
    }

    /// Queues a job for worker `n`, waiting while its queue is full (back-pressure).
    pub(super) async fn submit(&self, n: usize, job: Job) {
        if self.queues[n].send(job).await.is_err() {
            // A worker only stops by panicking (a bug); the process cannot go on without it.
            error!(worker = n, "an engine worker stopped; exiting");
            std::process::exit(70);
        }
    }
}

/// A worker's loop: one job at a time, in the order queued.
fn work(context: &Context, mut jobs: mpsc::Receiver<Job>) {
    while let Some(job) = jobs.blocking_recv() {
        let output = process(context, &job.rules, job.messages);
        // The batch stage stopped waiting only if the service is shutting down.
        let _ = job.reply.send(output);
    }
}

/// A message decoded (or refused), in the order received.
enum Decoded {
    Event(Event, i32),
    Command(Command, i32),
}

/// Decodes and applies one share of a batch.
fn process(context: &Context, rules: &RuleSet, messages: Vec<OwnedMessage>) -> Output {
    let mut out = Output::default();
    out.stats.signals = vec![0; rules.rules.len()];
    out.stats.broker_times.reserve(messages.len());
    let started = Instant::now();
    let mut decoded = Vec::with_capacity(messages.len());
    for m in messages {
        if let Some(ts) = m.timestamp().to_millis() {
            out.stats.broker_times.push(ts);
        }
        if let Some(d) = decode(context, m, &mut out) {
            decoded.push(d);
        }
    }
    let decoded_at = Instant::now();
    out.stats.decode_time = decoded_at - started;
    for d in decoded {
        out.stats.applied += 1;
        match d {
            Decoded::Event(event, partition) => {
                let applied = context.engine.process_in(partition, rules, &event);
                if let Some((field, false)) = applied.code {
                    out.stats.unknown_codes[field as usize] += 1;
                }
                if applied.stale {
                    out.stats.stale += 1;
                }
                if applied.duplicate {
                    out.stats.duplicates += 1;
                } else {
                    out.touched.push((partition, event.customer_id.into()));
                }
                out.touched.extend(applied.timer_touched);
                for hit in &applied.hits {
                    out.stats.signals[hit.rule] += 1;
                }
                out.changes.extend(applied.changes);
            }
            Decoded::Command(command, partition) => {
                let applied = context.engine.command(partition, &command);
                for r in &applied.results {
                    let result = match r.refusal {
                        None => "applied",
                        Some(Refusal::NotFound) => "not_found",
                        Some(Refusal::Conflict) => "conflict",
                        Some(Refusal::Invalid) => "invalid",
                    };
                    out.stats.count_command(command.action.name(), result);
                }
                if !applied.duplicate {
                    out.touched.push((partition, command.customer_id.into()));
                }
                out.changes.extend(applied.changes);
                out.results.extend(applied.results);
            }
        }
    }
    out.stats.engine_time = decoded_at.elapsed();
    out
}

/// The audit record of a command refused for its signature: who it claims to be from and what it
/// claims to do (as it says: unproven), why it was refused, under a key derived from its bytes
/// (a redelivery is recorded once).
fn refusal_audit(payload: &[u8], reason: &'static str, detail: &str) -> crate::task::AuditRecord {
    let claimed: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
    let text = |v: &serde_json::Value| v.as_str().map(|s| s.chars().take(200).collect::<String>());
    let at = crate::api::now();
    crate::task::AuditRecord {
        task_id: format!("refused_{:016x}", xxhash_rust::xxh3::xxh3_64(payload)),
        version: 1,
        at,
        actor: text(&claimed["actor"]["name"]).unwrap_or_else(|| "unknown".into()),
        role: text(&claimed["actor"]["role"]).unwrap_or_else(|| "unknown".into()),
        action: "command_refused".into(),
        reason: Some(format!(
            "{reason}: {detail} (claimed action {}, task {})",
            text(&claimed["action"]["type"]).unwrap_or_else(|| "?".into()),
            text(&claimed["task_id"]).unwrap_or_else(|| "?".into())
        )),
        command_id: text(&claimed["command_id"]),
        before: None,
        after: crate::task::AuditView::nothing(),
    }
}

/// Decodes one message into an event or a command, or dead-letters it with the reason.
fn decode(context: &Context, m: OwnedMessage, out: &mut Output) -> Option<Decoded> {
    let partition = m.partition();
    if m.topic() == context.commands_topic {
        let payload = m.payload().unwrap_or_default();
        if let Err((reason, detail)) = crate::bus::verify(&context.command_keys, m.headers(), payload) {
            out.refused.push(refusal_audit(payload, reason, &detail));
            out.dead.push(DeadLetter { reason, detail, message: m, payload: None });
            return None;
        }
        let command = match command::decode(payload) {
            Ok(c) => c,
            Err(e) => {
                out.dead.push(DeadLetter {
                    reason: e.reason_code(),
                    detail: e.redacted(),
                    message: m,
                    payload: None,
                });
                return None;
            }
        };
        if key_text(&m) != Some(command.customer_id.as_str()) {
            let detail =
                "command key differs from customer_id (commands must be keyed by customer)".to_string();
            out.dead.push(DeadLetter { reason: "key_mismatch", detail, message: m, payload: None });
            return None;
        }
        return Some(Decoded::Command(command, partition));
    }
    let event = match event::decode(m.payload().unwrap_or_default()) {
        Ok(e) => e,
        Err(e) => {
            // A card number does not travel on, not even to the dead-letter topic: masked there.
            let payload = matches!(e, event::DecodeError::CardNumber { .. })
                .then(|| event::mask_card_number(m.payload().unwrap_or_default()))
                .flatten();
            out.dead.push(DeadLetter { reason: e.reason_code(), detail: e.redacted(), message: m, payload });
            return None;
        }
    };
    match key_text(&m) {
        Some(key) if key != event.customer_id.as_str() => {
            let detail =
                "message key differs from customer_id (events must be keyed by customer)".to_string();
            out.dead.push(DeadLetter { reason: "key_mismatch", detail, message: m, payload: None });
            return None;
        }
        // Without a key the producer's partitioner scatters a customer's events over
        // partitions, and with them the customer's state (checkpoints are per partition).
        None if context.require_key => {
            let detail = "message has no key (events must be keyed by customer_id)".to_string();
            out.dead.push(DeadLetter { reason: "missing_key", detail, message: m, payload: None });
            return None;
        }
        _ => {}
    }
    out.stats.count_event(m.topic(), event.kind());
    Some(Decoded::Event(event, partition))
}
