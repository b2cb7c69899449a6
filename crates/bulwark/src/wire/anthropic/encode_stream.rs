//! Writing neutral stream events as Messages stream events.

use serde_json::{Value, json};

use super::relay::encode_error;
use crate::api::{FinishReason, StreamEvent, Usage, WireFormat};
use crate::error::ApiError;
use crate::sse::SseEvent;
use crate::wire::dialect::{Chunk, EventEncoder, SseSink, StreamHead, encode_chunks};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenBlock {
    None,
    /// (neutral index, Anthropic index)
    Text(usize, usize),
}

/// A tool call whose arguments are still arriving.
#[derive(Debug)]
struct PendingTool {
    index: usize,
    id: String,
    name: String,
    arguments: String,
}

/// Writes neutral stream events as Messages stream events.
///
/// Text streams as it comes. Tool calls are written whole, once their
/// arguments are complete: an OpenAI-format provider may interleave the
/// arguments of parallel calls, while an Anthropic block, once stopped,
/// cannot take more.
#[derive(Debug)]
pub struct StreamEncoder {
    /// The id and model of the `message_start` written when the events
    /// begin without a `Start`.
    id: String,
    model: String,
    started: bool,
    open: OpenBlock,
    next_index: usize,
    tools: Vec<PendingTool>,
    finish: Option<(FinishReason, Option<String>)>,
    usage: Usage,
}

impl Default for StreamEncoder {
    fn default() -> Self {
        StreamEncoder {
            id: "msg_bulwark".into(),
            model: String::new(),
            started: false,
            open: OpenBlock::None,
            next_index: 0,
            tools: Vec::new(),
            finish: None,
            usage: Usage::default(),
        }
    }
}

impl StreamEncoder {
    pub fn new() -> Self {
        StreamEncoder::default()
    }

    /// Takes up the answer `head` describes: text for its open block goes on
    /// in that block, new blocks are numbered after its blocks, and
    /// `message_start` is written only if it was not.
    pub fn resume(head: &StreamHead) -> Self {
        StreamEncoder {
            id: head.id.clone(),
            model: head.model.clone(),
            started: head.started,
            open: match head.open_text {
                Some((neutral, index)) => OpenBlock::Text(neutral, index),
                None => OpenBlock::None,
            },
            next_index: head.blocks,
            ..StreamEncoder::default()
        }
    }

    fn event(out: &mut dyn SseSink, name: &str, data: Value) {
        out.push_event(Some(name), &data.to_string());
    }

    /// The `message_start` of an answer whose events began without a `Start`.
    fn start_unannounced(&mut self, out: &mut dyn SseSink) {
        let (id, model) = (self.id.clone(), self.model.clone());
        self.start(&id, &model, 0, out);
    }

    fn start(&mut self, id: &str, model: &str, input_tokens: u64, out: &mut dyn SseSink) {
        self.started = true;
        Self::event(
            out,
            "message_start",
            json!({"type": "message_start", "message": {
                "id": id, "type": "message", "role": "assistant", "content": [], "model": model,
                "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": input_tokens, "output_tokens": 0},
            }}),
        );
    }

    fn close_block(&mut self, out: &mut dyn SseSink) {
        let index = match self.open {
            OpenBlock::None => return,
            OpenBlock::Text(_, i) => i,
        };
        Self::event(
            out,
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        );
        self.open = OpenBlock::None;
    }

    fn open_block(&mut self, out: &mut dyn SseSink, block: Value) -> usize {
        self.close_block(out);
        let index = self.next_index;
        self.next_index += 1;
        Self::event(
            out,
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": block}),
        );
        if index == 0 {
            // Anthropic sends its first keep-alive right after the first block opens.
            Self::event(out, "ping", json!({"type": "ping"}));
        }
        index
    }

    pub fn encode(&mut self, event: &StreamEvent, out: &mut dyn SseSink) {
        if let StreamEvent::Thinking { .. } = event {
            // Another format's thinking cannot become a thinking block: a
            // client sends those back, and only Anthropic's own, signed, are
            // accepted. Nothing is written, not even the message's start.
            return;
        }
        if !self.started {
            match event {
                StreamEvent::Start {
                    id,
                    model,
                    input_tokens,
                    ..
                } => {
                    self.usage.input_tokens = input_tokens.unwrap_or(0);
                    self.start(
                        &crate::wire::prefixed_id("msg_", id),
                        model,
                        self.usage.input_tokens,
                        out,
                    );
                    return;
                }
                _ => self.start_unannounced(out),
            }
        }
        match event {
            StreamEvent::Start { .. } => {}
            StreamEvent::TextDelta { index, text } => {
                let anthropic_index = match self.open {
                    OpenBlock::Text(neutral, i) if neutral == *index => i,
                    _ => {
                        self.flush_tools(out);
                        let i = self.open_block(out, json!({"type": "text", "text": ""}));
                        self.open = OpenBlock::Text(*index, i);
                        i
                    }
                };
                Self::event(
                    out,
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": anthropic_index, "delta": {"type": "text_delta", "text": text}}),
                );
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.close_block(out);
                self.tools.push(PendingTool {
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
                if let Some(tool) = self.tools.iter_mut().find(|t| t.index == *index) {
                    tool.arguments.push_str(partial_json);
                }
            }
            StreamEvent::Finish {
                reason,
                stop_sequence,
            } => {
                self.finish = Some((reason.clone(), stop_sequence.clone()));
            }
            StreamEvent::Usage(usage) => self.usage = *usage,
            StreamEvent::Thinking { .. } => {}
        }
    }

    /// Ends a complete stream: close the open block, report the stop reason
    /// and output usage, then `message_stop`.
    pub fn finish(&mut self, out: &mut dyn SseSink) {
        if !self.started {
            self.start_unannounced(out);
        }
        self.close_block(out);
        self.flush_tools(out);
        let (reason, stop_sequence) = self.finish.take().unwrap_or((FinishReason::Stop, None));
        Self::event(
            out,
            "message_delta",
            json!({
                "type": "message_delta",
                "delta": {"stop_reason": reason.name(WireFormat::Anthropic), "stop_sequence": stop_sequence},
                "usage": {"input_tokens": self.usage.input_tokens, "output_tokens": self.usage.output_tokens},
            }),
        );
        Self::event(out, "message_stop", json!({"type": "message_stop"}));
    }

    /// Writes the pending tool calls, each as one complete block.
    fn flush_tools(&mut self, out: &mut dyn SseSink) {
        for tool in std::mem::take(&mut self.tools) {
            let i = self.open_block(
                out,
                json!({"type": "tool_use", "id": tool.id, "name": tool.name, "input": {}}),
            );
            if !tool.arguments.is_empty() {
                Self::event(
                    out,
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": i, "delta": {"type": "input_json_delta", "partial_json": tool.arguments}}),
                );
            }
            Self::event(
                out,
                "content_block_stop",
                json!({"type": "content_block_stop", "index": i}),
            );
        }
    }

    /// Ends a broken stream with an `error` event, as Anthropic does.
    pub fn error(&mut self, error: &ApiError, out: &mut dyn SseSink) {
        Self::event(out, "error", encode_error(error));
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

/// Neutral events as Messages stream events of the answer `head` describes,
/// each with the neutral events it carries, as Anthropic would have sent
/// them. With `end`, the open block is closed and `message_delta` and
/// `message_stop` follow. For a fresh answer, pass a head that is not
/// `started`; to continue one, the head of the events already sent (its open
/// text block included).
pub fn encode_events(head: &StreamHead, events: &[StreamEvent], end: bool) -> Vec<Chunk> {
    encode_chunks(&mut StreamEncoder::resume(head), events, end)
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

    fn thinking(index: usize) -> StreamEvent {
        StreamEvent::Thinking {
            index,
            text: "Pondering.".into(),
        }
    }

    #[test]
    fn thinking_is_left_out() {
        let mut encoder = StreamEncoder::new();
        let mut out: Vec<SseEvent> = Vec::new();
        // Before the message started: nothing, not even `message_start`.
        encoder.encode(&thinking(0), &mut out);
        assert!(out.is_empty(), "{out:?}");
        let start = StreamEvent::Start {
            id: "msg_1".into(),
            model: "m".into(),
            created: 1,
            input_tokens: Some(3),
        };
        encoder.encode(&start, &mut out);
        out.clear();
        encoder.encode(&thinking(0), &mut out);
        assert!(out.is_empty(), "{out:?}");
        encoder.encode(
            &StreamEvent::TextDelta {
                index: 1,
                text: "Hi".into(),
            },
            &mut out,
        );
        // The text opens the first block the client sees.
        assert!(out[0].data.contains(r#""index":0"#), "{out:?}");
        assert!(out.iter().all(|e| !e.data.contains("Pondering")));
    }
}
