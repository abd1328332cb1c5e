//! Loading one partition's checkpoint into the engine, on every core: the work of a restore,
//! without the ownership bookkeeping around it (claiming, offsets, readiness: `recovery.rs`).
//!
//! The store streams the partition's rows in chunks into a bounded channel
//! ([`TaskStore::load_checkpoint`]); one decoder per core takes chunks from it, decodes each
//! customer ([`codec::decode`]), gives its tasks back what a checkpoint leaves out (the running
//! playbook's procedures, see [`incident::restore_context`]) and installs the chunk with one
//! [`Engine::restore`]. Reading, decoding and installing therefore overlap, and the rows in
//! flight stay bounded by the channel. The state map is a `DashMap`, so decoders installing at
//! the same time meet only on a shard's lock. Order does not matter: each customer is one entry.
//!
//! [`incident::restore_context`]: crate::incident::restore_context

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tracing::{error, info};

use crate::engine::Engine;
use crate::rules::playbook::Playbook;
use crate::state::codec;
use crate::store::{PartitionCheckpoint, StoreError, StoredCustomers, TaskStore};

/// Chunks read ahead of the decoders, per decoder.
const CHUNKS_AHEAD_PER_DECODER: usize = 2;

/// A restore's progress is logged each time it passes a multiple of this many customers.
const LOG_EVERY: u64 = 100_000;

/// What [`load_partition`] installed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    /// The partition's checkpoint (offsets, newest event time); `None` if it never had one.
    pub checkpoint: Option<PartitionCheckpoint>,
    /// Customers decoded and installed.
    pub customers: u64,
    /// Bytes read, as stored.
    pub bytes: u64,
    /// Rows that could not be decoded: those customers start afresh.
    pub corrupt: u64,
}

/// Reads `partition`'s checkpoint from `store` and installs its customers into `engine`,
/// decoding on every core (`decoders`: 0 = one per core). `playbook`: the running rules', to
/// give restored tasks their procedures. `progress` is called after each installed chunk with
/// its customers and bytes (from the decoder threads). The partition's watermark is not set:
/// the caller does that once the checkpoint is whole.
///
/// On an error the customers installed so far stay in the engine; loading again overwrites
/// them with the same states.
pub async fn load_partition(
    store: &TaskStore,
    group: &str,
    engine: &Arc<Engine>,
    partition: i32,
    playbook: Option<Arc<Playbook>>,
    decoders: usize,
    progress: impl Fn(u64, u64) + Send + Sync + 'static,
) -> Result<Loaded, StoreError> {
    let decoders = match decoders {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let (sender, receiver) = mpsc::channel::<StoredCustomers>(decoders * CHUNKS_AHEAD_PER_DECODER);
    let receiver = Arc::new(Mutex::new(receiver));
    let progress = Arc::new(progress);
    let installed = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..decoders)
        .map(|_| {
            let decoder = Decoder {
                engine: engine.clone(),
                partition,
                playbook: playbook.clone(),
                installed: installed.clone(),
            };
            let (receiver, progress) = (receiver.clone(), progress.clone());
            tokio::task::spawn_blocking(move || decoder.run(&receiver, &*progress))
        })
        .collect();
    // Whatever happens to the read, the sender is gone when it ends, so the decoders finish.
    let read = store.load_checkpoint(group, partition, sender).await;
    let mut loaded = Loaded::default();
    for worker in workers {
        match worker.await {
            Ok(done) => {
                loaded.customers += done.customers;
                loaded.bytes += done.bytes;
                loaded.corrupt += done.corrupt;
            }
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => error!(partition, error = %e, "a state decoder was cancelled"),
        }
    }
    loaded.checkpoint = read?;
    Ok(loaded)
}

/// One decoder thread's share of a partition.
struct Decoder {
    engine: Arc<Engine>,
    partition: i32,
    playbook: Option<Arc<Playbook>>,
    /// Customers installed by every decoder of this restore, for the progress log.
    installed: Arc<AtomicU64>,
}

impl Decoder {
    /// Decodes and installs chunks until the reader is done; returns this decoder's share.
    fn run(self, chunks: &Mutex<mpsc::Receiver<StoredCustomers>>, progress: &dyn Fn(u64, u64)) -> Loaded {
        let mut done = Loaded::default();
        loop {
            // The lock is held only while waiting for the next chunk, not while decoding it.
            let next = chunks.lock().expect("restore channel lock poisoned").blocking_recv();
            let Some(chunk) = next else { return done };
            let (customers, bytes) = self.install(chunk, &mut done);
            progress(customers, bytes);
            let before = self.installed.fetch_add(customers, Ordering::Relaxed);
            if (before + customers) / LOG_EVERY > before / LOG_EVERY {
                info!(partition = self.partition, customers = before + customers, "restoring");
            }
        }
    }

    /// Decodes one chunk and installs it with one call into the engine; returns the customers
    /// installed and the bytes read.
    fn install(&self, chunk: StoredCustomers, done: &mut Loaded) -> (u64, u64) {
        let mut states = Vec::with_capacity(chunk.len());
        let bytes = chunk.bytes() as u64;
        for (id, body) in chunk.iter() {
            match codec::decode(body, &self.engine.state.interner) {
                Ok(mut state) => {
                    if let Some(playbook) = &self.playbook {
                        crate::incident::restore_context(&mut state, playbook);
                    }
                    states.push((Box::<str>::from(id), state));
                }
                Err(e) => {
                    done.corrupt += 1;
                    error!(partition = self.partition, error = %e, "a stored customer state cannot be decoded; that customer starts afresh");
                }
            }
        }
        let customers = states.len() as u64;
        self.engine.restore(self.partition, i64::MIN, states);
        done.customers += customers;
        done.bytes += bytes;
        (customers, bytes)
    }
}
