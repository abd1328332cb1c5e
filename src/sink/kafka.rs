//! Publishing to Kafka: task versions to the tasks topic (from the store's outbox) and refused
//! input to the dead-letter topic with the reason in headers. Every publish is awaited until the
//! broker acknowledges it; failures are retried by the caller, never dropped.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::config::KafkaConfig;
use crate::store::OutboxRow;

/// Creates the producer: idempotent, acknowledged by all in-sync replicas.
pub fn producer(config: &KafkaConfig) -> Result<FutureProducer, KafkaError> {
    let mut c = crate::ingest::kafka::client_config(config);
    c.set("acks", "all").set("linger.ms", "1").set("message.timeout.ms", "30000");
    c.create()
}

/// Publishes task versions (keyed by customer id; task id and version in headers too).
pub async fn publish_tasks(
    producer: &FutureProducer,
    topic: &str,
    rows: &[OutboxRow],
) -> Result<(), KafkaError> {
    let mut pending = Vec::with_capacity(rows.len());
    for r in rows {
        let version = r.version.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header { key: "task_id", value: Some(r.task_id.as_str()) })
            .insert(Header { key: "task_version", value: Some(version.as_str()) });
        let record = FutureRecord::to(topic).key(&r.customer_id).payload(&r.payload).headers(headers);
        pending.push(producer.send(record, Duration::from_secs(5)));
    }
    for p in pending {
        p.await.map_err(|(e, _)| e)?;
    }
    Ok(())
}

/// A refused input message and why.
pub struct DeadLetter {
    pub message: OwnedMessage,
    pub reason: &'static str,
    pub detail: String,
}

/// Publishes dead letters: the original key and payload, with headers naming the reason, the
/// detail and where the message came from.
pub async fn publish_dead_letters(
    producer: &FutureProducer,
    topic: &str,
    letters: &[DeadLetter],
) -> Result<(), KafkaError> {
    let mut pending = Vec::with_capacity(letters.len());
    for d in letters {
        let m = &d.message;
        let (partition, offset) = (m.partition().to_string(), m.offset().to_string());
        let headers = OwnedHeaders::new()
            .insert(Header { key: "callahead.reason", value: Some(d.reason) })
            .insert(Header { key: "callahead.error", value: Some(d.detail.as_str()) })
            .insert(Header { key: "callahead.source.topic", value: Some(m.topic()) })
            .insert(Header { key: "callahead.source.partition", value: Some(partition.as_str()) })
            .insert(Header { key: "callahead.source.offset", value: Some(offset.as_str()) });
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(topic).payload(m.payload().unwrap_or_default()).headers(headers);
        if let Some(k) = m.key() {
            record = record.key(k);
        }
        pending.push(producer.send(record, Duration::from_secs(5)));
    }
    for p in pending {
        p.await.map_err(|(e, _)| e)?;
    }
    Ok(())
}
