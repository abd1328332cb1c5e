//! End-to-end benchmark of `callahead serve` against a real Kafka-protocol broker.
//!
//! Run it with `scripts/bench-e2e.sh` (which starts the broker, builds the release binary and
//! runs this once per task store). One run prints, for the store given by `STORE`:
//!
//! 1. **Throughput** (`throughput`). `EVENTS` events of the generated mix (with `TASK_PERCENT`%
//!    of the physical card payments followed by an impossible-travel use, so tasks are written)
//!    are produced into a fresh topic, batched by the producer, as a backlog. On that topic:
//!    - the ceiling: a consume-only client with the service's librdkafka consumer settings
//!      (and the same overrides) reads all of them, copying each message out as the service
//!      does; it runs before and after the service and the faster run counts;
//!    - the service reads them; its rate runs from its first consumed event to the last event
//!      made durable (`callahead_end_to_end_seconds_count`, observed after each batch's store
//!      commit; the outbox relay publishes beside it).
//!
//!    Then where the service's time went, from its stage histograms
//!    (`callahead_batch_stage_seconds`, `callahead_state_checkpoint_seconds`): the stages run at
//!    once, so each stage's busy time against the wall time (per worker, for decode and engine)
//!    says how close it is to being the bottleneck.
//!    `PERF=FILE` also records a CPU profile of the service over this run (`perf record -g`).
//! 2. **Latency floor** (`floor`). At `RATE` events/s for `SECONDS` s (paced every millisecond),
//!    a consume-only client with the service's settings: broker timestamp to receipt. What the
//!    broker and the consumer settings cost before the service does anything.
//! 3. **Latency** (`latency`). The same pacing into a fresh topic read by a fresh service; its
//!    histogram of broker timestamp → task changes durable gives p50, p99 and the
//!    bucket that holds the maximum. The broker timestamp is the producer's create time, taken
//!    when the bench hands the event to librdkafka, so producer linger and the broker's append
//!    count. The producer's acknowledgement latency (1 in 50 sampled), the per-batch stage means
//!    and the state checkpoints (written in the background) are printed alongside.
//! 4. **Take-over** (`takeover`, not in the default phases): static members killed with SIGKILL
//!    while events flow: restarted with the same instance id, and failed over to a second
//!    instance (see `takeover`).
//!
//! Environment:
//! - `KAFKA_TEST_BOOTSTRAP` (required), `STORE` (`sqlite` or `postgres`; default `sqlite`),
//! - `EVENTS` (200000), `RATE` (10000), `SECONDS` (10), `PARTITIONS` of the input topic (1),
//!   `TASK_PERCENT` (1), `PHASES` (`throughput,floor,latency`),
//! - `LINGER_MS` of the bench's producer in the paced phases (1),
//! - `PG_URL` (`postgres://postgres@127.0.0.1:5432/test`): where to create a scratch database,
//! - `CALLAHEAD_BIN` (default: the `callahead` release binary of the same target directory),
//! - `PERF`: see above,
//! - every other `CALLAHEAD_*` variable is passed to the service (for example
//!   `CALLAHEAD_KAFKA_BATCH_SIZE=5000`), and `CALLAHEAD_KAFKA_CLIENT_*` librdkafka overrides apply
//!   to the ceiling and floor consumers too, so all read with the same settings.
//!
//! About the test broker (Tansu 0.6.0, memory storage). A fetch reads the partition one stored
//! record batch at a time, with an overhead per fetch that grows with the partition's number of
//! batches, and a fetch that cannot finish within the request's `fetch.wait.max.ms` returns no
//! records; librdkafka then asks again for the same offset, forever. A topic of one-event
//! batches (what the first version of this bench produced: `FutureProducer::send` is lazy, and
//! awaiting each future in turn sends one event per round trip) makes every 10 ms fetch come
//! back empty once the partition holds ~15-30k batches; `fetch.wait.max.ms=2` does it even on a
//! steady 10k events/s topic. Hence events are handed to librdkafka with `send_result` and
//! batched. Tansu also does not answer a waiting fetch when data arrives: a fetch that finds
//! nothing waits out `fetch.wait.max.ms` and returns empty, so that setting is the latency
//! floor here (not on Apache Kafka, which answers as soon as data arrives).

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use callahead::ingest::generator::{generate, StreamSpec};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn env_num<T: std::str::FromStr>(name: &str, default: &str) -> T {
    env_or(name, default).parse().unwrap_or_else(|_| panic!("{name} must be a number"))
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// librdkafka overrides given to the service (`CALLAHEAD_KAFKA_CLIENT_FETCH_WAIT_MAX_MS=…` is
/// `fetch.wait.max.ms`), applied to the ceiling consumer as well.
fn client_overrides() -> Vec<(String, String)> {
    std::env::vars()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix("CALLAHEAD_KAFKA_CLIENT_")?;
            Some((key.to_ascii_lowercase().replace('_', "."), v))
        })
        .collect()
}

fn http_get(address: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(address).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// A scrape of `/metrics`.
struct Scrape(String);

impl Scrape {
    /// (labels, value) of every sample of `name` (labels as written, `""` if none).
    fn samples(&self, name: &str) -> Vec<(String, f64)> {
        self.0
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let rest = l.strip_prefix(name)?;
                let (labels, value) = if let Some(r) = rest.strip_prefix('{') {
                    let (labels, value) = r.split_once("} ")?;
                    (labels.to_string(), value)
                } else {
                    (String::new(), rest.strip_prefix(' ')?)
                };
                Some((labels, value.trim().parse().ok()?))
            })
            .collect()
    }

    /// Sum of a metric's samples over all label sets.
    fn sum(&self, name: &str) -> f64 {
        self.samples(name).iter().map(|s| s.1).sum::<f64>() + 0.0 // an empty sum is -0.0
    }

    /// A histogram's cumulative buckets, (upper bound, count), ascending.
    fn buckets(&self, name: &str) -> Vec<(f64, f64)> {
        let mut b: Vec<(f64, f64)> = self
            .samples(&format!("{name}_bucket"))
            .into_iter()
            .filter_map(|(labels, count)| {
                let le = labels.split("le=\"").nth(1)?.split('"').next()?;
                Some((if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? }, count))
            })
            .collect();
        b.sort_by(|x, y| x.0.total_cmp(&y.0));
        b
    }

    /// Sum and count of a histogram for each value of `label`.
    fn by_label(&self, name: &str, label: &str) -> BTreeMap<String, (f64, f64)> {
        let mut out: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        for (suffix, sum) in [("_sum", true), ("_count", false)] {
            for (labels, v) in self.samples(&format!("{name}{suffix}")) {
                let Some(value) =
                    labels.split(&format!("{label}=\"")).nth(1).and_then(|r| r.split('"').next())
                else {
                    continue;
                };
                let e = out.entry(value.to_string()).or_default();
                if sum {
                    e.0 += v
                } else {
                    e.1 += v
                }
            }
        }
        out
    }
}

/// Cumulative buckets of `after` less those of `before` (same bounds).
fn bucket_delta(after: &[(f64, f64)], before: &[(f64, f64)]) -> Vec<(f64, f64)> {
    after
        .iter()
        .map(|&(le, c)| (le, c - before.iter().find(|b| b.0 == le).map(|b| b.1).unwrap_or(0.0)))
        .collect()
}

/// A quantile from cumulative buckets (linear within a bucket).
fn quantile(buckets: &[(f64, f64)], q: f64) -> f64 {
    let total = buckets.last().map(|b| b.1).unwrap_or(0.0);
    let target = q * total;
    let (mut prev_le, mut prev_count) = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= target && count > 0.0 {
            if le.is_infinite() {
                return prev_le;
            }
            let frac = if count > prev_count { (target - prev_count) / (count - prev_count) } else { 1.0 };
            return prev_le + frac * (le - prev_le);
        }
        (prev_le, prev_count) = (le, count);
    }
    f64::NAN
}

/// The bucket holding the largest observation: (lower bound, upper bound).
fn max_bucket(buckets: &[(f64, f64)]) -> (f64, f64) {
    let total = buckets.last().map(|b| b.1).unwrap_or(0.0);
    let mut prev = 0.0;
    for &(le, count) in buckets {
        if count >= total {
            return (prev, le);
        }
        prev = le;
    }
    (prev, f64::INFINITY)
}

fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

async fn create_topics(bootstrap: &str, names: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("admin");
    let topics: Vec<NewTopic<'_>> =
        names.iter().map(|(n, p)| NewTopic::new(n, *p, TopicReplication::Fixed(1))).collect();
    for r in admin.create_topics(&topics, &AdminOptions::new()).await.expect("create topics") {
        r.expect("topic");
    }
}

struct Service {
    child: Child,
    http: String,
    log: std::path::PathBuf,
}

impl Service {
    fn start(bootstrap: &str, prefix: &str, store_url: &str) -> Service {
        Service::start_named(bootstrap, prefix, store_url, None, "service")
    }

    /// A service of group `prefix`, logging to `<tmp>/<prefix>-<name>.log`; with `instance`, a
    /// static member of that id (`group.instance.id`).
    fn start_named(
        bootstrap: &str,
        prefix: &str,
        store_url: &str,
        instance: Option<&str>,
        name: &str,
    ) -> Service {
        let http = format!(
            "127.0.0.1:{}",
            std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
        );
        // Default: the release binary next to this bench's (<target>/release/deps/e2e-…).
        let bin = std::env::var("CALLAHEAD_BIN").unwrap_or_else(|_| {
            let exe = std::env::current_exe().expect("bench path");
            let release = exe.parent().and_then(|deps| deps.parent()).expect("target/release");
            release.join("callahead").display().to_string()
        });
        let log = std::env::temp_dir().join(format!("{prefix}-{name}.log"));
        let mut command = Command::new(&bin);
        command.arg("serve");
        if let Some(id) = instance {
            command.env("CALLAHEAD_KAFKA_CLIENT_GROUP_INSTANCE_ID", format!("{prefix}-{id}"));
        }
        // The service refuses unknown CALLAHEAD_* variables: pass on only its own.
        for (k, _) in std::env::vars() {
            if k == "CALLAHEAD_BIN" || k.starts_with("CALLAHEAD_TEST_") {
                command.env_remove(&k);
            }
        }
        let child = command
            .env("CALLAHEAD_KAFKA_BROKERS", bootstrap)
            .env("CALLAHEAD_KAFKA_GROUP_ID", prefix)
            .env("CALLAHEAD_KAFKA_INPUT_TOPICS", format!("{prefix}-events"))
            .env("CALLAHEAD_KAFKA_TASKS_TOPIC", format!("{prefix}-tasks"))
            .env("CALLAHEAD_KAFKA_DEAD_LETTER_TOPIC", format!("{prefix}-dead"))
            .env("CALLAHEAD_KAFKA_COMMANDS_TOPIC", format!("{prefix}-commands"))
            .env("CALLAHEAD_KAFKA_ACTIONS_TOPIC", format!("{prefix}-actions"))
            // Instances of one run share the key that signs commands.
            .env("CALLAHEAD_KAFKA_COMMAND_KEYS", "b1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
            .env("CALLAHEAD_KAFKA_CLIENT_SESSION_TIMEOUT_MS", "6000")
            .env("CALLAHEAD_STORE_URL", store_url)
            .env("CALLAHEAD_HTTP_LISTEN", &http)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("service log"))
            .spawn()
            .unwrap_or_else(|e| {
                let _ = std::fs::remove_file(&log);
                panic!("cannot start {bin} (build it: cargo build --release): {e}")
            });
        Service { child, http, log }
    }

    fn scrape(&mut self) -> Scrape {
        if let Ok(Some(status)) = self.child.try_wait() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            panic!(
                "the service exited ({status}); last lines of {}:\n{}",
                self.log.display(),
                tail.join("\n")
            );
        }
        Scrape(http_get(&self.http, "/metrics").unwrap_or_default())
    }

    /// Events whose task changes are durable (observed after each batch).
    fn durable(&mut self) -> f64 {
        self.scrape().sum("callahead_end_to_end_seconds_count")
    }

    /// Waits until `n` events are durable; panics after `patience` without progress.
    async fn wait_durable(&mut self, n: usize, patience: Duration) -> Instant {
        let (mut last, mut since) = (-1.0, Instant::now());
        loop {
            let done = self.durable();
            if done as usize >= n {
                return Instant::now();
            }
            if done > last {
                (last, since) = (done, Instant::now());
            }
            assert!(
                since.elapsed() < patience,
                "no progress for {patience:?}: {done} of {n} events durable (service log {})",
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A scratch task store, removed when dropped.
struct Store {
    url: String,
    cleanup: Option<Box<dyn FnOnce()>>,
}

impl Store {
    fn create(kind: &str, prefix: &str) -> Store {
        match kind {
            "postgres" => {
                let admin = env_or("PG_URL", "postgres://postgres@127.0.0.1:5432/test");
                let db = prefix.replace('-', "_");
                let base =
                    admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or_else(|| admin.clone());
                let psql = move |sql: String| {
                    let status = Command::new("psql")
                        .args([admin.as_str(), "-q", "-v", "ON_ERROR_STOP=1", "-c", &sql])
                        .status()
                        .expect("psql");
                    assert!(status.success(), "psql failed: {sql}");
                };
                psql(format!("CREATE DATABASE {db}"));
                Store {
                    url: format!("{base}/{db}"),
                    cleanup: Some(Box::new(move || {
                        psql(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                    })),
                }
            }
            "sqlite" => {
                let path = std::env::temp_dir().join(format!("{prefix}.db"));
                let url = format!("sqlite://{}", path.display());
                Store {
                    url,
                    cleanup: Some(Box::new(move || {
                        for suffix in ["", "-wal", "-shm", "-state", "-state-wal", "-state-shm"] {
                            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                        }
                    })),
                }
            }
            other => panic!("STORE={other}: expected sqlite or postgres"),
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(f) = self.cleanup.take() {
            f();
        }
    }
}

fn producer(bootstrap: &str, linger_ms: u32) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", linger_ms.to_string())
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .create()
        .expect("producer")
}

/// Hands one event to librdkafka now (not when awaited), waiting while its queue is full.
async fn send(producer: &FutureProducer, topic: &str, key: &str, payload: &str) -> DeliveryFuture {
    let mut record = FutureRecord::to(topic).key(key).payload(payload);
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return delivery,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err((e, _)) => panic!("produce: {e}"),
        }
    }
}

async fn acknowledged(deliveries: Vec<DeliveryFuture>) {
    for d in deliveries {
        d.await.expect("delivery").map_err(|(e, _)| e).expect("produce");
    }
}

/// The service's librdkafka consumer settings (src/ingest/kafka.rs), plus the overrides.
fn consumer_like_service(bootstrap: &str, group: &str) -> StreamConsumer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("fetch.queue.backoff.ms", "1")
        .set("fetch.wait.max.ms", "10")
        .set("session.timeout.ms", "6000");
    for (k, v) in client_overrides() {
        config.set(k, v);
    }
    config.create().expect("consumer")
}

/// Consume-only: reads `n` messages (copying each out, as the service's batching does) and
/// returns events/s from the first message to the last.
async fn ceiling(bootstrap: &str, topic: &str, n: usize) -> f64 {
    let consumer = consumer_like_service(bootstrap, &unique("ceiling"));
    consumer.subscribe(&[topic]).unwrap();
    let patience = Duration::from_secs(30);
    let next = |i: usize| {
        let consumer = &consumer;
        async move {
            match tokio::time::timeout(patience, consumer.recv()).await {
                Ok(m) => m.expect("message").detach(),
                Err(_) => panic!(
                    "ceiling consumer: no message for {patience:?} after {i} of {n} (the broker returns \
                     empty fetches; see the module doc)"
                ),
            }
        }
    };
    let mut bytes = next(0).await.payload().map_or(0, <[u8]>::len);
    let started = Instant::now();
    for i in 1..n {
        bytes += next(i).await.payload().map_or(0, <[u8]>::len);
    }
    let rate = (n - 1) as f64 / started.elapsed().as_secs_f64();
    assert!(bytes > 0);
    rate
}

/// `n` events of the generated mix (65% card payments, 32% logins, transfers, profiles, support
/// contacts), keyed by customer id. The generated stream alone opens almost no tasks (9 in 250k
/// events), which would leave the task store out of the benchmark: after `percent`% of the
/// physical card payments, a second use of the same card 10 minutes later on another continent
/// is inserted, which the `impossible_travel` rule turns into a task (or enriches the open one;
/// its 6 h cooldown suppresses repeats).
fn events_with_incidents(n: usize, percent: f64) -> Vec<(String, String)> {
    use time::format_description::well_known::Rfc3339;
    let generated =
        generate(&StreamSpec { customers: n / 60 + 100, days: 30, seed: 1, scenarios: false, noise: false });
    let mut rng = fastrand::Rng::with_seed(1);
    let mut out = Vec::with_capacity(n);
    for line in generated.lines {
        if out.len() >= n {
            break;
        }
        let v: serde_json::Value = serde_json::from_str(&line).expect("generated JSON");
        let customer = v["customer_id"].as_str().expect("customer_id").to_string();
        let physical = v["type"] == "card_transaction" && v["channel"] != "ecommerce";
        let inject = physical && rng.f64() * 100.0 < percent;
        out.push((customer.clone(), line));
        if inject && out.len() < n {
            let mut w = v.clone();
            let ts = time::OffsetDateTime::parse(v["ts"].as_str().expect("ts"), &Rfc3339).expect("ts");
            let far_east = v["merchant"]["lon"].as_f64().unwrap_or(0.0) < 60.0;
            let (city, country, lat, lon) = if far_east {
                ("Sydney", "AU", -33.8688, 151.2093)
            } else {
                ("Paris", "FR", 48.8566, 2.3522)
            };
            w["event_id"] = format!("{}-far", v["event_id"].as_str().expect("event_id")).into();
            w["ts"] = (ts + time::Duration::minutes(10)).format(&Rfc3339).expect("ts").into();
            w["channel"] = "card_present".into();
            w["merchant"]["city"] = city.into();
            w["merchant"]["country"] = country.into();
            w["merchant"]["lat"] = lat.into();
            w["merchant"]["lon"] = lon.into();
            w["merchant"]["name"] = "Far Away Shop".into();
            out.push((customer, w.to_string()));
        }
    }
    out
}

#[tokio::main]
async fn main() {
    let bootstrap =
        std::env::var("KAFKA_TEST_BOOTSTRAP").expect("KAFKA_TEST_BOOTSTRAP (use scripts/bench-e2e.sh)");
    let store_kind = env_or("STORE", "sqlite");
    let n: usize = env_num("EVENTS", "200000");
    let rate: usize = env_num("RATE", "10000");
    let seconds: f64 = env_num("SECONDS", "10");
    let partitions: i32 = env_num("PARTITIONS", "1");
    let linger: u32 = env_num("LINGER_MS", "1");
    let task_percent: f64 = env_num("TASK_PERCENT", "1");
    let phases = env_or("PHASES", "throughput,floor,latency");

    let keyed = events_with_incidents(n, task_percent);
    let n = keyed.len();
    let overrides = client_overrides();
    println!(
        "store {store_kind}; {n} events, {:.0} bytes on average, {task_percent}% with an injected impossible \
         travel; input partitions {partitions}; consumer overrides {overrides:?}",
        keyed.iter().map(|(_, l)| l.len()).sum::<usize>() as f64 / n as f64
    );

    if phases.contains("throughput") {
        throughput(&bootstrap, &store_kind, &keyed, partitions).await;
    }
    if phases.contains("floor") {
        latency_floor(&bootstrap, &keyed, partitions, rate, seconds, linger).await;
    }
    if phases.contains("latency") {
        latency(&bootstrap, &store_kind, &keyed, partitions, rate, seconds, linger).await;
    }
    if phases.contains("takeover") {
        takeover(&bootstrap, &store_kind, &keyed).await;
    }
}

/// Waits until `done(service)` holds (polled every 20 ms); the time it took, or `None` after
/// `patience`.
async fn until(
    service: &mut Service,
    patience: Duration,
    done: impl Fn(&Scrape) -> bool,
) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < patience {
        if done(&service.scrape()) {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// Phase 4, take-over (`takeover`). Two input partitions, a steady 2,000 events/s, the session
/// timeout the services run with (`CALLAHEAD_KAFKA_CLIENT_SESSION_TIMEOUT_MS`, 6 s here unless
/// overridden); each part on topics and a store of its own. Times run from the kill.
///
/// - Restart: instance `a`, a static member (`group.instance.id`), is SIGKILLed and started
///   again with the same id: how long until it processes again.
/// - Failover: dynamic members `a` and `b` share the partitions; `b` is SIGKILLed for good: how
///   long until `a` owns both and processes `b`'s. Dynamic, because Tansu 0.6.0 drops a dead
///   static member without a rebalance, so its partitions would stay unowned (docs/operating.md).
async fn takeover(bootstrap: &str, store_kind: &str, keyed: &[(String, String)]) {
    restart_with_same_id(bootstrap, store_kind, keyed).await;
    failover(bootstrap, store_kind, keyed).await;
}

/// A take-over part's world: topics with two input partitions, a store, and a producer sending
/// 2,000 events/s for 90 s in the background.
struct TakeoverWorld {
    prefix: String,
    store: Store,
    producing: tokio::task::JoinHandle<usize>,
}

impl TakeoverWorld {
    async fn create(bootstrap: &str, store_kind: &str, keyed: &[(String, String)]) -> TakeoverWorld {
        let prefix = unique("takeover");
        let events = format!("{prefix}-events");
        let (tasks, dead) = (format!("{prefix}-tasks"), format!("{prefix}-dead"));
        let commands = format!("{prefix}-commands");
        let actions = format!("{prefix}-actions");
        create_topics(bootstrap, &[(&events, 2), (&commands, 2), (&tasks, 1), (&dead, 1), (&actions, 1)])
            .await;
        let store = Store::create(store_kind, &prefix);
        let paced = producer(bootstrap, 1);
        let feed: Vec<(String, String)> = keyed.to_vec();
        let producing =
            tokio::spawn(async move { produce_paced(&paced, &events, &feed, 2_000, 90.0).await.sent });
        TakeoverWorld { prefix, store, producing }
    }

    fn start(&self, bootstrap: &str, instance: Option<&str>, name: &str) -> Service {
        Service::start_named(bootstrap, &self.prefix, &self.store.url, instance, name)
    }
}

fn owns(n: f64) -> impl Fn(&Scrape) -> bool {
    move |s: &Scrape| s.sum("callahead_partitions_owned") >= n
}

fn durable_past(n: f64) -> impl Fn(&Scrape) -> bool {
    move |s: &Scrape| s.sum("callahead_end_to_end_seconds_count") > n
}

async fn restart_with_same_id(bootstrap: &str, store_kind: &str, keyed: &[(String, String)]) {
    let world = TakeoverWorld::create(bootstrap, store_kind, keyed).await;
    let mut a = world.start(bootstrap, Some("a"), "a");
    let joined = until(&mut a, Duration::from_secs(120), owns(2.0)).await.expect("a joins");
    until(&mut a, Duration::from_secs(60), durable_past(2_000.0)).await.expect("a processes");
    println!(
        "take-over ({store_kind}), static member: a joined and owned both partitions after {:.1} s",
        joined.as_secs_f64()
    );
    let _ = a.child.kill(); // SIGKILL: no leave, no checkpoint
    let _ = a.child.wait();
    let killed = Instant::now();
    let mut a = world.start(bootstrap, Some("a"), "a-again");
    match until(&mut a, Duration::from_secs(120), durable_past(0.0)).await {
        Some(_) => println!(
            "  SIGKILL, then restarted with the same instance id: processing again {:.1} s after the kill \
             (restore included)",
            killed.elapsed().as_secs_f64()
        ),
        None => println!("  SIGKILL and restart: not processing 120 s after the kill"),
    }
    world.producing.abort();
}

async fn failover(bootstrap: &str, store_kind: &str, keyed: &[(String, String)]) {
    let world = TakeoverWorld::create(bootstrap, store_kind, keyed).await;
    let mut a = world.start(bootstrap, None, "a");
    let joined = until(&mut a, Duration::from_secs(120), owns(2.0)).await.expect("a joins");
    until(&mut a, Duration::from_secs(60), durable_past(2_000.0)).await.expect("a processes");
    let mut b = world.start(bootstrap, None, "b");
    let Some(shared) = until(&mut b, Duration::from_secs(120), owns(1.0)).await else {
        println!("  failover: b never got a partition; not measured");
        return;
    };
    println!(
        "take-over ({store_kind}), dynamic members: a owned both partitions after {:.1} s; b joined \
         and got one after {:.1} s",
        joined.as_secs_f64(),
        shared.as_secs_f64()
    );
    until(&mut b, Duration::from_secs(60), durable_past(500.0)).await.expect("b processes");
    let before = a.scrape().sum("callahead_end_to_end_seconds_count");
    let _ = b.child.kill();
    let _ = b.child.wait();
    let killed = Instant::now();
    let owned = until(&mut a, Duration::from_secs(120), owns(2.0)).await;
    let at_owned = a.scrape().sum("callahead_end_to_end_seconds_count");
    let processing = until(&mut a, Duration::from_secs(60), durable_past(at_owned + 1_000.0)).await;
    match (owned, processing) {
        (Some(o), Some(_)) => println!(
            "  SIGKILL of b (never restarted): a owned b's partition {:.1} s after the kill, and had made {:.0} \
             more events durable {:.1} s after it",
            o.as_secs_f64(),
            a.scrape().sum("callahead_end_to_end_seconds_count") - before,
            killed.elapsed().as_secs_f64()
        ),
        _ => println!("  SIGKILL of b: a did not take over within 120 s"),
    }
    world.producing.abort();
}

/// 1. Throughput over a backlog, the ceiling first and last on the same topic.
async fn throughput(bootstrap: &str, store_kind: &str, keyed: &[(String, String)], partitions: i32) {
    let (bootstrap, n) = (bootstrap.to_string(), keyed.len());
    let prefix = unique("bench");
    let events = format!("{prefix}-events");
    let (tasks, dead) = (format!("{prefix}-tasks"), format!("{prefix}-dead"));
    let commands = format!("{prefix}-commands");
    let actions = format!("{prefix}-actions");
    create_topics(
        &bootstrap,
        &[(&events, partitions), (&commands, partitions), (&tasks, 1), (&dead, 1), (&actions, 1)],
    )
    .await;
    let bulk = producer(&bootstrap, 5);
    let t = Instant::now();
    let mut deliveries = Vec::with_capacity(n);
    for (k, l) in keyed {
        deliveries.push(send(&bulk, &events, k, l).await);
    }
    acknowledged(deliveries).await;
    println!("produced {n} events in {:.2} s (batched, linger.ms=5)", t.elapsed().as_secs_f64());

    let ceiling_before = ceiling(&bootstrap, &events, n).await;
    let store = Store::create(store_kind, &prefix);
    let mut service = Service::start(&bootstrap, &prefix, &store.url);
    // PERF=FILE: sample the service's CPU (all threads, call graphs) while it reads the backlog.
    let profiler = std::env::var("PERF").ok().map(|path| {
        let perf = Command::new("perf")
            .args(["record", "-e", "cpu-clock", "-F", "1999", "-g", "-o", &path, "-p"])
            .arg(service.child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("perf");
        (perf, path)
    });
    let (t0, c0) = loop {
        let consumed = service.scrape().sum("callahead_events_consumed_total");
        if consumed > 0.0 {
            break (Instant::now(), consumed);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let t1 = service.wait_durable(n, Duration::from_secs(60)).await;
    if let Some((mut perf, path)) = profiler {
        let _ = Command::new("kill").args(["-INT", &perf.id().to_string()]).status();
        let _ = perf.wait();
        println!("profile of the service over the throughput run: perf report -i {path}");
    }
    let wall = (t1 - t0).as_secs_f64();
    let throughput = (n as f64 - c0) / wall;
    let text = service.scrape();
    drop(service);
    let ceiling_after = ceiling(&bootstrap, &events, n).await;
    let ceiling = ceiling_before.max(ceiling_after);
    println!(
        "ceiling (consume-only, service settings): {ceiling:.0} events/s (runs: {ceiling_before:.0} before, \
         {ceiling_after:.0} after)"
    );
    println!(
        "service ({store_kind}): {throughput:.0} events/s = {:.2} x ceiling (target >= 0.80); {} task changes",
        throughput / ceiling,
        text.sum("callahead_task_changes_total")
    );

    // Where the time went. The stages run at once (fetch; decode and engine on the workers; the
    // durable stage; the relay), so each stage's busy time against the wall time says how close
    // it is to being the bottleneck: the slowest stage sets the rate.
    let stages = text.by_label("callahead_batch_stage_seconds", "stage");
    let workers: f64 = std::env::var("CALLAHEAD_ENGINE_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .filter(|w| *w > 0.0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64));
    let shares = stages.get("engine").map(|s| s.1).unwrap_or(0.0);
    println!(
        "  {shares:.0} worker shares of batches, {:.0} events each on average; wall {wall:.3} s; {workers} engine \
         workers; busy time per stage (stages overlap):",
        n as f64 / shares.max(1.0),
    );
    for (stage, (sum, count)) in &stages {
        let per_thread =
            if stage == "decode" || stage == "engine" { workers.min(partitions as f64) } else { 1.0 };
        println!(
            "  {stage:<28} {:>7.3} s {:>5.1}% of one thread{}  {:>7.2} ms per share or batch",
            sum,
            100.0 * sum / wall / per_thread,
            if per_thread > 1.0 { format!(" (each of {per_thread})") } else { String::new() },
            1e3 * sum / count.max(1.0)
        );
    }
    let checkpoints = text.sum("callahead_state_checkpoint_seconds_sum");
    if checkpoints > 0.0 {
        println!(
            "  {:<28} {:>7.3} s {:>5.1}%  (state checkpoints written in the background, {:.0} of them)",
            "checkpoint",
            checkpoints,
            100.0 * checkpoints / wall,
            text.sum("callahead_state_checkpoint_seconds_count")
        );
    }
    drop(store);
}

/// What a paced run sent.
struct Paced {
    /// Events sent, the warm-up one excluded.
    sent: usize,
    achieved: f64,
    /// Producer acknowledgement latencies (1 in 50), seconds, sorted.
    acks: Vec<f64>,
    longest_tick: Duration,
}

/// Produces `keyed[1..]` into `topic` at `rate` events/s for `seconds` (every millisecond, the
/// events due by then), and waits for every acknowledgement.
async fn produce_paced(
    producer: &FutureProducer,
    topic: &str,
    keyed: &[(String, String)],
    rate: usize,
    seconds: f64,
) -> Paced {
    let total = ((rate as f64 * seconds) as usize + 1).min(keyed.len());
    let acks: Arc<Mutex<Vec<f64>>> = Arc::new(Mutex::new(Vec::new()));
    let mut deliveries = Vec::with_capacity(total);
    let started = Instant::now();
    let mut sent = 1usize;
    let mut longest_tick = Duration::ZERO;
    while sent < total {
        let due = ((started.elapsed().as_secs_f64() * rate as f64) as usize + 1).min(total);
        while sent < due {
            let (k, l) = &keyed[sent];
            let t = Instant::now();
            let delivery = send(producer, topic, k, l).await;
            if sent % 50 == 0 {
                let acks = acks.clone();
                tokio::spawn(async move {
                    if let Ok(Ok(_)) = delivery.await {
                        acks.lock().unwrap().push(t.elapsed().as_secs_f64());
                    }
                });
            } else {
                deliveries.push(delivery);
            }
            sent += 1;
        }
        let tick = Instant::now();
        tokio::time::sleep(Duration::from_millis(1)).await;
        longest_tick = longest_tick.max(tick.elapsed());
    }
    let achieved = (sent - 1) as f64 / started.elapsed().as_secs_f64();
    acknowledged(deliveries).await;
    tokio::time::sleep(Duration::from_millis(100)).await; // the sampled acknowledgements
    let mut acks = acks.lock().unwrap().clone();
    acks.sort_by(f64::total_cmp);
    Paced { sent: sent - 1, achieved, acks, longest_tick }
}

/// 2a. The latency floor at a steady rate: a consume-only client with the service's settings,
/// broker timestamp to receipt. What the broker and the consumer settings alone cost.
async fn latency_floor(
    bootstrap: &str,
    keyed: &[(String, String)],
    partitions: i32,
    rate: usize,
    seconds: f64,
    linger: u32,
) {
    let paced_producer = producer(bootstrap, linger);
    let topic = format!("{}-events", unique("floor"));
    create_topics(bootstrap, &[(&topic, partitions)]).await;
    let consumer = consumer_like_service(bootstrap, &unique("floor"));
    consumer.subscribe(&[topic.as_str()]).unwrap();
    acknowledged(vec![send(&paced_producer, &topic, &keyed[0].0, &keyed[0].1).await]).await;
    tokio::time::timeout(Duration::from_secs(60), consumer.recv())
        .await
        .expect("group join")
        .expect("message");
    let expected = ((rate as f64 * seconds) as usize).min(keyed.len() - 1);
    let reader = tokio::spawn(async move {
        let mut delays = Vec::with_capacity(expected);
        while delays.len() < expected {
            let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
                .await
                .expect("the floor consumer stalled")
                .expect("message");
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
                as i64;
            let ts = m.timestamp().to_millis().expect("timestamp");
            delays.push((now - ts).max(0) as f64 / 1e3);
        }
        delays.sort_by(f64::total_cmp);
        delays
    });
    let run = produce_paced(&paced_producer, &topic, keyed, rate, seconds).await;
    let floor = reader.await.expect("floor reader");
    println!(
        "latency floor (consume-only, service settings) at {:.0} events/s: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms \
         (timestamps in whole ms)",
        run.achieved,
        exact_quantile(&floor, 0.5) * 1e3,
        exact_quantile(&floor, 0.99) * 1e3,
        floor.last().copied().unwrap_or(f64::NAN) * 1e3,
    );
}

/// 2b. Latency at a steady rate: the service on a fresh topic.
async fn latency(
    bootstrap: &str,
    store_kind: &str,
    keyed: &[(String, String)],
    partitions: i32,
    rate: usize,
    seconds: f64,
    linger: u32,
) {
    let bootstrap = bootstrap.to_string();
    let paced_producer = producer(&bootstrap, linger);
    // The service.
    let prefix = unique("latency");
    let events = format!("{prefix}-events");
    let (tasks, dead) = (format!("{prefix}-tasks"), format!("{prefix}-dead"));
    let commands = format!("{prefix}-commands");
    let actions = format!("{prefix}-actions");
    create_topics(
        &bootstrap,
        &[(&events, partitions), (&commands, partitions), (&tasks, 1), (&dead, 1), (&actions, 1)],
    )
    .await;
    let store = Store::create(store_kind, &prefix);
    let mut service = Service::start(&bootstrap, &prefix, &store.url);
    // Warm up: one event through, so the group is joined and the store is open.
    acknowledged(vec![send(&paced_producer, &events, &keyed[0].0, &keyed[0].1).await]).await;
    service.wait_durable(1, Duration::from_secs(60)).await;
    let before = service.scrape().buckets("callahead_end_to_end_seconds");
    let run = produce_paced(&paced_producer, &events, keyed, rate, seconds).await;
    service.wait_durable(run.sent + 1, Duration::from_secs(60)).await;
    let text = service.scrape();
    let latency = bucket_delta(&text.buckets("callahead_end_to_end_seconds"), &before);
    let (max_lo, max_hi) = max_bucket(&latency);
    println!(
        "latency produce -> task durable at {:.0} events/s for {:.1} s ({store_kind}, {} events): p50 {:.1} ms, \
         p99 {:.1} ms, max in ({:.0}, {:.0}] ms (target p99 < 25 ms)",
        run.achieved,
        run.sent as f64 / run.achieved,
        run.sent,
        quantile(&latency, 0.5) * 1e3,
        quantile(&latency, 0.99) * 1e3,
        max_lo * 1e3,
        max_hi * 1e3,
    );
    println!(
        "  producer acknowledgement (linger.ms={linger}, 1 in 50): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
         longest pacing tick {:.1} ms",
        exact_quantile(&run.acks, 0.5) * 1e3,
        exact_quantile(&run.acks, 0.99) * 1e3,
        run.acks.last().copied().unwrap_or(f64::NAN) * 1e3,
        run.longest_tick.as_secs_f64() * 1e3
    );
    let stages = text.by_label("callahead_batch_stage_seconds", "stage");
    let batches = stages.get("engine").map(|s| s.1).unwrap_or_default();
    print!(
        "  {} task changes; {batches:.0} batches ({:.1} events each);",
        text.sum("callahead_task_changes_total"),
        run.sent as f64 / batches.max(1.0)
    );
    for (stage, (sum, count)) in &stages {
        print!(" {stage} {:.2} ms", 1e3 * sum / count.max(1.0));
    }
    println!(" per batch on average");
    let checkpoints = text.sum("callahead_state_checkpoint_seconds_count");
    if checkpoints > 0.0 {
        let (lo, hi) = max_bucket(&text.buckets("callahead_state_checkpoint_seconds"));
        println!(
            "  {checkpoints:.0} state checkpoints (written in the background): {:.1} ms each on average, longest in \
             ({:.0}, {:.0}] ms",
            1e3 * text.sum("callahead_state_checkpoint_seconds_sum") / checkpoints,
            lo * 1e3,
            hi * 1e3
        );
    }
    drop(service);
    drop(store);
}
