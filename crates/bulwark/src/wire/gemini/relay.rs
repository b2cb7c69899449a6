//! Answering a client of the Gemini front door: complete answers, errors in
//! Google's shape, the relay of Gemini's own stream, and the front door's
//! dialect.

use serde_json::{Map, Value, json};

use super::encode_stream::{StreamEncoder, args_object};
use crate::api::{ChatRequest, ChatResponse, ContentBlock, Usage, WireFormat};
use crate::error::{ApiError, ErrorKind};
use crate::sse::SseEvent;
use crate::wire::dialect::{Chunk, ClientDialect, EventEncoder, SseSink, StreamHead, StreamWriter};

pub fn usage_metadata(usage: Usage) -> Value {
    json!({
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": usage.output_tokens,
        "totalTokenCount": usage.input_tokens + usage.output_tokens,
    })
}

pub fn encode_response(response: &ChatResponse) -> Value {
    let parts: Vec<Value> = response
        .content
        .iter()
        .filter_map(|block| match block {
            ContentBlock::Text(text) if !text.is_empty() => Some(json!({"text": text})),
            ContentBlock::ToolUse(call) => Some(
                json!({"functionCall": {"id": call.id, "name": call.name, "args": args_object(call.input.clone())}}),
            ),
            _ => None,
        })
        .collect();
    json!({
        "candidates": [{
            "content": {"role": "model", "parts": parts},
            "finishReason": response.finish_reason.name(WireFormat::Gemini),
            "index": 0,
        }],
        "usageMetadata": usage_metadata(response.usage),
        "modelVersion": response.model,
        "responseId": response.id,
    })
}

/// The `google.rpc.Code` name Google's APIs give each kind of error, which
/// `google-genai` shows beside the status.
pub fn status_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest | ErrorKind::RequestTooLarge => "INVALID_ARGUMENT",
        ErrorKind::Authentication => "UNAUTHENTICATED",
        ErrorKind::Billing => "FAILED_PRECONDITION",
        ErrorKind::Permission => "PERMISSION_DENIED",
        ErrorKind::NotFound => "NOT_FOUND",
        ErrorKind::RateLimit => "RESOURCE_EXHAUSTED",
        ErrorKind::Api => "INTERNAL",
        ErrorKind::Timeout => "DEADLINE_EXCEEDED",
        ErrorKind::Overloaded => "UNAVAILABLE",
    }
}

pub fn encode_error(error: &ApiError) -> Value {
    json!({"error": {
        "code": FrontDoor.status_for(error),
        "message": error.message,
        "status": status_name(error.kind),
    }})
}

/// Rebuilds the complete `GenerateContentResponse` from Gemini's stream
/// chunks, keeping every field Gemini sent (thought parts and signatures,
/// safety ratings, grounding, citations): the parts of each candidate in
/// order, adjacent text of the same kind joined, and the other fields as
/// the last chunk gave them.
pub fn assemble_response<'a>(events: impl IntoIterator<Item = &'a SseEvent>) -> Value {
    let mut response = Map::new();
    let mut candidates: Vec<Map<String, Value>> = Vec::new();
    for event in events {
        let Ok(Value::Object(chunk)) = serde_json::from_str::<Value>(&event.data) else {
            continue;
        };
        for (key, value) in chunk {
            if key != "candidates" {
                if !value.is_null() {
                    response.insert(key, value);
                }
                continue;
            }
            let Value::Array(list) = value else { continue };
            for (position, candidate) in list.into_iter().enumerate() {
                let Value::Object(candidate) = candidate else {
                    continue;
                };
                let index = candidate
                    .get("index")
                    .and_then(Value::as_u64)
                    .map_or(position, |i| i as usize);
                // A hostile index must not make Bulwark allocate a huge list.
                if index > candidates.len() {
                    continue;
                }
                if index == candidates.len() {
                    candidates.push(Map::new());
                }
                if let Some(merged) = candidates.get_mut(index) {
                    merge_candidate(merged, candidate);
                }
            }
        }
    }
    if !candidates.is_empty() {
        response.insert(
            "candidates".into(),
            Value::Array(candidates.into_iter().map(Value::Object).collect()),
        );
    }
    Value::Object(response)
}

fn merge_candidate(merged: &mut Map<String, Value>, candidate: Map<String, Value>) {
    for (key, value) in candidate {
        if key != "content" {
            merged.insert(key, value);
            continue;
        }
        let Value::Object(content) = value else {
            continue;
        };
        let slot = merged
            .entry("content")
            .or_insert_with(|| json!({"parts": []}));
        for (key, value) in content {
            if key != "parts" {
                slot[key.as_str()] = value;
                continue;
            }
            let Value::Array(parts) = value else { continue };
            if !slot["parts"].is_array() {
                slot["parts"] = json!([]);
            }
            if let Some(so_far) = slot["parts"].as_array_mut() {
                for part in parts {
                    push_part(so_far, part);
                }
            }
        }
    }
}

/// Adds a part, joining text to the last part when both are text of the
/// same kind (thought or answer), as one answer's text reads. The text is
/// appended in place: an upstream streaming many small chunks must not
/// cost a copy of all the text so far per chunk.
fn push_part(parts: &mut Vec<Value>, part: Value) {
    let is_thought =
        |p: &Map<String, Value>| p.get("thought").and_then(Value::as_bool) == Some(true);
    match (parts.last_mut(), part) {
        (Some(Value::Object(last)), Value::Object(mut part))
            if last.get("text").is_some_and(Value::is_string)
                && part.get("text").is_some_and(Value::is_string)
                && is_thought(last) == is_thought(&part) =>
        {
            if let (Some(Value::String(so_far)), Some(Value::String(text))) =
                (last.get_mut("text"), part.remove("text"))
            {
                so_far.push_str(&text);
            }
            // The chunk's other fields (its signature...) are the latest.
            last.extend(part);
        }
        (_, part) => parts.push(part),
    }
}

/// The Gemini front door's dialect (`/v1beta/models/{model}:generateContent`).
#[derive(Debug, Clone, Copy)]
pub struct FrontDoor;

impl ClientDialect for FrontDoor {
    fn format(&self) -> WireFormat {
        WireFormat::Gemini
    }

    fn decode_request(&self, body: &[u8]) -> Result<ChatRequest, ApiError> {
        super::decode_request(body)
    }

    fn request_shape(&self) -> &'static crate::wire::limits::Shape {
        &super::inbound::SHAPE
    }

    /// None: Google's clients send their key (`x-goog-api-key`) and
    /// telemetry (`x-goog-api-client`) as headers, and nothing that changes
    /// the answer.
    fn forwarded_headers(&self) -> &'static [&'static str] {
        &[]
    }

    fn assemble_relayed(&self, events: &mut dyn Iterator<Item = &SseEvent>) -> Value {
        assemble_response(events)
    }

    fn encode_response(&self, response: &ChatResponse) -> Value {
        encode_response(response)
    }

    /// Gemini always sends usage; `include_usage` changes nothing.
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
        out.push_event(None, &encode_error(error).to_string());
    }

    /// Google has no 529: an overloaded Anthropic upstream reads as
    /// Google's own 503 `UNAVAILABLE`, which `google-genai` raises as a
    /// `ServerError` its retry options cover.
    fn status_for(&self, error: &ApiError) -> u16 {
        match error.status {
            529 => 503,
            status => status,
        }
    }
}

/// Relays Gemini's own chunks as they are.
struct Relay;

impl StreamWriter for Relay {
    fn write(&mut self, chunk: &Chunk, out: &mut dyn SseSink) {
        out.push_event(None, &chunk.raw.data);
    }

    fn finish(&mut self, _out: &mut dyn SseSink) {}

    fn error(&mut self, error: &ApiError, out: &mut dyn SseSink) {
        FrontDoor.error_event(error, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{FinishReason, ToolCall};

    fn event(data: Value) -> SseEvent {
        SseEvent {
            event: None,
            data: data.to_string(),
        }
    }

    #[test]
    fn a_relayed_stream_is_assembled_field_for_field() {
        let events = [
            event(
                json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Let me think", "thought": true}]}, "index": 0}], "modelVersion": "gemini-2.5-pro", "responseId": "r1"}),
            ),
            event(
                json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}]}),
            ),
            event(
                json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "lo", "thoughtSignature": "sig"}]}, "index": 0}]}),
            ),
            event(
                json!({"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]}, "finishReason": "STOP", "safetyRatings": [], "index": 0}], "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7}}),
            ),
        ];
        let assembled = assemble_response(events.iter());
        assert_eq!(
            assembled,
            json!({
                "candidates": [{"content": {"role": "model", "parts": [
                    {"text": "Let me think", "thought": true},
                    {"text": "Hello", "thoughtSignature": "sig"},
                    {"functionCall": {"name": "f", "args": {}}}
                ]}, "finishReason": "STOP", "safetyRatings": [], "index": 0}],
                "modelVersion": "gemini-2.5-pro",
                "responseId": "r1",
                "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7}
            })
        );
    }

    #[test]
    fn the_relay_passes_geminis_chunks_and_adds_no_terminator() {
        let mut relay = FrontDoor.relay_writer(true);
        let mut out: Vec<SseEvent> = Vec::new();
        let chunk = Chunk {
            raw: SseEvent {
                event: None,
                data: r#"{"candidates":[]}"#.to_string(),
            },
            events: Vec::new(),
        };
        relay.write(&chunk, &mut out);
        relay.finish(&mut out);
        assert_eq!(
            out,
            [SseEvent {
                event: None,
                data: r#"{"candidates":[]}"#.into()
            }]
        );
    }

    #[test]
    fn a_hostile_candidate_index_allocates_nothing() {
        let events = [event(
            json!({"candidates": [{"index": 4_000_000_000u64, "content": {"parts": [{"text": "x"}]}}]}),
        )];
        assert_eq!(assemble_response(events.iter()), json!({}));
    }

    #[test]
    fn a_translated_answer_has_gemini_shape() {
        let response = ChatResponse {
            id: "msg_1".into(),
            model: "claude-sonnet-4-5".into(),
            content: vec![
                ContentBlock::Text("Checking.".into()),
                ContentBlock::ToolUse(ToolCall {
                    id: "toolu_1".into(),
                    name: "get_weather".into(),
                    input: json!({"city": "Oslo"}),
                }),
            ],
            finish_reason: FinishReason::ToolUse,
            stop_sequence: None,
            usage: Usage {
                input_tokens: 2,
                output_tokens: 3,
            },
            created: 0,
        };
        let body = encode_response(&response);
        assert_eq!(body["candidates"][0]["finishReason"], "STOP");
        assert_eq!(
            body["candidates"][0]["content"]["parts"][1]["functionCall"]["args"],
            json!({"city": "Oslo"})
        );
        assert_eq!(body["usageMetadata"]["totalTokenCount"], 5);
        let mut length = response.clone();
        length.finish_reason = FinishReason::Length;
        assert_eq!(
            encode_response(&length)["candidates"][0]["finishReason"],
            "MAX_TOKENS"
        );
    }

    #[test]
    fn errors_have_googles_shape_and_status_names() {
        let overloaded = ApiError::new(ErrorKind::Overloaded, "busy").with_status(529);
        assert_eq!(
            encode_error(&overloaded),
            json!({"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}})
        );
        assert_eq!(FrontDoor.status_for(&overloaded), 503);
        let invalid = ApiError::invalid("bad");
        assert_eq!(
            encode_error(&invalid)["error"]["status"],
            "INVALID_ARGUMENT"
        );
        assert_eq!(encode_error(&invalid)["error"]["code"], 400);
    }

    /// Two million one-character chunks join in linear time. Rebuilding the
    /// text per chunk copied about 2 TB for this test; the nextest override
    /// for `_in_linear_time` tests terminates such a regression.
    #[test]
    fn many_text_chunks_join_in_linear_time() {
        const CHUNKS: usize = 2_000_000;
        let mut parts = vec![json!({"text": "a", "thoughtSignature": "s0"})];
        for _ in 1..CHUNKS {
            push_part(&mut parts, json!({"text": "b"}));
        }
        push_part(&mut parts, json!({"text": "c", "thoughtSignature": "s1"}));
        push_part(&mut parts, json!({"text": "t", "thought": true}));
        assert_eq!(parts.len(), 2);
        let text = parts[0]["text"].as_str().unwrap_or_default();
        assert_eq!(text.len(), CHUNKS + 1);
        assert!(text.starts_with("ab") && text.ends_with("bc"));
        assert_eq!(parts[0]["thoughtSignature"], "s1");
        assert_eq!(parts[1], json!({"text": "t", "thought": true}));
    }
}
