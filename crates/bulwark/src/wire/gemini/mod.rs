//! The Gemini `generateContent` format, upstream side only: Bulwark has no
//! Gemini front door yet. `upstream` encodes the request and decodes the
//! complete answer and error bodies; `decode_stream` decodes the stream.

mod decode_stream;
mod embed;
mod upstream;

pub use decode_stream::StreamDecoder;
pub use upstream::{Upstream, decode_error, decode_response, encode_request, retry_delay};
