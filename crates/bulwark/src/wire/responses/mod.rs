//! OpenAI's Responses API: the `/v1/responses` front door, and the second
//! API of an `openai` provider, which a Responses client's request reaches
//! untranslated (`openai::Upstream::also_speaks`); every other target is
//! reached through the neutral model.
//!
//! - `inbound`: a client's request, decoded.
//! - `upstream`: calling a provider in this format (the client's body
//!   passed through); `decode_stream`: its typed events, decoded.
//! - `object`: the Response object and its output items, shared by complete
//!   answers and the stream's final event; `echo`: the request's settings
//!   it repeats.
//! - `relay`: complete answers and errors encoded, and the dialect;
//!   `encode_stream`: the typed event stream. A provider's own stream is
//!   relayed as sent.

mod decode_stream;
mod echo;
mod encode_stream;
mod inbound;
mod object;
mod options;
mod relay;
mod upstream;

pub use decode_stream::StreamDecoder;
pub use echo::Echo;
pub use encode_stream::StreamEncoder;
pub use inbound::{decode_object, decode_request};
pub use relay::{FrontDoor, encode_error, encode_response, encode_response_with};
pub use upstream::Upstream;
