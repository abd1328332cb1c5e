//! Conditions that become true as time passes are found when they become true: a generated
//! population of fading customers (money moved to their own account elsewhere, then a payment
//! now and then), silent ones (a complaint, then nothing), steady ones, always-quiet ones, and
//! customers with a complaint that nobody resolves (or that is resolved in time), all on one
//! partition, through the engine. An oracle evaluates the churn detector on each customer alone
//! every hour of event time to find when the condition first holds; the engine must find every
//! such customer within a bounded delay of that moment (its daily re-evaluation, plus the
//! allowed lateness, plus the gap until the partition's time moves on), and nobody else. The
//! absence rule fires at its deadline, and not when the complaint was resolved in time.
//! Recall, false positives and delays are printed.

use std::collections::BTreeMap;

use callahead::detect::churn_risk;
use callahead::detect::{DetectInput, DetectorParams};
use callahead::engine::{Engine, EngineConfig};
use callahead::event::{decode, Event};
use callahead::state::{CustomerState, Interner};
use callahead::time::{Timestamp, DAY, HOUR, MINUTE};

use crate::common::rules;

const WEEK: i64 = 7 * DAY;
const WEEKS: i64 = 22;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Fading,
    Silent,
    Steady,
    Quiet,
    Unresolved,
    ResolvedInTime,
}

struct Population {
    /// (time, customer, JSON line), in time order.
    events: Vec<(Timestamp, String, String)>,
    kinds: BTreeMap<String, Kind>,
}

fn generate(seed: u64) -> Population {
    let mut rng = fastrand::Rng::with_seed(seed);
    let start = Timestamp::parse_rfc3339("2026-01-05T00:00:00Z").unwrap();
    let end = start.plus(WEEKS * WEEK);
    let mut events = Vec::new();
    let mut kinds = BTreeMap::new();
    let mut n = 0u64;
    let mut push = |events: &mut Vec<(Timestamp, String, String)>, c: &str, at: Timestamp, body: String| {
        n += 1;
        let line = format!(r#"{{"event_id":"e{n}","customer_id":"{c}","ts":"{at}",{body}}}"#);
        events.push((at, c.to_string(), line));
    };
    let card = |rng: &mut fastrand::Rng| {
        format!(
            r#""type":"card_transaction","card_id":"k","amount":"{}.00","currency":"EUR","channel":"contactless","status":"approved","merchant":{{"name":"Shop","country":"GB","city":"London","lat":51.5,"lon":-0.12}}"#,
            10 + rng.u32(..60)
        )
    };
    let population = [
        (Kind::Fading, 20),
        (Kind::Silent, 20),
        (Kind::Steady, 40),
        (Kind::Quiet, 20),
        (Kind::Unresolved, 10),
        (Kind::ResolvedInTime, 10),
    ];
    for (kind, count) in population {
        for i in 0..count {
            let c = format!("{kind:?}-{i}").to_lowercase();
            kinds.insert(c.clone(), kind);
            push(
                &mut events,
                &c,
                start,
                r#""type":"customer_profile","name":"N","language":"en","segment":"mass","consent":{"email":true}"#
                    .to_string(),
            );
            // The turn happens some time in weeks 10–12.
            let turn = start.plus(10 * WEEK + rng.i64(0..2 * WEEK));
            let per_week_before = if kind == Kind::Quiet { 0 } else { 5 };
            // Regular activity (five payments a week) up to the turn, or throughout.
            let active_until = match kind {
                Kind::Fading | Kind::Silent => turn,
                _ => end,
            };
            let mut at = start.plus(HOUR);
            if per_week_before > 0 {
                while at < active_until {
                    push(&mut events, &c, at, card(&mut rng));
                    at = at.plus(WEEK / per_week_before + rng.i64(-6 * HOUR..6 * HOUR));
                }
            } else {
                // Always quiet: one payment every twelve days or so.
                while at < end {
                    push(&mut events, &c, at, card(&mut rng));
                    at = at.plus(12 * DAY + rng.i64(-DAY..DAY));
                }
            }
            let transfer = r#""type":"transfer","direction":"out","amount":"3000.00","currency":"EUR","counterparty_bank":"Neo Bank","own_account":true"#;
            match kind {
                Kind::Fading => {
                    push(&mut events, &c, turn, transfer.to_string());
                    // A payment now and then: not silent, but far below their normal.
                    let mut at = turn.plus(3 * DAY);
                    while at < end {
                        push(&mut events, &c, at, card(&mut rng));
                        at = at.plus(9 * DAY + rng.i64(0..3 * DAY));
                    }
                }
                Kind::Silent => push(
                    &mut events,
                    &c,
                    turn,
                    r#""type":"complaint","category":"fees","severity":"medium""#.to_string(),
                ),
                // Too quiet to judge a drop: moving money alone is one sign, not enough.
                Kind::Quiet => push(&mut events, &c, turn, transfer.to_string()),
                Kind::Unresolved | Kind::ResolvedInTime => {
                    push(
                        &mut events,
                        &c,
                        turn,
                        r#""type":"complaint","category":"fees","severity":"medium""#.to_string(),
                    );
                    if kind == Kind::ResolvedInTime {
                        push(
                            &mut events,
                            &c,
                            turn.plus(20 * HOUR),
                            r#""type":"support_contact","channel":"phone","reason":"fees","resolved":true"#
                                .to_string(),
                        );
                    }
                }
                Kind::Steady => {}
            }
        }
    }
    events.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    Population { events, kinds }
}

/// When the churn condition first holds for each customer, looking every hour of event time at
/// that customer's state alone.
fn oracle(p: &Population, params: &churn_risk::Params) -> BTreeMap<String, Timestamp> {
    let mut per_customer: BTreeMap<&str, Vec<Event>> = BTreeMap::new();
    for (_, c, line) in &p.events {
        per_customer.entry(c).or_default().push(decode(line.as_bytes()).unwrap());
    }
    let end = p.events.last().unwrap().0;
    let interner = Interner::default();
    let mut found = BTreeMap::new();
    for (c, events) in per_customer {
        let mut state = CustomerState::default();
        let mut next = 0;
        let mut now = Timestamp(events[0].ts.0.div_euclid(HOUR) * HOUR);
        while now <= end {
            while next < events.len() && events[next].ts <= now {
                state.apply(&events[next], &interner);
                next += 1;
            }
            if churn_risk::detect(&DetectInput { event: None, state: &state, now }, params).is_some() {
                found.insert(c.to_string(), now);
                break;
            }
            now = now.plus(HOUR);
        }
    }
    found
}

fn percentile(sorted: &[i64], q: f64) -> i64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[test]
fn time_dependent_conditions_are_found_within_a_bounded_delay() {
    let p = generate(7);
    let rules = rules();
    let params = match &rules.rules.iter().find(|r| r.id == "churn_risk").unwrap().detector {
        Some(DetectorParams::ChurnRisk(params)) => params.clone(),
        _ => panic!("churn_risk uses the churn detector"),
    };
    let truth = oracle(&p, &params);
    // The population is what it says: the oracle finds every fading and silent customer, and
    // nobody else.
    for (c, kind) in &p.kinds {
        let expected = matches!(kind, Kind::Fading | Kind::Silent);
        assert_eq!(truth.contains_key(c), expected, "{c} ({kind:?}): oracle {:?}", truth.get(c));
    }

    let config = EngineConfig::default();
    let engine = Engine::new(config);
    // First firing per (customer, rule), and the stream time at which the engine produced it.
    let mut first: BTreeMap<(String, String), (Timestamp, Timestamp)> = BTreeMap::new();
    let mut max_gap = 0;
    let mut previous = p.events[0].0;
    for (at, _, line) in &p.events {
        max_gap = max_gap.max(at.millis_since(previous));
        previous = *at;
        let out = engine.process_in(0, rules, &decode(line.as_bytes()).unwrap());
        for change in &out.changes {
            for s in &change.task.signals {
                first.entry((change.task.customer_id.clone(), s.rule.clone())).or_insert((s.at, *at));
            }
        }
    }
    assert!(engine.pending_timers() <= 2 * p.kinds.len(), "timers stay bounded per customer");

    // Churn: recall, false positives and delay from the condition holding to the task.
    let bound = churn_risk::RECHECK + config.allowed_lateness + max_gap;
    let mut delays = Vec::new();
    let mut missed = Vec::new();
    let mut false_positives = Vec::new();
    for (c, kind) in &p.kinds {
        let found = first.get(&(c.clone(), "churn_risk".to_string()));
        match (truth.get(c), found) {
            (Some(&holds), Some(&(_, produced_at))) => {
                assert!(produced_at.0 >= holds.0 - HOUR, "{c}: found before the condition held");
                delays.push(produced_at.millis_since(holds).max(0));
            }
            (Some(_), None) => missed.push(format!("{c} ({kind:?})")),
            (None, Some(_)) => false_positives.push(format!("{c} ({kind:?})")),
            (None, None) => {}
        }
    }
    delays.sort_unstable();
    let hours = |ms: i64| ms as f64 / HOUR as f64;
    eprintln!(
        "churn_risk: {} of {} found, {} false positives; delay from the condition holding to the task: p50 {:.1} h, max {:.1} h (bound {:.1} h: recheck {} h + lateness {} min + largest gap {:.1} h)",
        delays.len(),
        truth.len(),
        false_positives.len(),
        hours(percentile(&delays, 0.5)),
        hours(*delays.last().unwrap()),
        hours(bound),
        churn_risk::RECHECK / HOUR,
        config.allowed_lateness / MINUTE,
        hours(max_gap),
    );
    assert!(missed.is_empty(), "not found: {missed:?}");
    assert!(false_positives.is_empty(), "false positives: {false_positives:?}");
    assert!(*delays.last().unwrap() <= bound, "a delay above the bound: {delays:?}");

    // The absence rule: at its deadline, 72 h after the complaint, unless resolved in time.
    let mut absence_delays = Vec::new();
    for (c, kind) in &p.kinds {
        let found = first.get(&(c.clone(), "complaint_unresolved".to_string()));
        match kind {
            Kind::Unresolved | Kind::Silent => {
                let &(signal_at, produced_at) =
                    found.unwrap_or_else(|| panic!("{c}: unresolved complaint missed"));
                let complaint = p
                    .events
                    .iter()
                    .find(|(_, who, line)| who == c && line.contains("\"complaint\""))
                    .unwrap()
                    .0;
                assert_eq!(signal_at.millis_since(complaint), 72 * HOUR, "{c}");
                absence_delays.push(produced_at.millis_since(signal_at));
            }
            _ => assert!(found.is_none(), "{c} ({kind:?}): no unresolved complaint, yet {found:?}"),
        }
    }
    absence_delays.sort_unstable();
    eprintln!(
        "complaint_unresolved: {} found at their deadline, 0 false positives; delay p50 {:.2} h, max {:.2} h",
        absence_delays.len(),
        hours(percentile(&absence_delays, 0.5)),
        hours(*absence_delays.last().unwrap())
    );
    assert!(*absence_delays.last().unwrap() <= config.allowed_lateness + max_gap);
}
