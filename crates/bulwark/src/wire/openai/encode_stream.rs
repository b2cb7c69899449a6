//! Writing neutral stream events as Chat Completions chunks.

use serde_json::{Value, json};

use super::relay::{encode_error, usage_json};
use crate::api::{StreamEvent, Usage, WireFormat};
use crate::error::ApiError;
use crate::sse::SseEvent;
use crate::wire::dialect::{Chunk, EventEncoder, SseSink, StreamHead, encode_chunks};

/// Writes neutral stream events as Chat Completions chunks.
#[derive(Debug)]
pub struct StreamEncoder {
    include_usage: bool,
    id: String,
    model: String,
    created: u64,
    started: bool,
    /// Block index to OpenAI tool-call index.
    tools: Vec<usize>,
    usage: Option<Usage>,
}

impl StreamEncoder {
    pub fn new(include_usage: bool) -> Self {
        StreamEncoder {
            include_usage,
            id: "chatcmpl-bulwark".into(),
            model: String::new(),
            created: crate::api::unix_now(),
            started: false,
            tools: Vec::new(),
            usage: None,
        }
    }

    /// Takes up the answer `head` describes: its chunks carry its id, model
    /// and creation time, and the role chunk is written only if it was not.
    pub fn resume(head: &StreamHead, include_usage: bool) -> Self {
        StreamEncoder {
            include_usage,
            id: head.id.clone(),
            model: head.model.clone(),
            created: head.created,
            started: head.started,
            tools: Vec::new(),
            usage: None,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>, out: &mut dyn SseSink) {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        out.push_event(None, &chunk.to_string());
    }

    fn ensure_started(&mut self, out: &mut dyn SseSink) {
        if !self.started {
            self.started = true;
            self.chunk(json!({"role": "assistant", "content": ""}), None, out);
        }
    }

    pub fn encode(&mut self, event: &StreamEvent, out: &mut dyn SseSink) {
        match event {
            StreamEvent::Start {
                id, model, created, ..
            } => {
                self.id = crate::wire::prefixed_id("chatcmpl-", id);
                self.model.clone_from(model);
                self.created = *created;
                self.ensure_started(out);
            }
            StreamEvent::TextDelta { text, .. } => {
                self.ensure_started(out);
                self.chunk(json!({"content": text}), None, out);
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.ensure_started(out);
                let tool_index = self.tools.len();
                self.tools.push(*index);
                self.chunk(
                    json!({"tool_calls": [{"index": tool_index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
                    None,
                    out,
                );
            }
            StreamEvent::ToolCallDelta {
                index,
                partial_json,
            } => {
                let tool_index = self.tools.iter().position(|b| b == index).unwrap_or(0);
                self.chunk(
                    json!({"tool_calls": [{"index": tool_index, "function": {"arguments": partial_json}}]}),
                    None,
                    out,
                );
            }
            StreamEvent::Finish { reason, .. } => {
                self.ensure_started(out);
                self.chunk(json!({}), Some(reason.name(WireFormat::OpenAi)), out);
            }
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
            // Chat Completions has no field for thinking (compatible
            // servers' `reasoning_content` is no part of OpenAI's format,
            // and SDKs drop it): it is left out.
            StreamEvent::Thinking { .. } => {}
        }
    }

    /// Ends a complete stream: the usage chunk if asked for, then `[DONE]`.
    pub fn finish(&mut self, out: &mut dyn SseSink) {
        if self.include_usage && self.usage.is_some() {
            let chunk = json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": usage_json(&self.usage.unwrap_or_default()),
            });
            out.push_event(None, &chunk.to_string());
        }
        out.push_event(None, "[DONE]");
    }

    /// Ends a broken stream the way OpenAI does: an error object, no `[DONE]`,
    /// so clients raise instead of taking a truncated answer as complete.
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

/// Neutral events as Chat Completions chunks of the answer `head` describes,
/// each with the neutral events it carries, as a provider of this format
/// would have sent them (with usage, as Bulwark always asks providers for
/// it). With `end`, the usage chunk and `[DONE]` follow. For a fresh answer,
/// pass a head that is not `started`; to continue one, the head of the
/// chunks already sent.
pub fn encode_events(head: &StreamHead, events: &[StreamEvent], end: bool) -> Vec<Chunk> {
    encode_chunks(&mut StreamEncoder::resume(head, true), events, end)
}

/// The same as `encode_events`, as raw server-sent events only.
pub fn encode_sse(head: &StreamHead, events: &[StreamEvent], end: bool) -> Vec<SseEvent> {
    encode_events(head, events, end)
        .into_iter()
        .map(|chunk| chunk.raw)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinking_is_left_out() {
        let mut encoder = StreamEncoder::new(false);
        let mut out: Vec<SseEvent> = Vec::new();
        encoder.encode(
            &StreamEvent::Thinking {
                index: 0,
                text: "Pondering.".into(),
            },
            &mut out,
        );
        assert!(out.is_empty(), "{out:?}");
    }
}
