//! OpenAI Chat Completions: request reading, responses, data-only SSE
//! streams ending in `data: [DONE]`, and `{"error": {...}}` bodies.

use serde_json::{Value, json};

use crate::answer::{Answer, Finish, Output, Prompt, ToolChoice, ToolDecl, stream_tokens};
use crate::stream::Frame;
use crate::wire::{Ctx, ErrorSpec, Invalid, sse_data, string_list, text_of, u64_field};

/// Whether the client asked for the trailing usage chunk.
pub(crate) fn include_usage(body: &Value) -> bool {
    body.pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Read a request body into a prompt.
pub(crate) fn parse(body: &Value, model: &str) -> Result<Prompt, Invalid> {
    if model.is_empty() {
        return Err(Invalid::new("you must provide a model parameter"));
    }
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| Invalid::param("Missing required parameter: 'messages'.", "messages"))?;
    let mut prompt = Prompt {
        model: model.to_string(),
        ..Prompt::default()
    };
    for msg in messages {
        let role = msg.get("role").and_then(Value::as_str).unwrap_or("");
        let content = msg.get("content").unwrap_or(&Value::Null);
        prompt.texts.push(text_of(content));
        match role {
            "user" => {
                prompt.last_user_text = text_of(content);
                prompt.images = content.as_array().map_or(0, |parts| {
                    parts
                        .iter()
                        .filter(|p| p.get("type").and_then(Value::as_str) == Some("image_url"))
                        .count()
                });
            }
            "assistant" => {
                for call in msg
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(args) = call.pointer("/function/arguments").and_then(Value::as_str)
                    {
                        prompt.texts.push(args.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    let trailing_tools: Vec<String> = messages
        .iter()
        .rev()
        .take_while(|m| {
            matches!(
                m.get("role").and_then(Value::as_str),
                Some("tool" | "function")
            )
        })
        .map(|m| text_of(m.get("content").unwrap_or(&Value::Null)))
        .collect();
    if !trailing_tools.is_empty() {
        prompt.tool_results = Some(trailing_tools.into_iter().rev().collect());
    }
    // System and developer messages may come anywhere; the turn that asks
    // is the last one of the conversation proper.
    prompt.last_is_user = messages
        .iter()
        .rev()
        .filter_map(|m| m.get("role").and_then(Value::as_str))
        .find(|role| !matches!(*role, "system" | "developer"))
        == Some("user");
    prompt.tools = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let f = t.get("function")?;
            Some(ToolDecl {
                name: f.get("name")?.as_str()?.to_string(),
                schema: f.get("parameters").cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    prompt.tool_choice = match body.get("tool_choice") {
        Some(Value::String(s)) if s == "none" => ToolChoice::None,
        Some(Value::String(s)) if s == "required" => ToolChoice::Required,
        Some(obj @ Value::Object(_)) => obj
            .pointer("/function/name")
            .and_then(Value::as_str)
            .map_or(ToolChoice::Auto, |n| ToolChoice::Named(n.to_string())),
        _ => ToolChoice::Auto,
    };
    prompt.max_tokens = match u64_field(body, "max_completion_tokens")? {
        Some(n) => Some(n),
        None => u64_field(body, "max_tokens")?,
    };
    prompt.stop = string_list(body.get("stop"));
    prompt.thinking = match body.get("reasoning_effort") {
        Some(Value::String(effort)) => effort != "none",
        _ => false,
    };
    prompt.output = match body
        .pointer("/response_format/type")
        .and_then(Value::as_str)
    {
        Some("json_schema") => Some(Output::Schema(
            body.pointer("/response_format/json_schema/schema")
                .cloned()
                .unwrap_or_else(|| Value::Object(serde_json::Map::new())),
        )),
        Some("json_object") => Some(Output::JsonObject),
        _ => None,
    };
    Ok(prompt)
}

fn finish_reason(finish: &Finish) -> &'static str {
    match finish {
        Finish::Stop | Finish::StopSequence(_) => "stop",
        Finish::Length => "length",
        Finish::ToolUse => "tool_calls",
    }
}

/// Reasoning stays hidden, as OpenAI keeps it: only its tokens show, in
/// `completion_tokens` and `completion_tokens_details.reasoning_tokens`.
fn usage(answer: &Answer) -> Value {
    let completion = answer.billed_output_tokens();
    json!({
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": completion,
        "total_tokens": answer.input_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": answer.thinking_tokens, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0
        }
    })
}

fn completion_id(ctx: &Ctx) -> String {
    format!("chatcmpl-sim{}", ctx.hex_id(0))
}

fn call_id(ctx: &Ctx) -> String {
    format!("call_sim{}", ctx.hex_id(1))
}

/// Non-streaming `chat.completion` body.
pub(crate) fn response(ctx: &Ctx, answer: &Answer) -> Value {
    let mut message = json!({
        "role": "assistant",
        "content": answer.text,
        "refusal": null,
        "annotations": []
    });
    if let Some(call) = &answer.tool_call {
        message["content"] = Value::Null;
        message["tool_calls"] = json!([{
            "id": call_id(ctx),
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments.to_string()}
        }]);
    }
    json!({
        "id": completion_id(ctx),
        "object": "chat.completion",
        "created": ctx.created,
        "model": ctx.model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(&answer.finish)
        }],
        "usage": usage(answer),
        "service_tier": "default",
        "system_fingerprint": "fp_bulwark_sim"
    })
}

fn chunk(ctx: &Ctx, delta: Value, finish: Option<&str>) -> Value {
    let mut c = json!({
        "id": completion_id(ctx),
        "object": "chat.completion.chunk",
        "created": ctx.created,
        "model": ctx.model,
        "service_tier": "default",
        "system_fingerprint": "fp_bulwark_sim",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
    });
    if ctx.include_usage {
        c["usage"] = Value::Null;
    }
    c
}

/// Streaming frames: role chunk, one chunk per word (or a tool-call header
/// plus argument fragments), finish chunk, optional usage chunk, `[DONE]`.
pub(crate) fn stream_frames(ctx: &Ctx, answer: &Answer) -> Vec<Frame> {
    let mut frames = vec![Frame::immediate(sse_data(&chunk(
        ctx,
        json!({"role": "assistant", "content": "", "refusal": null}),
        None,
    )))];
    if let Some(call) = &answer.tool_call {
        frames.push(Frame::paced(sse_data(&chunk(
            ctx,
            json!({"tool_calls": [{
                "index": 0, "id": call_id(ctx), "type": "function",
                "function": {"name": call.name, "arguments": ""}
            }]}),
            None,
        ))));
        for piece in crate::answer::fragments(&call.arguments.to_string()) {
            frames.push(Frame::paced(sse_data(&chunk(
                ctx,
                json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                None,
            ))));
        }
    } else {
        for token in stream_tokens(&answer.text) {
            frames.push(Frame::paced(sse_data(&chunk(
                ctx,
                json!({"content": token}),
                None,
            ))));
        }
    }
    frames.push(Frame::immediate(sse_data(&chunk(
        ctx,
        json!({}),
        Some(finish_reason(&answer.finish)),
    ))));
    if ctx.include_usage {
        let mut last = chunk(ctx, json!({}), None);
        last["choices"] = json!([]);
        last["usage"] = usage(answer);
        frames.push(Frame::immediate(sse_data(&last)));
    }
    frames.push(Frame::immediate("data: [DONE]\n\n"));
    frames
}

/// `(type, code, message)` defaults per status, from OpenAI's error guide.
fn defaults(spec: &ErrorSpec) -> (&'static str, Option<&'static str>, String) {
    match spec.status {
        400 => ("invalid_request_error", None, "Invalid request.".into()),
        401 => (
            "invalid_request_error",
            Some("invalid_api_key"),
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.".into(),
        ),
        403 => (
            "invalid_request_error",
            Some("unsupported_country_region_territory"),
            "Country, region, or territory not supported".into(),
        ),
        404 => (
            "invalid_request_error",
            Some("model_not_found"),
            format!("The model `{}` does not exist or you do not have access to it.", spec.model),
        ),
        429 if spec.code.as_deref() == Some("insufficient_quota") => (
            "insufficient_quota",
            Some("insufficient_quota"),
            "You exceeded your current quota, please check your plan and billing details.".into(),
        ),
        429 => (
            "requests",
            Some("rate_limit_exceeded"),
            format!("Rate limit reached for {} on requests per min (RPM): Limit 10000, Used 10000, Requested 1. Please try again in 1s.", spec.model),
        ),
        503 => (
            "server_error",
            None,
            "The engine is currently overloaded, please try again later.".into(),
        ),
        500..=599 => (
            "server_error",
            None,
            "The server had an error while processing your request. Sorry about that!".into(),
        ),
        _ => ("invalid_request_error", None, "Request failed.".into()),
    }
}

/// `{"error": {message, type, param, code}}`.
pub(crate) fn error_body(spec: &ErrorSpec) -> Value {
    let (ty, code, message) = defaults(spec);
    // Special-case the context-length code so `code=context_length_exceeded` reads right.
    let message = spec.message.clone().unwrap_or_else(|| {
        if spec.code.as_deref() == Some("context_length_exceeded") {
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens. Please reduce the length of the messages.".into()
        } else {
            message
        }
    });
    json!({
        "error": {
            "message": message,
            "type": spec.error_type.clone().unwrap_or_else(|| ty.to_string()),
            "param": spec.param,
            "code": spec.code.clone().or_else(|| code.map(String::from)),
        }
    })
}

/// The in-stream error OpenAI sends after a 200.
pub(crate) fn error_frame(spec: &ErrorSpec) -> String {
    sse_data(&error_body(spec))
}

/// `GET /v1/models` body.
pub(crate) fn models(models: &[String]) -> Value {
    let data: Vec<Value> = models
        .iter()
        .map(|m| {
            let owner = if m.starts_with("claude") {
                "anthropic"
            } else if m.starts_with("gemini") {
                "google"
            } else {
                "system"
            };
            json!({"id": m, "object": "model", "created": 1_700_000_000u64, "owned_by": owner})
        })
        .collect();
    json!({"object": "list", "data": data})
}
