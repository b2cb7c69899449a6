//! The wire dialects: one folder per format, split by direction (a
//! client's request in, the provider's request out and its answers back,
//! answers out to a client), each providing the traits of `dialect`:
//! `UpstreamDialect` for a provider kind, `ClientDialect` for a front door.
//! `json` holds the field readers they share.
//!
//! # Adding a dialect
//!
//! 1. A new folder beside `openai/` with the directions it needs: a type
//!    implementing `UpstreamDialect` (URL, headers, request encoding, stream
//!    and error decoding) and, for a front door, one implementing
//!    `ClientDialect` (request decoding, answer and error encoding).
//! 2. One line in `upstream` below mapping the new `ProviderKind` variant
//!    (the name the configuration accepts) to it; for a front door, one in
//!    `front_door` and the gateway's route and `ClientFormat`.
//!
//! Nothing in the engine or in `provider.rs` changes: they only call the
//! traits.

pub mod anthropic;
pub mod converse;
pub mod dialect;
pub mod gemini;
pub mod json;
pub mod limits;
pub mod openai;
pub mod responses;
pub mod translate;

pub use dialect::{
    Chunk, ClientDialect, EventEncoder, Header, SseSink, StreamDecode, StreamHead, StreamWriter,
    UpstreamDialect, encode_chunks,
};

use crate::api::{ChatRequest, ContentBlock, Message, Role, StreamEvent, WireFormat};
use crate::config::ProviderKind;
use crate::error::ApiError;

/// The dialect each provider kind speaks: the one place a `ProviderKind` is
/// told apart.
pub fn upstream(kind: ProviderKind) -> &'static dyn UpstreamDialect {
    match kind {
        ProviderKind::OpenAi => &openai::Upstream::OpenAi,
        ProviderKind::OpenAiCompatible => &openai::Upstream::Compatible,
        ProviderKind::Anthropic => &anthropic::Upstream,
        ProviderKind::Gemini => &gemini::Upstream,
        // A cloud's main API; per model, `provider::cloud` may pick another
        // (Gemini on Vertex).
        ProviderKind::AzureOpenAi => &openai::Upstream::Azure,
        ProviderKind::Bedrock | ProviderKind::Vertex => &anthropic::Upstream,
    }
}

/// The front door that speaks `format`, if Bulwark has one.
pub fn front_door(format: WireFormat) -> Option<&'static dyn ClientDialect> {
    match format {
        WireFormat::OpenAi => Some(&openai::FrontDoor),
        WireFormat::Anthropic => Some(&anthropic::FrontDoor),
        WireFormat::Responses => Some(&responses::FrontDoor),
        WireFormat::Gemini => Some(&gemini::FrontDoor),
        WireFormat::Converse => None,
    }
}

/// Neutral events as chunks of an answer in a provider's `format`, for
/// answers Bulwark writes itself in the place of a provider's (a continued
/// stream, a static answer): see `openai::encode_events`. Every format has
/// a front door now; the OpenAI form stands in for one that would not, since
/// such a format is only ever shown to clients translated.
pub fn encode_events(
    format: WireFormat,
    head: &StreamHead,
    events: &[StreamEvent],
    end: bool,
) -> Vec<Chunk> {
    let dialect = front_door(format).unwrap_or(&openai::FrontDoor);
    encode_chunks(&mut *dialect.event_encoder(true, Some(head)), events, end)
}

/// Why a provider's stream could not be decoded further. Its message and
/// code are the provider's text, which may quote the key back; `provider.rs`
/// redacts them as it turns the fault into an `UpstreamError`, before any
/// client or log sees them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StreamFault {
    pub message: String,
    /// The provider's error type, when the stream carried an error event.
    pub code: Option<String>,
}

impl StreamFault {
    pub fn malformed(error: serde_json::Error) -> Self {
        StreamFault {
            message: format!("malformed stream chunk: {error}"),
            code: None,
        }
    }

    /// An error event inside a stream, in any of the formats' shapes.
    pub fn error_event(error: &serde_json::Value) -> Self {
        let code = json::get_str(error, "type")
            .or_else(|| json::get_str(error, "code"))
            .or_else(|| json::get_str(error, "status"))
            .map(str::to_string);
        StreamFault {
            message: format!(
                "error event in stream ({}): {}",
                code.as_deref().unwrap_or("error"),
                json::get_str(error, "message").unwrap_or("unknown error")
            ),
            code,
        }
    }
}

/// Splits leading system messages from the conversation. Anthropic and
/// Gemini take system instructions once, before the conversation; a system
/// message later on (Anthropic's mid-conversation system messages, an
/// OpenAI `developer` reminder) stays where it was, as a user turn written
/// by `system_note`, since its place in the conversation is what it means.
pub(crate) fn leading_system(request: &ChatRequest) -> (Option<String>, usize) {
    let mut parts = Vec::new();
    let mut first_turn = 0;
    for message in &request.messages {
        if message.role != Role::System {
            break;
        }
        parts.push(system_text(message));
        first_turn += 1;
    }
    let system = (!parts.is_empty()).then(|| parts.join("\n\n"));
    (system, first_turn)
}

/// A later system message as the text of the user turn that carries it,
/// marked so the model can tell an instruction from the user's own words.
pub(crate) fn system_note(message: &Message) -> String {
    format!("<system>\n{}\n</system>", system_text(message))
}

/// A system message's text blocks as one text. Each block of an Anthropic
/// `system` array is a section of its own (Claude Code sends its prompt,
/// environment and instructions as separate blocks), so they stay apart.
pub(crate) fn system_text(message: &Message) -> String {
    let texts: Vec<&str> = message
        .content
        .iter()
        .filter_map(|block| match block {
            ContentBlock::Text(text) if !text.is_empty() => Some(text.as_str()),
            _ => None,
        })
        .collect();
    texts.join("\n\n")
}

/// Refuses a conversation that ends with an assistant turn: Anthropic reads
/// it as the start of the answer to continue (a prefill), which other
/// formats cannot express; they would answer afresh instead.
pub(crate) fn refuse_prefill(request: &ChatRequest, format_name: &str) -> Result<(), ApiError> {
    match request.messages.last() {
        Some(last) if last.role == Role::Assistant => Err(ApiError::invalid_param(
            format!("messages[{}]", request.messages.len() - 1),
            format!(
                "the conversation ends with an assistant turn (a prefill to continue), which the {format_name} format of this route's target cannot express; end with a user turn"
            ),
        )),
        _ => Ok(()),
    }
}

/// Tool-call arguments as JSON text. Arguments that never parsed (a call cut
/// short by the token limit) are kept as the text the model wrote.
pub(crate) fn arguments_text(input: &serde_json::Value) -> String {
    match input {
        serde_json::Value::String(raw) => raw.clone(),
        other => other.to_string(),
    }
}

/// An answer's id in the shape the client's format uses (`msg_...`,
/// `chatcmpl-...`), keeping the provider's id inside it for tracing.
pub(crate) fn prefixed_id(prefix: &str, id: &str) -> String {
    if id.starts_with(prefix) {
        id.to_string()
    } else {
        format!("{prefix}{id}")
    }
}
