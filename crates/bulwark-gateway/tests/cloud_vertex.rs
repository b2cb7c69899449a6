//! Google Vertex AI over the simulator: an Anthropic client reaches Claude
//! on Vertex and a Gemini client reaches Gemini on Vertex, streamed and
//! not, with a service account's token fetched, cached and renewed before
//! it expires; a service account the token endpoint does not know is a
//! misconfiguration the route fails over from without retrying, and an
//! outage of the token endpoint is retried as any connection failure; a
//! Vertex quota 429 (Google's shape, not Anthropic's) is failed over from.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use bulwark_sim::{Fault, FaultRule, Format, SimConfig, SimServer, StatusFault, VertexSimConfig};
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const PROJECT: &str = "proj-vertex-1";
const REGION: &str = "us-east5";
const CLAUDE: &str = "claude-sonnet-4-5@20250929";
const BETA: &str = "interleaved-thinking-2025-05-14";

fn sim_config(token_ttl_secs: u64) -> SimConfig {
    SimConfig {
        vertex: Some(VertexSimConfig {
            project: PROJECT.into(),
            region: REGION.into(),
            token_ttl_secs,
            ..VertexSimConfig::default()
        }),
        ..SimConfig::default()
    }
}

/// Writes a service-account key file for the simulator's token endpoint;
/// `client_email` replaces the account's own when given.
fn key_file(
    sim: &SimServer,
    client_email: Option<&str>,
) -> Result<String, Box<dyn std::error::Error>> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let mut file: Value = serde_json::from_str(
        &sim.sim
            .service_account_json(&format!("{}/token", sim.url())),
    )?;
    if let Some(email) = client_email {
        file["client_email"] = json!(email);
    }
    let path = std::env::temp_dir().join(format!(
        "bulwark-vertex-test-{}-{}.json",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, file.to_string())?;
    Ok(path.to_string_lossy().into_owned())
}

/// A simulator with Vertex, and a gateway with providers `vx` (streams),
/// `vx-complete` (`stream: false`), `vx-stranger` (an account the token
/// endpoint does not know) and `anthropic` (the simulator's own API).
async fn start(
    token_ttl_secs: u64,
) -> Result<(SimServer, common::Running), Box<dyn std::error::Error>> {
    let sim = SimServer::start("127.0.0.1:0", sim_config(token_ttl_secs)).await?;
    let url = sim.url();
    let known = key_file(&sim, None)?;
    let stranger = key_file(&sim, Some("stranger@elsewhere.iam.gserviceaccount.com"))?;
    let vertex = format!("kind: vertex, base_url: \"{url}\", project: {PROJECT}, region: {REGION}");
    let yaml = format!(
        "listen: 127.0.0.1:0
providers:
  vx:          {{ {vertex}, credentials_file: \"{known}\" }}
  vx-complete: {{ {vertex}, credentials_file: \"{known}\", stream: false }}
  vx-stranger: {{ {vertex}, credentials_file: \"{stranger}\" }}
  anthropic:   {{ kind: anthropic, base_url: \"{url}\", api_key: test }}
routes:
  claude:          {{ targets: [vx/{CLAUDE}] }}
  claude-complete: {{ targets: [vx-complete/{CLAUDE}] }}
  gemini:          {{ targets: [vx/gemini-2.5-flash] }}
  gemini-complete: {{ targets: [vx-complete/gemini-2.5-flash] }}
  misconfigured:   {{ targets: [vx-stranger/{CLAUDE}, anthropic/claude-sonnet-4-5], max_retries: 3 }}
  token-outage:    {{ targets: [vx/{CLAUDE}, anthropic/claude-sonnet-4-5], max_retries: 2 }}
  quota:           {{ targets: [vx/{CLAUDE}, anthropic/claude-sonnet-4-5], max_retries: 0 }}
"
    );
    let gateway = common::start_gateway(&yaml).await?;
    Ok((sim, gateway))
}

/// The response header `name`, if it is there and is text.
fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

fn tools() -> Value {
    json!([{
        "name": "get_weather",
        "description": "The weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    }])
}

fn thinking() -> Value {
    json!({"type": "enabled", "budget_tokens": 1024})
}

fn messages_request(route: &str, stream: bool) -> Value {
    json!({
        "model": route,
        "max_tokens": 2048,
        "stream": stream,
        "thinking": thinking(),
        "tools": tools(),
        "messages": [{"role": "user", "content": "Weather in Oslo? sim:call get_weather {\"city\": \"Oslo\"}"}]
    })
}

async fn post(
    http: &reqwest::Client,
    url: String,
    body: &Value,
) -> Result<reqwest::Response, reqwest::Error> {
    http.post(url)
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", BETA)
        .body(body.to_string())
        .send()
        .await
}

/// The content blocks of an Anthropic answer, a stream's reassembled.
fn content(stream: bool, text: &str) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    if !stream {
        let message: Value = serde_json::from_str(text)?;
        return Ok(message["content"].as_array().cloned().unwrap_or_default());
    }
    let mut blocks: Vec<Value> = Vec::new();
    let mut partial_json: Vec<String> = Vec::new();
    for data in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
        let event: Value = serde_json::from_str(data)?;
        match event["type"].as_str() {
            Some("content_block_start") => {
                blocks.push(event["content_block"].clone());
                partial_json.push(String::new());
            }
            Some("content_block_delta") => {
                let (Some(block), Some(json)) = (blocks.last_mut(), partial_json.last_mut()) else {
                    return Err("a delta before any block".into());
                };
                let delta = &event["delta"];
                match delta["type"].as_str() {
                    Some("thinking_delta") => {
                        let so_far = block["thinking"].as_str().unwrap_or_default().to_string();
                        block["thinking"] =
                            json!(so_far + delta["thinking"].as_str().unwrap_or_default());
                    }
                    Some("text_delta") => {
                        let so_far = block["text"].as_str().unwrap_or_default().to_string();
                        block["text"] = json!(so_far + delta["text"].as_str().unwrap_or_default());
                    }
                    Some("input_json_delta") => {
                        json.push_str(delta["partial_json"].as_str().unwrap_or_default())
                    }
                    _ => {}
                }
            }
            Some("content_block_stop") => {
                if let (Some(block), Some(json)) = (blocks.last_mut(), partial_json.last())
                    && !json.is_empty()
                {
                    block["input"] = serde_json::from_str(json)?;
                }
            }
            _ => {}
        }
    }
    Ok(blocks)
}

#[tokio::test]
async fn an_anthropic_client_reaches_claude_on_vertex_with_tools_and_thinking_unchanged()
-> TestResult {
    let (sim, gateway) = start(3600).await?;
    let http = reqwest::Client::new();
    for (route, method) in [
        ("claude", "streamRawPredict"),
        ("claude-complete", "rawPredict"),
    ] {
        for stream in [false, true] {
            let what = format!("{route}, client stream {stream}");
            let response = post(
                &http,
                format!("{}/v1/messages", gateway.base),
                &messages_request(route, stream),
            )
            .await?;
            assert_eq!(response.status(), 200, "{what}");
            let target = header(&response, "x-bulwark-target");
            assert!(
                target.as_deref().is_some_and(|t| t.ends_with(CLAUDE)),
                "{what}: {target:?}"
            );
            let blocks = content(stream, &response.text().await?)?;
            // A `stream: false` provider's complete answer goes through the
            // neutral model, which has no thinking block (provider/complete.rs):
            // only the streamed call can relay the thinking.
            if method == "streamRawPredict" {
                let thought = blocks
                    .iter()
                    .find(|b| b["type"] == "thinking")
                    .ok_or(format!("{what}: no thinking in {blocks:?}"))?;
                assert!(
                    thought["thinking"].as_str().is_some_and(
                        |t| t.starts_with(&format!("Simulated thinking from {CLAUDE}"))
                    ),
                    "{what}: {thought}"
                );
            }
            let call = blocks
                .iter()
                .find(|b| b["type"] == "tool_use")
                .ok_or(format!("{what}: no tool_use in {blocks:?}"))?;
            assert_eq!(call["name"], "get_weather", "{what}");
            assert_eq!(call["input"], json!({"city": "Oslo"}), "{what}");

            // What Vertex got: its own path and body, the client's tools,
            // thinking and beta untouched.
            let requests = sim.sim.requests();
            let sent = requests.last().ok_or("the simulator got nothing")?;
            assert_eq!(
                sent.path,
                format!(
                    "/v1/projects/{PROJECT}/locations/{REGION}/publishers/anthropic/models/{CLAUDE}:{method}"
                ),
                "{what}"
            );
            assert_eq!(sent.outcome, "ok", "{what}");
            assert!(sent.body.get("model").is_none(), "{what}: {}", sent.body);
            assert_eq!(
                sent.body["anthropic_version"], "vertex-2023-10-16",
                "{what}"
            );
            assert_eq!(sent.body["tools"], tools(), "{what}");
            assert_eq!(sent.body["thinking"], thinking(), "{what}");
            assert_eq!(
                sent.headers.get("anthropic-beta").map(String::as_str),
                Some(BETA),
                "{what}"
            );
            assert_eq!(
                sent.headers.get("authorization").map(String::as_str),
                Some("<redacted>"),
                "{what}"
            );
        }
    }
    // One token per provider (`vx`, `vx-complete`) served all eight calls.
    assert_eq!(sim.sim.token_grants(), 2);
    Ok(())
}

#[tokio::test]
async fn a_gemini_client_reaches_gemini_on_vertex() -> TestResult {
    let (sim, gateway) = start(3600).await?;
    let http = reqwest::Client::new();
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "Say hi please"}]}]});
    for (route, upstream) in [
        ("gemini", "streamGenerateContent?alt=sse"),
        ("gemini-complete", "generateContent"),
    ] {
        for method in ["generateContent", "streamGenerateContent?alt=sse"] {
            let what = format!("{route} {method}");
            let url = format!("{}/v1beta/models/{route}:{method}", gateway.base);
            let response = http
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await?;
            assert_eq!(response.status(), 200, "{what}");
            let text = response.text().await?;
            let answer: String = if method == "generateContent" {
                let v: Value = serde_json::from_str(&text)?;
                v["candidates"][0]["content"]["parts"][0]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            } else {
                text.lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .filter_map(|d| serde_json::from_str::<Value>(d).ok())
                    .filter_map(|v| {
                        v["candidates"][0]["content"]["parts"][0]["text"]
                            .as_str()
                            .map(String::from)
                    })
                    .collect()
            };
            assert_eq!(
                answer, "Simulated answer from gemini-2.5-flash: Say hi please",
                "{what}"
            );
            let requests = sim.sim.requests();
            let sent = requests.last().ok_or("the simulator got nothing")?;
            assert_eq!(
                sent.path,
                format!(
                    "/v1/projects/{PROJECT}/locations/{REGION}/publishers/google/models/gemini-2.5-flash:{upstream}"
                ),
                "{what}"
            );
            assert_eq!(sent.outcome, "ok", "{what}");
            assert!(sent.body.get("stream").is_none(), "{what}: {}", sent.body);
        }
    }
    Ok(())
}

#[tokio::test]
async fn tokens_are_renewed_before_they_expire_under_load() -> TestResult {
    // Two-second tokens: the gateway renews each after about a second.
    let (sim, gateway) = start(2).await?;
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let http = http.clone();
            let url = format!("{}/v1/messages", gateway.base);
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                while tokio::time::Instant::now() < deadline {
                    let body = json!({"model": "claude", "max_tokens": 50, "stream": true,
                        "messages": [{"role": "user", "content": "hello"}]});
                    let status = match post(&http, url.clone(), &body).await {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            // The whole stream, so a failure inside it shows.
                            match response.text().await {
                                Ok(text) if text.contains("event: error") => 599,
                                Ok(_) => status,
                                Err(_) => 598,
                            }
                        }
                        Err(_) => 597,
                    };
                    statuses.push(status);
                }
                statuses
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for worker in workers {
        statuses.extend(worker.await?);
    }
    assert!(
        statuses.len() > 20,
        "too few requests to call it load: {}",
        statuses.len()
    );
    let failed: Vec<&u16> = statuses.iter().filter(|s| **s != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        statuses.len()
    );
    let stats = sim.sim.stats();
    assert_eq!(stats.by_outcome.get("error_401"), None, "{stats:?}");
    // Five seconds of two-second tokens: renewed at least twice, and not
    // per request.
    let grants = sim.sim.token_grants();
    assert!(grants >= 3, "only {grants} token grants");
    assert!(
        grants < statuses.len() as u64 / 2,
        "{grants} grants for {} requests",
        statuses.len()
    );
    Ok(())
}

#[tokio::test]
async fn an_unknown_service_account_is_a_misconfiguration_failed_over_without_retries() -> TestResult
{
    let (sim, gateway) = start(3600).await?;
    let http = reqwest::Client::new();
    let body = json!({"model": "misconfigured", "max_tokens": 50,
        "messages": [{"role": "user", "content": "hello"}]});
    let response = post(&http, format!("{}/v1/messages", gateway.base), &body).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-bulwark-target").as_deref(),
        Some("anthropic/claude-sonnet-4-5")
    );
    // One refused grant, no retry of it, and nothing sent to Vertex.
    assert_eq!(sim.sim.token_refusals(), 1);
    assert_eq!(sim.sim.token_grants(), 0);
    let requests = sim.sim.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].path, "/v1/messages");

    // Each call asks once: a refusal is not retried.
    let response = post(&http, format!("{}/v1/messages", gateway.base), &body).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(sim.sim.token_refusals(), 2);
    Ok(())
}

#[tokio::test]
async fn a_token_endpoint_outage_is_transient_retried_then_failed_over() -> TestResult {
    let (sim, gateway) = start(3600).await?;
    sim.sim.update(|c| {
        if let Some(vertex) = c.vertex.as_mut() {
            vertex.token_status = Some(503);
        }
    });
    let http = reqwest::Client::new();
    let body = json!({"model": "token-outage", "max_tokens": 50,
        "messages": [{"role": "user", "content": "hello"}]});
    let response = post(&http, format!("{}/v1/messages", gateway.base), &body).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-bulwark-target").as_deref(),
        Some("anthropic/claude-sonnet-4-5")
    );
    // Unlike a refused account, an outage is worth retrying.
    let asked = sim.sim.token_refusals();
    assert!(asked > 1, "the token endpoint was asked {asked} time(s)");
    assert_eq!(sim.sim.token_grants(), 0);
    Ok(())
}

#[tokio::test]
async fn a_vertex_quota_429_in_googles_shape_fails_over() -> TestResult {
    let (sim, gateway) = start(3600).await?;
    let quota = StatusFault {
        retry_after: Some(30),
        ..StatusFault::new(429)
    };
    sim.sim.add_fault(
        FaultRule::always(Fault::Status(quota))
            .for_format(Format::Anthropic)
            .for_model(CLAUDE),
    );
    let http = reqwest::Client::new();
    let body = json!({"model": "quota", "max_tokens": 50,
        "messages": [{"role": "user", "content": "hello"}]});
    let response = post(&http, format!("{}/v1/messages", gateway.base), &body).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-bulwark-target").as_deref(),
        Some("anthropic/claude-sonnet-4-5")
    );
    let outcomes: Vec<String> = sim.sim.requests().into_iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, ["fault_status_429", "ok"]);
    Ok(())
}
