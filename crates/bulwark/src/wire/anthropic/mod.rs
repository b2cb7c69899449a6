//! The Anthropic Messages format, spoken by Anthropic and by the
//! `/v1/messages` front door.
//!
//! - `inbound`: a client's request, decoded.
//! - `upstream`: the request encoded for Anthropic, its complete answer and
//!   its error bodies decoded; `decode_stream`: its stream decoded.
//! - `relay`: answers and errors encoded for a client, and Anthropic's own
//!   stream reassembled; `encode_stream`: streams encoded.

mod decode_stream;
mod encode_stream;
mod inbound;
mod relay;
mod upstream;

pub use decode_stream::StreamDecoder;
pub use encode_stream::{StreamEncoder, encode_events, encode_sse};
pub use inbound::decode_request;
pub use relay::{FrontDoor, assemble_response, encode_error, encode_response, error_type};
pub use upstream::{API_VERSION, Upstream, decode_error, decode_response, encode_request};
