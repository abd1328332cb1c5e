//! Checkpoint and restore cost of one partition's state, against the real stores.
//!
//! Realistic customers come from the generator (64 days of activity each, planted incidents
//! included); their encoded states are reused round-robin under new ids to reach 10k, 100k or
//! 1M customers in one partition, written in a shuffled order (the service writes customers in
//! the order they changed, not by id, so the store's physical order is not the key's). For each
//! store and size it prints: bytes per customer as stored, the time to write them as checkpoints
//! of 20,000 customers, and the time a new owner takes to restore the partition
//! ([`load_partition`]: read, decode on every core, install into the engine, re-schedule
//! timers), which is the take-over time. Then where that time goes, each phase alone: reading
//! the rows (nothing done with them), decoding them on one thread, decoding and installing them
//! into an empty engine on one thread.
//!
//! `cargo bench --bench restore` (sizes from `CUSTOMERS`, default `10000,100000`; stores from
//! `STORES`, default `sqlite,postgres`; PostgreSQL at `POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; `PHASES=0` skips the phase timings;
//! `DECODERS=N` restores with N decoder threads instead of one per core). The README's figures:
//! `CUSTOMERS=10000,100000,1000000 cargo bench --bench restore`.

use std::sync::Arc;

/// The binary's allocator (see `src/main.rs`), so the figures are the service's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::time::Instant;

use callahead::engine::{Engine, EngineConfig};
use callahead::ingest::generator::{generate, StreamSpec};
use callahead::recovery::load_partition;
use callahead::replay::Replay;
use callahead::rules::RuleSet;
use callahead::state::codec;
use callahead::store::{PartitionCheckpoint, StoredCustomers, TaskStore};

/// Customers written per checkpoint call (the service writes one partition's changed customers).
const CHUNK: usize = 20_000;

fn main() {
    let list = |name: &str, default: &str| -> Vec<String> {
        std::env::var(name)
            .unwrap_or_else(|_| default.into())
            .split(',')
            .map(|s| s.trim().to_string())
            .collect()
    };
    let sizes: Vec<usize> = list("CUSTOMERS", "10000,100000")
        .iter()
        .map(|s| s.parse().expect("CUSTOMERS: comma-separated numbers"))
        .collect();
    let stores = list("STORES", "sqlite,postgres");
    let pg =
        std::env::var("POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let phases = std::env::var("PHASES").map_or(true, |v| v != "0");
    let decoders: usize = std::env::var("DECODERS").map_or(0, |v| v.parse().expect("DECODERS: a number"));

    let rules = RuleSet::load_dir(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/rules")))
        .expect("default rules");
    let templates = templates(&rules);
    let mean = templates.iter().map(Vec::len).sum::<usize>() as f64 / templates.len() as f64;
    println!("templates: {} generated customers, {:.0} B encoded on average", templates.len(), mean);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    for store_kind in &stores {
        for &n in &sizes {
            let bench = Bench {
                kind: store_kind,
                pg: &pg,
                n,
                templates: &templates,
                rules: &rules,
                phases,
                decoders,
            };
            runtime.block_on(bench.run());
        }
    }
}

/// Encoded states of realistic customers.
fn templates(rules: &RuleSet) -> Vec<Vec<u8>> {
    let generated =
        generate(&StreamSpec { customers: 2_000, days: 64, seed: 1, scenarios: true, noise: false });
    let mut replay = Replay::new(rules);
    for (i, line) in generated.lines.iter().enumerate() {
        replay.feed(i as u64 + 1, line.as_bytes());
    }
    replay.engine().state.customers.iter().map(|e| codec::encode(e.value())).collect()
}

/// One store and size.
struct Bench<'a> {
    kind: &'a str,
    pg: &'a str,
    n: usize,
    templates: &'a [Vec<u8>],
    rules: &'a RuleSet,
    phases: bool,
    decoders: usize,
}

impl Bench<'_> {
    async fn run(&self) {
        let (kind, n) = (self.kind, self.n);
        let (url, dir) = match kind {
            "sqlite" => {
                let dir =
                    std::env::temp_dir().join(format!("callahead-restore-bench-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).expect("temp dir");
                (format!("sqlite://{}", dir.join("state.db").display()), Some(dir))
            }
            "postgres" => (self.pg.to_string(), None),
            other => panic!("STORES: unknown store `{other}` (sqlite or postgres)"),
        };
        let store = TaskStore::connect(&url).await.expect("store");
        let group = format!("restore-bench-{}-{n}", std::process::id());
        let mut rows: Vec<(Box<str>, Vec<u8>)> = (0..n)
            .map(|i| (format!("c{i:08}").into_boxed_str(), self.templates[i % self.templates.len()].clone()))
            .collect();
        fastrand::Rng::with_seed(7).shuffle(&mut rows);
        let bytes: usize = rows.iter().map(|(_, b)| b.len()).sum();

        let epoch = store.claim_partition(&group, 0).await.expect("claim");
        let started = Instant::now();
        for (i, chunk) in rows.chunks(CHUNK).enumerate() {
            let checkpoint = PartitionCheckpoint {
                offsets: [("events".to_string(), (i * CHUNK + chunk.len()) as i64)].into(),
                newest: 0,
            };
            store.save_checkpoint(&group, 0, epoch, &checkpoint, chunk).await.expect("checkpoint");
        }
        let write = started.elapsed().as_secs_f64();
        drop(rows);

        let engine = Arc::new(Engine::new(EngineConfig::default()));
        let started = Instant::now();
        store.claim_partition(&group, 0).await.expect("claim");
        let playbook = Some(self.rules.playbook.clone());
        let loaded = load_partition(&store, &group, &engine, 0, playbook, self.decoders, |_, _| {})
            .await
            .expect("restore");
        let restore = started.elapsed().as_secs_f64();
        assert_eq!(loaded.customers, n as u64);
        assert_eq!(engine.state.len(), n);
        assert_eq!(loaded.checkpoint.expect("a checkpoint").offsets["events"], n as i64);
        println!(
            "{kind:>8} customers={n:>8} stored={:>5.0} B/customer write={:>7.2}s ({:>7.0} customers/s) restore={:>7.2}s ({:>7.0} customers/s)",
            bytes as f64 / n as f64,
            write,
            n as f64 / write,
            restore,
            n as f64 / restore,
        );
        drop(engine);
        if self.phases {
            self.phases(&store, &group).await;
        }
        store.reset_state(&group).await.expect("clean up");
        drop(store);
        if let Some(dir) = dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// Each phase of a restore alone, one thread each but the read (the store's own threads).
    async fn phases(&self, store: &TaskStore, group: &str) {
        let started = Instant::now();
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<StoredCustomers>(4);
        let keep = async {
            let mut chunks = Vec::new();
            while let Some(chunk) = receiver.recv().await {
                chunks.push(chunk);
            }
            chunks
        };
        let (read, chunks) = tokio::join!(store.load_checkpoint(group, 0, sender), keep);
        read.expect("read");
        let read = started.elapsed().as_secs_f64();

        let engine = Engine::new(EngineConfig::default());
        let started = Instant::now();
        let states: Vec<_> = chunks
            .iter()
            .flat_map(StoredCustomers::iter)
            .map(|(_, body)| codec::decode(body, &engine.state.interner).expect("decodes"))
            .collect();
        let decode = started.elapsed().as_secs_f64();
        drop(states);

        let engine = Engine::new(EngineConfig::default());
        let started = Instant::now();
        for chunk in &chunks {
            let states = chunk.iter().map(|(id, body)| {
                let state = codec::decode(body, &engine.state.interner).expect("decodes");
                (Box::<str>::from(id), state)
            });
            engine.restore(0, i64::MIN, states);
        }
        let decode_install = started.elapsed().as_secs_f64();
        println!(
            "{:>8} customers={:>8} phases: read {read:.2}s, decode {decode:.2}s (1 thread), decode+install {decode_install:.2}s (1 thread)",
            self.kind, self.n,
        );
    }
}
