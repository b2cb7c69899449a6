//! Decoding Gemini's `streamGenerateContent?alt=sse`.

use serde_json::Value;

use super::upstream::{decode_call, decode_finish, decode_usage, failed_tool_call, parts_of};
use crate::api::StreamEvent;
use crate::sse::SseEvent;
use crate::wire::StreamFault;
use crate::wire::dialect::StreamDecode;
use crate::wire::json as j;

/// Decodes `streamGenerateContent?alt=sse`. The stream has no terminator:
/// it is complete once a chunk carried a finish reason.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    done: bool,
    next_index: usize,
    text_index: Option<usize>,
    /// The block thought parts go to, until text or a call follows them.
    thinking_index: Option<usize>,
    calls: usize,
    finish: Option<String>,
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
        let chunk: Value = serde_json::from_str(&event.data).map_err(StreamFault::malformed)?;
        if let Some(error) = chunk.get("error") {
            return Err(StreamFault::error_event(error));
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: j::get_str(&chunk, "responseId")
                    .unwrap_or("gemini-bulwark")
                    .to_string(),
                model: j::get_str(&chunk, "modelVersion")
                    .unwrap_or_default()
                    .to_string(),
                created: crate::api::unix_now(),
                input_tokens: chunk
                    .get("usageMetadata")
                    .map(|u| decode_usage(u).input_tokens),
            });
        }
        if let Some(candidate) = chunk.get("candidates").and_then(|c| c.get(0)) {
            for part in parts_of(candidate) {
                if let Some(text) = j::get_str(part, "text") {
                    if text.is_empty() {
                        continue;
                    }
                    if part.get("thought").and_then(Value::as_bool) == Some(true) {
                        let index = match self.thinking_index {
                            Some(index) => index,
                            None => {
                                let index = self.next_index;
                                self.next_index += 1;
                                self.thinking_index = Some(index);
                                index
                            }
                        };
                        out.push(StreamEvent::Thinking {
                            index,
                            text: text.to_string(),
                        });
                        continue;
                    }
                    let index = match self.text_index {
                        Some(index) => index,
                        None => {
                            let index = self.next_index;
                            self.next_index += 1;
                            self.text_index = Some(index);
                            self.thinking_index = None;
                            index
                        }
                    };
                    out.push(StreamEvent::TextDelta {
                        index,
                        text: text.to_string(),
                    });
                } else if let Some(call) = part.get("functionCall") {
                    self.calls += 1;
                    self.text_index = None;
                    self.thinking_index = None;
                    let index = self.next_index;
                    self.next_index += 1;
                    let call = decode_call(call, self.calls);
                    out.push(StreamEvent::ToolCallStart {
                        index,
                        id: call.id,
                        name: call.name,
                    });
                    out.push(StreamEvent::ToolCallDelta {
                        index,
                        partial_json: crate::wire::arguments_text(&call.input),
                    });
                }
            }
            if let Some(reason) = j::get_str(candidate, "finishReason") {
                if failed_tool_call(reason) {
                    return Err(StreamFault {
                        message: format!("Gemini failed to produce a valid tool call ({reason})"),
                        code: Some(reason.to_string()),
                    });
                }
                self.finish = Some(reason.to_string());
            }
        } else if chunk
            .get("promptFeedback")
            .and_then(|f| f.get("blockReason"))
            .is_some()
        {
            self.finish = Some("SAFETY".into());
        }
        if let Some(usage) = chunk.get("usageMetadata") {
            out.push(StreamEvent::Usage(decode_usage(usage)));
        }
        if let Some(reason) = self.finish.take() {
            out.push(StreamEvent::Finish {
                reason: decode_finish(&reason, self.calls > 0),
                stop_sequence: None,
            });
            self.done = true;
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

    #[test]
    fn thought_parts_are_thinking_events() {
        let mut decoder = StreamDecoder::new();
        let mut out = Vec::new();
        for data in [
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Weighing it up.","thought":true}]}}],"responseId":"r1","modelVersion":"gemini-2.5-pro"}"#,
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Hi"}]}}]}"#,
        ] {
            let event = SseEvent {
                event: None,
                data: data.to_string(),
            };
            assert_eq!(decoder.on_event(&event, &mut out), Ok(()));
        }
        assert_eq!(
            out[1..],
            [
                StreamEvent::Thinking {
                    index: 0,
                    text: "Weighing it up.".into()
                },
                StreamEvent::TextDelta {
                    index: 1,
                    text: "Hi".into()
                },
            ]
        );
    }
}
