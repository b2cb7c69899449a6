//! Amazon Bedrock's Converse API, which Bedrock serves every model in that
//! is not Anthropic's (Amazon Nova, Llama, Mistral...): upstream only, as
//! no client speaks it. `provider/cloud/bedrock.rs` picks it per model and
//! decides the URL and auth; the AWS event-stream framing arrives here as
//! one `SseEvent` per frame, named by its `:event-type`.
//!
//! - `upstream`: the neutral request encoded as Converse's body, its
//!   complete answer (`/converse`) and its error bodies decoded.
//! - `decode_stream`: `/converse-stream`'s events decoded.

mod decode_stream;
mod upstream;

pub use decode_stream::StreamDecoder;
pub(crate) use upstream::holds_tool_blocks;
pub use upstream::{Upstream, decode_error, decode_response, encode_request};
