//! Outcomes teach the engine: a trip resolved as `legitimate` does not page again when the same
//! pattern recurs, a confirmed payment becomes part of the customer's normal, and a resolved
//! task is closed in the engine (the next signal opens a new incident, never enriches the old
//! one). Each case has a control customer whose task ended otherwise, so the test fails if the
//! second pattern would not have paged anyway.

use callahead::command::{Action, Actor, Command, Role};
use callahead::replay::Replay;
use callahead::task::{Outcome, Task};
use callahead::time::Timestamp;
use callahead::vocab::Queue;

use crate::common::rules;

#[allow(clippy::too_many_arguments)]
fn card(
    id: &str,
    customer: &str,
    ts: &str,
    amount: f64,
    city: &str,
    country: &str,
    lat: f64,
    lon: f64,
) -> String {
    format!(
        r#"{{"event_id":"{id}","type":"card_transaction","customer_id":"{customer}","ts":"{ts}","card_id":"{customer}-k1",
        "amount":{amount},"currency":"EUR","channel":"contactless","status":"approved",
        "merchant":{{"name":"Shop {city}","mcc":"5812","country":"{country}","city":"{city}","lat":{lat},"lon":{lon}}}}}"#
    )
    .replace('\n', "")
}

/// Phnom Penh, then Paris 30 minutes later, on day `day` of July 2026.
fn trip(customer: &str, day: u32) -> Vec<String> {
    vec![
        card(
            &format!("{customer}-pp-{day}"),
            customer,
            &format!("2026-07-{day:02}T09:00:00+07:00"),
            12.0,
            "Phnom Penh",
            "KH",
            11.5564,
            104.9282,
        ),
        card(
            &format!("{customer}-par-{day}"),
            customer,
            &format!("2026-07-{day:02}T04:30:00+02:00"),
            45.0,
            "Paris",
            "FR",
            48.8606,
            2.3376,
        ),
    ]
}

fn feed(r: &mut Replay<'_>, lines: &[String]) {
    for (i, l) in lines.iter().enumerate() {
        r.feed(i as u64 + 1, l.as_bytes());
    }
}

fn open_fraud_task(r: &Replay<'_>, customer: &str) -> Option<Task> {
    let state = r.engine().state.customers.get(customer)?;
    state.incidents.as_ref()?.open.iter().find(|t| t.queue == Queue::Fraud).cloned()
}

fn act(r: &Replay<'_>, task: &Task, actor: Actor, action: Action, at: &str) -> callahead::engine::Processed {
    let command = Command {
        command_id: format!("{}-{}-{}", action.name(), task.id, at),
        customer_id: task.customer_id.clone(),
        task_id: task.id.clone(),
        at: Timestamp::parse_rfc3339(at).unwrap(),
        actor,
        action,
    };
    r.engine().command(0, &command)
}

fn ana() -> Actor {
    Actor { name: "ana".into(), role: Role::FraudAgent }
}

/// Ana claims the task and resolves it with `outcome`.
fn resolve(r: &Replay<'_>, task: &Task, outcome: Outcome, at: &str) {
    let claimed = act(r, task, ana(), Action::Claim, at);
    assert_eq!(claimed.results[0].refusal, None, "{:?}", claimed.results);
    let out = act(r, task, ana(), Action::Resolve { outcome, note: "called the customer".into() }, at);
    assert_eq!(out.results[0].refusal, None, "{:?}", out.results);
    assert_eq!(out.changes.len(), 1);
}

/// The customer's one-click answer on `task`.
fn answer(r: &Replay<'_>, task: &Task, yes: bool, at: &str) -> callahead::engine::Processed {
    let customer = Actor { name: "customer".into(), role: Role::Customer };
    act(r, task, customer, Action::CustomerAnswer { answer: if yes { "yes" } else { "no" }.into() }, at)
}

fn trusted_places(r: &Replay<'_>, customer: &str) -> usize {
    let state = r.engine().state.customers.get(customer).expect("known");
    state.learned.as_ref().map_or(0, |l| l.places.len())
}

#[test]
fn a_trip_resolved_as_legitimate_does_not_page_again_and_a_fraud_one_does() {
    let mut r = Replay::new(rules());
    for c in ["legit", "fraud"] {
        feed(&mut r, &trip(c, 1));
        let first = open_fraud_task(&r, c).expect("the first trip pages");
        assert!(first.rules.contains(&"impossible_travel".to_string()));
        let outcome = if c == "legit" { Outcome::Legitimate } else { Outcome::ConfirmedFraud };
        resolve(&r, &first, outcome, "2026-07-01T06:00:00Z");
        assert!(open_fraud_task(&r, c).is_none(), "resolved in the engine too");
        // The same trip a week later.
        feed(&mut r, &trip(c, 8));
        let again = open_fraud_task(&r, c);
        if c == "legit" {
            assert!(again.is_none(), "a known trip paged again: {again:#?}");
        } else {
            let again = again.expect("the control customer's trip pages again");
            assert_ne!(again.id, first.id, "a new incident, never the resolved one enriched");
            assert_eq!(again.version, 1);
        }
    }
    // What was learned is about those places and that card, not a blank cheque.
    feed(
        &mut r,
        &[
            card("legit-ny", "legit", "2026-07-09T12:00:00-04:00", 30.0, "New York", "US", 40.7128, -74.006),
            card("legit-lon", "legit", "2026-07-09T17:30:00+01:00", 30.0, "London", "GB", 51.5074, -0.1278),
        ],
    );
    assert!(open_fraud_task(&r, "legit").is_some(), "another impossible trip still pages");
}

#[test]
fn a_payment_confirmed_as_legitimate_becomes_part_of_the_customers_normal() {
    let mut r = Replay::new(rules());
    for c in ["legit", "fraud"] {
        let mut lines = Vec::new();
        for d in 1..=20 {
            lines.push(card(
                &format!("{c}-d{d}"),
                c,
                &format!("2026-06-{d:02}T12:00:00+02:00"),
                20.0 + d as f64,
                "Paris",
                "FR",
                48.8566,
                2.3522,
            ));
        }
        lines.push(card(
            &format!("{c}-big1"),
            c,
            "2026-06-21T12:00:00+02:00",
            2_500.0,
            "Paris",
            "FR",
            48.8566,
            2.3522,
        ));
        feed(&mut r, &lines);
        let task = open_fraud_task(&r, c).expect("a quiet customer's 2,500 EUR purchase pages");
        assert!(task.rules.contains(&"amount_anomaly".to_string()), "{:?}", task.rules);
        let outcome = if c == "legit" { Outcome::Legitimate } else { Outcome::ConfirmedFraud };
        resolve(&r, &task, outcome, "2026-06-21T13:00:00Z");
        feed(
            &mut r,
            &[card(
                &format!("{c}-big2"),
                c,
                "2026-06-28T12:00:00+02:00",
                2_400.0,
                "Paris",
                "FR",
                48.8566,
                2.3522,
            )],
        );
        let again = open_fraud_task(&r, c);
        assert_eq!(again.is_some(), c == "fraud", "{c}: {again:#?}");
    }
}

#[test]
fn a_customers_yes_is_their_word_not_proof_it_teaches_no_trip() {
    // "word": resolved by the customer's link; "agent": resolved legitimate by an agent who
    // spoke to them (the control: the same trip then stays quiet).
    let mut r = Replay::new(rules());
    for c in ["word", "agent"] {
        feed(&mut r, &trip(c, 1));
        let first = open_fraud_task(&r, c).expect("the first trip pages");
        if c == "word" {
            let out = answer(&r, &first, true, "2026-07-01T06:00:00Z");
            assert_eq!(out.results[0].refusal, None, "{:?}", out.results);
            let resolved = &out.changes[0].task;
            assert_eq!(resolved.outcome, Some(Outcome::CustomerConfirmed));
            assert_eq!(resolved.work.resolved_by.as_deref(), Some("customer"));
            assert!(
                resolved.work.notes.last().unwrap().text.contains("by e-mail"),
                "the channel is recorded"
            );
            assert_eq!(trusted_places(&r, c), 0, "a click teaches no place");
        } else {
            resolve(&r, &first, Outcome::Legitimate, "2026-07-01T06:00:00Z");
            assert!(trusted_places(&r, c) > 0);
        }
        feed(&mut r, &trip(c, 8));
        assert_eq!(open_fraud_task(&r, c).is_some(), c == "word", "{c}: the same trip a week later");
    }
}

#[test]
fn a_customers_yes_holds_back_the_same_payment_for_a_day_only() {
    // The same card, merchant and country paged again the same day: held back after the
    // customer's "yes", not after a confirmed fraud (the control), and not a week later.
    let mut r = Replay::new(rules());
    for c in ["word", "fraud"] {
        feed(&mut r, &trip(c, 1));
        let first = open_fraud_task(&r, c).expect("the first trip pages");
        if c == "word" {
            answer(&r, &first, true, "2026-07-01T03:00:00Z");
        } else {
            resolve(&r, &first, Outcome::ConfirmedFraud, "2026-07-01T03:00:00Z");
        }
        // Seven hours later (past the rule's 6 h cooldown): Phnom Penh, then the same shop in Paris.
        let again = [
            card(
                &format!("{c}-pp-b"),
                c,
                "2026-07-01T17:00:00+07:00",
                12.0,
                "Phnom Penh",
                "KH",
                11.5564,
                104.9282,
            ),
            card(&format!("{c}-par-b"), c, "2026-07-01T12:30:00+02:00", 45.0, "Paris", "FR", 48.8606, 2.3376),
        ];
        for (i, l) in again.iter().enumerate() {
            r.feed(100 + i as u64, l.as_bytes());
        }
        assert_eq!(open_fraud_task(&r, c).is_some(), c == "fraud", "{c}: the same payment within the day");
    }
}

#[test]
fn a_yes_on_a_task_an_agent_holds_is_shown_to_the_agent_who_decides() {
    let mut r = Replay::new(rules());
    feed(&mut r, &trip("held", 1));
    let task = open_fraud_task(&r, "held").expect("pages");
    act(&r, &task, ana(), Action::Claim, "2026-07-01T03:00:00Z");
    let out = answer(&r, &task, true, "2026-07-01T03:05:00Z");
    let t = &out.changes[0].task;
    assert_eq!((t.outcome, t.work.assignee.as_deref()), (None, Some("ana")), "still ana's to decide");
    assert_eq!(t.work.customer_answer.as_ref().unwrap().answer, "yes");
    assert!(t.work.notes.last().unwrap().text.contains("ana holds the task"));
    assert!(open_fraud_task(&r, "held").is_some());
}

#[test]
fn only_the_holder_or_a_supervisor_resolves_a_fraud_task_as_legitimate_and_a_reopen_withdraws_it() {
    let mut r = Replay::new(rules());
    feed(&mut r, &trip("c", 1));
    let task = open_fraud_task(&r, "c").expect("pages");
    let legit = || Action::Resolve { outcome: Outcome::Legitimate, note: "it was them".into() };
    let unclaimed = act(&r, &task, ana(), legit(), "2026-07-01T03:00:00Z");
    assert!(unclaimed.results[0].detail.as_deref().unwrap().contains("claim the task first"));
    let bob = Actor { name: "bob".into(), role: Role::FraudAgent };
    act(&r, &task, bob, Action::Claim, "2026-07-01T03:01:00Z");
    let other = act(&r, &task, ana(), legit(), "2026-07-01T03:02:00Z");
    assert!(other.results[0].refusal.is_some(), "ana does not hold it");
    let sue = || Actor { name: "sue".into(), role: Role::Supervisor };
    let overridden = act(&r, &task, sue(), legit(), "2026-07-01T03:03:00Z");
    assert_eq!(overridden.results[0].refusal, None);
    let audit = &overridden.changes[0].audit;
    assert_eq!(audit.role, "supervisor");
    assert!(audit.reason.as_deref().unwrap().starts_with("supervisor override (held by bob)"), "{audit:?}");
    assert!(trusted_places(&r, "c") > 0, "legitimate teaches the trip");
    let countries = |r: &Replay<'_>| r.engine().state.customers.get("c").unwrap().trusted_countries.len();
    assert!(countries(&r) > 0);
    let reopened = act(
        &r,
        &task,
        sue(),
        Action::Reopen { note: "the customer called: not them".into() },
        "2026-07-01T04:00:00Z",
    );
    assert_eq!(reopened.results[0].refusal, None, "{:?}", reopened.results);
    assert_eq!((trusted_places(&r, "c"), countries(&r)), (0, 0), "the reopen withdraws what it taught");
}

#[test]
fn a_no_is_never_lost_on_an_open_a_held_or_a_closed_task() {
    let mut r = Replay::new(rules());
    // Open and held by ana: recorded, most urgent, the card's block asked for, the customer told.
    feed(&mut r, &trip("held", 1));
    let task = open_fraud_task(&r, "held").expect("pages");
    act(&r, &task, ana(), Action::Claim, "2026-07-01T03:00:00Z");
    let out = answer(&r, &task, false, "2026-07-01T03:05:00Z");
    let change = &out.changes[0];
    assert_eq!((change.task.priority, change.task.work.assignee.as_deref()), (1, Some("ana")));
    assert_eq!(change.task.context.actions[0], "block_card");
    assert_eq!(change.actions.len(), 1, "the card system is asked to block the card");
    assert_eq!(change.actions[0].card_token.as_deref(), Some("held-k1"));
    assert_eq!(change.actions[0].reason, "customer_reported_fraud");
    assert_eq!(change.outreach[0].template, "fraud_followup");
    assert!(
        change.audit.command_id.as_deref().unwrap().contains(&task.id),
        "the audit names the link's command"
    );

    // Closed by an agent first, then the customer's "no" (the race, in this order).
    feed(&mut r, &trip("closed", 1));
    let task = open_fraud_task(&r, "closed").expect("pages");
    resolve(&r, &task, Outcome::Legitimate, "2026-07-01T03:00:00Z");
    let out = answer(&r, &task, false, "2026-07-01T03:00:01Z");
    assert_eq!(out.results[0].refusal, None, "{:?}", out.results);
    assert_eq!(out.changes.len(), 2, "the closed task records it and a new task reaches a person");
    let (old, new) = (&out.changes[0].task, &out.changes[1].task);
    assert_eq!(
        (old.id.as_str(), old.work.customer_answer.as_ref().unwrap().answer.as_str()),
        (task.id.as_str(), "no")
    );
    assert_eq!(old.outcome, Some(Outcome::Legitimate), "the old resolution is kept, with the report on it");
    assert_ne!(new.id, task.id);
    assert_eq!((new.priority, new.queue, new.version), (1, Queue::Fraud, 1));
    assert!(new.context.earlier_tasks.iter().any(|t| t.id == task.id), "linked to the closed task");
    assert!(new.explanation.contains(&task.id));
    assert_eq!(out.changes[1].actions.len(), 1);
    assert_eq!(open_fraud_task(&r, "closed").unwrap().id, new.id);
    // A "yes" on the closed task changes nothing.
    let yes = answer(&r, &task, true, "2026-07-01T03:00:02Z");
    assert!(yes.changes.is_empty() && yes.results[0].refusal.is_some());

    // The other order: the "no" first, then the agent's resolution, which sees it.
    feed(&mut r, &trip("first", 1));
    let task = open_fraud_task(&r, "first").expect("pages");
    act(&r, &task, ana(), Action::Claim, "2026-07-01T03:00:00Z");
    answer(&r, &task, false, "2026-07-01T03:00:01Z");
    let out = act(
        &r,
        &task,
        ana(),
        Action::Resolve { outcome: Outcome::ConfirmedFraud, note: "blocked".into() },
        "2026-07-01T03:00:02Z",
    );
    let t = &out.changes[0].task;
    assert_eq!(t.work.customer_answer.as_ref().unwrap().answer, "no");

    // About a customer the engine has forgotten: a fresh task still reaches a person.
    let mut ghost = task.clone();
    ghost.customer_id = "forgotten".into();
    ghost.id = "tsk_gone".into();
    let out = answer(&r, &ghost, false, "2026-07-01T03:00:03Z");
    assert_eq!(out.results[0].refusal, None, "{:?}", out.results);
    assert_eq!(out.changes.len(), 1);
    assert_eq!(out.changes[0].task.priority, 1);
}
