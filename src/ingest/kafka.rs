//! The Kafka source: a consumer in a consumer group, read in batches, with offsets stored only
//! by the caller once what a batch caused is durable (at-least-once).
//!
//! Standard client features only (subscribe, fetch, store offsets, commit), so it works against
//! Apache Kafka, Redpanda, MSK, Confluent Cloud and other Kafka-protocol brokers. librdkafka
//! settings (security, SASL, TLS) pass through from the configuration.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::statistics::Statistics;

use crate::config::KafkaConfig;
use crate::metrics::Metrics;

/// What the service does when the group moves partitions. Both run inside the consumer's poll,
/// before librdkafka assigns or lets go of the partitions, and may block until done.
pub trait PartitionHooks: Send + Sync {
    /// Partition numbers about to be assigned: restore their state.
    fn assigned(&self, partitions: &BTreeSet<i32>);
    /// Partition numbers about to be revoked: checkpoint and forget them; returns the
    /// (topic, partition, next offset) now durable, stored before letting go. `lost`: the
    /// instance was expelled from the group and may no longer write for them.
    fn revoked(&self, partitions: &BTreeSet<i32>, lost: bool) -> Vec<(String, i32, i64)>;
}

/// Client context: librdkafka statistics become the consumer-lag metric; rebalances call the
/// service's [`PartitionHooks`].
pub struct LagContext {
    pub metrics: Arc<Metrics>,
    pub hooks: Arc<dyn PartitionHooks>,
}

impl ClientContext for LagContext {
    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .with_label_values(&[topic, &partition.to_string()])
                        .set(p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for LagContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                let partitions: BTreeSet<i32> = list.elements().iter().map(|e| e.partition()).collect();
                tracing::info!(partitions = ?partitions, "partitions assigned");
                self.hooks.assigned(&partitions);
            }
            Rebalance::Revoke(list) => {
                let partitions: BTreeSet<i32> = list.elements().iter().map(|e| e.partition()).collect();
                let lost = consumer.assignment_lost();
                tracing::info!(partitions = ?partitions, lost, "partitions revoked");
                for (topic, partition, next) in self.hooks.revoked(&partitions, lost) {
                    // Committed on unassign (auto-commit): the next owner starts there.
                    if let Err(e) = consumer.store_offset(&topic, partition, next - 1) {
                        tracing::warn!(error = %e, topic, partition, "cannot store the revoked partition's offset");
                    }
                }
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }
}

/// The consumer type of the service.
pub type EventConsumer = StreamConsumer<LagContext>;

/// Common client settings: brokers plus the pass-through settings.
pub fn client_config(config: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.brokers);
    for (k, v) in &config.client {
        c.set(k, v);
    }
    c
}

/// Creates the consumer (not yet subscribed). Offsets are stored explicitly after durability
/// and committed automatically in the background, and synchronously on shutdown.
///
/// The range assignor: the input topics and the commands topic are co-partitioned, and range
/// gives every topic's partition N to the same instance, so one instance owns each customer's
/// state, events and commands alike. (Cooperative rebalancing, which lets partitions that do
/// not move keep flowing, may split partition N of two topics between instances.)
pub fn consumer(
    config: &KafkaConfig,
    metrics: Arc<Metrics>,
    hooks: Arc<dyn PartitionHooks>,
) -> Result<EventConsumer, KafkaError> {
    let strategy = "range";
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", strategy)
        // librdkafka backs off up to a second between fetches at low rates by default.
        .set("fetch.queue.backoff.ms", "1")
        // How long the broker may hold a fetch that finds nothing: the latency floor on brokers
        // that wait it out (Tansu does; Apache Kafka answers as soon as data arrives). Not below
        // 5: Tansu 0.6's memory storage then gives up on large fetches and returns nothing.
        .set("fetch.wait.max.ms", "10")
        // A crashed instance's partitions move after this plus a group join (measured on the
        // test broker with 6 s: processing again 12.3 s after a SIGKILL; librdkafka's default
        // is 45 s). Heartbeats come from librdkafka's own thread, so a busy engine never misses
        // one; a long pause of the whole process (a stopped VM) does.
        .set("session.timeout.ms", "10000")
        .set("statistics.interval.ms", "5000");
    for (k, v) in &config.client {
        c.set(k, v);
    }
    c.create_with_context(LagContext { metrics, hooks })
}

/// Partition count of each topic among `topics` that exists.
pub fn partition_counts(
    consumer: &EventConsumer,
    topics: &[&str],
    timeout: Duration,
) -> Result<Vec<(String, usize)>, KafkaError> {
    let metadata = consumer.fetch_metadata(None, timeout)?;
    Ok(topics
        .iter()
        .filter_map(|w| metadata.topics().iter().find(|t| t.name() == *w))
        .map(|t| (t.name().to_string(), t.partitions().len()))
        .collect())
}

/// Topics among `wanted` that the cluster does not have.
pub fn missing_topics(
    consumer: &EventConsumer,
    wanted: &[&str],
    timeout: Duration,
) -> Result<Vec<String>, KafkaError> {
    let metadata = consumer.fetch_metadata(None, timeout)?;
    Ok(wanted
        .iter()
        .filter(|w| !metadata.topics().iter().any(|t| t.name() == **w && t.error().is_none()))
        .map(|w| w.to_string())
        .collect())
}

/// Waits up to `idle` for the next message (an empty batch if none came), then takes more until
/// `max` messages, or until none is ready once `wait` has passed (0: take what is already
/// fetched, wait for nothing). Each message comes with `tag(partition)` read when it was
/// received (rebalances run inside `recv`, so the tag tells under which assignment it was
/// fetched). Cancelling it while it waits for the first message loses nothing; cancelling it
/// later drops the messages taken so far, so callers only cancel it to stop (they are
/// re-delivered from the committed offset).
pub async fn next_batch(
    consumer: &EventConsumer,
    max: usize,
    wait: Duration,
    idle: Duration,
    tag: impl Fn(i32) -> u64,
) -> Result<Vec<(OwnedMessage, u64)>, KafkaError> {
    let first = match tokio::time::timeout(idle, consumer.recv()).await {
        Ok(m) => m?.detach(),
        Err(_) => return Ok(Vec::new()),
    };
    let mut batch = Vec::with_capacity(max.min(4096));
    let first_tag = tag(first.partition());
    batch.push((first, first_tag));
    let deadline = Instant::now() + wait;
    while batch.len() < max {
        // A zero wait still takes a message librdkafka already holds (the timeout polls first).
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(m)) => {
                let t = tag(m.partition());
                batch.push((m.detach(), t));
            }
            Ok(Err(e)) => return if batch.is_empty() { Err(e) } else { Ok(batch) },
            Err(_) => break,
        }
    }
    Ok(batch)
}

/// The message's key as text, if it has one.
pub fn key_text(m: &OwnedMessage) -> Option<&str> {
    m.key().and_then(|k| std::str::from_utf8(k).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoHooks;

    impl PartitionHooks for NoHooks {
        fn assigned(&self, _: &BTreeSet<i32>) {}
        fn revoked(&self, _: &BTreeSet<i32>, _: bool) -> Vec<(String, i32, i64)> {
            Vec::new()
        }
    }

    /// The build carries TLS and SCRAM (librdkafka refuses these settings at client creation
    /// when built without OpenSSL), so a secured cluster can be configured.
    #[tokio::test]
    async fn tls_and_scram_settings_are_accepted() {
        let mut config = KafkaConfig::default();
        for (k, v) in [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "callahead"),
            ("sasl.password", "secret"),
        ] {
            config.client.insert(k.into(), v.into());
        }
        let created = consumer(&config, Arc::new(Metrics::new()), Arc::new(NoHooks));
        assert!(created.is_ok(), "{:?}", created.err());
    }
}
