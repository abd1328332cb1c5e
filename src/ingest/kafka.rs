//! The Kafka source: a consumer in a consumer group, read in batches, with offsets stored only
//! by the caller once what a batch caused is durable (at-least-once).
//!
//! Standard client features only (subscribe, fetch, store offsets, commit), so it works against
//! Apache Kafka, Redpanda, MSK, Confluent Cloud and other Kafka-protocol brokers. librdkafka
//! settings (security, SASL, TLS) pass through from the configuration.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::statistics::Statistics;

use crate::config::KafkaConfig;
use crate::metrics::Metrics;

/// Client context that turns librdkafka statistics into the consumer-lag metric.
pub struct LagContext {
    pub metrics: Arc<Metrics>,
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

impl ConsumerContext for LagContext {}

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
pub fn consumer(config: &KafkaConfig, metrics: Arc<Metrics>) -> Result<EventConsumer, KafkaError> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        // librdkafka waits up to a second between fetches at low rates by default.
        .set("fetch.queue.backoff.ms", "1")
        .set("fetch.wait.max.ms", "10")
        .set("statistics.interval.ms", "5000");
    for (k, v) in &config.client {
        c.set(k, v);
    }
    c.create_with_context(LagContext { metrics })
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

/// Waits for the next message, then takes more until `max` messages or `wait` has passed.
pub async fn next_batch(
    consumer: &EventConsumer,
    max: usize,
    wait: Duration,
) -> Result<Vec<OwnedMessage>, KafkaError> {
    let first = consumer.recv().await?.detach();
    let mut batch = Vec::with_capacity(max.min(4096));
    batch.push(first);
    let deadline = Instant::now() + wait;
    while batch.len() < max {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(m)) => batch.push(m.detach()),
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
