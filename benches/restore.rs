//! Checkpoint and restore cost of one partition's state, against the real stores.
//!
//! Realistic customers come from the generator (64 days of activity each, planted incidents
//! included); their encoded states are reused round-robin under new ids to reach 10k, 100k or
//! 1M customers in one partition. For each store and size it prints: bytes per customer as
//! stored, the time to write them as one checkpoint, and the time a new owner takes to restore
//! the partition (read, decode, install into the engine), which is the take-over time.
//!
//! `cargo bench --bench restore` (sizes from `CUSTOMERS`, default `10000,100000`; stores from
//! `STORES`, default `sqlite,postgres`; PostgreSQL at `POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`). `scripts/bench-restore.sh` runs 10k, 100k and 1M.

use std::time::Instant;

use callahead::engine::{Engine, EngineConfig};
use callahead::ingest::generator::{generate, StreamSpec};
use callahead::replay::Replay;
use callahead::rules::RuleSet;
use callahead::state::codec;
use callahead::store::{PartitionCheckpoint, TaskStore};

/// Customers written per checkpoint call (the service writes one partition's changed customers).
const CHUNK: usize = 20_000;

fn main() {
    let sizes: Vec<usize> = std::env::var("CUSTOMERS")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("CUSTOMERS: comma-separated numbers"))
        .collect();
    let stores: Vec<String> = std::env::var("STORES")
        .unwrap_or_else(|_| "sqlite,postgres".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let pg =
        std::env::var("POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());

    let templates = templates();
    let mean = templates.iter().map(Vec::len).sum::<usize>() as f64 / templates.len() as f64;
    println!("templates: {} generated customers, {:.0} B encoded on average", templates.len(), mean);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    for store_kind in &stores {
        for &n in &sizes {
            runtime.block_on(run(store_kind, &pg, n, &templates));
        }
    }
}

/// Encoded states of realistic customers.
fn templates() -> Vec<Vec<u8>> {
    let generated =
        generate(&StreamSpec { customers: 2_000, days: 64, seed: 1, scenarios: true, noise: false });
    let rules = RuleSet::load_dir(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/rules")))
        .expect("default rules");
    let mut replay = Replay::new(&rules);
    for (i, line) in generated.lines.iter().enumerate() {
        replay.feed(i as u64 + 1, line.as_bytes());
    }
    replay.engine().state.customers.iter().map(|e| codec::encode(e.value())).collect()
}

async fn run(kind: &str, pg: &str, n: usize, templates: &[Vec<u8>]) {
    let (url, _dir) = match kind {
        "sqlite" => {
            let dir = std::env::temp_dir().join(format!("callahead-restore-bench-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            let _ = std::fs::remove_file(dir.join("state.db"));
            (format!("sqlite://{}", dir.join("state.db").display()), Some(dir))
        }
        "postgres" => (pg.to_string(), None),
        other => panic!("STORES: unknown store `{other}` (sqlite or postgres)"),
    };
    let store = TaskStore::connect(&url).await.expect("store");
    let group = format!("restore-bench-{}-{n}", std::process::id());
    let rows: Vec<(Box<str>, Vec<u8>)> = (0..n)
        .map(|i| (format!("c{i:08}").into_boxed_str(), templates[i % templates.len()].clone()))
        .collect();
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

    let engine = Engine::new(EngineConfig::default());
    let started = Instant::now();
    store.claim_partition(&group, 0).await.expect("claim");
    let mut restored = 0usize;
    let checkpoint = store
        .load_checkpoint(
            &group,
            0,
            |id, body| {
                let state = codec::decode(&body, &engine.state.interner).expect("decodes");
                engine.restore(0, i64::MIN, [(id.into_boxed_str(), state)]);
                restored += 1;
            },
            |_| {},
        )
        .await
        .expect("restore")
        .expect("a checkpoint");
    let restore = started.elapsed().as_secs_f64();
    assert_eq!(restored, n);
    assert_eq!(checkpoint.offsets["events"], n as i64);
    println!(
        "{kind:>8} customers={n:>8} stored={:>5.0} B/customer write={:>7.2}s ({:>7.0} customers/s) restore={:>7.2}s ({:>7.0} customers/s)",
        bytes as f64 / n as f64,
        write,
        n as f64 / write,
        restore,
        n as f64 / restore,
    );
    store.reset_state(&group).await.expect("clean up");
}
