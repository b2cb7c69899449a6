//! A stale entry held here against a private Redis, whose command counts
//! are this test's alone.

use std::time::Duration;

use super::{CachedAnswer, ResponseCache};
use crate::api::WireFormat;
use crate::provider::Chunk;
use crate::shared::Shared;
use crate::shared::tests::{PrivateRedis, config, wait_until};
use crate::sse::SseEvent;

/// GETRANGE calls Redis has served: the cache's reads.
async fn reads(port: u16) -> redis::RedisResult<u64> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/0"))?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut connection)
        .await?;
    Ok(info
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_getrange:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|calls| calls.parse().ok())
        .unwrap_or(0))
}

#[tokio::test]
async fn a_stale_entry_asks_redis_once_not_on_every_request()
-> Result<(), Box<dyn std::error::Error>> {
    let redis = PrivateRedis::start()?;
    let shared = Shared::start(config(redis.port, "recheck:"))?;
    assert!(wait_until(|| shared.is_up(), Duration::from_secs(5)).await);
    let cache = ResponseCache::new(1 << 20).with_shared(Some(shared));
    let key = [7u8; 32];
    let chunk = Chunk {
        raw: SseEvent {
            event: None,
            data: "{}".into(),
        },
        events: Vec::new(),
    };
    // Stale at once, kept for a minute (for `stale-cache`).
    let answer = CachedAnswer::new(
        vec![chunk],
        WireFormat::OpenAi,
        "t".into(),
        Vec::new(),
        Duration::ZERO,
        Duration::from_secs(60),
    );
    cache.insert(key, answer).await;
    for _ in 0..10 {
        assert!(cache.get(&key).await.is_none(), "a stale entry was a hit");
    }
    assert_eq!(reads(redis.port).await?, 1);
    Ok(())
}
