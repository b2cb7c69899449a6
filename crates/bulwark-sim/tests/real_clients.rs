//! What real clients (Claude Code, the Vercel AI SDK, LangChain) send and
//! need: mid-conversation system messages, thinking, two dozen tools called
//! only on demand (`sim:call`), JSON answers to stream requests, and a
//! request log that shows everything they sent.

mod common;

use common::{ANTHROPIC, get, post, sse, start};
use serde_json::{Value, json};

/// 24 tools with schemas as rich as Claude Code's: nested objects, arrays of
/// objects, enums, `additionalProperties`, `$schema`.
fn claude_code_tools() -> Vec<Value> {
    let mut tools = vec![
        json!({"name": "Bash", "description": "Run a shell command", "input_schema": {
            "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "additionalProperties": false, "required": ["command"],
            "properties": {"command": {"type": "string"}, "timeout": {"type": "number"},
                "run_in_background": {"type": "boolean"}}}}),
        json!({"name": "Read", "description": "Read a file", "input_schema": {
            "type": "object", "required": ["file_path"], "additionalProperties": false,
            "properties": {"file_path": {"type": "string"}, "offset": {"type": "integer"},
                "limit": {"type": "integer"}}}}),
        json!({"name": "TodoWrite", "description": "Track tasks", "input_schema": {
            "type": "object", "required": ["todos"], "properties": {"todos": {"type": "array",
                "items": {"type": "object", "properties": {
                    "content": {"type": "string", "minLength": 1},
                    "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]}},
                    "required": ["content", "status"], "additionalProperties": false}}}}}),
    ];
    for i in tools.len()..24 {
        tools.push(
            json!({"name": format!("Tool{i}"), "description": "More", "input_schema": {
            "type": "object", "properties": {"query": {"type": "string"},
                "options": {"type": "object", "properties": {"depth": {"type": "integer"}}}}}}),
        );
    }
    if let Some(last) = tools.last_mut() {
        last["cache_control"] = json!({"type": "ephemeral"});
    }
    tools
}

/// A request shaped like Claude Code's: system blocks with cache control, a
/// thinking block with its signature in an assistant turn, a system message
/// mid-conversation, 24 tools, adaptive thinking, context management,
/// effort, metadata, `max_tokens: 32000`.
fn claude_code_request(last_user_text: &str) -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "system": [
            {"type": "text", "text": "You are Claude Code."},
            {"type": "text", "text": "Be careful.", "cache_control": {"type": "ephemeral"}}
        ],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>context</system-reminder>"},
                {"type": "text", "text": "List the files", "cache_control": {"type": "ephemeral"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Let me look.", "signature": "EqQBCkYIBxgCKkA="},
                {"type": "text", "text": "Here they are."}
            ]},
            {"role": "system", "content": "The user switched to plan mode."},
            {"role": "user", "content": [
                {"type": "text", "text": last_user_text, "cache_control": {"type": "ephemeral"}}
            ]}
        ],
        "tools": claude_code_tools(),
        "thinking": {"type": "adaptive"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "high"},
        "metadata": {"user_id": "user_abc_account_def_session_123"},
        "stream": false
    })
}

const CLAUDE_CODE_HEADERS: [(&str, &str); 3] = [
    ANTHROPIC[0],
    (
        "anthropic-beta",
        "claude-code-20250219,interleaved-thinking-2025-05-14,mid-conversation-system-2026-04-07",
    ),
    ("x-api-key", "sk-ant-claude-code-secret"),
];

fn deltas(events: &[common::Event], kind: &str, field: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.name.as_deref() == Some("content_block_delta"))
        .map(common::Event::json)
        .filter(|d| d["delta"]["type"] == kind)
        .map(|d| d["delta"][field].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn claude_code_request_is_answered_with_thinking_then_text() {
    let server = start().await;
    let url = format!("{}/v1/messages?beta=true", server.url());
    let r = post(
        &url,
        &CLAUDE_CODE_HEADERS,
        &claude_code_request("What is in notes.txt?"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    let thinking_text = "Simulated thinking from claude-sonnet-4-5: What is in notes.txt?";
    assert_eq!(v["content"][0]["type"], "thinking");
    assert_eq!(v["content"][0]["thinking"], thinking_text);
    let signature = v["content"][0]["signature"].as_str().unwrap().to_string();
    assert!(!signature.is_empty());
    // 24 tools declared, no `sim:call`: text, not a tool call.
    assert_eq!(
        v["content"][1],
        json!({"type": "text", "text": "Simulated answer from claude-sonnet-4-5: What is in notes.txt?"})
    );
    assert_eq!(v["content"].as_array().unwrap().len(), 2);
    assert_eq!(v["stop_reason"], "end_turn");
    // Thinking is billed as output, as Anthropic bills it.
    assert_eq!(v["usage"]["output_tokens"], 8 + 8);

    let mut body = claude_code_request("What is in notes.txt?");
    body["stream"] = json!(true);
    let r = post(&url, &CLAUDE_CODE_HEADERS, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let events = sse(&r.text);
    let starts: Vec<Value> = events
        .iter()
        .filter(|e| e.name.as_deref() == Some("content_block_start"))
        .map(common::Event::json)
        .collect();
    assert_eq!(
        starts[0]["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
    assert_eq!(starts[0]["index"], 0);
    assert_eq!(starts[1]["content_block"]["type"], "text");
    assert_eq!(starts[1]["index"], 1);
    assert_eq!(
        deltas(&events, "thinking_delta", "thinking").concat(),
        thinking_text
    );
    assert_eq!(
        deltas(&events, "signature_delta", "signature"),
        vec![signature]
    );
    assert_eq!(
        deltas(&events, "text_delta", "text").concat(),
        "Simulated answer from claude-sonnet-4-5: What is in notes.txt?"
    );
    // The signature closes the thinking block, before it stops.
    let names: Vec<String> = events
        .iter()
        .map(|e| {
            let d = e.json();
            format!(
                "{}:{}",
                e.name.as_deref().unwrap_or_default(),
                d["delta"]["type"].as_str().unwrap_or_default()
            )
        })
        .collect();
    let signature_at = names
        .iter()
        .position(|n| n == "content_block_delta:signature_delta")
        .unwrap();
    assert_eq!(names[signature_at + 1], "content_block_stop:");
    let message_delta = events
        .iter()
        .find(|e| e.name.as_deref() == Some("message_delta"))
        .unwrap()
        .json();
    assert_eq!(message_delta["usage"]["output_tokens"], 16);
}

#[tokio::test]
async fn enabled_thinking_with_budget_and_no_thinking_without_it() {
    let server = start().await;
    let url = format!("{}/v1/messages", server.url());
    let mut body = claude_code_request("Hi");
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 10000});
    let v = post(&url, &ANTHROPIC, &body).await.json();
    assert_eq!(v["content"][0]["type"], "thinking");
    body["thinking"] = json!({"type": "disabled"});
    let v = post(&url, &ANTHROPIC, &body).await.json();
    assert_eq!(v["content"][0]["type"], "text");
    assert_eq!(v["content"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn sim_call_calls_the_named_tool_with_its_arguments() {
    let server = start().await;
    let url = format!("{}/v1/messages?beta=true", server.url());
    let mut body =
        claude_code_request("Read it. sim:call Read {\"file_path\": \"/tmp/x/notes.txt\"}");
    body.as_object_mut().unwrap().remove("thinking");
    let v = post(&url, &CLAUDE_CODE_HEADERS, &body).await.json();
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(v["content"][0]["type"], "tool_use");
    assert_eq!(v["content"][0]["name"], "Read");
    assert_eq!(
        v["content"][0]["input"],
        json!({"file_path": "/tmp/x/notes.txt"})
    );

    // Streamed, without arguments: the schema's.
    let mut body = claude_code_request("sim:call Bash");
    body["stream"] = json!(true);
    let events = sse(&post(&url, &CLAUDE_CODE_HEADERS, &body).await.text);
    let block = events
        .iter()
        .filter(|e| e.name.as_deref() == Some("content_block_start"))
        .map(common::Event::json)
        .find(|s| s["content_block"]["type"] == "tool_use")
        .unwrap();
    assert_eq!(block["content_block"]["name"], "Bash");
    assert_eq!(block["index"], 1, "after the thinking block");
    let input: Value =
        serde_json::from_str(&deltas(&events, "input_json_delta", "partial_json").concat())
            .unwrap();
    assert_eq!(
        input,
        json!({"command": "sim", "timeout": 1.5, "run_in_background": true})
    );

    // A tool that is not declared: text saying so.
    let v = post(
        &url,
        &CLAUDE_CODE_HEADERS,
        &claude_code_request("sim:call Write"),
    )
    .await
    .json();
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(
        v["content"][1]["text"],
        "Simulated answer from claude-sonnet-4-5: no tool named Write is declared"
    );

    // After the tool result: the text quoting it.
    let mut body = claude_code_request("sim:call Read");
    let messages = body["messages"].as_array_mut().unwrap();
    messages.push(json!({"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "/a"}}]}));
    messages.push(json!({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "hello notes"}]}));
    let v = post(&url, &CLAUDE_CODE_HEADERS, &body).await.json();
    assert_eq!(
        v["content"][1]["text"],
        "Simulated answer from claude-sonnet-4-5: the tool returned hello notes"
    );
}

#[tokio::test]
async fn anthropic_tool_choice_any_calls_the_first_tool() {
    let server = start().await;
    let url = format!("{}/v1/messages", server.url());
    let mut body = claude_code_request("Do something");
    body["tool_choice"] = json!({"type": "any"});
    let v = post(&url, &ANTHROPIC, &body).await.json();
    assert_eq!(v["content"][1]["type"], "tool_use");
    assert_eq!(v["content"][1]["name"], "Bash");
}

fn openai_tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "get_time", "parameters": {
            "type": "object", "properties": {"zone": {"type": "string"}}}}}
    ])
}

#[tokio::test]
async fn openai_system_and_developer_messages_anywhere_and_calls_on_demand() {
    let server = start().await;
    let url = format!("{}/v1/chat/completions", server.url());
    let body = json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "developer", "content": "Be terse."},
            {"role": "user", "content": "Hello there"},
            {"role": "assistant", "content": "Hi."},
            {"role": "system", "content": "Now in French."},
            {"role": "user", "content": "Time? sim:call get_time {\"zone\": \"CET\"}"},
            {"role": "developer", "content": "Answer briefly."}
        ],
        "tools": openai_tools()
    });
    let r = post(&url, &[], &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    let call = &v["choices"][0]["message"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "get_time");
    assert_eq!(
        serde_json::from_str::<Value>(call["arguments"].as_str().unwrap()).unwrap(),
        json!({"zone": "CET"})
    );

    let mut body = body;
    body["messages"][4]["content"] = json!("What time is it?");
    let v = post(&url, &[], &body).await.json();
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Simulated answer from gpt-4o-mini: What time is it?"
    );
    body["tool_choice"] = json!("required");
    let v = post(&url, &[], &body).await.json();
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
}

#[tokio::test]
async fn openai_reasoning_effort_reports_reasoning_tokens() {
    let server = start().await;
    let url = format!("{}/v1/chat/completions", server.url());
    let body = json!({"model": "o4-mini", "reasoning_effort": "low",
        "messages": [{"role": "user", "content": "Say hi"}]});
    let v = post(&url, &[], &body).await.json();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Simulated answer from o4-mini: Say hi"
    );
    // "Simulated thinking from o4-mini: Say hi" is 6 words, hidden.
    let usage = &v["usage"];
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 6);
    assert_eq!(usage["completion_tokens"], 6 + 6);
    assert_eq!(usage["total_tokens"], 2 + 12);

    let mut body = body;
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let events = sse(&post(&url, &[], &body).await.text);
    let usage = events[events.len() - 2].json()["usage"].clone();
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 6);
}

#[tokio::test]
async fn gemini_include_thoughts_adds_a_thought_part() {
    let server = start().await;
    let base = server.url();
    let body = json!({
        "contents": [{"role": "user", "parts": [{"text": "Say hi"}]}],
        "generationConfig": {"thinkingConfig": {"includeThoughts": true, "thinkingBudget": 1024}}
    });
    let url = format!("{base}/v1beta/models/gemini-2.5-flash:generateContent");
    let v = post(&url, &[], &body).await.json();
    let parts = &v["candidates"][0]["content"]["parts"];
    assert_eq!(
        parts[0],
        json!({"text": "Simulated thinking from gemini-2.5-flash: Say hi", "thought": true})
    );
    assert_eq!(
        parts[1],
        json!({"text": "Simulated answer from gemini-2.5-flash: Say hi"})
    );
    assert_eq!(v["usageMetadata"]["thoughtsTokenCount"], 6);
    assert_eq!(v["usageMetadata"]["candidatesTokenCount"], 6);

    let url = format!("{base}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
    let events = sse(&post(&url, &[], &body).await.text);
    assert_eq!(
        events[0].json()["candidates"][0]["content"]["parts"][0]["thought"],
        true
    );
    let text: String = events[1..]
        .iter()
        .map(|e| {
            e.json()["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(text, "Simulated answer from gemini-2.5-flash: Say hi");
}

#[tokio::test]
async fn json_stream_models_answer_stream_requests_with_json() {
    let server = start().await;
    let base = server.url();
    let url = format!("{base}/v1/chat/completions");
    let body = json!({"model": "llama-json-stream", "stream": true,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Say hi"}]});
    let r = post(&url, &[], &body).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Simulated answer from llama-json-stream: Say hi"
    );
    assert_eq!(v["usage"]["completion_tokens"], 6);
    // Other models still stream.
    let mut streamed = body.clone();
    streamed["model"] = json!("llama");
    let r = post(&url, &[], &streamed).await;
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );

    let url = format!("{base}/v1/messages");
    let body = json!({"model": "claude-json-stream", "max_tokens": 100, "stream": true,
        "messages": [{"role": "user", "content": "Say hi"}]});
    let r = post(&url, &ANTHROPIC, &body).await;
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json()["type"], "message");

    let url = format!("{base}/v1beta/models/gemini-json-stream:streamGenerateContent?alt=sse");
    let body = json!({"contents": [{"parts": [{"text": "Say hi"}]}]});
    let r = post(&url, &[], &body).await;
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(r.json()["candidates"][0]["finishReason"], "STOP");
    // The log still says what was asked.
    assert!(server.sim.requests().iter().all(|r| r.stream));
}

#[tokio::test]
async fn request_log_keeps_query_every_header_and_redacts_credentials() {
    let server = start().await;
    let base = server.url();
    let body = claude_code_request("Hi");
    let headers = [
        CLAUDE_CODE_HEADERS[0],
        CLAUDE_CODE_HEADERS[1],
        CLAUDE_CODE_HEADERS[2],
        ("authorization", "Bearer sk-bearer-secret"),
        ("api-key", "azure-secret"),
        ("x-stainless-lang", "js"),
        ("user-agent", "claude-cli/2.1.0 (external, cli)"),
    ];
    post(&format!("{base}/v1/messages?beta=true"), &headers, &body).await;
    let gemini = format!(
        "{base}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=goog-secret"
    );
    post(
        &gemini,
        &[("x-goog-api-key", "goog-header-secret")],
        &json!({"contents": [{"parts": [{"text": "hi"}]}]}),
    )
    .await;

    let log = get(&format!("{base}/_sim/requests"), &[]).await;
    assert!(!log.text.contains("secret"), "{}", log.text);
    let log = log.json();
    let first = &log[0];
    assert_eq!(first["method"], "POST");
    assert_eq!(first["path"], "/v1/messages?beta=true");
    let h = &first["headers"];
    assert_eq!(h["x-api-key"], "<redacted>");
    assert_eq!(h["authorization"], "<redacted>");
    assert_eq!(h["api-key"], "<redacted>");
    assert_eq!(h["anthropic-beta"], CLAUDE_CODE_HEADERS[1].1);
    assert_eq!(h["x-stainless-lang"], "js");
    assert_eq!(h["user-agent"], "claude-cli/2.1.0 (external, cli)");
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(first["auth_present"], true);
    assert_eq!(first["body"], body);

    let second = &log[1];
    assert_eq!(
        second["path"],
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=<redacted>"
    );
    assert_eq!(second["headers"]["x-goog-api-key"], "<redacted>");
}
