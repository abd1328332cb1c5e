//! Integration tests: one crate (one link step), one module per area.
//!
//! - `scenarios`: a generated stream with planted incidents and look-alikes through the engine;
//! - `languages`: every text of every task, and every rule and procedure rendered again, in each
//!   supported language: no other language's words, no unfilled placeholder;
//! - `care_principles`: income that stops, codes spelled many ways, a customer's longer normal,
//!   on populations drawn from seeds (`ingest::variations`), as properties;
//! - `fraud_principles`: card testing low and slow or in bursts, a takeover after a password
//!   reset, a dormant account drained, a late ATM abroad, and their look-alikes (subscriptions
//!   billed together, the usual rent after a reset, a quiet customer back, resent events), on
//!   populations drawn from seeds (`ingest::variations`), as properties;
//! - `care_timers`: conditions that become true as time passes (a drop, silence, an absence) are
//!   found within a bounded delay of becoming true, and nobody else is;
//! - `feedback`: outcomes teach the engine (a legitimate trip or payment does not page again);
//! - `outreach`: e-mail to customers against a real SMTP server, one-click answers;
//! - `properties`: redelivery and late arrival do not change the set of tasks (proptest);
//! - `api`: the agents' API on the embedded mode, every endpoint and role, both stores;
//! - `console`: the agents' console in a real headless Chromium;
//! - `commands`: agents' actions through the commands topic, two instances, a SIGKILLed owner;
//! - `cli`: the `callahead` binary end to end (`replay`, `rules check`, `demo`, `backtest`);
//! - `serve`: the service against a real broker and both task stores;
//! - `recovery`: SIGKILL, instances joining and leaving, a database outage: state and tasks survive;
//! - `privacy`: erasure during traffic and after a restart (both stores), export, retention;
//! - `api_fuzz`: the agents' API fuzzed from its OpenAPI document (Schemathesis), on both stores;
//! - `ops`: the Grafana dashboard's queries against a real Prometheus scraping the service, the
//!   alert rules under promtool, the chart's manifests against the Kubernetes and CRD schemas.

mod api;
mod api_fuzz;
mod care_principles;
mod care_timers;
mod cli;
mod commands;
mod common;
mod console;
mod feedback;
mod fraud_principles;
mod helm;
mod languages;
mod ops;
mod outreach;
mod privacy;
mod properties;
mod recovery;
mod scenarios;
mod serve;
