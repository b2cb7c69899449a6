//! Keeps the request log and the stored responses from growing without
//! bound. Rollups, incidents and uptime are not touched: they are small and
//! hold the history that SLOs and the status page show.

use std::time::Duration;

use bulwark::observe::{UnixMs, unix_ms_now};
use tokio::task::JoinHandle;

use crate::{Store, StoreError};

/// Every `every` (starting now), deletes requests older than `keep`.
/// Failures are logged and retried at the next tick; abort the handle to
/// stop.
pub fn spawn_retention(store: Store, keep: Duration, every: Duration) -> JoinHandle<()> {
    spawn_purge(store, keep, every, Purged::Requests)
}

/// Every `every` (starting now), deletes stored responses older than
/// `ttl`, as OpenAI expires its own after 30 days. Reads already ignore
/// expired rows; this only reclaims their space.
pub fn spawn_response_expiry(store: Store, ttl: Duration, every: Duration) -> JoinHandle<()> {
    spawn_purge(store, ttl, every, Purged::Responses)
}

/// What a purge task deletes.
#[derive(Debug, Clone, Copy)]
enum Purged {
    Requests,
    Responses,
}

impl Purged {
    async fn before(self, store: &Store, cutoff: UnixMs) -> Result<u64, StoreError> {
        match self {
            Purged::Requests => store.purge_before(cutoff).await,
            Purged::Responses => store.purge_responses_before(cutoff).await,
        }
    }

    fn rows(self) -> &'static str {
        match self {
            Purged::Requests => "request log rows",
            Purged::Responses => "stored responses",
        }
    }
}

fn spawn_purge(store: Store, keep: Duration, every: Duration, purged: Purged) -> JoinHandle<()> {
    let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
    let every = every.max(Duration::from_millis(1));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let cutoff = unix_ms_now().saturating_sub(keep_ms);
            match purged.before(&store, cutoff).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(rows = n, cutoff, "purged old {}", purged.rows()),
                Err(error) => tracing::warn!(%error, "purging old {} failed", purged.rows()),
            }
        }
    })
}
