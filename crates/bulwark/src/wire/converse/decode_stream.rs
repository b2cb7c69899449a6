//! Decoding `/converse-stream`: one event per AWS event-stream frame,
//! named by its `:event-type` (`eventstream.rs` makes them `SseEvent`s).
//! The stream ends with `metadata`, which carries the usage, after
//! `messageStop`, which carries the stop reason.

use serde_json::Value;

use super::upstream::{ANSWER_ID, decode_finish, decode_usage};
use crate::api::StreamEvent;
use crate::sse::SseEvent;
use crate::wire::StreamFault;
use crate::wire::dialect::StreamDecode;
use crate::wire::json as j;

#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    stopped: bool,
    done: bool,
}

impl StreamDecoder {
    pub fn new() -> Self {
        StreamDecoder::default()
    }

    fn start(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: ANSWER_ID.to_string(),
                model: String::new(),
                created: crate::api::unix_now(),
                input_tokens: None,
            });
        }
    }
}

/// A block's index: Converse numbers blocks from 0 within the answer, as
/// the neutral events do.
fn index_of(data: &Value) -> Result<usize, StreamFault> {
    data.get("contentBlockIndex")
        .and_then(Value::as_u64)
        .and_then(|i| usize::try_from(i).ok())
        .ok_or_else(|| StreamFault {
            message: "a Converse content event without `contentBlockIndex`".into(),
            code: None,
        })
}

impl StreamDecode for StreamDecoder {
    fn on_event(
        &mut self,
        event: &SseEvent,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), StreamFault> {
        let data: Value = serde_json::from_str(&event.data).map_err(StreamFault::malformed)?;
        match event.event.as_deref() {
            Some("messageStart") => self.start(out),
            Some("contentBlockStart") => {
                self.start(out);
                let index = index_of(&data)?;
                if let Some(call) = data.pointer("/start/toolUse") {
                    out.push(StreamEvent::ToolCallStart {
                        index,
                        id: j::get_str(call, "toolUseId")
                            .unwrap_or_default()
                            .to_string(),
                        name: j::get_str(call, "name").unwrap_or_default().to_string(),
                    });
                }
            }
            Some("contentBlockDelta") => {
                self.start(out);
                let index = index_of(&data)?;
                let delta = data.get("delta").unwrap_or(&Value::Null);
                if let Some(text) = j::get_str(delta, "text") {
                    out.push(StreamEvent::TextDelta {
                        index,
                        text: text.to_string(),
                    });
                } else if let Some(input) = delta.pointer("/toolUse/input") {
                    out.push(StreamEvent::ToolCallDelta {
                        index,
                        partial_json: crate::wire::arguments_text(input),
                    });
                } else if let Some(reasoning) = delta.get("reasoningContent") {
                    // A signature or redacted reasoning is thinking with no
                    // text to show.
                    out.push(StreamEvent::Thinking {
                        index,
                        text: j::get_str(reasoning, "text")
                            .unwrap_or_default()
                            .to_string(),
                    });
                }
            }
            Some("contentBlockStop") => {}
            Some("messageStop") => {
                self.start(out);
                self.stopped = true;
                out.push(StreamEvent::Finish {
                    reason: decode_finish(j::get_str(&data, "stopReason").unwrap_or("end_turn")),
                    stop_sequence: None,
                });
            }
            Some("metadata") => {
                if let Some(usage) = data.get("usage") {
                    out.push(StreamEvent::Usage(decode_usage(usage)));
                }
                self.done = self.stopped;
            }
            // Events Converse may add that carry no model output.
            _ => {}
        }
        Ok(())
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use crate::api::{FinishReason, Usage};

    use super::*;

    fn decode(events: &[(&str, &str)]) -> (StreamDecoder, Vec<StreamEvent>) {
        let mut decoder = StreamDecoder::new();
        let mut out = Vec::new();
        for (name, data) in events {
            let event = SseEvent {
                event: Some(name.to_string()),
                data: data.to_string(),
            };
            decoder.on_event(&event, &mut out).unwrap();
        }
        (decoder, out)
    }

    #[test]
    fn text_reasoning_and_a_tool_call_become_neutral_events() {
        let (decoder, out) = decode(&[
            ("messageStart", r#"{"role":"assistant"}"#),
            (
                "contentBlockDelta",
                r#"{"delta":{"reasoningContent":{"text":"Hm."}},"contentBlockIndex":0}"#,
            ),
            (
                "contentBlockDelta",
                r#"{"delta":{"reasoningContent":{"signature":"sig"}},"contentBlockIndex":0}"#,
            ),
            ("contentBlockStop", r#"{"contentBlockIndex":0}"#),
            (
                "contentBlockDelta",
                r#"{"delta":{"text":"Let me check."},"contentBlockIndex":1}"#,
            ),
            ("contentBlockStop", r#"{"contentBlockIndex":1}"#),
            (
                "contentBlockStart",
                r#"{"start":{"toolUse":{"toolUseId":"t1","name":"weather"}},"contentBlockIndex":2}"#,
            ),
            (
                "contentBlockDelta",
                r#"{"delta":{"toolUse":{"input":"{\"city\":"}},"contentBlockIndex":2}"#,
            ),
            (
                "contentBlockDelta",
                r#"{"delta":{"toolUse":{"input":"\"Oslo\"}"}},"contentBlockIndex":2}"#,
            ),
            ("contentBlockStop", r#"{"contentBlockIndex":2}"#),
            ("messageStop", r#"{"stopReason":"tool_use"}"#),
        ]);
        assert!(
            !decoder.is_done(),
            "the usage in `metadata` is still to come"
        );
        assert!(matches!(out[0], StreamEvent::Start { .. }));
        assert_eq!(
            out[1..],
            [
                StreamEvent::Thinking {
                    index: 0,
                    text: "Hm.".into()
                },
                StreamEvent::Thinking {
                    index: 0,
                    text: String::new()
                },
                StreamEvent::TextDelta {
                    index: 1,
                    text: "Let me check.".into()
                },
                StreamEvent::ToolCallStart {
                    index: 2,
                    id: "t1".into(),
                    name: "weather".into()
                },
                StreamEvent::ToolCallDelta {
                    index: 2,
                    partial_json: r#"{"city":"#.into()
                },
                StreamEvent::ToolCallDelta {
                    index: 2,
                    partial_json: r#""Oslo"}"#.into()
                },
                StreamEvent::Finish {
                    reason: FinishReason::ToolUse,
                    stop_sequence: None
                },
            ]
        );
    }

    #[test]
    fn metadata_after_the_stop_ends_the_stream_with_usage() {
        let (decoder, out) = decode(&[
            ("messageStart", r#"{"role":"assistant"}"#),
            (
                "contentBlockDelta",
                r#"{"delta":{"text":"Hi"},"contentBlockIndex":0}"#,
            ),
            ("messageStop", r#"{"stopReason":"max_tokens"}"#),
            (
                "metadata",
                r#"{"usage":{"inputTokens":12,"outputTokens":3,"totalTokens":15},"metrics":{"latencyMs":5}}"#,
            ),
        ]);
        assert!(decoder.is_done());
        assert_eq!(
            out[2..],
            [
                StreamEvent::Finish {
                    reason: FinishReason::Length,
                    stop_sequence: None
                },
                StreamEvent::Usage(Usage {
                    input_tokens: 12,
                    output_tokens: 3
                }),
            ]
        );
    }

    #[test]
    fn guardrails_and_filters_end_as_content_filters() {
        for reason in ["guardrail_intervened", "content_filtered"] {
            let (_, out) = decode(&[("messageStop", &format!(r#"{{"stopReason":"{reason}"}}"#))]);
            assert_eq!(
                out.last(),
                Some(&StreamEvent::Finish {
                    reason: FinishReason::ContentFilter,
                    stop_sequence: None
                }),
                "{reason}"
            );
        }
        let (_, out) = decode(&[("messageStop", r#"{"stopReason":"stop_sequence"}"#)]);
        assert!(matches!(
            out.last(),
            Some(StreamEvent::Finish {
                reason: FinishReason::StopSequence,
                ..
            })
        ));
    }

    #[test]
    fn broken_events_are_faults() {
        let mut decoder = StreamDecoder::new();
        let bad = SseEvent {
            event: Some("contentBlockDelta".into()),
            data: "{".into(),
        };
        assert!(decoder.on_event(&bad, &mut Vec::new()).is_err());
        let unindexed = SseEvent {
            event: Some("contentBlockDelta".into()),
            data: r#"{"delta":{"text":"x"}}"#.into(),
        };
        assert!(decoder.on_event(&unindexed, &mut Vec::new()).is_err());
    }

    proptest::proptest! {
        /// Whatever a frame carries, decoding ends in events or a fault,
        /// never a panic.
        #[test]
        fn arbitrary_events_never_panic(
            events in proptest::collection::vec(
                (proptest::sample::select(&["messageStart", "contentBlockStart", "contentBlockDelta",
                    "contentBlockStop", "messageStop", "metadata", "other"][..]),
                 proptest::prelude::any::<String>()),
                0..16,
            ),
        ) {
            let mut decoder = StreamDecoder::new();
            let mut out = Vec::new();
            for (name, data) in events {
                let event = SseEvent { event: Some(name.to_string()), data };
                if decoder.on_event(&event, &mut out).is_err() {
                    break;
                }
            }
        }
    }
}
