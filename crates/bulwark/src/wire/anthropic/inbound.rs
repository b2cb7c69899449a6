//! Decoding a client's Messages request.

use serde_json::{Value, json};

use crate::api::{
    ChatRequest, ContentBlock, ImageSource, Message, Role, SourceBody, Tool, ToolCall, ToolChoice,
    ToolResult, WireFormat,
};
use crate::error::ApiError;
use crate::wire::json as j;

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
        query: None,
        headers: Vec::new(),
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
