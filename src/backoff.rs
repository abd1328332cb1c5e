//! Exponential back-off for retrying a dependency (the store, the broker, the SMTP relay): the
//! one retry pace of the service's edges. A leaf: it knows nothing of what is retried.

use std::time::Duration;

/// Exponential back-off from 100 ms to 5 s.
pub struct Backoff(Duration);

impl Backoff {
    /// The first wait is 100 ms.
    pub fn new() -> Self {
        Backoff(Duration::from_millis(100))
    }

    /// Sleeps the current wait, then doubles it (up to 5 s).
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}
