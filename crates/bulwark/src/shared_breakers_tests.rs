//! Probe locks against the machine's Redis (127.0.0.1:6379), a key prefix
//! per test; announced breaks without Redis.

use std::time::Duration;

use tokio::time::Instant;

use super::{ProbeLock, open_until, release_probe, take_probe};
use crate::shared::Shared;
use crate::shared::tests::{config, unique_prefix, wait_until};

async fn connected(prefix: &str) -> Shared {
    let Ok(shared) = Shared::start(config(6379, prefix)) else {
        panic!("cannot start");
    };
    assert!(
        wait_until(|| shared.is_up(), Duration::from_secs(5)).await,
        "Redis on 127.0.0.1:6379 not reached"
    );
    shared
}

#[test]
fn an_announced_break_never_outlasts_the_breakers_own() {
    let now = Instant::now();
    let max = Duration::from_secs(300);
    assert_eq!(open_until(now, u64::MAX, max), Some(now + max));
    assert_eq!(
        open_until(now, 30_000, max),
        Some(now + Duration::from_secs(30))
    );
}

/// The verdict of an earlier round, arriving late, must not free the
/// lock a later round of the same instance took.
#[tokio::test]
async fn a_late_verdict_does_not_free_a_later_rounds_lock() {
    let prefix = unique_prefix("probe-lock");
    let (one, other) = (connected(&prefix).await, connected(&prefix).await);
    let ttl = Duration::from_secs(30);
    let first = ProbeLock::new(&one, ttl);
    assert!(matches!(take_probe(&one, "t", &first).await, Ok(true)));
    // The first round ends (its lock expires or is released) and a second
    // round takes the lock anew.
    release_probe(&one, "t", first.clone());
    let second = ProbeLock::new(&one, ttl);
    assert!(
        wait_until_taken(&one, &second).await,
        "second round never got the lock"
    );
    // The first round's verdict is given again, late.
    release_probe(&one, "t", first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let outsider = ProbeLock::new(&other, ttl);
    assert!(
        matches!(take_probe(&other, "t", &outsider).await, Ok(false)),
        "the second round's lock was freed by the first's verdict"
    );
    release_probe(&one, "t", second);
    assert!(wait_until_taken(&other, &outsider).await, "not given back");
}

async fn wait_until_taken(shared: &Shared, lock: &ProbeLock) -> bool {
    for _ in 0..50 {
        if matches!(take_probe(shared, "t", lock).await, Ok(true)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}
