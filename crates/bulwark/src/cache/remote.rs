//! The response cache's second tier: entries in Redis, shared by every
//! instance of the deployment, so that an answer cached through one is a
//! hit through another.
//!
//! Each call goes through `Shared::run_best_effort`: nothing at all while
//! Redis is known down, and any failure is a miss or a dropped write that
//! does not mark Redis down (a slow cache call must not send quotas and
//! probes to local state). Writes are spawned by the caller: a request
//! never waits for Redis to store its answer.

use std::time::Duration;

use super::CacheKey;
use super::stored::{self, Entry, MAX_ENTRY_BYTES};
use crate::shared::Shared;

/// The Redis key of an entry. The cache key already covers the tenant, the
/// route and the whole request.
pub(crate) fn redis_key(shared: &Shared, key: &CacheKey) -> String {
    let mut name = String::with_capacity(6 + 64);
    name.push_str("cache:");
    for byte in key {
        name.push(char::from(HEX[usize::from(byte >> 4)]));
        name.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    shared.key(&name)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A spawned write may take longer than a request's call: nobody waits on
/// it, and an entry of up to `MAX_ENTRY_BYTES` needs a few milliseconds on
/// the wire.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// The entry under `key`, if Redis has one of ours and answers in time.
pub(crate) async fn get(shared: &Shared, key: &CacheKey) -> Option<Entry> {
    let name = redis_key(shared, key);
    // GETRANGE rather than GET: a value larger than any entry we write is
    // not read whole (one byte past the cap is enough to refuse it).
    let last = i64::try_from(MAX_ENTRY_BYTES).unwrap_or(i64::MAX);
    let bytes = shared
        .run_best_effort(shared.timeout(), |mut c| async move {
            redis::cmd("GETRANGE")
                .arg(name)
                .arg(0)
                .arg(last)
                .query_async::<Vec<u8>>(&mut c)
                .await
        })
        .await
        .ok()?;
    stored::decode(&bytes)
}

/// Stores `entry` for `keep`. The caller spawns this: a request never
/// waits for it. An entry too large to share, or already expired, is not
/// sent.
pub(crate) async fn put(shared: &Shared, key: &CacheKey, entry: &Entry, keep: Duration) {
    let millis = u64::try_from(keep.as_millis()).unwrap_or(u64::MAX);
    // Encoding and compressing a large entry is wasted while Redis is down.
    if millis == 0 || !shared.is_up() {
        return;
    }
    let Some(bytes) = stored::encode(entry) else {
        tracing::debug!(
            target = %entry.target,
            "answer too large for the shared cache; kept in this instance's only"
        );
        return;
    };
    let name = redis_key(shared, key);
    let stored = shared
        .run_best_effort(WRITE_TIMEOUT, |mut c| async move {
            redis::cmd("SET")
                .arg(name)
                .arg(bytes)
                .arg("PX")
                .arg(millis)
                .query_async::<()>(&mut c)
                .await
        })
        .await;
    if let Err(error) = stored {
        tracing::debug!("answer not shared: {error}");
    }
}
