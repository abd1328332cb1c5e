//! Configuration of `callahead serve`: typed sections with documented defaults, read from a TOML
//! file, every key overridable by an environment variable, validated with every error listed.
//!
//! Environment overrides: `CALLAHEAD_<SECTION>_<KEY>` (upper case), e.g.
//! `CALLAHEAD_KAFKA_BROKERS=kafka-1:9092`, `CALLAHEAD_STORE_URL=postgres://…`. A list is written
//! comma-separated (`CALLAHEAD_KAFKA_INPUT_TOPICS=events,events-eu`). librdkafka settings pass
//! through `[kafka.client]`, e.g. `"security.protocol" = "SASL_SSL"`, or
//! `CALLAHEAD_KAFKA_CLIENT_SASL_MECHANISM=PLAIN` (underscores after `CLIENT_` become dots).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::time::{Span, MINUTE};

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub kafka: KafkaConfig,
    pub store: StoreConfig,
    pub rules: RulesConfig,
    pub http: HttpConfig,
    pub engine: EngineSection,
    pub state: StateConfig,
    pub log: LogConfig,
    pub api: ApiConfig,
    pub outreach: OutreachConfig,
    pub retention: RetentionConfig,
}

/// How long personal data is kept (`docs/privacy.md`), and how often the purge runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Resolved tasks and their versions, after their last change (days).
    pub resolved_tasks_days: i64,
    /// Audit records (days): the longest, a bank's record-keeping period.
    pub audit_days: i64,
    /// E-mail jobs and answer links, after the job was created (days).
    pub outreach_days: i64,
    /// Between purges, milliseconds (0: never purge).
    pub purge_interval_ms: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            resolved_tasks_days: 400,
            audit_days: 2_557,
            outreach_days: 90,
            purge_interval_ms: 3_600_000,
        }
    }
}

impl RetentionConfig {
    /// The periods, for the store's purge.
    pub fn periods(&self) -> crate::store::Retention {
        crate::store::Retention {
            resolved_tasks_days: self.resolved_tasks_days,
            audit_days: self.audit_days,
            outreach_days: self.outreach_days,
        }
    }
}

/// E-mail to customers: SMTP, the answer links, the policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutreachConfig {
    /// Send e-mails at all (off: jobs wait in the store's outbox).
    pub enabled: bool,
    /// SMTP relay.
    pub smtp_host: String,
    pub smtp_port: u16,
    /// `starttls` (required: never falls back to plain text), `tls` (implicit TLS) or `none`
    /// (only for a relay on the same host).
    pub smtp_tls: String,
    /// Allow `smtp_tls = "none"` to a relay that is not on this host (the customers' addresses
    /// and the answer links would cross the network in clear): off unless set on purpose.
    pub smtp_allow_plain: bool,
    pub smtp_username: String,
    /// Environment: CALLAHEAD_OUTREACH_SMTP_PASSWORD (never logged).
    pub smtp_password: String,
    /// Write messages as .eml files into this directory instead of SMTP (trials, the demo).
    pub mail_dir: String,
    /// The sender, e.g. `Bank <alerts@bank.example>`.
    pub from: String,
    /// The domain of Message-IDs (`<job@domain>`).
    pub message_domain: String,
    /// Where customers reach the answer pages (`<public_url>/r/<token>`).
    pub public_url: String,
    /// The bank's name in e-mails.
    pub bank_name: String,
    /// Link signing keys `KID:BASE64` (at least 32 bytes); the first signs new links, all
    /// verify. Environment: CALLAHEAD_OUTREACH_LINK_KEYS, comma-separated.
    pub link_keys: Vec<String>,
    /// How long an answer link works, hours.
    pub link_ttl_hours: u64,
    /// Local time of the customer, `HH:MM-HH:MM`, when e-mails wait (unless a rule says any hour).
    pub quiet_hours: String,
    /// For customers with no known time zone.
    pub default_timezone: String,
    /// Care e-mails per customer per day and per week, across all rules.
    pub max_per_day: i64,
    pub max_per_week: i64,
    /// After an answer, the same question is not asked again for this many days.
    pub answer_quiet_days: i64,
    /// Delivery attempts before a job is `failed`.
    pub max_attempts: i64,
    /// DKIM signing: the RSA private key (PKCS#1 PEM) file, the selector and the domain
    /// (`<selector>._domainkey.<domain>` publishes the public key). Empty file: no signature.
    pub dkim_key_file: String,
    pub dkim_selector: String,
    pub dkim_domain: String,
    /// How often due jobs are looked for, milliseconds.
    pub poll_ms: u64,
}

impl Default for OutreachConfig {
    fn default() -> Self {
        OutreachConfig {
            enabled: false,
            smtp_host: "127.0.0.1".into(),
            smtp_port: 587,
            smtp_tls: "starttls".into(),
            smtp_allow_plain: false,
            smtp_username: String::new(),
            smtp_password: String::new(),
            mail_dir: String::new(),
            from: "Bank <alerts@bank.example>".into(),
            message_domain: "callahead.local".into(),
            public_url: "http://127.0.0.1:9898".into(),
            bank_name: "Your bank".into(),
            link_keys: Vec::new(),
            link_ttl_hours: 72,
            quiet_hours: "21:00-08:00".into(),
            default_timezone: "UTC".into(),
            max_per_day: 2,
            max_per_week: 5,
            answer_quiet_days: 7,
            max_attempts: 8,
            dkim_key_file: String::new(),
            dkim_selector: "callahead".into(),
            dkim_domain: "bank.example".into(),
            poll_ms: 1_000,
        }
    }
}

/// The agents' API: tokens provisioned from configuration, and the lifecycle's timings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Tokens provisioned without the database (for Kubernetes secrets), each
    /// `NAME:ROLE:SHA256` with the hex SHA-256 of the token (never the token itself):
    /// `printf %s "$TOKEN" | sha256sum`. Environment: comma-separated `CALLAHEAD_API_TOKENS`.
    pub tokens: Vec<String>,
    /// A claim left idle this long (no contact, note or snooze by its holder) goes back to the
    /// queue, milliseconds.
    pub claim_idle_ms: u64,
    /// How often overdue tasks and idle claims are looked for, milliseconds (0 = never).
    pub sla_tick_ms: u64,
    /// How long an action waits for its result before answering 202, milliseconds.
    pub command_wait_ms: u64,
    /// Failed authentications per client address and minute before it gets 429.
    pub auth_failures_per_minute: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            tokens: Vec::new(),
            claim_idle_ms: 30 * 60 * 1_000,
            sla_tick_ms: 30_000,
            command_wait_ms: 5_000,
            auth_failures_per_minute: 10,
        }
    }
}

/// Kafka: where events come from and where tasks and dead letters go.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma-separated.
    pub brokers: String,
    /// Consumer group: instances with the same group share the input partitions.
    pub group_id: String,
    /// Topics of input events (all types, keyed by customer id).
    pub input_topics: Vec<String>,
    /// Every task version is published here (JSON, keyed by customer id).
    pub tasks_topic: String,
    /// Refused input goes here with the reason in headers.
    pub dead_letter_topic: String,
    /// Agents' and customers' actions on tasks, keyed by customer id: co-partitioned with the
    /// input topics and consumed by the same loop (one source of truth for a task).
    pub commands_topic: String,
    /// Requests to the card system (a block after a customer's "it was not me" or an agent's
    /// action), keyed by customer id, each with an idempotency key (`docs/actions.md`).
    pub actions_topic: String,
    /// Keys that sign and verify commands on the commands topic, `KEYID:BASE64` (at least 32
    /// bytes), the first signs; the same on every instance (`bus` module doc). Empty: a key of
    /// this process only (one instance; logged as a warning).
    pub command_keys: Vec<String>,
    /// Most messages processed and made durable together.
    pub batch_size: usize,
    /// Longest wait to fill a batch, milliseconds (0: take what is already fetched).
    pub batch_wait_ms: u64,
    /// librdkafka settings passed through unchanged (security, SASL, TLS, timeouts).
    pub client: BTreeMap<String, String>,
}

impl KafkaConfig {
    /// The command keys (validated at load), the first signing; none when none are configured.
    pub fn command_keys(&self) -> Vec<crate::outreach::links::LinkKey> {
        self.command_keys.iter().filter_map(|k| crate::outreach::links::LinkKey::parse(k).ok()).collect()
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            group_id: "callahead".into(),
            input_topics: vec!["callahead.events".into()],
            tasks_topic: "callahead.tasks".into(),
            dead_letter_topic: "callahead.dead-letters".into(),
            commands_topic: "callahead.commands".into(),
            actions_topic: "callahead.actions".into(),
            command_keys: Vec::new(),
            batch_size: 2_000,
            batch_wait_ms: 0,
            client: BTreeMap::new(),
        }
    }
}

/// The task store.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://PATH` (embedded, the default) or `postgres://USER@HOST:PORT/DB`.
    pub url: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { url: "sqlite://callahead.db".into() }
    }
}

/// Rules and their hot reload.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    pub dir: PathBuf,
    /// How often the directory is checked for changes, milliseconds (0 = only on SIGHUP).
    pub reload_poll_ms: u64,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig { dir: PathBuf::from("rules"), reload_poll_ms: 2_000 }
    }
}

/// The HTTP endpoint: `/metrics`, `/healthz`, `/readyz`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: String,
    /// Proxies (an ingress, a load balancer) whose `X-Forwarded-For` names the client: addresses
    /// or ranges (`10.0.0.0/8`). Empty: the connecting address is the client.
    pub trusted_proxies: Vec<String>,
    /// The customers' answer pages (`/r/…`, `/u/…`) on a listener of their own, the one to
    /// expose to the internet; the console, the API, metrics and docs stay on `listen`. Empty:
    /// the pages are served on `listen` too (the demo; a trial on one host).
    pub public_listen: String,
    /// Send `Strict-Transport-Security` on every answer (when TLS terminates in front of us).
    pub hsts: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:9898".into(),
            trusted_proxies: Vec::new(),
            public_listen: String::new(),
            hsts: false,
        }
    }
}

impl HttpConfig {
    /// The trusted proxies (validated at load).
    pub fn trusted_proxies(&self) -> Vec<crate::api::auth::AddressRange> {
        self.trusted_proxies.iter().filter_map(|p| crate::api::auth::AddressRange::parse(p).ok()).collect()
    }
}

/// Engine settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSection {
    /// How late an event may arrive and still be counted before event-time timers fire.
    pub allowed_lateness: Span,
    /// Engine worker threads in `serve` (0: one per core). A partition is always processed by
    /// the same worker, so more workers than owned partitions leave some idle.
    pub workers: usize,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection { allowed_lateness: Span(10 * MINUTE), workers: 0 }
    }
}

impl EngineSection {
    /// The number of engine workers to start: `workers`, or one per core when 0.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }
}

/// State checkpoints: per input partition, in the task store, so a restart or a partition
/// moving to another instance restores customers instead of forgetting them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateConfig {
    /// Checkpoint state and restore it on assignment. Off: state is in memory only (a restart
    /// forgets every customer); only for benchmarks and throw-away runs.
    pub checkpoint: bool,
    /// Longest time between checkpoints, milliseconds (0 = after every batch). Kafka offsets are
    /// committed up to the last checkpoint, so this bounds what a crash re-reads.
    pub checkpoint_interval_ms: u64,
    /// A customer with no event for this long (event time) and no open task is forgotten, in
    /// memory and in the checkpoints (`400d`: longer than any baseline looks back).
    pub expire_after: Span,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            checkpoint: true,
            checkpoint_interval_ms: 1_000,
            expire_after: Span(crate::engine::DEFAULT_EXPIRE_AFTER),
        }
    }
}

/// Logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `human` or `json`.
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: "human".into() }
    }
}

/// Everything wrong with a configuration, one line each.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  {}", .0.join("\n  "))]
pub struct ConfigErrors(pub Vec<String>);

impl Config {
    /// Reads `path` (if given), applies environment overrides from `env`, validates.
    pub fn load(path: Option<&Path>, env: &[(String, String)]) -> Result<Config, ConfigErrors> {
        let mut table = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| ConfigErrors(vec![format!("{}: cannot read: {e}", p.display())]))?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigErrors(vec![format!("{}: {}", p.display(), e.message().trim())]))?
            }
            None => toml::Table::new(),
        };
        let mut errors = Vec::new();
        apply_env(&mut table, env, &mut errors);
        let config: Config = match Config::deserialize(table) {
            Ok(c) => c,
            Err(e) => {
                errors.push(e.message().trim().to_string());
                return Err(ConfigErrors(errors));
            }
        };
        errors.extend(config.problems());
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Semantic checks, every problem listed.
    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let k = &self.kafka;
        if k.brokers.trim().is_empty() {
            p.push("kafka.brokers: must name at least one broker".into());
        }
        if k.group_id.trim().is_empty() {
            p.push("kafka.group_id: must not be empty".into());
        }
        if k.input_topics.is_empty() || k.input_topics.iter().any(|t| t.trim().is_empty()) {
            p.push("kafka.input_topics: must list at least one topic, none empty".into());
        }
        for (key, topic) in [
            ("kafka.tasks_topic", &k.tasks_topic),
            ("kafka.dead_letter_topic", &k.dead_letter_topic),
            ("kafka.commands_topic", &k.commands_topic),
            ("kafka.actions_topic", &k.actions_topic),
        ] {
            if topic.trim().is_empty() {
                p.push(format!("{key}: must not be empty"));
            } else if k.input_topics.contains(topic) {
                p.push(format!("{key}: `{topic}` is also an input topic (a loop)"));
            }
        }
        for (i, proxy) in self.http.trusted_proxies.iter().enumerate() {
            if let Err(e) = crate::api::auth::AddressRange::parse(proxy) {
                p.push(format!("http.trusted_proxies[{i}]: {e}"));
            }
        }
        for (i, key) in k.command_keys.iter().enumerate() {
            if let Err(e) = crate::outreach::links::LinkKey::parse(key) {
                p.push(format!("kafka.command_keys[{i}]: {e}"));
            }
        }
        if k.batch_size == 0 || k.batch_size > 100_000 {
            p.push(format!("kafka.batch_size: {} is not within 1..=100000", k.batch_size));
        }
        for key in ["group.id", "bootstrap.servers", "enable.auto.offset.store"] {
            if k.client.contains_key(key) {
                p.push(format!(
                    "kafka.client.\"{key}\": set by callahead itself; use the kafka section instead"
                ));
            }
        }
        if !(self.store.url.starts_with("sqlite:")
            || self.store.url.starts_with("postgres:")
            || self.store.url.starts_with("postgresql:"))
        {
            p.push(format!("store.url: `{}` is neither sqlite://PATH nor postgres://…", self.store.url));
        }
        if self.http.listen.parse::<std::net::SocketAddr>().is_err() {
            p.push(format!("http.listen: `{}` is not an address such as 0.0.0.0:9898", self.http.listen));
        }
        if !["human", "json"].contains(&self.log.format.as_str()) {
            p.push(format!("log.format: `{}` is neither `human` nor `json`", self.log.format));
        }
        for (i, t) in self.api.tokens.iter().enumerate() {
            if let Err(e) = crate::api::auth::parse_provisioned(t) {
                p.push(format!("api.tokens[{i}]: {e}"));
            }
        }
        let o = &self.outreach;
        if !["starttls", "tls", "none"].contains(&o.smtp_tls.as_str()) {
            p.push(format!("outreach.smtp_tls: `{}` is not starttls, tls or none", o.smtp_tls));
        }
        if o.smtp_tls == "none" && o.mail_dir.is_empty() && !is_this_host(&o.smtp_host) && !o.smtp_allow_plain
        {
            p.push(format!(
                "outreach.smtp_tls: `none` to `{}`, which is not this host, would send customers' addresses \
                 and answer links in clear: use starttls or tls (or set outreach.smtp_allow_plain = true on purpose)",
                o.smtp_host
            ));
        }
        if let Err(e) = crate::outreach::policy::parse_quiet(&o.quiet_hours) {
            p.push(format!("outreach.quiet_hours: `{}`: {e}", o.quiet_hours));
        }
        if jiff::tz::TimeZone::get(&o.default_timezone).is_err() {
            p.push(format!("outreach.default_timezone: `{}` is not an IANA time zone", o.default_timezone));
        }
        for (i, k) in o.link_keys.iter().enumerate() {
            if let Err(e) = crate::outreach::links::LinkKey::parse(k) {
                p.push(format!("outreach.link_keys[{i}]: {e}"));
            }
        }
        if !o.dkim_key_file.is_empty() {
            if let Err(e) = crate::outreach::sender::dkim(o) {
                p.push(format!("outreach.dkim_key_file: {e}"));
            }
        }
        let r = &self.retention;
        for (key, days) in [
            ("retention.resolved_tasks_days", r.resolved_tasks_days),
            ("retention.audit_days", r.audit_days),
            ("retention.outreach_days", r.outreach_days),
        ] {
            if !(1..=36_500).contains(&days) {
                p.push(format!("{key}: {days} is not within 1..=36500 days"));
            }
        }
        if o.enabled && o.link_keys.is_empty() {
            p.push("outreach.link_keys: at least one key is needed when outreach is enabled".into());
        }
        if o.enabled && o.from.parse::<lettre::message::Mailbox>().is_err() {
            p.push(format!(
                "outreach.from: `{}` is not an address such as `Bank <alerts@bank.example>`",
                o.from
            ));
        }
        if self.api.command_wait_ms > 60_000 {
            p.push("api.command_wait_ms: at most 60000".into());
        }
        if self.engine.workers > 256 {
            p.push(format!(
                "engine.workers: {} is not within 0..=256 (0: one per core)",
                self.engine.workers
            ));
        }
        if self.engine.allowed_lateness.0 < 0 {
            p.push("engine.allowed_lateness: must not be negative".into());
        }
        if self.state.expire_after.0 < crate::time::DAY {
            p.push("state.expire_after: must be at least a day (1d)".into());
        }
        p
    }
}

/// True if `host` names this machine (`localhost` or a loopback address): a link to it does not
/// cross the network, so it may go without TLS.
pub fn is_this_host(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Applies `CALLAHEAD_<SECTION>_<KEY>` variables onto the table.
fn apply_env(table: &mut toml::Table, env: &[(String, String)], errors: &mut Vec<String>) {
    const SECTIONS: &[(&str, &[&str])] = &[
        (
            "kafka",
            &[
                "brokers",
                "group_id",
                "input_topics",
                "tasks_topic",
                "dead_letter_topic",
                "commands_topic",
                "actions_topic",
                "command_keys",
                "batch_size",
                "batch_wait_ms",
            ],
        ),
        ("store", &["url"]),
        ("rules", &["dir", "reload_poll_ms"]),
        ("http", &["listen", "trusted_proxies", "public_listen", "hsts"]),
        ("engine", &["allowed_lateness", "workers"]),
        ("state", &["checkpoint", "checkpoint_interval_ms", "expire_after"]),
        ("log", &["format"]),
        ("api", &["tokens", "claim_idle_ms", "sla_tick_ms", "command_wait_ms", "auth_failures_per_minute"]),
        (
            "outreach",
            &[
                "enabled",
                "smtp_host",
                "smtp_port",
                "smtp_tls",
                "smtp_allow_plain",
                "smtp_username",
                "smtp_password",
                "mail_dir",
                "from",
                "message_domain",
                "public_url",
                "bank_name",
                "link_keys",
                "link_ttl_hours",
                "quiet_hours",
                "default_timezone",
                "max_per_day",
                "max_per_week",
                "answer_quiet_days",
                "max_attempts",
                "dkim_key_file",
                "dkim_selector",
                "dkim_domain",
                "poll_ms",
            ],
        ),
        ("retention", &["resolved_tasks_days", "audit_days", "outreach_days", "purge_interval_ms"]),
    ];
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("CALLAHEAD_") else { continue };
        if rest.starts_with("TEST_") {
            continue; // the test scripts' own settings
        }
        let rest = rest.to_ascii_lowercase();
        if let Some(key) = rest.strip_prefix("kafka_client_") {
            let section = table.entry("kafka").or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let Some(kafka) = section.as_table_mut() {
                let client = kafka.entry("client").or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if let Some(client) = client.as_table_mut() {
                    client.insert(key.replace('_', "."), toml::Value::String(value.clone()));
                }
            }
            continue;
        }
        let found = SECTIONS.iter().find_map(|(section, keys)| {
            let key = rest.strip_prefix(section)?.strip_prefix('_')?;
            keys.contains(&key).then_some((*section, key))
        });
        let Some((section, key)) = found else {
            errors.push(format!("{name}: not a configuration variable"));
            continue;
        };
        let typed = if key == "input_topics" || key == "tokens" || key == "link_keys" || key == "command_keys"
        {
            toml::Value::Array(value.split(',').map(|t| toml::Value::String(t.trim().to_string())).collect())
        } else if key.ends_with("_size")
            || key.ends_with("_ms")
            || key.ends_with("_minute")
            || key.ends_with("_port")
            || key.ends_with("_hours") && key != "quiet_hours"
            || key.starts_with("max_")
            || key.ends_with("_days")
            || key == "workers"
        {
            match value.parse::<i64>() {
                Ok(n) => toml::Value::Integer(n),
                Err(_) => {
                    errors.push(format!("{name}: `{value}` is not a whole number"));
                    continue;
                }
            }
        } else if key == "checkpoint" || key == "enabled" || key == "hsts" || key == "smtp_allow_plain" {
            match value.as_str() {
                "true" | "1" => toml::Value::Boolean(true),
                "false" | "0" => toml::Value::Boolean(false),
                _ => {
                    errors.push(format!("{name}: `{value}` is neither true nor false"));
                    continue;
                }
            }
        } else {
            toml::Value::String(value.clone())
        };
        let entry = table.entry(section).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let Some(t) = entry.as_table_mut() {
            t.insert(key.to_string(), typed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::load(None, &[]).unwrap();
        assert_eq!(c.store.url, "sqlite://callahead.db");
        assert_eq!(c.kafka.input_topics, vec!["callahead.events"]);
    }

    #[test]
    fn plain_smtp_is_for_this_host_only_unless_allowed_on_purpose() {
        let with = |pairs: &[(&str, &str)]| Config::load(None, &env(pairs));
        let e =
            with(&[("CALLAHEAD_OUTREACH_SMTP_HOST", "relay.bank"), ("CALLAHEAD_OUTREACH_SMTP_TLS", "none")])
                .unwrap_err()
                .to_string();
        assert!(e.contains("in clear"), "{e}");
        assert!(with(&[
            ("CALLAHEAD_OUTREACH_SMTP_HOST", "127.0.0.1"),
            ("CALLAHEAD_OUTREACH_SMTP_TLS", "none")
        ])
        .is_ok());
        assert!(with(&[
            ("CALLAHEAD_OUTREACH_SMTP_HOST", "relay.bank"),
            ("CALLAHEAD_OUTREACH_SMTP_TLS", "none"),
            ("CALLAHEAD_OUTREACH_SMTP_ALLOW_PLAIN", "true"),
        ])
        .is_ok());
    }

    #[test]
    fn environment_overrides_every_key() {
        let c = Config::load(
            None,
            &env(&[
                ("CALLAHEAD_KAFKA_BROKERS", "k1:9092,k2:9092"),
                ("CALLAHEAD_KAFKA_INPUT_TOPICS", "a, b"),
                ("CALLAHEAD_KAFKA_BATCH_SIZE", "500"),
                ("CALLAHEAD_KAFKA_CLIENT_SECURITY_PROTOCOL", "SASL_SSL"),
                ("CALLAHEAD_STORE_URL", "postgres://root@127.0.0.1:5432/test"),
                ("CALLAHEAD_ENGINE_ALLOWED_LATENESS", "5m"),
                ("CALLAHEAD_ENGINE_WORKERS", "3"),
                ("PATH", "/usr/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(c.kafka.brokers, "k1:9092,k2:9092");
        assert_eq!(c.kafka.input_topics, vec!["a", "b"]);
        assert_eq!(c.kafka.batch_size, 500);
        assert_eq!(c.kafka.client["security.protocol"], "SASL_SSL");
        assert!(c.store.url.starts_with("postgres://"));
        assert_eq!(c.engine.allowed_lateness, Span(5 * MINUTE));
        assert_eq!(c.engine.worker_count(), 3);
    }

    #[test]
    fn state_expiry_defaults_to_400_days_and_is_at_least_a_day() {
        assert_eq!(Config::load(None, &[]).unwrap().state.expire_after, Span(400 * crate::time::DAY));
        let c = Config::load(None, &env(&[("CALLAHEAD_STATE_EXPIRE_AFTER", "90d")])).unwrap();
        assert_eq!(c.state.expire_after, Span(90 * crate::time::DAY));
        let e = Config::load(None, &env(&[("CALLAHEAD_STATE_EXPIRE_AFTER", "12h")])).unwrap_err();
        assert!(e.to_string().contains("state.expire_after"), "{e}");
    }

    #[test]
    fn every_problem_is_listed() {
        let e = Config::load(
            None,
            &env(&[
                ("CALLAHEAD_KAFKA_TASKS_TOPIC", "callahead.events"),
                ("CALLAHEAD_STORE_URL", "mysql://x"),
                ("CALLAHEAD_HTTP_LISTEN", "nowhere"),
                ("CALLAHEAD_LOG_FORMAT", "xml"),
                ("CALLAHEAD_KAFKA_BATCH_SIZE", "many"),
                ("CALLAHEAD_NOPE", "1"),
            ]),
        )
        .unwrap_err();
        let text = e.to_string();
        for needle in [
            "kafka.tasks_topic",
            "store.url",
            "http.listen",
            "log.format",
            "CALLAHEAD_KAFKA_BATCH_SIZE",
            "CALLAHEAD_NOPE",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        let dir = std::env::temp_dir().join(format!("callahead-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "[kafka]\nbrokerz = \"x\"\n").unwrap();
        let e = Config::load(Some(&path), &[]).unwrap_err();
        assert!(e.to_string().contains("brokerz"), "{e}");
    }
}
