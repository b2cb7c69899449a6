//! Unary operations: one JSON request, one JSON answer, with no stream and
//! no first token (embeddings, token counts). They run through the same
//! engine loop as chat (`engine::run_unary`): the route's targets in the
//! plan's order, breakers, the failure table, retries, slots, the deadline.
//!
//! What differs per provider kind is only the call: each
//! `UpstreamDialect::unary` builds the URL and body for an operation and
//! how to read its answer back into the client's shape, or says the kind
//! has no such endpoint, and the target is passed over.

pub mod count_tokens;
pub mod embeddings;

use serde_json::Value;

pub use count_tokens::CountTokensRequest;
pub use embeddings::{EmbeddingsRequest, Encoding};

/// A unary operation, as the client asked for it.
#[derive(Debug, Clone, PartialEq)]
pub enum Unary {
    Embeddings(EmbeddingsRequest),
    CountTokens(CountTokensRequest),
}

impl Unary {
    /// The route or `provider/model` the client named.
    pub fn model(&self) -> &str {
        match self {
            Unary::Embeddings(request) => &request.model,
            Unary::CountTokens(request) => &request.model,
        }
    }

    /// The operation's name, for errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Unary::Embeddings(_) => "embeddings",
            Unary::CountTokens(_) => "token counting",
        }
    }

    /// The client's headers a target of `format` is sent besides the body
    /// (Anthropic's `anthropic-beta`, for a count of a beta feature).
    pub fn forwarded_headers(
        &self,
        format: crate::api::WireFormat,
    ) -> &[(http::HeaderName, http::HeaderValue)] {
        match self {
            Unary::CountTokens(request) if format == crate::api::WireFormat::Anthropic => {
                &request.headers
            }
            _ => &[],
        }
    }
}

/// Turns a provider's answers, one per body in order, into the client's
/// shape.
pub type Decode = Box<dyn Fn(Vec<Value>) -> Result<Value, String> + Send + Sync>;

/// A unary operation as one provider takes it: built by its dialect.
pub struct UnaryCall {
    pub url: String,
    /// Sent in order, one request each: one, unless the API caps what one
    /// request may carry (Gemini's 100 embeddings a batch).
    pub bodies: Vec<Value>,
    pub decode: Decode,
}

impl UnaryCall {
    /// One body, whose one answer `check` passes on as it is.
    pub fn single(url: String, body: Value, check: fn(Value) -> Result<Value, String>) -> Self {
        UnaryCall {
            url,
            bodies: vec![body],
            decode: Box::new(move |answers: Vec<Value>| {
                let answer = answers.into_iter().next().ok_or("no answer")?;
                check(answer)
            }),
        }
    }
}

impl std::fmt::Debug for UnaryCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnaryCall")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The client's body with `model` replaced by the target's: what a target
/// of the client's own format is sent, every other field passed through.
pub(crate) fn with_model(body: &serde_json::Map<String, Value>, model: &str) -> Value {
    let mut body = body.clone();
    body.insert("model".into(), Value::String(model.to_string()));
    Value::Object(body)
}
