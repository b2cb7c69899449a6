//! The resilience engine against simulated providers: the outage the project
//! exists for, retry storms, breakers, deadlines, hedging, and every style
//! of server hint.
//!
//! Every test runs on tokio's paused clock. The engine, the client's
//! deadline, the quotas and the simulator (started on the test's runtime)
//! all read tokio's clock, so hangs of seconds cost no real time, and no
//! timeout, deadline or quota window can be crossed because the machine is
//! busy: the clock moves only when every task is waiting on a timer.

use std::sync::Arc;
use std::time::Duration;

use bulwark::RequestOptions;
use bulwark::api::{ChatRequest, Message, Role};
use bulwark::events::Event;
use bulwark::resilience::breaker::BreakerState;
use bulwark::{Client, Config, ErrorKind};
use bulwark_sim::{Fault, FaultRule, SimConfig, SimServer, StatusFault};
use futures_util::StreamExt;
use tokio::time::Instant;

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Setup {
    client: Arc<Client>,
    primary: SimServer,
    backup: SimServer,
}

/// Two simulated providers and a route `main` = [primary, backup], with the
/// route options given.
async fn setup(route_options: &str, top_level: &str) -> Result<Setup, Box<dyn std::error::Error>> {
    let primary = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let backup = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "providers:\n  primary: {{ kind: anthropic, base_url: \"{}\" }}\n  backup: {{ kind: openai, base_url: \"{}/v1\" }}\nroutes:\n  main: {{ targets: [primary/claude-sonnet-4-5, backup/gpt-4o-mini]{route_options} }}\n  solo: {{ targets: [primary/claude-sonnet-4-5]{route_options} }}\n{top_level}",
        primary.url(),
        backup.url()
    );
    let config = Config::from_yaml(&yaml, "test", &|_| None)?;
    Ok(Setup {
        client: Arc::new(Client::from_config(&config)?),
        primary,
        backup,
    })
}

fn request(model: &str) -> ChatRequest {
    let mut request = ChatRequest::new(model, vec![Message::text(Role::User, "Hello")]);
    request.max_tokens = Some(16);
    request
}

/// The outage from the article: the primary hangs for 47 s on every call.
/// With a 5 s first-token timeout every request is answered by the backup
/// within the deadline, and once the breaker opens, requests go straight to
/// the backup with no added delay. Runs on tokio's paused clock: 47 s hangs
/// cost nothing in real time.
#[tokio::test(start_paused = true)]
async fn the_47_second_outage() -> TestResult {
    let s = setup(", first_token_timeout: 5s, deadline: 30s", "").await?;
    s.primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::hang(47_000))]);
    let mut events = s.client.subscribe();
    let mut took = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let served = s.client.chat(request("main")).await?;
        took.push(started.elapsed());
        assert_eq!(served.target, "backup/gpt-4o-mini");
    }
    // Five timeouts in a row open the breaker (default: 5 consecutive failures).
    assert_eq!(
        s.primary.sim.request_count(),
        5,
        "calls after the breaker opened: {took:?}"
    );
    for (i, elapsed) in took.iter().enumerate() {
        assert!(
            *elapsed < Duration::from_secs(30),
            "request {i} ran past its deadline: {elapsed:?}"
        );
        if i < 5 {
            assert!(
                *elapsed >= Duration::from_secs(5),
                "request {i} did not wait for the first-token timeout"
            );
            assert!(
                *elapsed < Duration::from_secs(6),
                "request {i} took {elapsed:?}"
            );
        } else {
            assert!(
                *elapsed < Duration::from_millis(100),
                "request {i} still waited: {elapsed:?}"
            );
        }
    }
    let mut opened = false;
    while let Ok(event) = events.try_recv() {
        opened |= matches!(event, Event::Breaker { to: BreakerState::Open, ref target, .. } if target == "primary/claude-sonnet-4-5");
    }
    assert!(opened, "no breaker event was published");
    Ok(())
}

/// 1,000 requests against a primary that fails every call: retries stay
/// within the budget (20 % of requests plus 10 per second over 10 s).
#[tokio::test(start_paused = true)]
async fn a_retry_storm_stays_within_the_budget() -> TestResult {
    // The breaker is set never to trip, so only the budget limits retries.
    let s = setup(
        ", max_retries: 3, backoff_base: 1ms, backoff_cap: 2ms",
        "breaker: { consecutive_failures: 1000000, min_calls: 1000000 }\n",
    )
    .await?;
    s.primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::status(503))]);
    let requests = 1000u32;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..requests {
        let client = Arc::clone(&s.client);
        tasks.spawn(async move { client.chat(request("solo")).await.is_err() });
    }
    let mut failed = 0;
    while let Some(result) = tasks.join_next().await {
        failed += u32::from(result?);
    }
    assert_eq!(
        failed, requests,
        "every request must fail: the only target is down"
    );
    let attempts = s.primary.sim.request_count() as f64;
    let allowed = f64::from(requests) * 1.2 + 10.0 * 10.0;
    println!(
        "retry storm: {requests} requests -> {attempts} upstream attempts (amplification {:.2}, budget allows {allowed})",
        attempts / f64::from(requests)
    );
    assert!(
        attempts <= allowed,
        "{attempts} attempts for {requests} requests exceeds the budget"
    );
    assert!(attempts > f64::from(requests), "no retries happened at all");
    Ok(())
}

/// The caller's deadline shortens the route's and never lengthens it. On the
/// paused clock the 30 s hangs cost nothing, and the elapsed time is the
/// client's own deadline arithmetic, not the machine's speed.
#[tokio::test(start_paused = true)]
async fn the_client_deadline_shortens_the_routes() -> TestResult {
    let s = setup(", first_token_timeout: 20s, deadline: 60s", "").await?;
    s.primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::hang(30_000))]);
    s.backup
        .sim
        .set_faults(vec![FaultRule::always(Fault::hang(30_000))]);
    let started = Instant::now();
    let options = RequestOptions {
        deadline: Some(Duration::from_millis(300)),
        ..RequestOptions::default()
    };
    let Err(failed) = s.client.chat_with(request("main"), options).await else {
        return Err("a hanging route answered".into());
    };
    // On the paused clock the elapsed time is exact: no slack for a busy
    // machine is needed, so the bound is the deadline itself.
    assert!(
        started.elapsed() <= Duration::from_millis(300),
        "ran past the deadline: {:?}",
        started.elapsed()
    );
    assert_eq!(failed.error.kind, ErrorKind::Timeout);
    assert_eq!(failed.error.status, 504);
    assert!(
        failed.error.message.contains("deadline"),
        "{}",
        failed.error.message
    );

    // A longer client deadline does not lengthen the route's.
    let s = setup(", first_token_timeout: 20s, deadline: 300ms", "").await?;
    s.primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::hang(30_000))]);
    let started = Instant::now();
    let options = RequestOptions {
        deadline: Some(Duration::from_secs(60)),
        ..RequestOptions::default()
    };
    assert!(s.client.chat_with(request("solo"), options).await.is_err());
    assert!(
        started.elapsed() <= Duration::from_millis(300),
        "ran past the route's deadline: {:?}",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_slow_primary_is_hedged_and_the_loser_dropped() -> TestResult {
    let s = setup(", hedge_after: 100ms, first_token_timeout: 10s", "").await?;
    s.primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::hang(5_000))]);
    let mut events = s.client.subscribe();
    let started = Instant::now();
    let served = s.client.chat(request("main")).await?;
    assert_eq!(served.target, "backup/gpt-4o-mini");
    assert_eq!(served.attempts, 2, "the original and its hedge");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "waited for the slow primary: {:?}",
        started.elapsed()
    );
    let mut hedged = false;
    while let Ok(event) = events.try_recv() {
        hedged |= matches!(event, Event::Hedged { .. });
    }
    assert!(hedged);

    // A fast primary never starts a hedge.
    s.primary.sim.clear_faults();
    let before = s.backup.sim.request_count();
    let served = s.client.chat(request("main")).await?;
    assert_eq!(
        (served.target.as_str(), served.attempts),
        ("primary/claude-sonnet-4-5", 1)
    );
    assert_eq!(s.backup.sim.request_count(), before);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn every_style_of_server_hint_is_honoured() -> TestResult {
    let styles = [
        (
            "retry-after-ms",
            StatusFault {
                retry_after_ms: Some(30),
                ..StatusFault::new(429)
            },
        ),
        (
            "retry-after seconds",
            StatusFault {
                retry_after: Some(1),
                ..StatusFault::new(503)
            },
        ),
        (
            "retry-after date",
            StatusFault {
                retry_after_date: Some(1),
                ..StatusFault::new(503)
            },
        ),
    ];
    for (name, fault) in styles {
        let s = setup(", max_retries: 1, backoff_cap: 3s", "").await?;
        s.primary
            .sim
            .set_faults(vec![FaultRule::always(Fault::Status(fault)).times(1)]);
        let served = s.client.chat(request("main")).await?;
        assert_eq!(
            (served.target.as_str(), served.attempts),
            ("primary/claude-sonnet-4-5", 2),
            "{name}: the hint should be waited out and the primary retried"
        );
    }
    // Gemini's hint is in the body (RetryInfo.retryDelay).
    let gemini = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "providers:\n  g: {{ kind: gemini, base_url: \"{}\" }}\nroutes:\n  r: {{ targets: [g/gemini-2.5-flash], max_retries: 1, backoff_cap: 3s }}\n",
        gemini.url()
    );
    let client = Client::from_config(&Config::from_yaml(&yaml, "test", &|_| None)?)?;
    let fault = StatusFault {
        retry_after: Some(1),
        ..StatusFault::new(429)
    };
    gemini
        .sim
        .set_faults(vec![FaultRule::always(Fault::Status(fault)).times(1)]);
    let started = Instant::now();
    let served = client.chat(request("r")).await?;
    assert_eq!(served.attempts, 2);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "RetryInfo was not waited out"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn exhausted_quotas_and_cdn_pages_are_classified() -> TestResult {
    // OpenAI's insufficient_quota: no retry on that target, straight on.
    let s = setup(", max_retries: 2, backoff_base: 1ms", "").await?;
    let quota = StatusFault {
        code: Some("insufficient_quota".into()),
        ..StatusFault::new(429)
    };
    // The primary speaks Anthropic: its quota signal is 402 billing_error.
    s.primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::status(402))]);
    let served = s.client.chat(request("main")).await?;
    assert_eq!(
        (served.target.as_str(), served.attempts),
        ("backup/gpt-4o-mini", 2)
    );
    s.primary.sim.clear_faults();

    // A Cloudflare-style HTML 502 is transient: retried, then answered.
    let html = StatusFault {
        html: true,
        ..StatusFault::new(502)
    };
    s.primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::Status(html)).times(1)]);
    let served = s.client.chat(request("main")).await?;
    assert_eq!(
        (served.target.as_str(), served.attempts),
        ("primary/claude-sonnet-4-5", 2)
    );

    let openai_first = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "providers:\n  o: {{ kind: openai, base_url: \"{}/v1\" }}\n  b: {{ kind: openai, base_url: \"{}/v1\" }}\nroutes:\n  r: {{ targets: [o/gpt-4o, b/gpt-4o-mini], max_retries: 2, backoff_base: 1ms }}\n",
        openai_first.url(),
        s.backup.url()
    );
    let client = Client::from_config(&Config::from_yaml(&yaml, "test", &|_| None)?)?;
    openai_first
        .sim
        .set_faults(vec![FaultRule::always(Fault::Status(quota))]);
    let served = client.chat(request("r")).await?;
    assert_eq!(
        (served.target.as_str(), served.attempts),
        ("b/gpt-4o-mini", 2)
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn context_overflow_moves_only_to_a_larger_window() -> TestResult {
    let small = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let large = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "providers:\n  small: {{ kind: openai, base_url: \"{}/v1\", context_windows: {{ gpt-small: 8000, gpt-same: 8000 }} }}\n  large: {{ kind: openai, base_url: \"{}/v1\", context_windows: {{ gpt-large: 128000 }} }}\nroutes:\n  r: {{ targets: [small/gpt-small, small/gpt-same, large/gpt-large] }}\n",
        small.url(),
        large.url()
    );
    let client = Client::from_config(&Config::from_yaml(&yaml, "test", &|_| None)?)?;
    let overflow = StatusFault {
        code: Some("context_length_exceeded".into()),
        ..StatusFault::new(400)
    };
    small
        .sim
        .set_faults(vec![FaultRule::always(Fault::Status(overflow))]);
    let served = client.chat(request("r")).await?;
    assert_eq!(served.target, "large/gpt-large");
    assert_eq!(
        small.sim.request_count(),
        1,
        "the same-size window was tried anyway"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_flapping_primary_is_ejected_and_readmitted() -> TestResult {
    let s = setup(
        ", max_retries: 0",
        "breaker: { consecutive_failures: 2, base_ejection: 300ms }\n",
    )
    .await?;
    let mut events = s.client.subscribe();
    for round in 0..3 {
        s.primary
            .sim
            .set_faults(vec![FaultRule::always(Fault::status(503))]);
        for _ in 0..4 {
            let served = s.client.chat(request("main")).await?;
            assert_eq!(served.target, "backup/gpt-4o-mini", "round {round}");
        }
        s.primary.sim.clear_faults();
        // Ejection escalates: 300 ms, 600 ms, 900 ms.
        tokio::time::sleep(Duration::from_millis(300 * (round + 1) + 50)).await;
        let served = s.client.chat(request("main")).await?;
        assert_eq!(
            served.target, "primary/claude-sonnet-4-5",
            "round {round}: the probe should close it"
        );
    }
    let mut transitions = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let Event::Breaker { to, open_for, .. } = event {
            transitions.push((to, open_for));
        }
    }
    let opened: Vec<Option<Duration>> = transitions
        .iter()
        .filter(|(to, _)| *to == BreakerState::Open)
        .map(|(_, d)| *d)
        .collect();
    assert_eq!(
        opened,
        [
            Some(Duration::from_millis(300)),
            Some(Duration::from_millis(600)),
            Some(Duration::from_millis(900))
        ],
        "{transitions:?}"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_full_target_passes_requests_on_or_makes_the_last_one_wait() -> TestResult {
    // The primary takes one request at a time and answers slowly.
    let primary = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let backup = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "providers:\n  p: {{ kind: anthropic, base_url: \"{}\", max_concurrency: 1 }}\n  b: {{ kind: openai, base_url: \"{}/v1\" }}\nroutes:\n  main: {{ targets: [p/claude-sonnet-4-5, b/gpt-4o-mini] }}\n  solo: {{ targets: [p/claude-sonnet-4-5] }}\n",
        primary.url(),
        backup.url()
    );
    let client = Arc::new(Client::from_config(&Config::from_yaml(
        &yaml,
        "test",
        &|_| None,
    )?)?);
    primary.sim.set_latency(bulwark_sim::Latency {
        headers_ms: 0,
        first_token_ms: 0,
        token_interval_ms: 100,
    });
    let first = {
        let client = Arc::clone(&client);
        tokio::spawn(async move { client.chat(request("main")).await.map(|s| s.target) })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = client.chat(request("main")).await?;
    assert_eq!(
        second.target, "b/gpt-4o-mini",
        "the full primary should have been passed over"
    );
    assert_eq!(
        first.await?.map_err(|f| f.error.message)?,
        "p/claude-sonnet-4-5"
    );

    // With no other target, the request waits for the slot instead.
    let first = {
        let client = Arc::clone(&client);
        tokio::spawn(async move { client.chat(request("solo")).await.is_ok() })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = client.chat(request("solo")).await?;
    assert_eq!(second.target, "p/claude-sonnet-4-5");
    assert!(first.await?);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_tier_shares_the_load_and_least_latency_avoids_the_slow_one() -> TestResult {
    let a = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let b = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "providers:\n  a: {{ kind: openai, base_url: \"{}/v1\" }}\n  b: {{ kind: openai, base_url: \"{}/v1\" }}\nroutes:\n  shared: {{ targets: [[{{ target: a/m, weight: 3 }}, b/m]] }}\n  fastest: {{ targets: [[a/m, b/m]], balance: least_latency }}\n",
        a.url(),
        b.url()
    );
    let client = Client::from_config(&Config::from_yaml(&yaml, "test", &|_| None)?)?;
    for _ in 0..80 {
        client.chat(request("shared")).await?;
    }
    let (on_a, on_b) = (a.sim.request_count(), b.sim.request_count());
    assert_eq!(on_a + on_b, 80);
    assert!(on_a > on_b && on_b > 5, "weights 3:1 gave {on_a}:{on_b}");

    // b becomes slow to its first token: least-latency sends it little.
    a.sim.clear_requests();
    b.sim.clear_requests();
    b.sim.set_latency(bulwark_sim::Latency {
        headers_ms: 0,
        first_token_ms: 80,
        token_interval_ms: 0,
    });
    for _ in 0..40 {
        client.chat(request("fastest")).await?;
    }
    let (on_a, on_b) = (a.sim.request_count(), b.sim.request_count());
    assert!(on_b <= 6, "the slow target still got {on_b} of 40");
    assert!(on_a >= 34);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_stream_broken_midway_is_continued_by_the_next_target() -> TestResult {
    use bulwark::api::StreamEvent;
    let primary = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let backup = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "providers:\n  p: {{ kind: openai, base_url: \"{}/v1\" }}\n  b: {{ kind: anthropic, base_url: \"{}\" }}\nroutes:\n  main: {{ targets: [p/gpt-4o-mini, b/claude-sonnet-4-5], mid_stream: continue }}\n  plain: {{ targets: [p/gpt-4o-mini, b/claude-sonnet-4-5] }}\n",
        primary.url(),
        backup.url()
    );
    let client = Client::from_config(&Config::from_yaml(&yaml, "test", &|_| None)?)?;
    // The role chunk, then three words, then the connection ends.
    primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::cut(4))]);
    let mut events = client.subscribe();
    let served = client.stream(request("main")).await?;
    assert_eq!(served.target, "p/gpt-4o-mini");
    let mut stream = served.value;
    let mut text = String::new();
    let mut finished = false;
    while let Some(item) = stream.next().await {
        match item? {
            StreamEvent::TextDelta { text: t, .. } => text.push_str(&t),
            StreamEvent::Finish { .. } => finished = true,
            _ => {}
        }
    }
    assert!(finished, "the continued stream must end properly");
    let sent = backup.sim.requests();
    let last = sent
        .last()
        .ok_or("the backup was never asked to continue")?;
    let messages = last.body["messages"].as_array().ok_or("no messages")?;
    let prefill = messages.last().ok_or("empty conversation")?;
    assert_eq!(prefill["role"], "assistant");
    let partial = prefill["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!partial.is_empty());
    assert!(
        text.starts_with(&partial),
        "{text:?} does not continue {partial:?}"
    );
    assert!(
        text.len() > partial.len(),
        "nothing was spliced after {partial:?}"
    );
    let mut continued = false;
    while let Ok(event) = events.try_recv() {
        continued |= matches!(event, Event::Continued { .. });
    }
    assert!(continued);

    // Without the policy, the same break ends the stream with an error.
    let served = client.stream(request("plain")).await?;
    let mut stream = served.value;
    let mut failed = false;
    while let Some(item) = stream.next().await {
        failed |= item.is_err();
    }
    assert!(failed);
    Ok(())
}

/// The remaining rows of the failure table, each against the simulator.
#[tokio::test(start_paused = true)]
async fn every_row_of_the_failure_table() -> TestResult {
    // (fault on the primary's first call, expected (target, attempts))
    let retried = ("primary/claude-sonnet-4-5", 2);
    let moved_on = ("backup/gpt-4o-mini", 2);
    let cases: Vec<(&str, Fault, (&str, u32))> = vec![
        (
            "x-should-retry: true on a 400",
            Fault::Status(StatusFault {
                should_retry: Some(true),
                ..StatusFault::new(400)
            }),
            retried,
        ),
        ("connection reset", Fault::ConnectionReset, retried),
        ("malformed chunk", Fault::malformed(2), retried),
        ("error event before content", Fault::error_event(0), retried),
        ("409 conflict", Fault::status(409), retried),
        ("404 unknown model", Fault::status(404), moved_on),
        ("413 too large", Fault::status(413), ("", 1)),
        ("422 unprocessable", Fault::status(422), ("", 1)),
    ];
    for (name, fault, (target, attempts)) in cases {
        let s = setup(", max_retries: 1, backoff_base: 1ms", "").await?;
        let rule = if target == moved_on.0 {
            FaultRule::always(fault)
        } else {
            FaultRule::always(fault).times(1)
        };
        s.primary.sim.set_faults(vec![rule]);
        match s.client.chat(request("main")).await {
            Ok(served) => assert_eq!(
                (served.target.as_str(), served.attempts),
                (target, attempts),
                "{name}"
            ),
            Err(failed) => {
                assert_eq!(target, "", "{name}: failed with {}", failed.error.message);
                assert_eq!(failed.attempts, attempts, "{name}");
                assert_eq!(
                    s.backup.sim.request_count(),
                    0,
                    "{name}: a client error reached the backup"
                );
            }
        }
    }

    // Gemini's per-day quota: no retry, straight to the next target.
    let gemini = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let backup = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "providers:\n  g: {{ kind: gemini, base_url: \"{}\" }}\n  b: {{ kind: openai, base_url: \"{}/v1\" }}\nroutes:\n  r: {{ targets: [g/gemini-2.5-flash, b/gpt-4o-mini], max_retries: 2, backoff_base: 1ms }}\n",
        gemini.url(),
        backup.url()
    );
    let client = Client::from_config(&Config::from_yaml(&yaml, "test", &|_| None)?)?;
    let per_day = StatusFault {
        quota_id: Some("GenerateRequestsPerDayPerProjectPerModel-FreeTier".into()),
        ..StatusFault::new(429)
    };
    gemini
        .sim
        .set_faults(vec![FaultRule::always(Fault::Status(per_day))]);
    let served = client.chat(request("r")).await?;
    assert_eq!(
        (served.target.as_str(), served.attempts),
        ("b/gpt-4o-mini", 2)
    );
    Ok(())
}

/// A burst over the provider's quota: nothing is sent just to collect a
/// 429. Requests move to the next target, or, with none left, are refused
/// with 429 and a Retry-After.
#[tokio::test(start_paused = true)]
async fn quotas_are_kept_on_this_side() -> TestResult {
    let limited = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let backup = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "providers:\n  p: {{ kind: openai, base_url: \"{}/v1\", limits: {{ rpm: 3, tpm: 100000 }} }}\n  b: {{ kind: openai, base_url: \"{}/v1\" }}\nroutes:\n  main: {{ targets: [p/gpt-4o-mini, b/gpt-4o-mini] }}\n  solo: {{ targets: [p/gpt-4o-mini], deadline: 2s }}\n",
        limited.url(),
        backup.url()
    );
    let client = Client::from_config(&Config::from_yaml(&yaml, "test", &|_| None)?)?;
    let mut served_by = Vec::new();
    for _ in 0..10 {
        served_by.push(client.chat(request("main")).await?.target);
    }
    assert_eq!(
        served_by
            .iter()
            .filter(|t| t.as_str() == "p/gpt-4o-mini")
            .count(),
        3,
        "{served_by:?}"
    );
    assert_eq!(
        limited.sim.request_count(),
        3,
        "a request was sent over the quota"
    );
    assert_eq!(backup.sim.request_count(), 7);

    // Nowhere else to go, and the quota frees up only past the deadline.
    let Err(failed) = client.chat(request("solo")).await else {
        return Err("a request over the quota was sent".into());
    };
    assert_eq!(failed.error.status, 429);
    assert!(
        failed.error.retry_after.is_some_and(|s| s > 1),
        "{:?}",
        failed.error.retry_after
    );
    assert_eq!(limited.sim.request_count(), 3);

    // A request larger than the whole token quota can never be sent.
    let yaml = format!(
        "providers:\n  p: {{ kind: openai, base_url: \"{}/v1\", limits: {{ tpm: 10 }} }}\nroutes:\n  r: {{ targets: [p/gpt-4o-mini] }}\n",
        limited.url()
    );
    let small = Client::from_config(&Config::from_yaml(&yaml, "test", &|_| None)?)?;
    let Err(failed) = small.chat(request("r")).await else {
        return Err("a request larger than the quota was sent".into());
    };
    assert!(
        failed.error.message.contains("tokens-per-minute"),
        "{}",
        failed.error.message
    );
    assert_eq!(limited.sim.request_count(), 3);
    Ok(())
}

/// Against a provider enforcing a quota (the simulator's rate-limiting
/// mode): Bulwark reads the quota from the answers' headers and stops before
/// the provider says no, even with no limit configured; and with the quota
/// configured, a burst of ten times the quota collects no 429 upstream.
#[tokio::test(start_paused = true)]
async fn a_burst_against_a_real_quota_collects_no_429s() -> TestResult {
    let limited_config = SimConfig {
        rate_limit_rpm: Some(5),
        ..SimConfig::default()
    };
    let limited = SimServer::start("127.0.0.1:0", limited_config.clone()).await?;
    let backup = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "providers:\n  p: {{ kind: openai, base_url: \"{}/v1\" }}\n  b: {{ kind: openai, base_url: \"{}/v1\" }}\nroutes:\n  main: {{ targets: [p/gpt-4o-mini, b/gpt-4o-mini], max_retries: 0 }}\n",
        limited.url(),
        backup.url()
    );
    let client = Client::from_config(&Config::from_yaml(&yaml, "test", &|_| None)?)?;
    for _ in 0..10 {
        client.chat(request("main")).await?;
    }
    let outcomes = limited.sim.stats().by_outcome;
    assert_eq!(
        limited.sim.request_count(),
        5,
        "requests past the provider's last remaining one: {outcomes:?}"
    );
    assert!(!outcomes.keys().any(|k| k.contains("429")), "{outcomes:?}");
    assert_eq!(backup.sim.request_count(), 5);

    // The quota configured: a burst of 50 (ten times it) at one target.
    let limited = SimServer::start("127.0.0.1:0", limited_config).await?;
    let yaml = format!(
        "providers:\n  p: {{ kind: anthropic, base_url: \"{}\", limits: {{ rpm: 5 }} }}\nroutes:\n  solo: {{ targets: [p/claude-sonnet-4-5], deadline: 1s }}\n",
        limited.url()
    );
    let client = Arc::new(Client::from_config(&Config::from_yaml(
        &yaml,
        "test",
        &|_| None,
    )?)?);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let client = Arc::clone(&client);
        tasks.spawn(async move {
            client
                .chat(request("solo"))
                .await
                .map_err(|f| (f.error.status, f.error.retry_after))
        });
    }
    let (mut ok, mut slowed) = (0, 0);
    while let Some(result) = tasks.join_next().await {
        match result? {
            Ok(_) => ok += 1,
            Err((429, Some(retry_after))) if retry_after > 0 => slowed += 1,
            Err(other) => {
                return Err(format!("a client saw {other:?}, not a 429 with Retry-After").into());
            }
        }
    }
    assert_eq!((ok, slowed), (5, 45));
    let outcomes = limited.sim.stats().by_outcome;
    assert_eq!(limited.sim.request_count(), 5, "{outcomes:?}");
    assert!(!outcomes.keys().any(|k| k.contains("429")), "{outcomes:?}");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn output_token_quotas_count_max_tokens_then_usage() -> TestResult {
    let limited = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let backup = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "providers:\n  p: {{ kind: openai, base_url: \"{}/v1\", limits: {{ output_tpm: 20 }} }}\n  b: {{ kind: openai, base_url: \"{}/v1\" }}\nroutes:\n  main: {{ targets: [p/gpt-4o-mini, b/gpt-4o-mini] }}\n",
        limited.url(),
        backup.url()
    );
    let client = Client::from_config(&Config::from_yaml(&yaml, "test", &|_| None)?)?;
    // Each request reserves its max_tokens (16) of output; the first answer
    // used fewer, and the correction frees the rest, yet not enough for a
    // second reservation of 16 within 20.
    let first = client.chat(request("main")).await?;
    assert_eq!(first.target, "p/gpt-4o-mini");
    let used = first.value.usage.output_tokens;
    assert!(
        used < 16 && used + 16 > 20,
        "the simulator answered with {used} tokens"
    );
    let second = client.chat(request("main")).await?;
    assert_eq!(second.target, "b/gpt-4o-mini");
    assert_eq!(limited.sim.request_count(), 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_streamed_answer_corrects_its_token_estimate_when_it_ends() -> TestResult {
    let limited = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let backup = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "providers:\n  p: {{ kind: openai, base_url: \"{}/v1\", limits: {{ output_tpm: 30 }} }}\n  b: {{ kind: openai, base_url: \"{}/v1\" }}\nroutes:\n  main: {{ targets: [p/gpt-4o-mini, b/gpt-4o-mini] }}\n",
        limited.url(),
        backup.url()
    );
    let client = Client::from_config(&Config::from_yaml(&yaml, "test", &|_| None)?)?;
    // Two reservations of 16 do not fit in 30; once the first stream has
    // ended and reported fewer tokens, the second does.
    let first = client.stream(request("main")).await?;
    assert_eq!(first.target, "p/gpt-4o-mini");
    let mut events = first.value;
    while events.next().await.is_some() {}
    let second = client.stream(request("main")).await?;
    assert_eq!(
        second.target, "p/gpt-4o-mini",
        "the estimate was not corrected"
    );
    Ok(())
}

/// Time spent in the admission queue is gone from the request's deadline,
/// on tokio's clock: with paused time the wait costs no real time, and the
/// deadline must still see it. A request that waits 6 s for its turn on a
/// route with a 10 s deadline has 4 s left, too little for a 6 s answer.
#[tokio::test(start_paused = true)]
async fn queueing_counts_against_the_deadline_on_tokios_clock() -> TestResult {
    let s = setup(
        ", deadline: 10s, first_token_timeout: 9s, admission: { max_concurrency: 1, queue: 4 }",
        "",
    )
    .await?;
    s.primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::hang(6_000))]);
    let first = {
        let client = Arc::clone(&s.client);
        tokio::spawn(async move { client.chat(request("solo")).await })
    };
    // Let the first request take the route's only slot.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let started = Instant::now();
    let second = s.client.chat(request("solo")).await;
    let waited = started.elapsed();
    assert!(first.await?.is_ok(), "the first request fits its deadline");
    let failed = match second {
        Ok(served) => panic!(
            "served by {} after {waited:?}, past its 10 s deadline",
            served.target
        ),
        Err(failed) => failed,
    };
    assert_eq!(failed.error.kind, ErrorKind::Timeout, "{}", failed.error);
    assert!(
        waited <= Duration::from_secs(10),
        "the deadline held only after {waited:?}"
    );
    Ok(())
}

/// A half-open probe whose request future is dropped (the client
/// disconnected, or the caller timed out) must still be reported: an
/// unreported probe once left the target skipped forever.
#[tokio::test(start_paused = true)]
async fn a_dropped_half_open_probe_does_not_wedge_its_target() -> TestResult {
    let p = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "providers:\n  p: {{ kind: anthropic, base_url: \"{}\" }}\nroutes:\n  solo: {{ targets: [p/claude-sonnet-4-5], max_retries: 0 }}\nbreaker: {{ consecutive_failures: 1, base_ejection: 200ms, max_ejection: 200ms }}\n",
        p.url()
    );
    let client = Client::from_config(&Config::from_yaml(&yaml, "t", &|_| None)?)?;
    p.sim
        .set_faults(vec![FaultRule::always(Fault::status(503)).times(1)]);
    assert!(client.chat(request("solo")).await.is_err());
    tokio::time::sleep(Duration::from_millis(300)).await;
    p.sim
        .set_faults(vec![FaultRule::always(Fault::hang(2_000)).times(1)]);
    // caller gives up (or HTTP client disconnects) while the probe is in flight
    let _ = tokio::time::timeout(Duration::from_millis(100), client.chat(request("solo"))).await;
    p.sim.clear_faults();
    for i in 0..5 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        match client.chat(request("solo")).await {
            Ok(_) => {
                println!("recovered at {i}");
                return Ok(());
            }
            Err(f) => println!("after {i}: {}", f.error.message),
        }
    }
    println!("upstream calls total: {}", p.sim.request_count());
    Err("WEDGED: healthy target never admitted again".into())
}

/// A stream broken after content is a failure of its target: once such
/// cuts were never reported, so the breaker never opened.
#[tokio::test(start_paused = true)]
async fn streams_cut_after_content_count_against_the_breaker() -> TestResult {
    let p = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "providers:\n  p: {{ kind: openai, base_url: \"{}/v1\" }}\nroutes:\n  solo: {{ targets: [p/gpt-4o-mini], max_retries: 0 }}\nbreaker: {{ consecutive_failures: 2 }}\n",
        p.url()
    );
    let client = Client::from_config(&Config::from_yaml(&yaml, "t", &|_| None)?)?;
    p.sim.set_faults(vec![FaultRule::always(Fault::cut(3))]);
    let mut broken = 0;
    let mut refused = 0;
    for _ in 0..10 {
        match client.stream(request("solo")).await {
            Ok(s) => {
                let mut st = s.value;
                while let Some(i) = st.next().await {
                    if i.is_err() {
                        broken += 1;
                    }
                }
            }
            // Skipped by the open breaker, without a call.
            Err(_) => refused += 1,
        }
    }
    assert_eq!(broken, 2, "two broken streams open the breaker");
    assert_eq!(refused, 8);
    assert_eq!(p.sim.request_count(), 2);
    Ok(())
}

/// A route with hedging once withdrew retry budget for every request, even
/// when the hedge never started, so a later retry was refused.
#[tokio::test(start_paused = true)]
async fn hedges_that_never_start_leave_the_retry_budget_alone() -> TestResult {
    let p = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let b = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "providers:\n  p: {{ kind: anthropic, base_url: \"{}\" }}\n  b: {{ kind: openai, base_url: \"{}/v1\" }}\nroutes:\n  main: {{ targets: [p/claude-sonnet-4-5, b/gpt-4o-mini], hedge_after: 5s, max_retries: 1, backoff_base: 1ms, backoff_cap: 5ms }}\nretry_budget: {{ ratio: 0.2, min_per_second: 0.1, window: 10s }}\n",
        p.url(),
        b.url()
    );
    let client = Client::from_config(&Config::from_yaml(&yaml, "t", &|_| None)?)?;
    let mut ev = client.subscribe();
    for _ in 0..20 {
        client.chat(request("main")).await?;
    }
    assert_eq!(b.sim.request_count(), 0, "no hedge was ever started");
    p.sim
        .set_faults(vec![FaultRule::always(Fault::status(503)).times(1)]);
    let served = client
        .chat(request("main"))
        .await
        .map_err(|f| f.error.message)?;
    let mut exhausted = false;
    while let Ok(e) = ev.try_recv() {
        exhausted |= matches!(e, Event::RetryBudgetExhausted { .. });
    }
    println!(
        "served by {} after {} attempts; budget exhausted event: {exhausted}",
        served.target, served.attempts
    );
    if served.target != "p/claude-sonnet-4-5" {
        return Err("retry refused: budget drained by hedges that never ran".into());
    }
    Ok(())
}

/// A hedge that fails first has still used its target: once it was not
/// marked used, and the engine called the same target again as a failover.
#[tokio::test(start_paused = true)]
async fn a_failed_hedge_target_is_not_called_again() -> TestResult {
    let p = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let b = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "providers:\n  p: {{ kind: anthropic, base_url: \"{}\" }}\n  b: {{ kind: openai, base_url: \"{}/v1\" }}\nroutes:\n  main: {{ targets: [p/claude-sonnet-4-5, b/gpt-4o-mini], hedge_after: 100ms, first_token_timeout: 500ms, max_retries: 0 }}\n",
        p.url(),
        b.url()
    );
    let client = Client::from_config(&Config::from_yaml(&yaml, "t", &|_| None)?)?;
    p.sim
        .set_faults(vec![FaultRule::always(Fault::hang(2_000))]);
    b.sim
        .set_faults(vec![FaultRule::always(Fault::status(503))]);
    let r = client.chat(request("main")).await;
    let attempts = match &r {
        Ok(s) => s.attempts,
        Err(f) => f.attempts,
    };
    println!(
        "backup calls: {}, primary calls: {}, reported attempts: {attempts}",
        b.sim.request_count(),
        p.sim.request_count()
    );
    if b.sim.request_count() > 1 {
        return Err("failed hedge target called again without budget".into());
    }
    Ok(())
}

/// A client's own deadline says nothing about the provider: requests whose
/// caller allows 5 ms, against a provider that takes 2 s to its first token,
/// must not open its breaker for everyone else, shrink its concurrency, or
/// count as its failures. Before, five of them opened the breaker for 30 s.
#[tokio::test(start_paused = true)]
async fn a_callers_short_deadline_never_trips_the_providers_breaker() -> TestResult {
    let s = setup(", first_token_timeout: 10s, deadline: 30s", "").await?;
    s.primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::hang(2_000))]);
    let mut events = s.client.subscribe();
    let hasty = RequestOptions {
        deadline: Some(Duration::from_millis(5)),
        ..RequestOptions::default()
    };
    for _ in 0..10 {
        let failed = match s.client.chat_with(request("solo"), hasty.clone()).await {
            Ok(served) => return Err(format!("served by {} within 5 ms", served.target).into()),
            Err(failed) => failed,
        };
        assert_eq!(failed.error.status, 504, "{}", failed.error);
        assert!(
            failed
                .attempt_log
                .iter()
                .all(|a| a.error_class.as_deref() == Some("deadline")),
            "{:?}",
            failed.attempt_log
        );
    }
    while let Ok(event) = events.try_recv() {
        assert!(
            !matches!(
                event,
                Event::Breaker {
                    to: BreakerState::Open,
                    ..
                }
            ),
            "a caller's deadline opened the breaker: {event:?}"
        );
    }
    // The provider is still called, and answers a patient request.
    let before = s.primary.sim.request_count();
    let served = s.client.chat(request("solo")).await?;
    assert_eq!(served.target, "primary/claude-sonnet-4-5");
    assert_eq!(s.primary.sim.request_count(), before + 1);
    Ok(())
}
