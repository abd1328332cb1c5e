//! Memory held per customer: one engine fed ordinary history for a million customers (target:
//! at most 1 KiB of state per customer).
//!
//! The history is generated and processed in chunks of 10,000 customers so the whole stream is
//! never held in memory. `generate` numbers customers from `c0000000` in every call, so each
//! chunk's customer ids are prefixed with the chunk number to keep customers distinct. A counting
//! global allocator tracks live heap bytes; what the engine holds is the live bytes once the
//! inputs are dropped, less the live bytes before the engine was built.
//!
//! Run with `cargo bench --bench state_size`; `CUSTOMERS=100000 cargo bench --bench state_size`
//! for a quicker run (rounded up to whole chunks).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use callahead::engine::{Engine, EngineConfig};
use callahead::event::decode;
use callahead::ingest::generator::{generate, StreamSpec};
use callahead::rules::RuleSet;
use callahead::state::CustomerState;

/// The system allocator, counting the bytes currently allocated.
struct Counting;

/// Live heap bytes (requested sizes; the allocator's own rounding and bookkeeping come on top).
static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds the `GlobalAlloc`
// contract; the only addition is updating a counter, which neither allocates nor unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours, forwarded.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours, forwarded.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as ours, forwarded.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // On failure the old block stays allocated and nothing changes.
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Customers per generated chunk.
const CHUNK: usize = 10_000;
/// Days of ordinary history per customer.
const DAYS: u32 = 14;
/// At most this many bytes of state per customer.
const TARGET: f64 = 1024.0;

fn main() {
    let customers: usize = match std::env::var("CUSTOMERS") {
        Ok(v) => v.trim().parse().expect("CUSTOMERS must be a whole number"),
        Err(_) => 1_000_000,
    };
    let chunks = customers.div_ceil(CHUNK).max(1);
    let rules = RuleSet::load_dir(Path::new("rules")).expect("default rules in rules/ load");

    let started = Instant::now();
    let baseline = live();
    let mut engine = Engine::new(EngineConfig::default());
    let mut events = 0u64;
    for chunk in 0..chunks {
        let spec = StreamSpec {
            customers: CHUNK,
            days: DAYS,
            seed: 1_000 + chunk as u64,
            scenarios: false,
            noise: false,
        };
        let lines = generate(&spec).lines;
        for line in &lines {
            let mut event = decode(line.as_bytes()).expect("generated lines are valid");
            event.customer_id = format!("{chunk}-{}", event.customer_id);
            engine.process(&rules, &event);
            events += 1;
        }
        drop(lines);
        if (chunk + 1) % 10 == 0 {
            eprintln!(
                "  {} customers, {} events, {:.0} s",
                engine.state.len(),
                events,
                started.elapsed().as_secs_f64()
            );
        }
    }
    // The inputs are dropped: what is left above the baseline is the engine.
    let held = live() - baseline;
    let tracked = engine.state.len();
    let per_customer = held as f64 / tracked as f64;

    // Break the total down by taking the parts out of the engine one at a time.
    let capacity = engine.state.customers.capacity();
    let before = live();
    drop(std::mem::take(&mut engine.state.customers));
    let in_map = before - live();
    let before = live();
    let interned = engine.state.interner.len();
    drop(std::mem::take(&mut engine.state.interner));
    let in_interner = before - live();
    let timers = engine.pending_timers();
    let before = live();
    drop(engine);
    let in_rest = before - live();

    let entry = std::mem::size_of::<(Box<str>, CustomerState)>();
    let pct = |b: usize| 100.0 * b as f64 / held as f64;
    println!(
        "state: {events} events, {:.1} events/customer, {DAYS} days each",
        events as f64 / tracked as f64
    );
    println!(
        "state: {tracked} customers, {held} bytes held, {per_customer:.1} bytes/customer (target <= {TARGET:.0}): {}",
        if per_customer <= TARGET { "ok" } else { "OVER" }
    );
    println!("state: size_of::<CustomerState>() = {} bytes", std::mem::size_of::<CustomerState>());
    println!(
        "state:   customer map (table, keys, states, their heap): {in_map} bytes ({:.1}%), {:.1}/customer",
        pct(in_map),
        in_map as f64 / tracked as f64
    );
    println!(
        "state:     of which table slots: {capacity} x {entry} bytes (key + state) = {} bytes, {:.1}/customer",
        capacity * entry,
        (capacity * entry) as f64 / tracked as f64
    );
    println!("state:   interner ({interned} strings): {in_interner} bytes ({:.1}%)", pct(in_interner));
    println!(
        "state:   timers ({timers} pending) and the rest: {in_rest} bytes ({:.1}%), {:.1}/customer",
        pct(in_rest),
        in_rest as f64 / tracked as f64
    );
    println!("state: built in {:.1} s", started.elapsed().as_secs_f64());
}
