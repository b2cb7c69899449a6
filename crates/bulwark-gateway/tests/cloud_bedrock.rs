//! Claude on Amazon Bedrock behind the gateway, against the simulator's
//! Bedrock (which verifies SigV4 by hand and frames streams as AWS does):
//! an Anthropic client's request arrives unchanged but for what Bedrock
//! takes differently (no `model`/`stream`, `anthropic_version` and the
//! betas in the body), an OpenAI client's is translated onto it, and
//! Bedrock's failures are judged by the failure table.

use bulwark::events::Event;
use bulwark_sim::{BedrockSimConfig, Fault, FaultRule, SimConfig, SimServer};
use serde_json::{Value, json};

mod common;

use common::answers::{answer_of, assert_answer, events_of, failures};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const MODEL: &str = "anthropic.claude-sonnet-4-5-20250929-v1:0";
const KEY_ID: &str = "AKIDBULWARKTEST";
const SECRET: &str = "bulwark/test+secret0123456789EXAMPLEKEY";
const TOKEN: &str = "IQoJb3JpZ2luX2VjBULWARKsessiontoken";
const BETAS: &str = "interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14";

struct Setup {
    /// Bedrock with long-term keys.
    bedrock: SimServer,
    /// Bedrock with session credentials.
    temporary: SimServer,
    /// Anthropic's own API, the second target.
    backup: SimServer,
    gateway: common::Running,
}

fn bedrock_config(session_token: Option<&str>) -> SimConfig {
    SimConfig {
        bedrock: Some(BedrockSimConfig {
            access_key_id: KEY_ID.into(),
            secret_access_key: SECRET.into(),
            session_token: session_token.map(String::from),
            api_key: None,
            region: "us-east-1".into(),
        }),
        ..SimConfig::default()
    }
}

async fn setup() -> Result<Setup, Box<dyn std::error::Error>> {
    let bedrock = SimServer::start("127.0.0.1:0", bedrock_config(None)).await?;
    let temporary = SimServer::start("127.0.0.1:0", bedrock_config(Some(TOKEN))).await?;
    let backup = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let (b, t, a) = (bedrock.url(), temporary.url(), backup.url());
    let yaml = format!(
        r#"listen: 127.0.0.1:0
providers:
  aws: {{ kind: bedrock, region: us-east-1, base_url: "{b}", aws: {{ access_key_id: {KEY_ID}, secret_access_key: "{SECRET}" }} }}
  wrong: {{ kind: bedrock, region: us-east-1, base_url: "{b}", aws: {{ access_key_id: {KEY_ID}, secret_access_key: not-the-secret }} }}
  temp: {{ kind: bedrock, region: us-east-1, base_url: "{t}", aws: {{ access_key_id: {KEY_ID}, secret_access_key: "{SECRET}", session_token: {TOKEN} }} }}
  whole: {{ kind: bedrock, region: us-east-1, base_url: "{b}", stream: false, aws: {{ access_key_id: {KEY_ID}, secret_access_key: "{SECRET}" }} }}
  backup: {{ kind: anthropic, base_url: "{a}", api_key: k }}
routes:
  claude: {{ targets: ["aws/{MODEL}"] }}
  fallback: {{ targets: ["aws/{MODEL}", backup/claude-sonnet-4-5] }}
  misconfigured: {{ targets: ["wrong/{MODEL}", backup/claude-sonnet-4-5] }}
  session: {{ targets: ["temp/{MODEL}"] }}
  complete: {{ targets: ["whole/{MODEL}"] }}
"#
    );
    let gateway = common::start_gateway(&yaml).await?;
    Ok(Setup {
        bedrock,
        temporary,
        backup,
        gateway,
    })
}

/// An Anthropic request as Claude Code sends one mid tool loop: tools and
/// thinking on, the earlier call's thinking (with the signature Claude
/// checks) and result sent back, then a new question.
fn anthropic_request(route: &str, stream: bool) -> Value {
    json!({
        "model": route,
        "max_tokens": 4096,
        "stream": stream,
        "system": [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
        "metadata": {"user_id": "user-7f3a"},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tools": [{
            "name": "get_weather",
            "description": "The weather in a city.",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        }],
        "messages": [
            {"role": "user", "content": "Weather in Bergen?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "The user wants Bergen's weather: call the tool.",
                    "signature": "EqQBCkYIBxgCKkB3cmVhbGx5LWEtc2lnbmF0dXJl"},
                {"type": "tool_use", "id": "toolu_01Bergen", "name": "get_weather", "input": {"city": "Bergen"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01Bergen", "content": "9°C, rain"}
            ]},
            {"role": "user", "content": "And in Oslo? sim:call get_weather {\"city\": \"Oslo\"}"}
        ]
    })
}

/// What the simulator answers `body` on its own Anthropic API, as Bedrock
/// would have: the model is the one the path named.
async fn own_answer(
    sim: &SimServer,
    body: &Value,
    stream: bool,
) -> Result<Value, Box<dyn std::error::Error>> {
    let mut direct = body.clone();
    direct["model"] = json!(MODEL);
    direct["stream"] = json!(stream);
    let response = reqwest::Client::new()
        .post(format!("{}/v1/messages", sim.url()))
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", BETAS)
        .header("x-api-key", "k")
        .body(direct.to_string())
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    answer_of(stream, &response.text().await?)
}

async fn post_anthropic(base: &str, body: &Value) -> Result<reqwest::Response, reqwest::Error> {
    reqwest::Client::new()
        .post(format!("{base}/v1/messages"))
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", BETAS)
        .body(body.to_string())
        .send()
        .await
}

/// What Bedrock must receive for `sent`: the same body, without `model`
/// and `stream`, with `anthropic_version` and the betas.
fn expected_on_bedrock(sent: &Value) -> Value {
    let mut expected = sent.clone();
    if let Some(map) = expected.as_object_mut() {
        map.remove("model");
        map.remove("stream");
        map.insert("anthropic_version".into(), json!("bedrock-2023-05-31"));
        map.insert(
            "anthropic_beta".into(),
            json!(BETAS.split(',').collect::<Vec<_>>()),
        );
    }
    expected
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn an_anthropic_client_reaches_claude_on_bedrock_with_tools_and_thinking_unchanged()
-> TestResult {
    let s = setup().await?;
    for (route, provider, method) in [
        ("claude", "aws", "invoke-with-response-stream"),
        ("complete", "whole", "invoke"),
    ] {
        for stream in [false, true] {
            let what = format!("{route}, client stream {stream}");
            let sent = anthropic_request(route, stream);
            let response = post_anthropic(&s.gateway.base, &sent).await?;
            assert_eq!(response.status(), 200, "{what}");
            assert_eq!(
                header(&response, "x-bulwark-target"),
                format!("{provider}/{MODEL}"),
                "{what}"
            );
            let text = response.text().await?;

            let seen = s.bedrock.sim.requests();
            let last = seen.last().ok_or("Bedrock was not called")?;
            assert_eq!(last.outcome, "ok", "{what}");
            assert_eq!(
                last.path,
                format!("/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/{method}"),
                "{what}"
            );
            assert_eq!(last.body, expected_on_bedrock(&sent), "{what}");
            // Bedrock reads the version and the betas from the body only.
            assert!(!last.headers.contains_key("anthropic-version"), "{what}");
            assert!(!last.headers.contains_key("anthropic-beta"), "{what}");
            assert!(!last.headers.contains_key("x-api-key"), "{what}");

            // The client's answer is the one Claude gives this request.
            let relayed = provider == "aws";
            let own = own_answer(&s.bedrock, &sent, relayed && stream).await?;
            let got = answer_of(stream, &text)?;
            assert_answer(got, stream, relayed, &json!({"city": "Oslo"}), own, &what)?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn an_anthropic_stream_from_bedrock_keeps_every_event() -> TestResult {
    let s = setup().await?;
    let sent = anthropic_request("claude", true);
    let response = post_anthropic(&s.gateway.base, &sent).await?;
    assert_eq!(response.status(), 200);
    assert!(header(&response, "content-type").starts_with("text/event-stream"));
    let text = response.text().await?;
    let data: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let deltas: Vec<&str> = data
        .iter()
        .filter_map(|d| d.pointer("/delta/type").and_then(Value::as_str))
        .collect();
    for kind in ["thinking_delta", "signature_delta", "input_json_delta"] {
        assert!(deltas.contains(&kind), "{kind} missing: {deltas:?}");
    }
    assert_eq!(
        data.last().and_then(|d| d["type"].as_str()),
        Some("message_stop")
    );
    let seen = s.bedrock.sim.requests();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].path.ends_with("/invoke-with-response-stream"));
    assert_eq!(seen[0].body, expected_on_bedrock(&sent));
    Ok(())
}

#[tokio::test]
async fn an_openai_client_is_translated_onto_bedrock() -> TestResult {
    let s = setup().await?;
    let response = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", s.gateway.base))
        .header("content-type", "application/json")
        .body(
            json!({"model": "claude", "messages": [{"role": "user", "content": "hello there"}]})
                .to_string(),
        )
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let answer: Value = serde_json::from_str(&response.text().await?)?;
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        format!("Simulated answer from {MODEL}: hello there")
    );
    let seen = s.bedrock.sim.requests();
    let last = seen.last().ok_or("Bedrock was not called")?;
    assert_eq!(last.outcome, "ok");
    assert_eq!(last.body["anthropic_version"], "bedrock-2023-05-31");
    assert!(last.body.get("model").is_none());
    assert!(last.body.get("stream").is_none());
    Ok(())
}

#[tokio::test]
async fn a_wrong_secret_is_a_misconfiguration_not_an_outage() -> TestResult {
    let s = setup().await?;
    let mut rx = s.gateway.gateway.subscribe();
    let response =
        post_anthropic(&s.gateway.base, &anthropic_request("misconfigured", false)).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-bulwark-target"),
        "backup/claude-sonnet-4-5"
    );
    assert_eq!(
        header(&response, "x-bulwark-attempts"),
        "2",
        "no retry on a refused signature"
    );
    let seen = s.bedrock.sim.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].outcome, "error_403");
    let events = events_of(&mut rx);
    let wrong = format!("wrong/{MODEL}");
    assert_eq!(failures(&events), vec![(wrong.clone(), "auth")]);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Misconfigured { target } if *target == wrong)),
        "{events:?}"
    );
    assert_eq!(s.backup.sim.requests().len(), 1);
    Ok(())
}

#[tokio::test]
async fn throttling_is_retried_and_then_failed_over() -> TestResult {
    let s = setup().await?;
    let aws = format!("aws/{MODEL}");
    s.bedrock
        .sim
        .set_faults(vec![FaultRule::always(Fault::status(429)).times(1)]);
    let mut rx = s.gateway.gateway.subscribe();
    let response = post_anthropic(&s.gateway.base, &anthropic_request("fallback", false)).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-bulwark-target"), aws);
    assert_eq!(header(&response, "x-bulwark-attempts"), "2");
    assert_eq!(
        failures(&events_of(&mut rx)),
        vec![(aws.clone(), "rate_limited")]
    );

    // A model still loading is transient too, and says nothing of the key.
    s.bedrock
        .sim
        .set_faults(vec![FaultRule::always(Fault::status(424)).times(1)]);
    let response = post_anthropic(&s.gateway.base, &anthropic_request("fallback", false)).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-bulwark-target"), aws);
    assert_eq!(
        failures(&events_of(&mut rx)),
        vec![(aws.clone(), "overloaded")]
    );

    s.bedrock
        .sim
        .set_faults(vec![FaultRule::always(Fault::status(429))]);
    let response = post_anthropic(&s.gateway.base, &anthropic_request("fallback", false)).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-bulwark-target"),
        "backup/claude-sonnet-4-5"
    );
    let failed = failures(&events_of(&mut rx));
    assert!(failed.len() >= 2, "{failed:?}");
    assert!(
        failed.iter().all(|f| *f == (aws.clone(), "rate_limited")),
        "{failed:?}"
    );
    assert!(
        !events_of(&mut rx)
            .iter()
            .any(|e| matches!(e, Event::Misconfigured { .. }))
    );
    Ok(())
}

#[tokio::test]
async fn an_exception_in_bedrocks_stream_is_a_stream_fault() -> TestResult {
    let s = setup().await?;
    let aws = format!("aws/{MODEL}");
    s.bedrock.sim.set_faults(vec![
        FaultRule::always(Fault::ErrorEvent {
            after_chunks: 1,
            status: Some(500),
        })
        .times(1),
    ]);
    let mut rx = s.gateway.gateway.subscribe();
    let response = post_anthropic(&s.gateway.base, &anthropic_request("fallback", true)).await?;
    assert_eq!(response.status(), 200);
    let text = response.text().await?;
    assert!(text.contains("message_stop"), "the retry's stream is whole");
    assert_eq!(failures(&events_of(&mut rx)), vec![(aws.clone(), "stream")]);
    assert_eq!(s.bedrock.sim.requests().len(), 2, "retried on Bedrock");

    // Throttling reported inside the stream is a rate limit, as its status would be.
    s.bedrock.sim.set_faults(vec![
        FaultRule::always(Fault::ErrorEvent {
            after_chunks: 1,
            status: Some(429),
        })
        .times(1),
    ]);
    let response = post_anthropic(&s.gateway.base, &anthropic_request("fallback", true)).await?;
    assert_eq!(response.status(), 200);
    drop(response.text().await?);
    assert_eq!(failures(&events_of(&mut rx)), vec![(aws, "rate_limited")]);
    Ok(())
}

#[tokio::test]
async fn session_credentials_sign_with_their_token() -> TestResult {
    let s = setup().await?;
    let response = post_anthropic(&s.gateway.base, &anthropic_request("session", true)).await?;
    assert_eq!(response.status(), 200);
    assert!(response.text().await?.contains("message_stop"));
    let seen = s.temporary.sim.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].outcome, "ok");
    assert_eq!(seen[0].headers["x-amz-security-token"], "<redacted>");
    assert!(
        seen[0].headers["x-amz-date"].ends_with('Z'),
        "{:?}",
        seen[0].headers
    );
    Ok(())
}
