//! Keeps the request log and the stored responses from growing without
//! bound. Rollups, incidents and uptime are not touched: they are small and
//! hold the history that SLOs and the status page show.

use std::time::Duration;

use bulwark::observe::unix_ms_now;
use tokio::task::JoinHandle;

use crate::Store;

/// Every `every` (starting now), deletes requests older than `keep`.
/// Failures are logged and retried at the next tick; abort the handle to
/// stop.
pub fn spawn_retention(store: Store, keep: Duration, every: Duration) -> JoinHandle<()> {
    let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
    let every = every.max(Duration::from_millis(1));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let cutoff = unix_ms_now().saturating_sub(keep_ms);
            match store.purge_before(cutoff).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(rows = n, cutoff, "purged old request log rows"),
                Err(error) => tracing::warn!(%error, "request log retention failed"),
            }
        }
    })
}

/// Every `every` (starting now), deletes stored responses older than
/// `ttl`, as OpenAI expires its own after 30 days. Reads already ignore
/// expired rows; this only reclaims their space.
pub fn spawn_response_expiry(store: Store, ttl: Duration, every: Duration) -> JoinHandle<()> {
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let every = every.max(Duration::from_millis(1));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let cutoff = unix_ms_now().saturating_sub(ttl_ms);
            match store.purge_responses_before(cutoff).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(rows = n, cutoff, "purged expired responses"),
                Err(error) => tracing::warn!(%error, "stored response expiry failed"),
            }
        }
    })
}
