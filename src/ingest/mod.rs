//! Sources of events: the demo's generator and JSON-lines files (Kafka comes with `serve`).

pub mod generator;
pub mod jsonl;
pub mod kafka;
pub mod variations;
