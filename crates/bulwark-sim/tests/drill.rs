//! The drill additions end to end: time compression, runtime quotas,
//! sampled latency and atomic phase switches.

mod common;

use std::time::Duration;

use bulwark_sim::{
    Distribution, Fault, FaultRule, Latency, LatencyDist, SimConfig, SimPhase, StatusFault,
    mix_rules,
};
use common::{post, start_with};
use serde_json::{Value, json};
use tokio::time::Instant;

fn openai_body(stream: bool) -> Value {
    json!({"model": "gpt-4o-mini", "stream": stream,
        "messages": [{"role": "user", "content": "one two three four"}]})
}

fn sped_up(speed: f64) -> SimConfig {
    SimConfig {
        speed,
        ..SimConfig::default()
    }
}

/// At speed 600 a one-minute hang and a one-minute first token each take
/// 100 ms. The lower bound shows the wait was kept (divided, not dropped);
/// the upper bound, a sixth of the undivided minute, shows it was divided,
/// and leaves a busy machine 100 times the expected duration.
#[tokio::test]
async fn speed_divides_hangs_stalls_and_latency() {
    let server = start_with(sped_up(600.0)).await;
    let url = format!("{}/v1/chat/completions", server.url());
    server
        .sim
        .set_faults(vec![FaultRule::always(Fault::hang(60_000))]);
    let t = Instant::now();
    let r = post(&url, &[], &openai_body(false)).await;
    assert_eq!(r.status, 200);
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(90), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");

    server.sim.clear_faults();
    server.sim.set_latency(Latency {
        headers_ms: 0,
        first_token_ms: 60_000,
        token_interval_ms: 0,
    });
    let t = Instant::now();
    let r = post(&url, &[], &openai_body(true)).await;
    assert_eq!(r.status, 200);
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(90), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[tokio::test]
async fn advertised_retry_after_is_compressed_and_rounded_up() {
    let server = start_with(sped_up(60.0)).await;
    let url = format!("{}/v1/chat/completions", server.url());
    server
        .sim
        .set_faults(vec![FaultRule::always(Fault::Status(StatusFault {
            retry_after: Some(120),
            retry_after_ms: Some(1_500),
            ..StatusFault::new(429)
        }))]);
    let r = post(&url, &[], &openai_body(false)).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert_eq!(r.header("retry-after-ms"), Some("25"));
}

/// The quota is set at runtime and counts per scenario minute, which the
/// speed compresses. On the real clock and made race-free: at speed 600 the
/// three requests that must share one minute once had to fit in 100 ms, and
/// under load they did not (`[200, 200, 200]`). So they share a minute at
/// speed 1 (60 s), and only the wait for that minute to end runs at speed
/// 600, where a slow machine can only make the wait longer. The compressed
/// length itself is read from the quota's reset header, which is exact:
/// the first request of a window reports the whole minute.
/// (This crate's tests cannot pause tokio's clock: its dev-dependencies do
/// not enable tokio's `test-util`.)
#[tokio::test]
async fn quota_is_settable_at_runtime_and_its_minute_is_compressed() {
    let server = start_with(sped_up(1.0)).await;
    let url = format!("{}/v1/chat/completions", server.url());
    server.sim.set_rate_limit_rpm(Some(2));
    let first = post(&url, &[], &openai_body(false)).await;
    assert_eq!(first.header("x-ratelimit-reset-requests"), Some("1m0s"));
    let statuses = [
        first.status,
        post(&url, &[], &openai_body(false)).await.status,
        post(&url, &[], &openai_body(false)).await.status,
    ];
    assert_eq!(statuses, [200, 200, 429]);

    // At speed 600 the same minute lasts 100 ms: the two requests counted
    // above age out, and a new window reports its whole (compressed) minute.
    server.sim.set_speed(600.0);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let again = post(&url, &[], &openai_body(false)).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.header("x-ratelimit-reset-requests"), Some("100ms"));

    server.sim.set_rate_limit_rpm(None);
    for _ in 0..5 {
        assert_eq!(post(&url, &[], &openai_body(false)).await.status, 200);
    }
}

#[tokio::test]
async fn sampled_latency_varies_per_request() {
    let server = start_with(sped_up(1.0)).await;
    let url = format!("{}/v1/chat/completions", server.url());
    server.sim.set_latency_dist(Some(LatencyDist {
        headers: Some(Distribution::log_normal(20.0, 60.0)),
        ..LatencyDist::default()
    }));
    let mut took = Vec::new();
    for _ in 0..12 {
        let t = Instant::now();
        assert_eq!(post(&url, &[], &openai_body(false)).await.status, 200);
        took.push(t.elapsed());
    }
    let min = took.iter().min().unwrap();
    let max = took.iter().max().unwrap();
    assert!(*max > *min + Duration::from_millis(5), "{took:?}");
}

#[tokio::test]
async fn phase_applies_as_a_whole_over_http_and_in_rust() {
    let server = start_with(SimConfig::default()).await;
    let url = format!("{}/v1/chat/completions", server.url());
    server.sim.apply_phase(SimPhase {
        faults: mix_rules([(Fault::status(503), 1.0)]),
        rate_limit_rpm: Some(1000),
        ..SimPhase::default()
    });
    assert_eq!(post(&url, &[], &openai_body(false)).await.status, 503);
    let phase = json!({"faults": [{"fault": {"status": 529}}], "rate_limit_rpm": 5,
        "latency_dist": {"first_token": {"p50_ms": 10, "p95_ms": 20}}});
    let r = reqwest::Client::new()
        .put(format!("{}/_sim/phase", server.url()))
        .header("content-type", "application/json")
        .body(phase.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let config = server.sim.config();
    assert_eq!(config.rate_limit_rpm, Some(5));
    assert_eq!(config.faults, vec![FaultRule::always(Fault::status(529))]);
    assert!(config.latency_dist.is_some());
    assert_eq!(post(&url, &[], &openai_body(false)).await.status, 529);
}
