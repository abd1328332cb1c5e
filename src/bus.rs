//! The command bus: how an accepted action reaches the engine that owns the customer.
//!
//! In `serve` it is the commands topic (keyed by customer id, co-partitioned with the input
//! topics), so whichever instance accepted the action, the owner of the customer's partition
//! applies it in order with the customer's events. A command is accepted once the broker has
//! acknowledged it (durable). In the embedded mode (the demo: one process, no broker) it is an
//! in-process queue that the demo's loop drains into the same engine.

use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::mpsc;

use crate::command::Command;

/// Where commands go.
#[derive(Clone)]
pub enum CommandBus {
    /// The commands topic.
    Kafka { producer: FutureProducer, topic: String },
    /// An in-process queue (embedded mode).
    Local(mpsc::Sender<Command>),
}

/// A command could not be handed over.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the broker did not accept the command: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("the engine's command queue is closed")]
    Closed,
}

impl CommandBus {
    /// Hands a command over; returns once it is durable (acknowledged by the broker) or queued.
    pub async fn send(&self, command: &Command) -> Result<(), BusError> {
        match self {
            CommandBus::Kafka { producer, topic } => {
                let payload = serde_json::to_vec(command).expect("commands serialize");
                let record = FutureRecord::to(topic).key(command.customer_id.as_bytes()).payload(&payload);
                producer.send(record, Duration::from_secs(10)).await.map_err(|(e, _)| BusError::Kafka(e))?;
                Ok(())
            }
            CommandBus::Local(tx) => tx.send(command.clone()).await.map_err(|_| BusError::Closed),
        }
    }
}
