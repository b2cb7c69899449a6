//! OpenAI Chat Completions wire format.

mod common;

use common::{merged, post, sse, start};
use serde_json::{Value, json};

fn chat(extra: Value) -> Value {
    let body = json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Say hi please"}
        ]
    });
    merged(body, extra)
}

#[tokio::test]
async fn non_stream_response_shape() {
    let server = start().await;
    let url = format!("{}/v1/chat/completions", server.url());
    let r = post(&url, &[("authorization", "Bearer sk-x")], &chat(json!({}))).await;
    assert_eq!(r.status, 200);
    assert!(r.header("x-request-id").is_some());
    assert_eq!(r.header("x-ratelimit-limit-requests"), Some("10000"));
    assert!(r.header("x-ratelimit-reset-tokens").is_some());
    let v = r.json();
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-4o-mini");
    assert!(v["created"].as_u64().unwrap() > 1_700_000_000);
    let choice = &v["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(
        choice["message"]["content"],
        "Simulated answer from gpt-4o-mini: Say hi please"
    );
    assert_eq!(choice["message"]["refusal"], Value::Null);
    assert_eq!(choice["logprobs"], Value::Null);
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(v["usage"]["prompt_tokens"], 5);
    assert_eq!(v["usage"]["completion_tokens"], 7);
    assert_eq!(v["usage"]["total_tokens"], 12);
    assert!(v.get("system_fingerprint").is_some());
}

#[tokio::test]
async fn stream_with_usage() {
    let server = start().await;
    let url = format!("{}/v1/chat/completions", server.url());
    let body = chat(json!({"stream": true, "stream_options": {"include_usage": true}}));
    let r = post(&url, &[], &body).await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = sse(&r.text);
    assert!(events.iter().all(|e| e.name.is_none()));
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[0]["choices"][0]["delta"]["content"], "");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Simulated answer from gpt-4o-mini: Say hi please");
    let usage_chunk = chunks.last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["total_tokens"], 12);
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    for c in &chunks[..chunks.len() - 1] {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert!(c.get("usage").is_some() && c["usage"].is_null());
    }
    // One word per content chunk.
    assert_eq!(chunks.len(), 1 + 7 + 1 + 1);
}

#[tokio::test]
async fn stream_without_usage_has_no_usage_chunk() {
    let server = start().await;
    let url = format!("{}/v1/chat/completions", server.url());
    let r = post(&url, &[], &chat(json!({"stream": true}))).await;
    let events = sse(&r.text);
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| !c["choices"].as_array().unwrap().is_empty())
    );
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
}

fn weather_tools() -> Value {
    json!({"tools": [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
        }, "required": ["city"]}
    }}]})
}

#[tokio::test]
async fn tool_call_non_stream_and_stream() {
    let server = start().await;
    let url = format!("{}/v1/chat/completions", server.url());
    let required = merged(weather_tools(), json!({"tool_choice": "required"}));
    let r = post(&url, &[], &chat(required)).await;
    let v = r.json();
    let msg = &v["choices"][0]["message"];
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(msg["content"], Value::Null);
    let call = &msg["tool_calls"][0];
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "sim", "unit": "celsius"}));

    // Tool choice auto: called when the user text asks with `sim:call`.
    let mut body = chat(weather_tools());
    body["stream"] = json!(true);
    body["messages"][1]["content"] = json!("Weather? sim:call get_weather");
    let events = sse(&post(&url, &[], &body).await.text);
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect();
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"].get("tool_calls"))
        .collect();
    let head = &calls[0][0];
    assert_eq!(head["index"], 0);
    assert!(head["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(head["type"], "function");
    assert_eq!(head["function"]["name"], "get_weather");
    assert_eq!(head["function"]["arguments"], "");
    let fragments: Vec<&str> = calls[1..]
        .iter()
        .map(|c| c[0]["function"]["arguments"].as_str().unwrap())
        .collect();
    assert!(fragments.len() >= 2);
    let joined: Value = serde_json::from_str(&fragments.concat()).unwrap();
    assert_eq!(joined, args);
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[tokio::test]
async fn tool_results_and_tool_choice_none() {
    let server = start().await;
    let url = format!("{}/v1/chat/completions", server.url());
    let mut body = chat(weather_tools());
    body["messages"] = json!([
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny and 21C"}
    ]);
    let v = post(&url, &[], &body).await.json();
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Simulated answer from gpt-4o-mini: the tool returned Sunny and 21C"
    );

    let mut body = chat(weather_tools());
    body["tool_choice"] = json!("none");
    let v = post(&url, &[], &body).await.json();
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn images_max_tokens_and_stop() {
    let server = start().await;
    let url = format!("{}/v1/chat/completions", server.url());
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Describe"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    ]}]});
    let v = post(&url, &[], &body).await.json();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Simulated answer from gpt-4o: Describe (1 image)"
    );

    let v = post(&url, &[], &chat(json!({"max_completion_tokens": 2})))
        .await
        .json();
    assert_eq!(v["choices"][0]["message"]["content"], "Simulated answer");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 2);

    let v = post(&url, &[], &chat(json!({"max_tokens": 3})))
        .await
        .json();
    assert_eq!(v["choices"][0]["finish_reason"], "length");

    let v = post(&url, &[], &chat(json!({"stop": "hi"}))).await.json();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Simulated answer from gpt-4o-mini: Say"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn validation_errors() {
    let server = start().await;
    let url = format!("{}/v1/chat/completions", server.url());
    let r = post(&url, &[], &json!({"model": "gpt-4o-mini"})).await;
    assert_eq!(r.status, 400);
    let e = &r.json()["error"];
    assert_eq!(e["type"], "invalid_request_error");
    assert_eq!(e["param"], "messages");
    assert!(e.get("code").is_some());
}

#[tokio::test]
async fn models_list() {
    let server = start().await;
    let r = common::get(&format!("{}/v1/models", server.url()), &[]).await;
    let v = r.json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], "gpt-4o-mini");
    assert_eq!(v["data"][0]["object"], "model");
    assert!(v["data"][0]["owned_by"].is_string());
    assert!(v["data"][0]["created"].is_u64());
}
