//! The script against the machine's Redis (127.0.0.1:6379), a key prefix
//! per test.

use std::time::Duration;

use super::SharedQuotas;
use crate::config::RateLimits;
use crate::limit::quota::Tokens;
use crate::limit::window::Refusal;
use crate::shared::Shared;
use crate::shared::tests::{config, unique_prefix, wait_until};

async fn connected(test: &str) -> Shared {
    let Ok(shared) = Shared::start(config(6379, &unique_prefix(test))) else {
        panic!("cannot start");
    };
    assert!(
        wait_until(|| shared.is_up(), Duration::from_secs(5)).await,
        "Redis on 127.0.0.1:6379 not reached"
    );
    shared
}

fn quotas(shared: &Shared, limits: RateLimits) -> SharedQuotas {
    let Some(quotas) = SharedQuotas::new(shared, "quota:target:test", limits) else {
        panic!("no limits");
    };
    quotas
}

fn tokens(input: u64, output: u64) -> Tokens {
    Tokens { input, output }
}

async fn take(quotas: &SharedQuotas, tokens: Tokens) -> Result<String, Refusal> {
    let id = quotas.grant_id();
    match quotas.take(&id, tokens).await {
        Ok(Ok(())) => Ok(id),
        Ok(Err(refusal)) => Err(refusal),
        Err(error) => panic!("Redis failed: {error}"),
    }
}

#[tokio::test]
async fn grants_up_to_the_limit_then_says_how_long_to_wait() {
    let shared = connected("grants").await;
    let quotas = quotas(
        &shared,
        RateLimits {
            rpm: Some(5),
            ..RateLimits::default()
        },
    );
    for _ in 0..5 {
        assert!(take(&quotas, tokens(0, 0)).await.is_ok());
    }
    let Err(Refusal::Wait(wait)) = take(&quotas, tokens(0, 0)).await else {
        panic!("a sixth request in the minute was granted");
    };
    assert!(
        wait > Duration::from_secs(55) && wait <= Duration::from_secs(60),
        "wait {wait:?}"
    );
}

#[tokio::test]
async fn all_or_nothing_across_windows_and_too_large_is_final() {
    let shared = connected("all_or_nothing").await;
    let quotas = quotas(
        &shared,
        RateLimits {
            rpm: Some(10),
            tpm: Some(100),
            output_tpm: Some(50),
            ..RateLimits::default()
        },
    );
    assert!(take(&quotas, tokens(30, 40)).await.is_ok());
    // The output window refuses; the request and token windows must not
    // count it.
    assert!(matches!(
        take(&quotas, tokens(0, 20)).await,
        Err(Refusal::Wait(_))
    ));
    for _ in 0..9 {
        assert!(take(&quotas, tokens(1, 0)).await.is_ok());
    }
    assert!(matches!(
        take(&quotas, tokens(0, 0)).await,
        Err(Refusal::Wait(_))
    ));
    assert_eq!(take(&quotas, tokens(60, 51)).await, Err(Refusal::TooLarge));
    assert_eq!(take(&quotas, tokens(0, 51)).await, Err(Refusal::TooLarge));
}

#[tokio::test]
async fn grants_leave_the_window_and_the_wait_says_when() {
    let shared = connected("expiry").await;
    let quotas = quotas(
        &shared,
        RateLimits {
            rpm: Some(2),
            ..RateLimits::default()
        },
    )
    .over(Duration::from_millis(600));
    assert!(take(&quotas, tokens(0, 0)).await.is_ok());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(take(&quotas, tokens(0, 0)).await.is_ok());
    // The first grant frees the room: about 300 ms from now.
    let Err(Refusal::Wait(wait)) = take(&quotas, tokens(0, 0)).await else {
        panic!("over the limit");
    };
    assert!(
        wait > Duration::from_millis(150) && wait <= Duration::from_millis(320),
        "wait {wait:?}"
    );
    tokio::time::sleep(wait + Duration::from_millis(20)).await;
    assert!(
        take(&quotas, tokens(0, 0)).await.is_ok(),
        "the first grant expired"
    );
    assert!(matches!(
        take(&quotas, tokens(0, 0)).await,
        Err(Refusal::Wait(_))
    ));
}

#[tokio::test]
async fn a_corrected_estimate_frees_the_difference() {
    let shared = connected("correct").await;
    let quotas = quotas(
        &shared,
        RateLimits {
            tpm: Some(100),
            ..RateLimits::default()
        },
    );
    let Ok(id) = take(&quotas, tokens(20, 60)).await else {
        panic!("refused");
    };
    assert!(matches!(
        take(&quotas, tokens(10, 40)).await,
        Err(Refusal::Wait(_))
    ));
    let Ok(()) = quotas.correct(&id, tokens(20, 60), tokens(20, 5)).await else {
        panic!("correction failed");
    };
    assert!(take(&quotas, tokens(10, 40)).await.is_ok());
    // A correction for a grant that is not there changes nothing.
    let Ok(()) = quotas.correct("nobody:1", tokens(1, 1), tokens(0, 0)).await else {
        panic!("correction failed");
    };
    assert!(matches!(
        take(&quotas, tokens(10, 20)).await,
        Err(Refusal::Wait(_))
    ));
}

/// A refusal that must look past the first page of the log (128 grants)
/// still finds when enough is freed: here the 200th grant.
#[tokio::test]
async fn a_refusal_pages_through_a_long_log() {
    let shared = connected("paging").await;
    let quotas = quotas(
        &shared,
        RateLimits {
            tpm: Some(900),
            ..RateLimits::default()
        },
    );
    for _ in 0..300 {
        assert!(take(&quotas, tokens(3, 0)).await.is_ok());
    }
    let Err(Refusal::Wait(wait)) = take(&quotas, tokens(600, 0)).await else {
        panic!("granted over the limit");
    };
    assert!(
        wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
        "wait {wait:?}"
    );
}

/// Totals left without their log (the log expired or was evicted alone)
/// are dropped, rather than refusing grants nobody can see.
#[tokio::test]
async fn totals_without_a_log_are_forgotten() -> redis::RedisResult<()> {
    let shared = connected("drift").await;
    let quotas = quotas(
        &shared,
        RateLimits {
            rpm: Some(5),
            ..RateLimits::default()
        },
    );
    let client = redis::Client::open("redis://127.0.0.1:6379/0")?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    redis::cmd("HSET")
        .arg(&quotas.totals)
        .arg("r")
        .arg(50)
        .query_async::<()>(&mut connection)
        .await?;
    assert!(
        take(&quotas, tokens(0, 0)).await.is_ok(),
        "stale totals refused"
    );
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&quotas.totals)
        .query_async(&mut connection)
        .await?;
    assert!(ttl > 0, "totals kept without expiry: {ttl}");
    Ok(())
}
