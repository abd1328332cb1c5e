//! Fault injection against the real broker and both stores: state survives SIGKILL and follows
//! its partitions between instances; a database outage holds back offsets and loses nothing.
//!
//! Every test compares the service's tasks with a replay of the same stream through one engine
//! that never crashed: the same task ids exactly (nothing lost, nothing doubled, no task id
//! reused after a restart), the same rules behind each (baselines were not reset, so no
//! anomaly is missed or invented after a restore).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use callahead::ingest::generator::{generate, StreamSpec};
use callahead::store::TaskStore;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};

use crate::common::{broker, free_port, http_get, identity, replay, temp_sqlite, unique};
use crate::serve::{create_topics, produce_lines, sum, wait_for_tasks, PostgresDb, Service, Topics};

type Expected = Vec<(String, String, &'static str, Vec<String>)>;

/// The generated stream with an impossible-travel pair spliced in around `split`: a payment in
/// Phnom Penh just before it, one in Paris 30 minutes later (event time) just after it.
fn stream_with_travel_pair(seed: u64, split: f64) -> (Vec<String>, usize) {
    let generated = generate(&StreamSpec { customers: 30, days: 64, seed, scenarios: true, noise: true });
    let mut lines = generated.lines;
    let at = (lines.len() as f64 * split) as usize;
    let v: serde_json::Value = serde_json::from_str(&lines[at]).unwrap();
    let t1 = time::OffsetDateTime::parse(
        v["ts"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let t2 = t1 + time::Duration::minutes(30);
    let fmt = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap();
    let pay = |id: &str, ts: String, city: &str, country: &str, lat: f64, lon: f64| {
        format!(
            r#"{{"event_id":"{id}","type":"card_transaction","customer_id":"traveller","ts":"{ts}","card_id":"tc1","amount":80.0,"currency":"EUR","channel":"card_present","status":"approved","merchant":{{"name":"Shop {city}","country":"{country}","city":"{city}","lat":{lat},"lon":{lon}}}}}"#
        )
    };
    lines.insert(at, pay("tr-1", fmt(t1), "Phnom Penh", "KH", 11.56, 104.92));
    lines.insert(at + 1, pay("tr-2", fmt(t2), "Paris", "FR", 48.86, 2.35));
    (lines, at + 1) // lines[..split] ends with Phnom Penh; lines[split..] starts with Paris
}

fn expected_of(lines: &[String]) -> Expected {
    let expected = identity(&replay(lines));
    assert!(
        expected
            .iter()
            .any(|(_, c, q, r)| c == "traveller" && *q == "fraud" && r.iter().any(|r| r.contains("travel"))),
        "the spliced pair is an impossible-travel incident in a replay: {expected:?}"
    );
    expected
}

fn producer() -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", broker())
        .set("linger.ms", "5")
        .set("message.timeout.ms", "120000")
        .create()
        .expect("producer")
}

/// Events consumed by the instances, summed from their metrics.
fn consumed(services: &[&Service]) -> usize {
    services.iter().map(|s| sum(&s.metrics(), "callahead_events_consumed_total", None) as usize).sum()
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The service's tasks equal the replay's: ids exactly, and the rules behind each.
async fn assert_tasks_match(store: &TaskStore, expected: &Expected) {
    let stored = wait_for_tasks(store, expected.len(), Duration::from_secs(120)).await;
    // A little longer: a doubled or extra task would show up now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stored = if stored.len() == expected.len() { store.task_versions().await.unwrap() } else { stored };
    let stored_ids: BTreeSet<&str> = stored.iter().map(|(id, _)| id.as_str()).collect();
    let expected_ids: BTreeSet<&str> = expected.iter().map(|(id, ..)| id.as_str()).collect();
    let missing: Vec<_> = expected_ids.difference(&stored_ids).collect();
    let extra: Vec<_> = stored_ids.difference(&expected_ids).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing tasks {missing:?}, extra tasks {extra:?}");
    for (id, _, queue, rules) in expected {
        let (_, body) = store.task(id).await.unwrap().unwrap();
        let task: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(task["queue"], *queue, "{id}");
        let mut got: Vec<String> =
            task["rules"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect();
        got.sort();
        assert_eq!(&got, rules, "{id}: the same rules as a replay that never crashed");
    }
}

const FAST_CHECKPOINTS: (&str, &str) = ("CALLAHEAD_STATE_CHECKPOINT_INTERVAL_MS", "200");

/// SIGKILL mid-stream, restart: the impossible-travel pair straddling the crash is detected,
/// and every task exists exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_and_restart_restores_state() {
    let prefix = unique("kill");
    let topics = create_topics(&prefix).await;
    let store_url = temp_sqlite(&prefix);
    let (lines, split) = stream_with_travel_pair(11, 0.5);
    let expected = expected_of(&lines);
    let producer = producer();

    let first = Service::start_with(broker(), &topics, &prefix, &store_url, &[FAST_CHECKPOINTS]);
    let early = split - 300;
    produce_lines(&producer, &topics.events, &lines[..early]).await;
    wait_until("the first part consumed", Duration::from_secs(60), || consumed(&[&first]) >= early);
    wait_until("a checkpoint", Duration::from_secs(10), || {
        sum(&first.metrics(), "callahead_state_checkpointed_customers_total", None) > 0.0
    });
    // The rest of the first half (with the Phnom Penh payment last), then the crash as soon as
    // it is applied: some of it is probably not checkpointed yet.
    produce_lines(&producer, &topics.events, &lines[early..split]).await;
    wait_until("the first half consumed", Duration::from_secs(60), || consumed(&[&first]) >= split);
    first.kill();

    let second = Service::start_with(broker(), &topics, &prefix, &store_url, &[FAST_CHECKPOINTS]);
    let m = second.metrics();
    assert!(
        sum(&m, "callahead_state_restored_customers_total", None) >= 30.0,
        "the restarted instance restored the customers"
    );
    produce_lines(&producer, &topics.events, &lines[split..]).await;
    let store = TaskStore::connect(&store_url).await.expect("store");
    assert_tasks_match(&store, &expected).await;
    assert_eq!(
        sum(&second.metrics(), "callahead_tasks_open", None) as usize,
        expected.len(),
        "open tasks restored with their customers are counted"
    );
    assert!(second.stop(Duration::from_secs(30)).success());

    // The operator's view of the stored state, and a reset.
    let state = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_callahead"))
            .arg("state")
            .args(args)
            .env("CALLAHEAD_STORE_URL", &store_url)
            .env("CALLAHEAD_KAFKA_GROUP_ID", &prefix)
            .output()
            .expect("callahead state");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string())
    };
    let (ok, shown) = state(&["show"]);
    assert!(ok, "{shown}");
    for p in 0..3 {
        assert!(shown.contains(&format!("partition {p:>4}:")), "{shown}");
    }
    let total: usize = lines.len();
    assert!(shown.contains(&format!("\"{}\"", topics.events)), "offsets are shown: {shown}");
    assert!(!shown.contains("total: 0 customers"), "{shown} (stream of {total})");
    assert!(!state(&["reset"]).0, "reset needs --yes");
    assert!(state(&["reset", "--yes"]).0);
    assert!(state(&["show"]).1.contains("total: 0 customers"));
}

/// Three instances in one group over three partitions: one is SIGKILLed mid-stream, a new one
/// joins (scale up), another leaves gracefully (scale down); partitions move each time and
/// their state moves with them.
#[tokio::test(flavor = "multi_thread")]
async fn instances_come_and_go_and_state_follows_partitions() {
    let prefix = unique("group");
    let topics = create_topics(&prefix).await;
    let db = PostgresDb::create().await;
    let (lines, _) = stream_with_travel_pair(12, 0.45);
    let expected = expected_of(&lines);
    let producer = producer();
    let n = lines.len();
    let cut = |f: f64| (n as f64 * f) as usize;

    let start = |_: &str| Service::start_with(broker(), &topics, &prefix, &db.url, &[FAST_CHECKPOINTS]);
    let a = start("a");
    let b = start("b");
    let c = start("c");
    produce_lines(&producer, &topics.events, &lines[..cut(0.3)]).await;
    wait_until("the first part consumed", Duration::from_secs(90), || consumed(&[&a, &b, &c]) >= cut(0.3));
    std::thread::sleep(Duration::from_millis(500));

    b.kill(); // a crash: a and c take over its partitions after the session timeout
    produce_lines(&producer, &topics.events, &lines[cut(0.3)..cut(0.55)]).await;
    let d = start("d"); // scale up
    produce_lines(&producer, &topics.events, &lines[cut(0.55)..cut(0.75)]).await;
    std::thread::sleep(Duration::from_secs(2));
    assert!(a.stop(Duration::from_secs(60)).success(), "a graceful leave"); // scale down
    produce_lines(&producer, &topics.events, &lines[cut(0.75)..]).await;

    let store = TaskStore::connect(&db.url).await.expect("store");
    assert_tasks_match(&store, &expected).await;
    let restored: f64 =
        [&c, &d].iter().map(|s| sum(&s.metrics(), "callahead_state_restored_customers_total", None)).sum();
    assert!(restored > 0.0, "moved partitions were restored, not started cold");
    assert!(c.stop(Duration::from_secs(60)).success());
    assert!(d.stop(Duration::from_secs(60)).success());
}

/// A TCP proxy in front of PostgreSQL that can cut every connection and refuse new ones.
struct CuttableProxy {
    address: String,
    down: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl CuttableProxy {
    async fn start(upstream: &'static str) -> CuttableProxy {
        let address = format!("127.0.0.1:{}", free_port());
        let listener = tokio::net::TcpListener::bind(&address).await.unwrap();
        let down = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (flag, conns) = (down.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if flag.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns.lock().unwrap().push(task);
            }
        });
        CuttableProxy { address, down, connections }
    }

    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for c in self.connections.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

/// The group's committed offsets on the input topic, summed over partitions.
fn committed(group: &str, topics: &Topics) -> i64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker())
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    for p in 0..3 {
        list.add_partition(&topics.events, p);
    }
    let got = c.committed_offsets(list, Duration::from_secs(10)).expect("committed offsets");
    got.elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .sum()
}

/// PostgreSQL unreachable for a while: the service reports not ready, commits no offset past
/// what is durable, and once the database is back ends with exactly the expected tasks.
#[tokio::test(flavor = "multi_thread")]
async fn database_outage_holds_offsets_and_loses_nothing() {
    let prefix = unique("dbdown");
    let topics = create_topics(&prefix).await;
    let db = PostgresDb::create().await;
    let proxy = CuttableProxy::start("127.0.0.1:5432").await;
    let (lines, split) = stream_with_travel_pair(13, 0.4);
    let expected = expected_of(&lines);
    let producer = producer();

    let service =
        Service::start_with(broker(), &topics, &prefix, &db.url_via(&proxy.address), &[FAST_CHECKPOINTS]);
    produce_lines(&producer, &topics.events, &lines[..split]).await;
    wait_until("the first part consumed", Duration::from_secs(60), || consumed(&[&service]) >= split);

    proxy.cut();
    produce_lines(&producer, &topics.events, &lines[split..]).await;
    wait_until("not ready while the database is down", Duration::from_secs(30), || {
        matches!(http_get(&service.http, "/readyz"), Ok((503, _)))
    });
    std::thread::sleep(Duration::from_millis(1500)); // a commit already under way lands
    let held = committed(&prefix, &topics);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(committed(&prefix, &topics), held, "no offset committed while nothing can be made durable");
    assert!(
        (held as usize) < lines.len(),
        "offsets stopped short of the stream's end ({held} of {})",
        lines.len()
    );

    proxy.restore();
    let store = TaskStore::connect(&db.url).await.expect("store");
    assert_tasks_match(&store, &expected).await;
    wait_until("ready again", Duration::from_secs(30), || {
        matches!(http_get(&service.http, "/readyz"), Ok((200, _)))
    });

    // Shutdown is bounded even with the database gone: events that cannot be made durable hold
    // the loop, and SIGTERM still ends the process within its budget (30 s), committing nothing.
    proxy.cut();
    let more: Vec<String> = (0..20)
        .map(|i| {
            format!(
                r#"{{"event_id":"late-{i}","type":"complaint","customer_id":"late-{i}","ts":"2026-08-20T10:00:00Z","category":"fees","severity":"high"}}"#
            )
        })
        .collect();
    let before = committed(&prefix, &topics);
    produce_lines(&producer, &topics.events, &more).await;
    wait_until("not ready again", Duration::from_secs(30), || {
        matches!(http_get(&service.http, "/readyz"), Ok((503, _)))
    });
    let started = Instant::now();
    service.stop(Duration::from_secs(45));
    assert!(started.elapsed() < Duration::from_secs(40), "bounded shutdown took {:?}", started.elapsed());
    assert_eq!(committed(&prefix, &topics), before, "nothing undurable was committed at shutdown");
}

/// An instance that lost a partition without noticing cannot overwrite its new owner's state.
async fn fencing_on(store_url: &str) {
    use callahead::store::{PartitionCheckpoint, StoreError};
    let store = TaskStore::connect(store_url).await.expect("store");
    let group = unique("fence");
    let at = |offset: i64| PartitionCheckpoint {
        offsets: [("events".to_string(), offset)].into(),
        newest: offset,
    };
    let row = |body: &[u8]| vec![(Box::<str>::from("c1"), body.to_vec())];
    let old_owner = store.claim_partition(&group, 4).await.unwrap();
    store.save_checkpoint(&group, 4, old_owner, &at(10), &row(b"old")).await.unwrap();
    let new_owner = store.claim_partition(&group, 4).await.unwrap();
    assert!(new_owner > old_owner);
    store.save_checkpoint(&group, 4, new_owner, &at(20), &row(b"new")).await.unwrap();
    let refused = store.save_checkpoint(&group, 4, old_owner, &at(15), &row(b"stale")).await;
    assert!(matches!(refused, Err(StoreError::Fenced { partition: 4, .. })), "{refused:?}");
    let (checkpoint, rows) = store.read_checkpoint(&group, 4).await.unwrap().unwrap();
    assert_eq!(checkpoint, at(20), "the new owner's offsets stand");
    assert_eq!(rows, vec![("c1".to_string(), b"new".to_vec())], "and its rows, untouched by the stale write");
}

#[tokio::test(flavor = "multi_thread")]
async fn fencing_with_sqlite() {
    fencing_on(&temp_sqlite("fence")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fencing_with_postgres() {
    let db = PostgresDb::create().await;
    fencing_on(&db.url).await;
}

/// The checkpoint after customers expired deletes their rows with the offsets, and only under
/// the writer's epoch; the other rows stay.
async fn expired_rows_are_deleted_on(store_url: &str) {
    use callahead::store::{PartitionCheckpoint, StoreError};
    let store = TaskStore::connect(store_url).await.expect("store");
    let group = unique("expire");
    let at = |offset: i64| PartitionCheckpoint {
        offsets: [("events".to_string(), offset)].into(),
        newest: offset,
    };
    let row = |id: &str, body: &[u8]| (Box::<str>::from(id), body.to_vec());
    let epoch = store.claim_partition(&group, 2).await.unwrap();
    store.save_checkpoint(&group, 2, epoch, &at(10), &[row("idle", b"a"), row("busy", b"b")]).await.unwrap();
    store
        .save_checkpoint_removing(&group, 2, epoch, &at(20), &[row("busy", b"b2")], &["idle".into()])
        .await
        .unwrap();
    let (checkpoint, rows) = store.read_checkpoint(&group, 2).await.unwrap().unwrap();
    assert_eq!(checkpoint, at(20));
    assert_eq!(rows, vec![("busy".to_string(), b"b2".to_vec())], "the expired customer's row is gone");
    assert_eq!(store.customer_state(&group, "idle").await.unwrap(), None);

    let newer = store.claim_partition(&group, 2).await.unwrap();
    assert!(newer > epoch);
    let refused = store.save_checkpoint_removing(&group, 2, epoch, &at(30), &[], &["busy".into()]).await;
    assert!(matches!(refused, Err(StoreError::Fenced { partition: 2, .. })), "{refused:?}");
    assert!(store.customer_state(&group, "busy").await.unwrap().is_some(), "a fenced writer deletes nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_rows_are_deleted_with_sqlite() {
    expired_rows_are_deleted_on(&temp_sqlite("expire")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_rows_are_deleted_with_postgres() {
    let db = PostgresDb::create().await;
    expired_rows_are_deleted_on(&db.url).await;
}
