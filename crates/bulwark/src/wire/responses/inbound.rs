//! Decoding a client's Responses API request (`POST /v1/responses`).
//!
//! The conversation arrives as `input` items (messages, function calls and
//! their outputs, reasoning, built-in tools' calls) and `instructions`; each
//! item becomes neutral messages, in order. What no other format carries is
//! recorded in `unmapped` with its fate (`wire::translate::FATES`).

use serde_json::{Value, json};

use crate::api::{
    ChatRequest, ContentBlock, ImageSource, Message, Role, SourceBody, SourceJson, ToolCall,
    ToolResult, Unmapped, WireFormat,
};
use crate::error::ApiError;
use crate::wire::json as j;

use super::options::{decode_reasoning, decode_text, decode_tool, decode_tool_choice};

pub(super) const FORMAT: WireFormat = WireFormat::Responses;

/// Items of built-in tools: they ran inside OpenAI, and only OpenAI can
/// read them back.
const SERVER_TOOL_ITEMS: &[&str] = &[
    "web_search_call",
    "file_search_call",
    "computer_call",
    "computer_call_output",
    "code_interpreter_call",
    "image_generation_call",
    "local_shell_call",
    "local_shell_call_output",
    "shell_call",
    "shell_call_output",
    "apply_patch_call",
    "apply_patch_call_output",
    "mcp_list_tools",
    "mcp_approval_request",
    "mcp_approval_response",
    "mcp_call",
    "tool_search_call",
    "tool_search_output",
];

pub(super) fn unmapped(out: &mut Vec<Unmapped>, path: impl Into<String>, feature: &'static str) {
    crate::wire::translate::unmapped(FORMAT, path, feature, out);
}

/// Where the limits (`wire::limits`) find what they count.
pub(crate) const SHAPE: crate::wire::limits::Shape = crate::wire::limits::Shape {
    messages: "input",
    parts: "content",
    top_parts: &[],
    model: Some("model"),
};

/// Decodes a client's request body.
pub fn decode_request(body: &[u8]) -> Result<ChatRequest, ApiError> {
    decode_with_source(j::parse_object(body)?, SourceJson::from_parsed(body))
}

/// Decodes a request body already parsed to a JSON object (the gateway reads
/// it once, to expand stored conversation state before decoding).
pub fn decode_object(obj: j::Object) -> Result<ChatRequest, ApiError> {
    let source = SourceJson::from_object(&obj);
    decode_with_source(obj, source)
}

fn decode_with_source(mut obj: j::Object, source: SourceJson) -> Result<ChatRequest, ApiError> {
    let model = j::require_string(&mut obj, "model", "model")?;
    let mut unmapped_fields = Vec::new();
    let mut messages = Vec::new();
    if let Some(instructions) = j::take(&mut obj, "instructions") {
        let content = match instructions {
            Value::String(text) => vec![ContentBlock::Text(text)],
            // Instructions may be given as input items too.
            Value::Array(items) => {
                let mut inner = Vec::new();
                decode_items(items, "instructions", &mut inner, &mut unmapped_fields)?;
                inner.into_iter().flat_map(|m| m.content).collect()
            }
            other => {
                return Err(j::wrong_type(
                    "instructions",
                    "a string or an array of items",
                    &other,
                ));
            }
        };
        messages.push(Message {
            role: Role::System,
            content,
        });
    }
    // A stored prompt or conversation can stand in for `input`; their own
    // fates (below) then say why no target can take the request.
    let stored_input = ["prompt", "conversation", "previous_response_id"]
        .iter()
        .any(|key| obj.get(*key).is_some_and(|v| !v.is_null()));
    match j::take(&mut obj, "input") {
        None if stored_input => {}
        None => return Err(j::missing("input")),
        Some(Value::String(text)) => messages.push(Message::text(Role::User, text)),
        Some(Value::Array(items)) => {
            decode_items(items, "input", &mut messages, &mut unmapped_fields)?;
        }
        Some(other) => {
            return Err(j::wrong_type(
                "input",
                "a string or an array of input items",
                &other,
            ));
        }
    }

    let max_tokens = j::take_u32(&mut obj, "max_output_tokens", "max_output_tokens")?;
    let temperature = j::take_f64(&mut obj, "temperature", "temperature")?;
    let top_p = j::take_f64(&mut obj, "top_p", "top_p")?;
    let stream = j::take_bool(&mut obj, "stream", "stream")?.unwrap_or(false);
    if let Some(mut options) = j::take_object(&mut obj, "stream_options", "stream_options")? {
        // Obfuscation padding only exists in OpenAI's own streams.
        options.remove("include_obfuscation");
        j::leftovers(&options, "stream_options", FORMAT, &mut unmapped_fields);
    }
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
    let reasoning = match j::take_object(&mut obj, "reasoning", "reasoning")? {
        None => None,
        Some(settings) => decode_reasoning(settings, &mut unmapped_fields)?,
    };
    let output_format = match j::take_object(&mut obj, "text", "text")? {
        None => None,
        Some(text) => decode_text(text, &mut unmapped_fields)?,
    };
    let user = j::take_string(&mut obj, "user", "user")?;
    let safety_identifier = j::take_string(&mut obj, "safety_identifier", "safety_identifier")?;
    if j::take(&mut obj, "previous_response_id").is_some() {
        unmapped(
            &mut unmapped_fields,
            "previous_response_id",
            "previous_response_id",
        );
    }
    // Bulwark keeps the conversation itself (the gateway's conversation
    // store), whichever target answers: nothing of `store` is lost.
    j::take(&mut obj, "store");
    // Defaults mean nothing to translate.
    for (key, default) in [
        ("truncation", json!("disabled")),
        ("background", json!(false)),
        ("top_logprobs", json!(0)),
        ("include", json!([])),
        ("metadata", json!({})),
    ] {
        if obj.get(key) == Some(&default) {
            obj.remove(key);
        }
    }
    for (key, feature) in [
        ("include", "include"),
        ("truncation", "truncation"),
        ("metadata", "metadata"),
        ("service_tier", "service_tier"),
        ("prompt_cache_key", "prompt_cache_key"),
        ("prompt_cache_retention", "prompt_cache_key"),
        ("max_tool_calls", "max_tool_calls"),
        ("top_logprobs", "logprobs"),
        ("background", "background"),
        ("conversation", "conversation"),
        ("prompt", "prompt"),
    ] {
        if j::take(&mut obj, key).is_some() {
            unmapped(&mut unmapped_fields, key, feature);
        }
    }
    j::leftovers(&obj, "", FORMAT, &mut unmapped_fields);

    let mut request = ChatRequest::new(model, messages);
    request.max_tokens = max_tokens;
    request.temperature = temperature;
    request.top_p = top_p;
    request.tools = tools;
    request.tool_choice = tool_choice;
    request.stream = stream;
    // A Responses stream always ends with its usage.
    request.include_usage = true;
    request.reasoning = reasoning;
    request.user = user.or(safety_identifier);
    request.parallel_tool_calls = parallel_tool_calls;
    request.output_format = output_format;
    request.unmapped = unmapped_fields;
    request.source = Some(SourceBody {
        format: FORMAT,
        body: source,
        query: None,
        headers: Vec::new(),
    });
    Ok(request)
}

/// Input items, appended to `messages` in order. Consecutive function calls
/// join the assistant turn before them and consecutive outputs form one user
/// turn, as every other format groups them.
fn decode_items(
    items: Vec<Value>,
    path: &str,
    messages: &mut Vec<Message>,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<(), ApiError> {
    // The index of the user turn that consecutive tool outputs fill. Only
    // the output arm below adds to a user turn, so the last message is
    // that turn exactly when its index is this; rescanning the turn for
    // every output instead would make many outputs quadratic.
    let mut results_turn: Option<usize> = None;
    for (i, item) in items.into_iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        let mut obj = j::into_object(item, &item_path)?;
        let kind = j::take_string(&mut obj, "type", &format!("{item_path}.type"))?;
        match kind.as_deref() {
            // An item without a type is a message (the SDKs' "easy" input).
            None | Some("message") => {
                messages.push(decode_message(obj, &item_path, unmapped_fields)?);
            }
            Some("function_call") => {
                let call = decode_function_call(obj, &item_path, unmapped_fields)?;
                match messages.last_mut() {
                    Some(last) if last.role == Role::Assistant => last.content.push(call),
                    _ => messages.push(Message {
                        role: Role::Assistant,
                        content: vec![call],
                    }),
                }
            }
            Some("function_call_output") => {
                let result = decode_function_output(obj, &item_path, unmapped_fields)?;
                let last = messages.len().checked_sub(1);
                match messages.last_mut() {
                    Some(turn) if last.is_some() && last == results_turn => {
                        turn.content.push(result)
                    }
                    _ => {
                        results_turn = Some(messages.len());
                        messages.push(Message {
                            role: Role::User,
                            content: vec![result],
                        });
                    }
                }
            }
            Some("reasoning") => unmapped(unmapped_fields, item_path, "reasoning_item"),
            Some("item_reference") => unmapped(unmapped_fields, item_path, "item_reference"),
            Some("custom_tool_call" | "custom_tool_call_output") => {
                unmapped(unmapped_fields, item_path, "custom_tool");
            }
            Some(kind) if SERVER_TOOL_ITEMS.contains(&kind) => {
                unmapped(unmapped_fields, item_path, "server_tool");
            }
            Some(_) => unmapped(unmapped_fields, item_path, "unknown_block"),
        }
    }
    Ok(())
}

fn decode_message(
    mut obj: j::Object,
    path: &str,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<Message, ApiError> {
    let role_name = j::require_string(&mut obj, "role", &format!("{path}.role"))?;
    let role = match role_name.as_str() {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "system" | "developer" => Role::System,
        _ => {
            unmapped(unmapped_fields, format!("{path}.role"), "unknown_role");
            Role::User
        }
    };
    let content = decode_content(
        j::take(&mut obj, "content"),
        &format!("{path}.content"),
        unmapped_fields,
    )?;
    // An earlier output's bookkeeping: the same message without it.
    for key in ["id", "status", "phase"] {
        obj.remove(key);
    }
    j::leftovers(&obj, path, FORMAT, unmapped_fields);
    Ok(Message { role, content })
}

/// Message content: a string, or an array of parts.
fn decode_content(
    value: Option<Value>,
    path: &str,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<Vec<ContentBlock>, ApiError> {
    crate::wire::openai::inbound::decode_content_with(value, path, unmapped_fields, decode_part)
}

fn decode_part(
    part: Value,
    path: &str,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<Option<ContentBlock>, ApiError> {
    let mut obj = j::into_object(part, path)?;
    let kind = j::require_string(&mut obj, "type", &format!("{path}.type"))?;
    match kind.as_str() {
        "input_text" | "output_text" => Ok(Some(ContentBlock::Text(j::require_string(
            &mut obj,
            "text",
            &format!("{path}.text"),
        )?))),
        // A refusal the model gave earlier reads as its text.
        "refusal" => Ok(Some(ContentBlock::Text(
            j::take_string(&mut obj, "refusal", &format!("{path}.refusal"))?.unwrap_or_default(),
        ))),
        "input_image" => {
            match j::take_string(&mut obj, "image_url", &format!("{path}.image_url"))? {
                Some(url) => Ok(Some(ContentBlock::Image(match j::split_data_url(&url) {
                    Some((media_type, data)) => ImageSource::Base64 { media_type, data },
                    None => ImageSource::Url(url),
                }))),
                // A `file_id`: the image is held in OpenAI's Files API.
                None => {
                    unmapped(unmapped_fields, path, "file_reference");
                    Ok(None)
                }
            }
        }
        "input_file" => {
            // By `file_id` the file is held in OpenAI's Files API; inline
            // (`file_data`, `file_url`) it is the client's own document.
            let feature = if obj.contains_key("file_id") {
                "file_reference"
            } else {
                "document"
            };
            unmapped(unmapped_fields, path, feature);
            Ok(None)
        }
        "input_audio" => {
            unmapped(unmapped_fields, path, "audio");
            Ok(None)
        }
        _ => {
            unmapped(unmapped_fields, path, "unknown_block");
            Ok(None)
        }
    }
}

fn decode_function_call(
    mut obj: j::Object,
    path: &str,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<ContentBlock, ApiError> {
    let id = j::require_string(&mut obj, "call_id", &format!("{path}.call_id"))?;
    let name = j::require_string(&mut obj, "name", &format!("{path}.name"))?;
    let arguments_path = format!("{path}.arguments");
    let arguments = j::take_string(&mut obj, "arguments", &arguments_path)?.unwrap_or_default();
    let input = j::parse_arguments(&arguments, &arguments_path)?;
    for key in ["id", "status", "namespace", "caller", "async"] {
        obj.remove(key);
    }
    j::leftovers(&obj, path, FORMAT, unmapped_fields);
    Ok(ContentBlock::ToolUse(ToolCall { id, name, input }))
}

fn decode_function_output(
    mut obj: j::Object,
    path: &str,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<ContentBlock, ApiError> {
    let tool_use_id = j::require_string(&mut obj, "call_id", &format!("{path}.call_id"))?;
    let content = decode_content(
        j::take(&mut obj, "output"),
        &format!("{path}.output"),
        unmapped_fields,
    )?;
    for key in ["id", "status"] {
        obj.remove(key);
    }
    j::leftovers(&obj, path, FORMAT, unmapped_fields);
    Ok(ContentBlock::ToolResult(ToolResult {
        tool_use_id,
        content,
        is_error: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Fate;
    use crate::api::{Effort, OutputFormat, Reasoning, Tool, ToolChoice};

    fn decode(body: Value) -> Result<ChatRequest, ApiError> {
        decode_request(body.to_string().as_bytes())
    }

    fn features(request: &ChatRequest) -> Vec<&'static str> {
        request.unmapped.iter().map(|u| u.feature).collect()
    }

    #[test]
    fn a_string_input_with_instructions_is_a_system_and_a_user_turn() -> Result<(), ApiError> {
        let request = decode(json!({
            "model": "m", "instructions": "Be brief.", "input": "Hello",
            "max_output_tokens": 50, "temperature": 0.5, "top_p": 0.9, "stream": true,
            "user": "u1", "parallel_tool_calls": false
        }))?;
        assert_eq!(
            request.messages,
            vec![
                Message::text(Role::System, "Be brief."),
                Message::text(Role::User, "Hello")
            ]
        );
        assert_eq!(request.max_tokens, Some(50));
        assert_eq!(request.temperature, Some(0.5));
        assert_eq!(request.top_p, Some(0.9));
        assert!(request.stream && request.include_usage);
        assert_eq!(request.user.as_deref(), Some("u1"));
        assert_eq!(request.parallel_tool_calls, Some(false));
        assert!(request.unmapped.is_empty(), "{:?}", request.unmapped);
        assert_eq!(
            request.source.map(|s| s.format),
            Some(WireFormat::Responses)
        );
        Ok(())
    }

    #[test]
    fn items_become_turns_with_calls_and_outputs_grouped() -> Result<(), ApiError> {
        let request = decode(json!({
            "model": "m",
            "input": [
                {"role": "developer", "content": "Use tools."},
                {"role": "user", "content": [
                    {"type": "input_text", "text": "Weather?"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "auto"}
                ]},
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
                 "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]},
                {"type": "function_call", "id": "fc_1", "call_id": "call_a", "name": "weather", "arguments": "{\"city\":\"Oslo\"}"},
                {"type": "function_call", "call_id": "call_b", "name": "weather", "arguments": "{\"city\":\"Rome\"}"},
                {"type": "function_call_output", "call_id": "call_a", "output": "cold"},
                {"type": "function_call_output", "call_id": "call_b", "output": [{"type": "input_text", "text": "warm"}]}
            ]
        }))?;
        let roles: Vec<Role> = request.messages.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            vec![Role::System, Role::User, Role::Assistant, Role::User]
        );
        assert_eq!(
            request.messages[1].content[1],
            ContentBlock::Image(ImageSource::Base64 {
                media_type: "image/png".into(),
                data: "AAAA".into()
            })
        );
        assert_eq!(
            request.messages[2].content,
            vec![
                ContentBlock::Text("Checking.".into()),
                ContentBlock::ToolUse(ToolCall {
                    id: "call_a".into(),
                    name: "weather".into(),
                    input: json!({"city": "Oslo"})
                }),
                ContentBlock::ToolUse(ToolCall {
                    id: "call_b".into(),
                    name: "weather".into(),
                    input: json!({"city": "Rome"})
                }),
            ]
        );
        assert_eq!(
            request.messages[3].content,
            vec![
                ContentBlock::ToolResult(ToolResult {
                    tool_use_id: "call_a".into(),
                    content: vec![ContentBlock::Text("cold".into())],
                    is_error: false
                }),
                ContentBlock::ToolResult(ToolResult {
                    tool_use_id: "call_b".into(),
                    content: vec![ContentBlock::Text("warm".into())],
                    is_error: false
                }),
            ]
        );
        assert_eq!(features(&request), vec!["reasoning_item"]);
        assert!(matches!(request.unmapped[0].fate, Fate::Drop(_)));
        assert_eq!(request.unmapped[0].path, "input[2]");
        Ok(())
    }

    /// Many outputs (an agent's long tool loop) group into one turn per
    /// run, and a message between runs starts a new one. Grouping is
    /// linear: 200k outputs took 53 s when each rescanned its turn.
    #[test]
    fn runs_of_many_tool_outputs_each_form_one_turn() -> Result<(), ApiError> {
        let output = |i: usize| json!({"type": "function_call_output", "call_id": format!("c{i}"), "output": "x"});
        let mut input: Vec<Value> = (0..20_000).map(output).collect();
        input.push(json!({"type": "reasoning", "id": "rs_1", "summary": []}));
        input.push(output(20_000));
        input.push(json!({"role": "user", "content": "and now?"}));
        input.extend((0..3).map(output));
        let request = decode(json!({"model": "m", "input": input}))?;
        let turns: Vec<(Role, usize)> = request
            .messages
            .iter()
            .map(|m| (m.role, m.content.len()))
            .collect();
        assert_eq!(
            turns,
            vec![(Role::User, 20_001), (Role::User, 1), (Role::User, 3)]
        );
        Ok(())
    }

    #[test]
    fn flat_function_tools_choice_reasoning_and_json_schema_are_mapped() -> Result<(), ApiError> {
        let request = decode(json!({
            "model": "m", "input": "x",
            "tools": [
                {"type": "function", "name": "weather", "description": "d",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": false},
                {"type": "web_search"},
                {"type": "custom", "name": "grammar"}
            ],
            "tool_choice": {"type": "function", "name": "weather"},
            "reasoning": {"effort": "low", "summary": "auto"},
            "text": {"format": {"type": "json_schema", "name": "Plan", "strict": true,
                                "schema": {"type": "object"}, "description": "a plan"}, "verbosity": "low"},
            "include": ["reasoning.encrypted_content"], "truncation": "auto", "store": true,
            "metadata": {"a": "b"}, "prompt_cache_key": "k", "service_tier": "auto"
        }))?;
        assert_eq!(
            request.tools,
            vec![Tool {
                name: "weather".into(),
                description: Some("d".into()),
                parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}})
            }]
        );
        assert_eq!(
            request.tool_choice,
            Some(ToolChoice::Tool("weather".into()))
        );
        assert_eq!(request.reasoning, Some(Reasoning::Effort(Effort::Low)));
        assert_eq!(
            request.output_format,
            Some(OutputFormat::JsonSchema {
                name: Some("Plan".into()),
                schema: json!({"type": "object", "description": "a plan"}),
                strict: Some(true)
            })
        );
        assert_eq!(
            features(&request),
            vec![
                "server_tool",
                "custom_tool",
                "reasoning_summary",
                "verbosity",
                "include",
                "truncation",
                "metadata",
                "service_tier",
                "prompt_cache_key"
            ]
        );
        assert!(
            request
                .unmapped
                .iter()
                .all(|u| matches!(u.fate, Fate::Drop(_)))
        );
        Ok(())
    }

    #[test]
    fn json_object_text_and_tool_choice_strings_are_read() -> Result<(), ApiError> {
        let request = decode(json!({
            "model": "m", "input": "x", "tool_choice": "required",
            "text": {"format": {"type": "json_object"}}
        }))?;
        assert_eq!(request.output_format, Some(OutputFormat::JsonObject));
        assert_eq!(request.tool_choice, Some(ToolChoice::Required));
        let plain =
            decode(json!({"model": "m", "input": "x", "text": {"format": {"type": "text"}}}))?;
        assert_eq!(plain.output_format, None);
        assert!(plain.unmapped.is_empty());
        Ok(())
    }

    #[test]
    fn strict_function_tools_by_default_are_reported() -> Result<(), ApiError> {
        let request = decode(json!({
            "model": "m", "input": "x",
            "tools": [{"type": "function", "name": "f", "parameters": null}]
        }))?;
        assert_eq!(features(&request), vec!["strict_tools"]);
        assert_eq!(
            request.tools[0].parameters,
            json!({"type": "object", "properties": {}})
        );
        Ok(())
    }

    #[test]
    fn what_cannot_be_carried_is_refused_by_its_fate() -> Result<(), ApiError> {
        let request = decode(json!({
            "model": "m",
            "input": [{"role": "user", "content": [
                {"type": "input_file", "file_data": "data:application/pdf;base64,AAAA"},
                {"type": "input_image", "file_id": "file_2"},
                {"type": "input_file", "file_id": "file_1"}
            ]}, {"type": "item_reference", "id": "msg_9"}],
            "text": {"format": {"type": "grammar"}},
            "previous_response_id": "resp_1",
            "background": true
        }))?;
        assert_eq!(
            features(&request),
            vec![
                "document",
                "file_reference",
                "file_reference",
                "item_reference",
                "response_format",
                "previous_response_id",
                "background"
            ]
        );
        assert!(
            request
                .unmapped
                .iter()
                .all(|u| matches!(u.fate, Fate::Refuse(_))),
            "{:?}",
            request.unmapped
        );
        Ok(())
    }

    #[test]
    fn the_door_refuses_only_what_cannot_be_routed() {
        for (body, param) in [
            (json!({"input": "x"}), "model"),
            (json!({"model": "m"}), "input"),
            (json!({"model": "m", "input": 3}), "input"),
            (
                json!({"model": "m", "input": "x", "max_output_tokens": "many"}),
                "max_output_tokens",
            ),
            (
                json!({"model": "m", "input": [{"type": "function_call", "name": "f"}]}),
                "input[0].call_id",
            ),
            (
                json!({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{"}]}),
                "input[0].arguments",
            ),
        ] {
            let error = decode(body.clone()).err();
            assert_eq!(
                error.and_then(|e| e.param).as_deref(),
                Some(param),
                "{body}"
            );
        }
    }

    #[test]
    fn a_stored_prompt_without_input_is_refused_by_its_fate_not_as_missing_input()
    -> Result<(), ApiError> {
        let request = decode(json!({"model": "m", "prompt": {"id": "pmpt_1"}}))?;
        assert!(request.messages.is_empty());
        assert_eq!(features(&request), vec!["prompt"]);
        assert!(matches!(request.unmapped[0].fate, Fate::Refuse(_)));
        Ok(())
    }

    #[test]
    fn unknown_items_and_fields_are_recorded_not_refused() -> Result<(), ApiError> {
        let request = decode(json!({
            "model": "m",
            "input": [{"type": "new_item"}, {"role": "user", "content": "hi"},
                      {"type": "web_search_call", "id": "ws_1", "status": "completed"}],
            "brand_new": 1
        }))?;
        assert_eq!(
            features(&request),
            vec!["unknown_block", "server_tool", "unknown_field"]
        );
        assert_eq!(request.messages, vec![Message::text(Role::User, "hi")]);
        Ok(())
    }
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
                r#"{"model":"m","input":[%s]}"#,
                r#"{"role":"user","content":"hi"}"#,
            ),
            parts: (
                r#"{"model":"m","input":[{"role":"user","content":[%s]}]}"#,
                r#"{"type":"input_text","text":"a"}"#,
            ),
            parts_param: "input[0].content",
        });
    }
}
