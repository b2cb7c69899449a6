//! Decoding a client's Chat Completions request.

use serde_json::{Value, json};

use crate::api::{
    ChatRequest, ContentBlock, Effort, ImageSource, Message, OutputFormat, Reasoning, Role,
    SourceBody, SourceJson, Tool, ToolCall, ToolChoice, ToolResult, Unmapped, WireFormat,
};
use crate::error::ApiError;
use crate::wire::json as j;

const FORMAT: WireFormat = WireFormat::OpenAi;

/// Records a field only OpenAI can express, with its fate elsewhere.
fn unmapped(out: &mut Vec<Unmapped>, path: impl Into<String>, feature: &'static str) {
    crate::wire::translate::unmapped(FORMAT, path, feature, out);
}

/// Where the limits (`wire::limits`) find what they count.
pub(crate) const SHAPE: crate::wire::limits::Shape = crate::wire::limits::Shape {
    messages: "messages",
    parts: "content",
    top_parts: &[],
    model: Some("model"),
};

/// Decodes a client's Chat Completions request.
pub fn decode_request(body: &[u8]) -> Result<ChatRequest, ApiError> {
    let mut obj = j::parse_object(body)?;
    let model = j::require_string(&mut obj, "model", "model")?;
    let raw_messages =
        j::take_array(&mut obj, "messages", "messages")?.ok_or_else(|| j::missing("messages"))?;
    if raw_messages.is_empty() {
        return Err(ApiError::invalid_param(
            "messages",
            "`messages` must contain at least one message",
        ));
    }
    let mut unmapped_fields = Vec::new();
    let mut messages: Vec<Message> = Vec::with_capacity(raw_messages.len());
    // Whether the last message is a user turn of tool results only: kept
    // rather than recomputed, as rescanning a growing turn for every tool
    // message would make a request of many tool results quadratic.
    let mut last_is_results = false;
    for (i, raw) in raw_messages.into_iter().enumerate() {
        let message = decode_message(raw, i, &mut unmapped_fields)?;
        // Consecutive tool results form one user turn, as in the other formats.
        let only_results = message.content.iter().all(is_tool_result);
        match messages.last_mut() {
            Some(last) if only_results && last_is_results => last.content.extend(message.content),
            _ => {
                last_is_results = only_results && message.role == Role::User;
                messages.push(message);
            }
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
            j::leftovers(&options, "stream_options", FORMAT, &mut unmapped_fields);
            include
        }
        None => false,
    };
    let mut tools = Vec::new();
    if let Some(items) = j::take_array(&mut obj, "tools", "tools")? {
        for (i, item) in items.into_iter().enumerate() {
            tools.extend(decode_tool(item, i, &mut unmapped_fields)?);
        }
    }
    let tool_choice = match j::take(&mut obj, "tool_choice") {
        None => None,
        Some(value) => decode_tool_choice(value, &mut unmapped_fields)?,
    };
    let parallel_tool_calls = j::take_bool(&mut obj, "parallel_tool_calls", "parallel_tool_calls")?;
    let reasoning = match j::take_string(&mut obj, "reasoning_effort", "reasoning_effort")? {
        None => None,
        Some(name) => match Effort::parse(&name) {
            Some(effort) => effort.map(Reasoning::Effort),
            None => {
                unmapped(&mut unmapped_fields, "reasoning_effort", "unknown_field");
                None
            }
        },
    };
    let user = j::take_string(&mut obj, "user", "user")?;
    let safety_identifier = j::take_string(&mut obj, "safety_identifier", "safety_identifier")?;
    // Defaults mean nothing to translate.
    for (key, default) in [
        ("n", json!(1)),
        ("logprobs", json!(false)),
        ("store", json!(false)),
    ] {
        if obj.get(key) == Some(&default) {
            obj.remove(key);
        }
    }
    let output_format = match j::take_object(&mut obj, "response_format", "response_format")? {
        None => None,
        Some(format) => decode_response_format(format, &mut unmapped_fields)?,
    };
    for (key, feature) in [
        ("n", "n"),
        ("logprobs", "logprobs"),
        ("top_logprobs", "logprobs"),
        ("modalities", "audio"),
        ("audio", "audio"),
        ("store", "store"),
        ("metadata", "metadata"),
        ("service_tier", "service_tier"),
        ("prompt_cache_key", "prompt_cache_key"),
        ("seed", "seed"),
        ("frequency_penalty", "penalties"),
        ("presence_penalty", "penalties"),
        ("logit_bias", "logit_bias"),
        ("web_search_options", "server_tool"),
    ] {
        if obj.remove(key).is_some() {
            unmapped(&mut unmapped_fields, key, feature);
        }
    }
    j::leftovers(&obj, "", FORMAT, &mut unmapped_fields);

    let mut request = ChatRequest::new(model, messages);
    request.max_tokens = max_completion.or(max_legacy);
    request.temperature = temperature;
    request.top_p = top_p;
    request.stop = stop;
    request.tools = tools;
    request.tool_choice = tool_choice;
    request.stream = stream;
    request.include_usage = include_usage;
    request.reasoning = reasoning;
    request.user = user.or(safety_identifier);
    request.parallel_tool_calls = parallel_tool_calls;
    request.output_format = output_format;
    request.unmapped = unmapped_fields;
    request.source = Some(SourceBody {
        format: WireFormat::OpenAi,
        body: SourceJson::from_parsed(body),
        query: None,
        headers: Vec::new(),
    });
    Ok(request)
}

/// Reads `response_format`: `text` (the default, no constraint),
/// `json_object` or `json_schema`. A type newer than Bulwark is recorded, so
/// OpenAI itself judges it.
fn decode_response_format(
    mut format: j::Object,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<Option<OutputFormat>, ApiError> {
    let kind = j::take_string(&mut format, "type", "response_format.type")?;
    let output = match kind.as_deref() {
        Some("text") => None,
        Some("json_object") => Some(OutputFormat::JsonObject),
        Some("json_schema") => {
            let path = "response_format.json_schema";
            let mut spec = j::take_object(&mut format, "json_schema", path)?
                .ok_or_else(|| j::missing(path))?;
            let output = json_schema_output(&mut spec, path)?;
            j::leftovers(&spec, path, FORMAT, unmapped_fields);
            Some(output)
        }
        _ => {
            unmapped(unmapped_fields, "response_format", "response_format");
            return Ok(None);
        }
    };
    j::leftovers(&format, "response_format", FORMAT, unmapped_fields);
    Ok(output)
}

fn is_tool_result(block: &ContentBlock) -> bool {
    matches!(block, ContentBlock::ToolResult(_))
}

fn decode_message(
    raw: Value,
    i: usize,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<Message, ApiError> {
    let path = format!("messages[{i}]");
    let mut obj = j::into_object(raw, &path)?;
    let role = j::require_string(&mut obj, "role", &format!("{path}.role"))?;
    let content_path = format!("{path}.content");
    let message = match role.as_str() {
        "system" | "developer" => {
            let content =
                decode_content(j::take(&mut obj, "content"), &content_path, unmapped_fields)?;
            Message {
                role: Role::System,
                content,
            }
        }
        "user" => Message {
            role: Role::User,
            content: decode_content(j::take(&mut obj, "content"), &content_path, unmapped_fields)?,
        },
        "assistant" => {
            let mut content =
                decode_content(j::take(&mut obj, "content"), &content_path, unmapped_fields)?;
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
            let content =
                decode_content(j::take(&mut obj, "content"), &content_path, unmapped_fields)?;
            Message {
                role: Role::User,
                content: vec![ContentBlock::ToolResult(ToolResult {
                    tool_use_id,
                    content,
                    is_error: false,
                })],
            }
        }
        // A role newer than Bulwark (or the legacy `function`): OpenAI
        // judges it; elsewhere the message's place would be lost.
        _ => {
            unmapped(unmapped_fields, format!("{path}.role"), "unknown_role");
            obj.remove("name");
            Message {
                role: Role::User,
                content: decode_content(
                    j::take(&mut obj, "content"),
                    &content_path,
                    unmapped_fields,
                )?,
            }
        }
    };
    obj.remove("type");
    j::leftovers(&obj, &path, FORMAT, unmapped_fields);
    Ok(message)
}

/// Message content: a string, or an array of parts. A part Bulwark cannot
/// read is kept out of the neutral conversation and recorded, so OpenAI
/// itself judges it.
fn decode_content(
    value: Option<Value>,
    path: &str,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<Vec<ContentBlock>, ApiError> {
    decode_content_with(value, path, unmapped_fields, decode_part)
}

/// Reads one content part; `None` keeps it out (recorded in `unmapped`).
pub(crate) type PartReader =
    fn(Value, &str, &mut Vec<Unmapped>) -> Result<Option<ContentBlock>, ApiError>;

/// Content as both OpenAI formats send it, a string or an array of parts,
/// with each part read by `part` (Chat Completions' and the Responses
/// API's part types differ).
pub(crate) fn decode_content_with(
    value: Option<Value>,
    path: &str,
    unmapped_fields: &mut Vec<Unmapped>,
    part: PartReader,
) -> Result<Vec<ContentBlock>, ApiError> {
    match value {
        None => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![ContentBlock::Text(text)]),
        Some(Value::Array(parts)) => {
            let mut content = Vec::with_capacity(parts.len());
            for (k, raw) in parts.into_iter().enumerate() {
                content.extend(part(raw, &format!("{path}[{k}]"), unmapped_fields)?);
            }
            Ok(content)
        }
        Some(other) => Err(j::wrong_type(
            path,
            "a string or an array of content parts",
            &other,
        )),
    }
}

fn decode_part(
    part: Value,
    path: &str,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<Option<ContentBlock>, ApiError> {
    let mut obj = j::into_object(part, path)?;
    let kind = j::require_string(&mut obj, "type", &format!("{path}.type"))?;
    match kind.as_str() {
        "text" => Ok(Some(ContentBlock::Text(j::require_string(
            &mut obj,
            "text",
            &format!("{path}.text"),
        )?))),
        "image_url" => {
            let image_path = format!("{path}.image_url");
            let mut image = j::take_object(&mut obj, "image_url", &image_path)?
                .ok_or_else(|| j::missing(&image_path))?;
            let url = j::require_string(&mut image, "url", &format!("{image_path}.url"))?;
            Ok(Some(ContentBlock::Image(match j::split_data_url(&url) {
                Some((media_type, data)) => ImageSource::Base64 { media_type, data },
                None => ImageSource::Url(url),
            })))
        }
        "input_audio" => {
            unmapped(unmapped_fields, path, "audio");
            Ok(None)
        }
        "file" => {
            unmapped(unmapped_fields, path, "document");
            Ok(None)
        }
        // A refusal the model gave earlier reads as its text.
        "refusal" => Ok(Some(ContentBlock::Text(
            j::take_string(&mut obj, "refusal", &format!("{path}.refusal"))?.unwrap_or_default(),
        ))),
        _ => {
            unmapped(unmapped_fields, path, "unknown_block");
            Ok(None)
        }
    }
}

/// A tool the client offers the model; `None` for a kind other than a
/// function (OpenAI's own tools, custom grammar tools), which no model
/// elsewhere could call.
fn decode_tool(
    item: Value,
    i: usize,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<Option<Tool>, ApiError> {
    let path = format!("tools[{i}]");
    let mut obj = j::into_object(item, &path)?;
    let kind = j::take_string(&mut obj, "type", &format!("{path}.type"))?;
    if kind.as_deref().is_some_and(|k| k != "function") {
        unmapped(unmapped_fields, path, "server_tool");
        return Ok(None);
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
        unmapped(
            unmapped_fields,
            format!("{function_path}.strict"),
            "strict_tools",
        );
    }
    j::leftovers(&function, &function_path, FORMAT, unmapped_fields);
    j::leftovers(&obj, &path, FORMAT, unmapped_fields);
    Ok(Some(Tool {
        name,
        description,
        parameters,
    }))
}

fn decode_tool_choice(
    value: Value,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<Option<ToolChoice>, ApiError> {
    match &value {
        Value::String(s) => Ok(match s.as_str() {
            "auto" => Some(ToolChoice::Auto),
            "none" => Some(ToolChoice::None),
            "required" => Some(ToolChoice::Required),
            _ => {
                unmapped(unmapped_fields, "tool_choice", "unknown_field");
                None
            }
        }),
        Value::Object(obj) => match obj.get("function").and_then(|f| j::get_str(f, "name")) {
            Some(name) => Ok(Some(ToolChoice::Tool(name.to_string()))),
            // `allowed_tools`, custom tools: choices newer than Bulwark.
            None => {
                unmapped(unmapped_fields, "tool_choice", "unknown_field");
                Ok(None)
            }
        },
        other => Err(j::wrong_type("tool_choice", "a string or an object", other)),
    }
}

/// A JSON Schema output format from its fields (`name`, `strict`,
/// `description`, `schema`) as found at `path`: Chat Completions nests them
/// in `response_format.json_schema`, the Responses API puts them beside the
/// type in `text.format`.
pub(crate) fn json_schema_output(
    spec: &mut j::Object,
    path: &str,
) -> Result<OutputFormat, ApiError> {
    let name = j::take_string(spec, "name", &format!("{path}.name"))?;
    let strict = j::take_bool(spec, "strict", &format!("{path}.strict"))?;
    let description = j::take_string(spec, "description", &format!("{path}.description"))?;
    // OpenAI defaults to an open schema; every format reads that.
    let mut schema = j::take(spec, "schema").unwrap_or_else(|| json!({}));
    let Some(root) = schema.as_object_mut() else {
        return Err(j::wrong_type(
            &format!("{path}.schema"),
            "a JSON Schema object",
            &schema,
        ));
    };
    // What the answer is for: other formats have no field for it
    // beside the schema, but every provider reads a schema's own
    // `description`.
    if let Some(description) = description
        && !root.contains_key("description")
    {
        root.insert("description".into(), json!(description));
    }
    Ok(OutputFormat::JsonSchema {
        name,
        schema,
        strict,
    })
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
                r#"{"model":"m","messages":[%s]}"#,
                r#"{"role":"user","content":"hi"}"#,
            ),
            parts: (
                r#"{"model":"m","messages":[{"role":"user","content":[%s]}]}"#,
                r#"{"type":"text","text":"a"}"#,
            ),
            parts_param: "messages[0].content",
        });
    }
}
