//! Memory held per customer: one engine fed ordinary history for a million customers (target:
//! at most 1 KiB of state per customer), and the size of each customer's state as stored
//! (`state::codec::encode`, what a checkpoint writes per customer).
//!
//! The history is generated and processed in chunks of 10,000 customers so the whole stream is
//! never held in memory. `generate` numbers customers from `c0000000` in every call, so each
//! chunk's customer ids are prefixed with the chunk number to keep customers distinct. A counting
//! global allocator tracks live heap bytes; what the engine holds is the live bytes once the
//! inputs are dropped, less the live bytes before the engine was built.
//!
//! The state's own measurement (`StateStore::memory_bytes`, what the `state_bytes` gauge
//! reports, from capacities) is printed beside the allocator's count, whole and from the sample
//! the service uses, with the time each takes.
//!
//! Run with `cargo bench --bench state_size`; `CUSTOMERS=100000 cargo bench --bench state_size`
//! for a quicker run (rounded up to whole chunks).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use callahead::engine::{Engine, EngineConfig};
use callahead::event::{decode, Event, Profile};
use callahead::ingest::generator::{generate, StreamSpec};
use callahead::rules::RuleSet;
use callahead::state::codec::encode;
use callahead::state::{CardState, CustomerState, HeapSize, HistoryItem, PhysicalUse, DEDUP_IDS};
use callahead::time::{Timestamp, DAY};

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
    // Time spent decoding and processing (not generating), to see throughput with many customers.
    let (mut decoding, mut processing) = (Duration::ZERO, Duration::ZERO);
    for chunk in 0..chunks {
        let decoded = chunk_events(chunk, 0, &mut decoding);
        let t = Instant::now();
        for event in &decoded {
            engine.process(&rules, event);
        }
        processing += t.elapsed();
        events += decoded.len() as u64;
        drop(decoded);
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

    let parts = HeapParts::of(&engine);
    let measured = Measured::of(&engine);

    let capacity = engine.state.customers.capacity();
    let build_time = started.elapsed();

    let steady = steady_pass(&engine, &rules, chunks);

    // Break the total down by taking the parts out of the engine one at a time (after the steady
    // pass: it adds a little history to some customers, not customers).
    let after = live() - baseline;
    let stored = Stored::of(&engine);
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

    let entry = std::mem::size_of::<(Box<str>, Box<CustomerState>)>();
    let pct = |b: usize| 100.0 * b as f64 / after as f64;
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
        "state:   the states' boxes ({} B each) and the hash tables (slots of {entry} B = key + box, control \
         bytes, empty slots; usable capacity {capacity}): {:.1}/customer",
        std::mem::size_of::<CustomerState>(),
        (held - parts.total()) as f64 / tracked as f64
    );
    parts.print(tracked);
    measured.print(held, tracked);
    println!(
        "state: split measured by dropping the parts after the steady pass ({:.1} bytes/customer then):",
        after as f64 / tracked as f64
    );
    println!(
        "state:   customer map (tables, keys, states, their heap): {in_map} bytes ({:.1}%), {:.1}/customer",
        pct(in_map),
        in_map as f64 / tracked as f64
    );
    println!("state:   interner ({interned} strings): {in_interner} bytes ({:.1}%)", pct(in_interner));
    println!(
        "state:   timers ({timers} pending) and the rest: {in_rest} bytes ({:.1}%), {:.1}/customer",
        pct(in_rest),
        in_rest as f64 / tracked as f64
    );
    print_layout();
    stored.print();
    println!(
        "state: built in {:.1} s; on the way, one thread: decode {:.0} events/s, process {:.0} events/s \
         (0 to {tracked} customers: includes creating every customer and growing the tables)",
        build_time.as_secs_f64(),
        events as f64 / decoding.as_secs_f64(),
        events as f64 / processing.as_secs_f64()
    );
    if let Some((n, took)) = steady {
        println!(
            "state: steady pass, one thread: {n} events of existing customers processed at {:.0} events/s \
             (with {tracked} customers in memory)",
            n as f64 / took.as_secs_f64()
        );
    }
}

/// The decoded events of one chunk of customers, `shift_days` later than generated (with event
/// ids of their own when shifted); adds the decoding time to `decoding`.
fn chunk_events(chunk: usize, shift_days: i64, decoding: &mut Duration) -> Vec<Event> {
    let spec = StreamSpec {
        customers: CHUNK,
        days: DAYS,
        seed: 1_000 + chunk as u64,
        scenarios: false,
        noise: false,
    };
    let lines = generate(&spec).lines;
    let t = Instant::now();
    let mut events: Vec<Event> =
        lines.iter().map(|l| decode(l.as_bytes()).expect("generated lines are valid")).collect();
    *decoding += t.elapsed();
    for event in &mut events {
        event.customer_id = format!("{chunk}-{}", event.customer_id);
        if shift_days != 0 {
            event.ts = Timestamp(event.ts.0 + shift_days * DAY);
            event.event_id = format!("{}+{shift_days}d", event.event_id);
        }
    }
    events
}

/// Chunks whose customers get a second period of history in the steady pass.
const STEADY_CHUNKS: usize = 10;

/// Throughput once the state is built: the next `DAYS` days of `STEADY_CHUNKS` chunks of
/// customers spread over the whole population, merged in time order so that consecutive events
/// belong to customers scattered across memory (as in production, unlike a freshly built small
/// state that fits in the CPU caches). Only existing customers: no state is created.
fn steady_pass(engine: &Engine, rules: &RuleSet, chunks: usize) -> Option<(usize, Duration)> {
    let step = chunks / STEADY_CHUNKS;
    if step == 0 {
        return None; // too few customers for a meaningful spread
    }
    let mut unused = Duration::ZERO;
    let mut events: Vec<Event> =
        (0..STEADY_CHUNKS).flat_map(|i| chunk_events(i * step, i64::from(DAYS), &mut unused)).collect();
    events.sort_by_key(|e| e.ts);
    let before = engine.state.len();
    let t = Instant::now();
    for event in &events {
        engine.process(rules, event);
    }
    let took = t.elapsed();
    assert_eq!(engine.state.len(), before, "the steady pass only sees existing customers");
    Some((events.len(), took))
}

/// The customers' states as stored: encoded sizes (bytes per customer) and the encoding rate.
struct Stored {
    /// Encoded size of every customer, ascending.
    sizes: Vec<u32>,
    /// Sizes of the customers with incidents (open or earlier tasks).
    with_incidents: Vec<u32>,
    took: Duration,
}

impl Stored {
    /// Encodes every customer's state once (after the steady pass, as a checkpoint would).
    fn of(engine: &Engine) -> Stored {
        let mut sizes = Vec::with_capacity(engine.state.len());
        let mut with_incidents = Vec::new();
        let t = Instant::now();
        for entry in engine.state.customers.iter() {
            let len = encode(entry.value()).len() as u32;
            sizes.push(len);
            if entry.value().incidents.is_some() {
                with_incidents.push(len);
            }
        }
        let took = t.elapsed();
        sizes.sort_unstable();
        with_incidents.sort_unstable();
        Stored { sizes, with_incidents, took }
    }

    fn print(&self) {
        let mean = |v: &[u32]| v.iter().map(|&b| u64::from(b)).sum::<u64>() as f64 / v.len().max(1) as f64;
        let at = |v: &[u32], q: f64| {
            v.get(((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1))).copied()
        };
        let n = self.sizes.len();
        let total: u64 = self.sizes.iter().map(|&b| u64::from(b)).sum();
        println!(
            "stored: {n} customers encoded (state::codec, format v{}): mean {:.1} B, p50 {} B, p99 {} B, max {} B; \
             {:.1} MB in all",
            callahead::state::codec::FORMAT_VERSION,
            mean(&self.sizes),
            at(&self.sizes, 0.5).unwrap_or(0),
            at(&self.sizes, 0.99).unwrap_or(0),
            self.sizes.last().copied().unwrap_or(0),
            total as f64 / 1e6
        );
        if !self.with_incidents.is_empty() {
            println!(
                "stored:   of which {} with incidents: mean {:.1} B, p99 {} B",
                self.with_incidents.len(),
                mean(&self.with_incidents),
                at(&self.with_incidents, 0.99).unwrap_or(0)
            );
        }
        println!(
            "stored: encoded at {:.0} customers/s, {:.0} MB/s (one thread)",
            n as f64 / self.took.as_secs_f64(),
            total as f64 / 1e6 / self.took.as_secs_f64()
        );
    }
}

/// The state's own measurement of its memory (what the `state_bytes` gauge reports): over every
/// customer, and from the sample the service takes, each timed.
struct Measured {
    whole: usize,
    whole_took: Duration,
    sampled: usize,
    sampled_took: Duration,
}

/// Customers the service's gauge samples (see `serve`'s `observe_state`).
const GAUGE_SAMPLE: usize = 1_000;

impl Measured {
    fn of(engine: &Engine) -> Measured {
        let t = Instant::now();
        let whole = engine.state.memory_bytes();
        let whole_took = t.elapsed();
        let t = Instant::now();
        let sampled = engine.state.memory_bytes_sampled(GAUGE_SAMPLE);
        let sampled_took = t.elapsed();
        Measured { whole, whole_took, sampled, sampled_took }
    }

    fn print(&self, held: usize, customers: usize) {
        let off = |b: usize| 100.0 * (b as f64 - held as f64) / held as f64;
        println!(
            "state: measured by the state (StateStore::memory_bytes, capacities): {} bytes, {:.1}/customer, \
             {:+.1}% of the allocator's count; walking all {customers} customers took {:.1} ms",
            self.whole,
            self.whole as f64 / customers as f64,
            off(self.whole),
            self.whole_took.as_secs_f64() * 1e3
        );
        println!(
            "state:   from a sample of {GAUGE_SAMPLE} customers (the gauge): {} bytes, {:+.1}% of the allocator's \
             count, in {:.3} ms",
            self.sampled,
            off(self.sampled),
            self.sampled_took.as_secs_f64() * 1e3
        );
    }
}

/// Heap held by the customers' states, by field, from capacities.
#[derive(Default)]
struct HeapParts {
    keys: usize,
    profiles: usize,
    cards: usize,
    card_ids: usize,
    physical_uses: usize,
    devices: usize,
    sparse: usize,
    tasks_and_learned: usize,
    with_incidents: usize,
    with_sparse: usize,
}

impl HeapParts {
    fn of(engine: &Engine) -> HeapParts {
        let mut h = HeapParts::default();
        for entry in engine.state.customers.iter() {
            h.keys += entry.key().len();
            let c = entry.value();
            let mut listed = 0;
            if let Some(p) = &c.profile {
                let bytes = p.heap_bytes();
                h.profiles += bytes;
                listed += bytes;
            }
            h.cards += c.cards.capacity() * size_of::<CardState>();
            listed += c.cards.capacity() * size_of::<CardState>();
            for card in &c.cards {
                h.card_ids += card.card_id.len();
                h.physical_uses += card.uses.capacity() * size_of::<PhysicalUse>();
                listed += card.card_id.len() + card.uses.capacity() * size_of::<PhysicalUse>();
            }
            h.devices += c.logins.devices.capacity() * size_of::<u64>();
            listed += c.logins.devices.capacity() * size_of::<u64>();
            let sparse = c.logins.failures.heap_bytes()
                + c.logins.new_devices.heap_bytes()
                + c.contacts.heap_bytes()
                + c.complaints.heap_bytes()
                + c.churn.heap_bytes()
                + c.notices.heap_bytes()
                + c.notices.iter().map(|n| n.countries.capacity() * 2).sum::<usize>()
                + c.trusted_countries.heap_bytes()
                + c.cooldowns.heap_bytes()
                + c.absences.heap_bytes();
            h.sparse += sparse;
            h.with_sparse += usize::from(sparse > 0);
            listed += sparse;
            h.tasks_and_learned += c.heap_bytes().saturating_sub(listed);
            h.with_incidents += usize::from(c.incidents.is_some());
        }
        h
    }

    /// Everything counted (the states' own heap allocations).
    fn total(&self) -> usize {
        self.keys
            + self.profiles
            + self.cards
            + self.card_ids
            + self.physical_uses
            + self.devices
            + self.sparse
            + self.tasks_and_learned
    }

    fn print(&self, customers: usize) {
        let per = |b: usize| b as f64 / customers as f64;
        println!("state:     of which heap per customer, by field (from capacities):");
        for (name, bytes) in [
            ("customer id keys", self.keys),
            ("profiles (encoded)", self.profiles),
            ("cards (Vec<CardState> slots)", self.cards),
            ("card ids", self.card_ids),
            ("physical uses (Vec<PhysicalUse>)", self.physical_uses),
            ("login devices", self.devices),
            ("rarely used parts, when used", self.sparse),
            ("tasks and what outcomes taught", self.tasks_and_learned),
        ] {
            println!("state:       {name:<40} {:>7.1}", per(bytes));
        }
        println!(
            "state:       customers with rarely used parts allocated: {} ({:.1}%); with incidents: {}",
            self.with_sparse,
            100.0 * self.with_sparse as f64 / customers as f64,
            self.with_incidents
        );
    }
}

/// The inline size of `CustomerState`, by field (what every table slot costs).
fn print_layout() {
    let c = CustomerState::default();
    println!(
        "state: layout: CardState {} B, PhysicalUse {} B, HistoryItem {} B, Profile {} B",
        size_of::<CardState>(),
        size_of::<PhysicalUse>(),
        size_of::<HistoryItem>(),
        size_of::<Profile>()
    );
    let fields = [
        (
            "seen_ids (SparseRing<u64, 16>: commands)",
            size_of::<callahead::state::SparseRing<u64, DEDUP_IDS>>(),
        ),
        ("seen (SeenEvents: events in the horizon)", size_of_val(&c.seen)),
        ("peaks (SpendPeaks)", size_of_val(&c.peaks)),
        (
            "flows, resolved_complaints (SparseList)",
            size_of_val(&c.flows) + size_of_val(&c.resolved_complaints),
        ),
        ("history (Ring<HistoryItem, 6>)", size_of_val(&c.history)),
        ("spend (SpendBaseline)", size_of_val(&c.spend)),
        ("money_out (Ring<MoneyOut, 4>)", size_of_val(&c.money_out)),
        ("activity (ActivityBaseline)", size_of_val(&c.activity)),
        ("logins (LoginState)", size_of_val(&c.logins)),
        ("contacts (SparseRing)", size_of_val(&c.contacts)),
        ("complaints (SparseRing)", size_of_val(&c.complaints)),
        ("churn (Sparse<ChurnMarks>)", size_of_val(&c.churn)),
        ("notices, trusted, cooldowns, absences", 4 * size_of_val(&c.notices)),
        ("cards (Vec<CardState>)", size_of_val(&c.cards)),
    ];
    let listed: usize = fields.iter().map(|f| f.1).sum();
    println!("state: layout of CustomerState ({} B):", size_of::<CustomerState>());
    for (name, bytes) in fields {
        println!("state:   {name:<40} {bytes:>5} B");
    }
    println!(
        "state:   {:<40} {:>5} B",
        "the rest (profile, times, boxes, padding)",
        size_of::<CustomerState>() - listed
    );
}
