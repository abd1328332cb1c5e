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

fn resolve(r: &Replay<'_>, task: &Task, outcome: Outcome, at: &str) {
    let command = Command {
        command_id: format!("resolve-{}", task.id),
        customer_id: task.customer_id.clone(),
        task_id: task.id.clone(),
        at: Timestamp::parse_rfc3339(at).unwrap(),
        actor: Actor { name: "ana".into(), role: Role::FraudAgent },
        action: Action::Resolve { outcome, note: "called the customer".into() },
    };
    let out = r.engine().command(0, &command);
    assert_eq!(out.results[0].refusal, None, "{:?}", out.results);
    assert_eq!(out.changes.len(), 1);
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
