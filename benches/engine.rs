//! Throughput of the engine on a realistic stream, on one thread (divan's default).
//!
//! The stream: 5,000 ordinary customers over 30 days, with the planted incident and look-alike
//! scenarios and the delivery noise (redeliveries, late events), run through the default rule
//! pack in `rules/`. It is generated once, before any timing. divan prints events/s because each
//! bench declares the number of events as its item count.
//!
//! - `process_decoded`: `Engine::process` over already-decoded events (target >= 1,000,000/s);
//! - `decode_and_process`: `event::decode` then `Engine::process` per JSON line (target
//!   >= 500,000/s);
//! - `decode_only`: `event::decode` alone, to split the cost of the second.
//!
//! Every iteration starts from a fresh engine, so its pass over the stream includes creating
//! each customer's state (the first event of a customer inserts it). That is realistic: a
//! stream of this length is a month of history, and new customers keep arriving in production.
//! The engine built by an iteration is returned to divan, which drops it outside the timing.
//!
//! Run with `cargo bench --bench engine` (from the package root: the rules are read from
//! `rules/`). `cargo bench --bench engine -- --sample-count 1` gives a quick single pass.

use std::path::Path;
use std::sync::LazyLock;

use callahead::engine::{Engine, EngineConfig};
use callahead::event::{decode, Event};
use callahead::ingest::generator::{generate, StreamSpec};
use callahead::rules::RuleSet;
use divan::counter::ItemsCount;
use divan::{black_box, Bencher};

/// The stream and the rules, built once.
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
