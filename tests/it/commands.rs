//! Agents' actions in `serve`, through the commands topic of a real broker, with PostgreSQL and
//! two instances in one consumer group: an action accepted by either instance is applied once,
//! by the owner of the customer's partition, in order with its events; a claim race across
//! instances has one winner; and an owner SIGKILLed between a command being accepted and being
//! applied loses nothing (the survivor takes the partition over and applies it).

use std::time::{Duration, Instant};

use callahead::ingest::generator::{generate, StreamSpec};
use callahead::store::TaskStore;
use rdkafka::config::ClientConfig;
use rdkafka::producer::FutureProducer;
use serde_json::Value;

use crate::common::{broker, http, identity, replay, unique};
use crate::serve::{create_topics, produce_lines, sum, wait_for_tasks, PostgresDb, Service};

/// Tokens provisioned from configuration (only their hashes are given to the service).
const ANA: &str = "cah_test_token_of_ana_fraud_agent";
const BEN: &str = "cah_test_token_of_ben_fraud_agent";

fn provisioned() -> String {
    let hash = |t: &str| callahead::api::auth::hash_token(t);
    format!("ana:fraud_agent:{},ben:fraud_agent:{}", hash(ANA), hash(BEN))
}

/// POSTs an action and, if the engine was slow (202), polls the command until it has a result.
fn act(address: &str, token: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let (status, _, reply) = http(address, "POST", path, Some(token), body);
    if status != 202 {
        return (status, reply);
    }
    let location = reply["location"].as_str().expect("202 says where to look").to_string();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (status, _, reply) = http(address, "GET", &location, Some(token), None);
        if status != 202 {
            return (status, reply);
        }
        assert!(Instant::now() < deadline, "command {location} never applied");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn actions_reach_the_owner_once_and_survive_its_crash() {
    let db = PostgresDb::create().await;
    let prefix = unique("cmd");
    let topics = create_topics(&prefix).await;
    let tokens = provisioned();
    let env = [
        ("CALLAHEAD_API_TOKENS", tokens.as_str()),
        ("CALLAHEAD_STATE_CHECKPOINT_INTERVAL_MS", "200"),
        ("CALLAHEAD_API_SLA_TICK_MS", "500"),
    ];
    let a = Service::start_with(broker(), &topics, &prefix, &db.url, &env);
    let b = Service::start_with(broker(), &topics, &prefix, &db.url, &env);

    let generated = generate(&StreamSpec { customers: 20, days: 64, seed: 5, scenarios: true, noise: true });
    let expected = identity(&replay(&generated.lines));
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", broker()).create().expect("producer");
    produce_lines(&producer, &topics.events, &generated.lines).await;
    let store = TaskStore::connect(&db.url).await.expect("store");
    let stored = wait_for_tasks(&store, expected.len(), Duration::from_secs(90)).await;
    assert_eq!(stored.len(), expected.len(), "tasks before any action");

    // The events are historical, so every task is overdue: the SLA tickers of both instances
    // escalate each exactly once (one step more urgent, flagged).
    let deadline = Instant::now() + Duration::from_secs(60);
    let fraud: Vec<String> = loop {
        let (_, _, page) = http(&a.http, "GET", "/api/v1/tasks?queue=fraud&limit=200", Some(ANA), None);
        let items = page["items"].as_array().unwrap().clone();
        if !items.is_empty() && items.iter().all(|t| t["escalated"] == true && t["overdue"] == true) {
            break items.iter().map(|t| t["id"].as_str().unwrap().to_string()).collect();
        }
        assert!(Instant::now() < deadline, "not every overdue task was escalated: {page}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let overdue = sum(&a.metrics(), "callahead_tasks_overdue", Some(("queue", "fraud")));
    assert_eq!(overdue as usize, fraud.len(), "the overdue gauge counts them");
    for id in &fraud {
        let audit = store.audit_of_task(id).await.expect("audit");
        let escalations: Vec<_> = audit.iter().filter(|r| r.action == "escalate").collect();
        assert_eq!(escalations.len(), 1, "{id}: {audit:#?}");
        let (before, after): (Value, Value) = (
            serde_json::from_str(escalations[0].before.as_deref().unwrap()).unwrap(),
            serde_json::from_str(&escalations[0].after).unwrap(),
        );
        let (b, a) = (before["priority"].as_i64().unwrap(), after["priority"].as_i64().unwrap());
        assert_eq!(a, (b - 1).max(1), "{id}: one step more urgent");
        assert_eq!((escalations[0].actor.as_str(), escalations[0].role.as_str()), ("sla", "system"));
    }

    // Every open fraud task, claimed by ana through instance A, whoever owns its customer.
    let (_, _, page) = http(&a.http, "GET", "/api/v1/tasks?queue=fraud&limit=200", Some(ANA), None);
    let tasks: Vec<String> =
        page["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()).collect();
    assert!(tasks.len() >= 5, "{page}");
    for id in &tasks {
        let (status, task) = act(&a.http, ANA, &format!("/api/v1/tasks/{id}/claim"), None);
        assert_eq!((status, task["work"]["assignee"].as_str()), (200, Some("ana")), "{task}");
        // Ben, through the other instance, loses the race ana already won.
        let (status, problem) = act(&b.http, BEN, &format!("/api/v1/tasks/{id}/claim"), None);
        assert_eq!((status, problem["holder"].as_str()), (409, Some("ana")), "{problem}");
    }

    // Instance B dies without a word; ana resolves every task through A at once. Commands for
    // B's partitions wait on the topic until A takes them over and restores their customers.
    b.kill();
    let note = r#"{"outcome":"confirmed_fraud","note":"card blocked with the customer on the phone"}"#;
    for id in &tasks {
        let (status, task) = act(&a.http, ANA, &format!("/api/v1/tasks/{id}/resolve"), Some(note));
        assert_eq!((status, task["status"].as_str()), (200, Some("resolved")), "{id}: {task}");
    }

    // Applied exactly once each: one claim and one resolve in every audit trail.
    for id in &tasks {
        let audit = store.audit_of_task(id).await.expect("audit");
        let count = |action: &str| audit.iter().filter(|r| r.action == action).count();
        assert_eq!((count("claim"), count("resolve")), (1, 1), "{id}: {audit:#?}");
        let versions: Vec<i64> = audit.iter().map(|r| r.version).collect();
        assert!(versions.windows(2).all(|w| w[1] == w[0] + 1), "{id}: {versions:?}");
    }
    let (_, _, rules) = http(&a.http, "GET", "/api/v1/rules", Some(ANA), None);
    let resolved: i64 = rules.as_array().unwrap().iter().map(|r| r["resolved"].as_i64().unwrap()).sum();
    assert!(resolved >= tasks.len() as i64, "{rules}");
    assert!(a.stop(Duration::from_secs(30)).success());
}

/// Whoever can produce to the commands topic cannot act: a command without a signature, under a
/// key the service does not have, or with a MAC that does not match its payload is
/// dead-lettered with the reason, audited under the actor it claims, and never applied; the
/// same command signed with the configured key is applied.
#[tokio::test(flavor = "multi_thread")]
async fn unsigned_and_forged_commands_are_refused_and_audited() {
    use callahead::outreach::links::LinkKey;
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
    use rdkafka::producer::FutureRecord;

    const SUE: &str = "cah_test_token_of_sue_supervisor";
    let prefix = unique("signed");
    let topics = create_topics(&prefix).await;
    let tokens = format!("{},sue:supervisor:{}", provisioned(), callahead::api::auth::hash_token(SUE));
    let store_url = crate::common::temp_sqlite("signed");
    let service =
        Service::start_with(broker(), &topics, &prefix, &store_url, &[("CALLAHEAD_API_TOKENS", &tokens)]);
    let generated = generate(&StreamSpec { customers: 10, days: 40, seed: 5, scenarios: true, noise: false });
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", broker()).create().expect("producer");
    produce_lines(&producer, &topics.events, &generated.lines).await;
    let store = TaskStore::connect(&store_url).await.unwrap();
    let stored = wait_for_tasks(&store, 1, Duration::from_secs(90)).await;
    let row = store.task_row(&stored[0].0).await.unwrap().unwrap();
    let claim = |who: &str| {
        serde_json::json!({"command_id": unique("forged"), "customer_id": row.customer_id, "task_id": row.id,
            "at": "2026-12-06T10:00:00Z", "actor": {"name": who, "role": "supervisor"}, "action": {"type": "claim"}})
        .to_string()
    };
    let send = |payload: String, headers: Option<OwnedHeaders>| {
        let producer = producer.clone();
        let (topic, key) = (topics.commands.clone(), row.customer_id.clone());
        async move {
            let record = FutureRecord::to(&topic).key(&key).payload(&payload);
            let record = match headers {
                Some(h) => record.headers(h),
                None => record,
            };
            producer.send(record, Duration::from_secs(10)).await.expect("produced");
        }
    };
    let signed = |key: &LinkKey, mac_of: &str| {
        OwnedHeaders::new().insert(Header { key: "callahead-kid", value: Some(key.kid.as_str()) }).insert(
            Header {
                key: "callahead-mac",
                value: Some(callahead::bus::sign(key, mac_of.as_bytes()).as_str()),
            },
        )
    };
    let ours = LinkKey::parse(crate::serve::TEST_COMMAND_KEY).unwrap();
    let stranger = LinkKey::random("t1"); // the same key id, another secret
    send(claim("mallory"), None).await;
    send(claim("mallory"), Some(signed(&stranger, &claim("x")))).await;
    send(claim("mallory"), Some(signed(&LinkKey::random("zz"), "x"))).await;
    let tampered = claim("mallory");
    send(tampered.clone(), Some(signed(&ours, &tampered.replace("mallory", "ana")))).await;

    // Four dead letters, each with its reason.
    let dead: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker())
        .set("group.id", unique("dead"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    dead.subscribe(&[topics.dead.as_str()]).unwrap();
    let mut reasons = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while reasons.len() < 4 {
        assert!(Instant::now() < deadline, "dead letters: {reasons:?}");
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(1), dead.recv()).await {
            let h = m.headers().unwrap().iter().find(|h| h.key == "callahead.reason").unwrap();
            reasons.push(String::from_utf8(h.value.unwrap().to_vec()).unwrap());
        }
    }
    reasons.sort();
    assert_eq!(
        reasons,
        ["bad_command_signature", "bad_command_signature", "unknown_command_key", "unsigned_command"]
    );
    let after = store.task_row(&row.id).await.unwrap().unwrap();
    assert_eq!((after.version, after.assignee), (row.version, None), "never applied");
    let (_, _, audit) = http(&service.http, "GET", "/api/v1/audit?actor=mallory", Some(SUE), None);
    let refused = audit.as_array().unwrap().iter().filter(|a| a["action"] == "command_refused").count();
    assert_eq!(refused, 4, "{audit}");

    // The same command, signed with the configured key: applied.
    let genuine = claim("ana");
    send(genuine.clone(), Some(signed(&ours, &genuine))).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = store.task_row(&row.id).await.unwrap().unwrap();
        if now.assignee.as_deref() == Some("ana") {
            break;
        }
        assert!(Instant::now() < deadline, "a signed command was not applied");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(sum(&service.metrics(), "callahead_dead_letters_total", None) >= 4.0);
}
