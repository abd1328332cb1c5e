//! `callahead serve` against a real Kafka-protocol broker (Tansu, started by `scripts/test.sh`)
//! and both task stores (an SQLite file; PostgreSQL on 127.0.0.1:5432): events produced by a
//! real producer become the expected tasks in the store and on the tasks topic; every kind of bad
//! input lands on the dead-letter topic with its reason while the service keeps consuming; the
//! metrics on `/metrics` (parsed as Prometheus text) agree; SIGTERM stops it cleanly.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use callahead::ingest::generator::{generate, StreamSpec};
use callahead::store::TaskStore;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::common::{broker, free_port, http_get, identity, replay, root, temp_sqlite, unique};

pub(crate) struct Topics {
    pub(crate) events: String,
    pub(crate) tasks: String,
    pub(crate) dead: String,
    pub(crate) commands: String,
    pub(crate) actions: String,
}

/// The command key every test instance shares (`KEYID:BASE64`, 32 bytes).
pub(crate) const TEST_COMMAND_KEY: &str = "t1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

pub(crate) async fn create_topics(prefix: &str) -> Topics {
    create_topics_on(broker(), prefix).await
}

pub(crate) async fn create_topics_on(bootstrap: &str, prefix: &str) -> Topics {
    let t = Topics {
        events: format!("{prefix}-events"),
        tasks: format!("{prefix}-tasks"),
        dead: format!("{prefix}-dead"),
        commands: format!("{prefix}-commands"),
        actions: format!("{prefix}-actions"),
    };
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("admin client");
    let new = [
        NewTopic::new(&t.events, 3, TopicReplication::Fixed(1)),
        NewTopic::new(&t.tasks, 1, TopicReplication::Fixed(1)),
        NewTopic::new(&t.dead, 1, TopicReplication::Fixed(1)),
        // Co-partitioned with the events: a customer's commands reach the owner of its state.
        NewTopic::new(&t.commands, 3, TopicReplication::Fixed(1)),
        NewTopic::new(&t.actions, 1, TopicReplication::Fixed(1)),
    ];
    for result in admin.create_topics(&new, &AdminOptions::new()).await.expect("create topics") {
        result.expect("topic created");
    }
    t
}

/// The service as a child process, configured by environment variables.
pub(crate) struct Service {
    child: Child,
    pub(crate) http: String,
    /// The service's own log (stderr), named in failure messages.
    log: std::path::PathBuf,
}

impl Service {
    pub(crate) fn start(topics: &Topics, group: &str, store_url: &str) -> Service {
        Service::start_with(broker(), topics, group, store_url, &[])
    }

    pub(crate) fn start_with(
        bootstrap: &str,
        topics: &Topics,
        group: &str,
        store_url: &str,
        extra: &[(&str, &str)],
    ) -> Service {
        let http = format!("127.0.0.1:{}", free_port());
        let log = std::env::temp_dir().join(format!("{group}-{}.log", http.replace(['.', ':'], "-")));
        let log_file = std::fs::File::create(&log).expect("service log");
        let child = Command::new(env!("CARGO_BIN_EXE_callahead"))
            .arg("serve")
            .current_dir(root())
            .env("CALLAHEAD_KAFKA_BROKERS", bootstrap)
            // Generated events are historical: every task would be overdue, and the SLA ticker
            // would add versions a replay does not have. Tests of the ticker turn it on.
            .env("CALLAHEAD_API_SLA_TICK_MS", "0")
            // Every instance of a test signs and verifies commands with the same key.
            .env("CALLAHEAD_KAFKA_COMMAND_KEYS", TEST_COMMAND_KEY)
            .envs(extra.iter().copied())
            .env("CALLAHEAD_KAFKA_GROUP_ID", group)
            .env("CALLAHEAD_KAFKA_INPUT_TOPICS", &topics.events)
            .env("CALLAHEAD_KAFKA_TASKS_TOPIC", &topics.tasks)
            .env("CALLAHEAD_KAFKA_DEAD_LETTER_TOPIC", &topics.dead)
            .env("CALLAHEAD_KAFKA_COMMANDS_TOPIC", &topics.commands)
            .env("CALLAHEAD_KAFKA_ACTIONS_TOPIC", &topics.actions)
            .env("CALLAHEAD_KAFKA_CLIENT_SESSION_TIMEOUT_MS", "6000")
            .env("CALLAHEAD_STORE_URL", store_url)
            .env("CALLAHEAD_HTTP_LISTEN", &http)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start callahead serve");
        let mut service = Service { child, http, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !matches!(http_get(&service.http, "/readyz"), Ok((200, _))) {
            if let Some(status) = service.child.try_wait().expect("wait") {
                panic!(
                    "callahead serve exited before it was ready: {status:?}; log: {}",
                    service.log.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "service not ready within 60 s; log: {}",
                service.log.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        service
    }

    /// What the service has logged so far.
    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn metrics(&self) -> prometheus_parse::Scrape {
        let (status, body) = http_get(&self.http, "/metrics").expect("GET /metrics");
        assert_eq!(status, 200);
        prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
            .expect("Prometheus text format")
    }

    /// SIGTERM, then the exit status within `limit`.
    pub(crate) fn stop(mut self, limit: Duration) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit within {limit:?} of SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Service {
    /// SIGKILL: no shutdown, no final checkpoint or commit.
    pub(crate) fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

pub(crate) fn sum(scrape: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

pub(crate) fn customer_of(line: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(line).expect("generated JSON");
    v["customer_id"].as_str().expect("customer_id").to_string()
}

/// An e-mail address in a field that refuses it, and a card number where a token belongs.
const PERSONAL: &str = "jane.doe@example.com";
const PAN: &str = "4111 1111 1111 1111";

/// Bad input of every kind: (key, payload, expected reason).
fn bad_messages() -> Vec<(String, Vec<u8>, &'static str)> {
    let ok = r#"{"event_id":"bad-1","type":"complaint","customer_id":"cx","ts":"2026-06-01T00:00:00Z","category":"fees","severity":"low"}"#;
    vec![
        ("cx".into(), b"{not json".to_vec(), "malformed_json"),
        (
            "cx".into(),
            br#"{"event_id":"b2","type":"teleport","customer_id":"cx","ts":"2026-06-01T00:00:00Z"}"#.to_vec(),
            "unknown_type",
        ),
        (
            "cx".into(),
            br#"{"event_id":"b3","type":"login","customer_id":"cx","ts":"2026-06-01T00:00:00Z"}"#.to_vec(),
            "missing_field",
        ),
        // Personal data and a card number in bad input: neither may reach a log line.
        ("cx".into(), ok.replace("2026-06-01T00:00:00Z", PERSONAL).into_bytes(), "invalid_field"),
        (
            "cx".into(),
            format!(
                r#"{{"event_id":"b9","type":"card_transaction","customer_id":"cx","ts":"2026-06-01T00:00:00Z","card_id":"{PAN}","amount":5,"currency":"EUR","channel":"ecommerce","status":"approved","merchant":{{"name":"Shop","country":"FR","city":"Paris"}}}}"#
            )
            .into_bytes(),
            "card_number",
        ),
        ("someone-else".into(), ok.as_bytes().to_vec(), "key_mismatch"),
        ("cx".into(), vec![b' '; 70 * 1024], "oversized"),
        (String::new(), ok.replace("bad-1", "bad-7").into_bytes(), "missing_key"), // no key at all
    ]
}

async fn end_to_end(store_url: &str) {
    let prefix = unique("e2e");
    let topics = create_topics(&prefix).await;
    let service = Service::start(&topics, &prefix, store_url);

    let generated = generate(&StreamSpec { customers: 30, days: 64, seed: 5, scenarios: true, noise: true });
    let expected = identity(&replay(&generated.lines));
    assert!(expected.len() >= 10);
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker())
        .set("linger.ms", "5")
        .set("message.max.bytes", "1000000")
        .create()
        .expect("producer");
    let bad = bad_messages();
    let keys: Vec<String> = generated.lines.iter().map(|l| customer_of(l)).collect();
    let mut pending = Vec::new();
    let every = generated.lines.len() / (bad.len() + 1);
    for (i, (line, key)) in generated.lines.iter().zip(&keys).enumerate() {
        pending.push(producer.send(
            FutureRecord::to(&topics.events).key(key.as_str()).payload(line.as_bytes()),
            Duration::from_secs(10),
        ));
        if i % every == every / 2 {
            if let Some((k, p, _)) = bad.get(i / every) {
                let record = FutureRecord::to(&topics.events).payload(p.as_slice());
                let record = if k.is_empty() { record } else { record.key(k.as_str()) };
                pending.push(producer.send(record, Duration::from_secs(10)));
            }
        }
    }
    for p in pending {
        p.await.expect("produced");
    }

    // The store converges to the expected tasks.
    let store = TaskStore::connect(store_url).await.expect("store");
    let deadline = Instant::now() + Duration::from_secs(90);
    let stored = loop {
        let stored = store.task_versions().await.expect("read tasks");
        if stored.len() >= expected.len() || Instant::now() > deadline {
            break stored;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let stored_ids: BTreeSet<&str> = stored.iter().map(|(id, _)| id.as_str()).collect();
    let expected_ids: BTreeSet<&str> = expected.iter().map(|(id, ..)| id.as_str()).collect();
    assert_eq!(stored_ids, expected_ids, "the service opens exactly the tasks replay opens");
    for (id, customer, queue, rules) in &expected {
        let (_, body) = store.task(id).await.unwrap().unwrap();
        let task: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(task["customer_id"], customer.as_str());
        assert_eq!(task["queue"], *queue);
        let mut got: Vec<String> =
            task["rules"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect();
        got.sort();
        assert_eq!(&got, rules, "{id}");
    }

    // Every stored version is on the tasks topic; dead letters carry their reason.
    let consume = |topic: &str| -> StreamConsumer {
        let c: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", broker())
            .set("group.id", unique("reader"))
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .create()
            .expect("consumer");
        c.subscribe(&[topic]).expect("subscribe");
        c
    };
    let want: BTreeMap<String, i64> = stored.into_iter().collect();
    let tasks_reader = consume(&topics.tasks);
    let mut published: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while want.iter().any(|(id, v)| !published.get(id).is_some_and(|vs| vs.contains(v))) {
        assert!(Instant::now() < deadline, "tasks topic incomplete: {published:?} vs {want:?}");
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(1), tasks_reader.recv()).await {
            let task: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            assert_eq!(
                m.key().unwrap(),
                task["customer_id"].as_str().unwrap().as_bytes(),
                "keyed by customer"
            );
            published
                .entry(task["id"].as_str().unwrap().to_string())
                .or_default()
                .push(task["version"].as_i64().unwrap());
        }
    }
    for (id, versions) in &published {
        let mut sorted = versions.clone();
        sorted.dedup();
        assert_eq!(&sorted, versions, "{id}: each version published once, in order");
    }
    let dead_reader = consume(&topics.dead);
    let mut reasons = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while reasons.len() < bad.len() {
        assert!(Instant::now() < deadline, "dead letters so far: {reasons:?}");
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(1), dead_reader.recv()).await {
            let headers = m.headers().expect("dead letters have headers");
            let reason = headers
                .iter()
                .find(|h| h.key == "callahead.reason")
                .and_then(|h| h.value)
                .expect("reason header");
            assert!(headers.iter().any(|h| h.key == "callahead.source.offset"));
            let error =
                headers.iter().find(|h| h.key == "callahead.error").and_then(|h| h.value).unwrap_or_default();
            let error = String::from_utf8_lossy(error);
            assert!(!error.contains(PERSONAL) && !error.contains("1111 1111"), "{error}");
            if reason == b"card_number" {
                let payload = String::from_utf8_lossy(m.payload().unwrap_or_default());
                assert!(payload.contains("************1111") && !payload.contains(PAN), "{payload}");
            }
            assert!(headers
                .iter()
                .any(|h| h.key == "callahead.source.topic" && h.value == Some(topics.events.as_bytes())));
            reasons.insert(String::from_utf8(reason.to_vec()).unwrap());
        }
    }
    let expected_reasons: BTreeSet<String> = bad.iter().map(|(.., r)| r.to_string()).collect();
    assert_eq!(reasons, expected_reasons);
    let log = std::fs::read_to_string(&service.log).unwrap_or_default();
    assert!(log.contains("refused input sent to the dead-letter topic"), "the refusals are logged");
    assert!(
        !log.contains(PERSONAL) && !log.contains(PAN) && !log.contains("4111111111111111"),
        "personal data logged"
    );

    // Metrics agree with what happened.
    let m = service.metrics();
    assert_eq!(sum(&m, "callahead_events_consumed_total", None) as usize, generated.lines.len());
    assert_eq!(sum(&m, "callahead_dead_letters_total", None) as usize, bad.len());
    for (.., reason) in &bad {
        assert_eq!(sum(&m, "callahead_events_invalid_total", Some(("reason", reason))), 1.0, "{reason}");
    }
    assert_eq!(sum(&m, "callahead_task_changes_total", Some(("change", "opened"))) as usize, expected.len());
    assert!(sum(&m, "callahead_events_duplicate_total", None) > 0.0);
    assert_eq!(sum(&m, "callahead_ready", None), 1.0);
    assert_eq!(sum(&m, "callahead_build_info", None), 1.0);
    assert!(sum(&m, "callahead_state_checkpointed_customers_total", None) > 0.0);

    // Consumer lag per partition (from librdkafka's statistics, every 5 s) reaches zero on every
    // input partition once everything is processed and checkpointed.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = service.metrics();
        let lags: Vec<(String, f64)> = m
            .samples
            .iter()
            .filter(|s| s.metric == "callahead_consumer_lag_messages")
            .filter(|s| s.labels.get("topic") == Some(topics.events.as_str()))
            .map(|s| {
                let v = match s.value {
                    prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                    _ => -1.0,
                };
                (s.labels.get("partition").unwrap_or("?").to_string(), v)
            })
            .collect();
        if lags.len() == 3 && lags.iter().all(|(_, v)| *v == 0.0) {
            break;
        }
        assert!(Instant::now() < deadline, "consumer lag per partition did not reach zero: {lags:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let status = service.stop(Duration::from_secs(20));
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_end_to_end_with_sqlite() {
    end_to_end(&temp_sqlite("store")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_end_to_end_with_postgres() {
    let db = PostgresDb::create().await;
    end_to_end(&db.url).await;
}

/// A fresh PostgreSQL database on 127.0.0.1:5432, dropped at the end.
pub(crate) struct PostgresDb {
    name: String,
    pub(crate) url: String,
}

const POSTGRES_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/test";

impl PostgresDb {
    pub(crate) async fn create() -> PostgresDb {
        let name = unique("cah").replace('-', "_");
        sqlx::any::install_default_drivers();
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(POSTGRES_ADMIN)
            .await
            .expect("PostgreSQL on 127.0.0.1:5432");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create database");
        PostgresDb { url: format!("postgres://postgres@127.0.0.1:5432/{name}"), name }
    }

    /// The URL of this database through another host:port (a proxy).
    pub(crate) fn url_via(&self, address: &str) -> String {
        format!("postgres://postgres@{address}/{}", self.name)
    }
}

impl Drop for PostgresDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc"])
            .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
            .output();
    }
}

/// A broker of its own (a test that pauses it must not stall the others), stopped on drop.
pub(crate) struct OwnBroker {
    state: std::path::PathBuf,
    bootstrap: String,
}

impl OwnBroker {
    pub(crate) fn start() -> OwnBroker {
        let state = std::env::temp_dir().join(unique("broker"));
        let out = Command::new(root().join("scripts/kafka.sh"))
            .arg("start")
            .env("CALLAHEAD_TEST_KAFKA_STATE", &state)
            .output()
            .expect("scripts/kafka.sh start");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        OwnBroker { bootstrap: String::from_utf8(out.stdout).unwrap().trim().to_string(), state }
    }

    pub(crate) fn signal(&self, sig: &str) {
        let pid = std::fs::read_to_string(self.state.join("broker.pid")).expect("broker pid");
        assert!(Command::new("kill").args([sig, pid.trim()]).status().unwrap().success());
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = Command::new(root().join("scripts/kafka.sh"))
            .arg("stop")
            .env("CALLAHEAD_TEST_KAFKA_STATE", &self.state)
            .output();
    }
}

pub(crate) async fn produce_lines(producer: &FutureProducer, topic: &str, lines: &[String]) {
    let keys: Vec<String> = lines.iter().map(|l| customer_of(l)).collect();
    let pending: Vec<_> = lines
        .iter()
        .zip(&keys)
        .map(|(line, key)| {
            producer.send(
                FutureRecord::to(topic).key(key.as_str()).payload(line.as_bytes()),
                Duration::from_secs(60),
            )
        })
        .collect();
    for p in pending {
        p.await.expect("produced");
    }
}

pub(crate) async fn wait_for_tasks(store: &TaskStore, n: usize, limit: Duration) -> Vec<(String, i64)> {
    let deadline = Instant::now() + limit;
    loop {
        let stored = store.task_versions().await.expect("read tasks");
        if stored.len() >= n || Instant::now() > deadline {
            return stored;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The broker stops answering mid-stream (SIGSTOP) and comes back (SIGCONT): the service waits,
/// reports not ready or retries, and ends with exactly the tasks a replay of the stream opens,
/// each once, with its final version on the tasks topic.
#[tokio::test(flavor = "multi_thread")]
async fn broker_pause_loses_and_doubles_nothing() {
    let own = OwnBroker::start();
    let prefix = unique("pause");
    let topics = create_topics_on(&own.bootstrap, &prefix).await;
    let store_url = temp_sqlite(&prefix);
    let service = Service::start_with(&own.bootstrap, &topics, &prefix, &store_url, &[]);

    let generated = generate(&StreamSpec { customers: 20, days: 64, seed: 9, scenarios: true, noise: true });
    let expected = identity(&replay(&generated.lines));
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &own.bootstrap)
        .set("message.timeout.ms", "120000")
        .create()
        .expect("producer");
    let half = generated.lines.len() / 2;
    produce_lines(&producer, &topics.events, &generated.lines[..half]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    own.signal("-STOP");
    tokio::time::sleep(Duration::from_secs(5)).await;
    own.signal("-CONT");
    produce_lines(&producer, &topics.events, &generated.lines[half..]).await;

    let store = TaskStore::connect(&store_url).await.expect("store");
    let stored = wait_for_tasks(&store, expected.len(), Duration::from_secs(90)).await;
    let stored_ids: Vec<&str> = stored.iter().map(|(id, _)| id.as_str()).collect();
    let expected_ids: Vec<&str> = expected.iter().map(|(id, ..)| id.as_str()).collect();
    assert_eq!(stored_ids, expected_ids, "nothing lost, nothing doubled");
    // The last events open no task: the store can be complete a moment before they are counted.
    let deadline = Instant::now() + Duration::from_secs(30);
    let m = loop {
        let m = service.metrics();
        if sum(&m, "callahead_events_consumed_total", None) as usize >= generated.lines.len()
            || Instant::now() > deadline
        {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(sum(&m, "callahead_events_consumed_total", None) as usize, generated.lines.len());
    assert_eq!(sum(&m, "callahead_task_changes_total", Some(("change", "opened"))) as usize, expected.len());
    assert!(service.stop(Duration::from_secs(20)).success());
}

/// Rules reload without a restart: an invalid set is refused (counted) and the running rules
/// keep working; a valid set with a new rule is swapped in and the new rule fires.
#[tokio::test(flavor = "multi_thread")]
async fn rules_hot_reload_valid_and_invalid() {
    let prefix = unique("reload");
    let topics = create_topics(&prefix).await;
    let dir = std::env::temp_dir().join(&prefix);
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    for f in ["fraud.toml", "care.toml"] {
        std::fs::copy(root().join("rules").join(f), rules.join(f)).unwrap();
    }
    let store_url = format!("sqlite://{}", dir.join("tasks.db").display()); // beside its rules
    let rules_dir = rules.display().to_string();
    let service = Service::start_with(
        broker(),
        &topics,
        &prefix,
        &store_url,
        &[("CALLAHEAD_RULES_DIR", &rules_dir), ("CALLAHEAD_RULES_RELOAD_POLL_MS", "200")],
    );
    let loaded = sum(&service.metrics(), "callahead_rules_loaded", None);
    assert!(loaded >= 8.0);

    let wait_metric = |name: &'static str, label: Option<(&'static str, &'static str)>, at_least: f64| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = sum(&service.metrics(), name, label);
            if v >= at_least {
                return v;
            }
            assert!(Instant::now() < deadline, "{name} stayed at {v}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    // An invalid rule file: refused, old rules stay.
    std::fs::write(rules.join("broken.toml"), "[[rule]]\nid = \"broken\"\nqueue = \"nowhere\"\n").unwrap();
    wait_metric("callahead_rule_reloads_total", Some(("result", "refused")), 1.0);
    assert_eq!(sum(&service.metrics(), "callahead_rules_loaded", None), loaded);

    // The running rules still work: a high-severity complaint opens a care task.
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", broker()).create().expect("producer");
    let complaint = r#"{"event_id":"r1","type":"complaint","customer_id":"rc1","ts":"2026-06-01T10:00:00Z","category":"fees","severity":"high"}"#;
    produce_lines(&producer, &topics.events, &[complaint.to_string()]).await;
    let store = TaskStore::connect(&store_url).await.expect("store");
    assert_eq!(wait_for_tasks(&store, 1, Duration::from_secs(30)).await.len(), 1);

    // A valid new rule: swapped in, and it fires.
    std::fs::remove_file(rules.join("broken.toml")).unwrap();
    let new_rule = r#"
[[rule]]
id = "failed_login_abroad"
queue = "fraud"
severity = "low"
on = ["login"]
when = "!event.success && event.country != 'GB'"
cooldown = "1h"
actions = ["call_customer"]
title.en = "Failed login from {country}"
title.ru = "Неудачный вход из {country}"
explanation.en = "A failed login from {city}, {country}."
explanation.ru = "Неудачный вход: {city}, {country}."
script.en = "Hello {customer_name}, did you try to sign in from {country}?"
script.ru = "Здравствуйте, {customer_name}! Вы пытались войти из страны {country}?"
"#;
    std::fs::write(rules.join("extra.toml"), new_rule).unwrap();
    wait_metric("callahead_rules_loaded", None, loaded + 1.0);
    assert!(sum(&service.metrics(), "callahead_rule_reloads_total", Some(("result", "ok"))) >= 1.0);
    let login = r#"{"event_id":"r2","type":"login","customer_id":"rc2","ts":"2026-06-01T11:00:00Z","channel":"web","success":false,"device_id":"d","geo":{"country":"BR","city":"Recife"}}"#;
    produce_lines(&producer, &topics.events, &[login.to_string()]).await;
    let stored = wait_for_tasks(&store, 2, Duration::from_secs(30)).await;
    let mut found = false;
    for (id, _) in &stored {
        let (_, body) = store.task(id).await.unwrap().unwrap();
        found |= body.contains("failed_login_abroad") && body.contains("Recife");
    }
    assert!(found, "the reloaded rule opened a task: {stored:?}");
    assert!(service.stop(Duration::from_secs(20)).success());
}

/// The customers' pages on their own listener (`http.public_listen`): there, the pages and
/// nothing else (no API, console, metrics or docs); on the internal listener, everything but the
/// pages. With `http.hsts` every answer carries `Strict-Transport-Security`.
#[tokio::test(flavor = "multi_thread")]
async fn customer_pages_have_a_listener_of_their_own() {
    let prefix = unique("listeners");
    let topics = create_topics(&prefix).await;
    let public = format!("127.0.0.1:{}", free_port());
    let service = Service::start_with(
        broker(),
        &topics,
        &prefix,
        &temp_sqlite("listeners"),
        &[("CALLAHEAD_HTTP_PUBLIC_LISTEN", &public), ("CALLAHEAD_HTTP_HSTS", "true")],
    );
    let get = |address: &str, path: &str| crate::common::http_text(address, "GET", path, None, None);
    let (status, headers, page) = get(&public, "/r/k1.AAAA.BBBB");
    assert_eq!(status, 404);
    assert!(page.contains("This link is not valid"), "the neutral page: {page}");
    assert!(headers.contains("strict-transport-security: max-age=31536000"), "{headers}");
    for path in ["/api/v1/me", "/metrics", "/console/login", "/docs/", "/openapi.json", "/healthz"] {
        let (status, _, body) = get(&public, path);
        assert_eq!(status, 404, "{path} on the public listener: {body}");
    }
    let (status, headers, _) = get(&service.http, "/metrics");
    assert_eq!(status, 200);
    assert!(headers.contains("strict-transport-security"), "{headers}");
    let (status, _, body) = get(&service.http, "/r/k1.AAAA.BBBB");
    assert_eq!(status, 404);
    assert!(!body.contains("This link is not valid"), "no pages on the internal listener: {body}");

    // A client that never finishes its request's header is cut off (slow loris), on both.
    for address in [&public, &service.http] {
        use std::io::{Read, Write};
        let mut slow = std::net::TcpStream::connect(address.as_str()).unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();
        slow.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let started = Instant::now();
        let mut answer = Vec::new();
        let _ = slow.read_to_end(&mut answer);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(9) && waited < Duration::from_secs(18),
            "{address}: the connection ended after {waited:?}"
        );
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
}

/// The task store's link to PostgreSQL is encrypted and the server verified: against a server
/// started with TLS on, a test CA and plain connections refused (`scripts/pg-tls.sh`), the store
/// connects with `sslmode=verify-full` and the session is TLS; a plain connection, and one that
/// trusts another CA, are refused.
#[tokio::test(flavor = "multi_thread")]
async fn the_task_store_reaches_postgresql_over_verified_tls() {
    let dir = std::env::temp_dir().join(unique("pgtls"));
    let port = free_port();
    let script = root().join("scripts/pg-tls.sh");
    let started =
        Command::new(&script).args(["start", dir.to_str().unwrap(), &port.to_string()]).output().unwrap();
    assert!(started.status.success(), "pg-tls.sh: {}", String::from_utf8_lossy(&started.stderr));
    struct Stop(std::path::PathBuf, std::path::PathBuf);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = Command::new(&self.0).args(["stop", self.1.to_str().unwrap()]).output();
            let _ = std::fs::remove_dir_all(&self.1);
        }
    }
    let _stop = Stop(script, dir.clone());
    let url = |host: &str, mode: &str, ca: &str| {
        format!(
            "postgres://postgres@{host}:{port}/postgres?sslmode={mode}&sslrootcert={}",
            dir.join(ca).display()
        )
    };
    for host in ["localhost", "127.0.0.1"] {
        let verified = url(host, "verify-full", "ca.crt");
        let store = TaskStore::connect(&verified).await.expect("the store over verified TLS");
        assert!(store.task_versions().await.unwrap().is_empty(), "migrated and readable");
        sqlx::any::install_default_drivers();
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&verified).await.unwrap();
        let row = sqlx::query(
            "SELECT (CASE WHEN ssl THEN 1 ELSE 0 END)::int8 FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(sqlx::Row::get::<i64, _>(&row, 0), 1, "the session is TLS");
    }
    let plain = TaskStore::connect(&url("localhost", "disable", "ca.crt")).await;
    assert!(plain.is_err(), "the server refuses clear text");
    let stranger = TaskStore::connect(&url("localhost", "verify-full", "other-ca.crt")).await;
    let Err(error) = stranger else { panic!("a server certificate from another CA was accepted") };
    let error = error.to_string();
    assert!(error.to_lowercase().contains("certificate") || error.contains("tls"), "{error}");
}
