//! Decoding Anthropic's Messages stream, one server-sent event at a time.

use serde_json::Value;

use super::upstream::{decode_stop, decode_usage};
use crate::api::StreamEvent;
use crate::sse::SseEvent;
use crate::wire::StreamFault;
use crate::wire::dialect::StreamDecode;
use crate::wire::json as j;

/// Decodes a provider's Messages stream.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    done: bool,
    input_tokens: u64,
    /// Anthropic block indices that carry text or tool input; the text and
    /// tool deltas of others (server tools) are skipped.
    known_blocks: Vec<u64>,
}

impl StreamDecoder {
    pub fn new() -> Self {
        StreamDecoder::default()
    }

    pub fn is_done(&self) -> bool {
        self.done
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
        let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
        match kind {
            "message_start" => {
                let message = data.get("message").cloned().unwrap_or_default();
                let usage = message.get("usage").map(decode_usage).unwrap_or_default();
                self.input_tokens = usage.input_tokens;
                out.push(StreamEvent::Start {
                    id: j::get_str(&message, "id")
                        .unwrap_or("msg_bulwark")
                        .to_string(),
                    model: j::get_str(&message, "model")
                        .unwrap_or_default()
                        .to_string(),
                    created: crate::api::unix_now(),
                    input_tokens: Some(usage.input_tokens),
                });
            }
            "content_block_start" => {
                let block = data.get("content_block").cloned().unwrap_or_default();
                let block_index = usize::try_from(index).unwrap_or(usize::MAX);
                match j::get_str(&block, "type") {
                    Some("text") => {
                        self.known_blocks.push(index);
                        if let Some(text) = j::get_str(&block, "text").filter(|t| !t.is_empty()) {
                            out.push(StreamEvent::TextDelta {
                                index: block_index,
                                text: text.to_string(),
                            });
                        }
                    }
                    Some("tool_use") => {
                        self.known_blocks.push(index);
                        out.push(StreamEvent::ToolCallStart {
                            index: block_index,
                            id: j::get_str(&block, "id").unwrap_or_default().to_string(),
                            name: j::get_str(&block, "name").unwrap_or_default().to_string(),
                        });
                    }
                    // The model began to think: a sign of life long before
                    // its first text (redacted thinking has no deltas at all).
                    Some("thinking" | "redacted_thinking") => out.push(StreamEvent::Thinking {
                        index: block_index,
                        text: j::get_str(&block, "thinking")
                            .unwrap_or_default()
                            .to_string(),
                    }),
                    _ => {}
                }
            }
            "content_block_delta" => {
                let delta = data.get("delta").cloned().unwrap_or_default();
                let block_index = usize::try_from(index).unwrap_or(usize::MAX);
                let known = self.known_blocks.contains(&index);
                match j::get_str(&delta, "type") {
                    Some("text_delta") if known => out.push(StreamEvent::TextDelta {
                        index: block_index,
                        text: j::get_str(&delta, "text").unwrap_or_default().to_string(),
                    }),
                    Some("input_json_delta") if known => out.push(StreamEvent::ToolCallDelta {
                        index: block_index,
                        partial_json: j::get_str(&delta, "partial_json")
                            .unwrap_or_default()
                            .to_string(),
                    }),
                    // Only thinking blocks carry these; the signature is no
                    // thinking text, but the model is still at work.
                    Some("thinking_delta" | "signature_delta") => {
                        out.push(StreamEvent::Thinking {
                            index: block_index,
                            text: j::get_str(&delta, "thinking")
                                .unwrap_or_default()
                                .to_string(),
                        });
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                let delta = data.get("delta").cloned().unwrap_or_default();
                if let Some(reason) = j::get_str(&delta, "stop_reason") {
                    out.push(StreamEvent::Finish {
                        reason: decode_stop(reason),
                        stop_sequence: j::get_str(&delta, "stop_sequence").map(str::to_string),
                    });
                }
                if let Some(usage) = data.get("usage") {
                    let mut usage_now = decode_usage(usage);
                    if usage.get("input_tokens").is_none() {
                        usage_now.input_tokens = self.input_tokens;
                    }
                    out.push(StreamEvent::Usage(usage_now));
                }
            }
            "message_stop" => self.done = true,
            "error" => {
                let error = data.get("error").cloned().unwrap_or_default();
                return Err(StreamFault::error_event(&error));
            }
            _ => {} // ping, content_block_stop, and events added after this was written
        }
        Ok(())
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
        StreamDecoder::is_done(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(events: &[(&str, &str)]) -> Vec<StreamEvent> {
        let mut decoder = StreamDecoder::new();
        let mut out = Vec::new();
        for (name, data) in events {
            let event = SseEvent {
                event: Some((*name).to_string()),
                data: (*data).to_string(),
            };
            assert_eq!(decoder.on_event(&event, &mut out), Ok(()));
        }
        out
    }

    #[test]
    fn thinking_blocks_and_their_deltas_are_thinking_events() {
        let events = decode(&[
            ("ping", r#"{"type":"ping"}"#),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me see."}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB"}}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":1,"content_block":{"type":"redacted_thinking","data":"EmwK"}}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":2,"content_block":{"type":"text","text":""}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"Hi"}}"#,
            ),
        ]);
        let thinking = |index: usize, text: &str| StreamEvent::Thinking {
            index,
            text: text.into(),
        };
        assert_eq!(
            events,
            vec![
                thinking(0, ""),
                thinking(0, "Let me see."),
                thinking(0, ""),
                thinking(1, ""),
                StreamEvent::TextDelta {
                    index: 2,
                    text: "Hi".into()
                },
            ]
        );
        assert!(events[..4].iter().all(|e| e.is_output() && !e.is_content()));
    }

    #[test]
    fn a_ping_is_no_sign_of_life() {
        let events = decode(&[("ping", r#"{"type":"ping"}"#)]);
        assert!(events.iter().all(|e| !e.is_output()), "{events:?}");
    }
}
