//! The response cache's Redis tier: two `Client`s of one deployment (the
//! same `redis:` and key prefix) are two instances, and an answer cached
//! through one is a hit through the other. Real Redis, real time: the
//! machine's on 127.0.0.1:6379, and a private `redis-server` for freezing.

mod common;

use std::time::Duration;

use bulwark::api::ChatRequest;
use bulwark::cache::CacheStatus;
use bulwark::{Client, RequestOptions};
use bulwark_sim::{Fault, FaultRule, PrivateRedis, SimConfig, SimServer};
use futures_util::StreamExt;
use tokio::time::Instant;

use common::client_from_yaml;

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Deployment {
    a: Client,
    b: Client,
    sim: SimServer,
    prefix: String,
}

/// Two instances of one deployment in front of one simulated provider.
async fn deployment(test: &str, redis_port: u16) -> Result<Deployment, Box<dyn std::error::Error>> {
    deployment_with(test, redis_port, "cache: { ttl: 10m }").await
}

/// `route` is the route's options after its targets.
async fn deployment_with(
    test: &str,
    redis_port: u16,
    route: &str,
) -> Result<Deployment, Box<dyn std::error::Error>> {
    let sim = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let prefix = format!("test:{test}:{:08x}:", fastrand::u32(..));
    let yaml = format!(
        "providers:\n  sim: {{ kind: openai, base_url: \"{}/v1\" }}\nroutes:\n  main: {{ targets: [sim/gpt-4o-mini], {route} }}\nredis:\n  url: redis://127.0.0.1:{redis_port}/0\n  timeout: 50ms\n  key_prefix: \"{prefix}\"\n",
        sim.url()
    );
    let (a, b) = (client_from_yaml(&yaml)?, client_from_yaml(&yaml)?);
    for client in [&a, &b] {
        let Some(shared) = client.shared() else {
            return Err("redis: is set, yet the client shares no state".into());
        };
        let until = Instant::now() + Duration::from_secs(5);
        while !shared.is_up() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !shared.is_up() {
            return Err("Redis not reached".into());
        }
    }
    Ok(Deployment { a, b, sim, prefix })
}

/// Deterministic, so the route caches it.
fn request(text: &str) -> ChatRequest {
    let mut request = common::request(text, 16);
    request.temperature = Some(0.0);
    request
}

/// The answer's text, streamed.
async fn streamed(
    client: &Client,
    text: &str,
) -> Result<(String, Option<CacheStatus>), Box<dyn std::error::Error>> {
    let served = client
        .stream_with(request(text), RequestOptions::default())
        .await?;
    let status = served.cache;
    let mut events = served.value;
    let mut answer = String::new();
    while let Some(event) = events.next().await {
        if let bulwark::api::StreamEvent::TextDelta { text, .. } = event? {
            answer.push_str(&text);
        }
    }
    Ok((answer, status))
}

/// Writes reach Redis in the background: waits until `a`'s entry is there.
async fn shared_entries(
    prefix: &str,
    at_least: usize,
) -> Result<usize, Box<dyn std::error::Error>> {
    let client = redis::Client::open("redis://127.0.0.1:6379/0")?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}cache:*"))
            .query_async(&mut connection)
            .await?;
        if keys.len() >= at_least || Instant::now() > until {
            return Ok(keys.len());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_answer_cached_through_one_instance_is_a_hit_through_another() -> TestResult {
    let d = deployment("hit", 6379).await?;
    let first = d.a.chat(request("complete")).await?;
    assert_eq!(first.cache, Some(CacheStatus::Miss));
    assert_eq!(shared_entries(&d.prefix, 1).await?, 1);

    let second = d.b.chat(request("complete")).await?;
    assert_eq!(second.cache, Some(CacheStatus::Hit));
    assert_eq!(second.value, first.value, "the same answer");
    assert_eq!(second.target, first.target);
    assert_eq!(d.sim.sim.request_count(), 1, "the provider asked once");

    // Streamed: cached through `b` this time, a hit through `a`.
    let (live, status) = streamed(&d.b, "streamed").await?;
    assert_eq!(status, Some(CacheStatus::Miss));
    assert_eq!(shared_entries(&d.prefix, 2).await?, 2);
    let (hit, status) = streamed(&d.a, "streamed").await?;
    assert_eq!(status, Some(CacheStatus::Hit));
    assert!(!live.is_empty());
    assert_eq!(hit, live);
    assert_eq!(d.sim.sim.request_count(), 2);

    // A streamed and a complete answer are one entry.
    let whole = d.b.chat(request("streamed")).await?;
    assert_eq!(whole.cache, Some(CacheStatus::Hit));
    assert_eq!(d.sim.sim.request_count(), 2);
    Ok(())
}

#[tokio::test]
async fn a_corrupt_entry_in_redis_is_a_miss() -> TestResult {
    let d = deployment("corrupt", 6379).await?;
    d.a.chat(request("one")).await?;
    assert_eq!(shared_entries(&d.prefix, 1).await?, 1);
    let client = redis::Client::open("redis://127.0.0.1:6379/0")?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}cache:*", d.prefix))
        .query_async(&mut connection)
        .await?;
    let Some(key) = keys.first() else {
        panic!("no entry");
    };
    let mut bytes: Vec<u8> = redis::cmd("GET")
        .arg(key)
        .query_async(&mut connection)
        .await?;
    let half = bytes.len() / 2;
    for byte in &mut bytes[half..] {
        *byte = byte.wrapping_add(1);
    }
    redis::cmd("SET")
        .arg(key)
        .arg(bytes)
        .query_async::<()>(&mut connection)
        .await?;

    let served = d.b.chat(request("one")).await?;
    assert_eq!(served.cache, Some(CacheStatus::Miss));
    assert_eq!(d.sim.sim.request_count(), 2, "asked the provider again");
    Ok(())
}

/// A frozen Redis (SIGSTOP: connections stay open, nothing answers) costs
/// a miss at most one timeout, and the misses after it nothing: they go
/// upstream, and the answers are still cached in memory.
#[tokio::test]
async fn a_frozen_redis_leaves_the_memory_tier_without_waiting() -> TestResult {
    let redis = PrivateRedis::start()?;
    let d = deployment("frozen", redis.port).await?;
    d.a.chat(request("before")).await?;
    redis.signal("-STOP");

    // Generous: the sim answers quickly, and the bound is one 50 ms timeout
    // plus a wide margin for a busy machine; a hang would take far longer.
    let bound = Duration::from_millis(50 + 1_500);
    for i in 0..5 {
        let started = Instant::now();
        let served = d.b.chat(request(&format!("during {i}"))).await?;
        let took = started.elapsed();
        assert_eq!(served.cache, Some(CacheStatus::Miss));
        assert!(took < bound, "request {i} took {took:?}");
    }
    let started = Instant::now();
    let again = d.b.chat(request("during 0")).await?;
    assert_eq!(
        again.cache,
        Some(CacheStatus::Hit),
        "the memory tier still answers"
    );
    assert!(started.elapsed() < bound);
    assert_eq!(d.sim.sim.request_count(), 6);
    Ok(())
}

/// An entry another instance stored, past its TTL, is not a hit; but when
/// every target fails it is the `stale-cache` answer.
#[tokio::test]
async fn a_stale_entry_from_another_instance_answers_an_outage() -> TestResult {
    let d = deployment_with(
        "stale",
        6379,
        "cache: { ttl: 300ms, max_stale: 1h }, degrade: [stale-cache]",
    )
    .await?;
    let fresh = d.a.chat(request("old")).await?;
    assert_eq!(fresh.cache, Some(CacheStatus::Miss));
    assert_eq!(shared_entries(&d.prefix, 1).await?, 1);
    tokio::time::sleep(Duration::from_millis(400)).await;

    d.sim
        .sim
        .set_faults(vec![FaultRule::always(Fault::status(503))]);
    let stale = d.b.chat(request("old")).await?;
    assert_eq!(stale.cache, Some(CacheStatus::Stale));
    assert_eq!(stale.value, fresh.value);
    assert!(d.sim.sim.request_count() > 1, "asked upstream first");
    Ok(())
}
