//! Stopping the service: the signals that ask for it and the watchdog that bounds it.

use std::time::Duration;

use tracing::error;

/// Longest time from SIGTERM to exit. A batch or checkpoint still waiting for a failed store
/// or broker then is abandoned: nothing past the last checkpoint was committed, so the next
/// owner re-reads it (at-least-once holds). Kubernetes' grace period must exceed it.
pub const SHUTDOWN_BUDGET: Duration = Duration::from_secs(30);

/// Exits the process if a graceful shutdown overruns [`SHUTDOWN_BUDGET`].
pub(super) async fn watchdog() {
    signal().await;
    tokio::time::sleep(SHUTDOWN_BUDGET).await;
    error!(budget = ?SHUTDOWN_BUDGET, "shutdown overran its budget (a dependency is down); exiting without a final checkpoint");
    std::process::exit(3);
}

/// Resolves on SIGINT or SIGTERM.
pub(super) async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}
