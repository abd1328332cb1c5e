//! `callahead serve`: the real-time service. Kafka in, tasks out (store, tasks topic), dead
//! letters for bad input, the agents' API, metrics and health over HTTP, rules reloaded without
//! a restart. This file wires the parts together; each part has its own file:
//!
//! - `pipeline.rs`: the event path as three concurrent stages (fetch, engine, durable), the
//!   checkpoints' place in it and the rebalance hooks;
//! - `workers.rs`: the engine workers, one thread per core, a partition always on the same one;
//! - `relay.rs`: the outbox relay that publishes task versions to the tasks topic, off the event
//!   path;
//! - `tickers.rs`: overdue tasks and idle claims become commands;
//! - `reload.rs`: rules reloaded when their files change;
//! - `shutdown.rs`: signals and the shutdown budget.
//!
//! Agents' actions arrive on the commands topic, co-partitioned with the input topics and
//! consumed by the same pipeline: a command is applied by the worker that owns its customer's
//! partition, in order with the customer's events, and its result is written with the batch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tokio::sync::Notify;
use tracing::{error, info, warn};

use crate::api::{self, ApiState, Health};
use crate::backoff::Backoff;
use crate::bus::CommandBus;
use crate::config::Config;
use crate::engine::{Engine, EngineConfig};
use crate::ingest::kafka as source;
use crate::metrics::Metrics;
use crate::recovery::Recovery;
use crate::rules::{RuleSet, SharedRules};
use crate::sink::kafka as sink;
use crate::store::TaskStore;

mod pipeline;
mod relay;
mod reload;
mod shutdown;
pub(crate) mod tickers;
mod workers;

pub use shutdown::SHUTDOWN_BUDGET;

/// Runs the service until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> Result<()> {
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    let rules = RuleSet::load_dir(&config.rules.dir)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("rules in {} are invalid; not starting", config.rules.dir.display()))?;
    metrics.rules_loaded.set(rules.rules.len() as i64);
    reload::export_rule_labels(&metrics, &rules);
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
    let hsts = config.http.hsts;
    tokio::spawn(async move {
        if let Err(e) = api::serve_http(listener, app, hsts).await {
            error!(error = %e, "HTTP server stopped");
        }
    });
    // The customers' pages on a listener of their own, when configured (bound now: a port
    // that cannot be had stops the start, as for the internal one).
    let public = if config.http.public_listen.is_empty() {
        None
    } else {
        let listener =
            tokio::net::TcpListener::bind(&config.http.public_listen).await.with_context(|| {
                format!("cannot listen on {} (http.public_listen)", config.http.public_listen)
            })?;
        info!(address = %config.http.public_listen, "serving the customers' answer pages /r/, /u/");
        Some(listener)
    };

    let store = connect_store(&config.store.url, &metrics).await;
    let engine = Arc::new(Engine::new(EngineConfig {
        allowed_lateness: config.engine.allowed_lateness.0,
        expire_after: config.state.expire_after.0,
    }));
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
    let hooks =
        Arc::new(pipeline::Hooks { recovery: recovery.clone(), flight: Arc::new(pipeline::Flight::new()) });
    let consumer = source::consumer(&config.kafka, metrics.clone(), hooks.clone())
        .context("cannot create the Kafka consumer")?;
    let producer = sink::producer(&config.kafka).context("cannot create the Kafka producer")?;
    let mut wanted: Vec<&str> = config.kafka.input_topics.iter().map(String::as_str).collect();
    wanted.push(&config.kafka.commands_topic);
    wanted.push(&config.kafka.tasks_topic);
    wanted.push(&config.kafka.dead_letter_topic);
    wanted.push(&config.kafka.actions_topic);
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
    tokio::spawn(reload::watch(
        config.rules.dir.clone(),
        config.rules.reload_poll_ms,
        rules.clone(),
        metrics.clone(),
        store.clone(),
    ));
    let mut command_keys = config.kafka.command_keys();
    if command_keys.is_empty() {
        warn!(
            "kafka.command_keys is empty: commands are signed with a key of this process only, so other \
             instances (and this one after a restart) refuse them; set the same keys on every instance"
        );
        command_keys.push(crate::outreach::links::LinkKey::random("process"));
    }
    let command_keys = Arc::new(command_keys);
    let bus = CommandBus::Kafka {
        producer: producer.clone(),
        topic: config.kafka.commands_topic.clone(),
        key: command_keys[0].clone(),
    };
    let api_state = ApiState {
        store: store.clone(),
        bus: bus.clone(),
        rules: rules.clone(),
        metrics: metrics.clone(),
        provisioned: Arc::new(
            config.api.tokens.iter().filter_map(|t| api::auth::parse_provisioned(t).ok()).collect(),
        ),
        limiter: Arc::new(
            api::auth::FailureLimiter::new(config.api.auth_failures_per_minute)
                .trusting(config.http.trusted_proxies()),
        ),
        command_wait: Duration::from_millis(config.api.command_wait_ms),
        group_id: config.kafka.group_id.clone(),
        local_engine: None,
        secure_cookies: config.http.hsts,
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
    match public {
        Some(listener) => {
            // Public: the pages and nothing else (no API, console, metrics or docs).
            let router = crate::outreach::pages::routes(pages)
                .fallback(|| async { api::problem::Problem::not_found("no such page") });
            tokio::spawn(async move {
                if let Err(e) = api::serve_http(listener, router, hsts).await {
                    error!(error = %e, "public HTTP server stopped");
                }
            });
            let _ = api_router.set(api::router(health, api_state));
        }
        None => {
            let _ =
                api_router.set(api::router(health, api_state).merge(crate::outreach::pages::routes(pages)));
        }
    }
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
    tokio::spawn(tickers::purge(store.clone(), metrics.clone(), config.retention.clone()));
    tokio::spawn(tickers::seal_audit(store.clone()));

    let consumer = Arc::new(consumer);
    let flight = hooks.flight.clone();
    let wake = Arc::new(Notify::new());
    let relay = relay::Relay {
        store: store.clone(),
        producer: producer.clone(),
        topic: config.kafka.tasks_topic.clone(),
        actions_topic: config.kafka.actions_topic.clone(),
        metrics: metrics.clone(),
        recovery: recovery.clone(),
        wake: wake.clone(),
    };
    relay.publish_pending().await; // left over from a previous run
    tokio::spawn(relay.run());
    let workers = workers::Workers::start(
        config.engine.worker_count(),
        Arc::new(workers::Context {
            engine: engine.clone(),
            commands_topic: config.kafka.commands_topic.clone(),
            command_keys: command_keys.clone(),
            require_key: recovery.enabled(),
        }),
    )
    .context("cannot start the engine workers")?;
    let durable = pipeline::Durable {
        engine,
        recovery: recovery.clone(),
        store: store.clone(),
        producer,
        dead_letter_topic: config.kafka.dead_letter_topic.clone(),
        metrics: metrics.clone(),
        relay: wake,
        flight: flight.clone(),
        consumer: consumer.clone(),
    };
    let fetch = pipeline::Fetch::start(durable, recovery.clone(), rules, workers, flight);
    consumer.subscribe(&inputs)?;
    // Ready once the group's first assignment is restored (see `Recovery::on_assigned`).
    info!(
        topics = ?config.kafka.input_topics,
        group = %config.kafka.group_id,
        checkpoint = config.state.checkpoint,
        workers = config.engine.worker_count(),
        "consuming"
    );
    tokio::spawn(shutdown::watchdog());
    let pace = pipeline::Pace {
        max: config.kafka.batch_size,
        wait: Duration::from_millis(config.kafka.batch_wait_ms),
        checkpoint_interval: Duration::from_millis(config.state.checkpoint_interval_ms),
    };
    pipeline::run(fetch, consumer.clone(), store, pace, shutdown::signal()).await;
    info!("shut down: state checkpointed; committing offsets");
    ready.store(false, Ordering::Relaxed);
    metrics.ready.set(0);
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => {}
        // Nothing new since the last background commit.
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(e) => warn!(error = %e, "final commit failed; the successor re-reads from the last checkpoint"),
    }
    Ok(())
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
