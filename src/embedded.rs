//! The embedded mode: after `callahead demo` has run its stream, the same engine serves the
//! agents' API on localhost with the embedded store (SQLite) and no broker. Commands go through
//! an in-process queue to one loop that applies them to the engine and writes what they caused
//! (task versions, audit records, results) to the store, exactly as `serve` does with the
//! commands topic. Idle claims expire as in `serve`; SLA escalation does not run here: the
//! demo's events are historical, so every task would be overdue at once. E-mails to customers
//! go to a folder of `.eml` files (or an SMTP relay), with the same sender and answer pages as
//! `serve`, signed with a key made for the run.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::mpsc;
use tracing::warn;

use crate::api::{self, auth, ApiState, Health};
use crate::bus::CommandBus;
use crate::command::{Command, Role};
use crate::engine::Engine;
use crate::metrics::Metrics;
use crate::outreach::links::LinkKey;
use crate::outreach::pages::Pages;
use crate::outreach::sender::Sender;
use crate::rules::RuleSet;
use crate::store::TaskStore;
use crate::task::{ChangeKind, Task, TaskChange};

/// A token issued for the demo, shown once.
pub struct IssuedToken {
    pub name: String,
    pub role: Role,
    pub token: String,
}

/// The running embedded API.
pub struct Embedded {
    pub address: SocketAddr,
    pub tokens: Vec<IssuedToken>,
}

/// Settings of the embedded mode.
#[derive(Debug, Clone)]
pub struct Options {
    /// A claim left idle this long goes back to the queue, milliseconds.
    pub claim_idle_ms: u64,
    /// E-mail to customers (files in a folder or an SMTP relay), with the rules' templates;
    /// `public_url` empty: the served address. `None`: no e-mail.
    pub outreach: Option<(crate::config::OutreachConfig, Arc<crate::outreach::templates::Templates>)>,
}

impl Default for Options {
    fn default() -> Self {
        Options { claim_idle_ms: crate::config::ApiConfig::default().claim_idle_ms, outreach: None }
    }
}

/// [`serve_with`] with the default options.
pub async fn serve(
    engine: Arc<Engine>,
    rules: RuleSet,
    tasks: &[Task],
    store_url: &str,
    listen: &str,
    ready: impl FnOnce(&Embedded),
) -> Result<()> {
    serve_with(engine, rules, tasks, store_url, listen, Options::default(), ready).await
}

/// Stores the demo's tasks, issues a token per role, and serves the API on `listen` until the
/// returned future is dropped or the process ends. `ready` is called once it answers.
pub async fn serve_with(
    engine: Arc<Engine>,
    rules: RuleSet,
    tasks: &[Task],
    store_url: &str,
    listen: &str,
    options: Options,
    ready: impl FnOnce(&Embedded),
) -> Result<()> {
    let store = TaskStore::connect(store_url).await.context("cannot open the demo's task store")?;
    // Each task as the engine opened it, with the e-mails its rules ask for.
    let changes: Vec<TaskChange> = tasks
        .iter()
        .map(|t| {
            let mut change = TaskChange::by_engine(ChangeKind::Opened, t.clone(), None);
            for rule in rules.rules.iter().filter(|r| t.rules.contains(&r.id)) {
                if let Some(o) = rule.outreach.as_ref().filter(|o| !change.outreach.contains(o)) {
                    change.outreach.push(o.clone());
                }
            }
            change
        })
        .collect();
    for chunk in changes.chunks(500) {
        store.write(chunk, &[]).await?;
    }
    let now = api::now().to_string();
    let mut issued = Vec::new();
    for (name, role) in [
        ("fraud-agent", Role::FraudAgent),
        ("fraud-agent-2", Role::FraudAgent),
        ("care-agent", Role::CareAgent),
        ("supervisor", Role::Supervisor),
        ("admin", Role::Admin),
        ("auditor", Role::Auditor),
    ] {
        let (token, hash) = auth::new_token();
        store.add_token(&hash, name, role.as_str(), &now, None).await?;
        issued.push(IssuedToken { name: name.to_string(), role, token });
    }
    let metrics = Arc::new(Metrics::new());
    metrics.ready.set(1);
    let (tx, rx) = mpsc::channel::<Command>(1_024);
    tokio::spawn(apply_commands(engine.clone(), store.clone(), rx));
    let bus = CommandBus::Local(tx);
    let tick = crate::config::ApiConfig {
        claim_idle_ms: options.claim_idle_ms,
        sla_tick_ms: (options.claim_idle_ms / 4).clamp(200, 30_000),
        ..crate::config::ApiConfig::default()
    };
    tokio::spawn(crate::serve::tickers::run(store.clone(), bus.clone(), metrics.clone(), tick, false));
    tokio::spawn(crate::serve::tickers::seal_audit(store.clone()));
    let state = ApiState {
        store,
        bus,
        rules: Arc::new(RwLock::new(Arc::new(rules))),
        metrics: metrics.clone(),
        provisioned: Arc::new(Vec::new()),
        limiter: Arc::new(auth::FailureLimiter::new(10)),
        command_wait: Duration::from_secs(5),
        group_id: "demo".to_string(),
        local_engine: Some(engine),
        secure_cookies: false,
    };
    let listener =
        tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    let mut keys = Vec::new();
    if let Some((mut config, templates)) = options.outreach.clone() {
        keys = config.link_keys.iter().filter_map(|k| LinkKey::parse(k).ok()).collect();
        if keys.is_empty() {
            keys.push(LinkKey::random("demo"));
        }
        if config.public_url.is_empty() {
            config.public_url = format!("http://{address}");
        }
        let sender = Sender::new(
            state.store.clone(),
            state.bus.clone(),
            templates,
            Arc::new(keys.clone()),
            config,
            metrics.clone(),
        )?;
        tokio::spawn(sender.run());
    }
    let pages = Pages {
        store: state.store.clone(),
        bus: state.bus.clone(),
        keys: Arc::new(keys),
        metrics: metrics.clone(),
    };
    let health = Health { metrics, ready: Arc::new(AtomicBool::new(true)) };
    ready(&Embedded { address, tokens: issued });
    api::serve_http(listener, api::router(health, state).merge(crate::outreach::pages::routes(pages)), false)
        .await?;
    Ok(())
}

/// The embedded command loop: one command at a time, applied to the engine and made durable
/// before the next (the API waits for the result in the store).
async fn apply_commands(engine: Arc<Engine>, store: TaskStore, mut rx: mpsc::Receiver<Command>) {
    while let Some(command) = rx.recv().await {
        let out = engine.command(0, &command);
        let mut pause = Duration::from_millis(100);
        while let Err(e) = store.write(&out.changes, &out.results).await {
            warn!(error = %e, "cannot write a command's result; retrying");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }
}
