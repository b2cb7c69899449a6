//! OpenAI's Responses API, spoken by the `/v1/responses` front door only:
//! no provider is called in it (`relays` is false for every provider
//! format), so every target is reached through the neutral model.
//!
//! - `inbound`: a client's request, decoded.
//! - `object`: the Response object and its output items, shared by complete
//!   answers and the stream's final event; `echo`: the request's settings
//!   it repeats.
//! - `relay`: complete answers and errors encoded, and the dialect;
//!   `encode_stream`: the typed event stream.

mod echo;
mod encode_stream;
mod inbound;
mod object;
mod relay;

pub use echo::Echo;
pub use encode_stream::StreamEncoder;
pub use inbound::{decode_object, decode_request};
pub use relay::{FrontDoor, encode_error, encode_response, encode_response_with};
