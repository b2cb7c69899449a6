//! The OpenAI Chat Completions format, spoken by OpenAI and by every
//! OpenAI-compatible server (Mistral, Ollama, vLLM, Groq...), and by the
//! `/v1/chat/completions` front door.
//!
//! - `inbound`: a client's request, decoded.
//! - `upstream`: the request encoded for a provider, its complete answer and
//!   its error bodies decoded; `decode_stream`: its stream decoded.
//! - `relay`: answers and errors encoded for a client, and a relayed
//!   provider's stream reassembled; `encode_stream`: streams encoded.

mod decode_stream;
mod encode_stream;
pub(crate) mod inbound;
mod relay;
mod upstream;

pub use decode_stream::StreamDecoder;
pub use encode_stream::{StreamEncoder, encode_events, encode_sse};
pub use inbound::decode_request;
pub use relay::{FrontDoor, assemble_response, encode_error, encode_response, is_usage_chunk};
pub use upstream::{Upstream, decode_error, decode_response, encode_request};
