//! Errors: what a client is told (`ApiError`) and what went wrong with one
//! upstream attempt (`UpstreamError`, classified so the engine can decide
//! whether to move on).

use std::time::Duration;

/// The kind of a client-visible error. Each wire format has a name for it;
/// the status decides which typed exception the official SDKs raise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidRequest,
    Authentication,
    Billing,
    Permission,
    NotFound,
    RequestTooLarge,
    RateLimit,
    Api,
    Timeout,
    Overloaded,
}

impl ErrorKind {
    /// The HTTP status a client receives for this kind.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InvalidRequest => 400,
            ErrorKind::Authentication => 401,
            ErrorKind::Billing => 402,
            ErrorKind::Permission => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::RequestTooLarge => 413,
            ErrorKind::RateLimit => 429,
            ErrorKind::Api => 500,
            ErrorKind::Timeout => 504,
            ErrorKind::Overloaded => 503,
        }
    }
}

/// An error as the client will see it, before it is written in the client's
/// wire format.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    /// Overrides `kind.status()` when an upstream status is passed through.
    pub status: u16,
    pub message: String,
    /// The request field at fault, when there is one.
    pub param: Option<String>,
    /// A machine-readable code (OpenAI's `code`), when there is one.
    pub code: Option<String>,
    /// Seconds the client should wait before retrying, sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            status: kind.status(),
            message: message.into(),
            param: None,
            code: None,
            retry_after: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(ErrorKind::InvalidRequest, message)
    }

    /// A field the client sent is wrong; `param` names it.
    pub fn invalid_param(param: impl Into<String>, message: impl Into<String>) -> Self {
        let mut error = ApiError::invalid(message);
        error.param = Some(param.into());
        error
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
}

/// How an upstream attempt failed.
#[derive(Debug, Clone, PartialEq)]
pub enum UpstreamFailure {
    /// No connection could be made, or it broke before an answer began.
    Connect,
    /// The attempt ran out of time: a limit Bulwark set (first token,
    /// attempt, the route's deadline) expired.
    Timeout,
    /// The caller's own deadline, shorter than the route's, ran out during
    /// the attempt: that says nothing about the provider.
    CallerDeadline,
    /// The provider answered with an error status.
    Status {
        status: u16,
        /// The provider's own error type or code, e.g. `overloaded_error`.
        provider_code: Option<String>,
    },
    /// The provider's answer could not be understood.
    Decode,
    /// The stream broke or carried an error after it began.
    Stream {
        /// The provider's error type from an error event, e.g. `overloaded_error`.
        provider_code: Option<String>,
    },
    /// The answer grew past a cap Bulwark sets on what it reads from a
    /// provider (`max_response_bytes`, or one stream event's size): the
    /// attempt was cut so that an endless answer cannot exhaust memory.
    TooLarge,
    /// The request cannot be written in this target's format (a field it has
    /// no way to express). Another target may speak the client's format.
    Rejected(ApiError),
    /// The target is at its concurrency limit; no call was made.
    LimitReached,
}

/// One failed upstream attempt, classified.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{target}: {message}")]
pub struct UpstreamError {
    /// `provider/model` of the attempt.
    pub target: String,
    pub failure: UpstreamFailure,
    /// A description safe to show to clients (never contains credentials).
    pub message: String,
    /// The server's hint of when to try again.
    pub retry_after: Option<Duration>,
    /// The server's `x-should-retry` verdict, which overrides the table.
    pub should_retry: Option<bool>,
    /// The target was sent a translation of the client's request (its
    /// format differs from the client's): a 4xx then may be the target
    /// refusing the translation, not the client's mistake.
    pub translated: bool,
}

impl UpstreamError {
    pub fn new(target: &str, failure: UpstreamFailure, message: impl Into<String>) -> Self {
        UpstreamError {
            target: target.to_string(),
            failure,
            message: message.into(),
            retry_after: None,
            should_retry: None,
            translated: false,
        }
    }

    /// Low-cardinality label for logs and metrics, from the failure table.
    pub fn class(&self) -> &'static str {
        crate::resilience::classify::classify(self).class
    }

    /// The error the client sees when this was the last word, from the
    /// failure table.
    pub fn to_api_error(&self) -> ApiError {
        crate::resilience::classify::client_error(self)
    }
}
