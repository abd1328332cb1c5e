//! Throughput of the engine on one thread (divan's default), with a small population and with
//! a million customers already in memory.
//!
//! The realistic mix: 5,000 customers over 30 days, with the planted incident and look-alike
//! scenarios and the delivery noise (redeliveries, late events), run through the default rule
//! pack in `rules/`. It is generated once, before any timing. divan prints events/s because each
//! bench declares the number of events as its item count.
//!
//! Small population (every sample starts from a fresh engine, so its pass includes creating
//! each customer's state, as new customers keep arriving in production; the engine is returned
//! to divan, which drops it outside the timing):
//!
//! - `process_decoded`: `Engine::process` over already-decoded events (target >= 1,500,000/s);
//! - `decode_and_process`: `event::decode` then `Engine::process` per JSON line (target
//!   >= 700,000/s);
//! - `decode_only`: `event::decode` alone, to split the cost of the second.
//!
//! A million customers in memory (`RESIDENTS`, default 1,000,000): one engine is first given
//! the residents, copies of one generated chunk of 10,000 ordinary customers with 14 days of
//! history each (as `benches/state_size.rs` measures memory), each copy under its own customer
//! ids and in its own partition (so a copy's timers fire by its own time only). That takes a
//! minute or two, once, outside any timing. Then:
//!
//! - `mix_1m_decoded` and `mix_1m_decode_and_process`: the realistic mix as above, its 5,000
//!   customers new to the engine (under fresh ids and a fresh partition every sample);
//! - `scattered_1m_decoded`: the next 14 days of the residents of `SCATTERED_COPIES` copies
//!   spread over the population, merged in time order: consecutive events belong to customers
//!   scattered over memory, as at bank scale (the mix above keeps its 5,000 customers in the
//!   CPU caches; this does not). Only existing customers; no state is created.
//!
//! Run with `cargo bench --bench engine` (from the package root: the rules are read from
//! `rules/`). `cargo bench --bench engine -- --sample-count 1` gives a quick single pass;
//! `RESIDENTS=100000 cargo bench --bench engine` a smaller population.

use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::LazyLock;
use std::time::Instant;

use callahead::engine::{Engine, EngineConfig};
use callahead::event::{decode, Event};
use callahead::ingest::generator::{generate, StreamSpec};
use callahead::rules::RuleSet;
use callahead::time::{Timestamp, DAY};
use divan::counter::ItemsCount;
use divan::{black_box, Bencher};

/// The binary's allocator (see `src/main.rs`), so the figures are the service's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The realistic mix and the rules, built once.
struct Fixture {
    rules: RuleSet,
    lines: Vec<String>,
    events: Vec<Event>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let rules = RuleSet::load_dir(Path::new("rules")).expect("default rules in rules/ load");
    let spec = StreamSpec { customers: 5_000, days: 30, seed: 7, scenarios: true, noise: true };
    let lines = generate(&spec).lines;
    let events: Vec<Event> =
        lines.iter().map(|l| decode(l.as_bytes()).expect("generated lines are valid")).collect();
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    eprintln!(
        "stream: {} events, {} rules, {:.1} MiB of JSON lines ({:.0} bytes/event)",
        events.len(),
        rules.rules.len(),
        bytes as f64 / (1024.0 * 1024.0),
        bytes as f64 / events.len() as f64
    );
    let mut mix = std::collections::BTreeMap::new();
    for e in &events {
        *mix.entry(e.kind().as_str()).or_insert(0usize) += 1;
    }
    let mix: Vec<String> = mix
        .iter()
        .map(|(kind, n)| format!("{kind} {:.1}%", 100.0 * *n as f64 / events.len() as f64))
        .collect();
    eprintln!("mix: {}", mix.join(", "));
    Fixture { rules, lines, events }
});

/// Customers per resident copy (one generated chunk).
const CHUNK: usize = 10_000;
/// Days of history per resident.
const RESIDENT_DAYS: u32 = 14;
/// Copies of the chunk whose next days make the scattered pass.
const SCATTERED_COPIES: usize = 4;
/// Partitions from this one on hold the residents (copy `k` in `RESIDENT_PARTITIONS + k`);
/// the partitions below are handed out to the mix's samples.
const RESIDENT_PARTITIONS: i32 = 1_000_000;

/// An engine holding a million customers, and the history it was built from.
struct Residents {
    engine: Engine,
    /// One chunk's decoded history (customer ids without the copy's prefix).
    chunk: Vec<Event>,
    copies: usize,
}

static RESIDENTS: LazyLock<Residents> = LazyLock::new(|| {
    let rules = &FIXTURE.rules;
    let residents: usize = match std::env::var("RESIDENTS") {
        Ok(v) => v.trim().parse().expect("RESIDENTS must be a whole number"),
        Err(_) => 1_000_000,
    };
    let copies = residents.div_ceil(CHUNK).max(SCATTERED_COPIES);
    let spec =
        StreamSpec { customers: CHUNK, days: RESIDENT_DAYS, seed: 1_000, scenarios: false, noise: false };
    let chunk: Vec<Event> = generate(&spec)
        .lines
        .iter()
        .map(|l| decode(l.as_bytes()).expect("generated lines are valid"))
        .collect();
    let started = Instant::now();
    let engine = Engine::new(EngineConfig::default());
    for copy in 0..copies {
        for event in copy_of(&chunk, copy, 0) {
            engine.process_in(RESIDENT_PARTITIONS + copy as i32, rules, &event);
        }
    }
    eprintln!(
        "residents: {} customers ({} copies of {} events), built in {:.0} s",
        engine.state.len(),
        copies,
        chunk.len(),
        started.elapsed().as_secs_f64()
    );
    Residents { engine, chunk, copies }
});

/// Copy `copy` of a chunk's history, `shift_days` later (with event ids of their own then).
fn copy_of(chunk: &[Event], copy: usize, shift_days: i64) -> impl Iterator<Item = Event> + '_ {
    chunk.iter().map(move |e| {
        let mut e = e.clone();
        e.customer_id = format!("r{copy}-{}", e.customer_id);
        if shift_days != 0 {
            e.ts = Timestamp(e.ts.0 + shift_days * DAY);
            e.event_id = format!("{}+{shift_days}d", e.event_id);
        }
        e
    })
}

/// A partition of its own for each sample of the mix with the residents: the mix's time starts
/// afresh there, and its customers are new (their ids carry the partition).
static NEXT_MIX_PARTITION: AtomicI32 = AtomicI32::new(0);

fn next_mix_partition() -> i32 {
    NEXT_MIX_PARTITION.fetch_add(1, Ordering::Relaxed)
}

/// The residents' next days already given to the scattered pass (each sample gets 14 more).
static SCATTERED_SHIFT_DAYS: AtomicI64 = AtomicI64::new(0);

fn main() {
    LazyLock::force(&FIXTURE); // generate outside any timing
    divan::main();
}

/// Evaluation of already-decoded events.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn process_decoded(bencher: Bencher) {
    let f = &*FIXTURE;
    bencher
        .counter(ItemsCount::new(f.events.len()))
        .with_inputs(|| Engine::new(EngineConfig::default()))
        .bench_local_values(|engine| {
            for event in &f.events {
                black_box(engine.process(&f.rules, event));
            }
            engine
        });
}

/// JSON decoding and evaluation.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn decode_and_process(bencher: Bencher) {
    let f = &*FIXTURE;
    bencher
        .counter(ItemsCount::new(f.lines.len()))
        .with_inputs(|| Engine::new(EngineConfig::default()))
        .bench_local_values(|engine| {
            for line in &f.lines {
                let event = decode(black_box(line.as_bytes())).expect("generated lines are valid");
                black_box(engine.process(&f.rules, &event));
            }
            engine
        });
}

/// JSON decoding alone.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn decode_only(bencher: Bencher) {
    let f = &*FIXTURE;
    bencher.counter(ItemsCount::new(f.lines.len())).bench_local(|| {
        for line in &f.lines {
            black_box(decode(black_box(line.as_bytes())).expect("generated lines are valid"));
        }
    });
}

/// The realistic mix, decoded, with the residents in memory.
#[divan::bench(sample_count = 3, sample_size = 1)]
fn mix_1m_decoded(bencher: Bencher) {
    let f = &*FIXTURE;
    let engine = &RESIDENTS.engine;
    bencher
        .counter(ItemsCount::new(f.events.len()))
        .with_inputs(|| {
            let partition = next_mix_partition();
            let events: Vec<Event> = f
                .events
                .iter()
                .map(|e| {
                    let mut e = e.clone();
                    e.customer_id = format!("m{partition}-{}", e.customer_id);
                    e
                })
                .collect();
            (partition, events)
        })
        .bench_local_values(|(partition, events)| {
            for event in &events {
                black_box(engine.process_in(partition, &f.rules, event));
            }
            events
        });
}

/// The realistic mix, from JSON lines, with the residents in memory.
#[divan::bench(sample_count = 3, sample_size = 1)]
fn mix_1m_decode_and_process(bencher: Bencher) {
    let f = &*FIXTURE;
    let engine = &RESIDENTS.engine;
    bencher
        .counter(ItemsCount::new(f.lines.len()))
        .with_inputs(|| {
            let partition = next_mix_partition();
            let prefix = format!(r#""customer_id":"m{partition}-"#);
            let lines: Vec<String> =
                f.lines.iter().map(|l| l.replacen(r#""customer_id":""#, &prefix, 1)).collect();
            (partition, lines)
        })
        .bench_local_values(|(partition, lines)| {
            for line in &lines {
                let event = decode(black_box(line.as_bytes())).expect("generated lines are valid");
                black_box(engine.process_in(partition, &f.rules, &event));
            }
            lines
        });
}

/// The residents' next days, scattered over the population, decoded.
#[divan::bench(sample_count = 3, sample_size = 1)]
fn scattered_1m_decoded(bencher: Bencher) {
    let f = &*FIXTURE;
    let residents = &*RESIDENTS;
    let events_per_sample = residents.chunk.len() * SCATTERED_COPIES;
    bencher
        .counter(ItemsCount::new(events_per_sample))
        .with_inputs(|| {
            let shift = SCATTERED_SHIFT_DAYS.fetch_add(i64::from(RESIDENT_DAYS), Ordering::Relaxed)
                + i64::from(RESIDENT_DAYS);
            let step = residents.copies / SCATTERED_COPIES;
            let mut events: Vec<(i32, Event)> = (0..SCATTERED_COPIES)
                .flat_map(|i| {
                    let copy = i * step;
                    copy_of(&residents.chunk, copy, shift)
                        .map(move |e| (RESIDENT_PARTITIONS + copy as i32, e))
                })
                .collect();
            events.sort_by_key(|(_, e)| e.ts);
            events
        })
        .bench_local_values(|events| {
            for (partition, event) in &events {
                black_box(residents.engine.process_in(*partition, &f.rules, event));
            }
            events
        });
}
