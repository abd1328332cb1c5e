//! Properties: redelivering events (soon after, or a producer resending days of one customer's
//! events days later), and letting events arrive late within the allowed lateness, do not change
//! the set of tasks (ids, customers, queues, rules).

use std::sync::OnceLock;

use callahead::event::decode;
use callahead::ingest::generator::{generate, StreamSpec};
use proptest::prelude::*;

use crate::common::{identity, replay};

type Identity = Vec<(String, String, &'static str, Vec<String>)>;

/// A small stream with every planted scenario and no built-in noise, and its tasks.
fn base() -> &'static (Vec<String>, Identity) {
    static BASE: OnceLock<(Vec<String>, Identity)> = OnceLock::new();
    BASE.get_or_init(|| {
        let g = generate(&StreamSpec { customers: 10, days: 64, seed: 3, scenarios: true, noise: false });
        let tasks = replay(&g.lines);
        let id = identity(&tasks);
        assert!(id.len() >= 10, "the base stream must have incidents to lose: {id:?}");
        (g.lines, id)
    })
}

/// Stricter than [`identity`]: also how many versions, signals and evidence events each task
/// has, so that an event counted twice (a signal more, a task enriched again) shows.
type Strict = Vec<(String, u32, usize, usize, Vec<String>)>;

fn strict(tasks: &[callahead::task::Task]) -> Strict {
    let mut out: Strict = tasks
        .iter()
        .map(|t| {
            let mut rules = t.rules.clone();
            rules.sort();
            (t.id.clone(), t.version, t.signals.len(), t.context.events.len(), rules)
        })
        .collect();
    out.sort();
    out
}

fn base_strict() -> &'static Strict {
    static BASE: OnceLock<Strict> = OnceLock::new();
    BASE.get_or_init(|| strict(&replay(&base().0)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Each chosen event is delivered again up to 40 messages later (a producer retry or a
    /// consumer restart).
    #[test]
    fn redelivery_does_not_change_tasks(picks in prop::collection::vec((0usize..1_000_000, 1usize..40), 1..300)) {
        let (lines, expected) = base();
        let mut inserts: Vec<(usize, usize)> = picks.iter().map(|&(i, d)| (i % lines.len(), d)).collect();
        inserts.sort();
        let mut out: Vec<&str> = Vec::with_capacity(lines.len() + inserts.len());
        let mut pending: Vec<(usize, &str)> = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            out.push(line);
            for &(at, delay) in inserts.iter().filter(|(at, _)| *at == i) {
                pending.push((at + delay, &lines[at]));
            }
            pending.retain(|&(due, dup)| {
                if due <= i { out.push(dup); false } else { true }
            });
        }
        out.extend(pending.into_iter().map(|(_, dup)| dup));
        prop_assert_eq!(&identity(&replay(&out)), expected);
    }

    /// Every event is delayed by a random amount below the allowed lateness (10 minutes); the
    /// stream is re-ordered by arrival time.
    #[test]
    fn late_arrival_within_lateness_does_not_change_tasks(seed in any::<u64>(), max_delay_s in 1i64..540) {
        let (lines, expected) = base();
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut arrivals: Vec<(i64, usize)> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let ts = decode(l.as_bytes()).expect("valid").ts.0;
                (ts + rng.i64(0..max_delay_s * 1000), i)
            })
            .collect();
        arrivals.sort();
        let shuffled: Vec<&str> = arrivals.iter().map(|&(_, i)| lines[i].as_str()).collect();
        prop_assert_eq!(&identity(&replay(&shuffled)), expected);
    }

    /// A producer resends a few days of some customers' events (same event ids), days after the
    /// originals: within the de-duplication horizon nothing counts twice.
    #[test]
    fn resending_days_of_events_days_later_does_not_change_tasks(
        picks in prop::collection::vec((0usize..1_000_000, 1i64..4, 1i64..40), 1..6)
    ) {
        const DAY_MS: i64 = 86_400_000;
        let (lines, _) = base();
        let events: Vec<(i64, String)> = lines
            .iter()
            .map(|l| {
                let e = decode(l.as_bytes()).expect("valid");
                (e.ts.0, e.customer_id)
            })
            .collect();
        // (arrival time, line): the originals at their own time, the resent ones later.
        let mut arrivals: Vec<(i64, usize, usize)> = events.iter().enumerate().map(|(i, (ts, _))| (*ts, 0, i)).collect();
        for &(pick, days, delay_days) in &picks {
            let (start, customer) = &events[pick % events.len()];
            let end = start + days * DAY_MS;
            for (i, (ts, c)) in events.iter().enumerate() {
                if c == customer && *ts >= *start && *ts < end {
                    arrivals.push((end + delay_days * DAY_MS, 1, i));
                }
            }
        }
        arrivals.sort();
        let resent = arrivals.len() - lines.len();
        let stream: Vec<&str> = arrivals.iter().map(|&(_, _, i)| lines[i].as_str()).collect();
        prop_assert_eq!(&strict(&replay(&stream)), base_strict(), "{} events resent", resent);
    }
}

/// Late events beyond a card's usual memory: a customer pays at home every half hour or so; an
/// ATM withdrawal abroad comes 15 to 50 minutes after one of those payments, but is delivered
/// hours late, after the customer's later payments at home. With an allowed lateness covering
/// the delay, the withdrawal is compared with the uses around it in event time and found.
fn late_atm_stream(
    rng: &mut fastrand::Rng,
    customers: usize,
    delay_hours: i64,
) -> (Vec<String>, Vec<String>) {
    let start = callahead::time::Timestamp::parse_rfc3339("2026-05-04T07:00:00Z").unwrap();
    let mut timed: Vec<(i64, String)> = Vec::new();
    let mut expected = Vec::new();
    let line = |id: String,
                c: &str,
                at: callahead::time::Timestamp,
                city: &str,
                country: &str,
                lat: f64,
                lon: f64,
                channel: &str| {
        format!(
            r#"{{"event_id":"{id}","type":"card_transaction","customer_id":"{c}","ts":"{at}","card_id":"{c}-k","amount":"24.00","currency":"EUR","channel":"{channel}","status":"approved","merchant":{{"name":"Shop","country":"{country}","city":"{city}","lat":{lat},"lon":{lon}}}}}"#
        )
    };
    for n in 0..customers {
        let c = format!("late-{n}");
        let mut at = start.plus(rng.i64(0..3_600_000));
        let count = 8 + rng.usize(..8);
        let atm_after = rng.usize(..3);
        for k in 0..count {
            timed.push((at.0, line(format!("{c}-h{k}"), &c, at, "Lyon", "FR", 45.76, 4.84, "contactless")));
            if k == atm_after {
                let atm = at.plus(rng.i64(15..=50) * 60_000);
                let arrives = atm.plus(delay_hours * 3_600_000 - rng.i64(0..1_800_000));
                timed.push((
                    arrives.0,
                    line(format!("{c}-atm"), &c, atm, "Lisbon", "PT", 38.72, -9.14, "atm"),
                ));
                expected.push(c.clone());
            }
            at = at.plus(rng.i64(20..=45) * 60_000);
        }
    }
    timed.sort();
    (timed.into_iter().map(|(_, l)| l).collect(), expected)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn a_late_use_is_compared_with_its_neighbours_in_event_time(seed in any::<u64>(), delay_hours in 2i64..6) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let (lines, expected) = late_atm_stream(&mut rng, 20, delay_hours);
        let config = callahead::engine::EngineConfig { allowed_lateness: 6 * 3_600_000, ..Default::default() };
        let mut r = callahead::replay::Replay::with_config(crate::common::rules(), config);
        for (i, l) in lines.iter().enumerate() {
            r.feed(i as u64 + 1, l.as_bytes());
        }
        let tasks = r.into_tasks().0;
        for c in &expected {
            prop_assert!(
                tasks.iter().any(|t| &t.customer_id == c && t.rules.iter().any(|r| r == "impossible_travel")),
                "{c}: the late ATM withdrawal abroad was not found"
            );
        }
    }
}
