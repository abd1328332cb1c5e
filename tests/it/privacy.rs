//! Personal data against the real broker and both task stores: an admin erases a customer while
//! other customers' events keep flowing; every stored trace of them is gone (tasks, versions,
//! e-mail records, command results, checkpointed state), the tasks topic carries a tombstone for
//! each of their tasks, the audit says who erased them without their id, the other customers'
//! tasks are untouched, and a restart does not bring them back. The subject-access export (API
//! and CLI) shows what is stored before, and nothing after.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use callahead::ingest::generator::{generate, StreamSpec};
use callahead::store::TaskStore;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::FutureProducer;

use crate::common::{broker, http, identity, replay, temp_sqlite, unique};
use crate::serve::{create_topics, customer_of, produce_lines, sum, PostgresDb, Service};

const ADMIN: &str = "cah_test_token_of_ada_the_admin";
const AGENT: &str = "cah_test_token_of_fox_fraud_agent";

fn start(topics: &crate::serve::Topics, group: &str, store_url: &str) -> Service {
    let tokens = format!(
        "ada:admin:{},fox:fraud_agent:{}",
        callahead::api::auth::hash_token(ADMIN),
        callahead::api::auth::hash_token(AGENT)
    );
    // Checkpoints every second: the erased customer must not come back from one.
    Service::start_with(
        broker(),
        topics,
        group,
        store_url,
        &[("CALLAHEAD_API_TOKENS", &tokens), ("CALLAHEAD_STATE_CHECKPOINT_INTERVAL_MS", "1000")],
    )
}

async fn wait_consumed(service: &Service, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while (sum(&service.metrics(), "callahead_events_consumed_total", None) as usize) < n {
        assert!(Instant::now() < deadline, "the service did not consume {n} events");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn erase_during_traffic_and_after_a_restart(store_url: &str) {
    let prefix = unique("erase");
    let topics = create_topics(&prefix).await;
    let service = start(&topics, &prefix, store_url);
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", broker()).create().expect("producer");
    let generated = generate(&StreamSpec { customers: 30, days: 64, seed: 5, scenarios: true, noise: true });
    let expected = identity(&replay(&generated.lines));
    // The victim: of the customers with a task, the one whose events end first. The stream goes
    // in its own order (a partition's event time must advance as in the replay): up to the
    // victim's last event first, the rest during the erasure.
    let last_line = |who: &str| generated.lines.iter().rposition(|l| customer_of(l) == who).unwrap();
    let victim = expected.iter().map(|(_, c, ..)| c.clone()).min_by_key(|c| last_line(c)).unwrap();
    let split = last_line(&victim) + 1;
    let (first, rest) = (generated.lines[..split].to_vec(), generated.lines[split..].to_vec());
    produce_lines(&producer, &topics.events, &first).await;
    wait_consumed(&service, first.len()).await;
    let store = TaskStore::connect(store_url).await.expect("store");
    let victims_expected = expected.iter().filter(|(_, c, ..)| *c == victim).count();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut n = 0;
        for (id, _) in store.task_versions().await.expect("tasks") {
            n += usize::from(store.task_row(&id).await.unwrap().is_some_and(|r| r.customer_id == victim));
        }
        if n == victims_expected {
            break;
        }
        assert!(Instant::now() < deadline, "{victim}: {n} of {victims_expected} tasks stored");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (status, _, report) =
        http(&service.http, "GET", &format!("/api/v1/customers/{victim}/export"), Some(ADMIN), None);
    assert_eq!(status, 200, "{report}");
    let victim_tasks: BTreeSet<String> = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task"]["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!victim_tasks.is_empty());
    let (status, _, _) =
        http(&service.http, "GET", &format!("/api/v1/customers/{victim}/export"), Some(AGENT), None);
    assert_eq!(status, 403, "only admins export");
    assert_eq!(
        http(&service.http, "POST", &format!("/api/v1/customers/{victim}/erase"), Some(AGENT), None).0,
        403,
        "only admins erase"
    );

    // The other customers' events keep flowing while the erasure is applied.
    let traffic = {
        let producer = producer.clone();
        let topic = topics.events.clone();
        let rest = rest.clone();
        tokio::spawn(async move { produce_lines(&producer, &topic, &rest).await })
    };
    let (status, _, erased) =
        http(&service.http, "POST", &format!("/api/v1/customers/{victim}/erase"), Some(ADMIN), None);
    assert_eq!((status, erased["erased"].as_bool()), (200, Some(true)), "{erased}");
    traffic.await.unwrap();
    wait_consumed(&service, first.len() + rest.len()).await;
    tokio::time::sleep(Duration::from_secs(3)).await; // a checkpoint after the erasure

    let gone = |store: TaskStore, victim: String| async move {
        assert_eq!(store.export_customer(&victim).await.unwrap(), None, "{victim} is still in the store");
    };
    gone(store.clone(), victim.clone()).await;
    // The others' tasks are all there.
    let others: BTreeSet<String> =
        expected.iter().filter(|(_, c, ..)| *c != victim).map(|(id, ..)| id.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ids: BTreeSet<String> =
            store.task_versions().await.unwrap().into_iter().map(|(id, _)| id).collect();
        if ids == others {
            break;
        }
        assert!(Instant::now() < deadline, "stored tasks differ: {:?}", ids.symmetric_difference(&others));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The audit: who erased, when, under a hash; no record names the victim.
    let (_, _, audit) = http(&service.http, "GET", "/api/v1/audit?actor=ada", Some(ADMIN), None);
    let erasure =
        audit.as_array().unwrap().iter().find(|a| a["action"] == "erase_customer").expect("audited");
    assert_eq!(erasure["task_id"].as_str().unwrap(), callahead::task::erasure_key(&victim));
    assert!(!audit.to_string().contains(&format!("\"{victim}\"")), "{audit}");
    assert_eq!(http(&service.http, "GET", &format!("/api/v1/customers/{victim}"), Some(ADMIN), None).0, 404);
    assert!(sum(&service.metrics(), "callahead_customers_erased_total", None) >= 1.0);

    // A tombstone per task on the tasks topic (null value, the customer's key).
    let reader: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker())
        .set("group.id", unique("tombstones"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    reader.subscribe(&[topics.tasks.as_str()]).expect("subscribe");
    let mut tombstoned = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while tombstoned != victim_tasks {
        assert!(Instant::now() < deadline, "tombstones {tombstoned:?} of {victim_tasks:?}");
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(1), reader.recv()).await {
            if m.payload().is_none() {
                assert_eq!(m.key().unwrap(), victim.as_bytes());
                let h = m.headers().unwrap().iter().find(|h| h.key == "task_id").unwrap();
                tombstoned.insert(String::from_utf8(h.value.unwrap().to_vec()).unwrap());
            }
        }
    }

    // A restart restores from the checkpoints: the victim does not come back.
    let status = service.stop(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    let service = start(&topics, &prefix, store_url);
    let deadline = Instant::now() + Duration::from_secs(60);
    while sum(&service.metrics(), "callahead_ready", None) < 1.0 {
        assert!(Instant::now() < deadline, "not ready after the restart");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(http(&service.http, "GET", &format!("/api/v1/customers/{victim}"), Some(ADMIN), None).0, 404);
    gone(store.clone(), victim.clone()).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callahead"))
        .args(["customers", "export", &victim])
        .env("CALLAHEAD_STORE_URL", store_url)
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("nothing is stored"));
    drop(service);
}

#[tokio::test(flavor = "multi_thread")]
async fn erasure_with_sqlite() {
    erase_during_traffic_and_after_a_restart(&temp_sqlite("erase")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn erasure_with_postgres() {
    let db = PostgresDb::create().await;
    erase_during_traffic_and_after_a_restart(&db.url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_retention_purge_deletes_what_has_outlived_its_period() {
    use callahead::command::CommandResult;
    use callahead::task::{ChangeKind, TaskChange};
    let store = TaskStore::connect(&temp_sqlite("retention")).await.unwrap();
    let generated = generate(&StreamSpec { customers: 20, days: 40, seed: 9, scenarios: true, noise: false });
    let r = callahead::replay::Replay::new(crate::common::rules());
    let mut r = r;
    for (i, l) in generated.lines.iter().enumerate() {
        r.feed(i as u64 + 1, l.as_bytes());
    }
    let (tasks, _) = r.into_tasks();
    // Half resolved long ago, half open.
    let changes: Vec<TaskChange> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut t = t.clone();
            if i % 2 == 0 {
                t.status = callahead::task::TaskStatus::Resolved;
            }
            TaskChange::by_engine(ChangeKind::Opened, t, None)
        })
        .collect();
    store.write(&changes, &[] as &[CommandResult]).await.unwrap();
    let now = callahead::api::now().0;
    let keep_all = callahead::store::Retention {
        resolved_tasks_days: 36_500,
        audit_days: 36_500,
        outreach_days: 36_500,
    };
    assert_eq!(store.purge(&keep_all, now).await.unwrap(), callahead::store::Purged::default());
    let short = callahead::store::Retention { resolved_tasks_days: 1, audit_days: 36_500, outreach_days: 1 };
    let purged = store.purge(&short, now).await.unwrap();
    let resolved = changes.iter().filter(|c| c.task.status == callahead::task::TaskStatus::Resolved).count();
    assert_eq!(purged.resolved_tasks as usize, resolved, "the resolved tasks, all from the stream's past");
    assert_eq!(store.task_versions().await.unwrap().len(), changes.len() - resolved, "open tasks stay");
    while store.seal_audit().await.unwrap() > 0 {} // the purge takes sealed rows only
    let audit = callahead::store::Retention { resolved_tasks_days: 1, audit_days: 1, outreach_days: 1 };
    assert_eq!(
        store.purge(&audit, now).await.unwrap().audit as usize,
        changes.len(),
        "the audit's own period"
    );
}

#[test]
fn the_engine_forgets_an_erased_customer_in_order_with_their_events() {
    use callahead::command::{Action, Actor, Command, Role};
    use callahead::task::ChangeKind;
    let generated = generate(&StreamSpec { customers: 10, days: 40, seed: 3, scenarios: true, noise: false });
    let mut r = callahead::replay::Replay::new(crate::common::rules());
    for (i, l) in generated.lines.iter().enumerate() {
        r.feed(i as u64 + 1, l.as_bytes());
    }
    let engine = r.engine();
    let victim = engine
        .state
        .customers
        .iter()
        .find(|e| e.incidents.as_ref().is_some_and(|i| !i.open.is_empty()))
        .map(|e| e.key().to_string())
        .expect("a customer with an open task");
    let open = engine.state.customers.get(victim.as_str()).unwrap().incidents.as_ref().unwrap().open.len();
    let erase = Command {
        command_id: "erase-1".into(),
        customer_id: victim.clone(),
        task_id: "-".into(),
        at: callahead::time::Timestamp(1_800_000_000_000),
        actor: Actor { name: "ada".into(), role: Role::Admin },
        action: Action::EraseCustomer,
    };
    let out = engine.command(0, &erase);
    assert!(engine.state.customers.get(victim.as_str()).is_none(), "forgotten");
    assert_eq!(out.changes.len(), 1);
    let marker = &out.changes[0];
    assert_eq!((marker.kind, marker.task.customer_id.as_str()), (ChangeKind::Erased, victim.as_str()));
    assert_eq!(marker.task.context.earlier_tasks.len(), open, "its open tasks, for the gauges");
    assert_eq!(marker.audit.actor, "ada");
    assert!(!marker.audit.task_id.contains(&victim));
    assert_eq!(out.results[0].customer_id, callahead::task::erasure_key(&victim), "the result names no id");
    // Erasing again (a redelivery) changes nothing more and is not refused.
    let again = engine.command(0, &erase);
    assert_eq!(again.results[0].refusal, None);
}

/// The audit's hash chain: sealed rows verify; a changed reason, a changed actor, a row removed
/// from the middle and the newest rows removed are each found, at the row; an erasure and the
/// retention purge keep the chain whole; `callahead audit verify` says so with its exit status.
async fn the_audit_chain_finds_tampering(url: &str) {
    use callahead::command::CommandResult;
    use callahead::task::{ChangeKind, TaskChange};
    let store = TaskStore::connect(url).await.unwrap();
    let generated = generate(&StreamSpec { customers: 20, days: 40, seed: 9, scenarios: true, noise: false });
    let mut r = callahead::replay::Replay::new(crate::common::rules());
    for (i, l) in generated.lines.iter().enumerate() {
        r.feed(i as u64 + 1, l.as_bytes());
    }
    let (tasks, _) = r.into_tasks();
    let changes: Vec<TaskChange> =
        tasks.iter().map(|t| TaskChange::by_engine(ChangeKind::Opened, t.clone(), None)).collect();
    assert!(changes.len() >= 6);
    store.write(&changes, &[] as &[CommandResult]).await.unwrap();
    while store.seal_audit().await.unwrap() > 0 {}
    let verify = |store: TaskStore| async move { store.verify_audit().await.unwrap() };
    let whole = verify(store.clone()).await;
    assert_eq!(
        (whole.sealed as usize, whole.broken.clone(), whole.first_seq),
        (changes.len(), None, Some(1))
    );
    let cli = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_callahead"))
            .args(["audit", "verify"])
            .env("CALLAHEAD_STORE_URL", url)
            .output()
            .unwrap()
    };
    let out = cli();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("whole"), "{out:?}");

    sqlx::any::install_default_drivers();
    let mut db = <sqlx::AnyConnection as sqlx::Connection>::connect(url).await.unwrap();
    // A reason rewritten at row 3.
    exec(&mut db, "UPDATE audit SET reason = 'nothing to see' WHERE chain_seq = 3".into()).await;
    let report = verify(store.clone()).await;
    assert_eq!(report.broken.as_ref().map(|b| b.0), Some(3), "{report:?}");
    assert!(report.broken.unwrap().3.contains("reason"));
    let out = cli();
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stdout).contains("BROKEN at row 3"),
        "{out:?}"
    );
    exec(
        &mut db,
        format!("UPDATE audit SET reason = {} WHERE chain_seq = 3", quoted(&changes[2].audit.reason)),
    )
    .await;
    assert_eq!(verify(store.clone()).await.broken, None, "restored");
    // The actor rewritten at row 2.
    exec(&mut db, "UPDATE audit SET actor = 'mallory' WHERE chain_seq = 2".into()).await;
    assert_eq!(verify(store.clone()).await.broken.map(|b| b.0), Some(2));
    exec(&mut db, "UPDATE audit SET actor = 'engine' WHERE chain_seq = 2".into()).await;
    assert_eq!(verify(store.clone()).await.broken, None, "restored");

    // An erasure replaces content but keeps the chain; so does the purge of the oldest rows.
    let customer = changes[0].task.customer_id.clone();
    let erasure = TaskChange::erasure(&customer, "ada", "admin", "erase-1", callahead::api::now());
    store.write(&[erasure], &[] as &[CommandResult]).await.unwrap();
    while store.seal_audit().await.unwrap() > 0 {}
    let report = verify(store.clone()).await;
    assert_eq!(report.broken, None, "{report:?}");
    assert!(report.erased >= 1);
    let purge =
        callahead::store::Retention { resolved_tasks_days: 36_500, audit_days: 1, outreach_days: 36_500 };
    let purged = store.purge(&purge, callahead::api::now().0).await.unwrap();
    assert_eq!(
        purged.audit as usize,
        changes.len(),
        "the stream's rows, all older than a day; not the erasure's"
    );
    let report = verify(store.clone()).await;
    assert_eq!((report.broken, report.sealed, report.first_seq), (None, 1, Some(changes.len() as i64 + 1)));

    // Removed from the middle, and the newest removed: both found.
    let more: Vec<TaskChange> = changes[..4]
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c.task.version += 10;
            c.audit.version += 10;
            c
        })
        .collect();
    store.write(&more, &[] as &[CommandResult]).await.unwrap();
    while store.seal_audit().await.unwrap() > 0 {}
    assert_eq!(verify(store.clone()).await.broken, None);
    let last = changes.len() as i64 + 1 + more.len() as i64;
    exec(&mut db, format!("DELETE FROM audit WHERE chain_seq = {}", last - 2)).await;
    assert_eq!(verify(store.clone()).await.broken.map(|b| b.0), Some(last - 1), "missing before it");
    exec(&mut db, format!("DELETE FROM audit WHERE chain_seq >= {}", last - 1)).await;
    let report = verify(store.clone()).await;
    assert!(report.broken.as_ref().is_some_and(|b| b.3.contains("newest")), "{report:?}");
}

fn quoted(text: &Option<String>) -> String {
    text.as_ref().map_or("NULL".to_string(), |t| format!("'{}'", t.replace('\'', "''")))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_chain_finds_tampering_on_sqlite() {
    the_audit_chain_finds_tampering(&temp_sqlite("chain")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_chain_finds_tampering_on_postgres() {
    let db = PostgresDb::create().await;
    the_audit_chain_finds_tampering(&db.url).await;
}

async fn exec(db: &mut sqlx::AnyConnection, q: String) {
    sqlx::query(sqlx::AssertSqlSafe(q)).execute(db).await.unwrap();
}
