//! Several instances sharing quotas and breakers through Redis. Each
//! `Client` here is one instance (its own `Shared` link, its own id); they
//! share a key prefix, as the instances of one deployment do. Against the
//! machine's Redis (127.0.0.1:6379, a prefix per test) and, to freeze it,
//! a private `redis-server`. Real time throughout: Redis's clock is real.

use std::sync::Arc;
use std::time::Duration;

use bulwark::api::{ChatRequest, Message, Role};
use bulwark::resilience::breaker::BreakerState;
use bulwark::{Client, Config};
use bulwark_sim::{Fault, FaultRule, PrivateRedis, SimConfig, SimServer};
use tokio::time::Instant;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const MODEL: &str = "claude-sonnet-4-5";

fn prefix(test: &str) -> String {
    format!("test:{test}:{:08x}:", fastrand::u32(..))
}

/// Where the instances meet: a Redis port, a key prefix, the timeout.
struct Meet<'a>(u16, &'a str, &'a str);

/// `count` instances of one deployment: a provider `p` at `sim` with
/// `limits`, a route `solo` to it alone, and `redis:` when given.
fn instances(
    count: usize,
    sim: &SimServer,
    limits: &str,
    redis: Option<Meet<'_>>,
    extra: &str,
) -> Result<Vec<Arc<Client>>, Box<dyn std::error::Error>> {
    let config = config(sim, limits, redis, extra)?;
    (0..count)
        .map(|_| Ok(Arc::new(Client::from_config(&config)?)))
        .collect()
}

fn config(
    sim: &SimServer,
    limits: &str,
    redis: Option<Meet<'_>>,
    extra: &str,
) -> Result<Config, Box<dyn std::error::Error>> {
    let redis = redis.map_or(String::new(), |Meet(port, prefix, timeout)| {
        format!("redis: {{ url: \"redis://127.0.0.1:{port}/0\", key_prefix: \"{prefix}\", timeout: {timeout} }}\n")
    });
    let yaml = format!(
        "providers:\n  p: {{ kind: anthropic, base_url: \"{}\"{limits} }}\nroutes:\n  solo: {{ targets: [p/{MODEL}], deadline: 2s, max_retries: 0 }}\n{redis}{extra}",
        sim.url()
    );
    Ok(Config::from_yaml(&yaml, "test", &|_| None)?)
}

/// Until every instance has reached Redis and counts all the others.
async fn joined(clients: &[Arc<Client>]) -> bool {
    let want = clients.len() as u32;
    for _ in 0..250 {
        if clients.iter().all(|c| {
            c.shared()
                .is_some_and(|s| s.is_up() && s.instances() == want)
        }) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn request() -> ChatRequest {
    let mut request = ChatRequest::new("solo", vec![Message::text(Role::User, "Hello")]);
    request.max_tokens = Some(16);
    request
}

/// What a burst of requests got.
#[derive(Debug, Default)]
struct Burst {
    served: usize,
    rate_limited: usize,
    other: Vec<String>,
    slowest: Duration,
}

/// `per_client` requests through each client, 16 at a time per client.
async fn burst(clients: &[Arc<Client>], per_client: usize) -> Burst {
    let mut tasks = tokio::task::JoinSet::new();
    for client in clients {
        for lane in 0..16 {
            let client = Arc::clone(client);
            let share = per_client / 16 + usize::from(lane < per_client % 16);
            tasks.spawn(async move {
                let mut results = Vec::new();
                for _ in 0..share {
                    let started = Instant::now();
                    let result = client.chat(request()).await.map(drop).map_err(|f| f.error);
                    results.push((result, started.elapsed()));
                }
                results
            });
        }
    }
    let mut burst = Burst::default();
    while let Some(Ok(results)) = tasks.join_next().await {
        for (result, took) in results {
            burst.slowest = burst.slowest.max(took);
            match result {
                Ok(()) => burst.served += 1,
                Err(error) if error.status == 429 => burst.rate_limited += 1,
                Err(error) => burst
                    .other
                    .push(format!("{} {}", error.status, error.message)),
            }
        }
    }
    burst
}

/// A 600 rpm quota, with 900 requests spread over three instances: 600
/// reach the provider (±5 %), not 3 × 600. Without Redis, each instance
/// lets its own 600 through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_quota_holds_across_three_instances() -> TestResult {
    let sim = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let limits = ", limits: { rpm: 600 }";
    let prefix = prefix("quota");
    // A generous Redis timeout: this machine is shared, and a call timed
    // out under its load would be decided locally, which is another test's
    // subject.
    let clients = instances(3, &sim, limits, Some(Meet(6379, &prefix, "1s")), "")?;
    assert!(joined(&clients).await, "the instances never met in Redis");
    let got = burst(&clients, 300).await;
    let reached = sim.sim.request_count();
    assert!(got.other.is_empty(), "{:?}", got.other);
    let stats: Vec<_> = clients
        .iter()
        .filter_map(|c| c.shared().map(|s| s.stats()))
        .collect();
    assert!(
        (570..=630).contains(&reached),
        "{reached} requests reached a 600 rpm provider: {got:?} {stats:?}"
    );
    assert_eq!(got.served, reached);
    assert_eq!(got.rate_limited, 900 - reached);

    // The contrast: the same load without Redis triples the quota.
    let alone = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let clients = instances(3, &alone, limits, None, "")?;
    let got = burst(&clients, 300).await;
    assert_eq!(alone.sim.request_count(), 900, "{got:?}");
    Ok(())
}

fn breaker_state(client: &Client) -> Option<BreakerState> {
    client
        .target_states()
        .into_iter()
        .find(|(label, _)| label == &format!("p/{MODEL}"))
        .map(|(_, state)| state.with_breaker(|b| b.state()))
}

/// Two failures open the breaker on one instance; the other two skip the
/// target within a second without calling it (one of them through an
/// engine a config reload made, as the gateway's would be). When the break
/// ends, one probe (not three) goes to the provider, and its success closes
/// every instance's breaker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_opened_through_one_instance_is_honoured_by_the_others() -> TestResult {
    let sim = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let prefix = prefix("breaker");
    let breaker = "breaker: { consecutive_failures: 2, base_ejection: 3s, max_ejection: 3s }\n";
    let mut clients = instances(3, &sim, "", Some(Meet(6379, &prefix, "1s")), breaker)?;
    assert!(joined(&clients).await, "the instances never met in Redis");
    // A reload that changes the provider, so its target gets a fresh
    // state: the reloaded engine is the one that serves, and the old one
    // goes away.
    let reload = config(
        &sim,
        ", limits: { rpm: 100000 }",
        Some(Meet(6379, &prefix, "1s")),
        breaker,
    )?;
    let (reloaded, _) = clients[2].reloaded(&reload)?;
    clients[2] = Arc::new(reloaded);
    // The subscriptions are made in the background: one round trip of
    // requests makes sure each instance has its target and listens.
    for client in &clients {
        client.chat(request()).await.map_err(|f| f.error.message)?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    sim.sim
        .set_faults(vec![FaultRule::always(Fault::status(500))]);
    let before = sim.sim.request_count();
    while breaker_state(&clients[0]) != Some(BreakerState::Open) {
        let _ = clients[0].chat(request()).await;
        assert!(sim.sim.request_count() - before <= 2, "no breaker opened");
    }
    let opened = Instant::now();
    let mut followed = false;
    while opened.elapsed() < Duration::from_secs(1) {
        if clients[1..]
            .iter()
            .all(|c| breaker_state(c) == Some(BreakerState::Open))
        {
            followed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(followed, "the others did not follow within 1 s");
    let calls = sim.sim.request_count();
    for client in &clients[1..] {
        assert!(client.chat(request()).await.is_err());
    }
    assert_eq!(
        sim.sim.request_count(),
        calls,
        "another instance called the dead provider"
    );

    // The provider recovers, slowly enough that every instance asks for a
    // probe while the first is still out.
    sim.sim
        .set_faults(vec![FaultRule::always(Fault::hang(800))]);
    tokio::time::sleep(Duration::from_millis(3200).saturating_sub(opened.elapsed())).await;
    let mut probes = tokio::task::JoinSet::new();
    for client in &clients {
        let client = Arc::clone(client);
        probes.spawn(async move { client.chat(request()).await.is_ok() });
    }
    let mut answered = 0;
    while let Some(result) = probes.join_next().await {
        answered += usize::from(result?);
    }
    assert_eq!(sim.sim.request_count() - calls, 1, "more than one probe");
    assert_eq!(answered, 1);
    let closed = Instant::now();
    while !clients
        .iter()
        .all(|c| breaker_state(c) == Some(BreakerState::Closed))
    {
        assert!(
            closed.elapsed() < Duration::from_secs(1),
            "not closed everywhere"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// The grants in Redis for target `p`'s quota.
async fn shared_grants(port: u16, prefix: &str) -> Result<u64, Box<dyn std::error::Error>> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/0"))?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let key = format!("{{{prefix}quota:target:p/{MODEL}}}:log");
    Ok(redis::cmd("ZCARD")
        .arg(key)
        .query_async(&mut connection)
        .await?)
}

/// Redis freezes mid-load. No request fails for it or waits more than the
/// Redis timeout and a wide margin; each instance falls back to its share
/// of the quota (600 / 3, less what it already spent); once Redis thaws,
/// the decisions are Redis's again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_falls_back_to_a_divided_quota_and_sharing_resumes() -> TestResult {
    let redis = PrivateRedis::start()?;
    let sim = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let prefix = prefix("frozen");
    let clients = instances(
        3,
        &sim,
        ", limits: { rpm: 600 }",
        Some(Meet(redis.port, &prefix, "50ms")),
        "",
    )?;
    assert!(joined(&clients).await, "the instances never met in Redis");

    let before = burst(&clients[..1], 60).await;
    assert_eq!(before.served, 60, "{before:?}");
    assert_eq!(shared_grants(redis.port, &prefix).await?, 60);

    redis.signal("-STOP");
    let during = burst(&clients, 300).await;
    assert!(
        during.other.is_empty(),
        "failed for Redis: {:?}",
        during.other
    );
    assert!(
        during.slowest < Duration::from_millis(1500),
        "a request waited {:?}",
        during.slowest
    );
    // The first's 60 count against its own share: 140 + 200 + 200.
    assert_eq!(during.served, 540, "{during:?}");
    assert_eq!(sim.sim.request_count(), 600);

    redis.signal("-CONT");
    let thawed = Instant::now();
    while !clients
        .iter()
        .all(|c| c.shared().is_some_and(|s| s.is_up()))
    {
        assert!(
            thawed.elapsed() < Duration::from_secs(10),
            "Redis not rejoined"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Calls that timed out when Redis froze were still in its socket, and
    // ran when it thawed: they count, which errs on the safe side.
    let thawed_grants = shared_grants(redis.port, &prefix).await?;
    let fallbacks = clients[1].shared().map(|s| s.stats().fallbacks);
    let after = burst(&clients[1..2], 10).await;
    assert!(after.other.is_empty(), "{:?}", after.other);
    assert_eq!(
        shared_grants(redis.port, &prefix).await?,
        thawed_grants + after.served as u64,
        "decided in Redis again: {after:?}"
    );
    assert_eq!(clients[1].shared().map(|s| s.stats().fallbacks), fallbacks);
    Ok(())
}

/// Redis frozen: a breaker works alone. It opens on its own failures,
/// without waiting on the announcement, and when its break ends it probes
/// without the shared lock rather than staying shut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_frozen_a_breaker_works_alone() -> TestResult {
    let redis = PrivateRedis::start()?;
    let sim = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let prefix = prefix("breaker_frozen");
    let clients = instances(
        2,
        &sim,
        "",
        Some(Meet(redis.port, &prefix, "50ms")),
        "breaker: { consecutive_failures: 2, base_ejection: 1s, max_ejection: 1s }\n",
    )?;
    assert!(joined(&clients).await, "the instances never met in Redis");
    redis.signal("-STOP");
    sim.sim
        .set_faults(vec![FaultRule::always(Fault::status(500))]);
    for _ in 0..4 {
        let started = Instant::now();
        assert!(clients[0].chat(request()).await.is_err());
        assert!(
            started.elapsed() < Duration::from_millis(1000),
            "a request waited {:?}",
            started.elapsed()
        );
    }
    assert_eq!(breaker_state(&clients[0]), Some(BreakerState::Open));
    assert_eq!(sim.sim.request_count(), 2, "calls after the breaker opened");
    assert_eq!(breaker_state(&clients[1]), Some(BreakerState::Closed));

    sim.sim.clear_faults();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let started = Instant::now();
    clients[0]
        .chat(request())
        .await
        .map_err(|f| f.error.message)?;
    assert!(started.elapsed() < Duration::from_millis(1000));
    assert_eq!(breaker_state(&clients[0]), Some(BreakerState::Closed));
    Ok(())
}
