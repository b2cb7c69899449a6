//! What a wire dialect provides, as two object-safe traits: the upstream
//! side, which a provider kind speaks, and the client side, which a front
//! door speaks. The HTTP code (`provider.rs`, the gateway's front doors)
//! calls these and never looks at which dialect it holds.

use std::fmt::Debug;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use super::StreamFault;
use crate::api::{ChatRequest, ChatResponse, StreamEvent, WireFormat};
use crate::error::ApiError;
use crate::sse::{self, SseEvent};
use crate::unary::{Unary, UnaryCall};

/// One server-sent event from a provider: as received, so that a client
/// speaking the provider's own format can be given it unchanged, and as
/// neutral events, for every other client and for accounting.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub raw: SseEvent,
    pub events: Vec<StreamEvent>,
}

impl Chunk {
    pub fn has_content(&self) -> bool {
        self.events.iter().any(StreamEvent::is_content)
    }

    /// Whether the model is producing output here, thinking included
    /// (`StreamEvent::is_output`).
    pub fn has_output(&self) -> bool {
        self.events.iter().any(StreamEvent::is_output)
    }

    /// Whether a client is shown part of the answer by this chunk: its
    /// content always; its thinking only when `relayed`, i.e. the client
    /// reads the provider's own events, as every encoder of another format
    /// leaves thinking out.
    pub fn is_shown(&self, relayed: bool) -> bool {
        if relayed {
            self.has_output()
        } else {
            self.has_content()
        }
    }
}

/// A header a provider needs on every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: &'static str,
    pub value: String,
    /// Carries the key: kept out of logs and of HTTP/2 header tables.
    pub secret: bool,
}

/// The upstream side of a dialect: everything format-specific about calling
/// one kind of provider. One value per provider kind (see `wire::upstream`).
pub trait UpstreamDialect: Debug + Send + Sync {
    /// The wire format its answers arrive in.
    fn format(&self) -> WireFormat;

    /// The dialect of another API the same provider kind serves, for a
    /// client that speaks `client`: its request then goes out in its own
    /// format, untranslated, and its answer is relayed. `None` (the
    /// default) when the kind speaks no such API: the request is
    /// translated into this dialect's. `Provider::dialect_for` asks.
    fn also_speaks(&self, _client: WireFormat) -> Option<&'static dyn UpstreamDialect> {
        None
    }

    /// The provider kind's name in the configuration (`kind:`).
    fn kind_name(&self) -> &'static str;

    /// The API it speaks, as the OpenTelemetry GenAI conventions'
    /// well-known `gen_ai.provider.name` values.
    fn semconv_name(&self) -> &'static str;

    /// The base URL when the configuration names none; `None` when the kind
    /// has no default server.
    fn default_base_url(&self) -> Option<&'static str>;

    /// The path a server's origin needs before this dialect's endpoints
    /// (OpenAI-style base URLs end in `/v1`; the others name the origin).
    fn base_path(&self) -> &'static str {
        ""
    }

    /// Where a streamed request for `model` goes. A model name that cannot
    /// be sent safely is refused here.
    fn url(&self, base_url: &str, model: &str) -> Result<String, ApiError>;

    /// The authentication header for `key` and the headers the API requires.
    fn headers(&self, key: Option<&str>) -> Vec<Header>;

    /// The neutral request as this API's JSON body, always asking to stream.
    fn encode_request(
        &self,
        request: &ChatRequest,
        model: &str,
        default_max_tokens: u32,
    ) -> Result<Value, ApiError>;

    /// A decoder for one streamed answer.
    fn stream_decoder(&self) -> Box<dyn StreamDecode>;

    /// A complete (non-streamed) answer as a neutral response.
    fn decode_response(&self, body: &[u8]) -> Result<ChatResponse, String>;

    /// An error body's (message, provider error code).
    fn decode_error(&self, body: &Value) -> (Option<String>, Option<String>);

    /// The wait an error body asks for, for APIs that put it there rather
    /// than in headers. Google's `retryDelay` is read from any provider's
    /// body: proxies in front of Gemini pass its errors through unchanged.
    fn retry_hint(&self, body: &Value) -> Option<Duration> {
        crate::wire::gemini::retry_delay(body)
    }

    /// Whether the API continues a conversation that ends with an assistant
    /// turn (a prefill) instead of answering afresh; a broken stream can be
    /// continued only on such a target.
    fn continues_prefill(&self) -> bool {
        false
    }

    /// A unary operation (embeddings, a token count) on `model`, as this
    /// API takes it: the URL, the body and how to read the answer back
    /// into the client's shape. `None` when the API has no such endpoint,
    /// or cannot take this request there: the target is passed over.
    fn unary<'a>(
        &self,
        _operation: &'a Unary,
        _base_url: &str,
        _model: &str,
    ) -> Option<Result<UnaryCall<'a>, ApiError>> {
        None
    }

    /// Whether the API serves embeddings (`unary` builds calls for them),
    /// for `bulwark check`.
    fn embeds(&self) -> bool {
        false
    }

    /// Whether the API has top-k sampling.
    fn takes_top_k(&self) -> bool {
        true
    }
}

/// Decodes one provider stream, one server-sent event at a time.
pub trait StreamDecode: Send {
    fn on_event(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>)
    -> Result<(), StreamFault>;

    /// Whether the stream reached its terminator: an answer cut before it is
    /// truncated.
    fn is_done(&self) -> bool;
}

/// Where encoders write server-sent events: as the bytes a client is sent
/// (`Vec<Bytes>`), or as `SseEvent` values, from which chunks in a provider's
/// format are built (`Vec<SseEvent>`).
pub trait SseSink {
    fn push_event(&mut self, event: Option<&str>, data: &str);
}

impl SseSink for Vec<Bytes> {
    fn push_event(&mut self, event: Option<&str>, data: &str) {
        self.push(sse::encode(event, data));
    }
}

impl SseSink for Vec<SseEvent> {
    fn push_event(&mut self, event: Option<&str>, data: &str) {
        self.push(SseEvent {
            event: event.map(str::to_string),
            data: data.to_string(),
        });
    }
}

/// Writes neutral stream events in one format.
pub trait EventEncoder: Send {
    fn encode(&mut self, event: &StreamEvent, out: &mut dyn SseSink);

    /// Ends a complete stream with the format's terminator.
    fn finish(&mut self, out: &mut dyn SseSink);

    /// Ends a broken stream so that the client's SDK raises.
    fn error(&mut self, error: &ApiError, out: &mut dyn SseSink);
}

/// Writes a client's stream from a provider's chunks: relayed as they are
/// when the provider speaks the client's format, translated otherwise.
pub trait StreamWriter: Send {
    fn write(&mut self, chunk: &Chunk, out: &mut dyn SseSink);

    /// Ends a complete stream; a relayed one already carried its terminator.
    fn finish(&mut self, out: &mut dyn SseSink);

    fn error(&mut self, error: &ApiError, out: &mut dyn SseSink);
}

/// Where an answer stands when an encoder takes it up part-way, so that what
/// it writes next continues the same answer: the answer's id, model and
/// creation time as its first events gave them, and its open text block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamHead {
    /// The id as the format's events carry it (`chatcmpl-...`, `msg_...`).
    pub id: String,
    pub model: String,
    /// Unix seconds.
    pub created: u64,
    /// Whether the answer's opening (OpenAI's role chunk, Anthropic's
    /// `message_start`) was sent already.
    pub started: bool,
    /// The text block still open: its neutral index and its index in the
    /// format's events. Text for it continues that block.
    pub open_text: Option<(usize, usize)>,
    /// How many content blocks the format's events have opened so far.
    pub blocks: usize,
}

/// The client side of a dialect: a front door's format.
pub trait ClientDialect: Debug + Send + Sync {
    /// The format the client speaks.
    fn format(&self) -> WireFormat;

    /// Decodes a client's request body.
    fn decode_request(&self, body: &[u8]) -> Result<ChatRequest, ApiError>;

    /// Where its request bodies keep messages, parts and the model, for
    /// the limits checked before decoding (`wire::limits`).
    fn request_shape(&self) -> &'static crate::wire::limits::Shape;

    /// Whether a provider speaking `provider` can be relayed to the client as
    /// is, so that nothing the neutral model lacks is lost.
    fn relays(&self, provider: WireFormat) -> bool {
        provider == self.format()
    }

    /// The request headers of this format's clients that a target speaking
    /// the same format receives, lower-case: those that name the API's
    /// version and features and so change the answer. An allow-list, so
    /// that credentials, cookies, hop-by-hop and SDK telemetry headers
    /// (`x-stainless-*`) never travel.
    fn forwarded_headers(&self) -> &'static [&'static str] {
        &[]
    }

    /// Rebuilds the complete answer from a relayed provider's raw events,
    /// field for field, as the client's SDK accumulates a stream.
    fn assemble_relayed(&self, events: &mut dyn Iterator<Item = &SseEvent>) -> Value;

    /// A neutral answer in the client's format.
    fn encode_response(&self, response: &ChatResponse) -> Value;

    /// An encoder of neutral events in the client's format: a fresh answer
    /// when `resume` is `None`, or the rest of the answer `resume` describes.
    /// `include_usage`: whether the usage the client may opt into is written.
    fn event_encoder(
        &self,
        include_usage: bool,
        resume: Option<&StreamHead>,
    ) -> Box<dyn EventEncoder>;

    /// The writer of a client's stream from a provider that speaks
    /// `provider`: relayed or translated.
    fn stream_writer(&self, provider: WireFormat, include_usage: bool) -> Box<dyn StreamWriter> {
        if self.relays(provider) {
            self.relay_writer(include_usage)
        } else {
            Box::new(Translate(self.event_encoder(include_usage, None)))
        }
    }

    /// The writer that relays a provider's own stream in the client's format.
    fn relay_writer(&self, include_usage: bool) -> Box<dyn StreamWriter>;

    /// An error body in the client's format.
    fn encode_error(&self, error: &ApiError) -> Value;

    /// The event that ends a broken stream in the client's format.
    fn error_event(&self, error: &ApiError, out: &mut dyn SseSink);

    /// The status the client is answered with for `error`: the one place a
    /// client-visible status is adjusted per SDK, so that each SDK raises
    /// its matching exception.
    fn status_for(&self, error: &ApiError) -> u16 {
        error.status
    }
}

/// Writes a translated stream: the chunks' neutral events, encoded.
struct Translate(Box<dyn EventEncoder>);

impl StreamWriter for Translate {
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

/// Encodes neutral events as chunks of an answer in `encoder`'s format, as
/// a provider of that format would have sent them. Each event rides on the
/// last raw event it produced; one the format writes only later (OpenAI's
/// usage, Anthropic's finish) rides on the next raw event written. With
/// `end`, the format's terminator follows. Events that produce no raw event
/// at all (usage alone, without `end`) have nothing to ride on and are left
/// out.
pub fn encode_chunks(
    encoder: &mut dyn EventEncoder,
    events: &[StreamEvent],
    end: bool,
) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut carried = Vec::new();
    let mut raw: Vec<SseEvent> = Vec::new();
    for event in events {
        encoder.encode(event, &mut raw);
        carried.push(event.clone());
        move_into_chunks(&mut raw, &mut carried, &mut chunks);
    }
    if end {
        encoder.finish(&mut raw);
        move_into_chunks(&mut raw, &mut carried, &mut chunks);
    }
    chunks
}

/// Turns the raw events written so far into chunks, the carried neutral
/// events on the last of them.
fn move_into_chunks(
    raw: &mut Vec<SseEvent>,
    carried: &mut Vec<StreamEvent>,
    chunks: &mut Vec<Chunk>,
) {
    let Some(last) = raw.len().checked_sub(1) else {
        return;
    };
    for (i, event) in raw.drain(..).enumerate() {
        let events = if i == last {
            std::mem::take(carried)
        } else {
            Vec::new()
        };
        chunks.push(Chunk { raw: event, events });
    }
}
