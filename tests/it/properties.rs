//! Properties: redelivering events, and letting events arrive late within the allowed lateness,
//! do not change the set of tasks (ids, customers, queues, rules).

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
}
