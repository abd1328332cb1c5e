//! `callahead serve`: the real-time service. Kafka in, tasks out (store, tasks topic), dead
//! letters for bad input, the agents' API, metrics and health over HTTP, rules reloaded without
//! a restart. `tickers.rs` finds overdue tasks and idle claims and sends commands for them.
//!
//! Agents' actions arrive on the commands topic, co-partitioned with the input topics and
//! consumed by the same loop: a command is applied by the engine that owns its customer, in
//! order with the customer's events, and its result is written with the batch.
//!
//! One loop owns the engine: take a batch of messages → skip what the restored state already
//! holds → decode, validate, run the engine → publish dead letters → write task changes to the
//! store (one transaction, with the outbox) → publish the outbox to the tasks topic. Every
//! checkpoint interval the changed customers are encoded and written in the background
//! ([`crate::recovery`]); offsets are stored for Kafka only once that checkpoint is durable,
//! and everything before it was made durable first, so a crash at any point re-delivers, never
//! loses (at-least-once); task ids and versions make the re-delivery idempotent downstream. A
//! failing store or broker is retried with back-off inside the loop, which stops fetching
//! meanwhile: that is the back-pressure.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use tracing::{error, info, info_span, warn, Instrument};

use crate::api::{self, ApiState, Health};
use crate::bus::CommandBus;
use crate::command;
use crate::command::CommandResult;
use crate::config::Config;
use crate::engine::{Engine, EngineConfig};
use crate::event::decode;
use crate::ingest::kafka::{self as source, EventConsumer};
use crate::metrics::Metrics;
use crate::partitions::Admit;
use crate::recovery::Recovery;
use crate::rules::{Mode, RuleSet};
use crate::sink::kafka::{self as sink, DeadLetter};
use crate::store::TaskStore;
use crate::task::{ChangeKind, TaskChange};

pub(crate) mod tickers;

/// The running rule set, swapped whole on reload.
pub type SharedRules = Arc<RwLock<Arc<RuleSet>>>;

/// What one batch caused: task changes, command results, dead letters, and the broker
/// timestamps of the applied messages.
struct Applied {
    changes: Vec<TaskChange>,
    results: Vec<CommandResult>,
    dead: Vec<DeadLetter>,
    broker_times: Vec<i64>,
}

/// Runs the service until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> Result<()> {
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    let rules = RuleSet::load_dir(&config.rules.dir)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("rules in {} are invalid; not starting", config.rules.dir.display()))?;
    metrics.rules_loaded.set(rules.rules.len() as i64);
    export_rule_labels(&metrics, &rules);
    let rules: SharedRules = Arc::new(RwLock::new(Arc::new(rules)));

    let listener = tokio::net::TcpListener::bind(&config.http.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.http.listen))?;
    info!(address = %config.http.listen, "serving /metrics, /healthz, /readyz, /api/v1, /docs");
    let health = Health { metrics: metrics.clone(), ready: ready.clone() };
    // The ops endpoints answer at once; the API joins them once the store is connected.
    let api_router: Arc<std::sync::OnceLock<axum::Router>> = Arc::new(std::sync::OnceLock::new());
    let app = api::ops_router(health.clone()).fallback({
        let api_router = api_router.clone();
        move |request: axum::extract::Request| async move {
            use axum::response::IntoResponse;
            use tower::ServiceExt;
            match api_router.get() {
                Some(router) => router.clone().oneshot(request).await.into_response(),
                None => api::problem::Problem::unavailable("starting: the task store is not connected yet")
                    .into_response(),
            }
        }
    });
    tokio::spawn(async move {
        if let Err(e) = api::serve_http(listener, app).await {
            error!(error = %e, "HTTP server stopped");
        }
    });

    let store = connect_store(&config.store.url, &metrics).await;
    let engine = Arc::new(Engine::new(EngineConfig { allowed_lateness: config.engine.allowed_lateness.0 }));
    let recovery = Arc::new(
        Recovery::new(
            engine.clone(),
            store.clone(),
            config.kafka.group_id.clone(),
            config.state.checkpoint,
            metrics.clone(),
            ready.clone(),
        )
        .with_rules(rules.clone()),
    );
    let consumer = source::consumer(&config.kafka, metrics.clone(), recovery.clone())
        .context("cannot create the Kafka consumer")?;
    let producer = sink::producer(&config.kafka).context("cannot create the Kafka producer")?;
    let mut wanted: Vec<&str> = config.kafka.input_topics.iter().map(String::as_str).collect();
    wanted.push(&config.kafka.commands_topic);
    wanted.push(&config.kafka.tasks_topic);
    wanted.push(&config.kafka.dead_letter_topic);
    let missing = source::missing_topics(&consumer, &wanted, Duration::from_secs(30))
        .context("cannot read topic metadata from the brokers")?;
    if !missing.is_empty() {
        bail!("missing Kafka topics: {} (create them before starting)", missing.join(", "));
    }
    // Commands are input too: consumed with the events of the same partition number.
    let mut inputs: Vec<&str> = config.kafka.input_topics.iter().map(String::as_str).collect();
    inputs.push(&config.kafka.commands_topic);
    let counts = source::partition_counts(&consumer, &inputs, Duration::from_secs(30))
        .context("cannot read topic metadata from the brokers")?;
    if counts.iter().any(|(_, n)| *n != counts[0].1) {
        bail!(
            "input and commands topics must have the same number of partitions (each customer's state is \
             owned by one partition number): {}",
            counts.iter().map(|(t, n)| format!("{t}={n}")).collect::<Vec<_>>().join(", ")
        );
    }
    tokio::spawn(watch_rules(
        config.rules.dir.clone(),
        config.rules.reload_poll_ms,
        rules.clone(),
        metrics.clone(),
    ));
    let bus = CommandBus::Kafka { producer: producer.clone(), topic: config.kafka.commands_topic.clone() };
    let api_state = ApiState {
        store: store.clone(),
        bus: bus.clone(),
        rules: rules.clone(),
        metrics: metrics.clone(),
        provisioned: Arc::new(
            config.api.tokens.iter().filter_map(|t| api::auth::parse_provisioned(t).ok()).collect(),
        ),
        limiter: Arc::new(api::auth::FailureLimiter::new(config.api.auth_failures_per_minute)),
        command_wait: Duration::from_millis(config.api.command_wait_ms),
        group_id: config.kafka.group_id.clone(),
        local_engine: None,
    };
    let keys: Arc<Vec<crate::outreach::links::LinkKey>> = Arc::new(
        config
            .outreach
            .link_keys
            .iter()
            .filter_map(|k| crate::outreach::links::LinkKey::parse(k).ok())
            .collect(),
    );
    let pages = crate::outreach::pages::Pages {
        store: store.clone(),
        bus: bus.clone(),
        keys: keys.clone(),
        metrics: metrics.clone(),
    };
    let _ = api_router.set(api::router(health, api_state).merge(crate::outreach::pages::routes(pages)));
    if config.outreach.enabled {
        let current = rules.read().expect("rules lock poisoned").clone();
        let templates = crate::outreach::templates::Templates::load(
            &config.rules.dir,
            &crate::outreach::templates::needed(&current),
        )
        .map_err(|errors| {
            anyhow::anyhow!(
                "e-mail templates are invalid: {}",
                errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
            )
        })?;
        let sender = crate::outreach::sender::Sender::new(
            store.clone(),
            bus.clone(),
            Arc::new(templates),
            keys,
            config.outreach.clone(),
            metrics.clone(),
        )?;
        info!(relay = %config.outreach.smtp_host, "outreach: sending e-mails off the event path");
        tokio::spawn(sender.run());
    }
    tokio::spawn(tickers::run(store.clone(), bus, metrics.clone(), config.api.clone(), true));

    let pipeline = Pipeline {
        config: &config,
        engine,
        recovery: recovery.clone(),
        rules,
        store,
        producer,
        metrics: metrics.clone(),
    };
    pipeline.publish_outbox().await; // left over from a previous run
    consumer.subscribe(&inputs)?;
    // Ready once the group's first assignment is restored (see `Recovery::on_assigned`).
    info!(
        topics = ?config.kafka.input_topics,
        group = %config.kafka.group_id,
        checkpoint = config.state.checkpoint,
        "consuming"
    );

    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    tokio::spawn(shutdown_watchdog());
    let max = config.kafka.batch_size;
    let wait = Duration::from_millis(config.kafka.batch_wait_ms);
    let interval = Duration::from_millis(config.state.checkpoint_interval_ms);
    let mut last_checkpoint = Instant::now();
    let mut in_flight: Option<Checkpointing> = None;
    // Wake up at least this often without input, to checkpoint what the last batches changed.
    let idle = if interval.is_zero() { Duration::from_secs(1) } else { interval };
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            batch = source::next_batch(&consumer, max, wait, idle, |p| recovery.partitions().tag(p)) => match batch {
                Ok(batch) => {
                    if batch.is_empty() {
                        pipeline.check_store().await; // idle: readiness still reflects the store
                    } else {
                        pipeline.process(batch).instrument(info_span!("batch")).await;
                    }
                    if !recovery.enabled() {
                        store_offsets(&consumer, recovery.applied_offsets());
                        continue;
                    }
                    // One checkpoint in flight at a time, written in the background; its
                    // offsets are stored once it is durable.
                    if in_flight.as_ref().is_some_and(|c: &Checkpointing| c.is_finished()) {
                        let done = in_flight.take().expect("just checked").await;
                        store_offsets(&consumer, done.unwrap_or_default());
                    }
                    if in_flight.is_none() && last_checkpoint.elapsed() >= interval {
                        in_flight = Some(recovery.start_checkpoint());
                        last_checkpoint = Instant::now();
                    }
                }
                Err(e) => {
                    warn!(error = %e, "Kafka consumer error; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
        }
    }
    info!("shutting down: checkpointing state and committing offsets");
    ready.store(false, Ordering::Relaxed);
    metrics.ready.set(0);
    if let Some(checkpoint) = in_flight.take() {
        store_offsets(&consumer, checkpoint.await.unwrap_or_default());
    }
    store_offsets(&consumer, recovery.checkpoint().await);
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => {}
        // Nothing new since the last background commit.
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(e) => warn!(error = %e, "final commit failed; the successor re-reads from the last checkpoint"),
    }
    Ok(())
}

/// A checkpoint being written in the background: the offsets it makes durable.
type Checkpointing = tokio::task::JoinHandle<Vec<(String, i32, i64)>>;

/// Stores (topic, partition, next offset) for the background commit.
fn store_offsets(consumer: &EventConsumer, offsets: Vec<(String, i32, i64)>) {
    for (topic, partition, next) in offsets {
        if let Err(e) = consumer.store_offset(&topic, partition, next - 1) {
            // Revoked meanwhile: the new owner starts from its checkpoint.
            warn!(error = %e, topic, partition, "cannot store offset");
        }
    }
}

async fn connect_store(url: &str, metrics: &Metrics) -> TaskStore {
    let mut backoff = Backoff::new();
    loop {
        match TaskStore::connect(url).await {
            Ok(s) => return s,
            Err(e) => {
                metrics.store_errors.inc();
                warn!(error = %e, "task store unavailable; retrying");
                backoff.wait().await;
            }
        }
    }
}

/// Exponential back-off from 100 ms to 5 s.
pub(crate) struct Backoff(Duration);

impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff(Duration::from_millis(100))
    }

    pub(crate) async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
    }
}

struct Pipeline<'c> {
    config: &'c Config,
    engine: Arc<Engine>,
    recovery: Arc<Recovery>,
    rules: SharedRules,
    store: TaskStore,
    producer: FutureProducer,
    metrics: Arc<Metrics>,
}

impl Pipeline<'_> {
    /// Marks the service not ready while a dependency (store or broker) fails.
    fn degraded(&self) {
        self.recovery.set_ready(false);
    }

    /// Marks the service ready again (once its partitions are restored).
    fn recovered(&self) {
        self.recovery.set_ready(true);
    }

    /// Pings the store: not ready while it does not answer.
    async fn check_store(&self) {
        match self.store.ping().await {
            Ok(()) => self.recovered(),
            Err(e) => {
                self.metrics.store_errors.inc();
                warn!(error = %e, "task store unavailable");
                self.degraded();
            }
        }
    }

    /// One batch: decode and run the engine, then make what it caused durable (dead letters,
    /// tasks, tasks topic). Offsets are stored by the caller, up to the last checkpoint.
    async fn process(&self, batch: Vec<(OwnedMessage, u64)>) {
        let started = Instant::now();
        let Applied { changes, results, dead, broker_times } =
            info_span!("engine", messages = batch.len()).in_scope(|| self.apply(batch));
        self.metrics.batch_seconds.with_label_values(&["engine"]).observe(started.elapsed().as_secs_f64());
        self.handle_dead_letters(&dead).instrument(info_span!("dead_letters", count = dead.len())).await;
        // Most batches change no task: then there is nothing to write or publish (the outbox is
        // drained after every batch that wrote to it, and at start-up).
        if !changes.is_empty() || !results.is_empty() {
            let t = Instant::now();
            self.write_changes(&changes, &results)
                .instrument(info_span!("store", changes = changes.len()))
                .await;
            self.metrics.batch_seconds.with_label_values(&["store"]).observe(t.elapsed().as_secs_f64());
            let t = Instant::now();
            self.publish_outbox().instrument(info_span!("publish")).await;
            self.metrics.batch_seconds.with_label_values(&["publish"]).observe(t.elapsed().as_secs_f64());
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        for ts in broker_times {
            self.metrics.end_to_end_seconds.observe((now - ts).max(0) as f64 / 1000.0);
        }
        self.observe_state(&changes);
    }

    /// Decodes, validates and applies a batch to the engine (pure CPU work): the task changes,
    /// the dead letters and the broker timestamps of the applied messages.
    fn apply(&self, batch: Vec<(OwnedMessage, u64)>) -> Applied {
        let rules = self.rules.read().expect("rules lock poisoned").clone();
        let mut changes: Vec<TaskChange> = Vec::new();
        let mut results: Vec<CommandResult> = Vec::new();
        let mut dead: Vec<DeadLetter> = Vec::new();
        let mut broker_times: Vec<i64> = Vec::with_capacity(batch.len());
        let mut partitions = self.recovery.partitions();
        for (m, tag) in batch {
            let (topic, partition, offset) = (m.topic(), m.partition(), m.offset());
            match partitions.admit(topic, partition, offset, tag) {
                Admit::Apply => {}
                Admit::AlreadyApplied => {
                    self.metrics.messages_skipped.with_label_values(&["already_applied"]).inc();
                    continue;
                }
                Admit::NotOwned => {
                    self.metrics.messages_skipped.with_label_values(&["not_owned"]).inc();
                    continue;
                }
            }
            partitions.applied(topic, partition, offset);
            if let Some(ts) = m.timestamp().to_millis() {
                broker_times.push(ts);
            }
            if topic == self.config.kafka.commands_topic {
                self.apply_command(&m, partition, &mut partitions, &mut changes, &mut results, &mut dead);
                continue;
            }
            let event = match decode(m.payload().unwrap_or_default()) {
                Ok(e) => e,
                Err(e) => {
                    dead.push(DeadLetter { reason: e.reason_code(), detail: e.to_string(), message: m });
                    continue;
                }
            };
            match source::key_text(&m) {
                Some(key) if key != event.customer_id => {
                    let detail =
                        "message key differs from customer_id (events must be keyed by customer)".to_string();
                    dead.push(DeadLetter { reason: "key_mismatch", detail, message: m });
                    continue;
                }
                // Without a key the producer's partitioner scatters a customer's events over
                // partitions, and with them the customer's state (checkpoints are per partition).
                None if self.recovery.enabled() => {
                    let detail = "message has no key (events must be keyed by customer_id)".to_string();
                    dead.push(DeadLetter { reason: "missing_key", detail, message: m });
                    continue;
                }
                _ => {}
            }
            self.metrics.events_consumed.with_label_values(&[topic, event.kind().as_str()]).inc();
            let t = Instant::now();
            let out = self.engine.process_in(partition, &rules, &event);
            self.metrics.engine_seconds.observe(t.elapsed().as_secs_f64());
            if out.duplicate {
                self.metrics.duplicates.inc();
            } else {
                partitions.touched(partition, &event.customer_id);
            }
            for (p, customer) in &out.timer_touched {
                partitions.touched(*p, customer);
            }
            for hit in &out.hits {
                let rule = &rules.rules[hit.rule];
                let mode = if rule.mode == Mode::Shadow { "shadow" } else { "live" };
                self.metrics.signals.with_label_values(&[&rule.id, mode]).inc();
            }
            changes.extend(out.changes);
        }
        Applied { changes, results, dead, broker_times }
    }

    /// One message of the commands topic: decoded, checked against its key, applied by the
    /// engine (a bad one is dead-lettered like bad input).
    fn apply_command(
        &self,
        m: &OwnedMessage,
        partition: i32,
        partitions: &mut crate::partitions::Partitions,
        changes: &mut Vec<TaskChange>,
        results: &mut Vec<CommandResult>,
        dead: &mut Vec<DeadLetter>,
    ) {
        let command = match command::decode(m.payload().unwrap_or_default()) {
            Ok(c) => c,
            Err(e) => {
                dead.push(DeadLetter { reason: e.reason_code(), detail: e.to_string(), message: m.clone() });
                return;
            }
        };
        if source::key_text(m) != Some(command.customer_id.as_str()) {
            let detail =
                "command key differs from customer_id (commands must be keyed by customer)".to_string();
            dead.push(DeadLetter { reason: "key_mismatch", detail, message: m.clone() });
            return;
        }
        let out = self.engine.command(partition, &command);
        if !out.duplicate {
            partitions.touched(partition, &command.customer_id);
        }
        for r in &out.results {
            let result = match r.refusal {
                None => "applied",
                Some(command::Refusal::NotFound) => "not_found",
                Some(command::Refusal::Conflict) => "conflict",
                Some(command::Refusal::Invalid) => "invalid",
            };
            self.metrics.commands.with_label_values(&[command.action.name(), result]).inc();
        }
        changes.extend(out.changes);
        results.extend(out.results);
    }

    async fn handle_dead_letters(&self, dead: &[DeadLetter]) {
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
        while let Err(e) =
            sink::publish_dead_letters(&self.producer, &self.config.kafka.dead_letter_topic, dead).await
        {
            self.metrics.publish_errors.inc();
            self.degraded();
            warn!(error = %e, "cannot publish dead letters; retrying");
            backoff.wait().await;
        }
        self.recovered();
        self.metrics.dead_letters.inc_by(dead.len() as u64);
    }

    async fn write_changes(&self, changes: &[TaskChange], results: &[CommandResult]) {
        let mut backoff = Backoff::new();
        while let Err(e) = self.store.write(changes, results).await {
            self.metrics.store_errors.inc();
            self.degraded();
            warn!(error = %e, "cannot write tasks; retrying (consumption paused)");
            backoff.wait().await;
        }
        self.recovered();
        for c in changes {
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

    async fn publish_outbox(&self) {
        let mut backoff = Backoff::new();
        loop {
            let rows = match self.store.pending_outbox(5_000).await {
                Ok(rows) => rows,
                Err(e) => {
                    self.metrics.store_errors.inc();
                    self.degraded();
                    warn!(error = %e, "cannot read the outbox; retrying");
                    backoff.wait().await;
                    continue;
                }
            };
            if rows.is_empty() {
                self.recovered();
                return;
            }
            if let Err(e) = sink::publish_tasks(&self.producer, &self.config.kafka.tasks_topic, &rows).await {
                self.metrics.publish_errors.inc();
                self.degraded();
                warn!(error = %e, "cannot publish tasks; retrying");
                backoff.wait().await;
                continue;
            }
            if let Err(e) = self.store.mark_published(&rows).await {
                self.metrics.store_errors.inc();
                warn!(error = %e, "cannot clear the outbox; retrying (tasks may be published twice)");
                backoff.wait().await;
            }
        }
    }

    fn observe_state(&self, changes: &[TaskChange]) {
        let customers = self.engine.state.len();
        self.metrics.customers_tracked.set(customers as i64);
        // In memory: customers times the bytes per customer that `cargo bench --bench
        // state_size` measured (README, Performance). Stored: measured at each checkpoint.
        self.metrics
            .state_bytes
            .with_label_values(&["memory"])
            .set((customers * STATE_BYTES_PER_CUSTOMER) as i64);
        let stored = customers as u64 * self.recovery.stored_bytes_per_customer();
        self.metrics.state_bytes.with_label_values(&["stored"]).set(stored as i64);
        for c in changes {
            let gauge = self.metrics.tasks_open.with_label_values(&[c.task.queue.as_str()]);
            match c.kind {
                ChangeKind::Opened | ChangeKind::Reopened => gauge.inc(),
                ChangeKind::Resolved => gauge.dec(),
                ChangeKind::Enriched | ChangeKind::Updated => {}
            }
        }
    }
}

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

/// Bytes of memory per customer, as measured by the state-size bench (README, Performance).
const STATE_BYTES_PER_CUSTOMER: usize = 2_300;

/// Longest time from SIGTERM to exit. A batch or checkpoint still waiting for a failed store
/// or broker then is abandoned: nothing past the last checkpoint was committed, so the next
/// owner re-reads it (at-least-once holds). Kubernetes' grace period must exceed it.
pub const SHUTDOWN_BUDGET: Duration = Duration::from_secs(30);

/// Exits the process if a graceful shutdown overruns [`SHUTDOWN_BUDGET`].
async fn shutdown_watchdog() {
    shutdown_signal().await;
    tokio::time::sleep(SHUTDOWN_BUDGET).await;
    error!(budget = ?SHUTDOWN_BUDGET, "shutdown overran its budget (a dependency is down); exiting without a final checkpoint");
    std::process::exit(3);
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}

/// Reloads rules when the directory changes (polled) or on SIGHUP. An invalid set is refused
/// with every `file:line: reason`, and the running set stays.
async fn watch_rules(dir: PathBuf, poll_ms: u64, rules: SharedRules, metrics: Arc<Metrics>) {
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
                *rules.write().expect("rules lock poisoned") = Arc::new(set);
            }
            Err(errors) => {
                metrics.rule_reloads.with_label_values(&["refused"]).inc();
                for e in &errors.0 {
                    error!(error = %e, "rule reload refused; the running rules stay in force");
                }
            }
        }
    }
}

/// Exports at zero the series that depend on the rule set (firings per rule and mode, outcomes
/// per rule, e-mails per template and result), so they are scraped before anything happens.
fn export_rule_labels(metrics: &Metrics, rules: &RuleSet) {
    let templates = crate::outreach::templates::needed(rules);
    metrics.export_rule_labels(
        rules.rules.iter().map(|r| (r.id.as_str(), if r.mode == Mode::Shadow { "shadow" } else { "live" })),
        rules.rules.iter().flat_map(|r| {
            crate::task::Outcome::ALL
                .into_iter()
                .filter(|o| o.fits(r.queue))
                .map(|o| (r.id.as_str(), o.as_str()))
        }),
        templates.iter().map(String::as_str),
    );
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
