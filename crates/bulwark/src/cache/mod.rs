//! The response cache (exact match), in memory, bounded by bytes.
//!
//! What is stored is the provider's stream, chunk by chunk, exactly as the
//! engine received it. A hit is therefore replayed through the same code as
//! a live answer: as a stream or whole, relayed or translated, in whatever
//! format the client speaks. Only answers that reached their end are stored;
//! a stream that failed or was abandoned never leaves a partial entry.
//!
//! With `redis:` set, Redis is a second tier behind the memory one
//! (`remote.rs`): a miss in memory looks there, and what is stored here is
//! also stored there, so every instance answers from any one's entries.

mod key;
mod remote;
mod stored;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

pub use key::{CacheKey, cache_key, embeddings_key};

use crate::api::WireFormat;
use crate::provider::Chunk;
use crate::shared::Shared;

/// What the caller allows the response cache to do (`Cache-Control`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CachePolicy {
    #[default]
    Use,
    /// `no-cache`: do not answer from the cache, but store the fresh answer.
    Refresh,
    /// `no-store`: neither read nor write.
    Bypass,
}

/// Whether an answer came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Miss,
    /// An expired entry, served because every target failed.
    Stale,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Stale => "stale",
        }
    }
}

/// A complete answer, as the provider streamed it.
#[derive(Debug)]
pub struct CachedAnswer {
    pub chunks: Vec<Chunk>,
    pub format: WireFormat,
    pub target: String,
    /// Features of the client's request `target` was sent without: a hit
    /// names the same target, so it says the same (`x-bulwark-dropped`).
    /// The key holds the client's format and its whole body, so a request
    /// that hits has the same features.
    pub dropped: Vec<&'static str>,
    /// Served as a hit until then; kept until `max_stale` later for
    /// `degrade: [stale-cache]`.
    fresh_until: Instant,
    keep_for: Duration,
    bytes: u32,
}

impl CachedAnswer {
    pub fn new(
        chunks: Vec<Chunk>,
        format: WireFormat,
        target: String,
        dropped: Vec<&'static str>,
        ttl: Duration,
        max_stale: Duration,
    ) -> Self {
        let bytes = chunks
            .iter()
            .map(|c| c.raw.data.len() + c.raw.event.as_ref().map_or(0, String::len) + 64)
            .sum::<usize>()
            .saturating_add(target.len() + 128);
        CachedAnswer {
            chunks,
            format,
            target,
            dropped,
            fresh_until: Instant::now() + ttl,
            keep_for: ttl.saturating_add(max_stale),
            bytes: u32::try_from(bytes).unwrap_or(u32::MAX),
        }
    }

    fn is_fresh(&self) -> bool {
        Instant::now() < self.fresh_until
    }

    /// The answer for the Redis tier, with its ends on the wall clock, and
    /// how much longer it is kept.
    fn to_entry(&self, now: SystemTime) -> (stored::Entry, Duration) {
        let since = Instant::now();
        let fresh = self.fresh_until.saturating_duration_since(since);
        let entry = stored::Entry {
            chunks: self.chunks.clone(),
            format: self.format,
            target: self.target.clone(),
            dropped: self.dropped.clone(),
            fresh_until: now + fresh,
            keep_until: now + self.keep_for,
        };
        (entry, self.keep_for)
    }

    /// An answer read from Redis, fresh and kept for what is left of its
    /// life there; `None` once it has none left.
    fn from_entry(entry: stored::Entry, now: SystemTime) -> Option<CachedAnswer> {
        let (fresh, keep) = entry.remaining(now);
        if keep.is_zero() {
            return None;
        }
        Some(CachedAnswer::new(
            entry.chunks,
            entry.format,
            entry.target,
            entry.dropped,
            fresh,
            keep.saturating_sub(fresh),
        ))
    }
}

/// Each entry lives for its route's TTL.
struct RouteTtl;

impl moka::Expiry<CacheKey, Arc<CachedAnswer>> for RouteTtl {
    #[expect(
        clippy::disallowed_types,
        reason = "moka's Expiry trait takes std's Instant; unused here, and eviction runs on moka's own clock"
    )]
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        value: &Arc<CachedAnswer>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.keep_for)
    }
}

/// How long a stale entry here is answered as a miss without asking Redis
/// again for a newer one.
const RECHECK_AFTER: Duration = Duration::from_secs(5);

/// Keys remembered as lately asked of Redis; beyond this the oldest are
/// forgotten (and asked again), so the memory stays small.
const RECHECKS_KEPT: u64 = 10_000;

#[derive(Clone)]
pub struct ResponseCache {
    entries: moka::future::Cache<CacheKey, Arc<CachedAnswer>>,
    /// The Redis tier, when `redis:` is set.
    shared: Option<Shared>,
    /// Keys with a stale entry here that Redis was lately asked about: a
    /// stale entry would otherwise send every request for it to Redis.
    asked: moka::future::Cache<CacheKey, ()>,
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache")
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

impl ResponseCache {
    pub fn new(max_bytes: u64) -> Self {
        ResponseCache {
            entries: moka::future::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_key, value: &Arc<CachedAnswer>| value.bytes)
                .expire_after(RouteTtl)
                .build(),
            shared: None,
            asked: moka::future::Cache::builder()
                .max_capacity(RECHECKS_KEPT)
                .time_to_live(RECHECK_AFTER)
                .build(),
        }
    }

    /// The same cache with Redis as its second tier.
    pub fn with_shared(mut self, shared: Option<Shared>) -> Self {
        self.shared = shared;
        self
    }

    /// A fresh entry: one within its TTL, from memory or else from Redis
    /// (where another instance may have stored it, or stored a newer one
    /// than the stale entry held here).
    pub async fn get(&self, key: &CacheKey) -> Option<Arc<CachedAnswer>> {
        if let Some(local) = self.entries.get(key).await {
            if local.is_fresh() {
                return Some(local);
            }
            if self.shared.is_none() || self.asked.contains_key(key) {
                return None;
            }
            self.asked.insert(*key, ()).await;
        }
        self.get_remote(key).await.filter(|a| a.is_fresh())
    }

    /// Any entry still kept, fresh or stale: the last resort when every
    /// target has failed.
    pub async fn get_stale(&self, key: &CacheKey) -> Option<Arc<CachedAnswer>> {
        match self.entries.get(key).await {
            Some(local) => Some(local),
            None => self.get_remote(key).await,
        }
    }

    /// Stores the answer here, and in Redis in the background: encoding
    /// and compressing it happen there too, off the request's way.
    pub async fn insert(&self, key: CacheKey, answer: CachedAnswer) {
        let answer = Arc::new(answer);
        if let Some(shared) = self.shared.as_ref().filter(|s| s.is_up()) {
            let (shared, stored) = (shared.clone(), answer.clone());
            tokio::spawn(async move {
                let (entry, keep) = stored.to_entry(SystemTime::now());
                remote::put(&shared, &key, &entry, keep).await;
            });
        }
        self.entries.insert(key, answer).await;
    }

    /// The entry in Redis, put in memory (fresh or stale: a request that
    /// then fails every target finds it there without asking again).
    async fn get_remote(&self, key: &CacheKey) -> Option<Arc<CachedAnswer>> {
        let shared = self.shared.as_ref()?;
        let entry = remote::get(shared, key).await?;
        let answer = Arc::new(CachedAnswer::from_entry(entry, SystemTime::now())?);
        self.entries.insert(*key, answer.clone()).await;
        Some(answer)
    }
}

#[cfg(test)]
#[path = "recheck_tests.rs"]
mod tests;
