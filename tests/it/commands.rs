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
