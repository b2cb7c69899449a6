//! Same format, never stricter than the provider: a target that speaks the
//! client's own format gets the client's query string and provider headers
//! (never its credentials), its errors come back in the client's format with
//! its message, and its answers keep the events and blocks Bulwark does not
//! know, streamed or reassembled. The upstream is an in-process server that
//! records what it was sent.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

mod common;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const UPSTREAM_KEY: &str = "sk-upstream-key-0123456789";
const CLIENT_KEY: &str = "sk-client-key-9876543210";
const BETAS: &str =
    "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27";
/// Not Bulwark's default version, so that the override shows.
const CLIENT_VERSION: &str = "2024-10-22";

/// One request the upstream received.
#[derive(Debug, Clone)]
struct Seen {
    path_and_query: String,
    headers: HeaderMap,
}

impl Seen {
    fn values(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }
}

/// How the upstream answers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    Streams,
    /// A 400 in the format of the path asked.
    Rejects,
}

struct Upstream {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    #[expect(
        clippy::unwrap_used,
        reason = "test helper: a poisoned lock fails the test"
    )]
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn last(&self) -> Result<Seen, Box<dyn std::error::Error>> {
        self.seen()
            .pop()
            .ok_or_else(|| "the upstream was not called".into())
    }
}

/// The events of an Anthropic answer with everything Bulwark's neutral
/// model has no place for: a ping, thinking with its signature, redacted
/// thinking, a server tool call and its result, an event and a block type
/// from the future.
fn anthropic_events() -> Vec<(&'static str, Value)> {
    vec![
        (
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x", "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 12, "output_tokens": 1, "cache_read_input_tokens": 7}}}),
        ),
        ("ping", json!({"type": "ping"})),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me "}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "search."}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 1}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 2, "content_block": {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"query\": \"bul"}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "wark\"}"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 2}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 3, "content_block": {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [{"type": "web_search_result", "url": "https://example.com/", "title": "Example", "encrypted_content": "Eo8BCioIAhgB"}]}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 3}),
        ),
        (
            "future_event",
            json!({"type": "future_event", "payload": {"kept": true}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 4, "content_block": {"type": "text", "text": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 4, "delta": {"type": "text_delta", "text": "A bulwark "}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 4, "delta": {"type": "text_delta", "text": "is a wall."}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 4}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 5, "content_block": {"type": "future_block", "note": "", "tags": ["a"]}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 5, "delta": {"type": "future_delta", "note": "first ", "tags": ["b"]}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 5, "delta": {"type": "future_delta", "note": "second"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 5}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 42, "server_tool_use": {"web_search_requests": 1}}, "context_management": {"applied_edits": [{"type": "clear_tool_uses_20250919", "cleared_tool_uses": 2}]}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ]
}

/// The chunks of an OpenAI-compatible answer with fields Bulwark does not
/// know: reasoning text, annotations, a provider's own field.
fn openai_chunks() -> Vec<Value> {
    let chunk = |delta: Value, finish: Value| json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x", "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
    vec![
        chunk(
            json!({"role": "assistant", "content": "", "reasoning_content": "Let me "}),
            Value::Null,
        ),
        chunk(
            json!({"role": "assistant", "reasoning_content": "think."}),
            Value::Null,
        ),
        chunk(
            json!({"content": "A bulwark", "annotations": [{"type": "url_citation", "url_citation": {"url": "https://example.com/", "title": "Example"}}]}),
            Value::Null,
        ),
        chunk(
            json!({"content": " is a wall.", "provider_specific": {"score": 1}}),
            Value::Null,
        ),
        chunk(json!({}), json!("stop")),
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}}),
    ]
}

fn anthropic_sse() -> String {
    anthropic_events()
        .iter()
        .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
        .collect()
}

fn openai_sse() -> String {
    let mut body: String = openai_chunks()
        .iter()
        .map(|data| format!("data: {data}\n\n"))
        .collect();
    body.push_str("data: [DONE]\n\n");
    body
}

/// Starts the recording upstream: Anthropic's Messages API at
/// `/v1/messages`, OpenAI's at `/v1/chat/completions`.
async fn upstream(answer: Answer) -> Result<Upstream, Box<dyn std::error::Error>> {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let record = Arc::clone(&seen);
    let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, _body: Bytes| {
        let record = Arc::clone(&record);
        async move {
            let anthropic = uri.path() == "/v1/messages";
            if let Ok(mut seen) = record.lock() {
                seen.push(Seen {
                    path_and_query: uri
                        .path_and_query()
                        .map(|p| p.as_str().to_string())
                        .unwrap_or_default(),
                    headers,
                });
            }
            reply(answer, anthropic)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Upstream { base, seen })
}

fn reply(answer: Answer, anthropic: bool) -> Response {
    match (answer, anthropic) {
        (Answer::Streams, true) => {
            ([(header::CONTENT_TYPE, "text/event-stream")], anthropic_sse()).into_response()
        }
        (Answer::Streams, false) => {
            ([(header::CONTENT_TYPE, "text/event-stream")], openai_sse()).into_response()
        }
        (Answer::Rejects, true) => (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "Unexpected value(s) `bogus-2099-01-01` for the `anthropic-beta` header."}}).to_string(),
        )
            .into_response(),
        (Answer::Rejects, false) => (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"error": {"message": "Unrecognized request argument supplied: frobnicate", "type": "invalid_request_error", "param": null, "code": null}}).to_string(),
        )
            .into_response(),
    }
}

/// A gateway whose route `claude` goes to an Anthropic target and `gpt` to
/// an OpenAI-format one, both on `upstream`.
async fn gateway(upstream: &Upstream) -> Result<common::Running, Box<dyn std::error::Error>> {
    let base = &upstream.base;
    common::start_gateway(&format!(
        "listen: 127.0.0.1:0\nproviders:\n  a: {{ kind: anthropic, base_url: \"{base}\", api_key: {UPSTREAM_KEY} }}\n  o: {{ kind: openai, base_url: \"{base}/v1\", api_key: {UPSTREAM_KEY} }}\nroutes:\n  claude: {{ targets: [a/claude-x], max_retries: 0 }}\n  gpt: {{ targets: [o/gpt-x], max_retries: 0 }}\n"
    ))
    .await
}

/// What Claude Code sends, to the Messages front door: `?beta=true`, its
/// version and betas, its key, Stainless telemetry, and a cookie.
async fn claude_code(
    base: &str,
    route: &str,
    stream: bool,
) -> Result<reqwest::Response, reqwest::Error> {
    reqwest::Client::new()
        .post(format!("{base}/v1/messages?beta=true"))
        .header("content-type", "application/json")
        .header("anthropic-version", CLIENT_VERSION)
        .header("anthropic-beta", BETAS)
        .header("x-api-key", CLIENT_KEY)
        .header("authorization", format!("Bearer {CLIENT_KEY}"))
        .header("x-stainless-os", "Linux")
        .header("x-app", "cli")
        .header("cookie", "session=abc")
        .header("x-bulwark-priority", "high")
        .body(
            json!({"model": route, "max_tokens": 1024, "stream": stream, "messages": [{"role": "user", "content": "What is a bulwark?"}]})
                .to_string(),
        )
        .send()
        .await
}

/// An OpenAI client with a beta header, its key and a query.
async fn openai_client(
    base: &str,
    route: &str,
    stream: bool,
) -> Result<reqwest::Response, reqwest::Error> {
    reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions?tier=x"))
        .header("content-type", "application/json")
        .header("openai-beta", "assistants=v2")
        .header("authorization", format!("Bearer {CLIENT_KEY}"))
        .header("api-key", CLIENT_KEY)
        .header("openai-organization", "org-client")
        .header("x-stainless-lang", "python")
        .body(
            json!({"model": route, "stream": stream, "messages": [{"role": "user", "content": "What is a bulwark?"}]})
                .to_string(),
        )
        .send()
        .await
}

async fn json_of(response: reqwest::Response) -> Result<Value, Box<dyn std::error::Error>> {
    Ok(serde_json::from_str(&response.text().await?)?)
}

/// The client's credentials and everything outside the allow-list stay home.
fn assert_no_client_secrets(seen: &Seen) {
    for (name, value) in &seen.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        assert!(
            !value.contains(CLIENT_KEY),
            "the client's key reached the upstream in `{name}`"
        );
        assert!(
            !name.as_str().starts_with("x-stainless") && !name.as_str().starts_with("x-bulwark"),
            "`{name}` reached the upstream"
        );
    }
    for name in ["cookie", "x-app", "openai-organization", "api-key"] {
        assert!(
            seen.headers.get(name).is_none(),
            "`{name}` reached the upstream"
        );
    }
}

#[tokio::test]
async fn an_anthropic_target_gets_claude_codes_query_and_betas_but_not_its_key() -> TestResult {
    let upstream = upstream(Answer::Streams).await?;
    let gateway = gateway(&upstream).await?;
    for stream in [true, false] {
        let response = claude_code(&gateway.base, "claude", stream).await?;
        assert_eq!(response.status(), 200, "stream: {stream}");
        let seen = upstream.last()?;
        assert_eq!(seen.path_and_query, "/v1/messages?beta=true");
        assert_eq!(seen.values("anthropic-beta"), [BETAS]);
        // The client's version replaces Bulwark's default, not beside it.
        assert_eq!(seen.values("anthropic-version"), [CLIENT_VERSION]);
        assert_eq!(seen.values("x-api-key"), [UPSTREAM_KEY]);
        assert!(seen.headers.get("authorization").is_none());
        assert_no_client_secrets(&seen);
    }
    Ok(())
}

#[tokio::test]
async fn an_openai_target_gets_the_clients_query_and_beta_header_but_not_its_key() -> TestResult {
    let upstream = upstream(Answer::Streams).await?;
    let gateway = gateway(&upstream).await?;
    for stream in [true, false] {
        let response = openai_client(&gateway.base, "gpt", stream).await?;
        assert_eq!(response.status(), 200, "stream: {stream}");
        let seen = upstream.last()?;
        assert_eq!(seen.path_and_query, "/v1/chat/completions?tier=x");
        assert_eq!(seen.values("openai-beta"), ["assistants=v2"]);
        assert_eq!(
            seen.values("authorization"),
            [format!("Bearer {UPSTREAM_KEY}")]
        );
        assert_no_client_secrets(&seen);
    }
    Ok(())
}

#[tokio::test]
async fn a_target_of_another_format_gets_neither_query_nor_provider_headers() -> TestResult {
    let upstream = upstream(Answer::Streams).await?;
    let gateway = gateway(&upstream).await?;
    let response = claude_code(&gateway.base, "gpt", false).await?;
    assert_eq!(response.status(), 200);
    let seen = upstream.last()?;
    assert_eq!(seen.path_and_query, "/v1/chat/completions");
    assert!(seen.headers.get("anthropic-beta").is_none());
    assert!(seen.headers.get("anthropic-version").is_none());
    assert_no_client_secrets(&seen);

    let response = openai_client(&gateway.base, "claude", false).await?;
    assert_eq!(response.status(), 200);
    let seen = upstream.last()?;
    assert_eq!(seen.path_and_query, "/v1/messages");
    assert!(seen.headers.get("openai-beta").is_none());
    // Bulwark's own version, since the client named none.
    assert_eq!(seen.values("anthropic-version").len(), 1);
    assert_no_client_secrets(&seen);
    Ok(())
}

#[tokio::test]
async fn forwarded_headers_and_query_are_bounded() -> TestResult {
    let upstream = upstream(Answer::Streams).await?;
    let gateway = gateway(&upstream).await?;
    let body = json!({"model": "claude", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let http = reqwest::Client::new();
    let mut many = http
        .post(format!("{}/v1/messages", gateway.base))
        .header("content-type", "application/json");
    // One past each bound (16 values, 4 KiB a value, 2 KiB of query).
    for i in 0..17 {
        many = many.header("anthropic-beta", format!("beta-{i}"));
    }
    let long_value = "b".repeat(4097);
    let long_query = format!("q={}", "x".repeat(2047));
    let refused = [
        many.body(body.clone()),
        http.post(format!("{}/v1/messages", gateway.base))
            .header("content-type", "application/json")
            .header("anthropic-beta", long_value)
            .body(body.clone()),
        http.post(format!("{}/v1/messages?{long_query}", gateway.base))
            .header("content-type", "application/json")
            .body(body.clone()),
    ];
    for request in refused {
        let response = request.send().await?;
        assert_eq!(response.status(), 400);
        let error: Value = json_of(response).await?;
        assert_eq!(error["error"]["type"], "invalid_request_error", "{error}");
    }
    assert!(
        upstream.seen().is_empty(),
        "a refused request went upstream"
    );
    Ok(())
}

#[tokio::test]
async fn the_providers_400_reaches_a_same_format_client_in_its_format() -> TestResult {
    let upstream = upstream(Answer::Rejects).await?;
    let gateway = gateway(&upstream).await?;
    for stream in [true, false] {
        let response = claude_code(&gateway.base, "claude", stream).await?;
        assert_eq!(response.status(), 400, "stream: {stream}");
        let error: Value = json_of(response).await?;
        assert_eq!(error["type"], "error", "{error}");
        assert_eq!(error["error"]["type"], "invalid_request_error", "{error}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(
                "Unexpected value(s) `bogus-2099-01-01` for the `anthropic-beta` header."
            ),
            "{message}"
        );

        let response = openai_client(&gateway.base, "gpt", stream).await?;
        assert_eq!(response.status(), 400, "stream: {stream}");
        let error: Value = json_of(response).await?;
        assert_eq!(error["error"]["type"], "invalid_request_error", "{error}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("Unrecognized request argument supplied: frobnicate"),
            "{message}"
        );
    }
    // One call each: a client's mistake is not retried or failed over.
    assert_eq!(upstream.seen().len(), 4);
    Ok(())
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

#[tokio::test]
async fn a_relayed_anthropic_stream_keeps_every_event() -> TestResult {
    let upstream = upstream(Answer::Streams).await?;
    let gateway = gateway(&upstream).await?;
    let response = claude_code(&gateway.base, "claude", true).await?;
    assert_eq!(response.status(), 200);
    let received = sse_events(&response.text().await?);
    let sent: Vec<(Option<String>, Value)> = anthropic_events()
        .into_iter()
        .map(|(name, data)| (Some(name.to_string()), data))
        .collect();
    assert_eq!(received, sent);
    Ok(())
}

#[tokio::test]
async fn a_complete_anthropic_answer_keeps_every_block() -> TestResult {
    let upstream = upstream(Answer::Streams).await?;
    let gateway = gateway(&upstream).await?;
    let response = claude_code(&gateway.base, "claude", false).await?;
    assert_eq!(response.status(), 200);
    let message: Value = json_of(response).await?;
    assert_eq!(
        message["content"],
        json!([
            {"type": "thinking", "thinking": "Let me search.", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "bulwark"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [{"type": "web_search_result", "url": "https://example.com/", "title": "Example", "encrypted_content": "Eo8BCioIAhgB"}]},
            {"type": "text", "text": "A bulwark is a wall."},
            {"type": "future_block", "note": "first second", "tags": ["a", "b"]},
        ])
    );
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(message["usage"]["output_tokens"], 42);
    // A beta's result beside the delta is kept too.
    assert_eq!(
        message["context_management"]["applied_edits"][0]["cleared_tool_uses"],
        2
    );
    assert_eq!(message["usage"]["cache_read_input_tokens"], 7);
    assert_eq!(
        message["usage"]["server_tool_use"]["web_search_requests"],
        1
    );
    Ok(())
}

#[tokio::test]
async fn a_relayed_openai_stream_keeps_unknown_fields() -> TestResult {
    let upstream = upstream(Answer::Streams).await?;
    let gateway = gateway(&upstream).await?;
    let response = openai_client(&gateway.base, "gpt", true).await?;
    assert_eq!(response.status(), 200);
    let received = sse_events(&response.text().await?);
    // The usage chunk is the client's only if it asked for it.
    let mut sent: Vec<(Option<String>, Value)> = openai_chunks()
        .into_iter()
        .filter(|chunk| chunk["usage"].is_null())
        .map(|chunk| (None, chunk))
        .collect();
    sent.push((None, json!("[DONE]")));
    assert_eq!(received, sent);
    Ok(())
}

#[tokio::test]
async fn a_complete_openai_answer_keeps_unknown_message_fields() -> TestResult {
    let upstream = upstream(Answer::Streams).await?;
    let gateway = gateway(&upstream).await?;
    let response = openai_client(&gateway.base, "gpt", false).await?;
    assert_eq!(response.status(), 200);
    let completion: Value = json_of(response).await?;
    let message = &completion["choices"][0]["message"];
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["content"], "A bulwark is a wall.");
    assert_eq!(message["reasoning_content"], "Let me think.");
    assert_eq!(
        message["annotations"],
        json!([{"type": "url_citation", "url_citation": {"url": "https://example.com/", "title": "Example"}}])
    );
    assert_eq!(message["provider_specific"], json!({"score": 1}));
    assert_eq!(completion["choices"][0]["finish_reason"], "stop");
    assert_eq!(completion["usage"]["total_tokens"], 14);
    Ok(())
}

#[tokio::test]
async fn a_translated_answer_survives_unknown_events_and_blocks() -> TestResult {
    let upstream = upstream(Answer::Streams).await?;
    let gateway = gateway(&upstream).await?;
    for stream in [true, false] {
        let response = openai_client(&gateway.base, "claude", stream).await?;
        assert_eq!(response.status(), 200, "stream: {stream}");
        let text = response.text().await?;
        assert!(
            text.contains("A bulwark ") && text.contains("is a wall."),
            "{text}"
        );
        let response = claude_code(&gateway.base, "gpt", stream).await?;
        assert_eq!(response.status(), 200, "stream: {stream}");
        let text = response.text().await?;
        assert!(
            text.contains("A bulwark") && text.contains(" is a wall."),
            "{text}"
        );
    }
    Ok(())
}
