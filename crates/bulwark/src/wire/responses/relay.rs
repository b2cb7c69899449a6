//! Answering a client of the Responses front door: complete answers as
//! Response objects, errors in OpenAI's error format, and the dialect.

use serde_json::Value;

use super::echo::Echo;
use super::encode_stream::StreamEncoder;
use super::object::{self, Head, Status};
use crate::api::{ChatRequest, ChatResponse, ContentBlock, WireFormat};
use crate::error::{ApiError, ErrorKind};
use crate::sse::SseEvent;
use crate::wire::dialect::{ClientDialect, EventEncoder, SseSink, StreamHead, StreamWriter};

/// A neutral answer as a Response object, echoing no request settings (their
/// defaults stand in): see `encode_response_with`.
pub fn encode_response(response: &ChatResponse) -> Value {
    encode_response_with(response, &Echo::default())
}

/// A neutral answer as a Response object that repeats the request's
/// settings (`echo`). Each run of text blocks is one message item; each
/// tool call a `function_call` item.
pub fn encode_response_with(response: &ChatResponse, echo: &Echo) -> Value {
    let status = Status::finished(&response.finish_reason);
    let item_status = status.item_status();
    let mut output = Vec::new();
    let mut parts = Vec::new();
    for block in &response.content {
        match block {
            ContentBlock::Text(text) => parts.push(object::text_part(text)),
            ContentBlock::ToolUse(call) => {
                if !parts.is_empty() {
                    output.push(object::message_item(
                        &object::new_id("msg_"),
                        item_status,
                        std::mem::take(&mut parts),
                    ));
                }
                let arguments = crate::wire::arguments_text(&call.input);
                output.push(object::function_call_item(
                    &object::new_id("fc_"),
                    item_status,
                    &call.id,
                    &call.name,
                    if arguments.is_empty() {
                        "{}"
                    } else {
                        &arguments
                    },
                ));
            }
            ContentBlock::Image(_) | ContentBlock::ToolResult(_) => {}
        }
    }
    if !parts.is_empty() {
        output.push(object::message_item(
            &object::new_id("msg_"),
            item_status,
            parts,
        ));
    }
    let head = Head {
        id: object::new_id("resp_"),
        created: response.created,
        model: response.model.clone(),
    };
    object::response(&head, status, output, Some(&response.usage), None, echo)
}

/// Errors as OpenAI writes them, for every endpoint alike.
pub fn encode_error(error: &ApiError) -> Value {
    crate::wire::openai::encode_error(error)
}

/// The `/v1/responses` front door's dialect.
#[derive(Debug, Clone, Copy)]
pub struct FrontDoor;

impl ClientDialect for FrontDoor {
    fn format(&self) -> WireFormat {
        WireFormat::Responses
    }

    fn decode_request(&self, body: &[u8]) -> Result<ChatRequest, ApiError> {
        super::decode_request(body)
    }

    fn request_shape(&self) -> &'static crate::wire::limits::Shape {
        &super::inbound::SHAPE
    }

    /// A stream in this format carries its whole Response object in its
    /// last event: that object is the answer.
    fn assemble_relayed(&self, events: &mut dyn Iterator<Item = &SseEvent>) -> Value {
        let mut last = Value::Null;
        for event in events {
            if let Ok(data) = serde_json::from_str::<Value>(&event.data)
                && matches!(
                    data.get("type").and_then(Value::as_str),
                    Some("response.completed" | "response.incomplete" | "response.failed")
                )
                && let Some(response) = data.get("response")
            {
                last = response.clone();
            }
        }
        last
    }

    fn encode_response(&self, response: &ChatResponse) -> Value {
        encode_response(response)
    }

    /// Usage is always written: a Responses stream ends with it.
    fn event_encoder(
        &self,
        _include_usage: bool,
        resume: Option<&StreamHead>,
    ) -> Box<dyn EventEncoder> {
        Box::new(match resume {
            Some(head) => StreamEncoder::resume(head, Echo::default()),
            None => StreamEncoder::new(Echo::default()),
        })
    }

    /// An `openai` provider's own Responses events, as it sent them: ids,
    /// reasoning items and built-in tool events included.
    fn relay_writer(&self, _include_usage: bool) -> Box<dyn StreamWriter> {
        Box::new(Relay::default())
    }

    fn encode_error(&self, error: &ApiError) -> Value {
        encode_error(error)
    }

    fn error_event(&self, error: &ApiError, out: &mut dyn SseSink) {
        StreamEncoder::new(Echo::default()).error(error, out);
    }

    /// OpenAI's SDKs have no exception for 402: a used-up balance is raised
    /// as the rate-limit error OpenAI itself sends for it.
    fn status_for(&self, error: &ApiError) -> u16 {
        match error.kind {
            ErrorKind::Billing if error.status == 402 => 429,
            _ => error.status,
        }
    }
}

/// Relays a provider's Responses events as they are, keeping what a broken
/// stream's closing events need: the answer's identity and the next
/// sequence number.
#[derive(Default)]
struct Relay {
    head: StreamHead,
    next_sequence: u64,
}

impl Relay {
    /// Reads the event's number and, from the first event, the answer's id.
    /// The SDKs check nothing else, so nothing else is parsed out.
    fn observe(&mut self, data: &str) {
        let Ok(event) = serde_json::from_str::<Value>(data) else {
            return;
        };
        if let Some(n) = event.get("sequence_number").and_then(Value::as_u64) {
            self.next_sequence = n.saturating_add(1);
        }
        if !self.head.started
            && let Some(response) = event.get("response")
        {
            self.head.started = true;
            self.head.id = crate::wire::json::get_str(response, "id")
                .unwrap_or_default()
                .to_string();
            self.head.model = crate::wire::json::get_str(response, "model")
                .unwrap_or_default()
                .to_string();
            self.head.created = response
                .get("created_at")
                .and_then(Value::as_u64)
                .unwrap_or_else(crate::api::unix_now);
        }
    }
}

impl StreamWriter for Relay {
    fn write(&mut self, chunk: &crate::wire::Chunk, out: &mut dyn SseSink) {
        self.observe(&chunk.raw.data);
        out.push_event(chunk.raw.event.as_deref(), &chunk.raw.data);
    }

    /// The provider's final event (`response.completed`) ended the stream.
    fn finish(&mut self, _out: &mut dyn SseSink) {}

    /// An `error` event and, once the answer started, `response.failed` for
    /// the same response id, numbered on from the provider's events.
    fn error(&mut self, error: &ApiError, out: &mut dyn SseSink) {
        StreamEncoder::resume(&self.head, Echo::default())
            .numbered_from(self.next_sequence)
            .error(error, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{FinishReason, ToolCall, Usage};
    use serde_json::json;

    fn answer(content: Vec<ContentBlock>, finish_reason: FinishReason) -> ChatResponse {
        ChatResponse {
            id: "chatcmpl-1".into(),
            model: "gpt-x".into(),
            content,
            finish_reason,
            stop_sequence: None,
            usage: Usage {
                input_tokens: 7,
                output_tokens: 3,
            },
            created: 1_700_000_000,
        }
    }

    #[test]
    fn a_complete_answer_is_a_response_object_with_items_and_usage() {
        let body = encode_response(&answer(
            vec![
                ContentBlock::Text("Let me check.".into()),
                ContentBlock::ToolUse(ToolCall {
                    id: "call_1".into(),
                    name: "weather".into(),
                    input: json!({"city": "Oslo"}),
                }),
            ],
            FinishReason::ToolUse,
        ));
        assert!(
            body["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("resp_"))
        );
        assert_eq!(body["object"], "response");
        assert_eq!(body["status"], "completed");
        assert_eq!(body["created_at"], 1_700_000_000);
        assert_eq!(body["model"], "gpt-x");
        assert_eq!(body["incomplete_details"], Value::Null);
        assert!(body.get("output_text").is_none());
        let output = body["output"].as_array().cloned().unwrap_or_default();
        assert_eq!(output.len(), 2);
        assert!(
            output[0]["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("msg_"))
        );
        assert_eq!(output[0]["role"], "assistant");
        assert_eq!(output[0]["content"][0]["type"], "output_text");
        assert_eq!(output[0]["content"][0]["text"], "Let me check.");
        assert!(
            output[1]["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("fc_"))
        );
        assert_eq!(output[1]["type"], "function_call");
        assert_eq!(output[1]["call_id"], "call_1");
        assert_eq!(output[1]["arguments"], "{\"city\":\"Oslo\"}");
        assert_eq!(
            body["usage"],
            json!({"input_tokens": 7, "input_tokens_details": {"cached_tokens": 0},
                   "output_tokens": 3, "output_tokens_details": {"reasoning_tokens": 0},
                   "total_tokens": 10})
        );
        assert_eq!(body["tools"], json!([]));
        assert_eq!(body["parallel_tool_calls"], true);
    }

    #[test]
    fn a_length_finish_is_incomplete_for_max_output_tokens() {
        let body = encode_response(&answer(
            vec![ContentBlock::Text("cut".into())],
            FinishReason::Length,
        ));
        assert_eq!(body["status"], "incomplete");
        assert_eq!(
            body["incomplete_details"],
            json!({"reason": "max_output_tokens"})
        );
        assert_eq!(body["output"][0]["status"], "incomplete");
    }

    #[test]
    fn each_answer_gets_its_own_id() {
        let response = answer(vec![ContentBlock::Text("a".into())], FinishReason::Stop);
        assert_ne!(
            encode_response(&response)["id"],
            encode_response(&response)["id"]
        );
    }

    #[test]
    fn a_responses_provider_is_relayed_event_for_event() {
        assert!(FrontDoor.relays(WireFormat::Responses));
        assert!(!FrontDoor.relays(WireFormat::OpenAi));
        let raw = SseEvent {
            event: Some("response.output_text.delta".into()),
            data: r#"{"type":"response.output_text.delta","item_id":"msg_9","delta":"Hi"}"#.into(),
        };
        let chunk = crate::wire::Chunk {
            raw: raw.clone(),
            events: Vec::new(),
        };
        let mut out: Vec<SseEvent> = Vec::new();
        let mut writer = FrontDoor.stream_writer(WireFormat::Responses, false);
        writer.write(&chunk, &mut out);
        writer.finish(&mut out);
        assert_eq!(out, vec![raw]);
    }

    #[test]
    fn a_broken_relayed_stream_fails_the_same_response_numbered_on() {
        let created = SseEvent {
            event: Some("response.created".into()),
            data: r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_up","model":"gpt-5","created_at":5}}"#.into(),
        };
        let delta = SseEvent {
            event: Some("response.output_text.delta".into()),
            data: r#"{"type":"response.output_text.delta","sequence_number":1,"delta":"Hi"}"#
                .into(),
        };
        let mut writer = FrontDoor.relay_writer(false);
        let mut out: Vec<SseEvent> = Vec::new();
        for raw in [created, delta] {
            writer.write(
                &crate::wire::Chunk {
                    raw,
                    events: Vec::new(),
                },
                &mut out,
            );
        }
        writer.error(&ApiError::new(ErrorKind::Api, "cut"), &mut out);
        let closing: Vec<Value> = out[2..]
            .iter()
            .map(|e| serde_json::from_str(&e.data).unwrap_or(Value::Null))
            .collect();
        assert_eq!(closing[0]["type"], "error");
        assert_eq!(closing[0]["sequence_number"], 2);
        assert_eq!(closing[1]["type"], "response.failed");
        assert_eq!(closing[1]["sequence_number"], 3);
        assert_eq!(closing[1]["response"]["id"], "resp_up");
        assert_eq!(closing[1]["response"]["status"], "failed");
    }

    #[test]
    fn the_final_event_of_a_stream_is_its_answer() {
        let mut events: Vec<SseEvent> = Vec::new();
        let mut encoder = StreamEncoder::new(Echo::default());
        encoder.encode(
            &crate::api::StreamEvent::TextDelta {
                index: 0,
                text: "Hi".into(),
            },
            &mut events,
        );
        encoder.finish(&mut events);
        let body = FrontDoor.assemble_relayed(&mut events.iter());
        assert_eq!(body["output"][0]["content"][0]["text"], "Hi");
        assert_eq!(body["status"], "completed");
    }
}
