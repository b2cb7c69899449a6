//! `mid_stream: continue`: when a stream breaks after part of the answer
//! reached the client, the next target that accepts an assistant prefill
//! (Anthropic) is asked to continue from the partial text, and its
//! continuation is spliced into the same client stream.
//!
//! The client was promised chunks in the first provider's format (a client
//! speaking that format is relayed them as they are), so the continuation is
//! rewritten into that format: the same answer id, the same content block.
//! Tool calls cannot be resumed half-written; a stream that broke inside
//! one ends with an error as usual.

use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::api::{
    ChatRequest, ContentBlock, FinishReason, Message, Role, StreamEvent, Usage, WireFormat,
};
use crate::deadline::Deadline;
use crate::engine::{Call, Mode, report_at_end};
use crate::events::{Event, EventBus};
use crate::provider::{Chunk, ChunkStream};
use crate::resilience::classify::classify;
use crate::route::Route;
use crate::sse::SseEvent;
use crate::wire::{self, EventEncoder, StreamHead, encode_chunks};

pub(crate) struct Continuation {
    pub route: Arc<Route>,
    /// The client's request.
    pub request: ChatRequest,
    /// Targets not yet tried that continue a prefill, in plan order.
    pub candidates: Vec<Candidate>,
    pub deadline: Deadline,
    pub events: EventBus,
    /// The target that served the stream so far.
    pub served: usize,
}

/// A target that may continue the stream, and what it is sent.
pub(crate) struct Candidate {
    /// The target's index in the route.
    pub index: usize,
    /// The request as translated for it (`wire::translate::prepare`);
    /// `None`: the client's request as it is.
    pub request: Option<ChatRequest>,
    /// Features of the client's request it is sent without.
    pub dropped: Vec<&'static str>,
    /// Its format is not the client's (see `UpstreamError::translated`).
    pub translated: bool,
}

/// What the client has been sent so far, to continue from it seamlessly.
#[derive(Default)]
struct SoFar {
    /// The prompt's size as the answer's start reported it.
    input_tokens: Option<u64>,
    text: String,
    tool_started: bool,
    text_index: Option<usize>,
    id: String,
    model: String,
    created: u64,
    /// Anthropic's index of the text block, from the raw events.
    raw_text_block: Option<usize>,
    /// The text block was closed (Anthropic): nothing more can go into it.
    text_block_closed: bool,
    /// The answer's finish reason was already sent: only the terminator is
    /// missing.
    finished: bool,
}

impl SoFar {
    fn observe(&mut self, chunk: &Chunk) {
        for event in &chunk.events {
            match event {
                StreamEvent::Start {
                    id,
                    model,
                    created,
                    input_tokens,
                } => {
                    self.id.clone_from(id);
                    self.model.clone_from(model);
                    self.created = *created;
                    self.input_tokens = *input_tokens;
                }
                StreamEvent::TextDelta { index, text } => {
                    self.text.push_str(text);
                    self.text_index = Some(*index);
                }
                StreamEvent::ToolCallStart { .. } | StreamEvent::ToolCallDelta { .. } => {
                    self.tool_started = true
                }
                StreamEvent::Finish { .. } => self.finished = true,
                // Thinking is not continued: the prefill is the text alone.
                StreamEvent::Usage(_) | StreamEvent::Thinking { .. } => {}
            }
        }
        let Ok(data) = serde_json::from_str::<Value>(&chunk.raw.data) else {
            return;
        };
        match data.get("type").and_then(Value::as_str) {
            Some("content_block_start")
                if data.pointer("/content_block/type").and_then(Value::as_str) == Some("text") =>
            {
                self.raw_text_block = block_index(&data);
                self.text_block_closed = false;
            }
            Some("content_block_stop") if block_index(&data) == self.raw_text_block => {
                self.text_block_closed = true;
            }
            _ => {}
        }
    }
}

/// An Anthropic stream event's content-block index.
fn block_index(data: &Value) -> Option<usize> {
    data.get("index")
        .and_then(Value::as_u64)
        .and_then(|index| usize::try_from(index).ok())
}

pub(crate) fn continue_on_failure(first: ChunkStream, c: Continuation) -> ChunkStream {
    let served = &c.route.targets[c.served];
    let format = served.provider.format_for(&c.request, &served.model);
    Box::pin(async_stream::stream! {
        let mut first = first;
        let mut so_far = SoFar::default();
        let failure = loop {
            match first.next().await {
                Some(Ok(chunk)) => {
                    so_far.observe(&chunk);
                    yield Ok(chunk);
                }
                Some(Err(error)) => break error,
                None => return,
            }
        };
        if so_far.finished {
            // Complete but for the terminator: send it, nothing to continue.
            match format {
                WireFormat::Anthropic => yield Ok(Chunk { raw: SseEvent { event: Some("message_stop".into()), data: json!({"type": "message_stop"}).to_string() }, events: vec![] }),
                WireFormat::OpenAi => yield Ok(Chunk { raw: SseEvent { event: None, data: "[DONE]".into() }, events: vec![] }),
                // Gemini's stream has no terminator: it simply ends; a
                // Responses stream's last event (`response.completed`) is its.
                // Nor does Converse's: its last event (`metadata`) is usage.
                WireFormat::Gemini | WireFormat::Responses | WireFormat::Converse => {}
            }
            return;
        }
        // A relayed Responses stream ends with the whole Response object,
        // which the client stores and continues from; a continuation
        // written by another target could not make it whole again.
        if format == WireFormat::Responses || so_far.tool_started || so_far.text.is_empty() || so_far.text_block_closed || c.deadline.passed() {
            yield Err(failure);
            return;
        }
        // Anthropic refuses a prefill ending in whitespace; the model's
        // continuation then brings its own, which must not be doubled.
        let prefill = so_far.text.trim_end().to_string();
        let mut strip_leading_space = prefill.len() < so_far.text.len();
        let mut last_error = failure;
        for candidate in &c.candidates {
            let target = &c.route.targets[candidate.index];
            if !target.provider.dialect_of(&target.model).continues_prefill() {
                continue; // only Anthropic continues an assistant prefill
            }
            // What a first attempt there would have been sent, so what the
            // translation takes out (a thinking budget the model lacks,
            // top_k) stays out.
            let mut request = candidate.request.clone().unwrap_or_else(|| c.request.clone());
            request.messages.push(Message { role: Role::Assistant, content: vec![ContentBlock::Text(prefill.clone())] });
            // The original body no longer describes this request.
            request.source = None;
            let call = Call { route: &c.route, request: &request, deadline: c.deadline, mode: Mode::Stream };
            let Ok(ticket) = target.state.admit(&target.label, &c.events).await else {
                continue;
            };
            // A continuation is a retry elsewhere: the broken target pays.
            let served = &c.route.targets[c.served];
            if !served.state.with_budget(|b| b.try_withdraw(Instant::now())) {
                c.events.emit(|| Event::RetryBudgetExhausted { target: served.label.clone() });
                break;
            }
            let opened = match call.open(target, false, None).await {
                Ok(opened) => opened,
                Err(mut error) => {
                    error.translated = candidate.translated;
                    ticket.report(classify(&error).breaker_outcome());
                    last_error = error;
                    continue;
                }
            };
            tracing::info!(from = %c.route.targets[c.served].label, to = %target.label, dropped = ?candidate.dropped, "continuing a broken stream on another target");
            c.events.emit(|| Event::Continued {
                route: c.route.name.clone(),
                from: c.route.targets[c.served].label.clone(),
                to: target.label.clone(),
                dropped: candidate.dropped.clone(),
            });
            let first_token = opened.first_token;
            let mut rest = report_at_end(opened.into_stream(target, c.deadline), ticket, first_token);
            let mut writer = Splice::new(format, &so_far);
            let mut finish = None;
            let mut usage_seen = None;
            while let Some(item) = rest.next().await {
                match item {
                    Ok(chunk) => {
                        for event in chunk.events {
                            match event {
                                StreamEvent::TextDelta { text, .. } => {
                                    let text = if strip_leading_space { text.trim_start() } else { text.as_str() };
                                    if !text.is_empty() {
                                        strip_leading_space = false;
                                        for chunk in writer.text(text) {
                                            yield Ok(chunk);
                                        }
                                    }
                                }
                                StreamEvent::Finish { reason, stop_sequence } => finish = Some((reason, stop_sequence)),
                                StreamEvent::Usage(usage) => usage_seen = Some(usage),
                                _ => {}
                            }
                        }
                    }
                    Err(error) => {
                        yield Err(error);
                        return;
                    }
                }
            }
            for chunk in writer.end(finish, usage_seen) {
                yield Ok(chunk);
            }
            return;
        }
        yield Err(last_error);
    })
}

/// Writes the continuation in the first provider's format, as the same
/// answer: its id, model and creation time, and its open text block.
struct Splice {
    encoder: Box<dyn EventEncoder>,
    text_index: usize,
    /// Anthropic's SDKs take `message_delta`'s input tokens over
    /// `message_start`'s: the client keeps the size of the prompt it sent,
    /// not the continuation's (its prompt plus the prefill).
    keep_input_tokens: Option<u64>,
}

impl Splice {
    fn new(format: WireFormat, so_far: &SoFar) -> Splice {
        let head = StreamHead {
            id: so_far.id.clone(),
            model: so_far.model.clone(),
            created: so_far.created,
            started: true,
            open_text: so_far.text_index.zip(so_far.raw_text_block),
            blocks: so_far.raw_text_block.map_or(0, |index| index + 1),
        };
        // A format without a front door reaches clients only translated,
        // so any raw form serves; the OpenAI one is used.
        let dialect = wire::front_door(format).unwrap_or(&wire::openai::FrontDoor);
        Splice {
            encoder: dialect.event_encoder(true, Some(&head)),
            text_index: so_far.text_index.unwrap_or(0),
            keep_input_tokens: so_far
                .input_tokens
                .filter(|_| format == WireFormat::Anthropic),
        }
    }

    fn text(&mut self, text: &str) -> Vec<Chunk> {
        let delta = StreamEvent::TextDelta {
            index: self.text_index,
            text: text.to_string(),
        };
        encode_chunks(&mut *self.encoder, &[delta], false)
    }

    /// The ending the first provider would have sent.
    fn end(
        &mut self,
        finish: Option<(FinishReason, Option<String>)>,
        usage: Option<Usage>,
    ) -> Vec<Chunk> {
        let (reason, stop_sequence) = finish.unwrap_or((FinishReason::Stop, None));
        let usage = usage.unwrap_or_default();
        let events = [
            StreamEvent::Finish {
                reason,
                stop_sequence,
            },
            StreamEvent::Usage(Usage {
                input_tokens: self.keep_input_tokens.unwrap_or(usage.input_tokens),
                ..usage
            }),
        ];
        encode_chunks(&mut *self.encoder, &events, true)
    }
}
