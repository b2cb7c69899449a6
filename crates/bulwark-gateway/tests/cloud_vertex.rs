//! Google Vertex AI over the simulator: an Anthropic client reaches Claude
//! on Vertex and a Gemini client reaches Gemini on Vertex, streamed and
//! not, with a service account's token fetched, cached and renewed before
//! it expires; a service account the token endpoint does not know is a
//! misconfiguration the route fails over from without retrying, as is a
//! revoked token Vertex answers 401 for, and an
//! outage of the token endpoint is retried as any connection failure; a
//! Vertex quota 429 (Google's shape, not Anthropic's) is failed over from.

mod common;

use common::answers::{answer_of, assert_answer, events_of, failures, misconfigured};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

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
  revocable:       {{ targets: [vx/{CLAUDE}, anthropic/claude-sonnet-4-5], max_retries: 3 }}
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

/// A Claude Code turn mid tool loop: the earlier call's thinking (with its
/// signature, which Claude checks) and result go back, then a new question.
fn messages_request(route: &str, stream: bool) -> Value {
    json!({
        "model": route,
        "max_tokens": 2048,
        "stream": stream,
        "system": [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
        "metadata": {"user_id": "user-7f3a"},
        "thinking": thinking(),
        "tools": tools(),
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "The user wants Oslo's weather: call the tool.",
                    "signature": "EqQBCkYIBxgCKkB3cmVhbGx5LWEtc2lnbmF0dXJl"},
                {"type": "tool_use", "id": "toolu_01Oslo", "name": "get_weather", "input": {"city": "Oslo"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01Oslo", "content": "4°C, light snow"}
            ]},
            {"role": "user", "content": "And in Bergen? sim:call get_weather {\"city\": \"Bergen\"}"}
        ]
    })
}

/// What Vertex must receive for `sent`: the same body without `model`
/// (the path names it), with Vertex's `anthropic_version`, and `stream`
/// saying whether the gateway asked Vertex for a stream.
fn expected_on_vertex(sent: &Value, upstream_streams: bool) -> Value {
    let mut expected = sent.clone();
    if let Some(map) = expected.as_object_mut() {
        map.remove("model");
        map.insert("stream".into(), json!(upstream_streams));
        map.insert("anthropic_version".into(), json!("vertex-2023-10-16"));
    }
    expected
}

/// What the simulator answers `body` on its own Anthropic API, as Vertex
/// would have answered it: the model is the one the path named.
async fn own_answer(
    http: &reqwest::Client,
    sim: &SimServer,
    body: &Value,
    stream: bool,
) -> Result<Value, Box<dyn std::error::Error>> {
    let mut direct = body.clone();
    direct["model"] = json!(CLAUDE);
    direct["stream"] = json!(stream);
    let response = http
        .post(format!("{}/v1/messages", sim.url()))
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", BETA)
        .header("x-api-key", "test")
        .body(direct.to_string())
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    answer_of(stream, &response.text().await?)
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
            let client_body = messages_request(route, stream);
            let response =
                post(&http, format!("{}/v1/messages", gateway.base), &client_body).await?;
            assert_eq!(response.status(), 200, "{what}");
            let target = header(&response, "x-bulwark-target");
            assert!(
                target.as_deref().is_some_and(|t| t.ends_with(CLAUDE)),
                "{what}: {target:?}"
            );
            let text = response.text().await?;

            // What Vertex got: its own path, the client's whole body but
            // for what Vertex takes differently, the beta as a header.
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
            assert_eq!(
                sent.body,
                expected_on_vertex(&client_body, method == "streamRawPredict"),
                "{what}"
            );
            assert_eq!(
                sent.headers.get("anthropic-beta").map(String::as_str),
                Some(BETA),
                "{what}"
            );
            assert!(!sent.headers.contains_key("anthropic-version"), "{what}");
            assert_eq!(
                sent.headers.get("authorization").map(String::as_str),
                Some("<redacted>"),
                "{what}"
            );

            // The client's answer is the one Claude gives this request.
            let relayed = method == "streamRawPredict";
            let own = own_answer(&http, &sim, &client_body, relayed && stream).await?;
            let got = answer_of(stream, &text)?;
            assert_answer(got, stream, relayed, &json!({"city": "Bergen"}), own, &what)?;
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

/// Four-second tokens, and eight workers asking steadily for about ten
/// seconds (eighty requests, over two lifetimes and more): every request
/// is served with a live token, so renewal came before expiry, and the
/// grants are spread out, so the workers did not each fetch one.
#[tokio::test]
async fn tokens_are_renewed_before_they_expire_under_load() -> TestResult {
    const TTL: Duration = Duration::from_secs(4);
    const WORKERS: u64 = 8;
    const EACH: usize = 10;
    // Ten requests a worker, one each second: about ten seconds in all,
    // whatever the machine's speed; nothing below depends on how long.
    const PACE: Duration = Duration::from_secs(1);
    let (sim, gateway) = start(TTL.as_secs()).await?;
    let http = reqwest::Client::new();
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let http = http.clone();
            let url = format!("{}/v1/messages", gateway.base);
            tokio::spawn(async move {
                // Staggered, so requests arrive all through each lifetime.
                tokio::time::sleep(PACE * worker as u32 / WORKERS as u32).await;
                let mut outcomes = Vec::new();
                for _ in 0..EACH {
                    let body = json!({"model": "claude", "max_tokens": 50, "stream": true,
                        "messages": [{"role": "user", "content": "hello"}]});
                    let outcome = match post(&http, url.clone(), &body).await {
                        // The whole stream, so a failure inside it shows.
                        Ok(response) => match (response.status().as_u16(), response.text().await) {
                            (200, Ok(text)) if text.contains("message_stop") => Ok(()),
                            (status, text) => Err(format!("{status}: {text:?}")),
                        },
                        Err(e) => Err(e.to_string()),
                    };
                    outcomes.push(outcome);
                    tokio::time::sleep(PACE).await;
                }
                outcomes
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for worker in workers {
        outcomes.extend(worker.await?);
    }
    assert_eq!(outcomes.len(), WORKERS as usize * EACH);
    let failed: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert!(failed.is_empty(), "{} failed: {failed:?}", failed.len());
    let stats = sim.sim.stats();
    assert_eq!(stats.by_outcome.get("error_401"), None, "{stats:?}");
    assert_eq!(
        stats.by_outcome.get("ok"),
        Some(&(WORKERS * EACH as u64)),
        "{stats:?}"
    );
    let grants = sim.sim.token_grant_times();
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
    Ok(())
}
#[tokio::test]
async fn an_unknown_service_account_is_a_misconfiguration_failed_over_without_retries() -> TestResult
{
    let (sim, gateway) = start(3600).await?;
    let mut rx = gateway.gateway.subscribe();
    let http = reqwest::Client::new();
    let body = json!({"model": "misconfigured", "max_tokens": 50,
        "messages": [{"role": "user", "content": "hello"}]});
    let response = post(&http, format!("{}/v1/messages", gateway.base), &body).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-bulwark-target").as_deref(),
        Some("anthropic/claude-sonnet-4-5")
    );
    assert_eq!(
        header(&response, "x-bulwark-attempts").as_deref(),
        Some("2"),
        "no retry of a refused account, for all the route's max_retries: 3"
    );
    let stranger = format!("vx-stranger/{CLAUDE}");
    let events = events_of(&mut rx);
    assert_eq!(failures(&events), vec![(stranger.clone(), "auth")]);
    assert!(misconfigured(&events, &stranger), "{events:?}");
    // One refused grant, no retry of it, and nothing sent to Vertex.
    assert_eq!(sim.sim.token_refusals(), 1);
    assert_eq!(sim.sim.token_grants(), 0);
    let requests = sim.sim.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].path, "/v1/messages");

    // The next call, soon after, is refused by the token cache's memory of
    // the refusal: a refused account costs the token endpoint one call,
    // not one per request.
    let response = post(&http, format!("{}/v1/messages", gateway.base), &body).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(sim.sim.token_refusals(), 1);
    Ok(())
}

#[tokio::test]
async fn a_revoked_token_is_a_misconfiguration_failed_over() -> TestResult {
    let (sim, gateway) = start(3600).await?;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/messages", gateway.base);
    let body = json!({"model": "revocable", "max_tokens": 50,
        "messages": [{"role": "user", "content": "hello"}]});
    let vx = format!("vx/{CLAUDE}");
    let response = post(&http, url.clone(), &body).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-bulwark-target"), Some(vx.clone()));
    assert_eq!(sim.sim.token_grants(), 1);

    sim.sim.revoke_tokens();
    let mut rx = gateway.gateway.subscribe();
    let response = post(&http, url, &body).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-bulwark-target").as_deref(),
        Some("anthropic/claude-sonnet-4-5")
    );
    assert_eq!(
        header(&response, "x-bulwark-attempts").as_deref(),
        Some("2")
    );
    let events = events_of(&mut rx);
    assert_eq!(failures(&events), vec![(vx.clone(), "auth")]);
    assert!(misconfigured(&events, &vx), "{events:?}");
    let outcomes: Vec<String> = sim.sim.requests().into_iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, ["ok", "error_401", "ok"]);
    assert_eq!(sim.sim.token_grants(), 1);

    // The refused token was dropped: the next request fetches a new one
    // and Vertex serves it again, without waiting for the old token's
    // renewal (an hour away).
    let response = post(&http, format!("{}/v1/messages", gateway.base), &body).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-bulwark-target"), Some(vx));
    assert_eq!(sim.sim.token_grants(), 2);
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
    // Unlike a refused account, an outage is worth retrying: the attempt
    // was retried, and its retry was given the failure the token cache
    // remembers for a while, without asking the failing endpoint again.
    let attempts: u32 = header(&response, "x-bulwark-attempts")
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    assert!(
        attempts >= 3,
        "{attempts} attempts: Vertex, its retry, the fallback"
    );
    assert_eq!(sim.sim.token_refusals(), 1);
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
