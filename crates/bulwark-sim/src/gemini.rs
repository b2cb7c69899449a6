//! Google Gemini generateContent: request reading, responses, SSE streams
//! (`data:` events with CRLF framing as the real API sends, no sentinel), the
//! JSON-array stream used without `alt=sse`, and Google RPC error bodies.

use serde_json::{Value, json};

use crate::answer::{Answer, Finish, Output, Prompt, ToolChoice, ToolDecl, stream_tokens};
use crate::stream::Frame;
use crate::wire::{Ctx, ErrorSpec, Invalid, string_list, text_of};

/// Quota id used for 429s unless the fault names another.
const DEFAULT_QUOTA_ID: &str = "GenerateRequestsPerMinutePerProjectPerModel-FreeTier";

/// Accept both the camelCase wire names and the snake_case the REST API also takes.
fn field<'a>(v: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    v.get(camel).or_else(|| v.get(snake))
}

fn parts(content: &Value) -> Vec<&Value> {
    content
        .get("parts")
        .and_then(Value::as_array)
        .map(|p| p.iter().collect())
        .unwrap_or_default()
}

fn is_image(part: &Value) -> bool {
    ["inlineData", "inline_data", "fileData", "file_data"]
        .iter()
        .filter_map(|k| part.get(*k))
        .filter_map(|d| field(d, "mimeType", "mime_type").and_then(Value::as_str))
        .any(|m| m.starts_with("image/"))
}

fn function_response(part: &Value) -> Option<String> {
    field(part, "functionResponse", "function_response")
        .map(|r| r.get("response").map(Value::to_string).unwrap_or_default())
}

/// Read a request body into a prompt; the model comes from the path.
pub(crate) fn parse(body: &Value, model: &str) -> Result<Prompt, Invalid> {
    let contents = body
        .get("contents")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            Invalid::new("* GenerateContentRequest.contents: contents is not specified")
        })?;
    let config = field(body, "generationConfig", "generation_config").unwrap_or(&Value::Null);
    let max_tokens = match field(config, "maxOutputTokens", "max_output_tokens") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            Invalid::new("* GenerateContentRequest.generation_config.max_output_tokens: must be a non-negative integer")
        })?),
    };
    let mut prompt = Prompt {
        model: model.to_string(),
        max_tokens,
        stop: string_list(field(config, "stopSequences", "stop_sequences")),
        ..Prompt::default()
    };
    if let Some(system) = field(body, "systemInstruction", "system_instruction") {
        prompt
            .texts
            .push(text_of(system.get("parts").unwrap_or(&Value::Null)));
    }
    for content in contents {
        prompt
            .texts
            .push(text_of(content.get("parts").unwrap_or(&Value::Null)));
        for part in parts(content) {
            if let Some(call) = field(part, "functionCall", "function_call") {
                prompt
                    .texts
                    .push(call.get("args").map(Value::to_string).unwrap_or_default());
            }
            if let Some(resp) = function_response(part) {
                prompt.texts.push(resp);
            }
        }
    }
    if let Some(last) = contents.last() {
        let role = last.get("role").and_then(Value::as_str).unwrap_or("user");
        prompt.last_is_user = role == "user";
        let last_parts = parts(last);
        let results: Vec<String> = last_parts
            .iter()
            .filter_map(|p| function_response(p))
            .collect();
        if !results.is_empty() {
            prompt.tool_results = Some(results);
        } else if prompt.last_is_user {
            prompt.last_user_text = text_of(last.get("parts").unwrap_or(&Value::Null));
            prompt.images = last_parts.iter().filter(|p| is_image(p)).count();
        }
    }
    prompt.tools = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| field(t, "functionDeclarations", "function_declarations"))
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|d| {
            Some(ToolDecl {
                name: d.get("name")?.as_str()?.to_string(),
                schema: d
                    .get("parameters")
                    .or_else(|| field(d, "parametersJsonSchema", "parameters_json_schema"))
                    .cloned()
                    .unwrap_or(Value::Null),
            })
        })
        .collect();
    let calling = field(body, "toolConfig", "tool_config")
        .and_then(|c| field(c, "functionCallingConfig", "function_calling_config"))
        .unwrap_or(&Value::Null);
    let allowed = field(calling, "allowedFunctionNames", "allowed_function_names")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str);
    prompt.tool_choice = match (calling.get("mode").and_then(Value::as_str), allowed) {
        (Some("NONE"), _) => ToolChoice::None,
        (_, Some(name)) => ToolChoice::Named(name.to_string()),
        (Some("ANY"), None) => ToolChoice::Required,
        _ => ToolChoice::Auto,
    };
    prompt.thinking = field(config, "thinkingConfig", "thinking_config")
        .and_then(|t| field(t, "includeThoughts", "include_thoughts"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let budget = field(config, "thinkingConfig", "thinking_config")
        .and_then(|t| field(t, "thinkingBudget", "thinking_budget"))
        .and_then(Value::as_i64);
    if let (Some(budget), Some((min, max))) = (budget, budget_range(model)) {
        // -1 asks the model to decide; 0 turns thinking off, which every
        // family but Pro allows.
        let off = budget == 0 && !model.starts_with("gemini-2.5-pro");
        if budget != -1 && !off && !(min..=max).contains(&budget) {
            return Err(Invalid::new(format!(
                "* GenerateContentRequest.generation_config.thinking_config.thinking_budget: The thinking budget {budget} is invalid. Please choose a value between {min} and {max}."
            )));
        }
    }
    let json = field(config, "responseMimeType", "response_mime_type")
        .and_then(Value::as_str)
        .is_some_and(|m| m == "application/json");
    prompt.output = json.then(|| {
        field(config, "responseJsonSchema", "response_json_schema")
            .or_else(|| field(config, "responseSchema", "response_schema"))
            .map_or(Output::JsonObject, |schema| Output::Schema(schema.clone()))
    });
    Ok(prompt)
}

/// The `thinkingBudget` range of a Gemini model family, per Google's
/// thinking guide (ai.google.dev/gemini-api/docs/thinking); Bulwark's
/// `wire::translate` keeps the same numbers for what it sends.
fn budget_range(model: &str) -> Option<(i64, i64)> {
    const RANGES: [(&str, (i64, i64)); 3] = [
        ("gemini-2.5-pro", (128, 32768)),
        ("gemini-2.5-flash-lite", (512, 24576)),
        ("gemini-2.5-flash", (0, 24576)),
    ];
    RANGES
        .iter()
        .find(|(prefix, _)| model.starts_with(prefix))
        .map(|(_, range)| *range)
}

fn finish_reason(finish: &Finish) -> &'static str {
    match finish {
        Finish::Length => "MAX_TOKENS",
        Finish::Stop | Finish::StopSequence(_) | Finish::ToolUse => "STOP",
    }
}

fn response_id(ctx: &Ctx) -> String {
    format!("sim{}", ctx.hex_id(0))
}

/// Thoughts are counted apart from the candidates, as Gemini reports them.
fn full_usage(answer: &Answer) -> Value {
    let mut usage = json!({
        "promptTokenCount": answer.input_tokens,
        "candidatesTokenCount": answer.output_tokens,
        "totalTokenCount": answer.input_tokens + answer.billed_output_tokens(),
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": answer.input_tokens}]
    });
    if answer.thinking.is_some() {
        usage["thoughtsTokenCount"] = Value::from(answer.thinking_tokens);
    }
    usage
}

fn thought_part(answer: &Answer) -> Option<Value> {
    answer
        .thinking
        .as_ref()
        .map(|thinking| json!({"text": thinking, "thought": true}))
}

fn answer_part(answer: &Answer) -> Value {
    match &answer.tool_call {
        Some(call) => json!({"functionCall": {"name": call.name, "args": call.arguments}}),
        None => json!({"text": answer.text}),
    }
}

fn content_parts(answer: &Answer) -> Value {
    Value::Array(
        thought_part(answer)
            .into_iter()
            .chain([answer_part(answer)])
            .collect(),
    )
}

fn envelope(ctx: &Ctx, candidate: Value, usage: Value) -> Value {
    json!({
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": ctx.model,
        "responseId": response_id(ctx)
    })
}

/// Non-streaming `GenerateContentResponse`.
pub(crate) fn response(ctx: &Ctx, answer: &Answer) -> Value {
    envelope(
        ctx,
        json!({
            "content": {"parts": content_parts(answer), "role": "model"},
            "finishReason": finish_reason(&answer.finish),
            "index": 0
        }),
        full_usage(answer),
    )
}

/// One response object per word; the last carries `finishReason` and the
/// full `usageMetadata`. Function calls arrive whole in a single chunk, and
/// so does a thought, before the answer.
fn stream_objects(ctx: &Ctx, answer: &Answer) -> Vec<Value> {
    let mut pieces: Vec<Value> = thought_part(answer)
        .map(|part| json!([part]))
        .into_iter()
        .collect();
    if answer.tool_call.is_some() {
        pieces.push(json!([answer_part(answer)]));
    } else {
        let tokens = stream_tokens(&answer.text);
        if tokens.is_empty() {
            pieces.push(json!([{"text": ""}]));
        } else {
            pieces.extend(tokens.into_iter().map(|t| json!([{"text": t}])));
        }
    }
    let last = pieces.len() - 1;
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, parts)| {
            let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
            let usage = if i == last {
                candidate["finishReason"] = Value::from(finish_reason(&answer.finish));
                full_usage(answer)
            } else {
                json!({"promptTokenCount": answer.input_tokens, "totalTokenCount": answer.input_tokens})
            };
            envelope(ctx, candidate, usage)
        })
        .collect()
}

/// Frames for `alt=sse` (data events, CRLF framing) or, without it, a JSON
/// array written element by element.
pub(crate) fn stream_frames(ctx: &Ctx, answer: &Answer, sse: bool) -> Vec<Frame> {
    let objects = stream_objects(ctx, answer);
    if sse {
        return objects
            .iter()
            .map(|o| Frame::paced(format!("data: {o}\r\n\r\n")))
            .collect();
    }
    let mut frames: Vec<Frame> = objects
        .iter()
        .enumerate()
        .map(|(i, o)| Frame::paced(format!("{}{o}", if i == 0 { "[" } else { ",\r\n" })))
        .collect();
    frames.push(Frame::immediate("]"));
    frames
}

fn default_status(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        502 | 503 | 529 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        500..=599 => "INTERNAL",
        _ => "FAILED_PRECONDITION",
    }
}

fn default_message(status: &str, spec: &ErrorSpec) -> String {
    match status {
        "INVALID_ARGUMENT" => "Request contains an invalid argument.".into(),
        "UNAUTHENTICATED" => "API key not valid. Please pass a valid API key.".into(),
        "PERMISSION_DENIED" => "The caller does not have permission".into(),
        "NOT_FOUND" => format!(
            "models/{} is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods.",
            spec.model
        ),
        "RESOURCE_EXHAUSTED" => "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.".into(),
        "UNAVAILABLE" => "The model is overloaded. Please try again later.".into(),
        "DEADLINE_EXCEEDED" => "Deadline expired before operation could complete.".into(),
        "INTERNAL" => "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting".into(),
        _ => "The request failed.".into(),
    }
}

/// 429 details: a QuotaFailure and, unless the quota is a daily one with no
/// explicit hint, a RetryInfo.
fn quota_details(spec: &ErrorSpec) -> Vec<Value> {
    let quota_id = spec.quota_id.as_deref().unwrap_or(DEFAULT_QUOTA_ID);
    let metric = if quota_id.contains("PerDay") {
        "generativelanguage.googleapis.com/generate_content_free_tier_requests_per_day"
    } else {
        "generativelanguage.googleapis.com/generate_content_free_tier_requests"
    };
    let mut details = vec![
        json!({
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{
                "quotaMetric": metric,
                "quotaId": quota_id,
                "quotaDimensions": {"location": "global", "model": spec.model},
                "quotaValue": "10"
            }]
        }),
        json!({
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{"description": "Learn more about Gemini API quotas",
                "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]
        }),
    ];
    let delay = match (spec.retry_delay_secs, quota_id.contains("PerDay")) {
        (Some(secs), _) => Some(secs),
        (None, false) => Some(1),
        (None, true) => None,
    };
    if let Some(secs) = delay {
        details.push(json!({
            "@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": format!("{secs}s")
        }));
    }
    details
}

/// `{"error": {code, message, status, details?}}`; `details` only where the
/// real API sends them (429 quota info, auth ErrorInfo).
pub(crate) fn error_body(spec: &ErrorSpec) -> Value {
    let status = spec
        .error_type
        .clone()
        .unwrap_or_else(|| default_status(spec.status).to_string());
    let message = spec
        .message
        .clone()
        .unwrap_or_else(|| default_message(&status, spec));
    let mut error = json!({"code": spec.status, "message": message, "status": status});
    let details = match spec.status {
        429 => quota_details(spec),
        401 => vec![json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"}
        })],
        _ => Vec::new(),
    };
    if !details.is_empty() {
        error["details"] = Value::Array(details);
    }
    json!({ "error": error })
}

/// An error object sent as a data event inside a 200 stream.
pub(crate) fn error_frame(spec: &ErrorSpec, sse: bool) -> String {
    let body = error_body(spec);
    if sse {
        format!("data: {body}\r\n\r\n")
    } else {
        format!(",\r\n{body}]")
    }
}

/// One entry of the model list.
pub(crate) fn model_entry(id: &str) -> Value {
    json!({
        "name": format!("models/{id}"),
        "version": "001",
        "displayName": id,
        "description": format!("Simulated {id}"),
        "inputTokenLimit": 1_048_576,
        "outputTokenLimit": 65_536,
        "supportedGenerationMethods": ["generateContent", "countTokens"]
    })
}

/// `GET /v1beta/models` body.
pub(crate) fn models(models: &[String]) -> Value {
    json!({"models": models.iter().map(|m| model_entry(m)).collect::<Vec<_>>()})
}
