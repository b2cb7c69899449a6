//! The OpenAI Chat Completions format, spoken by OpenAI and by every
//! OpenAI-compatible server (Mistral, Ollama, vLLM, Groq...).

use std::borrow::Cow;

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::json as j;
use crate::api::{
    ChatRequest, ChatResponse, ContentBlock, FinishReason, ImageSource, Message, Role, SourceBody,
    StreamEvent, Tool, ToolCall, ToolChoice, ToolResult, Usage, WireFormat,
};
use crate::error::{ApiError, ErrorKind};
use crate::sse::{self, SseEvent};

// === Requests from clients ===

/// Decodes a client's Chat Completions request.
pub fn decode_request(body: &[u8]) -> Result<ChatRequest, ApiError> {
    let mut obj = j::parse_object(body)?;
    let source = std::sync::Arc::new(obj.clone());
    let model = j::require_string(&mut obj, "model", "model")?;
    let raw_messages =
        j::take_array(&mut obj, "messages", "messages")?.ok_or_else(|| j::missing("messages"))?;
    if raw_messages.is_empty() {
        return Err(ApiError::invalid_param(
            "messages",
            "`messages` must contain at least one message",
        ));
    }
    let mut untranslatable = Vec::new();
    let mut messages: Vec<Message> = Vec::with_capacity(raw_messages.len());
    for (i, raw) in raw_messages.into_iter().enumerate() {
        let message = decode_message(raw, i, &mut untranslatable)?;
        // Consecutive tool results form one user turn, as in the other formats.
        let merge = message.content.iter().all(is_tool_result)
            && messages
                .last()
                .is_some_and(|m| m.role == Role::User && m.content.iter().all(is_tool_result));
        match messages.last_mut() {
            Some(last) if merge => last.content.extend(message.content),
            _ => messages.push(message),
        }
    }

    let max_completion = j::take_u32(&mut obj, "max_completion_tokens", "max_completion_tokens")?;
    let max_legacy = j::take_u32(&mut obj, "max_tokens", "max_tokens")?;
    let temperature = j::take_f64(&mut obj, "temperature", "temperature")?;
    let top_p = j::take_f64(&mut obj, "top_p", "top_p")?;
    let stop = j::take_string_list(&mut obj, "stop", "stop")?;
    let stream = j::take_bool(&mut obj, "stream", "stream")?.unwrap_or(false);
    let include_usage = match j::take_object(&mut obj, "stream_options", "stream_options")? {
        Some(mut options) => {
            let include = j::take_bool(
                &mut options,
                "include_usage",
                "stream_options.include_usage",
            )?
            .unwrap_or(false);
            // Obfuscation padding only exists in OpenAI's own streams.
            options.remove("include_obfuscation");
            j::leftovers(&options, "stream_options", &mut untranslatable);
            include
        }
        None => false,
    };
    let tools = match j::take_array(&mut obj, "tools", "tools")? {
        Some(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| decode_tool(item, i, &mut untranslatable))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let tool_choice = match j::take(&mut obj, "tool_choice") {
        None => None,
        Some(value) => Some(decode_tool_choice(value)?),
    };
    // Defaults mean nothing to translate.
    for (key, default) in [
        ("n", json!(1)),
        ("parallel_tool_calls", json!(true)),
        ("logprobs", json!(false)),
    ] {
        if obj.get(key) == Some(&default) {
            obj.remove(key);
        }
    }
    // Who is asking, and whether OpenAI keeps a copy, do not change the answer.
    for key in [
        "user",
        "safety_identifier",
        "store",
        "metadata",
        "service_tier",
        "prompt_cache_key",
    ] {
        obj.remove(key);
    }
    j::leftovers(&obj, "", &mut untranslatable);

    let mut request = ChatRequest::new(model, messages);
    request.max_tokens = max_completion.or(max_legacy);
    request.temperature = temperature;
    request.top_p = top_p;
    request.stop = stop;
    request.tools = tools;
    request.tool_choice = tool_choice;
    request.stream = stream;
    request.include_usage = include_usage;
    request.untranslatable = untranslatable;
    request.source = Some(SourceBody {
        format: WireFormat::OpenAi,
        body: source,
    });
    Ok(request)
}

fn is_tool_result(block: &ContentBlock) -> bool {
    matches!(block, ContentBlock::ToolResult(_))
}

fn decode_message(
    raw: Value,
    i: usize,
    untranslatable: &mut Vec<String>,
) -> Result<Message, ApiError> {
    let path = format!("messages[{i}]");
    let mut obj = j::into_object(raw, &path)?;
    let role = j::require_string(&mut obj, "role", &format!("{path}.role"))?;
    let content_path = format!("{path}.content");
    let message = match role.as_str() {
        "system" | "developer" => {
            let content = decode_content(j::take(&mut obj, "content"), &content_path, false)?;
            Message {
                role: Role::System,
                content,
            }
        }
        "user" => Message {
            role: Role::User,
            content: decode_content(j::take(&mut obj, "content"), &content_path, true)?,
        },
        "assistant" => {
            let mut content = decode_content(j::take(&mut obj, "content"), &content_path, false)?;
            if let Some(refusal) = j::take_string(&mut obj, "refusal", &format!("{path}.refusal"))?
            {
                content.push(ContentBlock::Text(refusal));
            }
            if let Some(calls) =
                j::take_array(&mut obj, "tool_calls", &format!("{path}.tool_calls"))?
            {
                for (k, call) in calls.into_iter().enumerate() {
                    let call_path = format!("{path}.tool_calls[{k}]");
                    let mut call = j::into_object(call, &call_path)?;
                    let id = j::require_string(&mut call, "id", &format!("{call_path}.id"))?;
                    let mut function =
                        j::take_object(&mut call, "function", &format!("{call_path}.function"))?
                            .ok_or_else(|| j::missing(&format!("{call_path}.function")))?;
                    let name = j::require_string(
                        &mut function,
                        "name",
                        &format!("{call_path}.function.name"),
                    )?;
                    let arguments_path = format!("{call_path}.function.arguments");
                    let arguments = j::take_string(&mut function, "arguments", &arguments_path)?
                        .unwrap_or_default();
                    let input = j::parse_arguments(&arguments, &arguments_path)?;
                    content.push(ContentBlock::ToolUse(ToolCall { id, name, input }));
                }
            }
            Message {
                role: Role::Assistant,
                content,
            }
        }
        "tool" => {
            let tool_use_id =
                j::require_string(&mut obj, "tool_call_id", &format!("{path}.tool_call_id"))?;
            let content = decode_content(j::take(&mut obj, "content"), &content_path, false)?;
            Message {
                role: Role::User,
                content: vec![ContentBlock::ToolResult(ToolResult {
                    tool_use_id,
                    content,
                    is_error: false,
                })],
            }
        }
        other => {
            return Err(ApiError::invalid_param(
                format!("{path}.role"),
                format!(
                    "`{path}.role` must be one of system, developer, user, assistant, tool; `{other}` is not supported"
                ),
            ));
        }
    };
    obj.remove("type");
    j::leftovers(&obj, &path, untranslatable);
    Ok(message)
}

/// Message content: a string, or an array of text (and, for users, image) parts.
fn decode_content(
    value: Option<Value>,
    path: &str,
    images_allowed: bool,
) -> Result<Vec<ContentBlock>, ApiError> {
    match value {
        None => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![ContentBlock::Text(text)]),
        Some(Value::Array(parts)) => parts
            .into_iter()
            .enumerate()
            .map(|(k, part)| decode_part(part, &format!("{path}[{k}]"), images_allowed))
            .collect(),
        Some(other) => Err(j::wrong_type(
            path,
            "a string or an array of content parts",
            &other,
        )),
    }
}

fn decode_part(part: Value, path: &str, images_allowed: bool) -> Result<ContentBlock, ApiError> {
    let mut obj = j::into_object(part, path)?;
    let kind = j::require_string(&mut obj, "type", &format!("{path}.type"))?;
    match kind.as_str() {
        "text" => Ok(ContentBlock::Text(j::require_string(
            &mut obj,
            "text",
            &format!("{path}.text"),
        )?)),
        "image_url" if images_allowed => {
            let image_path = format!("{path}.image_url");
            let mut image = j::take_object(&mut obj, "image_url", &image_path)?
                .ok_or_else(|| j::missing(&image_path))?;
            let url = j::require_string(&mut image, "url", &format!("{image_path}.url"))?;
            Ok(ContentBlock::Image(match j::split_data_url(&url) {
                Some((media_type, data)) => ImageSource::Base64 { media_type, data },
                None => ImageSource::Url(url),
            }))
        }
        other => Err(ApiError::invalid_param(
            format!("{path}.type"),
            format!(
                "content part type `{other}` is not supported here; Bulwark accepts text{} parts",
                if images_allowed { " and image_url" } else { "" }
            ),
        )),
    }
}

fn decode_tool(item: Value, i: usize, untranslatable: &mut Vec<String>) -> Result<Tool, ApiError> {
    let path = format!("tools[{i}]");
    let mut obj = j::into_object(item, &path)?;
    let kind = j::take_string(&mut obj, "type", &format!("{path}.type"))?;
    if kind.as_deref().is_some_and(|k| k != "function") {
        return Err(ApiError::invalid_param(
            format!("{path}.type"),
            "only tools of type `function` are supported",
        ));
    }
    let function_path = format!("{path}.function");
    let mut function = j::take_object(&mut obj, "function", &function_path)?
        .ok_or_else(|| j::missing(&function_path))?;
    let name = j::require_string(&mut function, "name", &format!("{function_path}.name"))?;
    let description = j::take_string(
        &mut function,
        "description",
        &format!("{function_path}.description"),
    )?;
    let parameters = j::take(&mut function, "parameters")
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    // `strict: false` is the default; `true` is a guarantee only OpenAI gives.
    if j::take_bool(&mut function, "strict", &format!("{function_path}.strict"))? == Some(true) {
        untranslatable.push(format!("{function_path}.strict"));
    }
    j::leftovers(&function, &function_path, untranslatable);
    j::leftovers(&obj, &path, untranslatable);
    Ok(Tool {
        name,
        description,
        parameters,
    })
}

fn decode_tool_choice(value: Value) -> Result<ToolChoice, ApiError> {
    match &value {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            other => Err(ApiError::invalid_param(
                "tool_choice",
                format!(
                    "`tool_choice` must be auto, none, required or a function; `{other}` is not"
                ),
            )),
        },
        Value::Object(obj) => obj
            .get("function")
            .and_then(|f| j::get_str(f, "name"))
            .map(|name| ToolChoice::Tool(name.to_string()))
            .ok_or_else(|| j::missing("tool_choice.function.name")),
        other => Err(j::wrong_type("tool_choice", "a string or an object", other)),
    }
}

// === Requests to providers ===

/// Which flavour of the format a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAI itself: `max_completion_tokens`, no `top_k`.
    OpenAi,
    /// Compatible servers: `max_tokens` is the field they all accept, and most
    /// take `top_k` as an extension.
    Compatible,
}

/// Encodes a request for an OpenAI-format provider.
pub fn encode_request(
    request: &ChatRequest,
    model: &str,
    dialect: Dialect,
) -> Result<Value, ApiError> {
    if let Some(source) = request
        .source
        .as_ref()
        .filter(|s| s.format == WireFormat::OpenAi)
    {
        let mut body = (*source.body).clone();
        body.insert("model".into(), Value::String(model.to_string()));
        // Compatible servers know the older name of the output limit.
        if dialect == Dialect::Compatible
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
    if !request.untranslatable.is_empty() {
        return Err(super::untranslatable(&request.untranslatable, "OpenAI"));
    }
    super::refuse_prefill(request, "OpenAI")?;
    let mut messages = Vec::with_capacity(request.messages.len());
    for message in &request.messages {
        encode_message(message, &mut messages)?;
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("messages".into(), Value::Array(messages));
    if let Some(max) = request.max_tokens {
        let key = match dialect {
            Dialect::OpenAi => "max_completion_tokens",
            Dialect::Compatible => "max_tokens",
        };
        body.insert(key.into(), json!(max));
    }
    if let Some(t) = request.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = request.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if let Some(k) = request.top_k {
        if dialect == Dialect::OpenAi {
            return Err(super::untranslatable(&["top_k".to_string()], "OpenAI"));
        }
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
    body.insert("stream".into(), json!(true));
    body.insert("stream_options".into(), json!({"include_usage": true}));
    Ok(Value::Object(body))
}

fn encode_message(message: &Message, out: &mut Vec<Value>) -> Result<(), ApiError> {
    match message.role {
        Role::System => out.push(json!({"role": "system", "content": message.joined_text()})),
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
                        "function": {"name": call.name, "arguments": super::arguments_text(&call.input)},
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

// === Responses from providers ===

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

fn decode_finish(reason: &str) -> FinishReason {
    match reason {
        "length" | "model_length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolUse,
        "content_filter" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

fn finish_str(reason: &FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop | FinishReason::StopSequence => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolUse => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
    }
}

/// Decodes a provider's Chat Completions stream, one SSE event at a time.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    finished: bool,
    done: bool,
    next_index: usize,
    text_index: Option<usize>,
    /// OpenAI's tool-call index to the block index it was given.
    tools: Vec<(u64, usize)>,
}

impl StreamDecoder {
    pub fn new() -> Self {
        StreamDecoder::default()
    }

    /// Whether the stream ended with its terminator.
    pub fn is_done(&self) -> bool {
        self.done
    }

    pub fn on_event(
        &mut self,
        event: &SseEvent,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), super::StreamFault> {
        if event.data == "[DONE]" {
            if !self.finished {
                return Err(super::StreamFault {
                    message: "the stream ended without a finish reason (the answer is truncated)"
                        .into(),
                    code: None,
                });
            }
            self.done = true;
            return Ok(());
        }
        // Typed and borrowed: the hot path of every streamed answer, where a
        // generic JSON tree cost an allocation per field.
        let chunk: ChunkIn<'_> =
            serde_json::from_str(&event.data).map_err(super::StreamFault::malformed)?;
        if let Some(error) = &chunk.error {
            return Err(super::StreamFault::error_event(error));
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: chunk
                    .id
                    .as_deref()
                    .unwrap_or("chatcmpl-bulwark")
                    .to_string(),
                model: chunk.model.as_deref().unwrap_or_default().to_string(),
                created: chunk.created.unwrap_or_else(crate::api::unix_now),
                input_tokens: None,
            });
        }
        // Other choices (`n` > 1) only exist when the client speaks OpenAI,
        // and then it is given the provider's chunks as they are.
        let first_choice = chunk
            .choices
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.index.unwrap_or(0) == 0);
        if let Some(choice) = first_choice {
            if let Some(delta) = choice.delta {
                let text = delta
                    .content
                    .filter(|t| !t.is_empty())
                    .or(delta.refusal.filter(|t| !t.is_empty()));
                if let Some(text) = text {
                    let index = match self.text_index {
                        Some(index) => index,
                        None => {
                            let index = self.allocate();
                            self.text_index = Some(index);
                            index
                        }
                    };
                    out.push(StreamEvent::TextDelta {
                        index,
                        text: text.into_owned(),
                    });
                }
                for call in delta.tool_calls.unwrap_or_default() {
                    self.on_tool_delta(call, out);
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finished = true;
                out.push(StreamEvent::Finish {
                    reason: decode_finish(&reason),
                    stop_sequence: None,
                });
            }
        }
        if let Some(usage) = chunk.usage {
            out.push(StreamEvent::Usage(Usage {
                input_tokens: usage.prompt_tokens.unwrap_or(0),
                output_tokens: usage.completion_tokens.unwrap_or(0),
            }));
        }
        Ok(())
    }

    fn allocate(&mut self) -> usize {
        let index = self.next_index;
        self.next_index += 1;
        index
    }

    fn on_tool_delta(&mut self, call: ToolCallIn<'_>, out: &mut Vec<StreamEvent>) {
        let openai_index = call.index.unwrap_or(0);
        let known = self
            .tools
            .iter()
            .find(|(i, _)| *i == openai_index)
            .map(|(_, b)| *b);
        let (name, arguments) = match call.function {
            Some(f) => (f.name, f.arguments),
            None => (None, None),
        };
        let index = match known {
            Some(index) => index,
            None => {
                // A tool call after text closes the text block.
                self.text_index = None;
                let index = self.allocate();
                self.tools.push((openai_index, index));
                out.push(StreamEvent::ToolCallStart {
                    index,
                    id: call.id.map(Cow::into_owned).unwrap_or_default(),
                    name: name.map(Cow::into_owned).unwrap_or_default(),
                });
                index
            }
        };
        if let Some(arguments) = arguments.filter(|a| !a.is_empty()) {
            out.push(StreamEvent::ToolCallDelta {
                index,
                partial_json: arguments.into_owned(),
            });
        }
    }
}

/// A stream chunk as the decoder reads it; unknown fields are skipped.
#[derive(serde::Deserialize)]
struct ChunkIn<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    created: Option<u64>,
    #[serde(borrow)]
    choices: Option<Vec<ChoiceIn<'a>>>,
    usage: Option<UsageIn>,
    error: Option<Value>,
}

#[derive(serde::Deserialize)]
struct ChoiceIn<'a> {
    index: Option<u64>,
    #[serde(borrow)]
    delta: Option<DeltaIn<'a>>,
    #[serde(borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct DeltaIn<'a> {
    #[serde(borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow)]
    refusal: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tool_calls: Option<Vec<ToolCallIn<'a>>>,
}

#[derive(serde::Deserialize)]
struct ToolCallIn<'a> {
    index: Option<u64>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    function: Option<FunctionIn<'a>>,
}

#[derive(serde::Deserialize)]
struct FunctionIn<'a> {
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    arguments: Option<Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct UsageIn {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

// === Responses to clients ===

pub fn encode_response(response: &ChatResponse) -> Value {
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in &response.content {
        match block {
            ContentBlock::Text(t) => text.push_str(t),
            ContentBlock::ToolUse(call) => calls.push(json!({
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": super::arguments_text(&call.input)},
            })),
            _ => {}
        }
    }
    let mut message = json!({
        "role": "assistant",
        "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) },
        "refusal": null,
    });
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    json!({
        "id": super::prefixed_id("chatcmpl-", &response.id),
        "object": "chat.completion",
        "created": response.created,
        "model": response.model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_str(&response.finish_reason),
        }],
        "usage": usage_json(&response.usage),
        "system_fingerprint": null,
    })
}

fn usage_json(usage: &Usage) -> Value {
    json!({
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    })
}

/// Writes neutral stream events as Chat Completions chunks.
#[derive(Debug)]
pub struct StreamEncoder {
    include_usage: bool,
    id: String,
    model: String,
    created: u64,
    started: bool,
    /// Block index to OpenAI tool-call index.
    tools: Vec<usize>,
    usage: Option<Usage>,
}

impl StreamEncoder {
    pub fn new(include_usage: bool) -> Self {
        StreamEncoder {
            include_usage,
            id: "chatcmpl-bulwark".into(),
            model: String::new(),
            created: crate::api::unix_now(),
            started: false,
            tools: Vec::new(),
            usage: None,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Bytes {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        sse::encode(None, &chunk.to_string())
    }

    fn ensure_started(&mut self, out: &mut Vec<Bytes>) {
        if !self.started {
            self.started = true;
            out.push(self.chunk(json!({"role": "assistant", "content": ""}), None));
        }
    }

    pub fn encode(&mut self, event: &StreamEvent, out: &mut Vec<Bytes>) {
        match event {
            StreamEvent::Start {
                id, model, created, ..
            } => {
                self.id = super::prefixed_id("chatcmpl-", id);
                self.model.clone_from(model);
                self.created = *created;
                self.ensure_started(out);
            }
            StreamEvent::TextDelta { text, .. } => {
                self.ensure_started(out);
                out.push(self.chunk(json!({"content": text}), None));
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.ensure_started(out);
                let tool_index = self.tools.len();
                self.tools.push(*index);
                out.push(self.chunk(
                    json!({"tool_calls": [{"index": tool_index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
                    None,
                ));
            }
            StreamEvent::ToolCallDelta {
                index,
                partial_json,
            } => {
                let tool_index = self.tools.iter().position(|b| b == index).unwrap_or(0);
                out.push(self.chunk(
                    json!({"tool_calls": [{"index": tool_index, "function": {"arguments": partial_json}}]}),
                    None,
                ));
            }
            StreamEvent::Finish { reason, .. } => {
                self.ensure_started(out);
                out.push(self.chunk(json!({}), Some(finish_str(reason))));
            }
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
        }
    }

    /// Ends a complete stream: the usage chunk if asked for, then `[DONE]`.
    pub fn finish(&mut self, out: &mut Vec<Bytes>) {
        if self.include_usage && self.usage.is_some() {
            let chunk = json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": usage_json(&self.usage.unwrap_or_default()),
            });
            out.push(sse::encode(None, &chunk.to_string()));
        }
        out.push(sse::encode(None, "[DONE]"));
    }

    /// Ends a broken stream the way OpenAI does: an error object, no `[DONE]`,
    /// so clients raise instead of taking a truncated answer as complete.
    pub fn error(&mut self, error: &ApiError, out: &mut Vec<Bytes>) {
        out.push(sse::encode(None, &encode_error(error).to_string()));
    }
}

// === Errors ===

pub fn encode_error(error: &ApiError) -> Value {
    let kind = match error.kind {
        ErrorKind::InvalidRequest | ErrorKind::NotFound | ErrorKind::RequestTooLarge => {
            "invalid_request_error"
        }
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::Permission => "permission_error",
        ErrorKind::Billing => "insufficient_quota",
        ErrorKind::RateLimit => "rate_limit_error",
        ErrorKind::Timeout => "timeout_error",
        ErrorKind::Overloaded => "overloaded_error",
        ErrorKind::Api => "server_error",
    };
    json!({"error": {
        "message": error.message,
        "type": kind,
        "param": error.param,
        "code": error.code,
    }})
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

// === Relaying a provider's own stream to a client of the same format ===

/// Whether a chunk is the usage-only chunk that `include_usage` adds.
pub fn is_usage_chunk(data: &str) -> bool {
    serde_json::from_str::<Value>(data).is_ok_and(|chunk| {
        chunk
            .get("choices")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
            && chunk.get("usage").is_some_and(Value::is_object)
    })
}

/// Rebuilds the complete `chat.completion` object from a provider's stream
/// chunks, keeping every field the provider sent (all choices, refusals,
/// logprobs, usage details), as the OpenAI SDK's stream accumulator does.
pub fn assemble_response<'a>(chunks: impl IntoIterator<Item = &'a SseEvent>) -> Value {
    let mut response = Map::new();
    response.insert("object".into(), json!("chat.completion"));
    let mut choices: Vec<Value> = Vec::new();
    for event in chunks {
        if event.data == "[DONE]" {
            continue;
        }
        let Ok(Value::Object(chunk)) = serde_json::from_str::<Value>(&event.data) else {
            continue;
        };
        for (key, value) in &chunk {
            match key.as_str() {
                "object" | "choices" | "obfuscation" => {}
                "usage" if value.is_null() => {}
                _ => {
                    response.insert(key.clone(), value.clone());
                }
            }
        }
        for choice in chunk
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
            while choices.len() <= index {
                choices.push(json!({
                    "index": choices.len(),
                    "message": {"role": "assistant", "content": null, "refusal": null},
                    "logprobs": null,
                    "finish_reason": null,
                }));
            }
            merge_choice(&mut choices[index], choice);
        }
    }
    response.insert("choices".into(), Value::Array(choices));
    response.entry("usage").or_insert(Value::Null);
    Value::Object(response)
}

fn merge_choice(target: &mut Value, chunk: &Value) {
    if let Some(reason) = chunk.get("finish_reason").filter(|r| !r.is_null()) {
        target["finish_reason"] = reason.clone();
    }
    if let Some(logprobs) = chunk.get("logprobs").and_then(Value::as_object) {
        if !target["logprobs"].is_object() {
            target["logprobs"] = json!({});
        }
        for (key, items) in logprobs {
            if let Some(items) = items.as_array() {
                let slot = &mut target["logprobs"][key];
                if !slot.is_array() {
                    *slot = json!([]);
                }
                if let Some(list) = slot.as_array_mut() {
                    list.extend(items.iter().cloned());
                }
            }
        }
    }
    let Some(delta) = chunk.get("delta").and_then(Value::as_object) else {
        return;
    };
    let message = &mut target["message"];
    for (key, value) in delta {
        match (key.as_str(), value) {
            (_, Value::Null) => {}
            ("content" | "refusal", Value::String(text)) => {
                let joined = format!(
                    "{}{text}",
                    message[key.as_str()].as_str().unwrap_or_default()
                );
                message[key.as_str()] = json!(joined);
            }
            ("tool_calls", Value::Array(calls)) => {
                if !message["tool_calls"].is_array() {
                    message["tool_calls"] = json!([]);
                }
                for call in calls {
                    merge_tool_call(&mut message["tool_calls"], call);
                }
            }
            _ => message[key.as_str()] = value.clone(),
        }
    }
}

fn merge_tool_call(calls: &mut Value, delta: &Value) {
    let Some(list) = calls.as_array_mut() else {
        return;
    };
    let index = delta.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
    while list.len() <= index {
        list.push(json!({"id": "", "type": "function", "function": {"name": "", "arguments": ""}}));
    }
    let call = &mut list[index];
    for key in ["id", "type"] {
        if let Some(value) = delta.get(key).filter(|v| v.is_string()) {
            call[key] = value.clone();
        }
    }
    if let Some(function) = delta.get("function") {
        for key in ["name", "arguments"] {
            if let Some(part) = j::get_str(function, key) {
                let joined = format!(
                    "{}{part}",
                    call["function"][key].as_str().unwrap_or_default()
                );
                call["function"][key] = json!(joined);
            }
        }
    }
}
