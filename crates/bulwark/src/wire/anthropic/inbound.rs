//! Decoding a client's Messages request.

use serde_json::{Value, json};

use crate::api::{
    ChatRequest, ContentBlock, Effort, ImageSource, Message, OutputFormat, Reasoning, Role,
    SourceBody, SourceJson, Tool, ToolCall, ToolChoice, ToolResult, Unmapped, WireFormat,
};
use crate::error::ApiError;
use crate::wire::json as j;

const FORMAT: WireFormat = WireFormat::Anthropic;

/// Records a field only Anthropic can express, with its fate elsewhere.
fn unmapped(out: &mut Vec<Unmapped>, path: impl Into<String>, feature: &'static str) {
    crate::wire::translate::unmapped(FORMAT, path, feature, out);
}

/// Where the limits (`wire::limits`) find what they count.
pub(crate) const SHAPE: crate::wire::limits::Shape = crate::wire::limits::Shape {
    messages: "messages",
    parts: "content",
    top_parts: &["system"],
    model: Some("model"),
};

pub fn decode_request(body: &[u8]) -> Result<ChatRequest, ApiError> {
    let mut obj = j::parse_object(body)?;
    let model = j::require_string(&mut obj, "model", "model")?;
    // Anthropic requires max_tokens; so does its front door, so that a client
    // learns the same rule whichever provider serves it.
    let max_tokens = j::take_u32(&mut obj, "max_tokens", "max_tokens")?
        .ok_or_else(|| j::missing("max_tokens"))?;
    let raw_messages =
        j::take_array(&mut obj, "messages", "messages")?.ok_or_else(|| j::missing("messages"))?;
    if raw_messages.is_empty() {
        return Err(ApiError::invalid_param(
            "messages",
            "`messages` must contain at least one message",
        ));
    }
    let mut unmapped_fields = Vec::new();
    let mut messages = Vec::with_capacity(raw_messages.len() + 1);
    match j::take(&mut obj, "system") {
        None => {}
        Some(Value::String(text)) => messages.push(Message::text(Role::System, text)),
        Some(Value::Array(blocks)) => {
            let content = decode_blocks(blocks, "system", &mut unmapped_fields)?;
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
        let role_path = format!("{path}.role");
        let role = match j::require_string(&mut message, "role", &role_path)?.as_str() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            // Mid-conversation system messages: an instruction at this
            // point of the conversation.
            "system" => Role::System,
            // A role newer than Bulwark: Anthropic judges it; elsewhere
            // the message's place would be lost.
            _ => {
                unmapped(&mut unmapped_fields, role_path, "unknown_role");
                Role::User
            }
        };
        let content = match j::take(&mut message, "content") {
            None => return Err(j::missing(&format!("{path}.content"))),
            Some(Value::String(text)) => vec![ContentBlock::Text(text)],
            Some(Value::Array(blocks)) => {
                decode_blocks(blocks, &format!("{path}.content"), &mut unmapped_fields)?
            }
            Some(other) => {
                return Err(j::wrong_type(
                    &format!("{path}.content"),
                    "a string or an array of blocks",
                    &other,
                ));
            }
        };
        j::leftovers(&message, &path, FORMAT, &mut unmapped_fields);
        messages.push(Message { role, content });
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
            if let Some(tool) = decode_tool(tool, i, &mut unmapped_fields)? {
                request.tools.push(tool);
            }
        }
    }
    if let Some(choice) = j::take_object(&mut obj, "tool_choice", "tool_choice")? {
        let (choice, one_call) = decode_tool_choice(choice, &mut unmapped_fields)?;
        request.tool_choice = choice;
        if one_call {
            request.parallel_tool_calls = Some(false);
        }
    }
    // The structured-outputs beta (`structured-outputs-2025-11-13`) named
    // the format at the top level; `output_config.format` replaced it and
    // wins when both are sent.
    if let Some(format) = j::take(&mut obj, "output_format") {
        request.output_format =
            decode_output_format(format, "output_format", &mut unmapped_fields)?;
    }
    request.reasoning =
        decode_reasoning(&mut obj, &mut request.output_format, &mut unmapped_fields)?;
    if let Some(mut metadata) = j::take_object(&mut obj, "metadata", "metadata")? {
        request.user = j::take_string(&mut metadata, "user_id", "metadata.user_id")?;
        // Other metadata is Anthropic's bookkeeping: it never changes the answer.
    }
    if obj.remove("service_tier").is_some() {
        unmapped(&mut unmapped_fields, "service_tier", "service_tier");
    }
    if obj.remove("context_management").is_some() {
        unmapped(
            &mut unmapped_fields,
            "context_management",
            "context_management",
        );
    }
    j::leftovers(&obj, "", FORMAT, &mut unmapped_fields);
    request.unmapped = unmapped_fields;
    request.source = Some(SourceBody {
        format: WireFormat::Anthropic,
        body: SourceJson::from_parsed(body),
        query: None,
        headers: Vec::new(),
    });
    Ok(request)
}

/// Reads `thinking` and `output_config`: Anthropic's reasoning settings.
fn decode_reasoning(
    obj: &mut j::Object,
    output_format: &mut Option<OutputFormat>,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<Option<Reasoning>, ApiError> {
    // `None` inside: the client asked for no reasoning.
    let mut effort: Option<Option<Effort>> = None;
    if let Some(mut config) = j::take_object(obj, "output_config", "output_config")? {
        if let Some(name) = j::take_string(&mut config, "effort", "output_config.effort")? {
            effort = Effort::parse(&name);
            if effort.is_none() {
                unmapped(unmapped_fields, "output_config.effort", "output_config");
            }
        }
        if let Some(format) = j::take(&mut config, "format") {
            *output_format = decode_output_format(format, "output_config.format", unmapped_fields)?;
        }
        for key in config.keys() {
            unmapped(
                unmapped_fields,
                format!("output_config.{key}"),
                "output_config",
            );
        }
    }
    let Some(mut thinking) = j::take_object(obj, "thinking", "thinking")? else {
        // An effort alone steers a model that reasons on its own.
        return Ok(effort.flatten().map(Reasoning::Effort));
    };
    let kind = j::take_string(&mut thinking, "type", "thinking.type")?;
    Ok(match kind.as_deref() {
        Some("enabled") => j::take_u32(&mut thinking, "budget_tokens", "thinking.budget_tokens")?
            .map(Reasoning::Budget),
        // Adaptive thinking thinks as hard as the effort says; Anthropic's
        // default effort is high.
        Some("adaptive") => effort.unwrap_or(Some(Effort::High)).map(Reasoning::Effort),
        Some("disabled") => None,
        // A thinking mode newer than Bulwark: Anthropic judges it.
        _ => {
            unmapped(unmapped_fields, "thinking.type", "unknown_field");
            None
        }
    })
}

/// Reads a structured-output format: `{type: json_schema, schema}`. A type
/// newer than Bulwark is recorded, so Anthropic itself judges it.
fn decode_output_format(
    format: Value,
    path: &str,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<Option<OutputFormat>, ApiError> {
    let mut format = j::into_object(format, path)?;
    let kind = j::take_string(&mut format, "type", &format!("{path}.type"))?;
    if kind.as_deref() != Some("json_schema") {
        unmapped(unmapped_fields, path.to_string(), "output_format");
        return Ok(None);
    }
    let schema =
        j::take(&mut format, "schema").ok_or_else(|| j::missing(&format!("{path}.schema")))?;
    if !schema.is_object() {
        return Err(j::wrong_type(
            &format!("{path}.schema"),
            "a JSON Schema object",
            &schema,
        ));
    }
    j::leftovers(&format, path, FORMAT, unmapped_fields);
    Ok(Some(OutputFormat::JsonSchema {
        name: None,
        schema,
        // Anthropic has no such setting: it always holds the answer to the
        // schema. An OpenAI target decides from the schema (see its encoder).
        strict: None,
    }))
}

/// One content block. A block type Bulwark does not know is kept out of
/// the neutral conversation and recorded, so Anthropic itself judges it.
fn decode_block(
    raw: Value,
    path: &str,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<Option<ContentBlock>, ApiError> {
    let mut obj = j::into_object(raw, path)?;
    let kind = j::require_string(&mut obj, "type", &format!("{path}.type"))?;
    if obj.remove("cache_control").is_some() {
        unmapped(
            unmapped_fields,
            format!("{path}.cache_control"),
            "cache_control",
        );
    }
    let block = match kind.as_str() {
        "text" => {
            if obj.remove("citations").is_some() {
                unmapped(unmapped_fields, format!("{path}.citations"), "citations");
            }
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
                // A Files API id, or a source newer than Bulwark.
                _ => {
                    unmapped(unmapped_fields, source_path, "file_reference");
                    return Ok(None);
                }
            };
            j::leftovers(&source, &source_path, FORMAT, unmapped_fields);
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
                    decode_blocks(blocks, &format!("{path}.content"), unmapped_fields)?
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
        "thinking" | "redacted_thinking" => {
            unmapped(unmapped_fields, path, "thinking_block");
            return Ok(None);
        }
        "document" | "search_result" => {
            unmapped(unmapped_fields, path, "document");
            return Ok(None);
        }
        "container_upload" => {
            unmapped(unmapped_fields, path, "file_reference");
            return Ok(None);
        }
        // Server tools' calls and results (`server_tool_use`,
        // `web_search_tool_result`...) run inside Anthropic.
        other if other.starts_with("server_tool") || other.ends_with("_tool_result") => {
            unmapped(unmapped_fields, path, "server_tool");
            return Ok(None);
        }
        _ => {
            unmapped(unmapped_fields, path, "unknown_block");
            return Ok(None);
        }
    };
    j::leftovers(&obj, path, FORMAT, unmapped_fields);
    Ok(Some(block))
}

fn decode_blocks(
    blocks: Vec<Value>,
    path: &str,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<Vec<ContentBlock>, ApiError> {
    let mut content = Vec::with_capacity(blocks.len());
    for (k, block) in blocks.into_iter().enumerate() {
        content.extend(decode_block(
            block,
            &format!("{path}[{k}]"),
            unmapped_fields,
        )?);
    }
    Ok(content)
}

/// A tool the client offers the model; `None` for a server tool, which
/// runs inside Anthropic and is no function a model elsewhere could call.
fn decode_tool(
    raw: Value,
    i: usize,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<Option<Tool>, ApiError> {
    let path = format!("tools[{i}]");
    let mut obj = j::into_object(raw, &path)?;
    if obj.remove("cache_control").is_some() {
        unmapped(
            unmapped_fields,
            format!("{path}.cache_control"),
            "cache_control",
        );
    }
    if let Some(kind) = j::take_string(&mut obj, "type", &format!("{path}.type"))?
        && kind != "custom"
    {
        unmapped(unmapped_fields, path, "server_tool");
        return Ok(None);
    }
    let tool = Tool {
        name: j::require_string(&mut obj, "name", &format!("{path}.name"))?,
        description: j::take_string(&mut obj, "description", &format!("{path}.description"))?,
        parameters: j::take(&mut obj, "input_schema").unwrap_or_else(|| json!({"type": "object"})),
    };
    j::leftovers(&obj, &path, FORMAT, unmapped_fields);
    Ok(Some(tool))
}

/// The tool choice, and whether the model may make only one call per turn.
fn decode_tool_choice(
    mut obj: j::Object,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<(Option<ToolChoice>, bool), ApiError> {
    let kind = j::require_string(&mut obj, "type", "tool_choice.type")?;
    let choice = match kind.as_str() {
        "auto" => Some(ToolChoice::Auto),
        "any" => Some(ToolChoice::Required),
        "none" => Some(ToolChoice::None),
        "tool" => Some(ToolChoice::Tool(j::require_string(
            &mut obj,
            "name",
            "tool_choice.name",
        )?)),
        _ => {
            unmapped(unmapped_fields, "tool_choice.type", "unknown_field");
            None
        }
    };
    let one_call = j::take_bool(
        &mut obj,
        "disable_parallel_tool_use",
        "tool_choice.disable_parallel_tool_use",
    )? == Some(true);
    j::leftovers(&obj, "tool_choice", FORMAT, unmapped_fields);
    Ok((choice, one_call))
}

/// The limits read this format's own fields: a body within them decodes,
/// one over them is refused before it is decoded, naming the setting.
#[cfg(test)]
mod limit_tests {
    use crate::wire::limits::dialect_cases::{Case, check};

    #[test]
    fn messages_and_parts_are_counted_in_this_format() {
        check(Case {
            shape: &super::SHAPE,
            decode: &|body| super::decode_request(body).is_ok(),
            model: Some("m"),
            messages: (
                r#"{"model":"m","max_tokens":5,"messages":[%s]}"#,
                r#"{"role":"user","content":"hi"}"#,
            ),
            parts: (
                r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[%s]}]}"#,
                r#"{"type":"text","text":"a"}"#,
            ),
            parts_param: "messages[0].content",
        });
    }
}
