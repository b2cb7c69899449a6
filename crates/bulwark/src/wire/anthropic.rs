//! The Anthropic Messages format.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::json::{self as j};
use crate::api::{
    ChatRequest, ChatResponse, ContentBlock, FinishReason, ImageSource, Message, Role, SourceBody,
    StreamEvent, Tool, ToolCall, ToolChoice, ToolResult, Usage, WireFormat,
};
use crate::error::{ApiError, ErrorKind};
use crate::sse::{self, SseEvent};

/// The API version Bulwark speaks to Anthropic.
pub const API_VERSION: &str = "2023-06-01";

// === Requests from clients ===

pub fn decode_request(body: &[u8]) -> Result<ChatRequest, ApiError> {
    let mut obj = j::parse_object(body)?;
    let source = std::sync::Arc::new(obj.clone());
    let model = j::require_string(&mut obj, "model", "model")?;
    // Anthropic requires max_tokens; so does its front door, so that a client
    // learns the same rule whichever provider serves it.
    let max_tokens = j::take_u32(&mut obj, "max_tokens", "max_tokens")?
        .ok_or_else(|| j::missing("max_tokens"))?;
    let raw_messages =
        j::take_array(&mut obj, "messages", "messages")?.ok_or_else(|| j::missing("messages"))?;
    let mut untranslatable = Vec::new();
    let mut messages = Vec::with_capacity(raw_messages.len() + 1);
    match j::take(&mut obj, "system") {
        None => {}
        Some(Value::String(text)) => messages.push(Message::text(Role::System, text)),
        Some(Value::Array(blocks)) => {
            let mut content = Vec::new();
            for (i, block) in blocks.into_iter().enumerate() {
                content.push(decode_block(
                    block,
                    &format!("system[{i}]"),
                    &mut untranslatable,
                )?);
            }
            messages.push(Message {
                role: Role::System,
                content,
            });
        }
        Some(other) => {
            return Err(j::wrong_type(
                "system",
                "a string or an array of text blocks",
                &other,
            ));
        }
    }
    for (i, raw) in raw_messages.into_iter().enumerate() {
        let path = format!("messages[{i}]");
        let mut message = j::into_object(raw, &path)?;
        let role = match j::require_string(&mut message, "role", &format!("{path}.role"))?.as_str()
        {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return Err(ApiError::invalid_param(
                    format!("{path}.role"),
                    format!(
                        "`{path}.role` must be user or assistant, not `{other}`; put system instructions in `system`"
                    ),
                ));
            }
        };
        let content = match j::take(&mut message, "content") {
            None => return Err(j::missing(&format!("{path}.content"))),
            Some(Value::String(text)) => vec![ContentBlock::Text(text)],
            Some(Value::Array(blocks)) => {
                let mut content = Vec::with_capacity(blocks.len());
                for (k, block) in blocks.into_iter().enumerate() {
                    content.push(decode_block(
                        block,
                        &format!("{path}.content[{k}]"),
                        &mut untranslatable,
                    )?);
                }
                content
            }
            Some(other) => {
                return Err(j::wrong_type(
                    &format!("{path}.content"),
                    "a string or an array of blocks",
                    &other,
                ));
            }
        };
        j::leftovers(&message, &path, &mut untranslatable);
        messages.push(Message { role, content });
    }
    if messages.iter().all(|m| m.role == Role::System) {
        return Err(ApiError::invalid_param(
            "messages",
            "`messages` must contain at least one message",
        ));
    }

    let mut request = ChatRequest::new(model, messages);
    request.max_tokens = Some(max_tokens);
    request.temperature = j::take_f64(&mut obj, "temperature", "temperature")?;
    request.top_p = j::take_f64(&mut obj, "top_p", "top_p")?;
    request.top_k = j::take_u32(&mut obj, "top_k", "top_k")?;
    request.stop = j::take_string_list(&mut obj, "stop_sequences", "stop_sequences")?;
    request.stream = j::take_bool(&mut obj, "stream", "stream")?.unwrap_or(false);
    request.include_usage = true;
    if let Some(tools) = j::take_array(&mut obj, "tools", "tools")? {
        for (i, tool) in tools.into_iter().enumerate() {
            request
                .tools
                .push(decode_tool(tool, i, &mut untranslatable)?);
        }
    }
    if let Some(choice) = j::take_object(&mut obj, "tool_choice", "tool_choice")? {
        request.tool_choice = Some(decode_tool_choice(choice, &mut untranslatable)?);
    }
    // Who is asking and which tier serves them do not change the answer.
    obj.remove("metadata");
    obj.remove("service_tier");
    j::leftovers(&obj, "", &mut untranslatable);
    request.untranslatable = untranslatable;
    request.source = Some(SourceBody {
        format: WireFormat::Anthropic,
        body: source,
    });
    Ok(request)
}

fn decode_block(
    raw: Value,
    path: &str,
    untranslatable: &mut Vec<String>,
) -> Result<ContentBlock, ApiError> {
    let mut obj = j::into_object(raw, path)?;
    let kind = j::require_string(&mut obj, "type", &format!("{path}.type"))?;
    // Prompt caching is a cost hint; without it the answer is the same.
    obj.remove("cache_control");
    let block = match kind.as_str() {
        "text" => {
            obj.remove("citations");
            ContentBlock::Text(j::require_string(
                &mut obj,
                "text",
                &format!("{path}.text"),
            )?)
        }
        "image" => {
            let source_path = format!("{path}.source");
            let mut source = j::take_object(&mut obj, "source", &source_path)?
                .ok_or_else(|| j::missing(&source_path))?;
            let source_kind =
                j::require_string(&mut source, "type", &format!("{source_path}.type"))?;
            let image = match source_kind.as_str() {
                "base64" => ImageSource::Base64 {
                    media_type: j::require_string(
                        &mut source,
                        "media_type",
                        &format!("{source_path}.media_type"),
                    )?,
                    data: j::require_string(&mut source, "data", &format!("{source_path}.data"))?,
                },
                "url" => ImageSource::Url(j::require_string(
                    &mut source,
                    "url",
                    &format!("{source_path}.url"),
                )?),
                other => {
                    return Err(ApiError::invalid_param(
                        format!("{source_path}.type"),
                        format!("image source type `{other}` is not supported; use base64 or url"),
                    ));
                }
            };
            j::leftovers(&source, &source_path, untranslatable);
            ContentBlock::Image(image)
        }
        "tool_use" => ContentBlock::ToolUse(ToolCall {
            id: j::require_string(&mut obj, "id", &format!("{path}.id"))?,
            name: j::require_string(&mut obj, "name", &format!("{path}.name"))?,
            input: j::take(&mut obj, "input").unwrap_or_else(|| json!({})),
        }),
        "tool_result" => {
            let tool_use_id =
                j::require_string(&mut obj, "tool_use_id", &format!("{path}.tool_use_id"))?;
            let is_error =
                j::take_bool(&mut obj, "is_error", &format!("{path}.is_error"))?.unwrap_or(false);
            let content = match j::take(&mut obj, "content") {
                None => Vec::new(),
                Some(Value::String(text)) => vec![ContentBlock::Text(text)],
                Some(Value::Array(blocks)) => {
                    let mut content = Vec::new();
                    for (k, block) in blocks.into_iter().enumerate() {
                        content.push(decode_block(
                            block,
                            &format!("{path}.content[{k}]"),
                            untranslatable,
                        )?);
                    }
                    content
                }
                Some(other) => {
                    return Err(j::wrong_type(
                        &format!("{path}.content"),
                        "a string or an array of blocks",
                        &other,
                    ));
                }
            };
            ContentBlock::ToolResult(ToolResult {
                tool_use_id,
                content,
                is_error,
            })
        }
        _ => {
            // Thinking, documents, server tools: meaningful, but only to Anthropic.
            untranslatable.push(format!("{path} (type `{kind}`)"));
            return Ok(ContentBlock::Text(String::new()));
        }
    };
    j::leftovers(&obj, path, untranslatable);
    Ok(block)
}

fn decode_tool(raw: Value, i: usize, untranslatable: &mut Vec<String>) -> Result<Tool, ApiError> {
    let path = format!("tools[{i}]");
    let mut obj = j::into_object(raw, &path)?;
    obj.remove("cache_control");
    if let Some(kind) = j::take_string(&mut obj, "type", &format!("{path}.type"))?
        && kind != "custom"
    {
        // Server tools (web search, code execution...) run inside Anthropic.
        untranslatable.push(format!("{path} (type `{kind}`)"));
    }
    let tool = Tool {
        name: j::require_string(&mut obj, "name", &format!("{path}.name"))?,
        description: j::take_string(&mut obj, "description", &format!("{path}.description"))?,
        parameters: j::take(&mut obj, "input_schema").unwrap_or_else(|| json!({"type": "object"})),
    };
    j::leftovers(&obj, &path, untranslatable);
    Ok(tool)
}

fn decode_tool_choice(
    mut obj: j::Object,
    untranslatable: &mut Vec<String>,
) -> Result<ToolChoice, ApiError> {
    let kind = j::require_string(&mut obj, "type", "tool_choice.type")?;
    let choice = match kind.as_str() {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Required,
        "none" => ToolChoice::None,
        "tool" => ToolChoice::Tool(j::require_string(&mut obj, "name", "tool_choice.name")?),
        other => {
            return Err(ApiError::invalid_param(
                "tool_choice.type",
                format!("`tool_choice.type` must be auto, any, tool or none, not `{other}`"),
            ));
        }
    };
    if j::take_bool(
        &mut obj,
        "disable_parallel_tool_use",
        "tool_choice.disable_parallel_tool_use",
    )? == Some(true)
    {
        untranslatable.push("tool_choice.disable_parallel_tool_use".into());
    }
    j::leftovers(&obj, "tool_choice", untranslatable);
    Ok(choice)
}

// === Requests to providers ===

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
        let mut body = (*source.body).clone();
        body.insert("model".into(), json!(model));
        body.insert("stream".into(), json!(true));
        return Ok(Value::Object(body));
    }
    if !request.untranslatable.is_empty() {
        return Err(super::untranslatable(&request.untranslatable, "Anthropic"));
    }
    let (system, first_turn) = super::leading_system(request, "Anthropic")?;
    let mut messages = Vec::with_capacity(request.messages.len());
    for message in &request.messages[first_turn..] {
        let role = match message.role {
            Role::Assistant => "assistant",
            _ => "user",
        };
        // Anthropic rejects empty text blocks, which OpenAI clients send
        // beside tool calls.
        let content: Vec<Value> = message
            .content
            .iter()
            .filter(|b| !matches!(b, ContentBlock::Text(t) if t.is_empty()))
            .map(encode_block)
            .collect();
        if !content.is_empty() {
            messages.push(json!({"role": role, "content": content}));
        }
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert(
        "max_tokens".into(),
        json!(request.max_tokens.unwrap_or(default_max_tokens)),
    );
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
    if let Some(choice) = &request.tool_choice {
        body.insert(
            "tool_choice".into(),
            match choice {
                ToolChoice::Auto => json!({"type": "auto"}),
                ToolChoice::None => json!({"type": "none"}),
                ToolChoice::Required => json!({"type": "any"}),
                ToolChoice::Tool(name) => json!({"type": "tool", "name": name}),
            },
        );
    }
    body.insert("stream".into(), json!(true));
    Ok(Value::Object(body))
}

fn encode_block(block: &ContentBlock) -> Value {
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

// === Responses from providers ===

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
fn decode_usage(usage: &Value) -> Usage {
    Usage {
        input_tokens: j::get_u64(usage, "input_tokens")
            + j::get_u64(usage, "cache_creation_input_tokens")
            + j::get_u64(usage, "cache_read_input_tokens"),
        output_tokens: j::get_u64(usage, "output_tokens"),
    }
}

fn decode_stop(reason: &str) -> FinishReason {
    match reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "stop_sequence" => FinishReason::StopSequence,
        "tool_use" => FinishReason::ToolUse,
        "refusal" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

fn stop_str(reason: &FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "end_turn",
        FinishReason::StopSequence => "stop_sequence",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolUse => "tool_use",
        FinishReason::ContentFilter => "refusal",
    }
}

/// Decodes a provider's Messages stream.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    done: bool,
    input_tokens: u64,
    /// Anthropic block indices that carry text or tool input; others are skipped.
    known_blocks: Vec<u64>,
}

impl StreamDecoder {
    pub fn new() -> Self {
        StreamDecoder::default()
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    pub fn on_event(
        &mut self,
        event: &SseEvent,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), super::StreamFault> {
        let data: Value =
            serde_json::from_str(&event.data).map_err(super::StreamFault::malformed)?;
        let kind = j::get_str(&data, "type")
            .or(event.event.as_deref())
            .unwrap_or_default();
        let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
        match kind {
            "message_start" => {
                let message = data.get("message").cloned().unwrap_or_default();
                let usage = message.get("usage").map(decode_usage).unwrap_or_default();
                self.input_tokens = usage.input_tokens;
                out.push(StreamEvent::Start {
                    id: j::get_str(&message, "id")
                        .unwrap_or("msg_bulwark")
                        .to_string(),
                    model: j::get_str(&message, "model")
                        .unwrap_or_default()
                        .to_string(),
                    created: crate::api::unix_now(),
                    input_tokens: Some(usage.input_tokens),
                });
            }
            "content_block_start" => {
                let block = data.get("content_block").cloned().unwrap_or_default();
                let block_index = usize::try_from(index).unwrap_or(usize::MAX);
                match j::get_str(&block, "type") {
                    Some("text") => {
                        self.known_blocks.push(index);
                        if let Some(text) = j::get_str(&block, "text").filter(|t| !t.is_empty()) {
                            out.push(StreamEvent::TextDelta {
                                index: block_index,
                                text: text.to_string(),
                            });
                        }
                    }
                    Some("tool_use") => {
                        self.known_blocks.push(index);
                        out.push(StreamEvent::ToolCallStart {
                            index: block_index,
                            id: j::get_str(&block, "id").unwrap_or_default().to_string(),
                            name: j::get_str(&block, "name").unwrap_or_default().to_string(),
                        });
                    }
                    _ => {}
                }
            }
            "content_block_delta" if self.known_blocks.contains(&index) => {
                let delta = data.get("delta").cloned().unwrap_or_default();
                let block_index = usize::try_from(index).unwrap_or(usize::MAX);
                match j::get_str(&delta, "type") {
                    Some("text_delta") => out.push(StreamEvent::TextDelta {
                        index: block_index,
                        text: j::get_str(&delta, "text").unwrap_or_default().to_string(),
                    }),
                    Some("input_json_delta") => out.push(StreamEvent::ToolCallDelta {
                        index: block_index,
                        partial_json: j::get_str(&delta, "partial_json")
                            .unwrap_or_default()
                            .to_string(),
                    }),
                    _ => {}
                }
            }
            "message_delta" => {
                let delta = data.get("delta").cloned().unwrap_or_default();
                if let Some(reason) = j::get_str(&delta, "stop_reason") {
                    out.push(StreamEvent::Finish {
                        reason: decode_stop(reason),
                        stop_sequence: j::get_str(&delta, "stop_sequence").map(str::to_string),
                    });
                }
                if let Some(usage) = data.get("usage") {
                    let mut usage_now = decode_usage(usage);
                    if usage.get("input_tokens").is_none() {
                        usage_now.input_tokens = self.input_tokens;
                    }
                    out.push(StreamEvent::Usage(usage_now));
                }
            }
            "message_stop" => self.done = true,
            "error" => {
                let error = data.get("error").cloned().unwrap_or_default();
                return Err(super::StreamFault::error_event(&error));
            }
            _ => {} // ping, content_block_stop, and events added after this was written
        }
        Ok(())
    }
}

// === Responses to clients ===

pub fn encode_response(response: &ChatResponse) -> Value {
    let content: Vec<Value> = response
        .content
        .iter()
        .filter(|b| matches!(b, ContentBlock::Text(_) | ContentBlock::ToolUse(_)))
        .map(encode_block)
        .collect();
    json!({
        "id": super::prefixed_id("msg_", &response.id),
        "type": "message",
        "role": "assistant",
        "model": response.model,
        "content": content,
        "stop_reason": stop_str(&response.finish_reason),
        "stop_sequence": response.stop_sequence,
        "usage": {"input_tokens": response.usage.input_tokens, "output_tokens": response.usage.output_tokens},
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenBlock {
    None,
    /// (neutral index, Anthropic index)
    Text(usize, usize),
}

/// A tool call whose arguments are still arriving.
#[derive(Debug)]
struct PendingTool {
    index: usize,
    id: String,
    name: String,
    arguments: String,
}

/// Writes neutral stream events as Messages stream events.
///
/// Text streams as it comes. Tool calls are written whole, once their
/// arguments are complete: an OpenAI-format provider may interleave the
/// arguments of parallel calls, while an Anthropic block, once stopped,
/// cannot take more.
#[derive(Debug)]
pub struct StreamEncoder {
    started: bool,
    open: OpenBlock,
    next_index: usize,
    tools: Vec<PendingTool>,
    finish: Option<(FinishReason, Option<String>)>,
    usage: Usage,
}

impl Default for StreamEncoder {
    fn default() -> Self {
        StreamEncoder {
            started: false,
            open: OpenBlock::None,
            next_index: 0,
            tools: Vec::new(),
            finish: None,
            usage: Usage::default(),
        }
    }
}

impl StreamEncoder {
    pub fn new() -> Self {
        StreamEncoder::default()
    }

    fn event(out: &mut Vec<Bytes>, name: &str, data: Value) {
        out.push(sse::encode(Some(name), &data.to_string()));
    }

    fn start(&mut self, id: &str, model: &str, input_tokens: u64, out: &mut Vec<Bytes>) {
        self.started = true;
        Self::event(
            out,
            "message_start",
            json!({"type": "message_start", "message": {
                "id": id, "type": "message", "role": "assistant", "content": [], "model": model,
                "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": input_tokens, "output_tokens": 0},
            }}),
        );
    }

    fn close_block(&mut self, out: &mut Vec<Bytes>) {
        let index = match self.open {
            OpenBlock::None => return,
            OpenBlock::Text(_, i) => i,
        };
        Self::event(
            out,
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        );
        self.open = OpenBlock::None;
    }

    fn open_block(&mut self, out: &mut Vec<Bytes>, block: Value) -> usize {
        self.close_block(out);
        let index = self.next_index;
        self.next_index += 1;
        Self::event(
            out,
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": block}),
        );
        if index == 0 {
            // Anthropic sends its first keep-alive right after the first block opens.
            Self::event(out, "ping", json!({"type": "ping"}));
        }
        index
    }

    pub fn encode(&mut self, event: &StreamEvent, out: &mut Vec<Bytes>) {
        if !self.started {
            match event {
                StreamEvent::Start {
                    id,
                    model,
                    input_tokens,
                    ..
                } => {
                    self.usage.input_tokens = input_tokens.unwrap_or(0);
                    self.start(
                        &super::prefixed_id("msg_", id),
                        model,
                        self.usage.input_tokens,
                        out,
                    );
                    return;
                }
                _ => self.start("msg_bulwark", "", 0, out),
            }
        }
        match event {
            StreamEvent::Start { .. } => {}
            StreamEvent::TextDelta { index, text } => {
                let anthropic_index = match self.open {
                    OpenBlock::Text(neutral, i) if neutral == *index => i,
                    _ => {
                        self.flush_tools(out);
                        let i = self.open_block(out, json!({"type": "text", "text": ""}));
                        self.open = OpenBlock::Text(*index, i);
                        i
                    }
                };
                Self::event(
                    out,
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": anthropic_index, "delta": {"type": "text_delta", "text": text}}),
                );
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.close_block(out);
                self.tools.push(PendingTool {
                    index: *index,
                    id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                });
            }
            StreamEvent::ToolCallDelta {
                index,
                partial_json,
            } => {
                if let Some(tool) = self.tools.iter_mut().find(|t| t.index == *index) {
                    tool.arguments.push_str(partial_json);
                }
            }
            StreamEvent::Finish {
                reason,
                stop_sequence,
            } => {
                self.finish = Some((reason.clone(), stop_sequence.clone()));
            }
            StreamEvent::Usage(usage) => self.usage = *usage,
        }
    }

    /// Ends a complete stream: close the open block, report the stop reason
    /// and output usage, then `message_stop`.
    pub fn finish(&mut self, out: &mut Vec<Bytes>) {
        if !self.started {
            self.start("msg_bulwark", "", 0, out);
        }
        self.close_block(out);
        self.flush_tools(out);
        let (reason, stop_sequence) = self.finish.take().unwrap_or((FinishReason::Stop, None));
        Self::event(
            out,
            "message_delta",
            json!({
                "type": "message_delta",
                "delta": {"stop_reason": stop_str(&reason), "stop_sequence": stop_sequence},
                "usage": {"input_tokens": self.usage.input_tokens, "output_tokens": self.usage.output_tokens},
            }),
        );
        Self::event(out, "message_stop", json!({"type": "message_stop"}));
    }

    /// Writes the pending tool calls, each as one complete block.
    fn flush_tools(&mut self, out: &mut Vec<Bytes>) {
        for tool in std::mem::take(&mut self.tools) {
            let i = self.open_block(
                out,
                json!({"type": "tool_use", "id": tool.id, "name": tool.name, "input": {}}),
            );
            if !tool.arguments.is_empty() {
                Self::event(
                    out,
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": i, "delta": {"type": "input_json_delta", "partial_json": tool.arguments}}),
                );
            }
            Self::event(
                out,
                "content_block_stop",
                json!({"type": "content_block_stop", "index": i}),
            );
        }
    }

    /// Ends a broken stream with an `error` event, as Anthropic does.
    pub fn error(&mut self, error: &ApiError, out: &mut Vec<Bytes>) {
        Self::event(out, "error", encode_error(error));
    }
}

// === Errors ===

pub fn error_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest => "invalid_request_error",
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::Billing => "billing_error",
        ErrorKind::Permission => "permission_error",
        ErrorKind::NotFound => "not_found_error",
        ErrorKind::RequestTooLarge => "request_too_large",
        ErrorKind::RateLimit => "rate_limit_error",
        ErrorKind::Api => "api_error",
        ErrorKind::Timeout => "timeout_error",
        ErrorKind::Overloaded => "overloaded_error",
    }
}

pub fn encode_error(error: &ApiError) -> Value {
    json!({"type": "error", "error": {"type": error_type(error.kind), "message": error.message}})
}

/// Reads an error body from Anthropic: (message, error type).
pub fn decode_error(body: &Value) -> (Option<String>, Option<String>) {
    let error = body.get("error").unwrap_or(body);
    (
        j::get_str(error, "message").map(str::to_string),
        j::get_str(error, "type").map(str::to_string),
    )
}

// === Relaying a provider's own stream to a client of the same format ===

/// Rebuilds the complete `message` object from a provider's stream events,
/// keeping every block and field Anthropic sent (thinking and its signature,
/// citations, server tools, cache usage), as the Anthropic SDK's
/// `get_final_message` does.
pub fn assemble_response<'a>(events: impl IntoIterator<Item = &'a SseEvent>) -> Value {
    let mut message = json!({});
    let mut partial_json: Vec<(usize, String)> = Vec::new();
    for event in events {
        let Ok(data) = serde_json::from_str::<Value>(&event.data) else {
            continue;
        };
        let index = data.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
        match j::get_str(&data, "type") {
            Some("message_start") => {
                if let Some(start) = data.get("message") {
                    message = start.clone();
                }
            }
            Some("content_block_start") => {
                let Some(content) = message.get_mut("content").and_then(Value::as_array_mut) else {
                    continue;
                };
                while content.len() <= index {
                    content.push(Value::Null);
                }
                content[index] = data.get("content_block").cloned().unwrap_or_default();
            }
            Some("content_block_delta") => {
                let delta = data.get("delta").cloned().unwrap_or_default();
                if j::get_str(&delta, "type") == Some("input_json_delta") {
                    let part = j::get_str(&delta, "partial_json").unwrap_or_default();
                    match partial_json.iter_mut().find(|(i, _)| *i == index) {
                        Some((_, text)) => text.push_str(part),
                        None => partial_json.push((index, part.to_string())),
                    }
                    continue;
                }
                let Some(block) = message.get_mut("content").and_then(|c| c.get_mut(index)) else {
                    continue;
                };
                match (j::get_str(&delta, "type"), block) {
                    (Some("text_delta"), block) => {
                        append(block, "text", j::get_str(&delta, "text"))
                    }
                    (Some("thinking_delta"), block) => {
                        append(block, "thinking", j::get_str(&delta, "thinking"))
                    }
                    (Some("signature_delta"), block) => {
                        block["signature"] = delta.get("signature").cloned().unwrap_or_default();
                    }
                    (Some("citations_delta"), block) => {
                        if !block["citations"].is_array() {
                            block["citations"] = json!([]);
                        }
                        if let (Some(list), Some(citation)) =
                            (block["citations"].as_array_mut(), delta.get("citation"))
                        {
                            list.push(citation.clone());
                        }
                    }
                    _ => {}
                }
            }
            Some("message_delta") => {
                if let Some(delta) = data.get("delta").and_then(Value::as_object) {
                    for (key, value) in delta {
                        message[key.as_str()] = value.clone();
                    }
                }
                if let Some(usage) = data.get("usage").and_then(Value::as_object) {
                    if !message["usage"].is_object() {
                        message["usage"] = json!({});
                    }
                    for (key, value) in usage {
                        if !value.is_null() {
                            message["usage"][key.as_str()] = value.clone();
                        }
                    }
                }
            }
            _ => {}
        }
    }
    for (index, text) in partial_json {
        if let Some(block) = message.get_mut("content").and_then(|c| c.get_mut(index)) {
            block["input"] = if text.trim().is_empty() {
                json!({})
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            };
        }
    }
    message
}

fn append(block: &mut Value, key: &str, part: Option<&str>) {
    let joined = format!(
        "{}{}",
        block[key].as_str().unwrap_or_default(),
        part.unwrap_or_default()
    );
    block[key] = json!(joined);
}
