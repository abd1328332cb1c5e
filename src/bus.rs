//! The command bus: how an accepted action reaches the engine that owns the customer.
//!
//! In `serve` it is the commands topic (keyed by customer id, co-partitioned with the input
//! topics), so whichever instance accepted the action, the owner of the customer's partition
//! applies it in order with the customer's events. A command is accepted once the broker has
//! acknowledged it (durable). In the embedded mode (the demo: one process, no broker) it is an
//! in-process queue that the demo's loop drains into the same engine.
//!
//! **Signed commands.** Whoever can produce to the commands topic could otherwise act as anyone:
//! every command on the topic carries an HMAC-SHA256 over its whole payload under a key of
//! `kafka.command_keys` (headers `callahead-kid` and `callahead-mac`; the first key signs, every
//! listed key verifies, so keys rotate like the answer links' keys). The consumer refuses an
//! unsigned command, one under an unknown key and one whose MAC does not match: dead-lettered
//! with the reason (`unsigned_command`, `unknown_command_key`, `bad_command_signature`) and
//! audited, never applied. Kafka ACLs to set beside it: `docs/agents-api.md`.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::mpsc;

use crate::command::Command;
use crate::outreach::links::LinkKey;

/// The header naming the key a command is signed with.
pub const KID_HEADER: &str = "callahead-kid";
/// The header holding a command's MAC (base64url, no padding).
pub const MAC_HEADER: &str = "callahead-mac";

/// What a command's MAC is computed over: a domain label, then the payload.
const DOMAIN: &[u8] = b"callahead-command\0";

/// The MAC of a command's payload under `key`.
pub fn sign(key: &LinkKey, payload: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(key.mac(DOMAIN, payload))
}

/// Checks a command message's signature against `keys`: `Err((reason code, detail))` when it
/// is unsigned, under a key not listed, or does not match (compared in constant time).
pub fn verify<H: Headers>(
    keys: &[LinkKey],
    headers: Option<&H>,
    payload: &[u8],
) -> Result<(), (&'static str, String)> {
    let header = |name: &str| {
        headers.and_then(|h| h.iter().find(|h| h.key == name)).and_then(|h| h.value).map(<[u8]>::to_vec)
    };
    let (Some(kid), Some(mac)) = (header(KID_HEADER), header(MAC_HEADER)) else {
        return Err((
            "unsigned_command",
            "the command carries no signature (callahead-kid, callahead-mac)".into(),
        ));
    };
    let kid = String::from_utf8_lossy(&kid).to_string();
    let Some(key) = keys.iter().find(|k| k.kid == kid) else {
        return Err((
            "unknown_command_key",
            format!("the command is signed with key `{kid}`, which is not configured"),
        ));
    };
    let expected = key.mac(DOMAIN, payload);
    let given = URL_SAFE_NO_PAD.decode(&mac).unwrap_or_default();
    if subtle::ConstantTimeEq::ct_eq(expected.as_slice(), given.as_slice()).into() {
        Ok(())
    } else {
        Err((
            "bad_command_signature",
            format!("the command's MAC under key `{kid}` does not match its payload"),
        ))
    }
}

/// Where commands go.
#[derive(Clone)]
pub enum CommandBus {
    /// The commands topic; commands are signed with `key`.
    Kafka { producer: FutureProducer, topic: String, key: LinkKey },
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
            CommandBus::Kafka { producer, topic, key } => {
                let payload = serde_json::to_vec(command).expect("commands serialize");
                let mac = sign(key, &payload);
                let headers = OwnedHeaders::new()
                    .insert(Header { key: KID_HEADER, value: Some(key.kid.as_str()) })
                    .insert(Header { key: MAC_HEADER, value: Some(mac.as_str()) });
                let record = FutureRecord::to(topic)
                    .key(command.customer_id.as_bytes())
                    .payload(&payload)
                    .headers(headers);
                producer.send(record, Duration::from_secs(10)).await.map_err(|(e, _)| BusError::Kafka(e))?;
                Ok(())
            }
            CommandBus::Local(tx) => tx.send(command.clone()).await.map_err(|_| BusError::Closed),
        }
    }
}
