//! The `callahead` command line: parse arguments, build the parts, run. No logic lives here.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use callahead::backtest::PackRun;
use callahead::demo;
use callahead::ingest::generator::{generate, StreamSpec};
use callahead::ingest::jsonl::for_each_line;
use callahead::replay::Replay;
use callahead::rules::RuleSet;

/// mimalloc instead of the system allocator: the state is millions of small allocations made
/// and freed from several threads (restore, engine workers); see Cargo.toml for the figure.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Real-time proactive alerting: reach the customer before they reach you.
#[derive(Parser)]
#[command(name = "callahead", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the embedded demo: a generated stream through the engine, tasks printed.
    Demo {
        /// Rule directory.
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        /// Ordinary customers to generate.
        #[arg(long, default_value_t = 2_000)]
        customers: usize,
        /// Days of activity to generate.
        #[arg(long, default_value_t = 90)]
        days: u32,
        /// Random seed (the same seed gives the same stream).
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Also write the generated stream as JSON lines (an input for `replay`).
        #[arg(long)]
        emit_events: Option<PathBuf>,
        /// Run this JSON-lines file of events instead of the generated stream (no planted
        /// scenarios are checked), then serve it like the demo.
        #[arg(long, conflicts_with = "emit_events")]
        input: Option<PathBuf>,
        /// Print only the first N tasks in full.
        #[arg(long, default_value_t = 25)]
        show: usize,
        /// Then serve the agents' API on this address, with a token per role, until Ctrl-C.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// The demo's task store (default: a new SQLite file in a temporary directory).
        #[arg(long)]
        store: Option<String>,
        /// Exit after the run instead of serving the API.
        #[arg(long)]
        no_serve: bool,
        /// A claim left idle this long (seconds) goes back to the queue.
        #[arg(long, default_value_t = 1_800)]
        claim_idle_secs: u64,
        /// Write e-mails to customers as .eml files into this folder (default: a `mail`
        /// folder beside the demo's store).
        #[arg(long)]
        mail_dir: Option<PathBuf>,
        /// Send e-mails to customers to this SMTP server (HOST:PORT, plain; a local sink)
        /// instead of writing files.
        #[arg(long)]
        smtp: Option<String>,
        /// Sign e-mails with DKIM: an RSA private key (PKCS#1 PEM), selector `demo`, domain
        /// `callahead.local`.
        #[arg(long)]
        dkim_key: Option<PathBuf>,
    },
    /// Run a JSON-lines file of events through the rules; write every task (final state) as
    /// JSON lines, and a summary on stderr.
    Replay {
        /// Rule directory.
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        /// JSON-lines file of events, in the order to process them.
        #[arg(long)]
        input: PathBuf,
        /// Where to write tasks (default: stdout).
        #[arg(long)]
        output: Option<PathBuf>,
        /// How late an event may arrive and still be compared with its neighbours in event time
        /// (a span such as `10m` or `6h`; `engine.allowed_lateness` of the service).
        #[arg(long, default_value = "10m", value_parser = parse_span)]
        allowed_lateness: i64,
    },
    /// Replay a JSON-lines file through a candidate rule pack beside the current one and print,
    /// per rule, what would change: tasks, customers paged, overlap, new/gone/changed priority,
    /// and precision from past outcomes in a task store.
    Backtest {
        /// The candidate rule directory.
        #[arg(long)]
        rules: PathBuf,
        /// The current rule directory (the one the service runs).
        #[arg(long, default_value = "rules")]
        current: PathBuf,
        /// JSON-lines file of events, in the order to process them.
        #[arg(long)]
        input: PathBuf,
        /// A task store (sqlite:… or postgres://…) whose resolved tasks give each rule's precision.
        #[arg(long)]
        store: Option<String>,
        /// Print one JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run the real-time service: Kafka in, tasks to the store and the tasks topic, metrics on
    /// HTTP. Configuration: a TOML file and/or CALLAHEAD_* environment variables.
    Serve {
        /// Configuration file (see config/callahead.example.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Log JSON lines instead of human-readable text (overrides log.format).
        #[arg(long)]
        json_logs: bool,
    },
    /// Validate rule files.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Inspect or reset the checkpointed customer state of the configured consumer group.
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
    /// Create or revoke API tokens in the configured task store.
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// The audit trail's hash chain: check that no sealed row was changed, removed or inserted.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Personal data: erase a customer, or export what is stored about them (docs/privacy.md).
    Customers {
        #[command(subcommand)]
        command: CustomersCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the chain over every sealed row; exit 1 at the first break, naming the row.
    Verify {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum CustomersCommand {
    /// Erase a customer: an erasure command on the commands topic, applied by the instance that
    /// owns the customer in order with their events; waits for it to be applied.
    Erase {
        /// The customer's id.
        id: String,
        /// Who asks (recorded in the audit).
        #[arg(long, default_value = "cli")]
        by: String,
        #[arg(long)]
        config: Option<PathBuf>,
        /// How long to wait for the service to apply it, seconds.
        #[arg(long, default_value_t = 60)]
        wait: u64,
    },
    /// Print everything the task store holds about a customer, as JSON (a subject-access report).
    Export {
        id: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TokensCommand {
    /// Create a token and print it once (only its SHA-256 is stored).
    Create {
        /// fraud_agent, care_agent, supervisor, admin or auditor.
        #[arg(long)]
        role: String,
        /// Who holds it (shown in the audit trail as the actor).
        #[arg(long)]
        name: String,
        /// How long it works (`90d`, `12h`; `never` for none).
        #[arg(long, default_value = "90d")]
        expires_in: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Revoke every token of a name.
    Revoke {
        #[arg(long)]
        name: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum StateCommand {
    /// Customers and bytes stored per partition, and the offsets each checkpoint covers.
    Show {
        /// Configuration file (the store and the group come from it).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Delete every checkpoint of the group: instances then start every customer from empty.
    /// Stop all instances first (docs/operating.md says how to reset safely).
    Reset {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Confirm: without it nothing is deleted.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Check every rule file in DIR; print each error as `file:line: reason`.
    Check {
        /// Rule directory.
        #[arg(default_value = "rules")]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = match &cli.command {
        Command::Serve { json_logs, config } => *json_logs || log_format_is_json(config.as_deref()),
        _ => false,
    };
    let logs = tracing_subscriber::fmt().with_writer(std::io::stderr).with_target(false);
    if json {
        logs.json().init();
    } else {
        logs.init();
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn state_command(command: StateCommand, config: callahead::config::Config) -> Result<ExitCode> {
    let store = callahead::store::TaskStore::connect(&config.store.url).await?;
    let group = &config.kafka.group_id;
    match command {
        StateCommand::Show { .. } => {
            let sizes = store.state_sizes(group).await?;
            println!("consumer group `{group}` in {}", callahead::store::redact(&config.store.url));
            let (mut customers, mut bytes) = (0, 0);
            for (partition, n, b) in &sizes {
                let offsets = store.checkpoint_offsets(group, *partition).await?;
                println!("  partition {partition:>4}: {n:>10} customers {b:>14} bytes  offsets {offsets:?}");
                customers += n;
                bytes += b;
            }
            let per = bytes.checked_div(customers).unwrap_or(0);
            println!("  total: {customers} customers, {bytes} bytes ({per} bytes per customer as stored)");
            Ok(ExitCode::SUCCESS)
        }
        StateCommand::Reset { yes, .. } => {
            if !yes {
                eprintln!("this deletes every checkpoint of consumer group `{group}`; run again with --yes");
                return Ok(ExitCode::FAILURE);
            }
            let removed = store.reset_state(group).await?;
            println!("deleted the state of {removed} customers of consumer group `{group}`");
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn tokens_command(command: TokensCommand, config: callahead::config::Config) -> Result<ExitCode> {
    use callahead::command::Role;
    let store = callahead::store::TaskStore::connect(&config.store.url).await?;
    match command {
        TokensCommand::Create { role, name, expires_in, .. } => {
            let expires_ms = match expires_in.as_str() {
                "never" => None,
                text => {
                    match callahead::time::Span::parse(text) {
                        Ok(span) if span.0 > 0 => Some(callahead::api::now().0 + span.0),
                        _ => {
                            eprintln!("error: --expires-in `{text}` is not a duration such as 90d or 12h, or `never`");
                            return Ok(ExitCode::from(2));
                        }
                    }
                }
            };
            let Some(role) = Role::parse(&role).filter(|r| Role::TOKEN_ROLES.contains(r)) else {
                eprintln!(
                    "error: `{role}` is not a role: fraud_agent, care_agent, supervisor, admin or auditor"
                );
                return Ok(ExitCode::from(2));
            };
            if name.trim().is_empty() {
                eprintln!("error: --name must not be empty");
                return Ok(ExitCode::from(2));
            }
            let (token, hash) = callahead::api::auth::new_token();
            let now = callahead::api::now().to_string();
            store.add_token(&hash, &name, role.as_str(), &now, expires_ms).await?;
            store
                .audit_access(
                    "token_created",
                    &operator(),
                    "admin",
                    format!("token for {name} ({})", role.as_str()),
                )
                .await?;
            eprintln!("token for {name} ({}); shown once, store it now:", role.as_str());
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
        TokensCommand::Revoke { name, .. } => {
            let n = store.revoke_tokens(&name).await?;
            let sessions = store.end_sessions_of(&name).await?;
            println!("ended {sessions} console session(s) of {name}");
            store
                .audit_access("token_revoked", &operator(), "admin", format!("{n} token(s) of {name}"))
                .await?;
            println!("revoked {n} token(s) of {name}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Who runs an administrative command, for the audit: `cli:` and the operating-system user.
fn operator() -> String {
    format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()))
}

async fn customers_command(command: CustomersCommand, config: callahead::config::Config) -> Result<ExitCode> {
    let store = callahead::store::TaskStore::connect(&config.store.url).await?;
    match command {
        CustomersCommand::Erase { id, by, wait, .. } => {
            use callahead::command::{Action, Actor, Command, Role};
            let Some(key) = config.kafka.command_keys().into_iter().next() else {
                eprintln!(
                    "error: kafka.command_keys is empty: the service refuses unsigned commands (docs/agents-api.md)"
                );
                return Ok(ExitCode::from(2));
            };
            let producer = callahead::sink::kafka::producer(&config.kafka)?;
            let topic = config.kafka.commands_topic.clone();
            let bus = callahead::bus::CommandBus::Kafka { producer, topic, key };
            let command = Command {
                command_id: format!("erase_{}", callahead::outreach::links::nonce()),
                customer_id: id.clone(),
                task_id: "-".into(),
                at: callahead::api::now(),
                actor: Actor { name: by, role: Role::Admin },
                action: Action::EraseCustomer,
            };
            if let Err(e) = command.validate() {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(2));
            }
            bus.send(&command).await?;
            eprintln!(
                "erasure of {id} queued as {}; waiting for the service to apply it",
                command.command_id
            );
            match store
                .await_command_result(&command.command_id, std::time::Duration::from_secs(wait))
                .await?
            {
                Some(_) => {
                    println!("erased {id}");
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    eprintln!(
                        "not applied within {wait} s: is `callahead serve` running? The command stays on the \
                         commands topic and is applied when the owner of the customer's partition runs"
                    );
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        CustomersCommand::Export { id, .. } => match store.export_customer(&id).await? {
            Some(report) => {
                println!("{}", serde_json::to_string_pretty(&report)?);
                Ok(ExitCode::SUCCESS)
            }
            None => {
                eprintln!("nothing is stored about customer {id}");
                Ok(ExitCode::FAILURE)
            }
        },
    }
}

/// Peeks at `log.format` before logging starts (the full configuration is validated later).
fn log_format_is_json(path: Option<&Path>) -> bool {
    let env: Vec<(String, String)> = std::env::vars().collect();
    callahead::config::Config::load(path, &env).is_ok_and(|c| c.log.format == "json")
}

fn load_rules(dir: &Path) -> Result<Option<RuleSet>> {
    match RuleSet::load_dir(dir) {
        Ok(set) => {
            // The e-mail templates the rules name are part of the rule set.
            if let Err(errors) = callahead::outreach::templates::Templates::load(
                dir,
                &callahead::outreach::templates::needed(&set),
            ) {
                for e in &errors {
                    eprintln!("{e}");
                }
                eprintln!("{} error(s) in {}", errors.len(), dir.join("outreach").display());
                return Ok(None);
            }
            Ok(Some(set))
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{} error(s) in {}", errors.0.len(), dir.display());
            Ok(None)
        }
    }
}

/// Counts the bytes read from a file (for the progress line).
struct CountingReader<R> {
    inner: R,
    read: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: std::io::Read> std::io::Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

/// A progress line on stderr for long inputs: lines/s and the share of the file's bytes read.
/// Shown when stderr is a terminal (redrawn in place) or, in a log, once the input passes
/// 100,000 lines (a line every 10 s). The clock is read once per 4,096 lines.
struct Progress {
    size: u64,
    read: std::rc::Rc<std::cell::Cell<u64>>,
    started: Instant,
    last: Instant,
    terminal: bool,
    shown: bool,
}

impl Progress {
    fn new(size: u64) -> Progress {
        use std::io::IsTerminal;
        let now = Instant::now();
        Progress {
            size,
            read: Default::default(),
            started: now,
            last: now,
            terminal: std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    fn line(&mut self, n: u64) {
        if n % 4_096 != 0 || !(self.terminal || n > 100_000) {
            return;
        }
        let every = if self.terminal { 0.25 } else { 10.0 };
        if self.last.elapsed().as_secs_f64() < every {
            return;
        }
        self.last = Instant::now();
        let rate = n as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        let percent = 100.0 * self.read.get() as f64 / self.size.max(1) as f64;
        let end = if self.terminal { "\r" } else { "\n" };
        eprint!("backtest: {n} lines, {rate:.0} lines/s, {percent:.0}% of the input{end}");
        self.shown = true;
    }

    fn done(&self) {
        if self.shown && self.terminal {
            eprint!("\r{}\r", " ".repeat(72));
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve { config, .. } => {
            let env: Vec<(String, String)> = std::env::vars().collect();
            let config = callahead::config::Config::load(config.as_deref(), &env)?;
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(callahead::serve::serve(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Tokens { command } => {
            let path = match &command {
                TokensCommand::Create { config, .. } | TokensCommand::Revoke { config, .. } => config.clone(),
            };
            let env: Vec<(String, String)> = std::env::vars().collect();
            let config = callahead::config::Config::load(path.as_deref(), &env)?;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(tokens_command(command, config))
        }
        Command::Audit { command: AuditCommand::Verify { config } } => {
            let env: Vec<(String, String)> = std::env::vars().collect();
            let config = callahead::config::Config::load(config.as_deref(), &env)?;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let store = callahead::store::TaskStore::connect(&config.store.url).await?;
                let r = store.verify_audit().await?;
                let first = r.first_seq.map_or("none".to_string(), |s| s.to_string());
                println!(
                    "sealed rows checked: {}; not sealed yet: {}; erased contents: {}; first row: {first}",
                    r.sealed, r.unsealed, r.erased
                );
                match r.broken {
                    None => {
                        println!("the audit chain is whole");
                        Ok(ExitCode::SUCCESS)
                    }
                    Some((seq, task, version, why)) => {
                        println!("BROKEN at row {seq} (task {task}, version {version}): {why}");
                        Ok(ExitCode::FAILURE)
                    }
                }
            })
        }
        Command::Customers { command } => {
            let path = match &command {
                CustomersCommand::Erase { config, .. } | CustomersCommand::Export { config, .. } => {
                    config.clone()
                }
            };
            let env: Vec<(String, String)> = std::env::vars().collect();
            let config = callahead::config::Config::load(path.as_deref(), &env)?;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(customers_command(command, config))
        }
        Command::State { command } => {
            let path = match &command {
                StateCommand::Show { config } | StateCommand::Reset { config, .. } => config.clone(),
            };
            let env: Vec<(String, String)> = std::env::vars().collect();
            let config = callahead::config::Config::load(path.as_deref(), &env)?;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(state_command(command, config))
        }
        Command::Rules { command: RulesCommand::Check { dir } } => {
            let Some(set) = load_rules(&dir)? else { return Ok(ExitCode::FAILURE) };
            let shadow = set.rules.iter().filter(|r| r.mode == callahead::rules::Mode::Shadow).count();
            let procedures = match set.playbook.categories().count() {
                0 if set.playbook.is_empty() => String::new(),
                n => format!(", {n} complaint procedures and the default"),
            };
            println!(
                "{}: {} rules OK ({} live, {} shadow){procedures}",
                dir.display(),
                set.rules.len(),
                set.rules.len() - shadow,
                shadow
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay { rules, input, output, allowed_lateness } => {
            let Some(set) = load_rules(&rules)? else { return Ok(ExitCode::FAILURE) };
            let file =
                File::open(&input).with_context(|| format!("cannot open input {}", input.display()))?;
            let started = Instant::now();
            let config = callahead::engine::EngineConfig { allowed_lateness, ..Default::default() };
            let mut replay = Replay::with_config(&set, config);
            for_each_line(BufReader::with_capacity(1 << 20, file), |n, line| replay.feed(n, line))
                .with_context(|| format!("cannot read {}", input.display()))?;
            let elapsed = started.elapsed();
            let (tasks, mut summary) = replay.into_tasks();
            summary.elapsed = elapsed;
            let sink: Box<dyn Write> = match &output {
                Some(path) => {
                    Box::new(File::create(path).with_context(|| format!("cannot create {}", path.display()))?)
                }
                None => Box::new(std::io::stdout().lock()),
            };
            let mut sink = BufWriter::new(sink);
            for task in &tasks {
                serde_json::to_writer(&mut sink, task)?;
                sink.write_all(b"\n")?;
            }
            sink.flush()?;
            eprint!("{}", summary.render(&tasks));
            Ok(ExitCode::SUCCESS)
        }
        Command::Backtest { rules, current, input, store, json } => {
            let Some(candidate_set) = load_rules(&rules)? else { return Ok(ExitCode::FAILURE) };
            let Some(current_set) = load_rules(&current)? else { return Ok(ExitCode::FAILURE) };
            let file =
                File::open(&input).with_context(|| format!("cannot open input {}", input.display()))?;
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            let mut progress = Progress::new(size);
            let reader = CountingReader { inner: file, read: progress.read.clone() };
            let (mut before, mut after) = (Replay::new(&current_set), Replay::new(&candidate_set));
            for_each_line(BufReader::with_capacity(1 << 16, reader), |n, line| {
                before.feed(n, line);
                after.feed(n, line);
                progress.line(n);
            })
            .with_context(|| format!("cannot read {}", input.display()))?;
            progress.done();
            let outcomes = match &store {
                None => None,
                Some(url) => {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                    let rows = runtime.block_on(async {
                        callahead::store::TaskStore::connect(url).await?.rule_outcomes().await
                    });
                    let rows = rows.with_context(|| {
                        format!("cannot read outcomes from {}", callahead::store::redact(url))
                    })?;
                    Some(
                        rows.into_iter()
                            .map(|r| (r.rule, r.outcomes.into_iter().collect()))
                            .collect::<callahead::backtest::PastOutcomes>(),
                    )
                }
            };
            let ((old_tasks, old_summary), (new_tasks, new_summary)) =
                (before.into_tasks(), after.into_tasks());
            let report = callahead::backtest::compare(
                &PackRun { rules: &current_set, tasks: &old_tasks, summary: &old_summary },
                &PackRun { rules: &candidate_set, tasks: &new_tasks, summary: &new_summary },
                outcomes.as_ref(),
            );
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &report)?;
                writeln!(out)?;
            } else {
                writeln!(
                    out,
                    "backtest: {} (candidate) against {} (current)",
                    rules.display(),
                    current.display()
                )?;
                write!(out, "{}", report.render_table())?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo {
            rules,
            customers,
            days,
            seed,
            emit_events,
            input,
            show,
            listen,
            store,
            no_serve,
            claim_idle_secs,
            mail_dir,
            smtp,
            dkim_key,
        } => {
            let Some(set) = load_rules(&rules)? else { return Ok(ExitCode::FAILURE) };
            let generated = match &input {
                Some(path) => {
                    println!("Reading events from {}…", path.display());
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    let lines = text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect();
                    callahead::ingest::generator::Generated { lines, expected: Vec::new() }
                }
                None => {
                    let spec = StreamSpec { customers, days, seed, ..StreamSpec::default() };
                    println!("Generating {days} days of events for {customers} ordinary customers plus planted scenarios (seed {seed})…");
                    generate(&spec)
                }
            };
            if let Some(path) = &emit_events {
                let mut out = BufWriter::new(
                    File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
                );
                for line in &generated.lines {
                    writeln!(out, "{line}")?;
                }
                out.flush()?;
                println!("Wrote {} events to {}", generated.lines.len(), path.display());
            }
            let started = Instant::now();
            let mut replay = Replay::new(&set);
            for (i, line) in generated.lines.iter().enumerate() {
                replay.feed(i as u64 + 1, line.as_bytes());
            }
            let elapsed = started.elapsed();
            let customers_tracked = replay.engine().state.len();
            let (engine, mut tasks, mut summary) = replay.into_parts();
            summary.elapsed = elapsed;
            tasks.sort_by(|a, b| a.priority.cmp(&b.priority).then(b.opened_at.cmp(&a.opened_at)));
            println!(
                "\n=== Tasks, most urgent first ({} in all; showing {}) ===\n",
                tasks.len(),
                show.min(tasks.len())
            );
            for task in tasks.iter().take(show) {
                println!("{}", demo::render_task(task));
            }
            println!("=== Planted scenarios ===");
            let (report, all_ok) = demo::check_scenarios(&generated, &tasks);
            print!("{report}");
            println!("\n=== Summary ({customers_tracked} customers tracked) ===");
            print!("{}", summary.render(&tasks));
            if !all_ok {
                return Ok(ExitCode::FAILURE);
            }
            if no_serve {
                return Ok(ExitCode::SUCCESS);
            }
            let scratch = std::env::temp_dir().join(format!("callahead-demo-{}", std::process::id()));
            std::fs::create_dir_all(&scratch)
                .with_context(|| format!("cannot create {}", scratch.display()))?;
            let store = match store {
                Some(url) => url,
                None => format!("sqlite://{}", scratch.join("tasks.db").display()),
            };
            let templates = callahead::outreach::templates::Templates::load(
                &rules,
                &callahead::outreach::templates::needed(&set),
            )
            .map_err(|e| {
                anyhow::anyhow!("{}", e.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))
            })?;
            let mut outreach = callahead::config::OutreachConfig {
                enabled: true,
                public_url: String::new(),
                bank_name: "callahead demo bank".into(),
                from: "callahead demo <alerts@callahead.local>".into(),
                poll_ms: 250,
                dkim_key_file: dkim_key.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                dkim_selector: "demo".into(),
                dkim_domain: "callahead.local".into(),
                ..Default::default()
            };
            match &smtp {
                Some(address) => {
                    let (host, port) = address.rsplit_once(':').context("--smtp is HOST:PORT")?;
                    outreach.smtp_host = host.to_string();
                    outreach.smtp_port = port.parse().context("--smtp is HOST:PORT")?;
                    outreach.smtp_tls = "none".into();
                }
                None => {
                    let dir = mail_dir.clone().unwrap_or_else(|| scratch.join("mail"));
                    outreach.mail_dir = dir.display().to_string();
                }
            }
            let mail_note = match &smtp {
                Some(a) => format!("to the SMTP server at {a}"),
                None => format!("as .eml files in {}", outreach.mail_dir),
            };
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(async {
                let options = callahead::embedded::Options {
                    claim_idle_ms: claim_idle_secs.max(1) * 1_000,
                    outreach: Some((outreach, std::sync::Arc::new(templates))),
                };
                let serving = callahead::embedded::serve_with(
                    std::sync::Arc::new(engine),
                    set,
                    &tasks,
                    &store,
                    &listen,
                    options,
                    |e| demo::print_api(e, &store, &mail_note),
                );
                tokio::select! {
                    r = serving => r,
                    _ = tokio::signal::ctrl_c() => Ok(()),
                }
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A span on the command line (`10m`, `6h`), in milliseconds.
fn parse_span(text: &str) -> Result<i64, String> {
    callahead::time::Span::parse(text).map(|s| s.0)
}
