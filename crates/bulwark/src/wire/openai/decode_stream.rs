//! Decoding an OpenAI-format provider's stream, one server-sent event at a
//! time.

use std::borrow::Cow;

use serde_json::Value;

use super::upstream::decode_finish;
use crate::api::{StreamEvent, Usage};
use crate::sse::SseEvent;
use crate::wire::StreamFault;
use crate::wire::dialect::StreamDecode;

/// Decodes a provider's Chat Completions stream, one SSE event at a time.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    finished: bool,
    done: bool,
    next_index: usize,
    text_index: Option<usize>,
    /// The block the reasoning text goes to, until text or a tool call
    /// follows it.
    thinking_index: Option<usize>,
    /// OpenAI's tool-call index to the block index it was given.
    tools: Vec<(u64, usize)>,
}

impl StreamDecoder {
    pub fn new() -> Self {
        StreamDecoder::default()
    }

    /// Whether the stream ended with its terminator.
    pub fn is_done(&self) -> bool {
        self.done
    }

    pub fn on_event(
        &mut self,
        event: &SseEvent,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), StreamFault> {
        if event.data == "[DONE]" {
            if !self.finished {
                return Err(StreamFault {
                    message: "the stream ended without a finish reason (the answer is truncated)"
                        .into(),
                    code: None,
                });
            }
            self.done = true;
            return Ok(());
        }
        // Typed and borrowed: the hot path of every streamed answer, where a
        // generic JSON tree cost an allocation per field.
        let chunk: ChunkIn<'_> =
            serde_json::from_str(&event.data).map_err(StreamFault::malformed)?;
        if let Some(error) = &chunk.error {
            return Err(StreamFault::error_event(error));
        }
        // Azure OpenAI opens with a chunk of its content filter's verdict
        // on the prompt: no choices, no usage, an empty id and model. The
        // answer's id, model and time come with the next.
        if !self.started
            && chunk.usage.is_none()
            && chunk.choices.as_ref().is_none_or(Vec::is_empty)
            && chunk.id.as_deref().is_none_or(str::is_empty)
        {
            return Ok(());
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: chunk
                    .id
                    .as_deref()
                    .unwrap_or("chatcmpl-bulwark")
                    .to_string(),
                model: chunk.model.as_deref().unwrap_or_default().to_string(),
                created: chunk.created.unwrap_or_else(crate::api::unix_now),
                input_tokens: None,
            });
        }
        // Other choices (`n` > 1) only exist when the client speaks OpenAI,
        // and then it is given the provider's chunks as they are.
        let first_choice = chunk
            .choices
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.index.unwrap_or(0) == 0);
        if let Some(choice) = first_choice {
            if let Some(delta) = choice.delta {
                // Compatible servers (DeepSeek, vLLM, OpenRouter, Ollama)
                // stream a reasoning model's thinking before its answer.
                let reasoning = [&delta.reasoning_content, &delta.reasoning]
                    .into_iter()
                    .find_map(|field| field.as_ref().and_then(Value::as_str))
                    .filter(|t| !t.is_empty());
                if let Some(reasoning) = reasoning {
                    let index = match self.thinking_index {
                        Some(index) => index,
                        None => {
                            let index = self.allocate();
                            self.thinking_index = Some(index);
                            index
                        }
                    };
                    out.push(StreamEvent::Thinking {
                        index,
                        text: reasoning.to_string(),
                    });
                }
                let text = delta
                    .content
                    .filter(|t| !t.is_empty())
                    .or(delta.refusal.filter(|t| !t.is_empty()));
                if let Some(text) = text {
                    let index = match self.text_index {
                        Some(index) => index,
                        None => {
                            let index = self.allocate();
                            self.text_index = Some(index);
                            self.thinking_index = None;
                            index
                        }
                    };
                    out.push(StreamEvent::TextDelta {
                        index,
                        text: text.into_owned(),
                    });
                }
                for call in delta.tool_calls.unwrap_or_default() {
                    self.on_tool_delta(call, out);
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finished = true;
                out.push(StreamEvent::Finish {
                    reason: decode_finish(&reason),
                    stop_sequence: None,
                });
            }
        }
        if let Some(usage) = chunk.usage {
            out.push(StreamEvent::Usage(Usage {
                input_tokens: usage.prompt_tokens.unwrap_or(0),
                output_tokens: usage.completion_tokens.unwrap_or(0),
            }));
        }
        Ok(())
    }

    fn allocate(&mut self) -> usize {
        let index = self.next_index;
        self.next_index += 1;
        index
    }

    fn on_tool_delta(&mut self, call: ToolCallIn<'_>, out: &mut Vec<StreamEvent>) {
        let openai_index = call.index.unwrap_or(0);
        let known = self
            .tools
            .iter()
            .find(|(i, _)| *i == openai_index)
            .map(|(_, b)| *b);
        let (name, arguments) = match call.function {
            Some(f) => (f.name, f.arguments),
            None => (None, None),
        };
        let index = match known {
            Some(index) => index,
            None => {
                // A tool call after text closes the text block.
                self.text_index = None;
                self.thinking_index = None;
                let index = self.allocate();
                self.tools.push((openai_index, index));
                out.push(StreamEvent::ToolCallStart {
                    index,
                    id: call.id.map(Cow::into_owned).unwrap_or_default(),
                    name: name.map(Cow::into_owned).unwrap_or_default(),
                });
                index
            }
        };
        if let Some(arguments) = arguments.filter(|a| !a.is_empty()) {
            out.push(StreamEvent::ToolCallDelta {
                index,
                partial_json: arguments.into_owned(),
            });
        }
    }
}

/// A stream chunk as the decoder reads it; unknown fields are skipped.
#[derive(serde::Deserialize)]
struct ChunkIn<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    created: Option<u64>,
    #[serde(borrow)]
    choices: Option<Vec<ChoiceIn<'a>>>,
    usage: Option<UsageIn>,
    error: Option<Value>,
}

#[derive(serde::Deserialize)]
struct ChoiceIn<'a> {
    index: Option<u64>,
    #[serde(borrow)]
    delta: Option<DeltaIn<'a>>,
    #[serde(borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct DeltaIn<'a> {
    #[serde(borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow)]
    refusal: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tool_calls: Option<Vec<ToolCallIn<'a>>>,
    /// Untyped: servers differ in what they put there, and a shape not
    /// foreseen must not fail the whole chunk.
    reasoning_content: Option<Value>,
    reasoning: Option<Value>,
}

#[derive(serde::Deserialize)]
struct ToolCallIn<'a> {
    index: Option<u64>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    function: Option<FunctionIn<'a>>,
}

#[derive(serde::Deserialize)]
struct FunctionIn<'a> {
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    arguments: Option<Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct UsageIn {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
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

    fn decode(chunks: &[&str]) -> Vec<StreamEvent> {
        let mut decoder = StreamDecoder::new();
        let mut out = Vec::new();
        for data in chunks {
            let event = SseEvent {
                event: None,
                data: (*data).to_string(),
            };
            assert_eq!(decoder.on_event(&event, &mut out), Ok(()));
        }
        out
    }

    #[test]
    fn reasoning_deltas_are_thinking_events() {
        let events = decode(&[
            r#"{"id":"c1","model":"m","created":1,"choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning_content":""}}]}"#,
            r#"{"id":"c1","choices":[{"index":0,"delta":{"reasoning_content":"Hmm, "}}]}"#,
            r#"{"id":"c1","choices":[{"index":0,"delta":{"reasoning":"let me think."}}]}"#,
            r#"{"id":"c1","choices":[{"index":0,"delta":{"reasoning":{"unforeseen":true}}}]}"#,
            r#"{"id":"c1","choices":[{"index":0,"delta":{"content":"Hi","reasoning_content":null}}]}"#,
        ]);
        assert_eq!(
            events[1..],
            [
                StreamEvent::Thinking {
                    index: 0,
                    text: "Hmm, ".into()
                },
                StreamEvent::Thinking {
                    index: 0,
                    text: "let me think.".into()
                },
                StreamEvent::TextDelta {
                    index: 1,
                    text: "Hi".into()
                },
            ]
        );
        assert!(matches!(events[0], StreamEvent::Start { .. }));
    }

    #[test]
    fn azures_prompt_filter_chunk_starts_nothing() {
        let events = decode(&[
            r#"{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}"#,
            r#"{"id":"c1","model":"gpt-4o","created":7,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"content_filter_results":{}}]}"#,
        ]);
        assert_eq!(
            events,
            [StreamEvent::Start {
                id: "c1".into(),
                model: "gpt-4o".into(),
                created: 7,
                input_tokens: None
            }]
        );
    }
}
