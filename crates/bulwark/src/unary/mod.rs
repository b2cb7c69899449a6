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

/// Makes a call's request bodies on demand: a call's parts are built one at
/// a time as they are sent, never all at once, and never for a target that
/// is not attempted.
pub type Bodies<'a> = Box<dyn Fn(usize) -> Value + Send + Sync + 'a>;

/// A unary operation as one provider takes it: built by its dialect,
/// borrowing the client's request for its bodies.
pub struct UnaryCall<'a> {
    pub url: String,
    /// How many requests the call is sent as, in order: one, unless the API
    /// caps what one request may carry (Gemini's 100 embeddings a batch).
    pub parts: usize,
    bodies: Bodies<'a>,
    pub decode: Decode,
}

impl<'a> UnaryCall<'a> {
    /// A call of `parts` requests, the `n`th of which `bodies(n)` makes.
    pub fn new(url: String, parts: usize, bodies: Bodies<'a>, decode: Decode) -> Self {
        UnaryCall {
            url,
            parts,
            bodies,
            decode,
        }
    }

    /// One body, made when sent, whose one answer `check` passes on as it
    /// is.
    pub fn single(
        url: String,
        body: impl Fn() -> Value + Send + Sync + 'a,
        check: fn(Value) -> Result<Value, String>,
    ) -> Self {
        UnaryCall::new(
            url,
            1,
            Box::new(move |_| body()),
            Box::new(move |answers: Vec<Value>| {
                let answer = answers.into_iter().next().ok_or("no answer")?;
                check(answer)
            }),
        )
    }

    /// The body of part `part` (counted from 0, below `parts`).
    pub fn body(&self, part: usize) -> Value {
        (self.bodies)(part)
    }
}

impl std::fmt::Debug for UnaryCall<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnaryCall")
            .field("url", &self.url)
            .field("parts", &self.parts)
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;

    use super::*;

    #[test]
    fn a_call_makes_its_body_only_when_sent() {
        let made = AtomicUsize::new(0);
        let call = UnaryCall::single(
            "http://u".into(),
            || {
                made.fetch_add(1, Ordering::SeqCst);
                json!({"n": 1})
            },
            Ok,
        );
        assert_eq!(made.load(Ordering::SeqCst), 0);
        assert_eq!(call.body(0), json!({"n": 1}));
        assert_eq!(made.load(Ordering::SeqCst), 1);
    }
}
