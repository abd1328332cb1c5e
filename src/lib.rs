//! callahead: reach the customer before they reach you.
//!
//! Events (card payments, logins, transfers, support contacts, complaints, product changes,
//! travel notices) are decoded and validated ([`event`]), applied to per-customer state
//! ([`state`]), checked by built-in detectors ([`detect`]) under rules loaded from files
//! ([`rules`]), and what fires becomes an incident, then a task with full context for a fraud or
//! care agent ([`incident`], [`task`]). [`engine`] ties these together and is pure: no I/O, no
//! clock. The edges ([`ingest`], [`replay`], [`demo`]) feed it and print what it opens.

#![forbid(unsafe_code)]

pub mod api;
pub mod backoff;
pub mod backtest;
pub mod bus;
pub mod codes;
pub mod command;
pub mod config;
pub mod demo;
pub mod detect;
pub mod embedded;
pub mod engine;
pub mod event;
pub mod geo;
pub mod incident;
pub mod ingest;
pub mod lifecycle;
pub mod metrics;
pub mod money;
pub mod outreach;
pub mod partitions;
pub mod phrases;
pub mod recovery;
pub mod replay;
pub mod rules;
pub mod serve;
pub mod sink;
pub mod state;
pub mod store;
pub mod task;
pub mod time;
pub mod vocab;
