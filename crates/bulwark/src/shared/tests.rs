//! Against real Redis servers: the machine's (127.0.0.1:6379), and private
//! ones started here so that they can be frozen and killed.

use std::time::Duration;

use super::{Shared, SharedError};
use crate::config::Secret;
use crate::config::shared::SharedConfig;

pub(crate) use bulwark_sim::PrivateRedis;

pub(crate) fn config(port: u16, prefix: &str) -> SharedConfig {
    SharedConfig {
        url: Secret::new(format!("redis://127.0.0.1:{port}/0")),
        timeout: Duration::from_millis(50),
        key_prefix: prefix.into(),
    }
}

pub(crate) fn unique_prefix(test: &str) -> String {
    format!("test:{test}:{:08x}:", fastrand::u32(..))
}

pub(crate) async fn wait_until(mut ready: impl FnMut() -> bool, within: Duration) -> bool {
    let until = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < until {
        if ready() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ready()
}

async fn ping(shared: &Shared) -> Result<String, SharedError> {
    shared
        .run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
        .await
}

#[tokio::test]
async fn instances_sharing_a_prefix_count_each_other() {
    let prefix = unique_prefix("count");
    let (Ok(a), Ok(b)) = (
        Shared::start(config(6379, &prefix)),
        Shared::start(config(6379, &prefix)),
    ) else {
        panic!("cannot start");
    };
    let counted = wait_until(
        || a.instances() == 2 && b.instances() == 2,
        Duration::from_secs(5),
    )
    .await;
    assert!(counted, "{:?} {:?}", a.stats(), b.stats());
    assert_ne!(a.instance(), b.instance());
    assert_eq!(ping(&a).await.ok().as_deref(), Some("PONG"));
    let other = Shared::start(config(6379, &unique_prefix("other")));
    let Ok(other) = other else {
        panic!("cannot start")
    };
    assert!(wait_until(|| other.is_up(), Duration::from_secs(5)).await);
    assert_eq!(other.instances(), 1, "another prefix is another deployment");
}

#[tokio::test]
async fn an_unreachable_redis_answers_down_at_once() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(1);
    let Ok(shared) = Shared::start(config(port, "x:")) else {
        panic!("cannot start");
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..100 {
        assert!(matches!(ping(&shared).await, Err(SharedError::Down)));
    }
    let stats = shared.stats();
    assert!(!stats.up);
    assert_eq!(stats.fallbacks, 100);
    assert_eq!(stats.outages, 1, "one outage, however many calls");
}

/// A frozen Redis (SIGSTOP) holds the connection open and answers
/// nothing: the worst case. One call pays the timeout; the calls after it
/// do not wait at all; thawed, it is used again without a restart.
#[tokio::test]
async fn a_frozen_redis_costs_one_timeout_then_nothing_and_is_rejoined() -> std::io::Result<()> {
    let redis = PrivateRedis::start()?;
    let Ok(shared) = Shared::start(config(redis.port, "frozen:")) else {
        panic!("cannot start");
    };
    assert!(wait_until(|| shared.is_up(), Duration::from_secs(5)).await);
    assert!(ping(&shared).await.is_ok());

    redis.signal("-STOP");
    let started = tokio::time::Instant::now();
    let first = ping(&shared).await;
    let waited = started.elapsed();
    assert!(matches!(first, Err(SharedError::Timeout(_))), "{first:?}");
    assert!(waited < Duration::from_millis(500), "waited {waited:?}");
    let started = tokio::time::Instant::now();
    for _ in 0..50 {
        assert!(matches!(ping(&shared).await, Err(SharedError::Down)));
    }
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "down calls waited"
    );

    redis.signal("-CONT");
    assert!(
        wait_until(|| shared.is_up(), Duration::from_secs(5)).await,
        "not rejoined"
    );
    assert!(ping(&shared).await.is_ok());
    assert_eq!(shared.stats().outages, 1);
    Ok(())
}

/// Killed and started again on the same port: the connection is made anew.
#[tokio::test]
async fn a_restarted_redis_is_rejoined() -> std::io::Result<()> {
    let redis = PrivateRedis::start()?;
    let port = redis.port;
    let Ok(shared) = Shared::start(config(port, "restart:")) else {
        panic!("cannot start");
    };
    assert!(wait_until(|| shared.is_up(), Duration::from_secs(5)).await);
    drop(redis);
    let _ = ping(&shared).await;
    assert!(wait_until(|| !shared.is_up(), Duration::from_secs(5)).await);
    let _again = PrivateRedis::on(port)?;
    assert!(
        wait_until(|| shared.is_up(), Duration::from_secs(10)).await,
        "not rejoined"
    );
    assert!(ping(&shared).await.is_ok());
    Ok(())
}

#[tokio::test]
async fn messages_reach_every_subscriber_and_come_back_after_a_restart() -> std::io::Result<()> {
    let redis = PrivateRedis::start()?;
    let port = redis.port;
    let (Ok(a), Ok(b)) = (
        Shared::start(config(port, "ps:")),
        Shared::start(config(port, "ps:")),
    ) else {
        panic!("cannot start");
    };
    let mut heard = b.subscribe("news");
    assert!(wait_until(|| a.is_up(), Duration::from_secs(5)).await);
    let received = deliver(&a, &mut heard, b"first").await;
    assert_eq!(received.as_deref(), Some(&b"first"[..]));

    drop(redis);
    let _ = ping(&a).await;
    let _again = PrivateRedis::on(port)?;
    assert!(wait_until(|| a.is_up(), Duration::from_secs(10)).await);
    let received = deliver(&a, &mut heard, b"second").await;
    assert_eq!(received.as_deref(), Some(&b"second"[..]));
    Ok(())
}

/// Publishes until the subscriber hears it: a subscription takes a moment
/// to be made (or re-made), and what is published before is lost.
async fn deliver(
    from: &Shared,
    to: &mut tokio::sync::mpsc::Receiver<Vec<u8>>,
    message: &[u8],
) -> Option<Vec<u8>> {
    for _ in 0..100 {
        let _ = from.publish("news", message.to_vec()).await;
        if let Ok(Some(got)) = tokio::time::timeout(Duration::from_millis(100), to.recv()).await {
            return Some(got);
        }
    }
    None
}

/// A best-effort call (the cache's) that times out is a miss for its
/// caller only: Redis stays up for quotas and probes. The same stall in a
/// bounded call marks it down.
#[tokio::test]
async fn a_slow_best_effort_call_does_not_mark_redis_down() {
    let Ok(shared) = Shared::start(config(6379, &unique_prefix("best-effort"))) else {
        panic!("cannot start");
    };
    assert!(wait_until(|| shared.is_up(), Duration::from_secs(5)).await);
    let stall = |_| async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        redis::RedisResult::Ok(())
    };
    let slow = shared
        .run_best_effort(Duration::from_millis(50), stall)
        .await;
    assert!(matches!(slow, Err(SharedError::Timeout(_))), "{slow:?}");
    assert!(shared.is_up(), "a slow cache call marked Redis down");
    assert_eq!(shared.stats().dropped, 1);
    assert_eq!(shared.stats().outages, 0);
    assert!(ping(&shared).await.is_ok());

    let bounded = shared.run(stall).await;
    assert!(
        matches!(bounded, Err(SharedError::Timeout(_))),
        "{bounded:?}"
    );
    assert!(!shared.is_up());
}
