//! End-to-end benchmark of `callahead serve` against a real Kafka-protocol broker.
//!
//! Run it with `scripts/bench-e2e.sh` (which starts the broker and builds the release binary).
//! It prints, in one run on the same topic data:
//! - the ceiling: a consume-only client with the service's rdkafka settings reading N messages;
//! - the service's sustained throughput over the same N messages (from its first to its last
//!   consumed event, read from `/metrics`), with the store given by `STORE` (`sqlite` or
//!   `postgres`);
//! - latency from produce to task durable and published (`callahead_end_to_end_seconds`), p50
//!   and p99, while producing at a steady `RATE` events/s for `SECONDS` seconds.
//!
//! Environment: `KAFKA_TEST_BOOTSTRAP` (required), `STORE` (sqlite), `EVENTS` (200000),
//! `RATE` (10000), `SECONDS` (20).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use callahead::ingest::generator::{generate, StreamSpec};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn http_get(address: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(address).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// Sum of a metric's samples (all label sets) in Prometheus text.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>()
        + 0.0 // an empty float sum is -0.0
}

/// A quantile from a Prometheus histogram's cumulative buckets (linear within a bucket).
fn quantile(text: &str, name: &str, q: f64) -> f64 {
    let mut buckets: Vec<(f64, f64)> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{name}_bucket{{")))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((le, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last().map(|b| b.1).unwrap_or(0.0);
    let target = q * total;
    let (mut prev_le, mut prev_count) = (0.0, 0.0);
    for (le, count) in buckets {
        if count >= target {
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

async fn create_topics(bootstrap: &str, names: &[&str]) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("admin");
    let topics: Vec<NewTopic<'_>> =
        names.iter().map(|n| NewTopic::new(n, 1, TopicReplication::Fixed(1))).collect();
    for r in admin.create_topics(&topics, &AdminOptions::new()).await.expect("create topics") {
        r.expect("topic");
    }
}

struct Service(Child, String);

impl Service {
    fn start(bootstrap: &str, prefix: &str, store_url: &str) -> Service {
        let http = format!(
            "127.0.0.1:{}",
            std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
        );
        let bin = std::env::var("CALLAHEAD_BIN").unwrap_or_else(|_| "target/release/callahead".into());
        let child = Command::new(bin)
            .arg("serve")
            .env("CALLAHEAD_KAFKA_BROKERS", bootstrap)
            .env("CALLAHEAD_KAFKA_GROUP_ID", prefix)
            .env("CALLAHEAD_KAFKA_INPUT_TOPICS", format!("{prefix}-events"))
            .env("CALLAHEAD_KAFKA_TASKS_TOPIC", format!("{prefix}-tasks"))
            .env("CALLAHEAD_KAFKA_DEAD_LETTER_TOPIC", format!("{prefix}-dead"))
            .env("CALLAHEAD_KAFKA_CLIENT_SESSION_TIMEOUT_MS", "6000")
            .env("CALLAHEAD_STORE_URL", store_url)
            .env("CALLAHEAD_HTTP_LISTEN", &http)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the release binary (cargo build --release)");
        Service(child, http)
    }

    fn metrics(&self) -> String {
        http_get(&self.1, "/metrics").unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn store_url(kind: &str, prefix: &str) -> String {
    match kind {
        "postgres" => {
            let db = prefix.replace('-', "_");
            let status = Command::new("psql")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-d",
                    "test",
                    "-q",
                    "-c",
                    &format!("CREATE DATABASE {db}"),
                ])
                .status()
                .expect("psql");
            assert!(status.success(), "cannot create database {db}");
            format!("postgres://postgres@127.0.0.1:5432/{db}")
        }
        _ => format!("sqlite://{}", std::env::temp_dir().join(format!("{prefix}.db")).display()),
    }
}

async fn produce(producer: &FutureProducer, topic: &str, lines: &[(String, String)]) {
    let pending: Vec<_> = lines
        .iter()
        .map(|(k, l)| {
            producer
                .send(FutureRecord::to(topic).key(k.as_str()).payload(l.as_bytes()), Duration::from_secs(60))
        })
        .collect();
    for p in pending {
        p.await.expect("produce");
    }
}

#[tokio::main]
async fn main() {
    let bootstrap =
        std::env::var("KAFKA_TEST_BOOTSTRAP").expect("KAFKA_TEST_BOOTSTRAP (use scripts/bench-e2e.sh)");
    let store = env_or("STORE", "sqlite");
    let n: usize = env_or("EVENTS", "200000").parse().expect("EVENTS");
    let rate: usize = env_or("RATE", "10000").parse().expect("RATE");
    let seconds: u64 = env_or("SECONDS", "20").parse().expect("SECONDS");

    let generated =
        generate(&StreamSpec { customers: n / 60 + 100, days: 30, seed: 1, scenarios: false, noise: false });
    let keyed: Vec<(String, String)> = generated
        .lines
        .into_iter()
        .take(n)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            (v["customer_id"].as_str().unwrap().to_string(), l)
        })
        .collect();
    let n = keyed.len();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("linger.ms", "1")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");

    // Throughput: the same N messages read by a consume-only client, then by the service.
    let prefix = unique("bench");
    create_topics(
        &bootstrap,
        &[&format!("{prefix}-events"), &format!("{prefix}-tasks"), &format!("{prefix}-dead")],
    )
    .await;
    produce(&producer, &format!("{prefix}-events"), &keyed).await;
    println!(
        "produced {n} events ({:.0} bytes on average)",
        keyed.iter().map(|(_, l)| l.len()).sum::<usize>() as f64 / n as f64
    );

    let ceiling = {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", unique("ceiling"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.offset.store", "false")
            .set("fetch.queue.backoff.ms", "1")
            .set("fetch.wait.max.ms", "10")
            .set("session.timeout.ms", "6000");
        for kv in std::env::var("CONSUMER_SETTINGS").unwrap_or_default().split(',').filter(|s| !s.is_empty())
        {
            let (k, v) = kv.split_once('=').expect("k=v");
            config.set(k, v);
        }
        let consumer: StreamConsumer = config.create().expect("consumer");
        consumer.subscribe(&[&format!("{prefix}-events")]).unwrap();
        let _first = consumer.recv().await.expect("first message");
        let started = Instant::now();
        for _ in 1..n {
            consumer.recv().await.expect("message");
        }
        (n - 1) as f64 / started.elapsed().as_secs_f64()
    };
    println!("ceiling (consume-only, same settings): {ceiling:.0} events/s");

    let service = Service::start(&bootstrap, &prefix, &store_url(&store, &prefix));
    let mut first: Option<(Instant, f64)> = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    let throughput = loop {
        let consumed = metric(&service.metrics(), "callahead_events_consumed_total");
        if consumed > 0.0 && first.is_none() {
            first = Some((Instant::now(), consumed));
        }
        if consumed as usize >= n {
            let (t0, c0) = first.expect("started");
            break (consumed - c0) / t0.elapsed().as_secs_f64().max(1e-3);
        }
        assert!(Instant::now() < deadline, "service too slow: {consumed} of {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let text = service.metrics();
    println!(
        "service ({store} store): {throughput:.0} events/s sustained = {:.2} x ceiling; {} tasks written",
        throughput / ceiling,
        metric(&text, "callahead_task_changes_total")
    );
    drop(service);

    // Latency at a steady rate.
    let prefix = unique("latency");
    create_topics(
        &bootstrap,
        &[&format!("{prefix}-events"), &format!("{prefix}-tasks"), &format!("{prefix}-dead")],
    )
    .await;
    let service = Service::start(&bootstrap, &prefix, &store_url(&store, &prefix));
    produce(&producer, &format!("{prefix}-events"), &keyed[..1]).await;
    while metric(&service.metrics(), "callahead_events_consumed_total") < 1.0 {
        tokio::time::sleep(Duration::from_millis(50)).await; // group joined, first batch done
    }
    let total = (rate as u64 * seconds) as usize;
    let topic = format!("{prefix}-events");
    let started = Instant::now();
    let mut sent = 1usize;
    let mut pending = Vec::new();
    while sent < total.min(n) {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as usize + 1;
        while sent < due.min(n) {
            let (k, l) = &keyed[sent];
            pending.push(producer.send(
                FutureRecord::to(&topic).key(k.as_str()).payload(l.as_bytes()),
                Duration::from_secs(60),
            ));
            sent += 1;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
    for p in pending {
        p.await.expect("produce");
    }
    let achieved = sent as f64 / started.elapsed().as_secs_f64();
    while (metric(&service.metrics(), "callahead_events_consumed_total") as usize) < sent {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = service.metrics();
    let name = "callahead_end_to_end_seconds";
    println!(
        "latency produce -> task durable at {achieved:.0} events/s ({store} store, {sent} events): p50 {:.1} ms, p99 {:.1} ms",
        quantile(&text, name, 0.5) * 1e3,
        quantile(&text, name, 0.99) * 1e3
    );
}
