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

    pub fn from_status(status: u16) -> Self {
        match status {
            400 | 409 | 422 => ErrorKind::InvalidRequest,
            401 => ErrorKind::Authentication,
            402 => ErrorKind::Billing,
            403 => ErrorKind::Permission,
            404 => ErrorKind::NotFound,
            413 => ErrorKind::RequestTooLarge,
            429 => ErrorKind::RateLimit,
            408 | 504 => ErrorKind::Timeout,
            503 | 529 => ErrorKind::Overloaded,
            _ => ErrorKind::Api,
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

/// What the engine should do after an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Another target may well succeed: move on.
    FailOver,
    /// The request itself is at fault; every target would refuse it.
    FailFast,
}

/// How an upstream attempt failed.
#[derive(Debug, Clone, PartialEq)]
pub enum UpstreamFailure {
    /// No connection could be made, or it broke before an answer began.
    Connect,
    /// The attempt ran out of time.
    Timeout,
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
}

impl UpstreamError {
    pub fn new(target: &str, failure: UpstreamFailure, message: impl Into<String>) -> Self {
        UpstreamError {
            target: target.to_string(),
            failure,
            message: message.into(),
            retry_after: None,
            should_retry: None,
        }
    }

    /// The foundation's failure table: connection errors, timeouts, 408, 409,
    /// 429, 5xx and 529 move the request to the next target; other statuses
    /// mean the request itself is at fault. The resilience engine refines this
    /// (retry in place, quota exhaustion, `x-should-retry`).
    pub fn disposition(&self) -> Disposition {
        match &self.failure {
            UpstreamFailure::Connect
            | UpstreamFailure::Timeout
            | UpstreamFailure::Decode
            | UpstreamFailure::Stream { .. }
            | UpstreamFailure::Rejected(_)
            | UpstreamFailure::LimitReached => Disposition::FailOver,
            UpstreamFailure::Status { status, .. } => match status {
                408 | 409 | 429 | 500..=599 => Disposition::FailOver,
                // Another provider's key may work where this one's does not.
                401 | 403 => Disposition::FailOver,
                _ => Disposition::FailFast,
            },
        }
    }

    /// Low-cardinality label for logs and metrics.
    pub fn class(&self) -> &'static str {
        match &self.failure {
            UpstreamFailure::Connect => "connect",
            UpstreamFailure::Timeout => "timeout",
            UpstreamFailure::Decode => "decode",
            UpstreamFailure::Stream { .. } => "stream",
            UpstreamFailure::Rejected(_) => "untranslatable",
            UpstreamFailure::LimitReached => "concurrency_limit",
            UpstreamFailure::Status { status, .. } => match status {
                429 => "rate_limited",
                529 | 503 => "overloaded",
                500..=599 => "server_error",
                401 | 403 => "auth",
                _ => "client_error",
            },
        }
    }

    /// The error the client sees when this was the last word.
    pub fn to_api_error(&self) -> ApiError {
        match &self.failure {
            UpstreamFailure::Rejected(error) => error.clone(),
            // Bulwark's own limits: the client should slow down, not retry now.
            UpstreamFailure::LimitReached => {
                let mut error = ApiError::new(ErrorKind::RateLimit, format!("{}: {}", self.target, self.message));
                error.retry_after = Some(self.retry_after.map_or(1, |d| d.as_secs().max(1)));
                error
            }
            // The client's credentials are fine; the gateway's are not.
            UpstreamFailure::Status {
                status: 401 | 403, ..
            } => ApiError::new(
                ErrorKind::Api,
                format!(
                    "{} rejected the gateway's credentials ({}); check the provider's api_key in the Bulwark config",
                    self.target, self.message
                ),
            )
            .with_status(502),
            // The model the config names does not exist there (any more).
            UpstreamFailure::Status { status: 404, .. } => ApiError::new(
                ErrorKind::Api,
                format!(
                    "{} answered 404 ({}); check that the model in this route's target exists at the provider",
                    self.target, self.message
                ),
            )
            .with_status(502),
            UpstreamFailure::Status {
                status,
                provider_code,
            } if (400..500).contains(status) => {
                let kind = ErrorKind::from_status(*status);
                let mut error = ApiError::new(kind, format!("{}: {}", self.target, self.message));
                error.status = *status;
                error.code.clone_from(provider_code);
                error.retry_after = self.retry_after.map(|d| d.as_secs().max(1));
                error
            }
            UpstreamFailure::Stream {
                provider_code: Some(code),
            } if code.contains("overloaded") => ApiError::new(
                ErrorKind::Overloaded,
                format!("{} is overloaded: {}", self.target, self.message),
            ),
            UpstreamFailure::Timeout => ApiError::new(
                ErrorKind::Timeout,
                format!("{} did not answer in time: {}", self.target, self.message),
            ),
            _ => ApiError::new(
                ErrorKind::Api,
                format!("{} failed: {}", self.target, self.message),
            )
            .with_status(502),
        }
    }
}
