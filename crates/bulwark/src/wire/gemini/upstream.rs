//! Calling Gemini's `streamGenerateContent`: the request it is sent, its
//! complete answer and its error bodies.

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::api::{
    ChatRequest, ChatResponse, ContentBlock, FinishReason, ImageSource, OutputFormat, Role,
    ToolCall, ToolChoice, Usage, WireFormat,
};
use crate::error::ApiError;
use crate::unary::{Unary, UnaryCall};
use crate::wire::dialect::{Header, StreamDecode, UpstreamDialect};
use crate::wire::json as j;

pub fn encode_request(request: &ChatRequest) -> Result<Value, ApiError> {
    // A Gemini client's own body: the model is in the URL, and the URL asks
    // for the stream, so the body goes as it came.
    if let Some(source) = request
        .source
        .as_ref()
        .filter(|s| s.format == WireFormat::Gemini)
    {
        return Ok(Value::Object(source.body.object()?));
    }
    crate::wire::translate::refused_fields(request, "Gemini")?;
    let (system, first_turn) = crate::wire::leading_system(request);
    crate::wire::refuse_prefill(request, "Gemini")?;
    let mut contents = Vec::with_capacity(request.messages.len());
    for (i, message) in request.messages.iter().enumerate().skip(first_turn) {
        let role = if message.role == Role::Assistant {
            "model"
        } else {
            "user"
        };
        let mut parts = Vec::with_capacity(message.content.len());
        // A later system message goes whole as one marked note.
        let blocks: &[ContentBlock] = if message.role == Role::System {
            parts.push(json!({"text": crate::wire::system_note(message)}));
            &[]
        } else {
            &message.content
        };
        for (k, block) in blocks.iter().enumerate() {
            if matches!(block, ContentBlock::Text(t) if t.is_empty()) {
                continue; // Gemini rejects empty parts
            }
            parts.push(encode_part(
                block,
                request,
                &format!("messages[{i}].content[{k}]"),
            )?);
        }
        if !parts.is_empty() {
            contents.push(json!({"role": role, "parts": parts}));
        }
    }
    let mut body = Map::new();
    if let Some(system) = system {
        body.insert(
            "systemInstruction".into(),
            json!({"parts": [{"text": system}]}),
        );
    }
    body.insert("contents".into(), Value::Array(contents));
    let mut config = Map::new();
    if let Some(t) = request.temperature {
        config.insert("temperature".into(), json!(t));
    }
    if let Some(p) = request.top_p {
        config.insert("topP".into(), json!(p));
    }
    if let Some(k) = request.top_k {
        config.insert("topK".into(), json!(k));
    }
    if let Some(max) = request.max_tokens {
        config.insert("maxOutputTokens".into(), json!(max));
    }
    if !request.stop.is_empty() {
        config.insert("stopSequences".into(), json!(request.stop));
    }
    if let Some(reasoning) = request.reasoning {
        // `translate::prepare` fitted the budget to the model's range.
        config.insert(
            "thinkingConfig".into(),
            json!({"thinkingBudget": reasoning.budget()}),
        );
    }
    match &request.output_format {
        None => {}
        Some(OutputFormat::JsonObject) => {
            config.insert("responseMimeType".into(), json!("application/json"));
        }
        Some(OutputFormat::JsonSchema { schema, .. }) => {
            config.insert("responseMimeType".into(), json!("application/json"));
            // `responseSchema` takes only an OpenAPI subset; this field takes
            // JSON Schema as clients write it (`$defs`, `$ref`, `anyOf`).
            config.insert("responseJsonSchema".into(), schema.clone());
        }
    }
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    if !request.tools.is_empty() {
        let declarations: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                let mut d = Map::new();
                d.insert("name".into(), json!(tool.name));
                if let Some(desc) = &tool.description {
                    d.insert("description".into(), json!(desc));
                }
                // `parameters` takes only an OpenAPI subset of JSON Schema;
                // this field takes tools' schemas as clients write them.
                d.insert("parametersJsonSchema".into(), tool.parameters.clone());
                Value::Object(d)
            })
            .collect();
        body.insert(
            "tools".into(),
            json!([{"functionDeclarations": declarations}]),
        );
    }
    if let Some(choice) = &request.tool_choice {
        let config = match choice {
            ToolChoice::Auto => json!({"mode": "AUTO"}),
            ToolChoice::None => json!({"mode": "NONE"}),
            ToolChoice::Required => json!({"mode": "ANY"}),
            ToolChoice::Tool(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
        };
        body.insert(
            "toolConfig".into(),
            json!({"functionCallingConfig": config}),
        );
    }
    Ok(Value::Object(body))
}

fn encode_part(block: &ContentBlock, request: &ChatRequest, path: &str) -> Result<Value, ApiError> {
    Ok(match block {
        ContentBlock::Text(text) => json!({"text": text}),
        ContentBlock::Image(ImageSource::Base64 { media_type, data }) => {
            json!({"inlineData": {"mimeType": media_type, "data": data}})
        }
        ContentBlock::Image(ImageSource::Url(_)) => {
            return Err(ApiError::invalid_param(
                path,
                "Gemini accepts images only as inline base64 data, not by URL; send the image as a data: URL (base64) to use this route",
            ));
        }
        ContentBlock::ToolUse(call) => {
            json!({"functionCall": {"name": call.name, "args": call.input}})
        }
        ContentBlock::ToolResult(result) => {
            // Gemini matches a result to its call by function name, not id.
            let name = tool_name_for(request, &result.tool_use_id).ok_or_else(|| {
                ApiError::invalid_param(
                    path,
                    format!(
                        "tool result `{}` answers no tool call earlier in the conversation; Gemini needs the call to know the function's name",
                        result.tool_use_id
                    ),
                )
            })?;
            let mut text = String::new();
            for part in &result.content {
                match part {
                    ContentBlock::Text(t) => text.push_str(t),
                    _ => {
                        return Err(ApiError::invalid_param(
                            path,
                            "Gemini tool results carry text only",
                        ));
                    }
                }
            }
            let key = if result.is_error { "error" } else { "content" };
            json!({"functionResponse": {"name": name, "response": {key: text}}})
        }
    })
}

fn tool_name_for<'a>(request: &'a ChatRequest, id: &str) -> Option<&'a str> {
    request
        .messages
        .iter()
        .flat_map(|m| &m.content)
        .find_map(|b| match b {
            ContentBlock::ToolUse(call) if call.id == id => Some(call.name.as_str()),
            _ => None,
        })
}

pub fn decode_response(body: &[u8]) -> Result<ChatResponse, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let mut content = Vec::new();
    let mut calls = 0;
    let finish = match value.get("candidates").and_then(|c| c.get(0)) {
        Some(candidate) => {
            for part in parts_of(candidate) {
                if let Some(text) = j::get_str(part, "text") {
                    if part.get("thought").and_then(Value::as_bool) != Some(true) {
                        content.push(ContentBlock::Text(text.to_string()));
                    }
                } else if let Some(call) = part.get("functionCall") {
                    calls += 1;
                    content.push(ContentBlock::ToolUse(decode_call(call, calls)));
                }
            }
            let reason = j::get_str(candidate, "finishReason").unwrap_or("STOP");
            if failed_tool_call(reason) {
                return Err(format!(
                    "Gemini failed to produce a valid tool call ({reason})"
                ));
            }
            decode_finish(reason, calls > 0)
        }
        // A blocked prompt is a 200 with feedback and no candidates.
        None if value
            .get("promptFeedback")
            .and_then(|f| f.get("blockReason"))
            .is_some() =>
        {
            FinishReason::ContentFilter
        }
        None => return Err("the response has no candidates".into()),
    };
    Ok(ChatResponse {
        id: j::get_str(&value, "responseId")
            .unwrap_or("gemini-bulwark")
            .to_string(),
        model: j::get_str(&value, "modelVersion")
            .unwrap_or_default()
            .to_string(),
        content,
        finish_reason: finish,
        stop_sequence: None,
        usage: value
            .get("usageMetadata")
            .map(decode_usage)
            .unwrap_or_default(),
        created: crate::api::unix_now(),
    })
}

pub(super) fn parts_of(candidate: &Value) -> &[Value] {
    candidate
        .get("content")
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Gemini calls may lack ids; the other formats need one to pair results.
pub(super) fn decode_call(call: &Value, ordinal: usize) -> ToolCall {
    let name = j::get_str(call, "name").unwrap_or_default().to_string();
    ToolCall {
        id: j::get_str(call, "id")
            .map(str::to_string)
            .unwrap_or_else(|| format!("call_{name}_{ordinal}")),
        name,
        input: call.get("args").cloned().unwrap_or_else(|| json!({})),
    }
}

/// Thinking tokens are output the caller pays for, so they count as output.
pub(super) fn decode_usage(usage: &Value) -> Usage {
    Usage {
        input_tokens: j::get_u64(usage, "promptTokenCount"),
        output_tokens: j::get_u64(usage, "candidatesTokenCount")
            + j::get_u64(usage, "thoughtsTokenCount"),
    }
}

pub(super) fn decode_finish(reason: &str, called_tools: bool) -> FinishReason {
    match FinishReason::from_name(WireFormat::Gemini, reason) {
        Some(FinishReason::Stop) if called_tools => FinishReason::ToolUse,
        Some(reason) => reason,
        // Every other reason (SAFETY, RECITATION, BLOCKLIST...) is a block.
        None => FinishReason::ContentFilter,
    }
}

/// Finish reasons that mean the model failed to produce a usable tool call:
/// the answer is broken, not finished, and another attempt may succeed.
pub(super) fn failed_tool_call(reason: &str) -> bool {
    matches!(
        reason,
        "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" | "TOO_MANY_TOOL_CALLS"
    )
}

/// Reads a Google RPC error body: (message, status). A per-day quota shows in
/// the details and is reported as `{status}:PerDay`, since it will not clear
/// by waiting a few seconds.
pub fn decode_error(body: &Value) -> (Option<String>, Option<String>) {
    let error = body.get("error").unwrap_or(body);
    let message = j::get_str(error, "message").map(str::to_string);
    let mut status = j::get_str(error, "status").map(str::to_string);
    let per_day = error
        .get("details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|d| {
            d.get("violations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .any(|v| j::get_str(v, "quotaId").is_some_and(|q| q.contains("PerDay")));
    if per_day {
        status = Some(format!("{}:PerDay", status.unwrap_or_default()));
    }
    (message, status)
}

/// The server's `RetryInfo.retryDelay` (e.g. `"41s"`), Gemini's Retry-After.
pub fn retry_delay(body: &Value) -> Option<Duration> {
    let details = body.get("error")?.get("details")?.as_array()?;
    details.iter().find_map(|d| {
        let delay = j::get_str(d, "retryDelay")?;
        let seconds: f64 = delay.strip_suffix('s')?.parse().ok()?;
        Duration::try_from_secs_f64(seconds).ok()
    })
}

/// The upstream dialect of the `gemini` provider kind.
#[derive(Debug, Clone, Copy)]
pub struct Upstream;

/// Gemini puts the model in the URL path: a crafted name must not be able
/// to reach another endpoint with the gateway's key.
pub(super) fn safe_model(model: &str) -> Result<&str, ApiError> {
    if model
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
    {
        return Ok(model);
    }
    Err(ApiError::invalid_param(
        "model",
        format!("`{model}` is not a valid Gemini model name (letters, digits, `-`, `.`, `_`)"),
    ))
}

impl UpstreamDialect for Upstream {
    fn format(&self) -> WireFormat {
        WireFormat::Gemini
    }

    fn kind_name(&self) -> &'static str {
        "gemini"
    }

    fn semconv_name(&self) -> &'static str {
        "gcp.gemini"
    }

    fn default_base_url(&self) -> Option<&'static str> {
        Some("https://generativelanguage.googleapis.com")
    }

    fn url(&self, base_url: &str, model: &str) -> Result<String, ApiError> {
        Ok(format!(
            "{base_url}/v1beta/models/{}:streamGenerateContent?alt=sse",
            safe_model(model)?
        ))
    }

    fn embeds(&self) -> bool {
        true
    }

    fn unary<'a>(
        &self,
        operation: &'a Unary,
        base_url: &str,
        model: &str,
    ) -> Option<Result<UnaryCall<'a>, ApiError>> {
        match operation {
            Unary::Embeddings(request) => super::embed::call(base_url, model, request),
            Unary::CountTokens(_) => None,
        }
    }

    fn headers(&self, key: Option<&str>) -> Vec<Header> {
        key.map(|key| Header {
            name: "x-goog-api-key",
            value: key.to_string(),
            secret: true,
        })
        .into_iter()
        .collect()
    }

    fn encode_request(
        &self,
        request: &ChatRequest,
        _model: &str,
        _default_max_tokens: u32,
    ) -> Result<Value, ApiError> {
        encode_request(request)
    }

    fn stream_decoder(&self) -> Box<dyn StreamDecode> {
        Box::new(super::StreamDecoder::new())
    }

    fn decode_response(&self, body: &[u8]) -> Result<ChatResponse, String> {
        decode_response(body)
    }

    fn decode_error(&self, body: &Value) -> (Option<String>, Option<String>) {
        decode_error(body)
    }

    fn retry_hint(&self, body: &Value) -> Option<Duration> {
        retry_delay(body)
    }
}
