//! A quota book through a Redis outage, against a private Redis that can
//! be frozen.

use std::time::Duration;

use super::QuotaBook;
use crate::config::RateLimits;
use crate::limit::quota::Tokens;
use crate::limit::window::Refusal;
use crate::shared::Shared;
use crate::shared::tests::{PrivateRedis, config, wait_until};

/// The limit spent locally while Redis was frozen still counts once it
/// is back: Redis, which never saw those grants, must not add a second
/// limit's worth in the same minute.
#[tokio::test]
async fn the_minute_after_an_outage_does_not_grant_the_limit_twice()
-> Result<(), Box<dyn std::error::Error>> {
    let redis = PrivateRedis::start()?;
    let shared = Shared::start(config(redis.port, "book:"))?;
    assert!(wait_until(|| shared.is_up(), Duration::from_secs(5)).await);
    let limits = RateLimits {
        rpm: Some(10),
        ..RateLimits::default()
    };
    let book = QuotaBook::new(limits, Some(&shared), "quota:target:t");
    let none = Tokens::default();

    redis.signal("-STOP");
    for n in 0..10 {
        assert!(book.take(none).await.is_ok(), "local grant {n} refused");
    }
    assert!(matches!(book.take(none).await, Err(Refusal::Wait(_))));
    redis.signal("-CONT");
    assert!(
        wait_until(|| shared.is_up(), Duration::from_secs(10)).await,
        "not rejoined"
    );
    assert!(
        matches!(book.take(none).await, Err(Refusal::Wait(_))),
        "Redis granted on top of the limit spent during the outage"
    );
    Ok(())
}
