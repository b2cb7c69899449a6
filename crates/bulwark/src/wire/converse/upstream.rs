//! Calling Converse: the request it is sent, its complete answer and its
//! error bodies.

use serde_json::{Map, Value, json};

use crate::api::{
    ChatRequest, ChatResponse, ContentBlock, FinishReason, ImageSource, Role, ToolCall, ToolChoice,
    Usage, WireFormat,
};
use crate::error::ApiError;
use crate::wire::dialect::{Header, StreamDecode, UpstreamDialect};
use crate::wire::json as j;

/// The format's name in errors.
const NAME: &str = "Bedrock Converse";

/// The image formats Converse reads, by the media type's subtype.
const IMAGE_FORMATS: [&str; 4] = ["png", "jpeg", "gif", "webp"];

pub fn encode_request(request: &ChatRequest, default_max_tokens: u32) -> Result<Value, ApiError> {
    crate::wire::translate::refused_fields(request, NAME)?;
    crate::wire::refuse_prefill(request, NAME)?;
    let (system, first_turn) = crate::wire::leading_system(request);
    let mut messages: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (i, message) in request.messages.iter().enumerate().skip(first_turn) {
        let role = if message.role == Role::Assistant {
            "assistant"
        } else {
            "user"
        };
        let mut content = Vec::with_capacity(message.content.len());
        if message.role == Role::System {
            content.push(json!({"text": crate::wire::system_note(message)}));
        } else {
            for (k, block) in message.content.iter().enumerate() {
                // Converse refuses blank text blocks.
                if matches!(block, ContentBlock::Text(t) if t.trim().is_empty()) {
                    continue;
                }
                content.push(encode_block(block, &format!("messages[{i}].content[{k}]"))?);
            }
        }
        if content.is_empty() {
            continue;
        }
        // Converse wants turns to alternate; a system note or a tool
        // result beside the user's own words joins the user's turn.
        match messages.last_mut() {
            Some((last, blocks)) if *last == role => blocks.extend(content),
            _ => messages.push((role, content)),
        }
    }
    let mut body = Map::new();
    body.insert(
        "messages".into(),
        Value::Array(
            messages
                .into_iter()
                .map(|(role, content)| json!({"role": role, "content": content}))
                .collect(),
        ),
    );
    if let Some(system) = system {
        body.insert("system".into(), json!([{"text": system}]));
    }
    let mut config = Map::new();
    config.insert(
        "maxTokens".into(),
        json!(request.max_tokens.unwrap_or(default_max_tokens)),
    );
    if let Some(t) = request.temperature {
        config.insert("temperature".into(), json!(t));
    }
    if let Some(p) = request.top_p {
        config.insert("topP".into(), json!(p));
    }
    if !request.stop.is_empty() {
        config.insert("stopSequences".into(), json!(request.stop));
    }
    body.insert("inferenceConfig".into(), Value::Object(config));
    if let Some(tools) = tool_config(request) {
        body.insert("toolConfig".into(), tools);
    }
    Ok(Value::Object(body))
}

/// Converse's `toolConfig`. It has no way to forbid calls: with
/// `tool_choice: none` the tools are left out, unless the conversation
/// already holds calls, which Converse reads only beside their tools
/// (`translate::prepare` reports that drop).
fn tool_config(request: &ChatRequest) -> Option<Value> {
    if request.tools.is_empty() {
        return None;
    }
    if request.tool_choice == Some(ToolChoice::None) && !holds_tool_blocks(request) {
        return None;
    }
    let tools: Vec<Value> = request
        .tools
        .iter()
        .map(|tool| {
            let mut spec = Map::new();
            spec.insert("name".into(), json!(tool.name));
            if let Some(description) = tool.description.as_deref().filter(|d| !d.is_empty()) {
                spec.insert("description".into(), json!(description));
            }
            spec.insert("inputSchema".into(), json!({"json": tool.parameters}));
            json!({"toolSpec": spec})
        })
        .collect();
    let mut config = Map::new();
    config.insert("tools".into(), Value::Array(tools));
    let choice = match &request.tool_choice {
        None | Some(ToolChoice::None) => None,
        Some(ToolChoice::Auto) => Some(json!({"auto": {}})),
        Some(ToolChoice::Required) => Some(json!({"any": {}})),
        Some(ToolChoice::Tool(name)) => Some(json!({"tool": {"name": name}})),
    };
    if let Some(choice) = choice {
        config.insert("toolChoice".into(), choice);
    }
    Some(Value::Object(config))
}

/// Whether the conversation holds tool calls or results.
pub(crate) fn holds_tool_blocks(request: &ChatRequest) -> bool {
    request
        .messages
        .iter()
        .flat_map(|m| &m.content)
        .any(|b| matches!(b, ContentBlock::ToolUse(_) | ContentBlock::ToolResult(_)))
}

fn encode_block(block: &ContentBlock, path: &str) -> Result<Value, ApiError> {
    Ok(match block {
        ContentBlock::Text(text) => json!({"text": text}),
        ContentBlock::Image(image) => json!({"image": encode_image(image, path)?}),
        ContentBlock::ToolUse(call) => json!({"toolUse": {
            "toolUseId": call.id,
            "name": call.name,
            "input": tool_input(&call.input),
        }}),
        ContentBlock::ToolResult(result) => {
            let mut content = Vec::with_capacity(result.content.len());
            for part in &result.content {
                match part {
                    // Converse refuses blank text blocks here too.
                    ContentBlock::Text(text) if text.trim().is_empty() => {}
                    ContentBlock::Text(text) => content.push(json!({"text": text})),
                    ContentBlock::Image(image) => {
                        content.push(json!({"image": encode_image(image, path)?}));
                    }
                    ContentBlock::ToolUse(_) | ContentBlock::ToolResult(_) => {
                        return Err(ApiError::invalid_param(
                            path,
                            "Converse tool results carry text and images only",
                        ));
                    }
                }
            }
            // `content` is required, and a blank text refused: an empty
            // result is said in words, as OpenAI's empty tool message would
            // read to the model.
            if content.is_empty() {
                content.push(json!({"text": EMPTY_TOOL_RESULT}));
            }
            let mut out = json!({"toolUseId": result.tool_use_id, "content": content});
            if result.is_error {
                out["status"] = json!("error");
            }
            json!({"toolResult": out})
        }
    })
}

/// What an empty tool result is sent as.
const EMPTY_TOOL_RESULT: &str = "(no output)";

/// A call's arguments as `toolUse.input`, which must be a JSON object.
/// Arguments that never parsed (a call cut short by the token limit) are
/// kept as the model wrote them, and any other non-object under `value`,
/// so that the model sees its own call on the next turn.
fn tool_input(input: &Value) -> Value {
    let parsed = match input {
        Value::String(raw) => serde_json::from_str(raw).unwrap_or_else(|_| input.clone()),
        other => other.clone(),
    };
    match parsed {
        Value::Object(_) => parsed,
        other => json!({"value": other}),
    }
}

fn encode_image(image: &ImageSource, path: &str) -> Result<Value, ApiError> {
    match image {
        ImageSource::Base64 { media_type, data } => {
            let format = media_type
                .strip_prefix("image/")
                .map(|f| if f == "jpg" { "jpeg" } else { f })
                .filter(|f| IMAGE_FORMATS.contains(f))
                .ok_or_else(|| {
                    ApiError::invalid_param(
                        path,
                        format!(
                            "Converse reads PNG, JPEG, GIF and WebP images, not `{media_type}`"
                        ),
                    )
                })?;
            Ok(json!({"format": format, "source": {"bytes": data}}))
        }
        ImageSource::Url(_) => Err(ApiError::invalid_param(
            path,
            "Converse accepts images only as inline base64 data, not by URL; send the image as a data: URL (base64) to use this route",
        )),
    }
}

/// `/converse`'s answer as a neutral response.
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let message = value
        .pointer("/output/message")
        .ok_or("the response has no `output.message`")?;
    let mut content = Vec::new();
    for block in message
        .get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        if let Some(text) = j::get_str(block, "text") {
            content.push(ContentBlock::Text(text.to_string()));
        } else if let Some(call) = block.get("toolUse") {
            content.push(ContentBlock::ToolUse(ToolCall {
                id: j::get_str(call, "toolUseId")
                    .unwrap_or_default()
                    .to_string(),
                name: j::get_str(call, "name").unwrap_or_default().to_string(),
                input: call.get("input").cloned().unwrap_or_else(|| json!({})),
            }));
        }
        // Reasoning has no place in a complete neutral answer.
    }
    Ok(ChatResponse {
        id: ANSWER_ID.to_string(),
        model: String::new(),
        content,
        finish_reason: decode_finish(j::get_str(&value, "stopReason").unwrap_or("end_turn")),
        stop_sequence: None,
        usage: value.get("usage").map(decode_usage).unwrap_or_default(),
        created: crate::api::unix_now(),
    })
}

/// Converse's answers carry no id of their own.
pub(super) const ANSWER_ID: &str = "bedrock-converse";

pub(super) fn decode_usage(usage: &Value) -> Usage {
    Usage {
        input_tokens: j::get_u64(usage, "inputTokens"),
        output_tokens: j::get_u64(usage, "outputTokens"),
    }
}

/// A `stopReason`: Anthropic's names, and Converse's own for a guardrail
/// or a filter that ended the answer. An unknown reason ends it normally.
pub(super) fn decode_finish(reason: &str) -> FinishReason {
    match reason {
        "guardrail_intervened" | "content_filtered" => FinishReason::ContentFilter,
        other => FinishReason::from_name(WireFormat::Converse, other).unwrap_or(FinishReason::Stop),
    }
}

/// An error body, `{"message": ...}`: its code is in the
/// `x-amzn-errortype` header, which the cloud reads.
pub fn decode_error(body: &Value) -> (Option<String>, Option<String>) {
    let message = j::get_str(body, "message")
        .or_else(|| j::get_str(body, "Message"))
        .map(str::to_string);
    let code = j::get_str(body, "__type").map(|t| t.rsplit('#').next().unwrap_or(t).to_string());
    (message, code)
}

/// The upstream dialect of Converse, reached only through `kind: bedrock`.
#[derive(Debug, Clone, Copy)]
pub struct Upstream;

impl UpstreamDialect for Upstream {
    fn format(&self) -> WireFormat {
        WireFormat::Converse
    }

    fn kind_name(&self) -> &'static str {
        "bedrock"
    }

    fn semconv_name(&self) -> &'static str {
        "aws.bedrock"
    }

    fn default_base_url(&self) -> Option<&'static str> {
        None
    }

    /// Only used without a cloud, which a Converse target never is;
    /// `Bedrock::url` is the one that counts.
    fn url(&self, base_url: &str, model: &str) -> Result<String, ApiError> {
        Ok(format!(
            "{base_url}/model/{}/converse-stream",
            crate::provider::cloud::path_segment(model)?
        ))
    }

    /// The cloud authenticates.
    fn headers(&self, _key: Option<&str>) -> Vec<Header> {
        Vec::new()
    }

    fn encode_request(
        &self,
        request: &ChatRequest,
        _model: &str,
        default_max_tokens: u32,
    ) -> Result<Value, ApiError> {
        encode_request(request, default_max_tokens)
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

    /// Top-k is a model's own field (`additionalModelRequestFields`),
    /// named differently per model family.
    fn takes_top_k(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An OpenAI client's request, as the front door decodes it.
    fn openai(body: Value) -> ChatRequest {
        crate::wire::front_door(WireFormat::OpenAi)
            .unwrap()
            .decode_request(body.to_string().as_bytes())
            .unwrap()
    }

    #[test]
    fn a_tool_round_trip_is_written_in_converse_shapes() {
        let request = openai(json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": [
                    {"type": "text", "text": "Weather here?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "t1", "type": "function",
                    "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
                {"role": "tool", "tool_call_id": "t1", "content": "3 C"},
                {"role": "system", "content": "Answer in French."}
            ],
            "max_tokens": 100, "temperature": 0.5, "top_p": 0.9, "stop": ["END"],
            "tools": [{"type": "function", "function": {"name": "weather", "description": "Weather now",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "tool_choice": "required"
        }));
        let body = encode_request(&request, 4096).unwrap();
        assert_eq!(body["system"], json!([{"text": "Be terse."}]));
        assert_eq!(
            body["inferenceConfig"],
            json!({"maxTokens": 100, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]})
        );
        assert_eq!(
            body["messages"][0]["content"],
            json!([{"text": "Weather here?"},
                {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}])
        );
        assert_eq!(
            body["messages"][1],
            json!({"role": "assistant", "content": [{"toolUse":
                {"toolUseId": "t1", "name": "weather", "input": {"city": "Oslo"}}}]})
        );
        // The tool's result and the later system note share the user's turn.
        assert_eq!(body["messages"].as_array().unwrap().len(), 3);
        assert_eq!(
            body["messages"][2]["content"][0],
            json!({"toolResult": {"toolUseId": "t1", "content": [{"text": "3 C"}]}})
        );
        assert_eq!(
            body["messages"][2]["content"][1]["text"],
            "<system>\nAnswer in French.\n</system>"
        );
        assert_eq!(
            body["toolConfig"],
            json!({"tools": [{"toolSpec": {"name": "weather", "description": "Weather now",
                "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}}}}],
                "toolChoice": {"any": {}}})
        );
        assert!(body.get("stream").is_none() && body.get("model").is_none());
    }

    #[test]
    fn tool_arguments_always_reach_converse_as_an_object() {
        let cut_short = "{\"city\": \"Os";
        for (input, sent) in [
            (json!({"city": "Oslo"}), json!({"city": "Oslo"})),
            (json!("{\"city\": \"Oslo\"}"), json!({"city": "Oslo"})),
            (json!(cut_short), json!({"value": cut_short})),
            (json!("[1, 2]"), json!({"value": [1, 2]})),
            (json!(7), json!({"value": 7})),
        ] {
            assert_eq!(tool_input(&input), sent, "{input}");
        }
    }

    #[test]
    fn an_empty_or_blank_tool_result_is_sent_as_words() {
        for result in ["", "  \n"] {
            let request = openai(json!({
                "model": "m",
                "messages": [
                    {"role": "user", "content": "Run it"},
                    {"role": "assistant", "content": null, "tool_calls": [{"id": "t1", "type": "function",
                        "function": {"name": "run", "arguments": "{}"}}]},
                    {"role": "tool", "tool_call_id": "t1", "content": result}
                ],
                "tools": [{"type": "function", "function": {"name": "run", "parameters": {"type": "object"}}}]
            }));
            let body = encode_request(&request, 4096).unwrap();
            assert_eq!(
                body["messages"][2]["content"],
                json!([{"toolResult": {"toolUseId": "t1", "content": [{"text": EMPTY_TOOL_RESULT}]}}]),
                "{result:?}"
            );
        }
    }

    #[test]
    fn defaults_and_what_converse_cannot_take() {
        let plain = openai(json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}]}));
        assert_eq!(
            encode_request(&plain, 321).unwrap()["inferenceConfig"]["maxTokens"],
            321
        );
        let by_url = openai(
            json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]}),
        );
        assert!(encode_request(&by_url, 1).is_err());
        let prefill = openai(json!({"model": "m", "messages": [
            {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hel"}]}));
        assert!(encode_request(&prefill, 1).is_err());
        // `none` with no calls in the conversation: no tools at all.
        let none = openai(
            json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "tool_choice": "none"}),
        );
        assert!(
            encode_request(&none, 1)
                .unwrap()
                .get("toolConfig")
                .is_none()
        );
    }

    #[test]
    fn a_complete_answer_and_an_error_are_read() {
        let body = json!({
            "output": {"message": {"role": "assistant", "content": [
                {"reasoningContent": {"reasoningText": {"text": "hm", "signature": "s"}}},
                {"text": "Let me look."},
                {"toolUse": {"toolUseId": "t9", "name": "weather", "input": {"city": "Oslo"}}}]}},
            "stopReason": "tool_use",
            "usage": {"inputTokens": 10, "outputTokens": 7, "totalTokens": 17},
            "metrics": {"latencyMs": 4}
        });
        let response = decode_response(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            response.content,
            [
                ContentBlock::Text("Let me look.".into()),
                ContentBlock::ToolUse(ToolCall {
                    id: "t9".into(),
                    name: "weather".into(),
                    input: json!({"city": "Oslo"})
                })
            ]
        );
        assert_eq!(response.finish_reason, FinishReason::ToolUse);
        assert_eq!(
            response.usage,
            Usage {
                input_tokens: 10,
                output_tokens: 7
            }
        );
        assert!(decode_response(b"{}").is_err());
        assert_eq!(
            decode_error(&json!({"message": "Too many tokens"})),
            (Some("Too many tokens".into()), None)
        );
        assert_eq!(
            decode_error(&json!({"__type": "com.amazon#ValidationException", "message": "x"})).1,
            Some("ValidationException".into())
        );
    }
}
