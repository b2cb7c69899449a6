//! One row of the request log: a request as the client saw it, and every
//! upstream attempt made for it.

use serde::{Deserialize, Serialize};

use super::UnixMs;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Unique per request; attempts refer to it.
    pub id: String,
    /// When the request arrived.
    pub at: UnixMs,
    /// The route it resolved to (or the model asked for, if none matched).
    pub route: String,
    /// `openai` or `anthropic`: the front door it came in through.
    pub client_format: String,
    pub stream: bool,
    /// HTTP status the client got (200 for a stream that started, even if
    /// it broke later; `error_class` then says `stream`).
    pub status: u16,
    /// Low-cardinality class of the failure the client saw, if any.
    pub error_class: Option<String>,
    /// `provider/model` that answered, or `static` / `cache`.
    pub target: Option<String>,
    /// Answered by a target other than the route's first.
    pub fallback: bool,
    /// `hit`, `miss` or `stale`, when the route caches.
    pub cache: Option<String>,
    /// How the answer was degraded: `stale-cache`, a target, or `static`.
    pub degraded: Option<String>,
    /// From arrival to the last byte sent.
    pub latency_ms: f64,
    /// From arrival to the first content byte sent, for streams and
    /// complete answers alike.
    pub first_token_ms: Option<f64>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// The client key's name, never the key.
    pub key_id: Option<String>,
    /// Set only when `log_bodies: true`.
    pub request_body: Option<String>,
    pub attempts: Vec<AttemptRecord>,
}

/// One call to one upstream target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// `provider/model`.
    pub target: String,
    /// When the attempt started.
    pub at: UnixMs,
    /// Until the answer's first content, or until it failed.
    pub latency_ms: f64,
    pub first_token_ms: Option<f64>,
    /// The provider's HTTP status, when it sent one.
    pub status: Option<u16>,
    /// `None` when the attempt answered; else the failure class
    /// (`overloaded`, `timeout`, `rate_limited`, ...).
    pub error_class: Option<String>,
    /// Started as a hedge beside a slow attempt.
    pub hedge: bool,
}

impl RequestRecord {
    /// Whether this request counts as good for SLOs and impact: the client
    /// got a real answer, whether from a fallback or the cache. A static
    /// degraded answer is an apology, not an answer, and a stream that
    /// broke after it started is a failure too.
    pub fn is_good(&self) -> bool {
        self.status < 400
            && self.error_class.is_none()
            && self.degraded.as_deref() != Some("static")
    }

    /// The client got an error status because of what it sent (bad input,
    /// unknown model, its own quota, a deadline shorter than the route's):
    /// not a failure of the service.
    pub fn is_client_error(&self) -> bool {
        matches!(self.status, 400..=428 | 430..=499)
            || (self.status == 429
                && self.attempts.is_empty()
                && self.error_class.as_deref() == Some("client_quota"))
            || self.error_class.as_deref() == Some("deadline")
    }

    /// An outcome label for metrics: `ok`, `fallback`, `cache`, `stale`,
    /// `degraded`, `client_error` or `error`.
    pub fn outcome(&self) -> &'static str {
        if self.is_client_error() {
            "client_error"
        } else if !self.is_good() {
            "error"
        } else if self.degraded.as_deref() == Some("stale-cache")
            || self.cache.as_deref() == Some("stale")
        {
            "stale"
        } else if self.degraded.is_some() {
            "degraded"
        } else if self.cache.as_deref() == Some("hit") {
            "cache"
        } else if self.fallback {
            "fallback"
        } else {
            "ok"
        }
    }
}
