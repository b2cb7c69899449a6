//! Anthropic Messages wire format.

mod common;

use common::{ANTHROPIC, merged, post, sse, start};
use serde_json::{Value, json};

fn messages(extra: Value) -> Value {
    let body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": "Be terse.",
        "messages": [{"role": "user", "content": "Say hi please"}]
    });
    merged(body, extra)
}

#[tokio::test]
async fn non_stream_response_shape() {
    let server = start().await;
    let url = format!("{}/v1/messages", server.url());
    let r = post(&url, &ANTHROPIC, &messages(json!({}))).await;
    assert_eq!(r.status, 200);
    assert!(r.header("request-id").unwrap().starts_with("req_"));
    assert_eq!(r.header("anthropic-ratelimit-requests-limit"), Some("4000"));
    let reset = r.header("anthropic-ratelimit-tokens-reset").unwrap();
    assert!(reset.ends_with('Z') && reset.contains('T'), "{reset}");
    let v = r.json();
    assert!(v["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "claude-sonnet-4-5");
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "Simulated answer from claude-sonnet-4-5: Say hi please"}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["stop_sequence"], Value::Null);
    assert_eq!(v["usage"]["input_tokens"], 5);
    assert_eq!(v["usage"]["output_tokens"], 7);
    assert_eq!(v["usage"]["cache_creation_input_tokens"], 0);
    assert_eq!(v["usage"]["cache_read_input_tokens"], 0);
}

#[tokio::test]
async fn stream_event_order() {
    let server = start().await;
    let url = format!("{}/v1/messages", server.url());
    let r = post(&url, &ANTHROPIC, &messages(json!({"stream": true}))).await;
    assert_eq!(r.status, 200);
    let events = sse(&r.text);
    let names: Vec<&str> = events.iter().map(|e| e.name.as_deref().unwrap()).collect();
    let mut expected = vec!["message_start", "content_block_start", "ping"];
    expected.extend(std::iter::repeat_n("content_block_delta", 7));
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, expected);
    for e in &events {
        assert_eq!(e.json()["type"], e.name.as_deref().unwrap());
    }
    let start = events[0].json();
    assert_eq!(start["message"]["usage"]["input_tokens"], 5);
    assert_eq!(start["message"]["usage"]["output_tokens"], 1);
    assert_eq!(start["message"]["content"], json!([]));
    assert_eq!(
        events[1].json()["content_block"],
        json!({"type": "text", "text": ""})
    );
    let text: String = events
        .iter()
        .filter(|e| e.name.as_deref() == Some("content_block_delta"))
        .map(|e| {
            let d = e.json();
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        text,
        "Simulated answer from claude-sonnet-4-5: Say hi please"
    );
    let delta = events[events.len() - 2].json();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["delta"]["stop_sequence"], Value::Null);
    assert_eq!(delta["usage"]["output_tokens"], 7);
}

#[tokio::test]
async fn tool_use_non_stream_and_stream() {
    let server = start().await;
    let url = format!("{}/v1/messages", server.url());
    let tools = json!({"tools": [
        {"name": "lookup", "description": "x", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}},
        {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}
    ], "tool_choice": {"type": "tool", "name": "get_weather"}});
    let v = post(&url, &ANTHROPIC, &messages(tools.clone()))
        .await
        .json();
    assert_eq!(v["stop_reason"], "tool_use");
    let block = &v["content"][0];
    assert_eq!(block["type"], "tool_use");
    assert!(block["id"].as_str().unwrap().starts_with("toolu_"));
    assert_eq!(block["name"], "get_weather");
    assert_eq!(block["input"], json!({"city": "sim", "days": 1}));

    let mut body = messages(tools);
    body["stream"] = json!(true);
    let events = sse(&post(&url, &ANTHROPIC, &body).await.text);
    let start = events[1].json();
    assert_eq!(start["content_block"]["type"], "tool_use");
    assert_eq!(start["content_block"]["name"], "get_weather");
    assert_eq!(start["content_block"]["input"], json!({}));
    let partials: Vec<String> = events
        .iter()
        .filter(|e| e.name.as_deref() == Some("content_block_delta"))
        .map(|e| {
            let d = e.json();
            assert_eq!(d["delta"]["type"], "input_json_delta");
            d["delta"]["partial_json"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(partials.len() >= 2);
    let input: Value = serde_json::from_str(&partials.concat()).unwrap();
    assert_eq!(input, json!({"city": "sim", "days": 1}));
    assert_eq!(
        events[events.len() - 2].json()["delta"]["stop_reason"],
        "tool_use"
    );
}

#[tokio::test]
async fn tool_result_turn_answers_with_result() {
    let server = start().await;
    let url = format!("{}/v1/messages", server.url());
    let body = messages(json!({
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny and 21C"}]}
        ]
    }));
    let v = post(&url, &ANTHROPIC, &body).await.json();
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(
        v["content"][0]["text"],
        "Simulated answer from claude-sonnet-4-5: the tool returned Sunny and 21C"
    );
}

#[tokio::test]
async fn max_tokens_and_stop_sequences() {
    let server = start().await;
    let url = format!("{}/v1/messages", server.url());
    let v = post(&url, &ANTHROPIC, &messages(json!({"max_tokens": 2})))
        .await
        .json();
    assert_eq!(v["content"][0]["text"], "Simulated answer");
    assert_eq!(v["stop_reason"], "max_tokens");
    assert_eq!(v["usage"]["output_tokens"], 2);

    let body = messages(json!({"stop_sequences": ["please"], "stream": true}));
    let events = sse(&post(&url, &ANTHROPIC, &body).await.text);
    let delta = events[events.len() - 2].json();
    assert_eq!(delta["delta"]["stop_reason"], "stop_sequence");
    assert_eq!(delta["delta"]["stop_sequence"], "please");
}

#[tokio::test]
async fn missing_version_and_max_tokens_are_rejected() {
    let server = start().await;
    let url = format!("{}/v1/messages", server.url());
    let r = post(&url, &[], &messages(json!({}))).await;
    assert_eq!(r.status, 400);
    let v = r.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("anthropic-version")
    );
    assert!(v["request_id"].as_str().unwrap().starts_with("req_"));

    let mut body = messages(json!({}));
    body.as_object_mut().unwrap().remove("max_tokens");
    let r = post(&url, &ANTHROPIC, &body).await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens")
    );
}

#[tokio::test]
async fn models_list_in_anthropic_shape() {
    let server = start().await;
    let r = common::get(&format!("{}/v1/models", server.url()), &ANTHROPIC).await;
    let v = r.json();
    assert_eq!(v["data"][0]["type"], "model");
    assert_eq!(v["data"][0]["id"], "gpt-4o-mini");
    assert!(v["data"][0]["display_name"].is_string());
    assert!(v["data"][0]["created_at"].is_string());
    assert_eq!(v["has_more"], false);
    assert_eq!(v["first_id"], "gpt-4o-mini");
    assert!(v["last_id"].is_string());
}

/// Anthropic's rules for `thinking: enabled`, each answered 400
/// `invalid_request_error` as Anthropic does.
#[tokio::test]
async fn thinking_rules_are_enforced() {
    let server = start().await;
    let url = format!("{}/v1/messages", server.url());
    let tool_loop = json!([
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
        ]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}]}
    ]);
    let thinking = |budget: u64| json!({"type": "enabled", "budget_tokens": budget});
    let refused = [
        (
            json!({"thinking": thinking(1000), "max_tokens": 4000}),
            "greater than or equal to 1024",
        ),
        (
            json!({"thinking": thinking(4000), "max_tokens": 4000}),
            "`max_tokens` must be greater",
        ),
        (
            json!({"thinking": thinking(2000), "max_tokens": 4000, "temperature": 0.3}),
            "`temperature`",
        ),
        (
            json!({"thinking": thinking(2000), "max_tokens": 4000, "top_k": 40}),
            "`top_k`",
        ),
        (
            json!({"thinking": thinking(2000), "max_tokens": 4000, "messages": tool_loop}),
            "must start with a thinking block",
        ),
    ];
    for (extra, message) in refused {
        let r = post(&url, &ANTHROPIC, &messages(extra.clone())).await;
        assert_eq!(r.status, 400, "{extra}");
        let v = r.json();
        assert_eq!(v["error"]["type"], "invalid_request_error", "{extra}");
        let text = v["error"]["message"].as_str().unwrap();
        assert!(text.contains(message), "{extra}: {text}");
    }
    // Valid: Claude Code's budget, temperature 1, a tool loop whose
    // assistant turn starts with its thinking, and adaptive thinking.
    let mut with_thinking = tool_loop.clone();
    with_thinking[1]["content"].as_array_mut().unwrap().insert(
        0,
        json!({"type": "thinking", "thinking": "Look it up.", "signature": "sig"}),
    );
    let accepted = [
        json!({"thinking": thinking(31999), "max_tokens": 32000, "temperature": 1}),
        json!({"thinking": thinking(2000), "max_tokens": 4000, "messages": with_thinking}),
        json!({"thinking": {"type": "adaptive"}, "max_tokens": 4000, "messages": tool_loop}),
    ];
    for extra in accepted {
        let r = post(&url, &ANTHROPIC, &messages(extra.clone())).await;
        assert_eq!(r.status, 200, "{extra}: {}", r.text);
    }
}
