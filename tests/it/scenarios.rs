//! A realistic generated stream with known incidents and tricky non-incidents: every incident is
//! found by the rule that should find it, the look-alikes page nobody, and ordinary customers
//! are (almost) never paged.

use std::sync::OnceLock;

use callahead::ingest::generator::{generate, Generated, StreamSpec};
use callahead::task::Task;

use crate::common::{replay, rules};

fn run() -> &'static (Generated, Vec<Task>) {
    static RUN: OnceLock<(Generated, Vec<Task>)> = OnceLock::new();
    RUN.get_or_init(|| {
        let g = generate(&StreamSpec { customers: 400, days: 75, seed: 11, scenarios: true, noise: true });
        let tasks = replay(&g.lines);
        (g, tasks)
    })
}

fn tasks_of<'a>(tasks: &'a [Task], customer: &str) -> Vec<&'a Task> {
    tasks.iter().filter(|t| t.customer_id == customer).collect()
}

#[test]
fn every_planted_incident_is_found_and_no_look_alike_is_paged() {
    let (g, tasks) = run();
    assert!(g.expected.len() >= 15);
    for e in &g.expected {
        let theirs = tasks_of(tasks, &e.customer_id);
        match e.rule {
            Some(rule) => assert!(
                theirs.iter().any(|t| t.rules.iter().any(|r| r == rule)),
                "{} ({}): expected a `{rule}` task, got {:?}",
                e.customer_id,
                e.scenario,
                theirs.iter().map(|t| &t.rules).collect::<Vec<_>>()
            ),
            None => assert!(
                theirs.is_empty(),
                "{} ({}): paged for a look-alike: {:#?}",
                e.customer_id,
                e.scenario,
                theirs
            ),
        }
    }
}

#[test]
fn ordinary_customers_are_rarely_paged() {
    let (_, tasks) = run();
    let ordinary = tasks.iter().filter(|t| t.customer_id.starts_with('c')).count();
    // 400 ordinary customers over 75 days with trips, foreign web shops, second cards, typos.
    assert!(
        ordinary <= 4,
        "{ordinary} tasks for ordinary customers: {:#?}",
        tasks.iter().filter(|t| t.customer_id.starts_with('c')).collect::<Vec<_>>()
    );
}

#[test]
fn the_impossible_travel_task_carries_the_story() {
    let (g, tasks) = run();
    let who = &g.expected.iter().find(|e| e.scenario.contains("Phnom Penh then Paris")).unwrap().customer_id;
    let task = tasks_of(tasks, who).into_iter().find(|t| t.queue.as_str() == "fraud").expect("fraud task");
    assert_eq!(task.priority, 1, "private customer, high severity");
    assert_eq!(task.status, callahead::task::TaskStatus::Open);
    assert!(
        task.explanation.contains("Phnom Penh") && task.explanation.contains("Paris"),
        "{}",
        task.explanation
    );
    assert!(task.explanation.contains("30 мин"), "Russian-speaking customer: {}", task.explanation);
    let facts = &task.signals[0].facts;
    assert_eq!(facts["minutes"], serde_json::json!(30.0));
    assert!(facts["distance_km"].as_f64().unwrap() > 9_000.0);
    assert!(facts["speed_kmh"].as_f64().unwrap() > 18_000.0);
    assert_eq!(task.context.language, "ru");
    assert!(task.context.profile_known);
    assert_eq!(task.context.events.len(), 2, "both payments are evidence");
    assert!(task.context.events[0].at < task.context.events[1].at);
    assert!(!task.context.recent_history.is_empty());
    assert!(task.context.actions.contains(&"block_card".to_string()));
    assert_eq!(task.due_at.millis_since(task.opened_at), 30 * 60_000, "P1 SLA is 30 minutes");
}

#[test]
fn a_task_without_profile_says_so() {
    let (g, tasks) = run();
    let who = &g.expected.iter().find(|e| e.scenario.contains("profile never arrives")).unwrap().customer_id;
    let task = tasks_of(tasks, who)[0];
    assert!(!task.context.profile_known);
    assert!(task.context.profile.is_none());
    assert_eq!(task.context.language, "en");
    // Two fraud rules for one customer enrich one task.
    assert_eq!(tasks_of(tasks, who).len(), 1);
    assert!(
        task.rules.contains(&"impossible_travel".to_string())
            && task.rules.contains(&"amount_anomaly".to_string())
    );
    assert_eq!(task.version, 1, "both rules fired on the same payment: one change");
    assert_eq!(task.signals.len(), 2);
}

#[test]
fn churn_by_silence_is_found_by_event_time_timers() {
    let (g, tasks) = run();
    let who = &g.expected.iter().find(|e| e.scenario.contains("falls silent")).unwrap().customer_id;
    let task = tasks_of(tasks, who).into_iter().find(|t| t.queue.as_str() == "care").expect("care task");
    assert!(task.explanation.contains("silent for"), "{}", task.explanation);
    assert!(task.context.events.is_empty(), "no event caused it: the stream's time did");
}

#[test]
fn replay_is_deterministic() {
    let (g, tasks) = run();
    let again = replay(&g.lines);
    let a: Vec<String> = tasks.iter().map(|t| serde_json::to_string(t).unwrap()).collect();
    let b: Vec<String> = again.iter().map(|t| serde_json::to_string(t).unwrap()).collect();
    assert_eq!(a, b);
}

/// Event time is per partition: the silent customer's timer fires by its own partition's events,
/// never because another partition's stream ran ahead (so replaying one partition from a
/// checkpoint fires it at the same point).
#[test]
fn timers_fire_by_their_own_partitions_time() {
    use callahead::engine::{Engine, EngineConfig};
    use callahead::event::decode;
    let (g, _) = run();
    let who = g.expected.iter().find(|e| e.scenario.contains("falls silent")).unwrap().customer_id.clone();
    let engine = Engine::new(EngineConfig::default());
    let care_from_timer = |partition: i32, line: &str| {
        let out = engine.process_in(partition, rules(), &decode(line.as_bytes()).unwrap());
        out.changes.iter().filter(|c| c.task.customer_id == who && c.task.queue.as_str() == "care").count()
    };
    // The silent customer's own events on partition 1, everything else on partition 2.
    let mut fired_on = Vec::new();
    for line in &g.lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let partition = if v["customer_id"] == who.as_str() { 1 } else { 2 };
        if care_from_timer(partition, line) > 0 {
            fired_on.push(partition);
        }
    }
    assert!(fired_on.is_empty(), "partition 2's time must not fire partition 1's timer: {fired_on:?}");
    // Partition 1's time moves on (a later event of another customer on it): now it fires.
    let later = r#"{"event_id":"tick","type":"complaint","customer_id":"someone","ts":"2027-01-01T00:00:00Z","category":"fees","severity":"low"}"#;
    assert_eq!(care_from_timer(1, later), 1, "the timer fires once its own partition's time passes it");
}
