//! An outage end to end through a real gateway: the request log, metrics,
//! component states, the incident's lifecycle, alerts to a webhook that
//! fails its first delivery, the status page and its JSON.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed setup fails the test"
)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use bulwark_sim::{Fault, FaultRule, SimConfig, SimServer};
use serde_json::{Value, json};

/// A webhook receiver that answers 500 to its first delivery.
#[derive(Clone, Default)]
struct Receiver {
    bodies: Arc<Mutex<Vec<Value>>>,
    calls: Arc<Mutex<u32>>,
}

async fn start_receiver() -> (Receiver, String) {
    let receiver = Receiver::default();
    let state = receiver.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |Json(body): Json<Value>| {
            let state = state.clone();
            async move {
                let first = {
                    let mut calls = state.calls.lock().unwrap();
                    *calls += 1;
                    *calls == 1
                };
                if first {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                state.bodies.lock().unwrap().push(body);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (receiver, url)
}

async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    let bytes = http.get(url).send().await.unwrap().bytes().await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Debian's promtool must accept the exposition as Prometheus would.
fn promtool_accepts(metrics: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is missing: run scripts/tools.sh (apt-get install prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn screenshot_dir() -> std::path::PathBuf {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/status-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Headless Chromium with a throwaway profile; its stdout. No virtual
/// time budget: the page's live-update stream never goes idle, and
/// virtual time waits for the network to.
fn chromium(args: &[String]) -> String {
    let profile = std::env::temp_dir().join(format!(
        "bulwark-gateway-chromium-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    let output = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium is missing: run scripts/tools.sh (apt-get install chromium)");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const ADMIN: &str = "admin-key-for-tests-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_detected_alerted_shown_and_resolved() {
    let primary = SimServer::start("127.0.0.1:0", SimConfig::default())
        .await
        .unwrap();
    let backup = SimServer::start("127.0.0.1:0", SimConfig::default())
        .await
        .unwrap();
    let (receiver, hook) = start_receiver().await;
    // Health is judged by hand (evaluate_health) with a one-second window,
    // so the test decides when each evaluation happens.
    let yaml = format!(
        r#"listen: 127.0.0.1:0
admin_key: {ADMIN}
providers:
  primary: {{ kind: openai, base_url: "{}/v1", api_key: k, prices: {{ gpt-4o-mini: {{ input: 0.15, output: 0.6 }} }} }}
  backup: {{ kind: anthropic, base_url: "{}", api_key: k }}
routes:
  chat:
    targets: [primary/gpt-4o-mini, backup/claude-sonnet-4-5]
    max_retries: 0
    slo: {{ availability: 99.9%, window: 30d }}
breaker: {{ consecutive_failures: 3, base_ejection: 300ms }}
health: {{ window: 1s, evaluate_every: 1h, min_volume: 3, raise_after: 1, recover_after: 1, incident_after: 1ms, resolve_after: 1ms }}
alerts:
  webhooks:
    - {{ url: "{hook}", format: generic }}
status_page: {{ title: "Acme AI" }}
"#,
        primary.url(),
        backup.url()
    );
    let running = common::start_gateway(&yaml).await.unwrap();
    let (base, gateway) = (running.base.clone(), running.gateway.clone());
    let http = reqwest::Client::new();

    // Healthy traffic.
    for _ in 0..5 {
        assert_eq!(common::chat(&http, &base).await.status(), 200);
    }
    gateway.evaluate_health().await;

    // The primary fails everything: the backup answers every request.
    primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::status(503))]);
    for _ in 0..10 {
        let response = common::chat(&http, &base).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-bulwark-fallback"], "true");
    }
    gateway.evaluate_health().await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    gateway.evaluate_health().await;

    let summary: Value = get_json(&http, &format!("{base}/api/v2/summary.json")).await;
    assert_eq!(summary["page"]["name"], "Acme AI");
    let components = summary["components"].as_array().unwrap();
    let state_of = |name: &str| {
        components
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["status"].as_str().unwrap().to_string())
    };
    assert_eq!(
        state_of("primary/gpt-4o-mini").as_deref(),
        Some("major_outage")
    );
    assert_eq!(
        state_of("backup/claude-sonnet-4-5").as_deref(),
        Some("operational")
    );
    // Every request was served: for clients the route is on fallback
    // (degraded), not out, and so is the page's headline.
    assert_eq!(state_of("chat").as_deref(), Some("degraded_performance"));
    assert_eq!(summary["status"]["indicator"], "minor", "{summary:#}");
    assert_eq!(
        summary["notices"],
        serde_json::json!(["OpenAI is down; every request is being served by Anthropic"])
    );
    // Routes first, the upstream providers' group beneath.
    assert_eq!(components[0]["name"], "Routes");
    let upstreams = components
        .iter()
        .find(|c| c["name"] == "Upstream providers")
        .unwrap();
    assert_eq!(upstreams["status"], "major_outage");
    let incidents = summary["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{summary:#}");
    assert_eq!(incidents[0]["impact"], "minor", "{summary:#}");
    // Opened before any request was counted in it: titled from the route.
    assert!(
        incidents[0]["name"]
            .as_str()
            .unwrap()
            .starts_with("Degraded performance of "),
        "{summary:#}"
    );
    let incident_id = incidents[0]["id"].as_str().unwrap().to_string();
    // Operators see the same grouping, with every name.
    let admin = http
        .get(format!("{base}/admin/status"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);
    let admin: Value = serde_json::from_str(&admin.text().await.unwrap()).unwrap();
    assert_eq!(admin["status"], "degraded_performance", "{admin:#}");
    assert_eq!(admin["notices"], summary["notices"]);
    assert_eq!(admin["groups"][0]["name"], "Routes");
    assert_eq!(admin["groups"][1]["name"], "Upstream providers");
    assert_eq!(admin["groups"][1]["status"], "major_outage");
    assert_eq!(
        admin["groups"][1]["components"][0]["name"],
        "primary/gpt-4o-mini"
    );
    // Time on fallback counts as up for the route; the primary's outage
    // counts against the primary only.
    let snapshot = gateway.observer().snapshot().await;
    let uptime_of = |name: &str| {
        snapshot
            .components
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.uptime_24h)
    };
    assert_eq!(uptime_of("chat"), Some(1.0), "{snapshot:#?}");
    assert!(
        uptime_of("primary/gpt-4o-mini").is_some_and(|u| u < 1.0),
        "{snapshot:#?}"
    );

    let page = http
        .get(format!("{base}/status"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<h1>Degraded performance</h1>"), "{page}");
    assert!(
        page.contains("OpenAI is down; every request is being served by Anthropic"),
        "the page says fallback absorbed the outage"
    );
    assert!(page.contains("Major outage"), "the upstream's state shows");
    assert!(page.contains("primary/gpt-4o-mini"));

    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains(r#"bulwark_requests_total{route="chat",target="backup/claude-sonnet-4-5",outcome="fallback",format="openai"} 10"#), "{metrics}");
    assert!(metrics.contains("bulwark_component_state{"));
    promtool_accepts(&metrics);

    // What a person sees: the page in a real browser, mid-incident.
    let shot = screenshot_dir().join("gateway-incident.png");
    let dom = chromium(&[
        format!("--screenshot={}", shot.display()),
        "--window-size=1280,2000".into(),
        format!("{base}/status"),
    ]);
    let _ = dom;
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "a real page, not a blank one"
    );
    let dom = chromium(&["--dump-dom".into(), format!("{base}/status")]);
    // The notice needs requests within the one-second health window, which
    // a browser's start outlasts; the page fetched above showed it.
    assert!(
        dom.contains("<h1>Degraded performance</h1>") && dom.contains("Major outage"),
        "the rendered page shows what clients get, and the upstream's state"
    );
    assert!(
        dom.contains("Fallback engaged") || dom.contains("Detected"),
        "the rendered page shows the timeline"
    );

    // Recovery: the primary answers again, the window slides past the
    // failures and its breaker lets traffic back.
    primary.sim.clear_faults();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    for _ in 0..10 {
        assert_eq!(common::chat(&http, &base).await.status(), 200);
    }
    for _ in 0..3 {
        gateway.evaluate_health().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let incidents: Value = get_json(&http, &format!("{base}/api/v2/incidents.json")).await;
    let incident = incidents["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == incident_id.as_str())
        .expect("the incident is listed")
        .clone();
    assert_eq!(incident["status"], "resolved", "{incident:#}");

    // Alerts: the first delivery failed, yet open and resolve arrived once each.
    gateway.observer().flush_alerts().await;
    let kinds: Vec<String> = receiver
        .bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| b["kind"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "incident_opened").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "incident_resolved").count(),
        1,
        "{kinds:?}"
    );

    // The request log: every request, with its attempts.
    gateway.observer().flush().await;
    let rows = gateway
        .observer()
        .store()
        .requests_between(0, i64::MAX, None)
        .await
        .unwrap();
    assert_eq!(rows.len(), 25);
    let saved: Vec<_> = rows.iter().filter(|r| r.fallback).collect();
    assert_eq!(saved.len(), 10);
    // Three calls failed on the primary before its breaker opened; the
    // other seven skipped it without a call.
    let tried_primary = saved.iter().filter(|r| r.attempts.len() == 2).count();
    assert_eq!(tried_primary, 3);
    for row in &saved {
        if row.attempts.len() == 2 {
            assert_eq!(row.attempts[0].target, "primary/gpt-4o-mini");
            assert_eq!(row.attempts[0].error_class.as_deref(), Some("overloaded"));
            assert_eq!(row.attempts[0].status, Some(503));
        }
        let last = row.attempts.last().unwrap();
        assert_eq!(last.target, "backup/claude-sonnet-4-5");
        assert!(last.error_class.is_none());
    }
    assert!(
        rows.iter().all(|r| r.request_body.is_none()),
        "bodies are not logged by default"
    );

    // The stored incident as a post-incident review.
    let review = http
        .get(format!("{base}/admin/incidents/{incident_id}?format=md"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(review.contains("Timeline"), "{review}");
    assert!(review.contains("primary/gpt-4o-mini"), "{review}");

    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn admins_annotate_incidents_and_set_maintenance() {
    let sim = SimServer::start("127.0.0.1:0", SimConfig::default())
        .await
        .unwrap();
    let yaml = format!(
        "listen: 127.0.0.1:0\nadmin_key: {ADMIN}\nproviders:\n  p: {{ kind: openai, base_url: \"{}/v1\", api_key: k }}\nroutes:\n  chat: {{ targets: [p/gpt-4o-mini] }}\n",
        sim.url()
    );
    let running = common::start_gateway(&yaml).await.unwrap();
    let base = &running.base;
    let http = reqwest::Client::new();
    let put = http
        .put(format!(
            "{base}/admin/components/p%2Fgpt-4o-mini/maintenance"
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let status: Value = get_json(&http, &format!("{base}/api/v2/components.json")).await;
    let component = status["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "p/gpt-4o-mini")
        .unwrap()
        .clone();
    assert_eq!(component["status"], "under_maintenance");
    // Without the key, nothing changes.
    let denied = http
        .delete(format!(
            "{base}/admin/components/p%2Fgpt-4o-mini/maintenance"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    let unknown = http
        .put(format!("{base}/admin/components/nope/maintenance"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    // No incident is open: a note has nowhere to go.
    let note = http
        .post(format!("{base}/admin/incidents/current/updates"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(json!({"status": "identified", "message": "looking"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(note.status(), 404);
    let bad = http
        .post(format!("{base}/admin/incidents/current/updates"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(json!({"status": "sleeping"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

/// Runs SQL on the local PostgreSQL as the tests' superuser.
fn psql(sql: &str) {
    let output = std::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .expect("psql is missing (apt-get install postgresql-client)");
    assert!(
        output.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_share_one_postgres_request_log() {
    let database = format!(
        "bulwark_gateway_{}_{}",
        std::process::id(),
        fastrand::u32(..)
    );
    psql(&format!("CREATE DATABASE {database}"));
    let sim = SimServer::start("127.0.0.1:0", SimConfig::default())
        .await
        .unwrap();
    let yaml = format!(
        "listen: 127.0.0.1:0\nstore: \"postgres://postgres@127.0.0.1:5432/{database}\"\nproviders:\n  p: {{ kind: openai, base_url: \"{}/v1\", api_key: k }}\nroutes:\n  chat: {{ targets: [p/gpt-4o-mini] }}\n",
        sim.url()
    );
    let first = common::start_gateway(&yaml).await.unwrap();
    let second = common::start_gateway(&yaml).await.unwrap();
    let http = reqwest::Client::new();
    for _ in 0..3 {
        assert_eq!(common::chat(&http, &first.base).await.status(), 200);
        assert_eq!(common::chat(&http, &second.base).await.status(), 200);
    }
    let ready = get_json(&http, &format!("{}/readyz", first.base)).await;
    assert_eq!(ready["store"], "postgres");
    first.gateway.observer().flush().await;
    second.gateway.observer().flush().await;
    let rows = second
        .gateway
        .observer()
        .store()
        .requests_between(0, i64::MAX, None)
        .await
        .unwrap();
    assert_eq!(rows.len(), 6, "both instances' requests are in the one log");
    let (total, good) = first
        .gateway
        .observer()
        .store()
        .route_counts("chat", 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!((total, good), (6, 6));
    first.gateway.observer().store().close().await;
    second.gateway.observer().store().close().await;
    drop((first, second));
    psql(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_keep_a_quiet_target_judged() {
    let sim = SimServer::start("127.0.0.1:0", SimConfig::default())
        .await
        .unwrap();
    sim.sim
        .set_faults(vec![FaultRule::always(Fault::status(500))]);
    let yaml = format!(
        "listen: 127.0.0.1:0\nproviders:\n  p: {{ kind: openai, base_url: \"{}/v1\", api_key: k, probe: {{ every: 1s }} }}\nroutes:\n  chat: {{ targets: [p/gpt-4o-mini], max_retries: 0 }}\nbreaker: {{ consecutive_failures: 100 }}\nhealth: {{ window: 1m, evaluate_every: 1h, min_volume: 2, raise_after: 1 }}\n",
        sim.url()
    );
    let running = common::start_gateway(&yaml).await.unwrap();
    // No client traffic at all: only the probes, once a second, the first
    // at start. The gateway opens its SQLite store on its own thread, which
    // tokio's paused clock would take for idle time and jump the pool's
    // timeouts, so this runs on the real clock and asks until the second
    // probe has been judged instead of sleeping a fixed 2.3 s.
    let http = reqwest::Client::new();
    let asked_from = tokio::time::Instant::now();
    let target = loop {
        running.gateway.evaluate_health().await;
        let components = get_json(&http, &format!("{}/api/v2/components.json", running.base)).await;
        let target = components["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "p/gpt-4o-mini")
            .unwrap()
            .clone();
        if target["status"] == "major_outage" || asked_from.elapsed() > Duration::from_secs(10) {
            break target;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(sim.sim.request_count() >= 2, "probes reached the provider");
    assert_eq!(target["status"], "major_outage", "{target:#}");
    let metrics = http
        .get(format!("{}/metrics", running.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"format="probe""#),
        "probes are counted apart from clients"
    );
}

#[tokio::test]
async fn the_request_log_counts_the_tokens_of_streamed_and_complete_answers() {
    let (_sim, running) = common::gateway_to_one_sim().await.unwrap();
    let http = reqwest::Client::new();
    for stream in [false, true] {
        let response = http
            .post(format!("{}/v1/chat/completions", running.base))
            .header("content-type", "application/json")
            .body(
                json!({
                    "model": "chat",
                    "stream": stream,
                    "messages": [{"role": "user", "content": "count my tokens please"}],
                })
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        // A stream's record is finished when the client has read it all.
        response.bytes().await.unwrap();
    }
    let observer = running.gateway.observer();
    observer.flush().await;
    let rows = observer
        .store()
        .requests_between(0, i64::MAX, None)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert!(row.input_tokens.is_some_and(|n| n > 0), "{row:?}");
        assert!(row.output_tokens.is_some_and(|n| n > 0), "{row:?}");
    }
    assert_eq!(rows.iter().filter(|r| r.stream).count(), 1);
}
