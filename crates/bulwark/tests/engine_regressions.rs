//! Regressions found in review of the resilience engine: each of these
//! failed before its fix (lost half-open probes, hedges draining the retry
//! budget, broken streams not counted, continuation after the finish, a
//! failed hedge called twice, a request not waiting for the last usable
//! target).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bulwark::api::{ChatRequest, Message, Role};
use bulwark::{Client, Config};
use bulwark_sim::{Fault, FaultRule, SimConfig, SimServer};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;

type R = Result<(), Box<dyn std::error::Error>>;

fn request(model: &str) -> ChatRequest {
    let mut r = ChatRequest::new(model, vec![Message::text(Role::User, "Hello")]);
    r.max_tokens = Some(16);
    r
}

/// D1: a half-open probe whose request future is dropped (client disconnect /
/// caller timeout) is never reported; the target is skipped forever.
#[tokio::test]
async fn probe_leak_wedges_target() -> R {
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

/// D2: hedging withdraws retry budget for every request, even when the hedge never starts.
#[tokio::test]
async fn unstarted_hedges_drain_budget() -> R {
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
        exhausted |= matches!(e, bulwark::events::Event::RetryBudgetExhausted { .. });
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

/// D3: last *usable* target does not wait for a slot when later targets are open.
#[tokio::test]
async fn no_wait_when_later_targets_are_open() -> R {
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

/// D4: stream-mode cuts after content never count against the breaker.
#[tokio::test]
async fn stream_cuts_never_trip_breaker() -> R {
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

/// D5: mid_stream continue after the finish chunk arrived (only [DONE] missing).
#[tokio::test]
async fn continue_after_finish() -> R {
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

/// D6: a hedge that failed first is not marked used; the target is hit again as a failover.
#[tokio::test]
async fn failed_hedge_target_is_tried_again() -> R {
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
