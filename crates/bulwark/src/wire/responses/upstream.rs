//! Calling OpenAI's Responses API: the second API an `openai` provider
//! speaks, used only for a client that speaks it too (see
//! `UpstreamDialect::also_speaks`). The client's own body goes out, its
//! model replaced, so nothing the neutral model lacks (reasoning items,
//! `include`, built-in and namespace tools, `truncation`...) is lost.

use serde_json::Value;

use crate::api::{
    ChatRequest, ChatResponse, ContentBlock, FinishReason, ToolCall, Usage, WireFormat,
};
use crate::error::ApiError;
use crate::wire::dialect::{Header, StreamDecode, UpstreamDialect};
use crate::wire::json as j;

/// The Responses API of OpenAI itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upstream;

/// The client's Responses body for `model`, asking to stream. Only a
/// request that came from a Responses client can be sent here: there is no
/// translation into this format.
pub fn encode_request(request: &ChatRequest, model: &str) -> Result<Value, ApiError> {
    let source = request
        .source
        .as_ref()
        .filter(|source| source.format == WireFormat::Responses)
        .ok_or_else(|| {
            ApiError::invalid(
                "this target speaks the Responses API only to Responses clients; the request has no Responses body",
            )
        })?;
    let mut body = source.body.object()?;
    body.insert("model".into(), Value::String(model.to_string()));
    // Bulwark always streams from providers (see `Provider::stream`).
    body.insert("stream".into(), Value::Bool(true));
    Ok(Value::Object(body))
}

/// A complete Response object as a neutral answer.
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    if j::get_str(&value, "object").is_some_and(|o| o != "response") {
        return Err("the answer is not a Response object".into());
    }
    let output = value
        .get("output")
        .and_then(Value::as_array)
        .ok_or("the response has no output")?;
    let mut content = Vec::new();
    for item in output {
        match j::get_str(item, "type") {
            Some("message") => {
                for part in item
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let text = match j::get_str(part, "type") {
                        Some("output_text") => j::get_str(part, "text"),
                        Some("refusal") => j::get_str(part, "refusal"),
                        _ => None,
                    };
                    if let Some(text) = text.filter(|t| !t.is_empty()) {
                        content.push(ContentBlock::Text(text.to_string()));
                    }
                }
            }
            Some("function_call") => {
                let arguments = j::get_str(item, "arguments").unwrap_or("{}");
                content.push(ContentBlock::ToolUse(ToolCall {
                    id: j::get_str(item, "call_id").unwrap_or_default().to_string(),
                    name: j::get_str(item, "name").unwrap_or_default().to_string(),
                    // Arguments cut short stay the text the model wrote.
                    input: serde_json::from_str(arguments)
                        .unwrap_or_else(|_| Value::String(arguments.to_string())),
                }));
            }
            // Reasoning and built-in tool items have no neutral form; a
            // Responses client relayed this object sees them.
            _ => {}
        }
    }
    Ok(ChatResponse {
        id: j::get_str(&value, "id")
            .unwrap_or("resp_bulwark")
            .to_string(),
        model: j::get_str(&value, "model").unwrap_or_default().to_string(),
        finish_reason: finish_reason(&value),
        content,
        stop_sequence: None,
        usage: value.get("usage").map(decode_usage).unwrap_or_default(),
        created: value
            .get("created_at")
            .and_then(Value::as_u64)
            .unwrap_or_else(crate::api::unix_now),
    })
}

/// A Response object's usage. Cached and reasoning tokens are already
/// counted in `input_tokens` and `output_tokens`.
pub(super) fn decode_usage(usage: &Value) -> Usage {
    Usage {
        input_tokens: j::get_u64(usage, "input_tokens"),
        output_tokens: j::get_u64(usage, "output_tokens"),
    }
}

/// A finished Response object's status as a finish reason: a completed
/// answer that calls a function asks for its result.
pub(super) fn finish_reason(response: &Value) -> FinishReason {
    if j::get_str(response, "status") == Some("incomplete") {
        return match response
            .pointer("/incomplete_details/reason")
            .and_then(Value::as_str)
        {
            Some("content_filter") => FinishReason::ContentFilter,
            _ => FinishReason::Length,
        };
    }
    let calls_function = response
        .get("output")
        .and_then(Value::as_array)
        .is_some_and(|items| {
            items
                .iter()
                .any(|item| j::get_str(item, "type") == Some("function_call"))
        });
    if calls_function {
        FinishReason::ToolUse
    } else {
        FinishReason::Stop
    }
}

impl UpstreamDialect for Upstream {
    fn format(&self) -> WireFormat {
        WireFormat::Responses
    }

    fn kind_name(&self) -> &'static str {
        "openai"
    }

    fn semconv_name(&self) -> &'static str {
        "openai"
    }

    fn default_base_url(&self) -> Option<&'static str> {
        Some("https://api.openai.com/v1")
    }

    fn base_path(&self) -> &'static str {
        "/v1"
    }

    fn url(&self, base_url: &str, _model: &str) -> Result<String, ApiError> {
        Ok(format!("{base_url}/responses"))
    }

    fn headers(&self, key: Option<&str>) -> Vec<Header> {
        crate::wire::openai::Upstream::OpenAi.headers(key)
    }

    fn encode_request(
        &self,
        request: &ChatRequest,
        model: &str,
        _default_max_tokens: u32,
    ) -> Result<Value, ApiError> {
        encode_request(request, model)
    }

    fn stream_decoder(&self) -> Box<dyn StreamDecode> {
        Box::new(super::StreamDecoder::new())
    }

    fn decode_response(&self, body: &[u8]) -> Result<ChatResponse, String> {
        decode_response(body)
    }

    /// OpenAI answers errors on every endpoint alike.
    fn decode_error(&self, body: &Value) -> (Option<String>, Option<String>) {
        crate::wire::openai::decode_error(body)
    }

    fn takes_top_k(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SourceBody;
    use serde_json::json;

    fn from_responses_client(body: Value) -> ChatRequest {
        let mut request = crate::wire::responses::decode_request(body.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("decode: {e:?}"));
        if let (Some(source), Value::Object(map)) = (request.source.as_mut(), body) {
            *source = SourceBody {
                format: WireFormat::Responses,
                body: crate::api::SourceJson::from_object(&map),
                query: None,
                headers: Vec::new(),
            };
        }
        request
    }

    #[test]
    fn the_clients_body_goes_out_whole_with_the_targets_model_and_streaming() {
        let request = from_responses_client(json!({
            "model": "route", "input": "hi", "include": ["reasoning.encrypted_content"],
            "reasoning": {"effort": "high", "summary": "auto"},
            "tools": [{"type": "web_search"}, {"type": "namespace", "name": "ns", "tools": []}],
            "truncation": "auto", "prompt_cache_key": "k", "service_tier": "flex", "store": false
        }));
        let body = Upstream
            .encode_request(&request, "gpt-5", 1024)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(body["model"], "gpt-5");
        assert_eq!(body["stream"], true);
        assert_eq!(body["include"], json!(["reasoning.encrypted_content"]));
        assert_eq!(body["reasoning"]["summary"], "auto");
        assert_eq!(body["tools"][1]["type"], "namespace");
        assert_eq!(body["truncation"], "auto");
        assert_eq!(body["prompt_cache_key"], "k");
        assert_eq!(body["service_tier"], "flex");
        assert!(body.get("stream_options").is_none());
        assert_eq!(
            Upstream.url("https://api.openai.com/v1", "gpt-5").ok(),
            Some("https://api.openai.com/v1/responses".to_string())
        );
    }

    #[test]
    fn a_request_of_another_format_is_refused_not_translated() {
        let mut request = from_responses_client(json!({"model": "m", "input": "hi"}));
        if let Some(source) = request.source.as_mut() {
            source.format = WireFormat::OpenAi;
        }
        assert!(Upstream.encode_request(&request, "m", 1).is_err());
    }

    #[test]
    fn a_complete_response_object_is_decoded() {
        let body = json!({
            "id": "resp_1", "object": "response", "created_at": 1_700_000_000u64,
            "model": "gpt-5", "status": "completed",
            "output": [
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "message", "id": "msg_1", "role": "assistant",
                 "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]},
                {"type": "function_call", "id": "fc_1", "call_id": "call_1",
                 "name": "weather", "arguments": "{\"city\":\"Oslo\"}"}
            ],
            "usage": {"input_tokens": 12, "output_tokens": 5,
                      "input_tokens_details": {"cached_tokens": 4},
                      "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 17}
        });
        let response =
            decode_response(body.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(response.id, "resp_1");
        assert_eq!(response.created, 1_700_000_000);
        assert_eq!(response.finish_reason, FinishReason::ToolUse);
        assert_eq!(response.usage.input_tokens, 12);
        assert_eq!(response.usage.output_tokens, 5);
        assert_eq!(
            response.content,
            vec![
                ContentBlock::Text("Checking.".into()),
                ContentBlock::ToolUse(ToolCall {
                    id: "call_1".into(),
                    name: "weather".into(),
                    input: json!({"city": "Oslo"}),
                }),
            ]
        );
    }

    #[test]
    fn an_incomplete_response_finished_at_the_limit() {
        let body = json!({"object": "response", "status": "incomplete",
            "incomplete_details": {"reason": "max_output_tokens"}, "output": []});
        let response =
            decode_response(body.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(response.finish_reason, FinishReason::Length);
        assert!(decode_response(b"{\"object\":\"chat.completion\"}").is_err());
    }

    #[test]
    fn errors_read_as_openais() {
        let (message, code) = Upstream.decode_error(&json!({"error": {
            "message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}));
        assert_eq!(message.as_deref(), Some("Rate limit reached"));
        assert_eq!(code.as_deref(), Some("rate_limit_exceeded"));
    }
}
