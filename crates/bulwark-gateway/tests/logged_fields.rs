//! A client's strings reach the request log, the metrics and the traces
//! only up to a cap (issue #15, defect 7): an 8 MiB model name once put
//! 17 MB per request into the store, refused or not.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup fails the test"
)]

mod common;

use bulwark::observe::record::{MAX_LOGGED_BODY, MAX_LOGGED_NAME, RequestRecord};
use serde_json::json;

const MIB: usize = 1024 * 1024;

async fn logged(running: &common::Running) -> Vec<RequestRecord> {
    let observer = running.gateway.observer();
    observer.flush().await;
    observer
        .store()
        .requests_between(0, i64::MAX, None)
        .await
        .unwrap()
}

fn post(base: &str, model: &str, content: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(
            json!({"model": model, "messages": [{"role": "user", "content": content}]}).to_string(),
        )
}

#[tokio::test]
async fn an_8_mib_model_is_refused_and_logged_within_the_cap() {
    let (_sim, running) = common::gateway_to_one_sim().await.unwrap();
    let model = "m".repeat(8 * MIB);
    let response = post(&running.base, &model, "hello").send().await.unwrap();
    assert_eq!(
        response.status(),
        400,
        "no route or model has a name that long"
    );

    let rows = logged(&running).await;
    assert_eq!(rows.len(), 1);
    let route = &rows[0].route;
    assert!(
        route.len() <= MAX_LOGGED_NAME,
        "the logged route holds {} bytes",
        route.len()
    );
    assert!(route.starts_with("mmm"), "{route}");
    assert!(
        route.ends_with(&format!("…({} bytes)", 8 * MIB)),
        "the cut is marked with the original length: {route}"
    );

    let metrics = reqwest::get(format!("{}/metrics", running.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !metrics.contains("mmmmmmmm"),
        "a client's model is never a label"
    );
}

/// A direct `provider/model` target longer than any real model id is
/// refused before a target state is made for it (each name would otherwise
/// be kept), and logged within the cap.
#[tokio::test]
async fn a_direct_target_named_by_the_client_is_refused_past_the_name_limit() {
    let (sim, running) = common::gateway_to_one_sim().await.unwrap();
    let model = format!("p/{}", "x".repeat(16 * 1024));
    let response = post(&running.base, &model, "hello").send().await.unwrap();
    assert_eq!(response.status(), 400);
    let body = response.text().await.unwrap();
    assert!(body.contains("at most 512"), "{body}");
    assert!(
        body.len() < 1024,
        "the error does not echo the name: {body}"
    );
    assert_eq!(sim.sim.request_count(), 0, "nothing reached the provider");

    let rows = logged(&running).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert!(row.route.len() <= MAX_LOGGED_NAME, "{}", row.route.len());
    assert!(row.attempts.is_empty());

    // A long but plausible name still reaches the provider.
    let plausible = format!("p/{}", "x".repeat(400));
    let response = post(&running.base, &plausible, "hello")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_logged_body_is_cut_to_its_cap() {
    let running = common::start_gateway(
        "listen: 127.0.0.1:0\nlog_bodies: true\nproviders:\n  p: { kind: anthropic, base_url: \"http://127.0.0.1:9\", api_key: k }\nroutes:\n  chat: { targets: [p/claude-sonnet-4-5] }\n",
    )
    .await
    .unwrap();
    // Refused (no such route) after it was read: its body is logged.
    let content = "é".repeat(MIB);
    let response = post(&running.base, "nope", &content).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let small = post(&running.base, "nope", "short").send().await.unwrap();
    assert_eq!(small.status(), 404);

    let rows = logged(&running).await;
    assert_eq!(rows.len(), 2);
    let mut bodies: Vec<&str> = rows
        .iter()
        .filter_map(|r| r.request_body.as_deref())
        .collect();
    bodies.sort_by_key(|b| b.len());
    assert_eq!(bodies.len(), 2);
    assert!(
        bodies[0].contains("\"short\""),
        "a small body is kept whole: {}",
        bodies[0]
    );
    assert!(
        bodies[1].len() <= MAX_LOGGED_BODY,
        "the logged body holds {} bytes",
        bodies[1].len()
    );
    assert!(bodies[1].ends_with(" bytes)"), "the cut is marked");
}

#[tokio::test]
async fn dropped_features_reach_the_request_log_and_the_metrics() {
    let (_sim, running) = common::gateway_to_one_sim().await.unwrap();
    // An OpenAI client's seed has no place in Anthropic's format.
    let response = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", running.base))
        .header("content-type", "application/json")
        .body(
            json!({"model": "chat", "seed": 7, "messages": [{"role": "user", "content": "hi"}]})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("x-bulwark-dropped")
            .and_then(|v| v.to_str().ok()),
        Some("seed")
    );

    let rows = logged(&running).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].dropped, ["seed"]);

    let metrics = reqwest::get(format!("{}/metrics", running.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"bulwark_translation_dropped_total{route="chat",target="p/claude-sonnet-4-5",feature="seed"} 1"#
        ),
        "{metrics}"
    );
}
