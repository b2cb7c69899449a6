//! Decoding a Responses API stream, one typed event at a time, into
//! neutral events: for accounting, the engine's waits and any client that
//! is not relayed the events as they are.

use std::collections::HashMap;

use serde_json::Value;

use super::upstream::{decode_usage, finish_reason};
use crate::api::StreamEvent;
use crate::sse::SseEvent;
use crate::wire::StreamFault;
use crate::wire::dialect::StreamDecode;
use crate::wire::json as j;

/// Decodes a provider's Responses stream.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    done: bool,
    next_index: usize,
    /// Each output item's `output_index` to the neutral block it became:
    /// a map, as a hostile stream may open an item per delta.
    blocks: HashMap<u64, usize>,
}

impl StreamDecoder {
    pub fn new() -> Self {
        StreamDecoder::default()
    }

    /// The neutral block of output item `output_index`, allocated on first use.
    fn block(&mut self, output_index: u64) -> (usize, bool) {
        if let Some(block) = self.blocks.get(&output_index) {
            return (*block, false);
        }
        let block = self.next_index;
        self.next_index += 1;
        self.blocks.insert(output_index, block);
        (block, true)
    }

    fn start(&mut self, response: &Value, out: &mut Vec<StreamEvent>) {
        if self.started {
            return;
        }
        self.started = true;
        out.push(StreamEvent::Start {
            id: j::get_str(response, "id")
                .unwrap_or("resp_bulwark")
                .to_string(),
            model: j::get_str(response, "model")
                .unwrap_or_default()
                .to_string(),
            created: response
                .get("created_at")
                .and_then(Value::as_u64)
                .unwrap_or_else(crate::api::unix_now),
            input_tokens: None,
        });
    }

    pub fn on_event(
        &mut self,
        event: &SseEvent,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), StreamFault> {
        let data: Value = serde_json::from_str(&event.data).map_err(StreamFault::malformed)?;
        let kind = j::get_str(&data, "type")
            .or(event.event.as_deref())
            .unwrap_or_default();
        let output_index = data.get("output_index").and_then(Value::as_u64);
        let delta = || {
            j::get_str(&data, "delta")
                .filter(|d| !d.is_empty())
                .map(str::to_string)
        };
        match kind {
            "response.created" | "response.in_progress" | "response.queued" => {
                if let Some(response) = data.get("response") {
                    self.start(response, out);
                }
            }
            "response.output_item.added" => {
                let item = data.get("item").unwrap_or(&Value::Null);
                if j::get_str(item, "type") == Some("function_call") {
                    self.start(&Value::Null, out);
                    let (index, _) = self.block(output_index.unwrap_or(0));
                    out.push(StreamEvent::ToolCallStart {
                        index,
                        id: j::get_str(item, "call_id").unwrap_or_default().to_string(),
                        name: j::get_str(item, "name").unwrap_or_default().to_string(),
                    });
                    if let Some(arguments) = j::get_str(item, "arguments").filter(|a| !a.is_empty())
                    {
                        out.push(StreamEvent::ToolCallDelta {
                            index,
                            partial_json: arguments.to_string(),
                        });
                    }
                }
            }
            "response.output_text.delta" | "response.refusal.delta" => {
                if let Some(text) = delta() {
                    self.start(&Value::Null, out);
                    let (index, _) = self.block(output_index.unwrap_or(0));
                    out.push(StreamEvent::TextDelta { index, text });
                }
            }
            "response.function_call_arguments.delta" => {
                if let Some(partial_json) = delta() {
                    let (index, _) = self.block(output_index.unwrap_or(0));
                    out.push(StreamEvent::ToolCallDelta {
                        index,
                        partial_json,
                    });
                }
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                if let Some(text) = delta() {
                    self.start(&Value::Null, out);
                    let (index, _) = self.block(output_index.unwrap_or(0));
                    out.push(StreamEvent::Thinking { index, text });
                }
            }
            "response.completed" | "response.incomplete" => {
                let response = data.get("response").unwrap_or(&Value::Null);
                self.start(response, out);
                out.push(StreamEvent::Finish {
                    reason: finish_reason(response),
                    stop_sequence: None,
                });
                if let Some(usage) = response.get("usage").filter(|u| u.is_object()) {
                    out.push(StreamEvent::Usage(decode_usage(usage)));
                }
                self.done = true;
            }
            "response.failed" => {
                let error = data
                    .pointer("/response/error")
                    .filter(|e| e.is_object())
                    .unwrap_or(&Value::Null);
                return Err(fault(error));
            }
            "error" => {
                let error = data.get("error").filter(|e| e.is_object()).unwrap_or(&data);
                return Err(fault(error));
            }
            // Everything else (content parts, annotations, `.done` events,
            // built-in tool progress) carries nothing the neutral events
            // lack; a relayed client gets it as sent.
            _ => {}
        }
        Ok(())
    }
}

/// An error in the stream, classified by its code as OpenAI's error bodies
/// are (`server_error`, `rate_limit_exceeded`...). The event's own `type`
/// (`error`) says nothing, so the code comes first.
fn fault(error: &Value) -> StreamFault {
    let code = j::get_str(error, "code")
        .or_else(|| j::get_str(error, "type").filter(|t| *t != "error"))
        .unwrap_or("server_error")
        .to_string();
    StreamFault {
        message: format!(
            "error event in stream ({code}): {}",
            j::get_str(error, "message").unwrap_or("unknown error")
        ),
        code: Some(code),
    }
}

impl StreamDecode for StreamDecoder {
    fn on_event(
        &mut self,
        event: &SseEvent,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), StreamFault> {
        StreamDecoder::on_event(self, event, out)
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{FinishReason, Usage};
    use serde_json::json;

    fn event(data: Value) -> SseEvent {
        SseEvent {
            event: data["type"].as_str().map(str::to_string),
            data: data.to_string(),
        }
    }

    fn decode(events: &[Value]) -> (Vec<StreamEvent>, Result<(), StreamFault>, bool) {
        let mut decoder = StreamDecoder::new();
        let mut out = Vec::new();
        for data in events {
            if let Err(fault) = decoder.on_event(&event(data.clone()), &mut out) {
                return (out, Err(fault), decoder.done);
            }
        }
        (out, Ok(()), decoder.done)
    }

    fn created() -> Value {
        json!({"type": "response.created", "sequence_number": 0, "response": {
            "id": "resp_1", "object": "response", "created_at": 1_700_000_000u64,
            "model": "gpt-5", "status": "in_progress", "output": []}})
    }

    #[test]
    fn text_reasoning_and_completion_become_neutral_events() {
        let (events, result, done) = decode(&[
            created(),
            json!({"type": "response.output_item.added", "output_index": 0,
                   "item": {"type": "reasoning", "id": "rs_1", "summary": []}}),
            json!({"type": "response.reasoning_summary_text.delta", "output_index": 0,
                   "summary_index": 0, "delta": "Thinking."}),
            json!({"type": "response.output_item.added", "output_index": 1,
                   "item": {"type": "message", "id": "msg_1", "role": "assistant", "content": []}}),
            json!({"type": "response.output_text.delta", "output_index": 1,
                   "content_index": 0, "item_id": "msg_1", "delta": "Hel"}),
            json!({"type": "response.output_text.delta", "output_index": 1,
                   "content_index": 0, "item_id": "msg_1", "delta": "lo"}),
            json!({"type": "response.output_text.done", "output_index": 1, "text": "Hello"}),
            json!({"type": "response.completed", "response": {"id": "resp_1",
                   "status": "completed", "output": [{"type": "message"}],
                   "usage": {"input_tokens": 9, "output_tokens": 4}}}),
        ]);
        assert_eq!(result, Ok(()));
        assert!(done);
        assert_eq!(
            events,
            vec![
                StreamEvent::Start {
                    id: "resp_1".into(),
                    model: "gpt-5".into(),
                    created: 1_700_000_000,
                    input_tokens: None
                },
                StreamEvent::Thinking {
                    index: 0,
                    text: "Thinking.".into()
                },
                StreamEvent::TextDelta {
                    index: 1,
                    text: "Hel".into()
                },
                StreamEvent::TextDelta {
                    index: 1,
                    text: "lo".into()
                },
                StreamEvent::Finish {
                    reason: FinishReason::Stop,
                    stop_sequence: None
                },
                StreamEvent::Usage(Usage {
                    input_tokens: 9,
                    output_tokens: 4
                }),
            ]
        );
    }

    #[test]
    fn a_function_call_streams_as_a_tool_call() {
        let (events, result, done) = decode(&[
            created(),
            json!({"type": "response.output_item.added", "output_index": 0,
                   "item": {"type": "function_call", "id": "fc_1", "call_id": "call_1",
                            "name": "weather", "arguments": ""}}),
            json!({"type": "response.function_call_arguments.delta", "output_index": 0,
                   "item_id": "fc_1", "delta": "{\"city\":"}),
            json!({"type": "response.function_call_arguments.delta", "output_index": 0,
                   "item_id": "fc_1", "delta": "\"Oslo\"}"}),
            json!({"type": "response.incomplete", "response": {"status": "incomplete",
                   "incomplete_details": {"reason": "max_output_tokens"},
                   "output": [{"type": "function_call"}]}}),
        ]);
        assert_eq!(result, Ok(()));
        assert!(done);
        assert_eq!(
            events[1..],
            [
                StreamEvent::ToolCallStart {
                    index: 0,
                    id: "call_1".into(),
                    name: "weather".into()
                },
                StreamEvent::ToolCallDelta {
                    index: 0,
                    partial_json: "{\"city\":".into()
                },
                StreamEvent::ToolCallDelta {
                    index: 0,
                    partial_json: "\"Oslo\"}".into()
                },
                StreamEvent::Finish {
                    reason: FinishReason::Length,
                    stop_sequence: None
                },
            ]
        );
    }

    #[test]
    fn a_completed_answer_with_a_function_call_finishes_for_its_result() {
        let (events, _, _) = decode(&[json!({"type": "response.completed", "response": {
            "status": "completed", "output": [{"type": "function_call"}]}})]);
        assert!(events.contains(&StreamEvent::Finish {
            reason: FinishReason::ToolUse,
            stop_sequence: None
        }));
    }

    #[test]
    fn a_failed_response_is_a_fault_with_its_code() {
        let (_, result, done) = decode(&[
            created(),
            json!({"type": "response.failed", "response": {"status": "failed",
                   "error": {"code": "server_error", "message": "boom"}}}),
        ]);
        let fault = result.err().unwrap_or_else(|| panic!("no fault"));
        assert_eq!(fault.code.as_deref(), Some("server_error"));
        assert!(fault.message.contains("boom"));
        assert!(!done);
    }

    #[test]
    fn an_error_event_is_a_fault_classified_by_its_code() {
        let (_, result, _) = decode(&[json!({"type": "error", "code": "rate_limit_exceeded",
            "message": "slow down", "param": null, "sequence_number": 3})]);
        let fault = result.err().unwrap_or_else(|| panic!("no fault"));
        assert_eq!(fault.code.as_deref(), Some("rate_limit_exceeded"));
        let (_, result, _) = decode(&[json!({"type": "error",
            "error": {"type": "server_error", "message": "overloaded"}})]);
        assert_eq!(
            result.err().and_then(|f| f.code).as_deref(),
            Some("server_error")
        );
    }

    #[test]
    fn a_stream_cut_before_its_final_event_is_not_done() {
        let (_, result, done) = decode(&[
            created(),
            json!({"type": "response.output_text.delta", "output_index": 0, "delta": "Hi"}),
        ]);
        assert_eq!(result, Ok(()));
        assert!(!done);
        let mut decoder = StreamDecoder::new();
        let broken = SseEvent {
            event: None,
            data: "{not json".into(),
        };
        assert!(decoder.on_event(&broken, &mut Vec::new()).is_err());
    }
}
