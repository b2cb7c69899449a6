//! State shared between Bulwark instances through Redis (`redis:`).
//!
//! Every use of Redis goes through [`Shared::run`], which bounds it by the
//! configured timeout (50 ms by default). A call that times out or finds
//! the connection lost marks Redis down at once; from then on calls fail
//! immediately, without touching the network, and each caller answers from
//! its local state (a quota divided by the instances last seen, a local
//! breaker, the in-memory cache). A background task (`link.rs`) keeps a
//! heartbeat, which is also how the instance learns that Redis is back and
//! how many instances are live. So a hung Redis costs a request at most one
//! timeout, and only the requests in flight when it hung. The cache's calls
//! go through [`Shared::run_best_effort`] instead: bounded the same way,
//! but a failure there is only a miss, and does not take the quotas and
//! breakers local.

mod link;
mod pubsub;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::time::Instant;

use crate::config::shared::SharedConfig;

/// The opening of every script that needs the time: `now`, in
/// milliseconds on Redis's clock, which every instance shares (their own
/// clocks may disagree).
pub(crate) const NOW_MS: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
";

/// Why a shared call did not happen; the caller uses its local state.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("Redis is unreachable; local state answers until it is back")]
    Down,
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// What the metrics and the status page show of the link to Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedStats {
    pub up: bool,
    /// Instances that sent a heartbeat lately, this one included; while
    /// Redis is down, the last count seen.
    pub instances: u32,
    /// Calls answered from local state because Redis was down or slow.
    pub fallbacks: u64,
    /// Times Redis was found down.
    pub outages: u64,
    /// Best-effort calls (the cache's) that failed or timed out: a miss or
    /// a dropped write, which does not mark Redis down.
    pub dropped: u64,
}

/// A handle on the shared state; cheap to clone. One per process: a config
/// reload keeps it (`redis:` is read at start).
#[derive(Clone)]
pub struct Shared {
    inner: Arc<Inner>,
}

struct Inner {
    config: SharedConfig,
    client: redis::Client,
    /// This process, in heartbeats, leases and published messages.
    instance: String,
    connection: RwLock<Option<ConnectionManager>>,
    up: AtomicBool,
    instances: AtomicU32,
    fallbacks: AtomicU64,
    outages: AtomicU64,
    dropped: AtomicU64,
    /// When Redis last came back after being found down (or unreachable
    /// at start): what was decided locally meanwhile is not in Redis.
    rejoined: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("address", &self.inner.config.address())
            .field("instance", &self.inner.instance)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Shared {
    /// A handle that connects in the background; until it has, every call
    /// answers [`SharedError::Down`]. Must be called inside a Tokio runtime.
    pub fn start(config: SharedConfig) -> Result<Shared, SharedError> {
        let client = redis::Client::open(config.url.expose())?;
        let shared = Shared {
            inner: Arc::new(Inner {
                config,
                client,
                instance: new_instance_id(),
                connection: RwLock::new(None),
                up: AtomicBool::new(false),
                instances: AtomicU32::new(1),
                fallbacks: AtomicU64::new(0),
                outages: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                rejoined: Mutex::new(None),
            }),
        };
        link::spawn(Arc::downgrade(&shared.inner));
        Ok(shared)
    }

    /// This process's name among the instances.
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// `prefix` + `name`: every key and channel of this deployment.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.inner.config.key_prefix)
    }

    /// How long a call that a request waits on may take.
    pub fn timeout(&self) -> Duration {
        self.inner.config.timeout
    }

    pub fn is_up(&self) -> bool {
        self.inner.up.load(Ordering::Acquire)
    }

    /// Whether Redis came back from an outage less than `within` ago.
    pub fn rejoined_within(&self, within: Duration) -> bool {
        self.inner
            .rejoined
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|at| at.elapsed() < within)
    }

    /// Live instances (at least 1), for dividing a quota while Redis is down.
    pub fn instances(&self) -> u32 {
        self.inner.instances.load(Ordering::Relaxed).max(1)
    }

    pub fn stats(&self) -> SharedStats {
        SharedStats {
            up: self.is_up(),
            instances: self.instances(),
            fallbacks: self.inner.fallbacks.load(Ordering::Relaxed),
            outages: self.inner.outages.load(Ordering::Relaxed),
            dropped: self.inner.dropped.load(Ordering::Relaxed),
        }
    }

    /// Runs `call` on the shared connection within the timeout. While Redis
    /// is down it returns `Down` at once. A timeout or a broken connection
    /// marks Redis down; a command Redis refused (a script's error) does not.
    pub async fn run<T, F, Fut>(&self, call: F) -> Result<T, SharedError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let connection = self.usable()?;
        let timeout = self.inner.config.timeout;
        let error = match tokio::time::timeout(timeout, call(connection)).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) if !is_link_failure(&error) => return Err(SharedError::Redis(error)),
            Ok(Err(error)) => SharedError::Redis(error),
            Err(_) => SharedError::Timeout(timeout),
        };
        self.inner.fallbacks.fetch_add(1, Ordering::Relaxed);
        self.inner.mark_down(&error);
        Err(error)
    }

    /// As [`Shared::run`] for a call nothing depends on (the cache's reads
    /// and writes), within `timeout`. While Redis is down it returns `Down`
    /// at once; but its own timeout or failure does not mark Redis down:
    /// a large entry slow to send says nothing about Redis's health, and
    /// must not send every quota and probe to local state. Such a failure
    /// is a miss or a dropped write, counted in `dropped`.
    pub async fn run_best_effort<T, F, Fut>(
        &self,
        timeout: Duration,
        call: F,
    ) -> Result<T, SharedError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let connection = self.usable()?;
        let error = match tokio::time::timeout(timeout, call(connection)).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => SharedError::Redis(error),
            Err(_) => SharedError::Timeout(timeout),
        };
        self.inner.dropped.fetch_add(1, Ordering::Relaxed);
        Err(error)
    }

    /// The connection, if Redis is up; otherwise the call is answered
    /// locally, and counted so.
    fn usable(&self) -> Result<ConnectionManager, SharedError> {
        match self.inner.connection() {
            Some(connection) if self.is_up() => Ok(connection),
            _ => {
                self.inner.fallbacks.fetch_add(1, Ordering::Relaxed);
                Err(SharedError::Down)
            }
        }
    }

    /// Sends `payload` to every instance listening on `channel`.
    pub async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), SharedError> {
        let channel = self.key(channel);
        self.run(|mut c| async move {
            redis::cmd("PUBLISH")
                .arg(channel)
                .arg(payload)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    /// Messages published on `channel` by any instance (this one
    /// included), for as long as the receiver is kept. The subscription is
    /// re-made after Redis comes back; what was published meanwhile is lost,
    /// so a listener must not depend on seeing every message.
    pub fn subscribe(&self, channel: &str) -> tokio::sync::mpsc::Receiver<Vec<u8>> {
        pubsub::spawn(self.inner.client.clone(), self.key(channel))
    }
}

impl Inner {
    /// The connection, once the link has made it.
    fn connection(&self) -> Option<ConnectionManager> {
        self.connection
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn mark_down(&self, why: &SharedError) {
        if self.up.swap(false, Ordering::AcqRel) {
            self.outages.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(redis = %self.config.address(), "Redis lost ({why}); each instance uses its local state until it is back");
        }
    }

    fn mark_up(&self) {
        if !self.up.swap(true, Ordering::AcqRel) {
            if self.outages.load(Ordering::Relaxed) > 0 {
                *self.rejoined.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(Instant::now());
            }
            tracing::info!(redis = %self.config.address(), instance = %self.instance, "Redis reached; state is shared");
        }
    }
}

/// A lost or unusable connection, as opposed to an answer from Redis.
fn is_link_failure(error: &redis::RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_unrecoverable_error()
}

fn new_instance_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(32)
        .collect();
    let host = if host.is_empty() {
        "bulwark".into()
    } else {
        host
    };
    format!("{host}-{}-{:08x}", std::process::id(), fastrand::u32(..))
}

/// Test helpers other modules' tests reuse: a private Redis, a config.
#[cfg(test)]
pub(crate) mod tests;
