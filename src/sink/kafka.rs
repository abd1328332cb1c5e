//! Publishing to Kafka: task versions to the tasks topic and requests to the card system to the
//! actions topic (from the store's outboxes), and refused
//! input to the dead-letter topic with the reason in headers. Every publish is awaited until the
//! broker acknowledges it; failures are retried by the caller, never dropped.
//!
//! A batch is handed to librdkafka whole before any acknowledgement is awaited, so it travels in
//! a few produce requests rather than one round trip per record.

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage, ToBytes};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::config::KafkaConfig;
use crate::store::{ActionRow, OutboxRow};

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
        let record = FutureRecord::to(topic).key(&r.customer_id).headers(headers);
        // An empty payload is an erased customer's tombstone: a null value, so compaction
        // removes the customer's versions (`store::privacy`).
        let record = if r.payload.is_empty() { record } else { record.payload(&r.payload) };
        pending.push(enqueue(producer, record).await?);
    }
    acknowledged(pending).await
}

/// Publishes requests to the card system (keyed by customer id; the idempotency key in the
/// `action_id` header too).
pub async fn publish_actions(
    producer: &FutureProducer,
    topic: &str,
    rows: &[ActionRow],
) -> Result<(), KafkaError> {
    let mut pending = Vec::with_capacity(rows.len());
    for r in rows {
        let headers =
            OwnedHeaders::new().insert(Header { key: "action_id", value: Some(r.action_id.as_str()) });
        let record = FutureRecord::to(topic).key(&r.customer_id).payload(&r.payload).headers(headers);
        pending.push(enqueue(producer, record).await?);
    }
    acknowledged(pending).await
}

/// Hands a record to librdkafka now (not when a future is first polled). When its queue is full,
/// waits a millisecond for deliveries to drain it, then tries again.
async fn enqueue<K, P>(
    producer: &FutureProducer,
    mut record: FutureRecord<'_, K, P>,
) -> Result<DeliveryFuture, KafkaError>
where
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Waits for every delivery; the first failure is the result.
async fn acknowledged(pending: Vec<DeliveryFuture>) -> Result<(), KafkaError> {
    for delivery in pending {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => return Err(e),
            Err(_) => return Err(KafkaError::Canceled),
        }
    }
    Ok(())
}

/// A refused input message and why.
pub struct DeadLetter {
    pub message: OwnedMessage,
    pub reason: &'static str,
    pub detail: String,
    /// What to publish instead of the original payload (a card number masked); `None`: the
    /// original.
    pub payload: Option<Vec<u8>>,
}

/// Publishes dead letters: the original key and payload (or the payload given instead), with
/// headers naming the reason, the detail and where the message came from.
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
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
            .payload(d.payload.as_deref().unwrap_or(m.payload().unwrap_or_default()))
            .headers(headers);
        if let Some(k) = m.key() {
            record = record.key(k);
        }
        pending.push(enqueue(producer, record).await?);
    }
    acknowledged(pending).await
}
