//! Writing neutral stream events as `streamGenerateContent?alt=sse` chunks:
//! each a whole `GenerateContentResponse`, as Gemini sends them.

use serde_json::{Map, Value, json};

use super::relay::{encode_error, usage_metadata};
use crate::api::{FinishReason, StreamEvent, Usage, WireFormat};
use crate::error::ApiError;
use crate::wire::dialect::{EventEncoder, SseSink, StreamHead};

/// A function call whose arguments are still arriving.
#[derive(Debug)]
struct PendingCall {
    index: usize,
    id: String,
    name: String,
    arguments: String,
}

/// Writes neutral stream events as Gemini chunks.
///
/// Text goes out as it comes. A function call goes out whole once its
/// arguments are complete, since a Gemini part carries its `args` as one
/// object. The finish reason and the usage ride on a last chunk of their
/// own, without content, written when the stream ends.
#[derive(Debug, Default)]
pub struct StreamEncoder {
    id: String,
    model: String,
    calls: Vec<PendingCall>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
}

impl StreamEncoder {
    pub fn new() -> Self {
        StreamEncoder::default()
    }

    /// Takes up the answer `head` describes: Gemini chunks carry no state
    /// between them, so only its id and model go on.
    pub fn resume(head: &StreamHead) -> Self {
        StreamEncoder {
            id: head.id.clone(),
            model: head.model.clone(),
            ..StreamEncoder::default()
        }
    }

    fn chunk(&self, candidate: Value, usage: Option<Usage>) -> Value {
        let mut chunk = Map::new();
        chunk.insert("candidates".into(), json!([candidate]));
        if let Some(usage) = usage {
            chunk.insert("usageMetadata".into(), usage_metadata(usage));
        }
        chunk.insert("modelVersion".into(), json!(self.model));
        chunk.insert("responseId".into(), json!(self.id));
        Value::Object(chunk)
    }

    fn write_parts(&self, parts: Vec<Value>, out: &mut dyn SseSink) {
        let candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
        out.push_event(None, &self.chunk(candidate, None).to_string());
    }

    fn flush_calls(&mut self, out: &mut dyn SseSink) {
        if self.calls.is_empty() {
            return;
        }
        let parts: Vec<Value> = std::mem::take(&mut self.calls)
            .into_iter()
            .map(|call| {
                let args = args_object(Value::String(call.arguments));
                json!({"functionCall": {"id": call.id, "name": call.name, "args": args}})
            })
            .collect();
        self.write_parts(parts, out);
    }

    pub fn encode(&mut self, event: &StreamEvent, out: &mut dyn SseSink) {
        match event {
            StreamEvent::Start { id, model, .. } => {
                self.id = id.clone();
                self.model = model.clone();
            }
            StreamEvent::TextDelta { text, .. } => {
                self.flush_calls(out);
                if !text.is_empty() {
                    self.write_parts(vec![json!({"text": text})], out);
                }
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.calls.push(PendingCall {
                    index: *index,
                    id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                });
            }
            StreamEvent::ToolCallDelta {
                index,
                partial_json,
            } => {
                if let Some(call) = self.calls.iter_mut().find(|c| c.index == *index) {
                    call.arguments.push_str(partial_json);
                }
            }
            StreamEvent::Finish { reason, .. } => {
                self.flush_calls(out);
                self.finish = Some(reason.clone());
            }
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
            // Another format's thinking has no signature Gemini would take
            // back; like every other encoder, this one leaves it out.
            StreamEvent::Thinking { .. } => {}
        }
    }

    pub fn finish(&mut self, out: &mut dyn SseSink) {
        self.flush_calls(out);
        let reason = self.finish.take().unwrap_or(FinishReason::Stop);
        let candidate = json!({"finishReason": reason.name(WireFormat::Gemini), "index": 0});
        let usage = Some(self.usage.unwrap_or_default());
        out.push_event(None, &self.chunk(candidate, usage).to_string());
    }

    /// Ends a broken stream with an error chunk, as Google's servers do; the
    /// `google-genai` SDK raises on a chunk holding `error`.
    pub fn error(&mut self, error: &ApiError, out: &mut dyn SseSink) {
        out.push_event(None, &encode_error(error).to_string());
    }
}

impl EventEncoder for StreamEncoder {
    fn encode(&mut self, event: &StreamEvent, out: &mut dyn SseSink) {
        StreamEncoder::encode(self, event, out);
    }

    fn finish(&mut self, out: &mut dyn SseSink) {
        StreamEncoder::finish(self, out);
    }

    fn error(&mut self, error: &ApiError, out: &mut dyn SseSink) {
        StreamEncoder::error(self, error, out);
    }
}

/// A call's arguments as the object Gemini's `args` must be: google-genai
/// refuses any other JSON type. Arguments cut short or not an object (a
/// model stopped by `MAX_TOKENS` mid-call, a non-Gemini model writing a
/// bare value) keep the text the model wrote under `_raw`, so the caller
/// still sees it and a function taking named parameters fails loudly
/// rather than running with none. No arguments at all are `{}`.
pub(super) fn args_object(args: Value) -> Value {
    let text = match args {
        Value::Object(_) => return args,
        Value::Null => return json!({}),
        Value::String(text) => text,
        other => other.to_string(),
    };
    if text.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(args)) => Value::Object(args),
        _ => json!({ "_raw": text }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::sse::SseEvent;
    use crate::wire::gemini::StreamDecoder;

    fn datas(out: &[SseEvent]) -> Vec<Value> {
        out.iter()
            .map(|e| {
                assert_eq!(e.event, None, "Gemini's events have no names");
                serde_json::from_str(&e.data).unwrap_or(Value::Null)
            })
            .collect()
    }

    #[test]
    fn text_and_a_call_stream_as_chunks_gemini_decodes_back() {
        let events = vec![
            StreamEvent::Start {
                id: "r1".into(),
                model: "gpt-4o-mini".into(),
                created: 1,
                input_tokens: Some(5),
            },
            StreamEvent::Thinking {
                index: 0,
                text: "hm".into(),
            },
            StreamEvent::TextDelta {
                index: 1,
                text: "Hel".into(),
            },
            StreamEvent::TextDelta {
                index: 1,
                text: "lo".into(),
            },
            StreamEvent::ToolCallStart {
                index: 2,
                id: "call_1".into(),
                name: "get_weather".into(),
            },
            StreamEvent::ToolCallDelta {
                index: 2,
                partial_json: "{\"city\":".into(),
            },
            StreamEvent::ToolCallDelta {
                index: 2,
                partial_json: "\"Oslo\"}".into(),
            },
            StreamEvent::Finish {
                reason: FinishReason::ToolUse,
                stop_sequence: None,
            },
            StreamEvent::Usage(Usage {
                input_tokens: 5,
                output_tokens: 7,
            }),
        ];
        let mut encoder = StreamEncoder::new();
        let mut out: Vec<SseEvent> = Vec::new();
        for event in &events {
            encoder.encode(event, &mut out);
        }
        encoder.finish(&mut out);
        let chunks = datas(&out);
        assert_eq!(chunks.len(), 4, "{chunks:?}");
        assert_eq!(
            chunks[0]["candidates"][0]["content"]["parts"][0]["text"],
            "Hel"
        );
        assert_eq!(chunks[0]["responseId"], "r1");
        assert_eq!(
            chunks[2]["candidates"][0]["content"]["parts"][0]["functionCall"],
            json!({"id": "call_1", "name": "get_weather", "args": {"city": "Oslo"}})
        );
        assert_eq!(chunks[3]["candidates"][0]["finishReason"], "STOP");
        assert_eq!(
            chunks[3]["usageMetadata"],
            json!({"promptTokenCount": 5, "candidatesTokenCount": 7, "totalTokenCount": 12})
        );
        // Bulwark's own Gemini decoder reads the same answer back.
        let mut decoder = StreamDecoder::new();
        let mut decoded = Vec::new();
        for event in &out {
            assert_eq!(decoder.on_event(event, &mut decoded), Ok(()));
        }
        assert!(decoder.is_done());
        assert!(decoded.contains(&StreamEvent::Finish {
            reason: FinishReason::ToolUse,
            stop_sequence: None
        }));
    }

    #[test]
    fn a_broken_stream_ends_with_an_error_chunk() {
        let mut encoder = StreamEncoder::new();
        let mut out: Vec<SseEvent> = Vec::new();
        encoder.error(
            &ApiError::new(ErrorKind::Overloaded, "every target is down"),
            &mut out,
        );
        let chunks = datas(&out);
        assert_eq!(chunks[0]["error"]["status"], "UNAVAILABLE");
        assert_eq!(chunks[0]["error"]["message"], "every target is down");
    }

    fn streamed_call(arguments: &[&str]) -> Value {
        let mut encoder = StreamEncoder::new();
        let mut out: Vec<SseEvent> = Vec::new();
        encoder.encode(
            &StreamEvent::ToolCallStart {
                index: 0,
                id: "call_1".into(),
                name: "get_weather".into(),
            },
            &mut out,
        );
        for partial_json in arguments {
            encoder.encode(
                &StreamEvent::ToolCallDelta {
                    index: 0,
                    partial_json: (*partial_json).into(),
                },
                &mut out,
            );
        }
        encoder.finish(&mut out);
        datas(&out)[0]["candidates"][0]["content"]["parts"][0]["functionCall"]["args"].clone()
    }

    #[test]
    fn a_call_cut_short_still_has_object_args_holding_its_text() {
        assert_eq!(
            streamed_call(&["{\"city\":", "\"Os"]),
            json!({"_raw": "{\"city\":\"Os"})
        );
    }

    #[test]
    fn a_call_whose_arguments_are_not_an_object_has_object_args() {
        assert_eq!(streamed_call(&["[1, 2]"]), json!({"_raw": "[1, 2]"}));
        assert_eq!(streamed_call(&["\"Oslo\""]), json!({"_raw": "\"Oslo\""}));
        assert_eq!(streamed_call(&[" "]), json!({}));
        assert_eq!(
            streamed_call(&["{\"city\": \"Oslo\"}"]),
            json!({"city": "Oslo"})
        );
    }

    #[test]
    fn complete_answers_give_object_args_too() {
        assert_eq!(args_object(json!({"a": 1})), json!({"a": 1}));
        assert_eq!(args_object(Value::Null), json!({}));
        assert_eq!(args_object(json!("{\"a\": 1}")), json!({"a": 1}));
        assert_eq!(args_object(json!("{\"a\"")), json!({"_raw": "{\"a\""}));
        assert_eq!(args_object(json!([1])), json!({"_raw": "[1]"}));
    }
}
