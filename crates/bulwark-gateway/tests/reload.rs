//! Config reload in process: a new route serves, a removed one is not
//! found, a broken config changes nothing, target state survives where the
//! target did not change, a stream in flight finishes on the config it
//! started with, and `POST /admin/reload` answers with what it did.

use std::path::PathBuf;
use std::time::Duration;

use bulwark::events::EventBus;
use bulwark::resilience::breaker::{BreakerState, CallOutcome};
use bulwark_gateway::{Gateway, GatewayConfig};
use bulwark_sim::{Latency, SimConfig, SimServer};
use futures_util::StreamExt;
use serde_json::Value;
use tokio::net::TcpListener;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const ADMIN_KEY: &str = "admin-secret-0123456789";

/// A running gateway started from a config file, as `bulwark serve` is.
struct Running {
    base: String,
    gateway: Gateway,
    path: PathBuf,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Running {
    /// Rewrites the config file with `routes` (YAML lines under `routes:`)
    /// and `extra` top-level lines.
    fn write(&self, sim: &SimServer, extra: &str, routes: &str) -> std::io::Result<()> {
        std::fs::write(&self.path, yaml(sim, extra, routes))
    }
}

fn yaml(sim: &SimServer, extra: &str, routes: &str) -> String {
    format!(
        "listen: 127.0.0.1:0\nstore: \"sqlite::memory:\"\nadmin_key: {ADMIN_KEY}\n{extra}providers:\n  a: {{ kind: openai, base_url: \"{url}/v1\" }}\n  b: {{ kind: anthropic, base_url: \"{url}\" }}\nroutes:\n{routes}",
        url = sim.url()
    )
}

async fn start(
    sim: &SimServer,
    name: &str,
    routes: &str,
) -> Result<Running, Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("bulwark-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml(sim, "", routes))?;
    let config = GatewayConfig::load(&path)?;
    let gateway = Gateway::start(&config).await?;
    gateway.set_config_path(path.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(bulwark_gateway::serve(listener, gateway.clone(), async {
        let _ = stopped.await;
    }));
    Ok(Running {
        base,
        gateway,
        path,
        _stop: stop,
    })
}

async fn sim() -> Result<SimServer, Box<dyn std::error::Error>> {
    Ok(SimServer::start("127.0.0.1:0", SimConfig::default()).await?)
}

/// A non-streamed OpenAI chat request to `model`: its status and body.
async fn ask(
    http: &reqwest::Client,
    base: &str,
    model: &str,
) -> Result<(u16, String), reqwest::Error> {
    let response = http
        .post(format!("{base}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(
            serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
                .to_string(),
        )
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

async fn json(http: &reqwest::Client, url: &str) -> Result<Value, Box<dyn std::error::Error>> {
    Ok(serde_json::from_str(
        &http.get(url).send().await?.text().await?,
    )?)
}

const MAIN: &str = "  main: { targets: [a/gpt-4o-mini] }\n";
const EXTRA: &str = "  extra: { targets: [b/claude-sonnet-4-5] }\n";

#[tokio::test]
async fn a_reload_serves_a_new_route_and_a_removed_one_is_not_found() -> TestResult {
    let sim = sim().await?;
    let running = start(&sim, "add-remove", MAIN).await?;
    let http = reqwest::Client::new();
    assert_eq!(ask(&http, &running.base, "extra").await?.0, 404);

    running.write(&sim, "", &format!("{MAIN}{EXTRA}"))?;
    let summary = running.gateway.reload_from_file().await?;
    assert_eq!(summary.routes.added, ["extra"]);
    assert_eq!(summary.routes.kept, ["main"]);
    assert_eq!(summary.targets.added, ["b/claude-sonnet-4-5"]);
    assert!(summary.restart_needed.is_empty(), "{summary:?}");
    let (status, body) = ask(&http, &running.base, "extra").await?;
    assert_eq!(status, 200, "{body}");
    // The status page shows the new route and target at once.
    let components = json(&http, &format!("{}/api/v2/components.json", running.base)).await?;
    let names = |c: &Value| -> Vec<String> {
        c["components"]
            .as_array()
            .map(|all| {
                all.iter()
                    .filter_map(|c| c["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(
        names(&components).contains(&"extra".to_string()),
        "{components}"
    );

    let metrics_url = format!("{}/metrics", running.base);
    let removed_gauge = "bulwark_breaker_state{target=\"a/gpt-4o-mini\"}";
    running.gateway.evaluate_health().await;
    let metrics = http.get(&metrics_url).send().await?.text().await?;
    assert!(metrics.contains(removed_gauge), "{metrics}");

    // Route `main` and its provider go; a changed `listen` is applied at
    // the next start, and said so.
    running.write(&sim, "", EXTRA)?;
    std::fs::write(
        &running.path,
        std::fs::read_to_string(&running.path)?
            .replace("127.0.0.1:0", "127.0.0.1:1")
            .replace(
                &format!("  a: {{ kind: openai, base_url: \"{}/v1\" }}\n", sim.url()),
                "",
            ),
    )?;
    let summary = running.gateway.reload_from_file().await?;
    assert_eq!(summary.routes.removed, ["main"]);
    assert_eq!(summary.targets.removed, ["a/gpt-4o-mini"]);
    assert_eq!(summary.restart_needed, ["listen"]);
    let (status, body) = ask(&http, &running.base, "main").await?;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("model_not_found"), "{body}");
    let components = json(&http, &format!("{}/api/v2/components.json", running.base)).await?;
    let shown = names(&components);
    assert!(!shown.contains(&"main".to_string()), "{components}");
    assert!(
        !shown.contains(&"a/gpt-4o-mini".to_string()),
        "{components}"
    );

    running.gateway.evaluate_health().await;
    let metrics = http.get(&metrics_url).send().await?.text().await?;
    // A removed target's last state is not exported on and on.
    assert!(!metrics.contains(removed_gauge), "{metrics}");
    assert!(
        metrics.contains("bulwark_config_reloads_total{result=\"applied\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bulwark_config_last_applied_timestamp_seconds"),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test]
async fn an_invalid_config_is_refused_with_every_reason_and_the_old_one_serves() -> TestResult {
    let sim = sim().await?;
    let running = start(&sim, "invalid", MAIN).await?;
    let http = reqwest::Client::new();
    std::fs::write(
        &running.path,
        "listen: 127.0.0.1:0\nproviders:\n  a: { kind: anthropc }\nroutes:\n  main: { targets: [x/y] }\n  other: { targets: [a/m], retries: lots }\n",
    )?;
    let refused = running
        .gateway
        .reload_from_file()
        .await
        .err()
        .ok_or("a broken config was applied")?;
    let reasons = refused.reasons();
    assert!(reasons.len() >= 3, "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("anthropc")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("x/y") || r.contains("`x`")),
        "{reasons:?}"
    );

    let (status, body) = ask(&http, &running.base, "main").await?;
    assert_eq!(status, 200, "{body}");
    let metrics = http
        .get(format!("{}/metrics", running.base))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("bulwark_config_reloads_total{result=\"refused\"} 1"),
        "{metrics}"
    );
    Ok(())
}

/// A gateway that listens beyond loopback (so `serve` required client
/// keys) may not be opened to anyone by a reload that drops every key.
#[tokio::test]
async fn a_reload_may_not_remove_every_key_from_a_gateway_others_can_reach() -> TestResult {
    const CLIENT_KEY: &str = "client-key-0123456789";
    let sim = sim().await?;
    let running = start(&sim, "keys", MAIN).await?;
    running.write(
        &sim,
        &format!("keys:\n  team: {{ key: {CLIENT_KEY} }}\n"),
        MAIN,
    )?;
    running.gateway.reload_from_file().await?;
    assert!(!running.gateway.is_open());
    running.gateway.require_client_keys();

    running.write(&sim, "", MAIN)?;
    let refused = running
        .gateway
        .reload_from_file()
        .await
        .err()
        .ok_or("a reload dropped every client key")?;
    assert!(
        refused
            .reasons()
            .iter()
            .any(|r| r.contains("no client keys")),
        "{:?}",
        refused.reasons()
    );
    assert!(!running.gateway.is_open());
    let (status, body) = ask(&reqwest::Client::new(), &running.base, "main").await?;
    assert_eq!(status, 401, "{body}");
    Ok(())
}

/// Opens a target's breaker the way failed calls do.
async fn trip(gateway: &Gateway, label: &str) -> Result<(), Box<dyn std::error::Error>> {
    let states = gateway.client().target_states();
    let (_, state) = states
        .iter()
        .find(|(l, _)| l == label)
        .ok_or(format!("no state for {label}"))?;
    let events = EventBus::default();
    for _ in 0..10 {
        if let Ok(ticket) = state.admit(label, &events).await {
            ticket.report(CallOutcome::Failure);
        }
    }
    Ok(())
}

fn breaker(gateway: &Gateway, label: &str) -> Option<BreakerState> {
    gateway
        .client()
        .target_states()
        .into_iter()
        .find(|(l, _)| l == label)
        .map(|(_, state)| state.with_breaker(|b| b.state()))
}

#[tokio::test]
async fn an_open_breaker_stays_open_for_an_unchanged_target_and_a_changed_one_starts_fresh()
-> TestResult {
    let sim = sim().await?;
    let routes = format!("{MAIN}{EXTRA}");
    let running = start(&sim, "breakers", &routes).await?;
    trip(&running.gateway, "a/gpt-4o-mini").await?;
    trip(&running.gateway, "b/claude-sonnet-4-5").await?;
    assert_eq!(
        breaker(&running.gateway, "a/gpt-4o-mini"),
        Some(BreakerState::Open)
    );
    assert_eq!(
        breaker(&running.gateway, "b/claude-sonnet-4-5"),
        Some(BreakerState::Open)
    );

    // Provider `b` gets another setting; `a` and both routes' names stay.
    let url = sim.url();
    std::fs::write(
        &running.path,
        std::fs::read_to_string(&running.path)?.replace(
            &format!("b: {{ kind: anthropic, base_url: \"{url}\" }}"),
            &format!("b: {{ kind: anthropic, base_url: \"{url}\", default_max_tokens: 100 }}"),
        ),
    )?;
    let summary = running.gateway.reload_from_file().await?;
    assert_eq!(summary.targets.kept, ["a/gpt-4o-mini"]);
    assert_eq!(summary.targets.changed, ["b/claude-sonnet-4-5"]);
    assert_eq!(summary.routes.changed, ["extra"]);
    assert_eq!(summary.routes.kept, ["main"]);
    assert_eq!(
        breaker(&running.gateway, "a/gpt-4o-mini"),
        Some(BreakerState::Open)
    );
    assert_eq!(
        breaker(&running.gateway, "b/claude-sonnet-4-5"),
        Some(BreakerState::Closed)
    );
    let (status, body) = ask(&reqwest::Client::new(), &running.base, "extra").await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}

#[tokio::test]
async fn a_stream_in_flight_finishes_after_a_reload_removed_its_route() -> TestResult {
    let slow = SimServer::start(
        "127.0.0.1:0",
        SimConfig {
            latency: Latency {
                headers_ms: 0,
                first_token_ms: 0,
                token_interval_ms: 100,
            },
            ..SimConfig::default()
        },
    )
    .await?;
    let running = start(&slow, "in-flight", MAIN).await?;
    let http = reqwest::Client::new();
    let response = http
        .post(format!("{}/v1/chat/completions", running.base))
        .header("content-type", "application/json")
        .body(r#"{"model":"main","stream":true,"max_tokens":10,"messages":[{"role":"user","content":"Hi"}]}"#)
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut text = String::new();
    if let Some(chunk) = body.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk?));
    }
    running.write(&slow, "", EXTRA)?;
    let summary = running.gateway.reload_from_file().await?;
    assert_eq!(summary.routes.removed, ["main"]);
    assert_eq!(ask(&http, &running.base, "main").await?.0, 404);
    while let Some(chunk) = body.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk?));
    }
    assert!(text.contains("data: [DONE]"), "the stream was cut: {text}");
    Ok(())
}

#[tokio::test]
async fn admin_reload_needs_the_key_and_answers_a_summary_or_every_reason() -> TestResult {
    let sim = sim().await?;
    let running = start(&sim, "admin", MAIN).await?;
    let http = reqwest::Client::new();
    let url = format!("{}/admin/reload", running.base);
    assert_eq!(http.post(&url).send().await?.status(), 401);

    running.write(&sim, "", &format!("{MAIN}{EXTRA}"))?;
    let response = http.post(&url).bearer_auth(ADMIN_KEY).send().await?;
    assert_eq!(response.status(), 200);
    let summary: Value = serde_json::from_str(&response.text().await?)?;
    assert_eq!(summary["status"], "applied");
    assert_eq!(summary["routes"]["added"], serde_json::json!(["extra"]));
    assert_eq!(summary["routes"]["kept"], serde_json::json!(["main"]));

    std::fs::write(
        &running.path,
        std::fs::read_to_string(&running.path)?.replace("kind: openai,", "kind: openia,")
            + "  broken: { targets: [nowhere/m] }\n",
    )?;
    let response = http.post(&url).bearer_auth(ADMIN_KEY).send().await?;
    assert_eq!(response.status(), 422);
    let refused: Value = serde_json::from_str(&response.text().await?)?;
    let reasons = refused["error"]["reasons"]
        .as_array()
        .ok_or(format!("no reasons: {refused}"))?;
    assert!(reasons.len() >= 2, "{refused}");
    assert_eq!(refused["error"]["code"], "config_refused");
    // The admin key itself is not in the answer.
    assert!(!refused.to_string().contains(ADMIN_KEY));
    assert_eq!(ask(&http, &running.base, "extra").await?.0, 200);
    assert_eq!(ask(&http, &running.base, "main").await?.0, 200);
    Ok(())
}

#[tokio::test]
async fn watching_the_file_reloads_when_it_is_replaced() -> TestResult {
    let sim = sim().await?;
    let running = start(&sim, "watch", MAIN).await?;
    tokio::spawn(bulwark_gateway::reload::watch_config(
        running.gateway.clone(),
        Duration::from_millis(50),
    ));
    let http = reqwest::Client::new();
    // As editors and ConfigMaps do: a new file renamed over the old one.
    let next = running.path.with_extension("next");
    std::fs::write(&next, yaml(&sim, "", &format!("{MAIN}{EXTRA}")))?;
    std::fs::rename(&next, &running.path)?;
    let mut status = 0;
    for _ in 0..400 {
        status = ask(&http, &running.base, "extra").await?.0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200, "the new route never served");
    Ok(())
}

#[tokio::test]
async fn with_show_targets_off_a_reloads_new_target_stays_hidden() -> TestResult {
    let sim = sim().await?;
    let hidden = "status_page: { show_targets: false }\n";
    let running = start(&sim, "hidden", MAIN).await?;
    running.write(&sim, hidden, MAIN)?;
    running.gateway.reload_from_file().await?;
    running.write(&sim, hidden, &format!("{MAIN}{EXTRA}"))?;
    running.gateway.reload_from_file().await?;
    let http = reqwest::Client::new();
    for path in ["/api/v2/components.json", "/api/v2/summary.json", "/status"] {
        let page = http
            .get(format!("{}{path}", running.base))
            .send()
            .await?
            .text()
            .await?;
        assert!(page.contains("extra"), "{path}: {page}");
        assert!(!page.contains("claude-sonnet"), "{path}: {page}");
        assert!(!page.contains("gpt-4o-mini"), "{path}: {page}");
    }
    Ok(())
}
