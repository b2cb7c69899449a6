//! Clouds that serve a provider's API at their own URLs with their own
//! auth: Azure OpenAI, Claude on Amazon Bedrock, Claude and Gemini on
//! Google Vertex AI. A cloud is a host around a wire dialect: the dialect
//! (OpenAI's, Anthropic's, Gemini's) still writes the body and reads the
//! answers, so a request falling back from Anthropic's API to Claude on
//! Bedrock is neither translated nor changed; the cloud decides the URL,
//! what its body differs in, how a request is authenticated, how a stream
//! is framed, and where its error codes are.
//!
//! `provider.rs` asks the cloud at each of those points and nowhere else.

pub(crate) mod answer;
pub(crate) mod azure;
pub(crate) mod bedrock;
pub(crate) mod entra;
pub(crate) mod eventstream;
pub(crate) mod google;
pub(crate) mod token;
pub(crate) mod vertex;

use std::fmt::Debug;

use futures_util::future::BoxFuture;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::config::{CloudConfig, ProviderConfig};
use crate::error::ApiError;
use crate::sse::{SseDecoder, SseEvent};
use crate::wire::{StreamFault, UpstreamDialect};

/// What a cloud decides about a call; see the module's comment.
pub(crate) trait CloudApi: Send + Sync + Debug {
    /// The API `model` is served in on this cloud.
    fn dialect(&self, model: &str) -> &'static dyn UpstreamDialect;

    /// Where a call for `model` in `dialect` goes; `stream`: whether a
    /// stream is asked for (some clouds choose it by URL, not body).
    fn url(
        &self,
        dialect: &'static dyn UpstreamDialect,
        model: &str,
        stream: bool,
    ) -> Result<String, ApiError>;

    /// Adapts the dialect's body, written for the API's own servers, to
    /// the cloud; returns which of the client's `forwarded` headers (a
    /// same-format client's `anthropic-beta`...) still go out as headers.
    fn adapt(
        &self,
        dialect: &'static dyn UpstreamDialect,
        body: &mut Value,
        forwarded: &[(HeaderName, HeaderValue)],
    ) -> Vec<(HeaderName, HeaderValue)>;

    /// Authenticates a request ready to leave (URL, headers and body
    /// final): signs it, or adds a key or a bearer token.
    fn authorize<'a>(
        &'a self,
        request: &'a mut reqwest::Request,
    ) -> BoxFuture<'a, Result<(), CloudAuthError>>;

    /// How streamed answers are framed.
    fn framing(&self) -> Framing {
        Framing::Sse
    }

    /// The cloud's error code for a failed answer, where the dialect's
    /// reading of the body does not find it (Bedrock's `x-amzn-errortype`).
    fn error_code(&self, _headers: &HeaderMap, _body: Option<&Value>) -> Option<String> {
        None
    }

    /// The cloud answered 401 to a request `authorize` authenticated: a
    /// cached token it no longer takes (revoked, or its credentials
    /// rotated) is dropped, so the next request fetches a new one instead
    /// of failing until the token's renewal is due.
    fn credentials_rejected(&self) {}

    /// The OpenTelemetry GenAI `gen_ai.provider.name` of the cloud.
    fn semconv_name(&self) -> &'static str;

    /// A unary operation (embeddings) on `model` at this cloud, as
    /// `UpstreamDialect::unary`; `None` (the default) where the cloud's
    /// endpoint for it is not served: the target is passed over.
    fn unary<'a>(
        &self,
        _operation: &'a crate::unary::Unary,
        _model: &str,
    ) -> Option<Result<crate::unary::UnaryCall<'a>, ApiError>> {
        None
    }
}

/// How a streamed answer's bytes are cut into events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Server-sent events, as the providers' own APIs.
    Sse,
    /// AWS's binary event stream (`application/vnd.amazon.eventstream`).
    AwsEventStream,
}

impl Framing {
    pub(crate) fn decoder(self) -> Box<dyn FrameDecoder> {
        match self {
            Framing::Sse => Box::new(SseDecoder::new()),
            Framing::AwsEventStream => Box::new(eventstream::EventStreamDecoder::new()),
        }
    }
}

/// Turns an answer's bytes into events, whatever their framing.
pub(crate) trait FrameDecoder: Send {
    /// Feeds bytes; the events they complete go to `out`. The events
    /// completed before an error are in `out` too.
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), FrameError>;
}

/// Why a framed stream cannot be read further.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FrameError {
    /// One event is past the cap on an event's size.
    TooLarge(String),
    /// The frames are broken, or the stream carries an error.
    Fault(StreamFault),
}

impl FrameDecoder for SseDecoder {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), FrameError> {
        self.try_feed(bytes, out)
            .map_err(|too_large| FrameError::TooLarge(too_large.to_string()))
    }
}

/// Why a cloud's credentials could not authenticate a request. Messages
/// never hold a secret (a key, a token, a signature, an assertion).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudAuthError {
    /// The credentials are refused or unusable (the token endpoint's 400
    /// or 401, a key that cannot sign): a misconfiguration, classified as
    /// an upstream 401 (fail over, target marked misconfigured).
    #[error("{0}")]
    Refused(String),
    /// The token endpoint could not be reached or failed: transient,
    /// classified as a connection failure.
    #[error("{0}")]
    Unavailable(String),
}

/// The cloud of a provider of a cloud kind; `None` for the others.
pub(crate) fn build(config: &ProviderConfig, http: &reqwest::Client) -> Option<Box<dyn CloudApi>> {
    let api_key = config.api_key.clone();
    let base_url = config.base_url.clone();
    Some(match config.cloud.as_ref()? {
        CloudConfig::Azure(azure) => Box::new(azure::Azure::new(azure, base_url, api_key, http)),
        CloudConfig::Bedrock(bedrock) => {
            Box::new(bedrock::Bedrock::new(bedrock, base_url, api_key))
        }
        CloudConfig::Vertex(vertex) => Box::new(vertex::Vertex::new(vertex, base_url, http)),
    })
}

/// A model name as one URL path segment: what is not unreserved is
/// percent-encoded, so a name cannot reach another path or the query.
pub(crate) fn path_segment(model: &str) -> Result<String, ApiError> {
    // `.` and `..` would be resolved away by URL parsing.
    if model.is_empty() || model.len() > 512 || model == "." || model == ".." {
        return Err(ApiError::invalid(
            "the model name is empty or too long for a URL",
        ));
    }
    let mut out = String::with_capacity(model.len());
    for byte in model.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    Ok(out)
}

/// Sets a header on a request about to leave, marked sensitive so that it
/// stays out of logs and HTTP/2 header tables.
pub(crate) fn set_secret_header(
    request: &mut reqwest::Request,
    name: HeaderName,
    value: &str,
) -> Result<(), CloudAuthError> {
    let mut value = HeaderValue::from_str(value).map_err(|_| {
        CloudAuthError::Refused(format!(
            "the credential for `{name}` cannot be sent in an HTTP header"
        ))
    })?;
    value.set_sensitive(true);
    request.headers_mut().insert(name, value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_name_stays_one_path_segment() -> Result<(), ApiError> {
        assert_eq!(
            path_segment("anthropic.claude-sonnet-4-5-20250929-v1:0")?,
            "anthropic.claude-sonnet-4-5-20250929-v1%3A0"
        );
        assert_eq!(
            path_segment("claude-sonnet-4-5@20250929")?,
            "claude-sonnet-4-5@20250929"
        );
        assert_eq!(path_segment("../x?y#z")?, "..%2Fx%3Fy%23z");
        assert!(path_segment("").is_err());
        assert!(path_segment("..").is_err());
        Ok(())
    }
}
