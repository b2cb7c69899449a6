//! Decoding a client's Chat Completions request.

use serde_json::{Value, json};

use crate::api::{
    ChatRequest, ContentBlock, ImageSource, Message, Role, SourceBody, Tool, ToolCall, ToolChoice,
    ToolResult, WireFormat,
};
use crate::error::ApiError;
use crate::wire::json as j;

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
        query: None,
        headers: Vec::new(),
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
