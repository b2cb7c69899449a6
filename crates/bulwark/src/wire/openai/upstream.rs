//! Calling an OpenAI-format provider: the request it is sent, its complete
//! answer and its error bodies.

use serde_json::{Map, Value, json};

use crate::api::{
    ChatRequest, ChatResponse, ContentBlock, FinishReason, ImageSource, Message, OutputFormat,
    Role, ToolCall, ToolChoice, Usage, WireFormat,
};
use crate::error::ApiError;
use crate::unary::{Unary, UnaryCall};
use crate::wire::dialect::{Header, StreamDecode, UpstreamDialect};
use crate::wire::json as j;

/// Which flavour of the format a provider speaks: the upstream dialect of
/// the `openai` and `openai-compatible` provider kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// OpenAI itself: `max_completion_tokens`, no `top_k`.
    OpenAi,
    /// Compatible servers: `max_tokens` is the field they all accept, and most
    /// take `top_k` as an extension.
    Compatible,
    /// Azure OpenAI: OpenAI's body (its o-series and gpt-5 deployments refuse
    /// `max_tokens`, and it refuses unknown arguments such as `top_k`), but
    /// no Responses API on the deployment paths. `provider::cloud::azure`
    /// adapts the body to older API versions.
    Azure,
}

/// The schema name sent when the client's format names none.
const DEFAULT_SCHEMA_NAME: &str = "response";

/// Encodes a request for an OpenAI-format provider.
pub fn encode_request(
    request: &ChatRequest,
    model: &str,
    flavor: Upstream,
) -> Result<Value, ApiError> {
    if let Some(source) = request
        .source
        .as_ref()
        .filter(|s| s.format == WireFormat::OpenAi)
    {
        let mut body = source.body.object()?;
        body.insert("model".into(), Value::String(model.to_string()));
        // Compatible servers know the older name of the output limit.
        if flavor == Upstream::Compatible
            && !body.contains_key("max_tokens")
            && let Some(max) = body.remove("max_completion_tokens")
        {
            body.insert("max_tokens".into(), max);
        }
        // Bulwark always streams from providers (see `Provider::stream`), and
        // needs usage for accounting whether or not the client asked.
        body.insert("stream".into(), Value::Bool(true));
        body.insert("stream_options".into(), json!({"include_usage": true}));
        return Ok(Value::Object(body));
    }
    crate::wire::translate::refused_fields(request, "OpenAI")?;
    crate::wire::refuse_prefill(request, "OpenAI")?;
    let mut messages = Vec::with_capacity(request.messages.len());
    for message in &request.messages {
        encode_message(message, &mut messages)?;
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("messages".into(), Value::Array(messages));
    if let Some(max) = request.max_tokens {
        let key = match flavor {
            Upstream::OpenAi | Upstream::Azure => "max_completion_tokens",
            Upstream::Compatible => "max_tokens",
        };
        body.insert(key.into(), json!(max));
    }
    if let Some(t) = request.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = request.top_p {
        body.insert("top_p".into(), json!(p));
    }
    // `translate::prepare` leaves top_k out for OpenAI itself.
    if let Some(k) = request.top_k {
        body.insert("top_k".into(), json!(k));
    }
    if !request.stop.is_empty() {
        body.insert("stop".into(), json!(request.stop));
    }
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                let mut function = Map::new();
                function.insert("name".into(), json!(tool.name));
                if let Some(d) = &tool.description {
                    function.insert("description".into(), json!(d));
                }
                function.insert("parameters".into(), tool.parameters.clone());
                json!({"type": "function", "function": function})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = &request.tool_choice {
        body.insert(
            "tool_choice".into(),
            match choice {
                ToolChoice::Auto => json!("auto"),
                ToolChoice::None => json!("none"),
                ToolChoice::Required => json!("required"),
                ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
            },
        );
    }
    if let Some(reasoning) = request.reasoning {
        body.insert(
            "reasoning_effort".into(),
            json!(reasoning.effort().as_str()),
        );
    }
    if let Some(user) = &request.user {
        body.insert("user".into(), json!(user));
    }
    match &request.output_format {
        None => {}
        Some(OutputFormat::JsonObject) => {
            body.insert("response_format".into(), json!({"type": "json_object"}));
        }
        Some(OutputFormat::JsonSchema {
            name,
            schema,
            strict,
        }) => {
            let mut spec = Map::new();
            // OpenAI requires a name; other formats' schemas have none.
            spec.insert(
                "name".into(),
                json!(name.as_deref().unwrap_or(DEFAULT_SCHEMA_NAME)),
            );
            spec.insert("schema".into(), schema.clone());
            // Without the client's word (Anthropic and Gemini schemas are
            // always enforced), ask for OpenAI's enforcement where the
            // schema fits its strict subset; OpenAI refuses `strict` on any
            // other schema, and an answer guided by it beats an error.
            if let Some(strict) = strict.or_else(|| fits_strict_subset(schema).then_some(true)) {
                spec.insert("strict".into(), json!(strict));
            }
            body.insert(
                "response_format".into(),
                json!({"type": "json_schema", "json_schema": spec}),
            );
        }
    }
    // OpenAI takes the setting only beside tools.
    if request.parallel_tool_calls == Some(false) && !request.tools.is_empty() {
        body.insert("parallel_tool_calls".into(), json!(false));
    }
    body.insert("stream".into(), json!(true));
    body.insert("stream_options".into(), json!({"include_usage": true}));
    Ok(Value::Object(body))
}

/// Whether OpenAI takes `schema` with `strict: true`: every object closes
/// with `additionalProperties: false` and requires all its properties.
fn fits_strict_subset(schema: &Value) -> bool {
    match schema {
        Value::Object(node) => {
            let is_object = node.get("type").and_then(Value::as_str) == Some("object")
                || node.get("properties").is_some_and(Value::is_object);
            if is_object {
                let closed = node.get("additionalProperties") == Some(&Value::Bool(false));
                let required: Vec<&str> = node
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let all_required = node
                    .get("properties")
                    .and_then(Value::as_object)
                    .is_none_or(|props| props.keys().all(|k| required.contains(&k.as_str())));
                if !closed || !all_required {
                    return false;
                }
            }
            node.values().all(fits_strict_subset)
        }
        Value::Array(items) => items.iter().all(fits_strict_subset),
        _ => true,
    }
}

fn encode_message(message: &Message, out: &mut Vec<Value>) -> Result<(), ApiError> {
    match message.role {
        Role::System => {
            out.push(json!({"role": "system", "content": crate::wire::system_text(message)}))
        }
        Role::User => {
            let mut parts = Vec::new();
            for block in &message.content {
                match block {
                    ContentBlock::ToolResult(result) => {
                        if result
                            .content
                            .iter()
                            .any(|b| !matches!(b, ContentBlock::Text(_)))
                        {
                            return Err(ApiError::invalid(
                                "OpenAI tool results carry text only; this tool result holds an image",
                            ));
                        }
                        let mut text: String = result
                            .content
                            .iter()
                            .filter_map(|b| match b {
                                ContentBlock::Text(t) => Some(t.as_str()),
                                _ => None,
                            })
                            .collect();
                        // OpenAI has no error flag on tool results; say it in words.
                        if result.is_error {
                            text.insert_str(0, "Error: ");
                        }
                        out.push(json!({"role": "tool", "tool_call_id": result.tool_use_id, "content": text}));
                    }
                    ContentBlock::Text(text) => parts.push(json!({"type": "text", "text": text})),
                    ContentBlock::Image(image) => parts.push(encode_image(image)),
                    ContentBlock::ToolUse(_) => {
                        return Err(ApiError::invalid("a user turn cannot contain a tool call"));
                    }
                }
            }
            if !parts.is_empty() {
                out.push(json!({"role": "user", "content": parts}));
            }
        }
        Role::Assistant => {
            let mut text = String::new();
            let mut calls = Vec::new();
            for block in &message.content {
                match block {
                    ContentBlock::Text(t) => text.push_str(t),
                    ContentBlock::ToolUse(call) => calls.push(json!({
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": crate::wire::arguments_text(&call.input)},
                    })),
                    _ => {
                        return Err(ApiError::invalid(
                            "an assistant turn can hold only text and tool calls",
                        ));
                    }
                }
            }
            let mut msg = Map::new();
            msg.insert("role".into(), json!("assistant"));
            msg.insert(
                "content".into(),
                if text.is_empty() && !calls.is_empty() {
                    Value::Null
                } else {
                    json!(text)
                },
            );
            if !calls.is_empty() {
                msg.insert("tool_calls".into(), Value::Array(calls));
            }
            out.push(Value::Object(msg));
        }
    }
    Ok(())
}

fn encode_image(image: &ImageSource) -> Value {
    let url = match image {
        ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        ImageSource::Url(url) => url.clone(),
    };
    json!({"type": "image_url", "image_url": {"url": url}})
}

pub fn decode_response(body: &[u8]) -> Result<ChatResponse, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let choice = value
        .get("choices")
        .and_then(|c| c.get(0))
        .ok_or("the response has no choices")?;
    let message = choice.get("message").ok_or("the choice has no message")?;
    let mut content = Vec::new();
    if let Some(text) = j::get_str(message, "content").filter(|t| !t.is_empty()) {
        content.push(ContentBlock::Text(text.to_string()));
    }
    if let Some(refusal) = j::get_str(message, "refusal") {
        content.push(ContentBlock::Text(refusal.to_string()));
    }
    if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
        for call in calls {
            let function = call.get("function").ok_or("a tool call has no function")?;
            let arguments = j::get_str(function, "arguments").unwrap_or("{}");
            content.push(ContentBlock::ToolUse(ToolCall {
                id: j::get_str(call, "id").unwrap_or_default().to_string(),
                name: j::get_str(function, "name").unwrap_or_default().to_string(),
                input: serde_json::from_str(arguments)
                    .map_err(|e| format!("tool call arguments are not JSON: {e}"))?,
            }));
        }
    }
    let usage = value.get("usage").map(decode_usage).unwrap_or_default();
    Ok(ChatResponse {
        id: j::get_str(&value, "id")
            .unwrap_or("chatcmpl-bulwark")
            .to_string(),
        model: j::get_str(&value, "model").unwrap_or_default().to_string(),
        content,
        finish_reason: decode_finish(j::get_str(choice, "finish_reason").unwrap_or("stop")),
        stop_sequence: None,
        usage,
        created: value
            .get("created")
            .and_then(Value::as_u64)
            .unwrap_or_else(crate::api::unix_now),
    })
}

fn decode_usage(usage: &Value) -> Usage {
    Usage {
        input_tokens: j::get_u64(usage, "prompt_tokens"),
        output_tokens: j::get_u64(usage, "completion_tokens"),
    }
}

pub(super) fn decode_finish(reason: &str) -> FinishReason {
    FinishReason::from_name(WireFormat::OpenAi, reason).unwrap_or(FinishReason::Stop)
}

/// Reads an error body from an OpenAI-format provider: (message, code).
pub fn decode_error(body: &Value) -> (Option<String>, Option<String>) {
    let error = body.get("error").unwrap_or(body);
    let message = j::get_str(error, "message").map(str::to_string);
    let code = j::get_str(error, "code")
        .or_else(|| j::get_str(error, "type"))
        .map(str::to_string);
    (message, code)
}

impl UpstreamDialect for Upstream {
    fn format(&self) -> WireFormat {
        WireFormat::OpenAi
    }

    /// OpenAI itself serves the Responses API beside Chat Completions;
    /// compatible servers mostly lack `/responses`, so they stay on Chat
    /// Completions.
    fn also_speaks(&self, client: WireFormat) -> Option<&'static dyn UpstreamDialect> {
        match (self, client) {
            (Upstream::OpenAi, WireFormat::Responses) => Some(&crate::wire::responses::Upstream),
            _ => None,
        }
    }

    /// Azure's is the format's name for it, which the drill's recorded
    /// scenarios read back (`format: openai-compatible`).
    fn kind_name(&self) -> &'static str {
        match self {
            Upstream::OpenAi => "openai",
            Upstream::Compatible | Upstream::Azure => "openai-compatible",
        }
    }

    fn semconv_name(&self) -> &'static str {
        match self {
            Upstream::OpenAi | Upstream::Compatible => "openai",
            Upstream::Azure => "azure.ai.openai",
        }
    }

    fn default_base_url(&self) -> Option<&'static str> {
        match self {
            Upstream::OpenAi => Some("https://api.openai.com/v1"),
            // Compatible servers and Azure resources live wherever their
            // operator put them.
            Upstream::Compatible | Upstream::Azure => None,
        }
    }

    fn base_path(&self) -> &'static str {
        "/v1"
    }

    fn url(&self, base_url: &str, _model: &str) -> Result<String, ApiError> {
        Ok(format!("{base_url}/chat/completions"))
    }

    /// Embeddings go to the same server, the client's body passed through
    /// but for the model.
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
            Unary::Embeddings(request) => {
                let model = model.to_string();
                Some(Ok(UnaryCall::single(
                    format!("{base_url}/embeddings"),
                    move || crate::unary::with_model(&request.body, &model),
                    crate::unary::embeddings::check_openai_answer,
                )))
            }
            Unary::CountTokens(_) => None,
        }
    }

    fn headers(&self, key: Option<&str>) -> Vec<Header> {
        key.map(|key| Header {
            name: "authorization",
            value: format!("Bearer {key}"),
            secret: true,
        })
        .into_iter()
        .collect()
    }

    fn encode_request(
        &self,
        request: &ChatRequest,
        model: &str,
        _default_max_tokens: u32,
    ) -> Result<Value, ApiError> {
        encode_request(request, model, *self)
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

    fn takes_top_k(&self) -> bool {
        *self == Upstream::Compatible
    }
}
