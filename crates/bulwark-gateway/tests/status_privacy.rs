//! `status_page.show_targets: false`: an outage on a target shows on every
//! public surface by its route only, while the admin API still names the
//! target.
#![expect(clippy::unwrap_used, reason = "a failed setup fails the test")]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bulwark_sim::{Fault, FaultRule, SimConfig, SimServer};
use serde_json::{Value, json};

const ADMIN: &str = "admin-key-for-tests-0123456789";

/// Names the public must not see: both providers and both models (so
/// neither a target label nor a part of one slips through).
const HIDDEN: [&str; 4] = ["zephyrco", "quillworks", "gpt-4o-mini", "claude-sonnet-4-5"];

async fn get_text(http: &reqwest::Client, url: &str) -> String {
    let response = http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.text().await.unwrap()
}

fn assert_hidden(surface: &str, body: &str) {
    let lower = body.to_lowercase();
    for name in HIDDEN {
        assert!(!lower.contains(name), "{surface} names `{name}`:\n{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_targets_stay_off_every_public_surface() {
    let primary = SimServer::start("127.0.0.1:0", SimConfig::default())
        .await
        .unwrap();
    let backup = SimServer::start("127.0.0.1:0", SimConfig::default())
        .await
        .unwrap();
    let yaml = format!(
        r#"listen: 127.0.0.1:0
admin_key: {ADMIN}
providers:
  zephyrco: {{ kind: openai, base_url: "{}/v1", api_key: k }}
  quillworks: {{ kind: anthropic, base_url: "{}", api_key: k }}
routes:
  chat:
    targets: [zephyrco/gpt-4o-mini, quillworks/claude-sonnet-4-5]
    max_retries: 0
breaker: {{ consecutive_failures: 3, base_ejection: 300ms }}
health: {{ window: 1s, evaluate_every: 1h, min_volume: 3, raise_after: 1, recover_after: 1, incident_after: 1ms, resolve_after: 1h }}
status_page: {{ title: "Acme AI", show_targets: false }}
"#,
        primary.url(),
        backup.url()
    );
    let running = common::start_gateway(&yaml).await.unwrap();
    let (base, gateway) = (running.base.clone(), running.gateway.clone());
    let http = reqwest::Client::new();

    // The live stream, read from before the outage until the end.
    let mut events = http
        .get(format!("{base}/status/events"))
        .send()
        .await
        .unwrap();
    let streamed = Arc::new(Mutex::new(String::new()));
    let reader = tokio::spawn({
        let streamed = streamed.clone();
        async move {
            while let Ok(Some(chunk)) = events.chunk().await {
                streamed
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk));
            }
        }
    });

    for _ in 0..5 {
        assert_eq!(common::chat(&http, &base).await.status(), 200);
    }
    gateway.evaluate_health().await;
    // The first target fails everything; the second answers.
    primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::status(503))]);
    for _ in 0..10 {
        assert_eq!(common::chat(&http, &base).await.status(), 200);
    }
    gateway.evaluate_health().await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    gateway.evaluate_health().await;
    // An admin's note names the provider; the public reads it without.
    let note = http
        .post(format!("{base}/admin/incidents/current/updates"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(
            json!({"status": "identified", "message": "Zephyrco returns 503 on zephyrco/gpt-4o-mini."})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(note.status(), 200);

    let summary = get_text(&http, &format!("{base}/api/v2/summary.json")).await;
    assert_hidden("summary.json", &summary);
    let summary: Value = serde_json::from_str(&summary).unwrap();
    let names: Vec<&str> = summary["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["group"] == false)
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["chat"], "only the route is listed");
    // The backup answered every request: said so, without naming either.
    assert_eq!(summary["status"]["indicator"], "minor", "{summary:#}");
    assert_eq!(
        summary["notices"],
        json!([
            "An upstream provider has an outage; a backup is answering what it cannot, and every request succeeds"
        ]),
        "{summary:#}"
    );
    let incidents = summary["incidents"].as_array().unwrap();
    assert_eq!(
        incidents.len(),
        1,
        "the outage is still reported: {summary:#}"
    );
    let incident = &incidents[0];
    assert!(
        incident["name"].as_str().unwrap().ends_with(" of chat"),
        "the title names the route: {incident:#}"
    );
    assert!(
        incident["components"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["name"] == "chat"),
        "{incident:#}"
    );
    let bodies: Vec<&str> = incident["incident_updates"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["body"].as_str())
        .collect();
    assert!(
        bodies.iter().any(|b| b.contains("an upstream provider")),
        "{bodies:?}"
    );
    assert!(
        bodies.iter().any(|b| b.contains("returns 503")),
        "{bodies:?}"
    );

    for path in [
        "/status",
        "/api/v2/components.json",
        "/api/v2/incidents.json",
        "/api/v2/status.json",
        "/status/feed.atom",
    ] {
        let body = get_text(&http, &format!("{base}{path}")).await;
        assert_hidden(path, &body);
        if path != "/api/v2/status.json" {
            assert!(body.contains("chat"), "{path} shows the route:\n{body}");
        }
    }

    // The stream saw the incident open, by its route's name only.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !streamed.lock().unwrap().contains("\"incident\"") {
        assert!(tokio::time::Instant::now() < deadline, "no incident event");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    reader.abort();
    let streamed = streamed.lock().unwrap().clone();
    assert!(streamed.contains("event: hello"), "{streamed}");
    assert!(streamed.contains("of chat"), "{streamed}");
    assert_hidden("/status/events", &streamed);

    // The admin API still names everything.
    let targets = http
        .get(format!("{base}/admin/targets"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(targets.contains("zephyrco/gpt-4o-mini"), "{targets}");
    assert!(
        targets.contains("quillworks/claude-sonnet-4-5"),
        "{targets}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let incidents = http
            .get(format!("{base}/admin/incidents"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if incidents.contains("zephyrco/gpt-4o-mini") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stored incident names the target: {incidents}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
