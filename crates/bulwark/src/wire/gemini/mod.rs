//! The Gemini `generateContent` format, spoken by Gemini and by the
//! `/v1beta/models/{model}:generateContent` front door.
//!
//! - `inbound`: a client's request, decoded; `generation`: its
//!   `generationConfig`.
//! - `upstream`: the request encoded for Gemini, its complete answer and
//!   its error bodies decoded; `decode_stream`: its stream decoded.
//! - `relay`: answers and errors encoded for a client, and Gemini's own
//!   stream reassembled; `encode_stream`: streams encoded.

mod decode_stream;
mod embed;
mod encode_stream;
mod generation;
mod inbound;
mod relay;
mod upstream;

pub use decode_stream::StreamDecoder;
pub use encode_stream::StreamEncoder;
pub use generation::openapi_to_json_schema;
pub use inbound::decode_request;
pub use relay::{FrontDoor, assemble_response, encode_error, encode_response, status_name};
pub use upstream::{Upstream, decode_error, decode_response, encode_request, retry_delay};
