//! Calling Anthropic: the request it is sent, its complete answer and its
//! error bodies.

use serde_json::{Map, Value, json};

use crate::api::{
    ChatRequest, ChatResponse, ContentBlock, FinishReason, ImageSource, OutputFormat, Reasoning,
    Role, ToolCall, ToolChoice, Usage, WireFormat,
};
use crate::error::ApiError;
use crate::unary::{Unary, UnaryCall};
use crate::wire::dialect::{Header, StreamDecode, UpstreamDialect};
use crate::wire::json as j;

/// The API version Bulwark speaks to Anthropic.
pub const API_VERSION: &str = "2023-06-01";

pub fn encode_request(
    request: &ChatRequest,
    model: &str,
    default_max_tokens: u32,
) -> Result<Value, ApiError> {
    if let Some(source) = request
        .source
        .as_ref()
        .filter(|s| s.format == WireFormat::Anthropic)
    {
        let mut body = source.body.object()?;
        body.insert("model".into(), json!(model));
        body.insert("stream".into(), json!(true));
        return Ok(Value::Object(body));
    }
    crate::wire::translate::refused_fields(request, "Anthropic")?;
    let (system, first_turn) = crate::wire::leading_system(request);
    let mut messages = Vec::with_capacity(request.messages.len());
    for message in &request.messages[first_turn..] {
        let role = match message.role {
            Role::Assistant => "assistant",
            _ => "user",
        };
        // Anthropic rejects empty text blocks, which OpenAI clients send
        // beside tool calls.
        let content: Vec<Value> = if message.role == Role::System {
            vec![json!({"type": "text", "text": crate::wire::system_note(message)})]
        } else {
            message
                .content
                .iter()
                .filter(|b| !matches!(b, ContentBlock::Text(t) if t.is_empty()))
                .map(encode_block)
                .collect()
        };
        if !content.is_empty() {
            messages.push(json!({"role": role, "content": content}));
        }
    }
    let max_tokens = request.max_tokens.unwrap_or(default_max_tokens);
    // `translate::prepare` sized the budget and left out what Anthropic
    // refuses beside thinking.
    let thinking = request.reasoning.map(Reasoning::budget);
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("max_tokens".into(), json!(max_tokens));
    if let Some(budget) = thinking {
        body.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": budget}),
        );
    }
    if let Some(user) = &request.user {
        body.insert("metadata".into(), json!({"user_id": user}));
    }
    if let Some(system) = system {
        body.insert("system".into(), json!(system));
    }
    body.insert("messages".into(), Value::Array(messages));
    if let Some(t) = request.temperature {
        if !(0.0..=1.0).contains(&t) {
            return Err(ApiError::invalid_param(
                "temperature",
                format!(
                    "temperature {t} is outside Anthropic's range 0 to 1; send a value in that range to use this route"
                ),
            ));
        }
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = request.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if let Some(k) = request.top_k {
        body.insert("top_k".into(), json!(k));
    }
    if !request.stop.is_empty() {
        body.insert("stop_sequences".into(), json!(request.stop));
    }
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                let mut t = Map::new();
                t.insert("name".into(), json!(tool.name));
                if let Some(d) = &tool.description {
                    t.insert("description".into(), json!(d));
                }
                t.insert("input_schema".into(), tool.parameters.clone());
                Value::Object(t)
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    let one_call = request.parallel_tool_calls == Some(false) && !request.tools.is_empty();
    let choice = match &request.tool_choice {
        None if one_call => Some(json!({"type": "auto"})),
        None => None,
        Some(ToolChoice::Auto) => Some(json!({"type": "auto"})),
        Some(ToolChoice::None) => Some(json!({"type": "none"})),
        Some(ToolChoice::Required) => Some(json!({"type": "any"})),
        Some(ToolChoice::Tool(name)) => Some(json!({"type": "tool", "name": name})),
    };
    if let Some(mut choice) = choice {
        if one_call {
            choice["disable_parallel_tool_use"] = json!(true);
        }
        body.insert("tool_choice".into(), choice);
    }
    // JSON mode without a schema has no Anthropic form: `prepare` leaves it
    // out and reports it before a request gets here.
    if let Some(OutputFormat::JsonSchema { schema, .. }) = &request.output_format {
        body.insert(
            "output_config".into(),
            json!({"format": {"type": "json_schema", "schema": schema}}),
        );
    }
    body.insert("stream".into(), json!(true));
    Ok(Value::Object(body))
}

pub(super) fn encode_block(block: &ContentBlock) -> Value {
    match block {
        ContentBlock::Text(text) => json!({"type": "text", "text": text}),
        ContentBlock::Image(ImageSource::Base64 { media_type, data }) => {
            json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}})
        }
        ContentBlock::Image(ImageSource::Url(url)) => {
            json!({"type": "image", "source": {"type": "url", "url": url}})
        }
        ContentBlock::ToolUse(call) => {
            json!({"type": "tool_use", "id": call.id, "name": call.name, "input": call.input})
        }
        ContentBlock::ToolResult(result) => {
            let content: Vec<Value> = result.content.iter().map(encode_block).collect();
            let mut block = json!({"type": "tool_result", "tool_use_id": result.tool_use_id, "content": content});
            if result.is_error {
                block["is_error"] = json!(true);
            }
            block
        }
    }
}

pub fn decode_response(body: &[u8]) -> Result<ChatResponse, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let blocks = value
        .get("content")
        .and_then(Value::as_array)
        .ok_or("the response has no content")?;
    let mut content = Vec::with_capacity(blocks.len());
    for block in blocks {
        match j::get_str(block, "type") {
            Some("text") => content.push(ContentBlock::Text(
                j::get_str(block, "text").unwrap_or_default().to_string(),
            )),
            Some("tool_use") => content.push(ContentBlock::ToolUse(ToolCall {
                id: j::get_str(block, "id").unwrap_or_default().to_string(),
                name: j::get_str(block, "name").unwrap_or_default().to_string(),
                input: block.get("input").cloned().unwrap_or_else(|| json!({})),
            })),
            _ => {} // thinking and server-tool blocks have no neutral form
        }
    }
    let usage = value.get("usage").map(decode_usage).unwrap_or_default();
    Ok(ChatResponse {
        id: j::get_str(&value, "id")
            .unwrap_or("msg_bulwark")
            .to_string(),
        model: j::get_str(&value, "model").unwrap_or_default().to_string(),
        content,
        finish_reason: decode_stop(j::get_str(&value, "stop_reason").unwrap_or("end_turn")),
        stop_sequence: j::get_str(&value, "stop_sequence").map(str::to_string),
        usage,
        created: crate::api::unix_now(),
    })
}

/// Total input counts cache writes and reads too; they are input all the same.
pub(super) fn decode_usage(usage: &Value) -> Usage {
    Usage {
        input_tokens: j::get_u64(usage, "input_tokens")
            + j::get_u64(usage, "cache_creation_input_tokens")
            + j::get_u64(usage, "cache_read_input_tokens"),
        output_tokens: j::get_u64(usage, "output_tokens"),
    }
}

pub(super) fn decode_stop(reason: &str) -> FinishReason {
    FinishReason::from_name(WireFormat::Anthropic, reason).unwrap_or(FinishReason::Stop)
}

/// Reads an error body from Anthropic: (message, error type).
pub fn decode_error(body: &Value) -> (Option<String>, Option<String>) {
    let error = body.get("error").unwrap_or(body);
    (
        j::get_str(error, "message").map(str::to_string),
        j::get_str(error, "type").map(str::to_string),
    )
}

/// The upstream dialect of the `anthropic` provider kind.
#[derive(Debug, Clone, Copy)]
pub struct Upstream;

impl UpstreamDialect for Upstream {
    fn format(&self) -> WireFormat {
        WireFormat::Anthropic
    }

    fn kind_name(&self) -> &'static str {
        "anthropic"
    }

    fn semconv_name(&self) -> &'static str {
        "anthropic"
    }

    fn default_base_url(&self) -> Option<&'static str> {
        Some("https://api.anthropic.com")
    }

    fn url(&self, base_url: &str, _model: &str) -> Result<String, ApiError> {
        Ok(format!("{base_url}/v1/messages"))
    }

    /// A count goes to the Messages API's own endpoint, the client's body
    /// passed through but for the model.
    fn unary<'a>(
        &self,
        operation: &'a Unary,
        base_url: &str,
        model: &str,
    ) -> Option<Result<UnaryCall<'a>, ApiError>> {
        match operation {
            Unary::CountTokens(request) => {
                let model = model.to_string();
                Some(Ok(UnaryCall::single(
                    format!("{base_url}/v1/messages/count_tokens"),
                    move || crate::unary::with_model(&request.body, &model),
                    crate::unary::count_tokens::check_answer,
                )))
            }
            Unary::Embeddings(_) => None,
        }
    }

    fn headers(&self, key: Option<&str>) -> Vec<Header> {
        let mut headers: Vec<Header> = key
            .map(|key| Header {
                name: "x-api-key",
                value: key.to_string(),
                secret: true,
            })
            .into_iter()
            .collect();
        headers.push(Header {
            name: "anthropic-version",
            value: API_VERSION.to_string(),
            secret: false,
        });
        headers
    }

    fn encode_request(
        &self,
        request: &ChatRequest,
        model: &str,
        default_max_tokens: u32,
    ) -> Result<Value, ApiError> {
        encode_request(request, model, default_max_tokens)
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

    fn continues_prefill(&self) -> bool {
        true
    }
}
