//! The `/_sim` control API and the in-process `Sim` handle.

mod common;

use bulwark_sim::{Fault, FaultRule, load_scenario};
use common::{ANTHROPIC, get, post, start};
use serde_json::json;

async fn send(
    method: reqwest::Method,
    url: &str,
    body: Option<serde_json::Value>,
) -> reqwest::Result<(u16, String)> {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await?;
    Ok((resp.status().as_u16(), resp.text().await?))
}

#[tokio::test]
async fn fault_rules_over_http() {
    let server = start().await;
    let base = server.url();
    let faults = format!("{base}/_sim/faults");
    let rule = json!({"match": {"format": "openai"}, "count": 1, "fault": {"status": 503}});
    let (status, text) = send(reqwest::Method::PUT, &faults, Some(json!([rule])))
        .await
        .unwrap();
    assert_eq!(status, 200, "{text}");
    let (_, text) = send(
        reqwest::Method::POST,
        &faults,
        Some(json!({"fault": {"hang": {"duration_ms": 1}}})),
    )
    .await
    .unwrap();
    let rules: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(rules.as_array().unwrap().len(), 2);
    assert_eq!(server.sim.faults().len(), 2);

    let chat = format!("{base}/v1/chat/completions");
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(post(&chat, &[], &body).await.status, 503);
    assert_eq!(post(&chat, &[], &body).await.status, 200);

    let (status, _) = send(reqwest::Method::DELETE, &faults, None).await.unwrap();
    assert_eq!(status, 200);
    assert!(
        get(&faults, &[])
            .await
            .json()
            .as_array()
            .unwrap()
            .is_empty()
    );

    let (status, _) = send(reqwest::Method::PUT, &faults, Some(json!({"bogus": 1})))
        .await
        .unwrap();
    assert_eq!(status, 400);
}

#[tokio::test]
async fn request_log_redacts_keys_and_stats_count() {
    let server = start().await;
    let base = server.url();
    let chat = format!("{base}/v1/chat/completions");
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    post(&chat, &[("authorization", "Bearer sk-secret")], &body).await;
    post(&chat, &[("x-sim-fault", "status=429")], &body).await;
    let msgs = format!("{base}/v1/messages");
    let headers = [ANTHROPIC[0], ("x-api-key", "sk-ant-secret")];
    let abody = json!({"model": "claude-sonnet-4-5", "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}]});
    post(&msgs, &headers, &abody).await;

    let log = get(&format!("{base}/_sim/requests"), &[]).await;
    assert!(!log.text.contains("secret"), "{}", log.text);
    let log = log.json();
    let entries = log.as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["path"], "/v1/chat/completions");
    assert_eq!(entries[0]["format"], "openai");
    assert_eq!(entries[0]["model"], "gpt-4o-mini");
    assert_eq!(entries[0]["auth_present"], true);
    assert_eq!(entries[0]["outcome"], "ok");
    assert_eq!(entries[0]["body"], body);
    assert_eq!(entries[1]["auth_present"], false);
    assert_eq!(entries[1]["outcome"], "fault_status_429");
    assert_eq!(entries[2]["headers"]["anthropic-version"], "2023-06-01");
    assert!(entries[2]["time_ms"].as_u64().unwrap() > 0);

    let stats = get(&format!("{base}/_sim/stats"), &[]).await.json();
    assert_eq!(stats["total"], 3);
    assert_eq!(stats["by_format"]["openai"], 2);
    assert_eq!(stats["by_model"]["claude-sonnet-4-5"], 1);
    assert_eq!(stats["by_outcome"]["fault_status_429"], 1);

    assert_eq!(server.sim.request_count(), 3);
    assert_eq!(server.sim.requests().len(), 3);
    let (status, _) = send(
        reqwest::Method::DELETE,
        &format!("{base}/_sim/requests"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 204);
    assert_eq!(server.sim.request_count(), 0);
    assert!(server.sim.requests().is_empty());
}

#[tokio::test]
async fn rust_handle_controls_faults() {
    let server = start().await;
    let chat = format!("{}/v1/chat/completions", server.url());
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    server
        .sim
        .add_fault(FaultRule::always(Fault::status(500)).times(1));
    assert_eq!(post(&chat, &[], &body).await.status, 500);
    assert_eq!(post(&chat, &[], &body).await.status, 200);
    server.sim.clear_requests();
    assert_eq!(server.sim.request_count(), 0);
    server.shutdown();
}

#[tokio::test]
async fn log_keeps_last_200() {
    let server = start().await;
    let chat = format!("{}/v1/chat/completions", server.url());
    let client = reqwest::Client::new();
    for i in 0..205 {
        let body =
            json!({"model": format!("m{i}"), "messages": [{"role": "user", "content": "hi"}]});
        client
            .post(&chat)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
    }
    let log = server.sim.requests();
    assert_eq!(log.len(), 200);
    assert_eq!(log[0].model.as_deref(), Some("m5"));
    assert_eq!(server.sim.request_count(), 205);
}

#[tokio::test]
async fn scenario_file_drives_server() {
    let dir = std::env::temp_dir().join(format!("bulwark-sim-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("scenario.yaml");
    std::fs::write(
        &path,
        "models: [gemini-2.5-flash]\nfaults:\n  - match: { format: gemini }\n    count: 1\n    fault: { status: { status: 503, should_retry: true } }\n",
    )
    .unwrap();
    let config = load_scenario(&path).unwrap();
    let server = common::start_with(config).await;
    let url = format!(
        "{}/v1beta/models/gemini-2.5-flash:generateContent",
        server.url()
    );
    let body = json!({"contents": [{"parts": [{"text": "hi"}]}]});
    let r = post(&url, &[], &body).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("x-should-retry"), Some("true"));
    assert_eq!(post(&url, &[], &body).await.status, 200);
}
