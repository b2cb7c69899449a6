//! Models on Amazon Bedrock that are not Anthropic's, behind the gateway:
//! served through the Converse API (`/converse-stream`, `/converse`),
//! against the simulator's Bedrock, which verifies SigV4 and reads the
//! Converse body. OpenAI and Anthropic clients alike are translated onto
//! it, streamed and not, tool calls and usage included.

use bulwark_sim::{BedrockSimConfig, Fault, FaultRule, SimConfig, SimServer};
use serde_json::{Value, json};

mod common;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const NOVA: &str = "amazon.nova-pro-v1:0";
const KEY_ID: &str = "AKIDBULWARKTEST";
const SECRET: &str = "bulwark/test+secret0123456789EXAMPLEKEY";

struct Setup {
    bedrock: SimServer,
    /// Anthropic's own API, the failing first target of `fallback`.
    anthropic: SimServer,
    gateway: common::Running,
}

async fn setup() -> Result<Setup, Box<dyn std::error::Error>> {
    let bedrock = SimServer::start(
        "127.0.0.1:0",
        SimConfig {
            bedrock: Some(BedrockSimConfig {
                access_key_id: KEY_ID.into(),
                secret_access_key: SECRET.into(),
                session_token: None,
                api_key: None,
                region: "us-east-1".into(),
            }),
            ..SimConfig::default()
        },
    )
    .await?;
    let anthropic = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let (b, a) = (bedrock.url(), anthropic.url());
    let aws = format!(
        r#"region: us-east-1, base_url: "{b}", aws: {{ access_key_id: {KEY_ID}, secret_access_key: "{SECRET}" }}"#
    );
    let yaml = format!(
        r#"listen: 127.0.0.1:0
providers:
  aws: {{ kind: bedrock, {aws} }}
  whole: {{ kind: bedrock, stream: false, {aws} }}
  anthropic: {{ kind: anthropic, base_url: "{a}", api_key: k }}
routes:
  nova: {{ targets: ["aws/{NOVA}"] }}
  complete: {{ targets: ["whole/{NOVA}"] }}
  fallback: {{ targets: [anthropic/claude-sonnet-4-5, "aws/{NOVA}"] }}
"#
    );
    let gateway = common::start_gateway(&yaml).await?;
    Ok(Setup {
        bedrock,
        anthropic,
        gateway,
    })
}

const WEATHER: &str = r#"Weather in Oslo? sim:call get_weather {"city": "Oslo"}"#;

fn openai_tools() -> Value {
    json!([{"type": "function", "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    }}])
}

async fn post(base: &str, path: &str, body: &Value) -> Result<reqwest::Response, reqwest::Error> {
    let mut request = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json");
    if path == "/v1/messages" {
        request = request.header("anthropic-version", "2023-06-01");
    }
    request.body(body.to_string()).send().await
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The JSON of each `data:` line of a stream, `[DONE]` left out.
fn stream_data(text: &str) -> Result<Vec<Value>, serde_json::Error> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(serde_json::from_str)
        .collect()
}

#[tokio::test]
async fn an_openai_client_gets_nova_through_converse_with_usage() -> TestResult {
    let s = setup().await?;
    let response = post(
        &s.gateway.base,
        "/v1/chat/completions",
        &json!({"model": "nova", "max_tokens": 200, "temperature": 0.2,
            "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "hello there"}]}),
    )
    .await?;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-bulwark-target"), format!("aws/{NOVA}"));
    let answer: Value = serde_json::from_str(&response.text().await?)?;
    let text = answer["choices"][0]["message"]["content"]
        .as_str()
        .ok_or("no text")?;
    assert!(text.contains("hello there"), "{text}");
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        answer["model"], NOVA,
        "Converse names no model: the target's"
    );
    assert!(answer["usage"]["prompt_tokens"].as_u64() > Some(0));
    assert!(answer["usage"]["completion_tokens"].as_u64() > Some(0));

    let seen = s.bedrock.sim.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].outcome, "ok");
    assert_eq!(
        seen[0].path,
        "/model/amazon.nova-pro-v1%3A0/converse-stream"
    );
    assert_eq!(seen[0].body["system"], json!([{"text": "Be terse."}]));
    assert_eq!(
        seen[0].body["inferenceConfig"],
        json!({"maxTokens": 200, "temperature": 0.2})
    );
    assert_eq!(
        seen[0].body["messages"],
        json!([{"role": "user", "content": [{"text": "hello there"}]}])
    );
    for field in ["model", "stream", "anthropic_version", "max_tokens"] {
        assert!(seen[0].body.get(field).is_none(), "{field} sent");
    }
    Ok(())
}

#[tokio::test]
async fn an_openai_stream_from_converse_carries_text_and_usage() -> TestResult {
    let s = setup().await?;
    let response = post(
        &s.gateway.base,
        "/v1/chat/completions",
        &json!({"model": "nova", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "hello there"}]}),
    )
    .await?;
    assert_eq!(response.status(), 200);
    let text = response.text().await?;
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let data = stream_data(&text)?;
    let content: String = data
        .iter()
        .filter_map(|d| {
            d.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
        })
        .collect();
    assert!(content.contains("hello there"), "{content}");
    assert!(
        data.iter()
            .any(|d| d.pointer("/choices/0/finish_reason") == Some(&json!("stop")))
    );
    let usage = data
        .iter()
        .rev()
        .find_map(|d| d.get("usage").filter(|u| !u.is_null()))
        .ok_or("no usage chunk")?;
    assert!(usage["completion_tokens"].as_u64() > Some(0), "{usage}");
    Ok(())
}

#[tokio::test]
async fn an_openai_tool_call_round_trip_goes_through_converse() -> TestResult {
    let s = setup().await?;
    let response = post(
        &s.gateway.base,
        "/v1/chat/completions",
        &json!({"model": "nova", "tools": openai_tools(),
            "messages": [{"role": "user", "content": WEATHER}]}),
    )
    .await?;
    assert_eq!(response.status(), 200);
    let answer: Value = serde_json::from_str(&response.text().await?)?;
    let choice = &answer["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    let arguments: Value = serde_json::from_str(
        call["function"]["arguments"]
            .as_str()
            .ok_or("no arguments")?,
    )?;
    assert_eq!(arguments, json!({"city": "Oslo"}));
    let id = call["id"].as_str().ok_or("no id")?;

    let response = post(
        &s.gateway.base,
        "/v1/chat/completions",
        &json!({"model": "nova", "tools": openai_tools(), "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": id, "content": "3 C and snow"}
        ]}),
    )
    .await?;
    assert_eq!(response.status(), 200);
    let answer: Value = serde_json::from_str(&response.text().await?)?;
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");

    let seen = s.bedrock.sim.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].outcome, "ok");
    let messages = &seen[1].body["messages"];
    assert_eq!(
        messages[1]["content"][0]["toolUse"],
        json!({"toolUseId": id, "name": "get_weather", "input": {"city": "Oslo"}})
    );
    assert_eq!(
        messages[2]["content"][0]["toolResult"],
        json!({"toolUseId": id, "content": [{"text": "3 C and snow"}]})
    );
    assert_eq!(
        seen[1].body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["required"],
        json!(["city"])
    );
    Ok(())
}

/// An Anthropic request with a tool and thinking, which Nova does not do.
fn anthropic_request(route: &str, stream: bool) -> Value {
    json!({
        "model": route,
        "max_tokens": 4096,
        "stream": stream,
        "system": [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tools": [{
            "name": "get_weather",
            "description": "The weather in a city.",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        }],
        "messages": [{"role": "user", "content": WEATHER}]
    })
}

#[tokio::test]
async fn an_anthropic_client_calls_a_tool_on_nova_and_is_told_what_was_dropped() -> TestResult {
    let s = setup().await?;
    let response = post(
        &s.gateway.base,
        "/v1/messages",
        &anthropic_request("nova", false),
    )
    .await?;
    assert_eq!(response.status(), 200);
    let dropped = header(&response, "x-bulwark-dropped");
    for feature in ["thinking", "cache_control"] {
        assert!(dropped.contains(feature), "{dropped}");
    }
    let answer: Value = serde_json::from_str(&response.text().await?)?;
    assert_eq!(answer["stop_reason"], "tool_use");
    let call = answer["content"]
        .as_array()
        .and_then(|c| c.iter().find(|b| b["type"] == "tool_use"))
        .ok_or("no tool_use")?;
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["input"], json!({"city": "Oslo"}));
    assert!(answer["usage"]["input_tokens"].as_u64() > Some(0));
    assert!(answer["usage"]["output_tokens"].as_u64() > Some(0));
    let id = call["id"].as_str().ok_or("no id")?;

    let mut next = anthropic_request("nova", true);
    next["messages"] = json!([
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": [call]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": id, "content": "3 C", "is_error": true}]}
    ]);
    let response = post(&s.gateway.base, "/v1/messages", &next).await?;
    assert_eq!(response.status(), 200);
    let data = stream_data(&response.text().await?)?;
    assert!(
        data.iter()
            .any(|d| d.pointer("/delta/type") == Some(&json!("text_delta")))
    );
    let last_delta = data
        .iter()
        .rev()
        .find(|d| d["type"] == "message_delta")
        .ok_or("no message_delta")?;
    assert_eq!(last_delta["delta"]["stop_reason"], "end_turn");
    assert!(last_delta["usage"]["output_tokens"].as_u64() > Some(0));
    assert_eq!(
        data.last().map(|d| &d["type"]),
        Some(&json!("message_stop"))
    );

    let seen = s.bedrock.sim.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[1].body["messages"][2]["content"][0]["toolResult"],
        json!({"toolUseId": id, "content": [{"text": "3 C"}], "status": "error"})
    );
    // Claude's own fields stay out of a Converse body.
    assert!(seen[1].body.get("thinking").is_none());
    assert!(seen[1].body.get("additionalModelRequestFields").is_none());
    Ok(())
}

#[tokio::test]
async fn an_anthropic_stream_of_a_tool_call_from_converse() -> TestResult {
    let s = setup().await?;
    let response = post(
        &s.gateway.base,
        "/v1/messages",
        &anthropic_request("nova", true),
    )
    .await?;
    assert_eq!(response.status(), 200);
    let data = stream_data(&response.text().await?)?;
    let start = data
        .iter()
        .find(|d| d.pointer("/content_block/type") == Some(&json!("tool_use")))
        .ok_or("no tool_use block")?;
    assert_eq!(start["content_block"]["name"], "get_weather");
    let arguments: String = data
        .iter()
        .filter_map(|d| d.pointer("/delta/partial_json").and_then(Value::as_str))
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments)?,
        json!({"city": "Oslo"})
    );
    let stop = data
        .iter()
        .find_map(|d| d.pointer("/delta/stop_reason"))
        .ok_or("no stop reason")?;
    assert_eq!(stop, "tool_use");
    Ok(())
}

#[tokio::test]
async fn a_provider_without_streams_asks_converse_for_a_complete_answer() -> TestResult {
    let s = setup().await?;
    for stream in [false, true] {
        let response = post(
            &s.gateway.base,
            "/v1/chat/completions",
            &json!({"model": "complete", "stream": stream, "tools": openai_tools(),
                "messages": [{"role": "user", "content": WEATHER}]}),
        )
        .await?;
        assert_eq!(response.status(), 200);
        let text = response.text().await?;
        assert!(text.contains("get_weather"), "{text}");
        assert!(text.contains("tool_calls"), "{text}");
        assert!(text.contains(NOVA), "named after the target: {text}");
    }
    let seen = s.bedrock.sim.requests();
    assert_eq!(seen.len(), 2);
    for request in &seen {
        assert_eq!(request.outcome, "ok");
        assert_eq!(request.path, "/model/amazon.nova-pro-v1%3A0/converse");
        assert!(request.body.get("stream").is_none());
    }
    Ok(())
}

#[tokio::test]
async fn a_failing_target_falls_back_to_a_converse_model() -> TestResult {
    let s = setup().await?;
    s.anthropic
        .sim
        .set_faults(vec![FaultRule::always(Fault::status(500))]);
    for stream in [false, true] {
        let response = post(
            &s.gateway.base,
            "/v1/chat/completions",
            &json!({"model": "fallback", "stream": stream,
                "messages": [{"role": "user", "content": "hello there"}]}),
        )
        .await?;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "x-bulwark-target"), format!("aws/{NOVA}"));
        let text = response.text().await?;
        let answer = if stream {
            let data = stream_data(&text)?;
            data.iter()
                .filter_map(|d| {
                    d.pointer("/choices/0/delta/content")
                        .and_then(Value::as_str)
                })
                .collect::<String>()
        } else {
            serde_json::from_str::<Value>(&text)?["choices"][0]["message"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        assert!(answer.contains("hello there"), "{text}");
    }
    assert!(!s.anthropic.sim.requests().is_empty());
    assert_eq!(s.bedrock.sim.requests().len(), 2);
    Ok(())
}

#[tokio::test]
async fn throttling_in_a_converse_stream_or_status_is_a_rate_limit_and_retried() -> TestResult {
    let s = setup().await?;
    let nova = format!("aws/{NOVA}");
    let mut rx = s.gateway.gateway.subscribe();
    let faults = [
        Fault::ErrorEvent {
            after_chunks: 1,
            status: Some(429),
        },
        Fault::status(429),
    ];
    for fault in faults {
        s.bedrock
            .sim
            .set_faults(vec![FaultRule::always(fault).times(1)]);
        let response = post(
            &s.gateway.base,
            "/v1/chat/completions",
            &json!({"model": "nova", "stream": true,
                "messages": [{"role": "user", "content": "hello there"}]}),
        )
        .await?;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "x-bulwark-target"), nova);
        assert!(response.text().await?.contains("[DONE]"));
        let mut failed = Vec::new();
        while let Ok(event) = rx.try_recv() {
            if let bulwark::events::Event::AttemptFailed { target, class, .. } = event {
                failed.push((target, class));
            }
        }
        assert_eq!(failed, vec![(nova.clone(), "rate_limited")]);
    }
    assert_eq!(s.bedrock.sim.requests().len(), 4, "each retried once");
    Ok(())
}
