//! Structured output: a request that asks for a JSON schema, in any of the
//! three formats, is answered with a JSON document that satisfies it.

mod common;

use common::{ANTHROPIC, post, sse, start};
use serde_json::{Value, json};

/// What the OpenAI Python SDK sends for `parse(response_format=Plan)` with
/// `class Step(BaseModel): explanation: str; output: int` and
/// `class Plan(BaseModel): title: str; steps: list[Step];
/// kind: Literal["a", "b"]; note: Optional[str]`: `$defs` with `$ref`,
/// an enum, an array of objects and `anyOf` with null.
fn pydantic_plan() -> Value {
    json!({
        "$defs": {
            "Step": {
                "properties": {
                    "explanation": {"title": "Explanation", "type": "string"},
                    "output": {"title": "Output", "type": "integer"}
                },
                "required": ["explanation", "output"],
                "title": "Step",
                "type": "object",
                "additionalProperties": false
            }
        },
        "properties": {
            "title": {"title": "Title", "type": "string"},
            "steps": {"items": {"$ref": "#/$defs/Step"}, "title": "Steps", "type": "array"},
            "kind": {"enum": ["a", "b"], "title": "Kind", "type": "string"},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Note"}
        },
        "required": ["title", "steps", "kind", "note"],
        "title": "Plan",
        "type": "object",
        "additionalProperties": false
    })
}

/// The document the simulator builds for `pydantic_plan`, answering `model`.
fn expected_plan(model: &str) -> Value {
    json!({
        "kind": "a",
        "note": format!("Simulated answer from {model}: Make a plan"),
        "steps": [{"explanation": "sim", "output": 1}],
        "title": "sim"
    })
}

#[expect(clippy::panic, reason = "a test helper: a panic is the failed test")]
fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test]
async fn openai_json_schema_is_answered_with_a_matching_document() {
    let server = start().await;
    let url = format!("{}/v1/chat/completions", server.url());
    let body = json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Make a plan"}],
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "Plan", "schema": pydantic_plan(), "strict": true
        }}
    });
    let r = post(&url, &[], &body).await;
    assert_eq!(r.status, 200);
    let text = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(parse_json(&text), expected_plan("gpt-4o-mini"));

    // Streamed, the chunks join into the same document.
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let r = post(&url, &[], &streamed).await;
    let events = sse(&r.text);
    let joined: String = events[..events.len() - 1]
        .iter()
        .filter_map(|e| {
            e.json()["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(joined, text);
}

#[tokio::test]
async fn openai_json_object_mode_wraps_the_usual_text() {
    let server = start().await;
    let url = format!("{}/v1/chat/completions", server.url());
    let body = json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Make a plan"}],
        "response_format": {"type": "json_object"}
    });
    let v = post(&url, &[], &body).await.json();
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(
        parse_json(text),
        json!({"answer": "Simulated answer from gpt-4o-mini: Make a plan"})
    );
    // `text` is the default: plain text.
    let mut plain = body.clone();
    plain["response_format"] = json!({"type": "text"});
    let v = post(&url, &[], &plain).await.json();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Simulated answer from gpt-4o-mini: Make a plan"
    );
}

#[tokio::test]
async fn anthropic_output_config_format_and_the_beta_output_format() {
    let server = start().await;
    let url = format!("{}/v1/messages", server.url());
    for format_field in [
        json!({"output_config": {"effort": "low", "format": {"type": "json_schema", "schema": pydantic_plan()}}}),
        json!({"output_format": {"type": "json_schema", "schema": pydantic_plan()}}),
    ] {
        let mut body = json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 256,
            "messages": [{"role": "user", "content": "Make a plan"}]
        });
        for (key, value) in format_field.as_object().unwrap() {
            body[key] = value.clone();
        }
        let v = post(&url, &ANTHROPIC, &body).await.json();
        let text = v["content"][0]["text"].as_str().unwrap();
        assert_eq!(
            parse_json(text),
            expected_plan("claude-sonnet-4-5"),
            "{format_field}"
        );
    }
}

#[tokio::test]
async fn gemini_response_json_schema_and_response_schema() {
    let server = start().await;
    let url = format!(
        "{}/v1beta/models/gemini-2.5-flash:generateContent",
        server.url()
    );
    for config in [
        json!({"responseMimeType": "application/json", "responseJsonSchema": pydantic_plan()}),
        // The OpenAPI subset, as Gemini's own SDKs write it.
        json!({"response_mime_type": "application/json", "response_schema": {
            "type": "OBJECT",
            "properties": {"kind": {"type": "STRING", "enum": ["a", "b"]},
                "note": {"type": "STRING", "nullable": true},
                "steps": {"type": "ARRAY", "items": {"type": "OBJECT", "properties": {
                    "explanation": {"type": "STRING"}, "output": {"type": "INTEGER"}}}},
                "title": {"type": "STRING"}}
        }}),
    ] {
        let body = json!({
            "contents": [{"role": "user", "parts": [{"text": "Make a plan"}]}],
            "generationConfig": config
        });
        let v = post(&url, &[("x-goog-api-key", "k")], &body).await.json();
        let text = v["candidates"][0]["content"]["parts"][0]["text"]
            .as_str()
            .unwrap();
        assert_eq!(
            parse_json(text),
            expected_plan("gemini-2.5-flash"),
            "{config}"
        );
    }
    // JSON without a schema.
    let body = json!({
        "contents": [{"role": "user", "parts": [{"text": "Make a plan"}]}],
        "generationConfig": {"responseMimeType": "application/json"}
    });
    let v = post(&url, &[("x-goog-api-key", "k")], &body).await.json();
    let text = v["candidates"][0]["content"]["parts"][0]["text"]
        .as_str()
        .unwrap();
    assert_eq!(
        parse_json(text),
        json!({"answer": "Simulated answer from gemini-2.5-flash: Make a plan"})
    );
}
