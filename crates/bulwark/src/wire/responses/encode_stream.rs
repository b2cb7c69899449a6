//! Writing neutral stream events as the Responses API's typed event stream:
//! `response.created`, `response.in_progress`, each output item opened,
//! filled and closed (`response.output_item.added`, its content part, the
//! text or argument deltas and their `.done`, `response.output_item.done`),
//! then `response.completed` (or `response.incomplete`) with the whole
//! Response object. Every event carries `sequence_number`, counting from 0.

use std::fmt;

use serde_json::{Value, json};

use super::echo::Echo;
use super::object::{self, Head, Status};
use crate::api::{StreamEvent, Usage};
use crate::error::ApiError;
use crate::wire::dialect::{Chunk, EventEncoder, SseSink, StreamHead, StreamWriter};

/// Called once with the final Response object of a stream that completed.
pub type OnCompleted = Box<dyn FnOnce(&Value) + Send>;

#[derive(Debug)]
enum Body {
    Message {
        text: String,
    },
    Call {
        call_id: String,
        name: String,
        arguments: String,
    },
}

/// One output item: its id, the neutral block it comes from, and whether
/// its `.done` events were written.
#[derive(Debug)]
struct Item {
    id: String,
    block: usize,
    body: Body,
    done: bool,
}

/// Writes neutral stream events as Responses API events.
pub struct StreamEncoder {
    echo: Echo,
    head: Head,
    sequence: u64,
    started: bool,
    items: Vec<Item>,
    status: Status,
    usage: Option<Usage>,
    on_completed: Option<OnCompleted>,
}

impl fmt::Debug for StreamEncoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamEncoder")
            .field("head", &self.head)
            .field("sequence", &self.sequence)
            .field("items", &self.items)
            .finish_non_exhaustive()
    }
}

impl StreamEncoder {
    /// A fresh answer to a request whose settings are `echo`.
    pub fn new(echo: Echo) -> Self {
        StreamEncoder {
            echo,
            head: Head {
                id: object::new_id("resp_"),
                created: crate::api::unix_now(),
                model: String::new(),
            },
            sequence: 0,
            started: false,
            items: Vec::new(),
            status: Status::Completed,
            usage: None,
            on_completed: None,
        }
    }

    /// Takes up the answer `head` describes: only the answer's identity
    /// carries over; its items are numbered afresh.
    pub fn resume(head: &StreamHead, echo: Echo) -> Self {
        let mut encoder = StreamEncoder::new(echo);
        if !head.id.is_empty() {
            encoder.head.id = crate::wire::prefixed_id("resp_", &head.id);
        }
        encoder.head.model.clone_from(&head.model);
        encoder.head.created = head.created;
        encoder.started = head.started;
        encoder
    }

    /// Numbers the events it writes from `sequence`: after a provider's own
    /// events, relayed, the next are numbered on from them.
    pub fn numbered_from(mut self, sequence: u64) -> Self {
        self.sequence = sequence;
        self
    }

    /// Calls `hook` with the final Response object when the stream
    /// completes (not when it breaks).
    pub fn on_completed(mut self, hook: OnCompleted) -> Self {
        self.on_completed = Some(hook);
        self
    }

    /// This encoder as the writer of a client's stream: it translates the
    /// chunks' neutral events, as no provider speaks this format.
    pub fn into_writer(self) -> Box<dyn StreamWriter> {
        Box::new(Writer(self))
    }

    fn emit(&mut self, mut event: Value, out: &mut dyn SseSink) {
        event["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        let kind = event["type"].as_str().unwrap_or_default().to_string();
        out.push_event(Some(&kind), &event.to_string());
    }

    fn response(&self, status: Status, error: Option<Value>) -> Value {
        let output = if status == Status::InProgress {
            Vec::new()
        } else {
            self.items
                .iter()
                .map(|item| item_json(item, status.item_status()))
                .collect()
        };
        let usage = (status != Status::InProgress).then_some(self.usage.unwrap_or_default());
        object::response(
            &self.head,
            status,
            output,
            usage.as_ref(),
            error,
            &self.echo,
        )
    }

    fn ensure_started(&mut self, out: &mut dyn SseSink) {
        if self.started {
            return;
        }
        self.started = true;
        let response = self.response(Status::InProgress, None);
        self.emit(
            json!({"type": "response.created", "response": response}),
            out,
        );
        self.emit(
            json!({"type": "response.in_progress", "response": response}),
            out,
        );
    }

    /// The output index of the item for neutral block `block`.
    fn item_for(&self, block: usize) -> Option<usize> {
        self.items.iter().position(|item| item.block == block)
    }

    /// Opens an item, closing the one open before it: OpenAI streams one
    /// item at a time.
    fn open(&mut self, item: Item, out: &mut dyn SseSink) -> usize {
        self.close_open(out);
        let output_index = self.items.len();
        let added = item_json(&item, "in_progress");
        let item_id = item.id.clone();
        let is_message = matches!(item.body, Body::Message { .. });
        self.items.push(item);
        self.emit(
            json!({"type": "response.output_item.added", "output_index": output_index, "item": added}),
            out,
        );
        if is_message {
            self.emit(
                json!({"type": "response.content_part.added", "item_id": item_id,
                       "output_index": output_index, "content_index": 0,
                       "part": object::text_part("")}),
                out,
            );
        }
        output_index
    }

    fn close_open(&mut self, out: &mut dyn SseSink) {
        if let Some(index) = self.items.iter().position(|item| !item.done) {
            self.close(index, out);
        }
    }

    fn close(&mut self, output_index: usize, out: &mut dyn SseSink) {
        let Some(item) = self.items.get_mut(output_index) else {
            return;
        };
        item.done = true;
        let id = item.id.clone();
        let mut events = Vec::new();
        match &mut item.body {
            Body::Message { text } => {
                events.push(json!({"type": "response.output_text.done", "item_id": id,
                    "output_index": output_index, "content_index": 0, "text": text, "logprobs": []}));
                events.push(json!({"type": "response.content_part.done", "item_id": id,
                    "output_index": output_index, "content_index": 0, "part": object::text_part(text)}));
            }
            Body::Call {
                arguments, name, ..
            } => {
                // A call without arguments takes none: `{}`, which parses.
                if arguments.is_empty() {
                    arguments.push_str("{}");
                    events.push(json!({"type": "response.function_call_arguments.delta",
                        "item_id": id, "output_index": output_index, "delta": "{}"}));
                }
                events.push(json!({"type": "response.function_call_arguments.done",
                    "item_id": id, "output_index": output_index, "name": name, "arguments": arguments}));
            }
        }
        let done = item_json(item, self.status.item_status());
        events.push(json!({"type": "response.output_item.done", "output_index": output_index, "item": done}));
        for event in events {
            self.emit(event, out);
        }
    }

    pub fn encode(&mut self, event: &StreamEvent, out: &mut dyn SseSink) {
        match event {
            StreamEvent::Start { model, created, .. } => {
                if !self.started {
                    self.head.model.clone_from(model);
                    self.head.created = *created;
                }
                self.ensure_started(out);
            }
            StreamEvent::TextDelta { index, text } => {
                self.ensure_started(out);
                let output_index = match self.item_for(*index) {
                    Some(at) if matches!(self.items[at].body, Body::Message { .. }) => at,
                    _ => self.open(
                        Item {
                            id: object::new_id("msg_"),
                            block: *index,
                            body: Body::Message {
                                text: String::new(),
                            },
                            done: false,
                        },
                        out,
                    ),
                };
                let item = &mut self.items[output_index];
                if let Body::Message { text: so_far } = &mut item.body {
                    so_far.push_str(text);
                }
                let item_id = item.id.clone();
                self.emit(
                    json!({"type": "response.output_text.delta", "item_id": item_id,
                           "output_index": output_index, "content_index": 0,
                           "delta": text, "logprobs": []}),
                    out,
                );
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.ensure_started(out);
                self.open(
                    Item {
                        id: object::new_id("fc_"),
                        block: *index,
                        body: Body::Call {
                            call_id: id.clone(),
                            name: name.clone(),
                            arguments: String::new(),
                        },
                        done: false,
                    },
                    out,
                );
            }
            StreamEvent::ToolCallDelta {
                index,
                partial_json,
            } => {
                // Arguments of a call that never started have no item to
                // go to; decoders always start a call first.
                let Some(output_index) = self.item_for(*index) else {
                    return;
                };
                let item = &mut self.items[output_index];
                if let Body::Call { arguments, .. } = &mut item.body {
                    arguments.push_str(partial_json);
                }
                let item_id = item.id.clone();
                self.emit(
                    json!({"type": "response.function_call_arguments.delta", "item_id": item_id,
                           "output_index": output_index, "delta": partial_json}),
                    out,
                );
            }
            StreamEvent::Finish { reason, .. } => {
                self.ensure_started(out);
                self.status = Status::finished(reason);
                self.close_open(out);
            }
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
            // Another provider's thinking has no place in this format: a
            // reasoning item holds OpenAI's own (encrypted) reasoning.
            StreamEvent::Thinking { .. } => {}
        }
    }

    /// Ends a complete stream with `response.completed`, or
    /// `response.incomplete` when the answer was cut short.
    pub fn finish(&mut self, out: &mut dyn SseSink) {
        self.ensure_started(out);
        while self.items.iter().any(|item| !item.done) {
            self.close_open(out);
        }
        let response = self.response(self.status, None);
        let kind = match self.status {
            Status::Incomplete(_) => "response.incomplete",
            _ => "response.completed",
        };
        self.emit(json!({"type": kind, "response": response}), out);
        if let Some(hook) = self.on_completed.take() {
            hook(&response);
        }
    }

    /// Ends a broken stream: an `error` event (whose `error` object makes
    /// the OpenAI SDKs raise), then `response.failed`.
    pub fn error(&mut self, error: &ApiError, out: &mut dyn SseSink) {
        let body = super::encode_error(error);
        let detail = &body["error"];
        let code = detail["code"]
            .as_str()
            .or_else(|| detail["type"].as_str())
            .unwrap_or("server_error")
            .to_string();
        self.emit(
            json!({"type": "error", "code": code, "message": detail["message"],
                   "param": detail["param"], "error": detail}),
            out,
        );
        if !self.started {
            return;
        }
        let failure = json!({"code": code, "message": detail["message"]});
        let response = self.response(Status::Failed, Some(failure));
        self.emit(
            json!({"type": "response.failed", "response": response}),
            out,
        );
    }
}

fn item_json(item: &Item, status: &str) -> Value {
    let status = if item.done { status } else { "in_progress" };
    match &item.body {
        Body::Message { text } => {
            let parts = if item.done {
                vec![object::text_part(text)]
            } else {
                Vec::new()
            };
            object::message_item(&item.id, status, parts)
        }
        Body::Call {
            call_id,
            name,
            arguments,
        } => object::function_call_item(
            &item.id,
            status,
            call_id,
            name,
            if item.done { arguments } else { "" },
        ),
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

/// Writes a client's stream from any provider's chunks, by their neutral
/// events.
struct Writer(StreamEncoder);

impl StreamWriter for Writer {
    fn write(&mut self, chunk: &Chunk, out: &mut dyn SseSink) {
        for event in &chunk.events {
            self.0.encode(event, out);
        }
    }

    fn finish(&mut self, out: &mut dyn SseSink) {
        self.0.finish(out);
    }

    fn error(&mut self, error: &ApiError, out: &mut dyn SseSink) {
        self.0.error(error, out);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::api::FinishReason;
    use crate::sse::SseEvent;

    fn start() -> StreamEvent {
        StreamEvent::Start {
            id: "chatcmpl-1".into(),
            model: "gpt-x".into(),
            created: 1_700_000_000,
            input_tokens: None,
        }
    }

    fn run(events: &[StreamEvent]) -> Vec<(String, Value)> {
        let mut encoder = StreamEncoder::new(Echo::default());
        let mut out: Vec<SseEvent> = Vec::new();
        for event in events {
            encoder.encode(event, &mut out);
        }
        encoder.finish(&mut out);
        parsed(out)
    }

    fn parsed(out: Vec<SseEvent>) -> Vec<(String, Value)> {
        out.into_iter()
            .map(|e| {
                let data: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
                assert_eq!(e.event.as_deref(), data["type"].as_str(), "{data}");
                (e.event.unwrap_or_default(), data)
            })
            .collect()
    }

    fn types(events: &[(String, Value)]) -> Vec<&str> {
        events.iter().map(|(kind, _)| kind.as_str()).collect()
    }

    #[test]
    fn a_text_answer_is_the_typed_event_sequence_numbered_from_zero() {
        let events = run(&[
            start(),
            StreamEvent::TextDelta {
                index: 0,
                text: "Hel".into(),
            },
            StreamEvent::TextDelta {
                index: 0,
                text: "lo".into(),
            },
            StreamEvent::Finish {
                reason: FinishReason::Stop,
                stop_sequence: None,
            },
            StreamEvent::Usage(Usage {
                input_tokens: 4,
                output_tokens: 2,
            }),
        ]);
        assert_eq!(
            types(&events),
            vec![
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        for (n, (_, data)) in events.iter().enumerate() {
            assert_eq!(data["sequence_number"], json!(n));
        }
        let item_id = events[2].1["item"]["id"].as_str().unwrap_or_default();
        assert!(item_id.starts_with("msg_"));
        for (_, data) in &events[3..8] {
            assert_eq!(data["item_id"], item_id);
            assert_eq!(data["output_index"], 0);
        }
        assert_eq!(events[6].1["text"], "Hello");
        let created = &events[0].1["response"];
        assert_eq!(created["status"], "in_progress");
        assert_eq!(created["model"], "gpt-x");
        let done = &events[9].1["response"];
        assert_eq!(done["id"], created["id"]);
        assert_eq!(done["status"], "completed");
        assert_eq!(done["output"][0]["content"][0]["text"], "Hello");
        assert_eq!(done["usage"]["total_tokens"], 6);
        assert_eq!(done["usage"]["input_tokens_details"]["cached_tokens"], 0);
        assert_eq!(
            done["usage"]["output_tokens_details"]["reasoning_tokens"],
            0
        );
    }

    #[test]
    fn tool_calls_after_text_are_their_own_items_with_argument_deltas() {
        let events = run(&[
            start(),
            StreamEvent::TextDelta {
                index: 0,
                text: "Checking.".into(),
            },
            StreamEvent::ToolCallStart {
                index: 1,
                id: "call_a".into(),
                name: "weather".into(),
            },
            StreamEvent::ToolCallDelta {
                index: 1,
                partial_json: "{\"city\":".into(),
            },
            StreamEvent::ToolCallDelta {
                index: 1,
                partial_json: "\"Oslo\"}".into(),
            },
            StreamEvent::ToolCallStart {
                index: 2,
                id: "call_b".into(),
                name: "time".into(),
            },
            StreamEvent::Finish {
                reason: FinishReason::ToolUse,
                stop_sequence: None,
            },
        ]);
        let kinds = types(&events);
        assert_eq!(
            kinds[2..],
            [
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        let call = &events[8].1;
        assert_eq!(call["output_index"], 1);
        assert_eq!(call["item"]["type"], "function_call");
        assert_eq!(call["item"]["call_id"], "call_a");
        assert_eq!(call["item"]["name"], "weather");
        assert_eq!(call["item"]["arguments"], "");
        let call_id = call["item"]["id"].as_str().unwrap_or_default();
        assert!(call_id.starts_with("fc_"));
        assert_eq!(events[9].1["item_id"], call_id);
        assert_eq!(events[11].1["arguments"], "{\"city\":\"Oslo\"}");
        assert_eq!(events[12].1["item"]["status"], "completed");
        assert_eq!(events[13].1["output_index"], 2);
        // A call without arguments gets `{}`, deltas and done alike.
        assert_eq!(events[14].1["delta"], "{}");
        assert_eq!(events[15].1["arguments"], "{}");
        let output = &events[17].1["response"]["output"];
        assert_eq!(output[1]["arguments"], "{\"city\":\"Oslo\"}");
        assert_eq!(output[2]["call_id"], "call_b");
        assert_eq!(events[17].1["sequence_number"], 17);
    }

    #[test]
    fn a_length_finish_ends_with_response_incomplete() {
        let events = run(&[
            start(),
            StreamEvent::TextDelta {
                index: 0,
                text: "cut".into(),
            },
            StreamEvent::Finish {
                reason: FinishReason::Length,
                stop_sequence: None,
            },
        ]);
        let (kind, last) = &events[events.len() - 1];
        assert_eq!(kind, "response.incomplete");
        assert_eq!(last["response"]["status"], "incomplete");
        assert_eq!(
            last["response"]["incomplete_details"],
            json!({"reason": "max_output_tokens"})
        );
        assert_eq!(last["response"]["output"][0]["status"], "incomplete");
    }

    #[test]
    fn a_broken_stream_ends_with_an_error_event_and_response_failed() {
        let mut encoder = StreamEncoder::new(Echo::default());
        let mut out: Vec<SseEvent> = Vec::new();
        encoder.encode(&start(), &mut out);
        encoder.encode(
            &StreamEvent::TextDelta {
                index: 0,
                text: "Hal".into(),
            },
            &mut out,
        );
        encoder.error(
            &ApiError::new(crate::error::ErrorKind::Api, "the answer was interrupted"),
            &mut out,
        );
        let events = parsed(out);
        let kinds = types(&events);
        assert_eq!(kinds[kinds.len() - 2..], ["error", "response.failed"]);
        let error = &events[events.len() - 2].1;
        assert_eq!(error["message"], "the answer was interrupted");
        assert_eq!(error["error"]["type"], "server_error");
        assert_eq!(error["sequence_number"], 5);
        let failed = &events[events.len() - 1].1["response"];
        assert_eq!(failed["status"], "failed");
        assert_eq!(failed["error"]["code"], "server_error");
    }

    #[test]
    fn the_completed_hook_sees_the_final_response() {
        let seen = Arc::new(Mutex::new(None));
        let store = Arc::clone(&seen);
        let mut encoder = StreamEncoder::new(Echo::default()).on_completed(Box::new(move |r| {
            if let Ok(mut slot) = store.lock() {
                *slot = Some(r.clone());
            }
        }));
        let mut out: Vec<SseEvent> = Vec::new();
        encoder.encode(&start(), &mut out);
        encoder.encode(
            &StreamEvent::TextDelta {
                index: 0,
                text: "Hi".into(),
            },
            &mut out,
        );
        encoder.finish(&mut out);
        let events = parsed(out);
        let seen = seen.lock().ok().and_then(|s| s.clone());
        assert_eq!(seen.as_ref(), Some(&events[events.len() - 1].1["response"]));
    }
}
