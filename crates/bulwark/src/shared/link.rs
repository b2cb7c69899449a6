//! The link to Redis: connects, beats, and notices when Redis is back.
//!
//! One heartbeat a second, a script that records this instance under
//! Redis's own clock (instances' clocks may disagree) and counts the
//! instances heard from lately. A heartbeat that succeeds is what marks
//! Redis up again after an outage, so requests never probe a dead Redis.

use std::sync::atomic::Ordering;
use std::sync::{PoisonError, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Inner, SharedError};

/// How often an instance says it is alive.
pub(super) const HEARTBEAT: Duration = Duration::from_secs(1);

/// An instance not heard from for this long is no longer counted.
const INSTANCE_TTL: Duration = Duration::from_secs(5);

/// Connecting may take longer than a request's call: nothing waits on it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The script after `NOW_MS` (Redis's clock, in `now`).
const HEARTBEAT_SCRIPT: &str = r"
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('ZCARD', KEYS[1])
";

pub(super) fn spawn(inner: Weak<Inner>) {
    tokio::spawn(async move {
        let script = redis::Script::new(&format!("{}{HEARTBEAT_SCRIPT}", super::NOW_MS));
        let mut ticks = tokio::time::interval(HEARTBEAT);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(inner) = inner.upgrade() else {
                return;
            };
            beat(&inner, &script).await;
        }
    });
}

async fn beat(inner: &Inner, script: &redis::Script) {
    let Some(connection) = connection(inner).await else {
        return;
    };
    let key = format!("{}instances", inner.config.key_prefix);
    let ttl_ms = INSTANCE_TTL.as_millis() as u64;
    let mut connection = connection;
    let counted = tokio::time::timeout(
        inner.config.timeout.max(Duration::from_millis(200)),
        script
            .key(key)
            .arg(&inner.instance)
            .arg(ttl_ms)
            .invoke_async::<u32>(&mut connection),
    )
    .await;
    match counted {
        Ok(Ok(instances)) => {
            inner.instances.store(instances.max(1), Ordering::Relaxed);
            inner.mark_up();
        }
        Ok(Err(error)) => inner.mark_down(&SharedError::Redis(error)),
        Err(_) => inner.mark_down(&SharedError::Timeout(inner.config.timeout)),
    }
}

/// The connection, made on first need. The manager reconnects by itself
/// after a drop; it is made once, since making it waits for a first
/// connection.
async fn connection(inner: &Inner) -> Option<ConnectionManager> {
    if let Some(connection) = inner.connection() {
        return Some(connection);
    }
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(CONNECT_TIMEOUT))
        .set_number_of_retries(1)
        .set_max_delay(HEARTBEAT);
    let made = tokio::time::timeout(
        CONNECT_TIMEOUT,
        ConnectionManager::new_with_config(inner.client.clone(), config),
    )
    .await;
    match made {
        Ok(Ok(connection)) => {
            *inner
                .connection
                .write()
                .unwrap_or_else(PoisonError::into_inner) = Some(connection.clone());
            Some(connection)
        }
        Ok(Err(error)) => {
            note_unreachable(inner, &SharedError::Redis(error));
            None
        }
        Err(_) => {
            note_unreachable(inner, &SharedError::Timeout(CONNECT_TIMEOUT));
            None
        }
    }
}

/// Said once per outage, not once a second.
fn note_unreachable(inner: &Inner, why: &SharedError) {
    if inner.outages.load(Ordering::Relaxed) == 0 && !inner.up.load(Ordering::Acquire) {
        // Never connected yet: one warning, counted as the first outage.
        inner.outages.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(redis = %inner.config.address(), "cannot reach Redis ({why}); each instance uses its local state until it can");
        return;
    }
    inner.mark_down(why);
}
