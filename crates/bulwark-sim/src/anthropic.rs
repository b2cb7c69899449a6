//! Anthropic Messages: request reading, responses, named-event SSE streams
//! (`message_start` … `message_stop`), and `{"type":"error",...}` bodies.

use serde_json::{Value, json};

use crate::answer::{
    Answer, Finish, Output, Prompt, ToolChoice, ToolDecl, fragments, stream_tokens,
};
use crate::stream::Frame;
use crate::wire::{Ctx, ErrorSpec, Invalid, sse_event, string_list, text_of, u64_field};

fn blocks(content: &Value) -> Vec<&Value> {
    content
        .as_array()
        .map(|b| b.iter().collect())
        .unwrap_or_default()
}

fn block_type(block: &Value) -> &str {
    block.get("type").and_then(Value::as_str).unwrap_or("")
}

/// Read a request body into a prompt; `max_tokens` is required as in the real API.
pub(crate) fn parse(body: &Value, model: &str) -> Result<Prompt, Invalid> {
    if model.is_empty() {
        return Err(Invalid::param("model: Field required", "model"));
    }
    let max_tokens = u64_field(body, "max_tokens")?
        .ok_or_else(|| Invalid::param("max_tokens: Field required", "max_tokens"))?;
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| Invalid::param("messages: Field required", "messages"))?;
    let mut prompt = Prompt {
        model: model.to_string(),
        max_tokens: Some(max_tokens),
        stop: string_list(body.get("stop_sequences")),
        ..Prompt::default()
    };
    if let Some(system) = body.get("system") {
        prompt.texts.push(text_of(system));
    }
    for msg in messages {
        let content = msg.get("content").unwrap_or(&Value::Null);
        prompt.texts.push(text_of(content));
        for block in blocks(content) {
            match block_type(block) {
                "tool_use" => prompt
                    .texts
                    .push(block.get("input").map(Value::to_string).unwrap_or_default()),
                "tool_result" => prompt
                    .texts
                    .push(text_of(block.get("content").unwrap_or(&Value::Null))),
                _ => {}
            }
        }
    }
    // A system message may come mid-conversation (Claude Code's beta
    // `mid-conversation-system-2026-04-07`); the turn that asks is the last
    // one of the conversation proper.
    let last = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) != Some("system"));
    if let Some(last) = last
        && last.get("role").and_then(Value::as_str) == Some("user")
    {
        prompt.last_is_user = true;
        let content = last.get("content").unwrap_or(&Value::Null);
        prompt.last_user_text = text_of(content);
        let all = blocks(content);
        prompt.images = all.iter().filter(|b| block_type(b) == "image").count();
        let results: Vec<String> = all
            .iter()
            .filter(|b| block_type(b) == "tool_result")
            .map(|b| text_of(b.get("content").unwrap_or(&Value::Null)))
            .collect();
        if !results.is_empty() {
            prompt.tool_results = Some(results);
        }
    }
    prompt.tools = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some(ToolDecl {
                name: t.get("name")?.as_str()?.to_string(),
                schema: t.get("input_schema").cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    prompt.tool_choice = match body.pointer("/tool_choice/type").and_then(Value::as_str) {
        Some("none") => ToolChoice::None,
        Some("any") => ToolChoice::Required,
        Some("tool") => body
            .pointer("/tool_choice/name")
            .and_then(Value::as_str)
            .map_or(ToolChoice::Auto, |n| ToolChoice::Named(n.to_string())),
        _ => ToolChoice::Auto,
    };
    prompt.thinking = matches!(
        body.pointer("/thinking/type").and_then(Value::as_str),
        Some("enabled" | "adaptive")
    );
    if body.pointer("/thinking/type").and_then(Value::as_str) == Some("enabled") {
        check_thinking(body, max_tokens, messages)?;
    }
    // `output_config.format` is current; the structured-outputs beta sent
    // the same object as top-level `output_format`.
    prompt.output = body
        .pointer("/output_config/format")
        .or_else(|| body.get("output_format"))
        .filter(|f| f.get("type").and_then(Value::as_str) == Some("json_schema"))
        .and_then(|f| f.get("schema"))
        .map(|schema| Output::Schema(schema.clone()));
    Ok(prompt)
}

const THINKING_DOCS: &str = "Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking";

/// Anthropic's rules for a request with `thinking: enabled`, in its words:
/// a budget of at least 1024 below `max_tokens`, no temperature but 1, no
/// top_k, and in a tool loop an assistant turn that starts with thinking.
fn check_thinking(body: &Value, max_tokens: u64, messages: &[Value]) -> Result<(), Invalid> {
    let budget = body
        .pointer("/thinking/budget_tokens")
        .and_then(Value::as_u64)
        .ok_or_else(|| {
            Invalid::param("thinking.enabled.budget_tokens: Field required", "thinking")
        })?;
    if budget < 1024 {
        return Err(Invalid::param(
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
            "thinking",
        ));
    }
    if budget >= max_tokens {
        return Err(Invalid::param(
            format!("`max_tokens` must be greater than `thinking.budget_tokens`. {THINKING_DOCS}"),
            "max_tokens",
        ));
    }
    if body
        .get("temperature")
        .and_then(Value::as_f64)
        .is_some_and(|t| (t - 1.0).abs() > f64::EPSILON)
    {
        return Err(Invalid::param(
            format!("`temperature` may only be set to 1 when thinking is enabled. {THINKING_DOCS}"),
            "temperature",
        ));
    }
    if body.get("top_k").is_some_and(|k| !k.is_null()) {
        return Err(Invalid::param(
            format!("`top_k` must be unset when thinking is enabled. {THINKING_DOCS}"),
            "top_k",
        ));
    }
    let last_assistant = messages
        .iter()
        .enumerate()
        .rev()
        .find(|(_, m)| m.get("role").and_then(Value::as_str) == Some("assistant"));
    if let Some((i, message)) = last_assistant {
        let content = blocks(message.get("content").unwrap_or(&Value::Null));
        let first = content.first().map_or("text", |b| block_type(b));
        let tool_loop = content.iter().any(|b| block_type(b) == "tool_use");
        if tool_loop && !matches!(first, "thinking" | "redacted_thinking") {
            return Err(Invalid::param(
                format!(
                    "messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{first}`. When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks from previous turns. To avoid this requirement, disable `thinking`. {THINKING_DOCS}"
                ),
                "messages",
            ));
        }
    }
    Ok(())
}

fn stop_reason(finish: &Finish) -> (&'static str, Value) {
    match finish {
        Finish::Stop => ("end_turn", Value::Null),
        Finish::Length => ("max_tokens", Value::Null),
        Finish::StopSequence(s) => ("stop_sequence", Value::from(s.as_str())),
        Finish::ToolUse => ("tool_use", Value::Null),
    }
}

fn message_id(ctx: &Ctx) -> String {
    format!("msg_sim{}", ctx.hex_id(0))
}

fn tool_id(ctx: &Ctx) -> String {
    format!("toolu_sim{}", ctx.hex_id(1))
}

/// An opaque signature for a thinking block, derived from its text (FNV-1a)
/// so the same thinking always carries the same signature.
fn signature(thinking: &str) -> String {
    let hash = thinking.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("simsig{hash:016x}")
}

/// Non-streaming `message` body.
pub(crate) fn response(ctx: &Ctx, answer: &Answer) -> Value {
    let mut content = Vec::new();
    if let Some(thinking) = &answer.thinking {
        content.push(json!({
            "type": "thinking", "thinking": thinking, "signature": signature(thinking)
        }));
    }
    content.push(match &answer.tool_call {
        Some(call) => json!({
            "type": "tool_use", "id": tool_id(ctx), "name": call.name, "input": call.arguments
        }),
        None => json!({"type": "text", "text": answer.text}),
    });
    let (reason, sequence) = stop_reason(&answer.finish);
    json!({
        "id": message_id(ctx),
        "type": "message",
        "role": "assistant",
        "model": ctx.model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": {
            "input_tokens": answer.input_tokens,
            "output_tokens": answer.billed_output_tokens(),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard"
        }
    })
}

/// Streaming frames in the real event order, with a `ping` after the first
/// block start. Thinking comes first, as its own block: `thinking_delta`
/// events, then one `signature_delta` before the block stops.
pub(crate) fn stream_frames(ctx: &Ctx, answer: &Answer) -> Vec<Frame> {
    let start = json!({
        "type": "message_start",
        "message": {
            "id": message_id(ctx), "type": "message", "role": "assistant",
            "model": ctx.model, "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {
                "input_tokens": answer.input_tokens, "output_tokens": 1,
                "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                "service_tier": "standard"
            }
        }
    });
    let mut frames = vec![Frame::immediate(sse_event("message_start", &start))];
    let mut index = 0;
    if let Some(thinking) = &answer.thinking {
        let mut deltas: Vec<Frame> = stream_tokens(thinking)
            .into_iter()
            .map(|t| {
                Frame::paced(sse_event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": 0,
                        "delta": {"type": "thinking_delta", "thinking": t}}),
                ))
            })
            .collect();
        deltas.push(Frame::immediate(sse_event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "signature_delta", "signature": signature(thinking)}}),
        )));
        push_block(
            &mut frames,
            0,
            json!({"type": "thinking", "thinking": "", "signature": ""}),
            deltas,
        );
        index = 1;
    }
    let (block, deltas): (Value, Vec<Value>) = match &answer.tool_call {
        Some(call) => (
            json!({"type": "tool_use", "id": tool_id(ctx), "name": call.name, "input": {}}),
            fragments(&call.arguments.to_string())
                .into_iter()
                .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
                .collect(),
        ),
        None => (
            json!({"type": "text", "text": ""}),
            stream_tokens(&answer.text)
                .into_iter()
                .map(|t| json!({"type": "text_delta", "text": t}))
                .collect(),
        ),
    };
    let deltas = deltas
        .into_iter()
        .map(|delta| {
            Frame::paced(sse_event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index, "delta": delta}),
            ))
        })
        .collect();
    push_block(&mut frames, index, block, deltas);
    let (reason, sequence) = stop_reason(&answer.finish);
    frames.push(Frame::immediate(sse_event(
        "message_delta",
        &json!({
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": sequence},
            "usage": {"output_tokens": answer.billed_output_tokens()}
        }),
    )));
    frames.push(Frame::immediate(sse_event(
        "message_stop",
        &json!({"type": "message_stop"}),
    )));
    frames
}

/// One content block: its start (with the `ping` Anthropic sends after the
/// first), its deltas, its stop.
fn push_block(frames: &mut Vec<Frame>, index: usize, block: Value, deltas: Vec<Frame>) {
    frames.push(Frame::immediate(sse_event(
        "content_block_start",
        &json!({"type": "content_block_start", "index": index, "content_block": block}),
    )));
    if index == 0 {
        frames.push(Frame::immediate(sse_event(
            "ping",
            &json!({"type": "ping"}),
        )));
    }
    frames.extend(deltas);
    frames.push(Frame::immediate(sse_event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": index}),
    )));
}

/// The documented status -> error type table.
fn default_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

fn default_message(error_type: &str, spec: &ErrorSpec) -> String {
    match error_type {
        "authentication_error" => "invalid x-api-key".into(),
        "billing_error" => "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.".into(),
        "permission_error" => "Your API key does not have permission to use the specified resource.".into(),
        "not_found_error" => format!("model: {}", spec.model),
        "request_too_large" => "Request exceeds the maximum allowed number of bytes.".into(),
        "rate_limit_error" => "This request would exceed the rate limit for your organization of 4,000 requests per minute. Please try again later.".into(),
        "timeout_error" => "Request timed out".into(),
        "overloaded_error" => "Overloaded".into(),
        "api_error" => "Internal server error".into(),
        _ => "Invalid request".into(),
    }
}

/// `{"type":"error","error":{type,message},"request_id"}`.
pub(crate) fn error_body(spec: &ErrorSpec) -> Value {
    let error_type = spec
        .error_type
        .clone()
        .unwrap_or_else(|| default_type(spec.status).to_string());
    let message = spec
        .message
        .clone()
        .unwrap_or_else(|| default_message(&error_type, spec));
    json!({
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": spec.request_id
    })
}

/// `event: error` as sent inside a 200 stream.
pub(crate) fn error_frame(spec: &ErrorSpec) -> String {
    let mut body = error_body(spec);
    if let Some(map) = body.as_object_mut() {
        map.remove("request_id");
    }
    sse_event("error", &body)
}

fn display_name(id: &str) -> String {
    id.split('-')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `GET /v1/models` body in Anthropic's shape.
pub(crate) fn models(models: &[String]) -> Value {
    let data: Vec<Value> = models
        .iter()
        .map(|m| {
            json!({"type": "model", "id": m, "display_name": display_name(m),
                "created_at": "2025-01-01T00:00:00Z"})
        })
        .collect();
    json!({
        "data": data,
        "has_more": false,
        "first_id": models.first(),
        "last_id": models.last()
    })
}
