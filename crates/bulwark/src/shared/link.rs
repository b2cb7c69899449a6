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
use tokio::time::Instant;

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
        let mut pulse = Pulse::default();
        loop {
            ticks.tick().await;
            let Some(inner) = inner.upgrade() else {
                return;
            };
            beat(&inner, &script, &mut pulse).await;
        }
    });
}

/// Whether heartbeats say Redis is fit for requests again.
///
/// Requests give up on Redis after the configured timeout, so a heartbeat
/// slower than that must not mark it up: it would flap, each request
/// marking down what the next beat marks up. And after an outage, two fast
/// beats in a row, so that one lucky answer from a struggling Redis does
/// not send every request back to it.
#[derive(Debug, Default)]
struct Pulse {
    fast_in_a_row: u32,
}

impl Pulse {
    /// Whether Redis may be marked up, given how long this beat took.
    /// `rejoining` is true once Redis has been down (not at first connect).
    fn answered(&mut self, took: Duration, timeout: Duration, rejoining: bool) -> bool {
        if took > timeout {
            self.fast_in_a_row = 0;
            return false;
        }
        self.fast_in_a_row = self.fast_in_a_row.saturating_add(1);
        !rejoining || self.fast_in_a_row >= 2
    }

    fn failed(&mut self) {
        self.fast_in_a_row = 0;
    }
}

async fn beat(inner: &Inner, script: &redis::Script, pulse: &mut Pulse) {
    let Some(mut connection) = connection(inner).await else {
        pulse.failed();
        return;
    };
    let key = format!("{}instances", inner.config.key_prefix);
    let ttl_ms = INSTANCE_TTL.as_millis() as u64;
    let started = Instant::now();
    // Waits longer than a request would, to keep counting instances
    // through a slow patch; only a fast answer marks Redis up.
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
            let rejoining = inner.outages.load(Ordering::Relaxed) > 0;
            if pulse.answered(started.elapsed(), inner.config.timeout, rejoining) {
                inner.mark_up();
            }
        }
        Ok(Err(error)) => {
            pulse.failed();
            inner.mark_down(&SharedError::Redis(error));
        }
        Err(_) => {
            pulse.failed();
            inner.mark_down(&SharedError::Timeout(inner.config.timeout));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(50);
    const FAST: Duration = Duration::from_millis(5);
    const SLOW: Duration = Duration::from_millis(150);

    #[test]
    fn a_beat_slower_than_a_request_may_wait_never_marks_up() {
        let mut pulse = Pulse::default();
        assert!(!pulse.answered(SLOW, TIMEOUT, false));
        assert!(pulse.answered(FAST, TIMEOUT, false), "first connect");
    }

    #[test]
    fn after_an_outage_two_fast_beats_in_a_row_mark_up() {
        let mut pulse = Pulse::default();
        assert!(!pulse.answered(FAST, TIMEOUT, true));
        assert!(!pulse.answered(SLOW, TIMEOUT, true), "slow breaks the run");
        assert!(!pulse.answered(FAST, TIMEOUT, true));
        pulse.failed();
        assert!(
            !pulse.answered(FAST, TIMEOUT, true),
            "failure breaks the run"
        );
        assert!(pulse.answered(FAST, TIMEOUT, true));
    }
}
