//! Shutting down: requests and streams in flight finish, `/readyz` turns
//! 503 as soon as draining starts, and the request log holds every request
//! when `serve` returns.

use std::time::Duration;

use bulwark_gateway::{Gateway, GatewayConfig};
use bulwark_sim::{Latency, SimConfig, SimServer};
use futures_util::StreamExt;
use tokio::net::TcpListener;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A simulated provider that streams a token every 100 ms.
async fn slow_provider() -> Result<SimServer, Box<dyn std::error::Error>> {
    let config = SimConfig {
        latency: Latency {
            headers_ms: 0,
            first_token_ms: 0,
            token_interval_ms: 100,
        },
        ..SimConfig::default()
    };
    Ok(SimServer::start("127.0.0.1:0", config).await?)
}

fn config(
    provider: &SimServer,
    grace: &str,
) -> Result<GatewayConfig, bulwark::config::ConfigError> {
    GatewayConfig::from_yaml(
        &format!(
            "listen: 127.0.0.1:0\nstore: \"sqlite::memory:\"\nshutdown_grace: {grace}\nproviders:\n  sim: {{ kind: openai, base_url: \"{}/v1\" }}\nroutes:\n  main: {{ targets: [sim/gpt-4o-mini] }}\n",
            provider.url()
        ),
        "test",
        &|_| None,
    )
}

const STREAM: &str =
    r#"{"model":"main","stream":true,"max_tokens":10,"messages":[{"role":"user","content":"Hi"}]}"#;

#[tokio::test]
async fn a_stream_in_flight_finishes_and_is_logged_after_shutdown_starts() -> TestResult {
    let provider = slow_provider().await?;
    let config = config(&provider, "10s")?;
    let gateway = Gateway::start(&config).await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    // A second door onto the same gateway that stays open, to ask /readyz
    // while the first drains.
    let probe_listener = TcpListener::bind("127.0.0.1:0").await?;
    let probe = format!("http://{}/readyz", probe_listener.local_addr()?);
    tokio::spawn(bulwark_gateway::serve(
        probe_listener,
        gateway.clone(),
        std::future::pending(),
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(bulwark_gateway::serve(listener, gateway.clone(), async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    assert_eq!(http.get(&probe).send().await?.status(), 200);

    let response = http
        .post(format!("{base}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(STREAM)
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut text = String::new();
    if let Some(chunk) = body.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk?));
    }
    // Shut down with the stream about a second from its end.
    let _ = stop.send(());
    // Draining starts when the serving task next runs: wait for it, without
    // a fixed sleep a busy machine could outlast.
    let mut ready = http.get(&probe).send().await?.status();
    for _ in 0..100 {
        if ready == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        ready = http.get(&probe).send().await?.status();
    }
    assert_eq!(ready, 503, "/readyz while draining");
    while let Some(chunk) = body.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk?));
    }
    assert!(text.contains("data: [DONE]"), "the stream was cut: {text}");

    tokio::time::timeout(Duration::from_secs(10), serving).await???;
    // Flushed before serve returned: the request is in the log.
    let logged = gateway
        .observer()
        .store()
        .requests_between(0, i64::MAX, None)
        .await?;
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0].status, 200);
    Ok(())
}

#[tokio::test]
async fn past_the_grace_period_requests_in_flight_are_cut() -> TestResult {
    let provider = slow_provider().await?;
    let config = config(&provider, "200ms")?;
    let gateway = Gateway::start(&config).await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(bulwark_gateway::serve(listener, gateway, async {
        let _ = stopped.await;
    }));
    let response = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(STREAM.replace("\"max_tokens\":10", "\"max_tokens\":300"))
        .send()
        .await?;
    let mut body = response.bytes_stream();
    let _ = body.next().await;
    let _ = stop.send(());
    // The 30 s answer does not hold the shutdown: it ends once the grace is over.
    tokio::time::timeout(Duration::from_secs(5), serving).await???;
    Ok(())
}
