//! Answering a client of the Messages front door: complete answers, errors,
//! the relay of Anthropic's own stream, and the front door's dialect.

use serde_json::{Value, json};

use super::encode_stream::StreamEncoder;
use super::upstream::encode_block;
use crate::api::{ChatRequest, ChatResponse, ContentBlock, WireFormat};
use crate::error::{ApiError, ErrorKind};
use crate::sse::SseEvent;
use crate::wire::dialect::{Chunk, ClientDialect, EventEncoder, SseSink, StreamHead, StreamWriter};
use crate::wire::json as j;

pub fn encode_response(response: &ChatResponse) -> Value {
    let content: Vec<Value> = response
        .content
        .iter()
        .filter(|b| matches!(b, ContentBlock::Text(_) | ContentBlock::ToolUse(_)))
        .map(encode_block)
        .collect();
    json!({
        "id": crate::wire::prefixed_id("msg_", &response.id),
        "type": "message",
        "role": "assistant",
        "model": response.model,
        "content": content,
        "stop_reason": response.finish_reason.name(WireFormat::Anthropic),
        "stop_sequence": response.stop_sequence,
        "usage": {"input_tokens": response.usage.input_tokens, "output_tokens": response.usage.output_tokens},
    })
}

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
        match j::get_str(&data, "type") {
            // Only an object: the fields below are set on it by key.
            Some("message_start") => {
                if let Some(start) = data.get("message").filter(|m| m.is_object()) {
                    message = start.clone();
                }
            }
            Some("content_block_start") => {
                let Some(content) = message.get_mut("content").and_then(Value::as_array_mut) else {
                    continue;
                };
                let Some(index) = j::stream_index(&data, content.len()) else {
                    continue;
                };
                while content.len() <= index {
                    content.push(Value::Null);
                }
                content[index] = data.get("content_block").cloned().unwrap_or_default();
            }
            Some("content_block_delta") => {
                let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
                let index = usize::try_from(index).unwrap_or(usize::MAX);
                let delta = data.get("delta").cloned().unwrap_or_default();
                if j::get_str(&delta, "type") == Some("input_json_delta") {
                    let part = j::get_str(&delta, "partial_json").unwrap_or_default();
                    match partial_json.iter_mut().find(|(i, _)| *i == index) {
                        Some((_, text)) => text.push_str(part),
                        None => partial_json.push((index, part.to_string())),
                    }
                    continue;
                }
                // Only an object: a delta's fields are set on it by key.
                let Some(block) = message
                    .get_mut("content")
                    .and_then(|c| c.get_mut(index))
                    .filter(|block| block.is_object())
                else {
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
                    // A delta added after this was written: its fields are
                    // the block's, text arriving in pieces, so they are
                    // joined rather than lost.
                    (_, block) => merge_unknown_delta(block, &delta),
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
                // Betas put their results beside `delta` (context
                // management's `applied_edits`); the SDKs keep them on the
                // message.
                if let Some(extra) = data.as_object() {
                    for (key, value) in extra {
                        if !matches!(key.as_str(), "type" | "delta" | "usage") && !value.is_null() {
                            message[key.as_str()] = value.clone();
                        }
                    }
                }
            }
            _ => {}
        }
    }
    for (index, text) in partial_json {
        let block = message.get_mut("content").and_then(|c| c.get_mut(index));
        if let Some(block) = block.filter(|block| block.is_object()) {
            block["input"] = if text.trim().is_empty() {
                json!({})
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            };
        }
    }
    message
}

fn merge_unknown_delta(block: &mut Value, delta: &Value) {
    let (Some(block), Some(delta)) = (block.as_object_mut(), delta.as_object()) else {
        return;
    };
    for (key, value) in delta.iter().filter(|(key, _)| key.as_str() != "type") {
        let slot = block.entry(key.clone()).or_insert(Value::Null);
        match (&mut *slot, value) {
            (Value::String(so_far), Value::String(part)) => so_far.push_str(part),
            (Value::Array(so_far), Value::Array(more)) => so_far.extend(more.iter().cloned()),
            _ => *slot = value.clone(),
        }
    }
}

fn append(block: &mut Value, key: &str, part: Option<&str>) {
    let joined = format!(
        "{}{}",
        block[key].as_str().unwrap_or_default(),
        part.unwrap_or_default()
    );
    block[key] = json!(joined);
}

/// What an Anthropic client sends besides its body that an Anthropic target
/// must see: the API version it was written against (it overrides Bulwark's
/// default) and the betas that turn on the features its body uses (Claude
/// Code's thinking, context management, 1M context). Session ids, `x-app`
/// and `anthropic-dangerous-direct-browser-access` do not change the answer.
pub const FORWARDED_HEADERS: &[&str] = &["anthropic-version", "anthropic-beta"];

/// The `/v1/messages` front door's dialect.
#[derive(Debug, Clone, Copy)]
pub struct FrontDoor;

impl ClientDialect for FrontDoor {
    fn format(&self) -> WireFormat {
        WireFormat::Anthropic
    }

    fn decode_request(&self, body: &[u8]) -> Result<ChatRequest, ApiError> {
        super::decode_request(body)
    }

    fn request_shape(&self) -> &'static crate::wire::limits::Shape {
        &super::inbound::SHAPE
    }

    fn forwarded_headers(&self) -> &'static [&'static str] {
        FORWARDED_HEADERS
    }

    fn assemble_relayed(&self, events: &mut dyn Iterator<Item = &SseEvent>) -> Value {
        assemble_response(events)
    }

    fn encode_response(&self, response: &ChatResponse) -> Value {
        encode_response(response)
    }

    /// Anthropic always streams usage; `include_usage` changes nothing.
    fn event_encoder(
        &self,
        _include_usage: bool,
        resume: Option<&StreamHead>,
    ) -> Box<dyn EventEncoder> {
        Box::new(match resume {
            Some(head) => StreamEncoder::resume(head),
            None => StreamEncoder::new(),
        })
    }

    fn relay_writer(&self, _include_usage: bool) -> Box<dyn StreamWriter> {
        Box::new(Relay)
    }

    fn encode_error(&self, error: &ApiError) -> Value {
        encode_error(error)
    }

    fn error_event(&self, error: &ApiError, out: &mut dyn SseSink) {
        out.push_event(Some("error"), &encode_error(error).to_string());
    }

    /// Anthropic's SDKs raise `OverloadedError` for 529, the status Anthropic
    /// itself sends when overloaded.
    fn status_for(&self, error: &ApiError) -> u16 {
        match error.kind {
            ErrorKind::Overloaded if error.status == 503 => 529,
            _ => error.status,
        }
    }
}

/// Relays Anthropic's own events as they are.
struct Relay;

impl StreamWriter for Relay {
    fn write(&mut self, chunk: &Chunk, out: &mut dyn SseSink) {
        out.push_event(chunk.raw.event.as_deref(), &chunk.raw.data);
    }

    fn finish(&mut self, _out: &mut dyn SseSink) {}

    fn error(&mut self, error: &ApiError, out: &mut dyn SseSink) {
        FrontDoor.error_event(error, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(data: &[&str]) -> Vec<SseEvent> {
        data.iter()
            .map(|data| SseEvent {
                event: None,
                data: data.to_string(),
            })
            .collect()
    }

    /// Found by fuzzing (`stream_anthropic`): fields are set on the message
    /// and its blocks by key, which panics on anything but an object.
    #[test]
    fn a_message_or_block_that_is_not_an_object_is_passed_over() {
        let message = assemble_response(&events(&[
            r#"{"type":"message_start","message":0}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"}}"#,
        ]));
        assert_eq!(message["stop_reason"], "end_turn");
        let message = assemble_response(&events(&[
            r#"{"type":"message_start","message":{"content":[]}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":5}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"s"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
        ]));
        assert_eq!(message["content"], json!([5]));
    }

    /// Padding the blocks up to an index the upstream chose would allocate
    /// without end.
    #[test]
    fn a_block_index_far_past_the_blocks_is_not_padded_to() {
        let message = assemble_response(&events(&[
            r#"{"type":"message_start","message":{"content":[]}}"#,
            r#"{"type":"content_block_start","index":100000,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":"b"}}"#,
        ]));
        assert_eq!(
            message["content"],
            json!([null, {"type": "text", "text": "b"}])
        );
    }
}
