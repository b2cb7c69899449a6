//! Decoding a client's `generateContent` request. The model is not in the
//! body but in the URL path: the front door sets it after decoding, and so
//! does it `stream`, which the method (`streamGenerateContent`) decides.

use std::collections::{HashMap, VecDeque};

use serde_json::{Value, json};

use crate::api::{
    ChatRequest, ContentBlock, ImageSource, Message, Role, SourceBody, SourceJson, Tool, ToolCall,
    ToolChoice, ToolResult, Unmapped, WireFormat,
};
use crate::error::ApiError;
use crate::wire::json as j;

use super::generation::{decode_generation_config, openapi_to_json_schema};

pub(super) const FORMAT: WireFormat = WireFormat::Gemini;

/// Records a field only Gemini can express, with its fate elsewhere.
pub(super) fn unmapped(out: &mut Vec<Unmapped>, path: impl Into<String>, feature: &'static str) {
    crate::wire::translate::unmapped(FORMAT, path, feature, out);
}

/// The function calls met so far in the conversation, so that a
/// `functionResponse`, which Gemini pairs with its call by name (ids are
/// optional), gets the id of the call it answers. Both look-ups are O(1)
/// (amortised): a body of many calls and responses must not cost a scan of
/// every earlier call per response.
#[derive(Default)]
struct Calls {
    /// Each call's id and whether it has been answered, in order of appearance.
    seen: Vec<(String, bool)>,
    /// Index in `seen` of each id; the first call wins when ids repeat.
    by_id: HashMap<String, usize>,
    /// Per name, the indices of calls not yet answered, earliest first. A
    /// call answered by id stays queued until it reaches the front, where
    /// it is dropped, so each call is dequeued at most once.
    unanswered: HashMap<String, VecDeque<usize>>,
}

impl Calls {
    fn call(&mut self, id: Option<String>, name: &str) -> String {
        let index = self.seen.len();
        let id = id.unwrap_or_else(|| format!("call_{name}_{}", index + 1));
        self.seen.push((id.clone(), false));
        self.by_id.entry(id.clone()).or_insert(index);
        self.unanswered
            .entry(name.to_string())
            .or_default()
            .push_back(index);
        id
    }

    /// The id of the call a response answers: its own id when it names one,
    /// else the earliest unanswered call of the same name. A response to no
    /// call keeps a made-up id; the target judges it.
    fn answer(&mut self, id: Option<String>, name: &str) -> String {
        let found = match &id {
            Some(id) => self.by_id.get(id).copied(),
            None => self.unanswered.get_mut(name).and_then(|queue| {
                while let Some(index) = queue.pop_front() {
                    if self.seen.get(index).is_some_and(|(_, answered)| !answered) {
                        return Some(index);
                    }
                }
                None
            }),
        };
        match found.and_then(|index| self.seen.get_mut(index)) {
            Some((id, answered)) => {
                *answered = true;
                id.clone()
            }
            None => id.unwrap_or_else(|| format!("call_{name}_unpaired")),
        }
    }
}

/// An object of the request's own structure with its keys in lowerCamelCase.
/// Google's API reads protobuf JSON, which takes each field by its proto
/// name too (`system_instruction`, `parameters_json_schema`), and the
/// Python SDK sends some so; values (arguments, schemas) are left alone.
fn camel(obj: j::Object) -> j::Object {
    if !obj.keys().any(|key| key.contains('_')) {
        return obj;
    }
    let mut out = j::Object::with_capacity(obj.len());
    for (key, value) in obj {
        if !key.contains('_') {
            // The camelCase spelling wins when a body holds both.
            out.insert(key, value);
            continue;
        }
        let converted = {
            let mut camel = String::with_capacity(key.len());
            let mut upper = false;
            for c in key.chars() {
                match c {
                    '_' if !camel.is_empty() => upper = true,
                    c if upper => {
                        camel.extend(c.to_uppercase());
                        upper = false;
                    }
                    c => camel.push(c),
                }
            }
            camel
        };
        out.entry(converted).or_insert(value);
    }
    out
}

fn object(value: Value, path: &str) -> Result<j::Object, ApiError> {
    j::into_object(value, path).map(camel)
}

pub(super) fn take_object(
    obj: &mut j::Object,
    key: &str,
    path: &str,
) -> Result<Option<j::Object>, ApiError> {
    Ok(j::take_object(obj, key, path)?.map(camel))
}

/// Where the limits (`wire::limits`) find what they count.
pub(crate) const SHAPE: crate::wire::limits::Shape = crate::wire::limits::Shape {
    messages: "contents",
    parts: "parts",
    top_parts: &[],
    model: None,
};

pub fn decode_request(body: &[u8]) -> Result<ChatRequest, ApiError> {
    let raw = j::parse_object(body)?;
    let mut obj = camel(raw);
    let raw_contents =
        j::take_array(&mut obj, "contents", "contents")?.ok_or_else(|| j::missing("contents"))?;
    if raw_contents.is_empty() {
        return Err(ApiError::invalid_param(
            "contents",
            "`contents` must contain at least one content",
        ));
    }
    let mut unmapped_fields = Vec::new();
    let mut messages = Vec::with_capacity(raw_contents.len() + 1);
    if let Some(system) = j::take(&mut obj, "systemInstruction") {
        let content = match system {
            // The REST API takes a Content; a bare string is what some
            // clients write, and Gemini reads it the same.
            Value::String(text) => vec![ContentBlock::Text(text)],
            Value::Object(content) => {
                let mut content = camel(content);
                content.remove("role");
                let parts = j::take_array(&mut content, "parts", "systemInstruction.parts")?
                    .unwrap_or_default();
                let mut calls = Calls::default();
                let blocks = decode_parts(
                    parts,
                    "systemInstruction.parts",
                    &mut calls,
                    &mut unmapped_fields,
                )?;
                j::leftovers(&content, "systemInstruction", FORMAT, &mut unmapped_fields);
                blocks
            }
            other => {
                return Err(j::wrong_type(
                    "systemInstruction",
                    "a Content object",
                    &other,
                ));
            }
        };
        messages.push(Message {
            role: Role::System,
            content,
        });
    }
    let mut calls = Calls::default();
    for (i, raw) in raw_contents.into_iter().enumerate() {
        let path = format!("contents[{i}]");
        let mut content = object(raw, &path)?;
        let role_path = format!("{path}.role");
        // A single-turn request may leave the role out: it is the user's.
        let role = match j::take_string(&mut content, "role", &role_path)?.as_deref() {
            None | Some("user") => Role::User,
            Some("model") => Role::Assistant,
            // The legacy role of function responses.
            Some("function") => Role::User,
            Some(_) => {
                unmapped(&mut unmapped_fields, role_path, "unknown_role");
                Role::User
            }
        };
        let parts =
            j::take_array(&mut content, "parts", &format!("{path}.parts"))?.unwrap_or_default();
        let blocks = decode_parts(
            parts,
            &format!("{path}.parts"),
            &mut calls,
            &mut unmapped_fields,
        )?;
        j::leftovers(&content, &path, FORMAT, &mut unmapped_fields);
        messages.push(Message {
            role,
            content: blocks,
        });
    }

    let mut request = ChatRequest::new(String::new(), messages);
    // Gemini always reports usage.
    request.include_usage = true;
    if let Some(tools) = j::take_array(&mut obj, "tools", "tools")? {
        for (i, tool) in tools.into_iter().enumerate() {
            decode_tool(tool, i, &mut request.tools, &mut unmapped_fields)?;
        }
    }
    if let Some(mut config) = take_object(&mut obj, "toolConfig", "toolConfig")? {
        if let Some(calling) = take_object(
            &mut config,
            "functionCallingConfig",
            "toolConfig.functionCallingConfig",
        )? {
            request.tool_choice =
                decode_calling_config(calling, &mut request.tools, &mut unmapped_fields)?;
        }
        j::leftovers(&config, "toolConfig", FORMAT, &mut unmapped_fields);
    }
    if let Some(config) = take_object(&mut obj, "generationConfig", "generationConfig")? {
        decode_generation_config(config, &mut request, &mut unmapped_fields)?;
    }
    if obj.remove("safetySettings").is_some() {
        unmapped(&mut unmapped_fields, "safetySettings", "safety_settings");
    }
    if obj.remove("cachedContent").is_some() {
        unmapped(&mut unmapped_fields, "cachedContent", "cached_content");
    }
    // Vertex AI's billing labels: bookkeeping that never changes the answer.
    obj.remove("labels");
    // The model is the URL's; a body naming one is Gemini's to judge.
    if obj.remove("model").is_some() {
        unmapped(&mut unmapped_fields, "model", "unknown_field");
    }
    j::leftovers(&obj, "", FORMAT, &mut unmapped_fields);
    request.unmapped = unmapped_fields;
    request.source = Some(SourceBody {
        format: FORMAT,
        body: SourceJson::from_parsed(body),
        query: None,
        headers: Vec::new(),
    });
    Ok(request)
}

fn decode_parts(
    parts: Vec<Value>,
    path: &str,
    calls: &mut Calls,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<Vec<ContentBlock>, ApiError> {
    let mut blocks = Vec::with_capacity(parts.len());
    for (k, part) in parts.into_iter().enumerate() {
        blocks.extend(decode_part(
            part,
            &format!("{path}[{k}]"),
            calls,
            unmapped_fields,
        )?);
    }
    Ok(blocks)
}

/// One part. A part Bulwark does not know is kept out of the neutral
/// conversation and recorded, so Gemini itself judges it.
fn decode_part(
    raw: Value,
    path: &str,
    calls: &mut Calls,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<Option<ContentBlock>, ApiError> {
    let mut part = object(raw, path)?;
    if part.remove("thoughtSignature").is_some() {
        unmapped(
            unmapped_fields,
            format!("{path}.thoughtSignature"),
            "thought_signature",
        );
    }
    let thought = j::take_bool(&mut part, "thought", &format!("{path}.thought"))? == Some(true);
    let block = if let Some(text) = j::take_string(&mut part, "text", &format!("{path}.text"))? {
        if thought {
            unmapped(unmapped_fields, path, "thought");
            return Ok(None);
        }
        ContentBlock::Text(text)
    } else if let Some(mut data) =
        take_object(&mut part, "inlineData", &format!("{path}.inlineData"))?
    {
        let data_path = format!("{path}.inlineData");
        let media_type =
            j::require_string(&mut data, "mimeType", &format!("{data_path}.mimeType"))?;
        let bytes = j::require_string(&mut data, "data", &format!("{data_path}.data"))?;
        if !media_type.starts_with("image/") {
            // PDFs, audio and video inline: the neutral model holds images only.
            unmapped(unmapped_fields, data_path, "inline_media");
            return Ok(None);
        }
        j::leftovers(&data, &data_path, FORMAT, unmapped_fields);
        ContentBlock::Image(ImageSource::Base64 {
            media_type,
            data: bytes,
        })
    } else if part.remove("fileData").is_some() {
        // A Files API, Cloud Storage or YouTube URI: only Gemini reads them.
        unmapped(
            unmapped_fields,
            format!("{path}.fileData"),
            "file_reference",
        );
        return Ok(None);
    } else if let Some(mut call) =
        take_object(&mut part, "functionCall", &format!("{path}.functionCall"))?
    {
        let call_path = format!("{path}.functionCall");
        let name = j::require_string(&mut call, "name", &format!("{call_path}.name"))?;
        let id = j::take_string(&mut call, "id", &format!("{call_path}.id"))?;
        let input = j::take(&mut call, "args").unwrap_or_else(|| json!({}));
        j::leftovers(&call, &call_path, FORMAT, unmapped_fields);
        ContentBlock::ToolUse(ToolCall {
            id: calls.call(id, &name),
            name,
            input,
        })
    } else if let Some(mut response) = take_object(
        &mut part,
        "functionResponse",
        &format!("{path}.functionResponse"),
    )? {
        let response_path = format!("{path}.functionResponse");
        let name = j::require_string(&mut response, "name", &format!("{response_path}.name"))?;
        let id = j::take_string(&mut response, "id", &format!("{response_path}.id"))?;
        let (text, is_error) = result_text(j::take(&mut response, "response"));
        if response.remove("parts").is_some() {
            // Multimodal function responses: media the neutral result lacks.
            unmapped(
                unmapped_fields,
                format!("{response_path}.parts"),
                "inline_media",
            );
        }
        j::leftovers(&response, &response_path, FORMAT, unmapped_fields);
        ContentBlock::ToolResult(ToolResult {
            tool_use_id: calls.answer(id, &name),
            content: vec![ContentBlock::Text(text)],
            is_error,
        })
    } else if part.remove("executableCode").is_some()
        || part.remove("codeExecutionResult").is_some()
    {
        // Code execution runs inside Gemini.
        unmapped(unmapped_fields, path, "server_tool");
        return Ok(None);
    } else {
        unmapped(unmapped_fields, path, "unknown_block");
        return Ok(None);
    };
    j::leftovers(&part, path, FORMAT, unmapped_fields);
    Ok(Some(block))
}

/// A function response's `response` object as the text of a tool result,
/// and whether it reports an error. Google's guide names the keys `output`
/// and `error`; an object holding only one such string is that string, any
/// other object its JSON.
fn result_text(response: Option<Value>) -> (String, bool) {
    let Some(response) = response else {
        return (String::new(), false);
    };
    if let Value::Object(map) = &response
        && map.len() == 1
        && let Some((key, value)) = map.iter().next()
    {
        let is_error = key == "error";
        if matches!(key.as_str(), "output" | "content" | "result" | "error") {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            return (text, is_error);
        }
    }
    (
        match response {
            Value::String(text) => text,
            other => other.to_string(),
        },
        false,
    )
}

/// One entry of `tools`: its function declarations join the request's
/// tools; Google's own tools (search, code execution, URL context...) run
/// inside Gemini and are recorded.
fn decode_tool(
    raw: Value,
    i: usize,
    tools: &mut Vec<Tool>,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<(), ApiError> {
    let path = format!("tools[{i}]");
    let mut obj = object(raw, &path)?;
    let declarations_path = format!("{path}.functionDeclarations");
    if let Some(declarations) = j::take_array(&mut obj, "functionDeclarations", &declarations_path)?
    {
        for (k, declaration) in declarations.into_iter().enumerate() {
            let path = format!("{declarations_path}[{k}]");
            let mut d = object(declaration, &path)?;
            let name = j::require_string(&mut d, "name", &format!("{path}.name"))?;
            let description =
                j::take_string(&mut d, "description", &format!("{path}.description"))?;
            // `parametersJsonSchema` is JSON Schema as written; `parameters`
            // is Google's OpenAPI subset, whose upper-case type names no
            // other provider reads.
            let parameters = match (
                j::take(&mut d, "parametersJsonSchema"),
                j::take(&mut d, "parameters"),
            ) {
                (Some(schema), _) => schema,
                (None, Some(schema)) => openapi_to_json_schema(schema),
                (None, None) => json!({"type": "object", "properties": {}}),
            };
            // What the function returns and how it is scheduled only steer
            // Gemini's own tool loop.
            d.remove("response");
            d.remove("responseJsonSchema");
            d.remove("behavior");
            j::leftovers(&d, &path, FORMAT, unmapped_fields);
            tools.push(Tool {
                name,
                description,
                parameters,
            });
        }
    }
    for key in obj.keys() {
        unmapped(unmapped_fields, format!("{path}.{key}"), "server_tool");
    }
    Ok(())
}

/// `functionCallingConfig`: the mode, and the functions it may call. With
/// `ANY`, the allowed functions are the only ones the model is offered.
fn decode_calling_config(
    mut config: j::Object,
    tools: &mut Vec<Tool>,
    unmapped_fields: &mut Vec<Unmapped>,
) -> Result<Option<ToolChoice>, ApiError> {
    const PATH: &str = "toolConfig.functionCallingConfig";
    let mode = j::take_string(&mut config, "mode", &format!("{PATH}.mode"))?;
    let allowed = j::take_string_list(
        &mut config,
        "allowedFunctionNames",
        &format!("{PATH}.allowedFunctionNames"),
    )?;
    let choice = match mode.as_deref() {
        None | Some("MODE_UNSPECIFIED") => None,
        // `VALIDATED` lets the model choose, holding its calls to the schema.
        Some("AUTO") | Some("VALIDATED") => Some(ToolChoice::Auto),
        Some("NONE") => Some(ToolChoice::None),
        Some("ANY") => match allowed.as_slice() {
            [] => Some(ToolChoice::Required),
            [one] => Some(ToolChoice::Tool(one.clone())),
            several => {
                tools.retain(|tool| several.contains(&tool.name));
                Some(ToolChoice::Required)
            }
        },
        Some(_) => {
            unmapped(unmapped_fields, format!("{PATH}.mode"), "unknown_field");
            None
        }
    };
    j::leftovers(&config, PATH, FORMAT, unmapped_fields);
    Ok(choice)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Fate;
    use crate::api::{OutputFormat, Reasoning};

    fn decode(body: Value) -> ChatRequest {
        match decode_request(body.to_string().as_bytes()) {
            Ok(request) => request,
            Err(error) => panic!("{error:?}"),
        }
    }

    fn features(request: &ChatRequest) -> Vec<&'static str> {
        request.unmapped.iter().map(|u| u.feature).collect()
    }

    #[test]
    fn a_conversation_with_a_function_call_round_trip_decodes() {
        let request = decode(json!({
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "contents": [
                {"role": "user", "parts": [{"text": "Weather?"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}, "thoughtSignature": "c2ln"}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}}]}
            ],
            "tools": [{"functionDeclarations": [{"name": "get_weather", "description": "Weather",
                "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING", "nullable": true}}, "required": ["city"]}}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
            "generationConfig": {"temperature": 0.5, "topK": 40.0, "maxOutputTokens": 100, "stopSequences": ["END"]}
        }));
        assert_eq!(request.model, "");
        assert_eq!(request.messages.len(), 4);
        assert_eq!(
            request.messages[0],
            Message::text(Role::System, "Be brief.")
        );
        let ContentBlock::ToolUse(call) = &request.messages[2].content[0] else {
            panic!("{:?}", request.messages[2]);
        };
        assert_eq!(call.name, "get_weather");
        assert_eq!(call.input, json!({"city": "Oslo"}));
        assert_eq!(
            request.messages[3].content[0],
            ContentBlock::ToolResult(ToolResult {
                tool_use_id: call.id.clone(),
                content: vec![ContentBlock::Text("sunny".into())],
                is_error: false,
            })
        );
        assert_eq!(
            request.tools[0].parameters,
            json!({"type": "object", "properties": {"city": {"type": ["string", "null"]}}, "required": ["city"]})
        );
        assert_eq!(
            request.tool_choice,
            Some(ToolChoice::Tool("get_weather".into()))
        );
        assert_eq!(request.temperature, Some(0.5));
        assert_eq!(request.top_k, Some(40));
        assert_eq!(request.max_tokens, Some(100));
        assert_eq!(request.stop, ["END"]);
        assert_eq!(features(&request), ["thought_signature"]);
        assert_eq!(
            request.source.as_ref().map(|s| s.format),
            Some(WireFormat::Gemini)
        );
    }

    #[test]
    fn structured_output_and_thinking_map() {
        let request = decode(json!({
            "contents": [{"parts": [{"text": "Plan"}]}],
            "generationConfig": {"responseMimeType": "application/json",
                "responseJsonSchema": {"type": "object"},
                "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": true}}
        }));
        assert_eq!(
            request.output_format,
            Some(OutputFormat::JsonSchema {
                name: None,
                schema: json!({"type": "object"}),
                strict: None
            })
        );
        assert_eq!(request.reasoning, Some(Reasoning::Budget(2048)));
        assert_eq!(features(&request), ["include_thoughts"]);
        let off = decode(json!({
            "contents": [{"parts": [{"text": "x"}]}],
            "generationConfig": {"responseMimeType": "application/json", "thinkingConfig": {"thinkingBudget": 0}}
        }));
        assert_eq!(off.output_format, Some(OutputFormat::JsonObject));
        assert_eq!(off.reasoning, None);
    }

    #[test]
    fn gemini_only_fields_are_recorded_with_their_fates() {
        let request = decode(json!({
            "contents": [{"role": "user", "parts": [
                {"text": "x"},
                {"fileData": {"mimeType": "application/pdf", "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc"}},
                {"text": "earlier thought", "thought": true}
            ]}],
            "tools": [{"googleSearch": {}}],
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
            "cachedContent": "cachedContents/abc",
            "generationConfig": {"candidateCount": 2, "seed": 3, "someNewSetting": 1}
        }));
        let fates: Vec<(&str, bool)> = request
            .unmapped
            .iter()
            .map(|u| (u.feature, matches!(u.fate, Fate::Refuse(_))))
            .collect();
        assert_eq!(
            fates,
            [
                ("file_reference", true),
                ("thought", false),
                ("server_tool", false),
                ("candidate_count", true),
                ("seed", false),
                ("unknown_field", false),
                ("safety_settings", false),
                ("cached_content", true),
            ]
        );
        assert_eq!(request.messages[0].content.len(), 1);
    }

    #[test]
    fn malformed_requests_name_the_field() {
        for (body, field) in [
            (json!({}), "contents"),
            (json!({"contents": []}), "contents"),
            (
                json!({"contents": [{"parts": [{"functionCall": {"args": {}}}]}]}),
                "contents[0].parts[0].functionCall.name",
            ),
            (
                json!({"contents": [{"parts": [{"text": 3}]}]}),
                "contents[0].parts[0].text",
            ),
            (
                json!({"contents": [{"parts": []}], "generationConfig": {"topK": 1.5}}),
                "generationConfig.topK",
            ),
        ] {
            match decode_request(body.to_string().as_bytes()) {
                Ok(request) => panic!("{body} decoded: {request:?}"),
                Err(error) => assert!(error.message.contains(field), "{body}: {error:?}"),
            }
        }
    }

    #[test]
    fn proto_field_names_read_as_their_camel_case() {
        // As google-genai sends a declaration built from a Python function.
        let request = decode(json!({
            "system_instruction": {"parts": [{"text": "Be brief."}]},
            "contents": [{"role": "user", "parts": [{"inline_data": {"mime_type": "image/png", "data": "iVBO"}}]}],
            "tools": [{"function_declarations": [{"name": "f",
                "parameters_json_schema": {"type": "object", "properties": {"snake_case_arg": {"type": "string"}}},
                "response_json_schema": {"type": "string"}}]}],
            "generation_config": {"max_output_tokens": 7, "maxOutputTokens": 8}
        }));
        assert_eq!(
            request.messages[0],
            Message::text(Role::System, "Be brief.")
        );
        assert_eq!(
            request.messages[1].content[0],
            ContentBlock::Image(ImageSource::Base64 {
                media_type: "image/png".into(),
                data: "iVBO".into()
            })
        );
        // Values keep their own keys.
        assert_eq!(
            request.tools[0].parameters,
            json!({"type": "object", "properties": {"snake_case_arg": {"type": "string"}}})
        );
        assert_eq!(request.max_tokens, Some(8));
        assert_eq!(features(&request), Vec::<&str>::new());
    }

    #[test]
    fn calls_without_ids_pair_with_their_responses_in_order() {
        let request = decode(json!({"contents": [
            {"role": "model", "parts": [
                {"functionCall": {"name": "f", "args": {"n": 1}}},
                {"functionCall": {"name": "f", "args": {"n": 2}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "f", "response": {"error": "boom"}}},
                {"functionResponse": {"name": "f", "response": {"a": 1, "b": 2}}}
            ]}
        ]}));
        let ids: Vec<String> = request.messages[0]
            .content
            .iter()
            .filter_map(|b| match b {
                ContentBlock::ToolUse(call) => Some(call.id.clone()),
                _ => None,
            })
            .collect();
        let results: Vec<(String, bool)> = request.messages[1]
            .content
            .iter()
            .filter_map(|b| match b {
                ContentBlock::ToolResult(r) => Some((r.tool_use_id.clone(), r.is_error)),
                _ => None,
            })
            .collect();
        assert_eq!(ids.len(), 2);
        assert_ne!(ids[0], ids[1]);
        assert_eq!(results, [(ids[0].clone(), true), (ids[1].clone(), false)]);
    }

    /// Every response pairs with the earliest unanswered call of its name in
    /// one look-up. The former scan over all earlier calls made this body
    /// (200k pairs, 12 MiB) take hours of CPU; the nextest override for this
    /// test in .config/nextest.toml terminates it after two minutes.
    #[test]
    fn many_function_responses_pair_in_linear_time() {
        const PAIRS: usize = 200_000;
        let mut parts = Vec::with_capacity(2 * PAIRS + 2);
        parts.extend((0..PAIRS).map(|_| json!({"functionCall": {"name": "a"}})));
        // One call answered by id first: it must not be handed out again by name.
        parts.push(json!({"functionCall": {"name": "a", "id": "x"}}));
        parts.push(json!({"functionResponse": {"name": "a", "id": "x", "response": {}}}));
        parts
            .extend((0..PAIRS).map(|_| json!({"functionResponse": {"name": "a", "response": {}}})));
        parts.push(json!({"functionResponse": {"name": "a", "response": {}}}));
        let request = decode(json!({"contents": [{"role": "model", "parts": parts}]}));
        let blocks = &request.messages[0].content;
        let results: Vec<&str> = blocks
            .iter()
            .filter_map(|block| match block {
                ContentBlock::ToolResult(r) => Some(r.tool_use_id.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(results.len(), PAIRS + 2);
        assert_eq!(results[0], "x");
        for (i, id) in results[1..=PAIRS].iter().enumerate() {
            assert_eq!(*id, format!("call_a_{}", i + 1));
        }
        assert_eq!(results[PAIRS + 1], "call_a_unpaired");
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
            model: None,
            messages: (
                r#"{"contents":[%s]}"#,
                r#"{"role":"user","parts":[{"text":"hi"}]}"#,
            ),
            parts: (
                r#"{"contents":[{"role":"user","parts":[%s]}]}"#,
                r#"{"text":"a"}"#,
            ),
            parts_param: "contents[0].parts",
        });
    }
}
