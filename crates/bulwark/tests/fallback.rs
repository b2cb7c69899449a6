//! The in-process `Client` against simulated providers on 127.0.0.1: which
//! failures move a request to the next target, which end it, when a
//! request waits for a busy target instead, and how a stream cut just
//! before its end is finished.
//!
//! Every test runs on tokio's paused clock: the routes' 500 ms timeouts and
//! the simulator's hangs are on that clock, so a busy machine cannot make a
//! healthy answer time out, and long hangs cost no real time.

use std::sync::Arc;
use std::time::Duration;

use bulwark::api::{ChatRequest, Message, Role, StreamEvent};
use bulwark::{Client, Config, ErrorKind};
use bulwark_sim::{Fault, FaultRule, SimConfig, SimServer, StatusFault};
use futures_util::StreamExt;

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Setup {
    client: Client,
    primary: SimServer,
    backup: SimServer,
}

/// Route `main`: primary (Anthropic format) then backup (OpenAI format), with
/// short timeouts so that hang tests finish quickly.
async fn setup() -> Result<Setup, Box<dyn std::error::Error>> {
    let primary = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let backup = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "providers:\n  primary: {{ kind: anthropic, base_url: \"{}\", api_key: k1 }}\n  backup: {{ kind: openai, base_url: \"{}/v1\", api_key: k2 }}\n  closed: {{ kind: openai, base_url: \"http://127.0.0.1:9/v1\", connect_timeout: 1s }}\nroutes:\n  main: {{ targets: [primary/claude-sonnet-4-5, backup/gpt-4o-mini], attempt_timeout: 500ms, first_token_timeout: 500ms, stream_idle_timeout: 500ms, max_retries: 1, backoff_base: 10ms, backoff_cap: 50ms }}\n  via-closed: {{ targets: [closed/gpt-4o, backup/gpt-4o-mini], max_retries: 0 }}\n",
        primary.url(),
        backup.url()
    );
    let config = Config::from_yaml(&yaml, "test", &|_| None)?;
    Ok(Setup {
        client: Client::from_config(&config)?,
        primary,
        backup,
    })
}

fn request(model: &str) -> ChatRequest {
    let mut request = ChatRequest::new(model, vec![Message::text(Role::User, "Hello there")]);
    request.max_tokens = Some(32);
    request
}

#[tokio::test(start_paused = true)]
async fn healthy_primary_serves_in_one_attempt() -> TestResult {
    let s = setup().await?;
    let served = s.client.chat(request("main")).await?;
    assert_eq!(served.target, "primary/claude-sonnet-4-5");
    assert_eq!(served.attempts, 1);
    assert!(!served.fallback);
    assert_eq!(s.backup.sim.request_count(), 0);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn transient_statuses_are_retried_then_fail_over() -> TestResult {
    // (status, attempts): one retry on the primary for transient failures,
    // none for a refused key, then the backup. The simulated 429 says its
    // quota resets in a minute (retry-after and rate-limit headers): longer
    // than the backoff cap, so the engine moves on at once instead of
    // waiting. It says so explicitly: with no hint of its own the simulator
    // points Anthropic's reset header at the next wall-clock second, a wait
    // of 0 to 1 s depending on when the test runs, and in the last 50 ms of a
    // second (under the cap) the engine rightly retried, about one run in 20.
    let in_a_minute = StatusFault {
        retry_after: Some(60),
        ..StatusFault::new(429)
    };
    let cases = [
        (429, 2),
        (500, 3),
        (502, 3),
        (503, 3),
        (504, 3),
        (529, 3),
        (408, 3),
        (401, 2),
        (403, 2),
    ];
    for (status, attempts) in cases {
        let s = setup().await?;
        let fault = if status == 429 {
            in_a_minute.clone()
        } else {
            StatusFault::new(status)
        };
        s.primary
            .sim
            .set_faults(vec![FaultRule::always(Fault::Status(fault))]);
        let served = s.client.chat(request("main")).await?;
        assert_eq!(served.target, "backup/gpt-4o-mini", "status {status}");
        assert_eq!(served.attempts, attempts, "status {status}");
        assert_eq!(
            s.primary.sim.request_count() as u32,
            attempts - 1,
            "status {status}"
        );
        assert!(served.fallback);
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn server_hints_are_honoured_and_long_hints_fail_over() -> TestResult {
    let s = setup().await?;
    let short = StatusFault {
        retry_after_ms: Some(20),
        ..StatusFault::new(503)
    };
    s.primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::Status(short)).times(1)]);
    let served = s.client.chat(request("main")).await?;
    assert_eq!(
        (served.target.as_str(), served.attempts),
        ("primary/claude-sonnet-4-5", 2)
    );

    let s = setup().await?;
    let long = StatusFault {
        retry_after: Some(600),
        ..StatusFault::new(503)
    };
    s.primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::Status(long))]);
    let started = tokio::time::Instant::now();
    let served = s.client.chat(request("main")).await?;
    assert_eq!(
        (served.target.as_str(), served.attempts),
        ("backup/gpt-4o-mini", 2)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "it waited for a 600 s hint"
    );

    // `x-should-retry: false` on a 503 means: do not retry here.
    let s = setup().await?;
    let no_retry = StatusFault {
        should_retry: Some(false),
        ..StatusFault::new(503)
    };
    s.primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::Status(no_retry))]);
    let served = s.client.chat(request("main")).await?;
    assert_eq!(
        (served.target.as_str(), served.attempts),
        ("backup/gpt-4o-mini", 2)
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn client_errors_fail_fast_without_touching_the_backup() -> TestResult {
    let s = setup().await?;
    s.primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::status(400))]);
    let Err(failed) = s.client.chat(request("main")).await else {
        return Err("a 400 was retried elsewhere".into());
    };
    assert_eq!(failed.error.status, 400);
    assert_eq!(failed.attempts, 1);
    assert_eq!(s.backup.sim.request_count(), 0);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn refused_connections_fail_over() -> TestResult {
    let s = setup().await?;
    let served = s.client.chat(request("via-closed")).await?;
    assert_eq!(served.target, "backup/gpt-4o-mini");
    assert_eq!(served.attempts, 2);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_hanging_primary_times_out_and_fails_over() -> TestResult {
    let s = setup().await?;
    s.primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::hang(30_000))]);
    let served = s.client.chat(request("main")).await?;
    assert_eq!(served.target, "backup/gpt-4o-mini");
    let stream = s.client.stream(request("main")).await?;
    assert_eq!(stream.target, "backup/gpt-4o-mini");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn every_target_failing_reports_each_attempt() -> TestResult {
    let s = setup().await?;
    s.primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::status(529))]);
    s.backup
        .sim
        .set_faults(vec![FaultRule::always(Fault::status(503))]);
    let Err(failed) = s.client.chat(request("main")).await else {
        return Err("succeeded with every target down".into());
    };
    assert_eq!(failed.attempts, 4, "one try and one retry on each target");
    assert!(failed.error.status >= 500);
    assert!(
        failed
            .error
            .message
            .contains("primary/claude-sonnet-4-5: HTTP 529"),
        "{}",
        failed.error.message
    );
    assert!(
        failed
            .error
            .message
            .contains("backup/gpt-4o-mini: HTTP 503"),
        "{}",
        failed.error.message
    );
    assert!(!failed.error.message.contains("k1") && !failed.error.message.contains("k2"));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn unknown_models_are_not_found_before_any_attempt() -> TestResult {
    let s = setup().await?;
    let Err(failed) = s.client.chat(request("nope")).await else {
        return Err("an unknown model was served".into());
    };
    assert_eq!(failed.error.kind, ErrorKind::NotFound);
    assert_eq!(failed.attempts, 0);
    assert!(
        failed.error.message.contains("main"),
        "{}",
        failed.error.message
    );
    // `provider/model` needs no route.
    let served = s.client.chat(request("backup/gpt-4o")).await?;
    assert_eq!(served.target, "backup/gpt-4o");
    Ok(())
}

async fn collect(mut stream: bulwark::provider::EventStream) -> (Vec<StreamEvent>, Option<String>) {
    let mut events = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => events.push(event),
            Err(error) => return (events, Some(error.message)),
        }
    }
    (events, None)
}

#[tokio::test(start_paused = true)]
async fn streams_fail_over_before_the_first_token_only() -> TestResult {
    let s = setup().await?;
    // An error event before any content: invisible to the client, next target.
    s.primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::error_event(0))]);
    let served = s.client.stream(request("main")).await?;
    assert_eq!(served.target, "backup/gpt-4o-mini");
    let (events, error) = collect(served.value).await;
    assert_eq!(error, None);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, StreamEvent::Finish { .. }))
    );

    // A cut after content was sent: the stream ends with an error, never a
    // silent clean end of a truncated answer.
    s.primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::cut(4))]);
    let served = s.client.stream(request("main")).await?;
    assert_eq!(served.target, "primary/claude-sonnet-4-5");
    let (events, error) = collect(served.value).await;
    assert!(events.iter().any(StreamEvent::is_content));
    assert!(error.is_some_and(|m| m.contains("truncated")));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_stalled_stream_ends_with_an_idle_timeout() -> TestResult {
    let s = setup().await?;
    s.primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::stall(4, 20_000))]);
    let served = s.client.stream(request("main")).await?;
    let (_, error) = tokio::time::timeout(Duration::from_secs(10), collect(served.value)).await?;
    assert!(error.is_some_and(|m| m.contains("stalled")));
    Ok(())
}

/// When every later target's breaker is open, the last usable one is the
/// last target: the request waits for its slot instead of failing.
#[tokio::test(start_paused = true)]
async fn the_last_usable_target_waits_for_a_slot_when_later_ones_are_open() -> TestResult {
    let p = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let b = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "providers:\n  p: {{ kind: anthropic, base_url: \"{}\", max_concurrency: 1 }}\n  b: {{ kind: openai, base_url: \"{}/v1\" }}\nroutes:\n  main: {{ targets: [p/claude-sonnet-4-5, b/gpt-4o-mini], max_retries: 0 }}\nbreaker: {{ consecutive_failures: 1, base_ejection: 60s }}\n",
        p.url(),
        b.url()
    );
    let client = Arc::new(Client::from_config(&Config::from_yaml(
        &yaml,
        "t",
        &|_| None,
    )?)?);
    b.sim
        .set_faults(vec![FaultRule::always(Fault::status(503))]);
    let _ = client.chat(request("b/gpt-4o-mini")).await; // opens b's breaker
    p.sim.set_latency(bulwark_sim::Latency {
        headers_ms: 0,
        first_token_ms: 0,
        token_interval_ms: 50,
    });
    let c = Arc::clone(&client);
    let first = tokio::spawn(async move { c.chat(request("main")).await.is_ok() });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let second = client.chat(request("main")).await;
    assert!(first.await?);
    match second {
        Ok(s) => {
            println!("second served by {}", s.target);
            Ok(())
        }
        Err(f) => Err(format!("second failed instead of waiting: {}", f.error.message).into()),
    }
}

/// A stream cut after its finish chunk (only `[DONE]` missing) is complete:
/// continuing it once sent a second finish and text after it.
#[tokio::test(start_paused = true)]
async fn a_stream_cut_just_before_done_finishes_once() -> TestResult {
    let p = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let b = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "providers:\n  p: {{ kind: openai, base_url: \"{}/v1\" }}\n  b: {{ kind: anthropic, base_url: \"{}\" }}\nroutes:\n  main: {{ targets: [p/gpt-4o-mini, b/claude-sonnet-4-5], mid_stream: continue }}\n",
        p.url(),
        b.url()
    );
    let client = Client::from_config(&Config::from_yaml(&yaml, "t", &|_| None)?)?;
    // count chunks of a healthy stream
    let s = client
        .stream_chunks(request("p/gpt-4o-mini"), Default::default())
        .await
        .map_err(|f| f.error.message)?;
    let chunks: Vec<_> = s.value.collect().await;
    let n = chunks.len();
    for c in chunks.iter().flatten() {
        println!("healthy: {}", c.raw.data);
    }
    // cut just before [DONE]
    p.sim.set_faults(vec![FaultRule::always(Fault::cut(n - 1))]);
    let s = client
        .stream_chunks(request("main"), Default::default())
        .await
        .map_err(|f| f.error.message)?;
    let out: Vec<_> = s.value.collect().await;
    let mut finishes = 0;
    for c in &out {
        match c {
            Ok(c) => {
                println!("client got: {}", c.raw.data);
                if c.raw.data.contains("\"finish_reason\":\"") {
                    finishes += 1;
                }
            }
            Err(e) => println!("ERR {e:?}"),
        }
    }
    println!(
        "finish_reason chunks: {finishes}; backup calls: {}",
        b.sim.request_count()
    );
    if finishes > 1 {
        return Err("two finish chunks / text after finish".into());
    }
    Ok(())
}
