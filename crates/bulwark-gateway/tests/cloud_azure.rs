//! Azure OpenAI through the gateway, against the simulator's Azure: the
//! deployment paths and the v1 surface, an `api-key` and Entra ID tokens
//! (renewed before they expire, under load), refused credentials as a
//! misconfiguration, and the content filter as the client's problem.

use bulwark_sim::{AzureSimConfig, Fault, FaultRule, SimConfig, SimServer, StatusFault};
use serde_json::{Value, json};

mod common;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const KEY: &str = "azure-test-key-0123";
const SECRET: &str = "entra-test-secret-0123";
const ADMIN: &str = "admin-secret-0123456789";

async fn azure_sim(token_ttl_secs: u64) -> Result<SimServer, Box<dyn std::error::Error>> {
    azure_sim_with(azure_config(token_ttl_secs)).await
}

fn azure_config(token_ttl_secs: u64) -> AzureSimConfig {
    AzureSimConfig {
        api_key: Some(KEY.into()),
        tenant_id: "tenant-1".into(),
        client_id: "client-1".into(),
        client_secret: SECRET.into(),
        token_ttl_secs,
        ..AzureSimConfig::default()
    }
}

async fn azure_sim_with(azure: AzureSimConfig) -> Result<SimServer, Box<dyn std::error::Error>> {
    let config = SimConfig {
        azure: Some(azure),
        ..SimConfig::default()
    };
    Ok(SimServer::start("127.0.0.1:0", config).await?)
}

/// A gateway with Azure providers on `azure` and an OpenAI backup:
/// `dep` (deployment path, api-key), `v1` (the v1 surface), `entra`
/// (Entra tokens), `bad_key` and `bad_secret` (each falling over to the
/// backup), `filtered` (Azure, then the backup), `no_role` (Entra tokens)
/// and `no_deployment` (an api-key, deployment `gone-gpt`), each then the backup.
async fn gateway(
    azure: &SimServer,
    backup: &SimServer,
) -> Result<common::Running, Box<dyn std::error::Error>> {
    let az = azure.url();
    let yaml = format!(
        r#"listen: 127.0.0.1:0
admin_key: {ADMIN}
breaker: {{ consecutive_failures: 1 }}
providers:
  az: {{ kind: azure-openai, base_url: "{az}", api_version: 2024-10-21, api_key: {KEY} }}
  azv1: {{ kind: azure-openai, base_url: "{az}", api_key: {KEY} }}
  azold: {{ kind: azure-openai, base_url: "{az}", api_version: 2024-06-01, api_key: {KEY} }}
  aze: {{ kind: azure-openai, base_url: "{az}", api_version: 2024-10-21, entra: {{ tenant_id: tenant-1, client_id: client-1, client_secret: {SECRET}, authority: "{az}" }} }}
  azkey: {{ kind: azure-openai, base_url: "{az}", api_version: 2024-10-21, api_key: wrong-key-0123456 }}
  azsecret: {{ kind: azure-openai, base_url: "{az}", api_version: 2024-10-21, entra: {{ tenant_id: tenant-1, client_id: client-1, client_secret: wrong-secret-0123, authority: "{az}" }} }}
  azdown: {{ kind: azure-openai, base_url: "{az}", api_version: 2024-10-21, entra: {{ tenant_id: tenant-1, client_id: client-1, client_secret: {SECRET}, authority: "http://127.0.0.1:9" }} }}
  backup: {{ kind: openai, base_url: "{}/v1", api_key: backup-key }}
routes:
  dep: {{ targets: [az/my-gpt] }}
  old: {{ targets: [azold/my-gpt] }}
  entra_down: {{ targets: [azdown/my-gpt, backup/gpt-4o-mini], max_retries: 0 }}
  v1: {{ targets: [azv1/gpt-4o] }}
  entra: {{ targets: [aze/my-gpt] }}
  bad_key: {{ targets: [azkey/my-gpt, backup/gpt-4o-mini] }}
  bad_secret: {{ targets: [azsecret/my-gpt, backup/gpt-4o-mini] }}
  no_role: {{ targets: [aze/my-gpt, backup/gpt-4o-mini] }}
  no_deployment: {{ targets: [az/gone-gpt, backup/gpt-4o-mini] }}
  filtered: {{ targets: [az/my-gpt, backup/gpt-4o-mini] }}
  emb: {{ targets: [az/text-embedding-3-small] }}
  emb_v1: {{ targets: [azv1/text-embedding-3-small] }}
  emb_entra: {{ targets: [aze/text-embedding-3-small] }}
"#,
        backup.url()
    );
    common::start_gateway(&yaml).await
}

fn openai_chat(route: &str, text: &str, stream: bool) -> String {
    json!({"model": route, "stream": stream, "messages": [{"role": "user", "content": text}]})
        .to_string()
}

fn anthropic_chat(route: &str, text: &str, stream: bool) -> String {
    json!({"model": route, "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": text}]})
        .to_string()
}

async fn post(
    http: &reqwest::Client,
    url: String,
    body: String,
) -> Result<(u16, reqwest::header::HeaderMap, String), Box<dyn std::error::Error>> {
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    Ok((status, headers, response.text().await?))
}

/// The (event name, JSON data) pairs of an SSE body; `[DONE]` as a string.
fn sse_events(body: &str) -> Vec<(Option<String>, Value)> {
    let mut events = Vec::new();
    for block in body.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut name = None;
        let mut data = String::new();
        for line in block.lines() {
            if let Some(value) = line.strip_prefix("event:") {
                name = Some(value.trim().to_string());
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push_str(value.trim_start());
            }
        }
        let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
        events.push((name, data));
    }
    events
}

/// The text of an OpenAI stream and its finish reason.
fn openai_stream_text(body: &str) -> (String, Option<String>) {
    let mut text = String::new();
    let mut finish = None;
    for (_, chunk) in sse_events(body) {
        if let Some(delta) = chunk
            .pointer("/choices/0/delta/content")
            .and_then(Value::as_str)
        {
            text.push_str(delta);
        }
        if let Some(reason) = chunk
            .pointer("/choices/0/finish_reason")
            .and_then(Value::as_str)
        {
            finish = Some(reason.to_string());
        }
    }
    (text, finish)
}

async fn admin_targets(
    http: &reqwest::Client,
    base: &str,
) -> Result<Value, Box<dyn std::error::Error>> {
    let response = http
        .get(format!("{base}/admin/targets"))
        .header("authorization", format!("Bearer {ADMIN}"))
        .send()
        .await?;
    Ok(serde_json::from_str(&response.text().await?)?)
}

fn breaker_of(targets: &Value, target: &str) -> Option<String> {
    targets["targets"]
        .as_array()?
        .iter()
        .find(|t| t["target"] == target)
        .and_then(|t| t["breaker"].as_str())
        .map(str::to_string)
}

#[tokio::test]
async fn an_openai_client_reaches_both_surfaces_streamed_and_not() -> TestResult {
    let azure = azure_sim(3600).await?;
    let backup = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let gw = gateway(&azure, &backup).await?;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/chat/completions", gw.base);
    for (route, model, path) in [
        (
            "dep",
            "my-gpt",
            "/openai/deployments/my-gpt/chat/completions?api-version=2024-10-21",
        ),
        ("v1", "gpt-4o", "/openai/v1/chat/completions"),
    ] {
        let expected = format!("Simulated answer from {model}: Say hi please");
        let (status, _, text) = post(
            &http,
            url.clone(),
            openai_chat(route, "Say hi please", false),
        )
        .await?;
        assert_eq!(status, 200, "{route}: {text}");
        let body: Value = serde_json::from_str(&text)?;
        assert_eq!(body["choices"][0]["message"]["content"], expected.as_str());
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
        // Azure's annotations reach an OpenAI client, which ignores what it does not know.
        assert!(body["prompt_filter_results"].is_array(), "{body}");
        assert!(!body["id"].as_str().unwrap_or_default().is_empty());

        let (status, _, text) = post(
            &http,
            url.clone(),
            openai_chat(route, "Say hi please", true),
        )
        .await?;
        assert_eq!(status, 200, "{route}: {text}");
        assert_eq!(openai_stream_text(&text), (expected, Some("stop".into())));
        assert!(text.contains("content_filter_results"), "{text}");

        let logged = azure.sim.requests();
        let last = logged.last().ok_or("no request reached Azure")?;
        assert_eq!(last.path, path);
        assert_eq!(
            last.headers.get("api-key").map(String::as_str),
            Some("<redacted>")
        );
        // OpenAI's bearer key is not how Azure is reached.
        assert!(!last.headers.contains_key("authorization"));
        if route == "v1" {
            assert_eq!(last.body["model"], "gpt-4o");
        }
    }
    assert_eq!(azure.sim.stats().by_outcome.get("ok"), Some(&4));
    assert_eq!(backup.sim.request_count(), 0);
    Ok(())
}

#[tokio::test]
async fn an_anthropic_client_is_translated_onto_azure() -> TestResult {
    let azure = azure_sim(3600).await?;
    let backup = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let gw = gateway(&azure, &backup).await?;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/messages", gw.base);
    let (status, _, text) = post(
        &http,
        url.clone(),
        anthropic_chat("dep", "Say hi please", false),
    )
    .await?;
    assert_eq!(status, 200, "{text}");
    let body: Value = serde_json::from_str(&text)?;
    assert_eq!(body["type"], "message");
    assert_eq!(
        body["content"][0]["text"],
        "Simulated answer from my-gpt: Say hi please"
    );
    assert_eq!(body["stop_reason"], "end_turn");

    let (status, _, text) = post(&http, url, anthropic_chat("dep", "Say hi please", true)).await?;
    assert_eq!(status, 200, "{text}");
    let events = sse_events(&text);
    // Azure's opening chunk (no choices, an empty id and model) must not
    // become the message's identity.
    let start = &events
        .iter()
        .find(|(name, _)| name.as_deref() == Some("message_start"))
        .ok_or("no message_start")?
        .1;
    assert_eq!(start["message"]["model"], "my-gpt", "{start}");
    assert!(
        start["message"]["id"]
            .as_str()
            .is_some_and(|id| id.len() > 4),
        "{start}"
    );
    let text: String = events
        .iter()
        .filter_map(|(_, e)| e.pointer("/delta/text").and_then(Value::as_str))
        .collect();
    assert_eq!(text, "Simulated answer from my-gpt: Say hi please");
    assert!(
        events
            .iter()
            .any(|(name, _)| name.as_deref() == Some("message_stop"))
    );
    Ok(())
}

/// Four-second tokens, and eight workers asking steadily for about ten
/// seconds (eighty requests, over two lifetimes and more): every request
/// is served with a live token, so renewal came before expiry, and the
/// grants are spread out, so the workers did not each fetch one.
#[tokio::test]
async fn entra_tokens_are_renewed_before_they_expire_under_load() -> TestResult {
    const TTL: std::time::Duration = std::time::Duration::from_secs(4);
    const WORKERS: u32 = 8;
    const EACH: u32 = 10;
    // Ten requests a worker, one each second: about ten seconds in all,
    // whatever the machine's speed; nothing below depends on how long.
    const PACE: std::time::Duration = std::time::Duration::from_secs(1);
    let azure = azure_sim(TTL.as_secs()).await?;
    let backup = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let gw = gateway(&azure, &backup).await?;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/chat/completions", gw.base);
    let workers = (0..WORKERS).map(|worker| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            // Staggered, so requests arrive all through each lifetime.
            tokio::time::sleep(PACE * worker / WORKERS).await;
            let mut outcomes = Vec::new();
            for i in 0..EACH {
                let body = openai_chat("entra", "Say hi please", (worker + i) % 2 == 0);
                outcomes.push(match post(&http, url.clone(), body).await {
                    Ok((200, _, _)) => Ok(()),
                    Ok((status, _, text)) => Err(format!("{status}: {text}")),
                    Err(e) => Err(e.to_string()),
                });
                tokio::time::sleep(PACE).await;
            }
            outcomes
        }
    });
    let outcomes: Vec<Result<(), String>> = futures_util::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
        .collect();
    let sent = u64::from(WORKERS * EACH);
    assert_eq!(outcomes.len() as u64, sent);
    let failed: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert!(failed.is_empty(), "{} failed: {failed:?}", failed.len());
    let outcomes = azure.sim.stats().by_outcome;
    assert_eq!(outcomes.get("ok"), Some(&sent), "{outcomes:?}");
    assert_eq!(outcomes.get("error_401"), None, "{outcomes:?}");
    assert_eq!(backup.sim.request_count(), 0);
    let grants = azure.sim.entra_grant_times();
    assert!(grants.len() >= 2, "never renewed: {grants:?}");
    for pair in grants.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        assert!(
            gap >= TTL / 4,
            "grants {gap:?} apart, a stampede: {:?}",
            grants
                .iter()
                .map(|t| t.duration_since(grants[0]))
                .collect::<Vec<_>>()
        );
    }
    // Every request carried a bearer; none the secret.
    for request in azure.sim.requests() {
        assert_eq!(
            request.headers.get("authorization").map(String::as_str),
            Some("<redacted>")
        );
        assert!(!request.headers.contains_key("api-key"));
    }
    Ok(())
}

#[tokio::test]
async fn a_refused_key_or_secret_is_a_misconfiguration_and_falls_over() -> TestResult {
    let azure = azure_sim(3600).await?;
    let backup = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let gw = gateway(&azure, &backup).await?;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/chat/completions", gw.base);
    for (route, target) in [
        ("bad_key", "azkey/my-gpt"),
        ("bad_secret", "azsecret/my-gpt"),
    ] {
        let (status, headers, text) = post(
            &http,
            url.clone(),
            openai_chat(route, "Say hi please", false),
        )
        .await?;
        assert_eq!(status, 200, "{route}: {text}");
        let served_by = headers
            .get("x-bulwark-target")
            .and_then(|v| v.to_str().ok());
        assert_eq!(served_by, Some("backup/gpt-4o-mini"), "{route}");
        assert!(!text.contains("wrong-"), "{text}");
        let targets = admin_targets(&http, &gw.base).await?;
        assert_eq!(
            breaker_of(&targets, target).as_deref(),
            Some("open"),
            "{targets}"
        );
        assert!(!targets.to_string().contains("wrong-"), "{targets}");
    }
    // The wrong key reached Azure once and was refused; the wrong secret
    // never got a token, so no request reached Azure with it.
    assert_eq!(azure.sim.stats().by_outcome.get("error_401"), Some(&1));
    assert_eq!(azure.sim.entra_grants(), 0);
    assert_eq!(backup.sim.request_count(), 2);
    assert_misconfigured_once(&http, &gw.base, &["azkey/my-gpt", "azsecret/my-gpt"]).await?;
    Ok(())
}

/// Each of `targets` was reported misconfigured exactly once, by the
/// `bulwark_misconfigured_total` metric.
async fn assert_misconfigured_once(
    http: &reqwest::Client,
    base: &str,
    targets: &[&str],
) -> TestResult {
    let metrics = http
        .get(format!("{base}/metrics"))
        .header("authorization", format!("Bearer {ADMIN}"))
        .send()
        .await?
        .text()
        .await?;
    for target in targets {
        let line = format!("bulwark_misconfigured_total{{target=\"{target}\"}} 1");
        assert!(metrics.contains(&line), "{line} not in the metrics");
    }
    Ok(())
}

/// Past a valid credential: an Entra app without the "Cognitive Services
/// OpenAI User" role (403) and a deployment the resource lacks (404) are
/// the target's misconfiguration, asked once and fallen over from.
#[tokio::test]
async fn a_missing_role_or_deployment_is_a_misconfiguration_and_falls_over() -> TestResult {
    let azure = azure_sim_with(AzureSimConfig {
        deployments: Some(vec!["my-gpt".into()]),
        client_lacks_role: true,
        ..azure_config(3600)
    })
    .await?;
    let backup = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let gw = gateway(&azure, &backup).await?;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/chat/completions", gw.base);
    for (route, target) in [("no_role", "aze/my-gpt"), ("no_deployment", "az/gone-gpt")] {
        let (status, headers, text) = post(
            &http,
            url.clone(),
            openai_chat(route, "Say hi please", false),
        )
        .await?;
        assert_eq!(status, 200, "{route}: {text}");
        let served_by = headers
            .get("x-bulwark-target")
            .and_then(|v| v.to_str().ok());
        assert_eq!(served_by, Some("backup/gpt-4o-mini"), "{route}");
        let targets = admin_targets(&http, &gw.base).await?;
        assert_eq!(
            breaker_of(&targets, target).as_deref(),
            Some("open"),
            "{targets}"
        );
    }
    // Each refusal reached Azure exactly once: no retry on the same target.
    let outcomes = azure.sim.stats().by_outcome;
    assert_eq!(outcomes.get("error_403"), Some(&1), "{outcomes:?}");
    assert_eq!(outcomes.get("error_404"), Some(&1), "{outcomes:?}");
    assert_eq!(azure.sim.request_count(), 2);
    assert_eq!(azure.sim.entra_grants(), 1);
    assert_eq!(backup.sim.request_count(), 2);
    assert_misconfigured_once(&http, &gw.base, &["aze/my-gpt", "az/gone-gpt"]).await?;
    Ok(())
}

#[tokio::test]
async fn a_filtered_prompt_is_the_clients_400_and_the_breaker_stays_closed() -> TestResult {
    let azure = azure_sim(3600).await?;
    let backup = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let gw = gateway(&azure, &backup).await?;
    let http = reqwest::Client::new();
    let prompt = "tell me sim:content_filter";
    for stream in [false, true] {
        let (status, _, text) = post(
            &http,
            format!("{}/v1/chat/completions", gw.base),
            openai_chat("filtered", prompt, stream),
        )
        .await?;
        assert_eq!(status, 400, "{text}");
        let body: Value = serde_json::from_str(&text)?;
        assert_eq!(body["error"]["code"], "content_filter", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("filtered"))
        );
        // Translated from Anthropic's format, still the client's 400, in its shape.
        let (status, _, text) = post(
            &http,
            format!("{}/v1/messages", gw.base),
            anthropic_chat("filtered", prompt, stream),
        )
        .await?;
        assert_eq!(status, 400, "{text}");
        let body: Value = serde_json::from_str(&text)?;
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("filtered"))
        );
    }
    // No retry, no fail-over to a laxer target, no breaker failure.
    assert_eq!(azure.sim.request_count(), 4);
    assert_eq!(backup.sim.request_count(), 0);
    let targets = admin_targets(&http, &gw.base).await?;
    assert_eq!(
        breaker_of(&targets, "az/my-gpt").as_deref(),
        Some("closed"),
        "{targets}"
    );
    let (status, _, _) = post(
        &http,
        format!("{}/v1/chat/completions", gw.base),
        openai_chat("filtered", "Say hi please", false),
    )
    .await?;
    assert_eq!(status, 200);
    Ok(())
}

#[tokio::test]
async fn a_filtered_answer_ends_with_each_formats_reason() -> TestResult {
    let azure = azure_sim(3600).await?;
    let backup = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let gw = gateway(&azure, &backup).await?;
    let http = reqwest::Client::new();
    let prompt = "one two three four sim:content_filter_output";
    let (status, _, text) = post(
        &http,
        format!("{}/v1/chat/completions", gw.base),
        openai_chat("dep", prompt, true),
    )
    .await?;
    assert_eq!(status, 200, "{text}");
    let (answer, finish) = openai_stream_text(&text);
    assert_eq!(finish.as_deref(), Some("content_filter"));
    assert!(!answer.contains("sim:content_filter_output"), "{answer}");
    let (status, _, text) = post(
        &http,
        format!("{}/v1/messages", gw.base),
        anthropic_chat("dep", prompt, false),
    )
    .await?;
    assert_eq!(status, 200, "{text}");
    let body: Value = serde_json::from_str(&text)?;
    assert_eq!(body["stop_reason"], "refusal", "{body}");
    let gemini = json!({"contents": [{"role": "user", "parts": [{"text": prompt}]}]}).to_string();
    let (status, _, text) = post(
        &http,
        format!("{}/v1beta/models/dep:generateContent", gw.base),
        gemini,
    )
    .await?;
    assert_eq!(status, 200, "{text}");
    let body: Value = serde_json::from_str(&text)?;
    assert_eq!(body["candidates"][0]["finishReason"], "SAFETY", "{body}");
    assert_eq!(backup.sim.request_count(), 0);
    Ok(())
}

#[tokio::test]
async fn embeddings_reach_both_surfaces_with_either_credential() -> TestResult {
    let azure = azure_sim(3600).await?;
    let backup = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let gw = gateway(&azure, &backup).await?;
    let http = reqwest::Client::new();
    let mut answers = Vec::new();
    for (route, path, credential) in [
        (
            "emb",
            "/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21",
            "api-key",
        ),
        ("emb_v1", "/openai/v1/embeddings", "api-key"),
        (
            "emb_entra",
            "/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21",
            "authorization",
        ),
    ] {
        let body = json!({"model": route, "input": ["a b", "c"]}).to_string();
        let (status, _, text) = post(&http, format!("{}/v1/embeddings", gw.base), body).await?;
        assert_eq!(status, 200, "{route}: {text}");
        let answer: Value = serde_json::from_str(&text)?;
        assert_eq!(answer["data"].as_array().map(Vec::len), Some(2), "{answer}");
        answers.push(answer["data"].clone());
        let logged = azure.sim.requests();
        let last = logged.last().ok_or("no request reached Azure")?;
        assert_eq!(last.path, path, "{route}");
        assert_eq!(
            last.headers.get(credential).map(String::as_str),
            Some("<redacted>")
        );
    }
    // The same model in the same space, whichever way it was reached.
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], answers[2]);
    assert_eq!(backup.sim.request_count(), 0);
    Ok(())
}

#[tokio::test]
async fn azures_rate_limit_is_retried_on_the_same_target_without_counting() -> TestResult {
    let azure = azure_sim(3600).await?;
    let backup = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let gw = gateway(&azure, &backup).await?;
    let http = reqwest::Client::new();
    let limited = StatusFault {
        retry_after: Some(0),
        ..StatusFault::new(429)
    };
    azure
        .sim
        .add_fault(FaultRule::always(Fault::Status(limited)).times(1));
    let (status, headers, text) = post(
        &http,
        format!("{}/v1/chat/completions", gw.base),
        openai_chat("filtered", "Say hi please", false),
    )
    .await?;
    assert_eq!(status, 200, "{text}");
    let served_by = headers
        .get("x-bulwark-target")
        .and_then(|v| v.to_str().ok());
    assert_eq!(served_by, Some("az/my-gpt"));
    let outcomes = azure.sim.stats().by_outcome;
    assert_eq!(outcomes.get("fault_status_429"), Some(&1), "{outcomes:?}");
    assert_eq!(outcomes.get("ok"), Some(&1), "{outcomes:?}");
    assert_eq!(backup.sim.request_count(), 0);
    let targets = admin_targets(&http, &gw.base).await?;
    assert_eq!(
        breaker_of(&targets, "az/my-gpt").as_deref(),
        Some("closed"),
        "{targets}"
    );
    Ok(())
}

/// API versions before 2024-08-01 refuse `stream_options`: the gateway
/// sends them none, and their answers still arrive, without usage.
#[tokio::test]
async fn an_old_api_version_is_sent_no_stream_options() -> TestResult {
    let azure = azure_sim(3600).await?;
    let backup = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let gw = gateway(&azure, &backup).await?;
    let http = reqwest::Client::new();
    for stream in [false, true] {
        let (status, _, text) = post(
            &http,
            format!("{}/v1/chat/completions", gw.base),
            openai_chat("old", "Say hi please", stream),
        )
        .await?;
        assert_eq!(status, 200, "{text}");
        let logged = azure.sim.requests();
        let last = logged.last().ok_or("no request reached Azure")?;
        assert_eq!(
            last.path,
            "/openai/deployments/my-gpt/chat/completions?api-version=2024-06-01"
        );
        assert!(last.body.get("stream_options").is_none(), "{}", last.body);
    }
    Ok(())
}

/// Entra ID out of reach is an outage of the target, not a misconfiguration.
#[tokio::test]
async fn an_unreachable_token_endpoint_falls_over_as_an_outage() -> TestResult {
    let azure = azure_sim(3600).await?;
    let backup = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let gw = gateway(&azure, &backup).await?;
    let http = reqwest::Client::new();
    let (status, headers, text) = post(
        &http,
        format!("{}/v1/chat/completions", gw.base),
        openai_chat("entra_down", "Say hi please", false),
    )
    .await?;
    assert_eq!(status, 200, "{text}");
    let served_by = headers
        .get("x-bulwark-target")
        .and_then(|v| v.to_str().ok());
    assert_eq!(served_by, Some("backup/gpt-4o-mini"));
    assert_eq!(azure.sim.request_count(), 0);
    let metrics = http
        .get(format!("{}/metrics", gw.base))
        .header("authorization", format!("Bearer {ADMIN}"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        !metrics.contains("bulwark_misconfigured_total{target=\"azdown/my-gpt\"}"),
        "an unreachable token endpoint is not a misconfiguration"
    );
    Ok(())
}
