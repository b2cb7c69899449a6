//! The failure table: for every way an attempt can fail, whether to retry
//! the same target, fail over to the next, or give up. This is the one place
//! that decides; the README's failure table documents it.
//!
//! | Failure | Action | Breaker |
//! |---|---|---|
//! | `x-should-retry: true` | retry | as below |
//! | `x-should-retry: false` on a transient failure | fail over | as below |
//! | connection refused/reset, broken stream, garbled answer | retry | failure |
//! | attempt or first-token timeout | fail over | failure |
//! | 408, 409, 500, 502, 503, 504, 520-524, 529, HTML error page | retry | failure |
//! | error event inside a 200 stream (overloaded, api error) | retry | failure |
//! | 429 rate limit | retry (honouring hints) | not counted |
//! | OpenAI 429 `insufficient_quota`, Anthropic 402 `billing_error`, Gemini 429 per-day quota | fail over | failure |
//! | 401, 403, 404 (model unknown to the provider) | fail over; target marked misconfigured | failure |
//! | 400 `context_length_exceeded` | fail over to a larger context window only | not counted |
//! | a field the target's format cannot express | fail over | not counted |
//! | the target is at its concurrency limit (no call made) | fail over | not counted |
//! | other 4xx (400, 413, 422...) | fail fast | not counted |
//!
//! Timeouts fail over rather than retry: a target that just hung will most
//! likely hang again, and the time it took is gone from the deadline.

use crate::error::{UpstreamError, UpstreamFailure};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Try the same target again, after a backoff or the server's hint.
    Retry,
    /// Move on to the next target now.
    FailOver,
    /// Give the client this error: no target would answer differently.
    FailFast,
    /// Move on only to a target with a larger context window.
    FailOverToLargerContext,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub action: Action,
    /// Whether the failure counts against the target's health.
    pub breaker_failure: bool,
    /// The target's own configuration is wrong (its key was refused).
    pub misconfigured: bool,
}

impl Verdict {
    fn new(action: Action, breaker_failure: bool) -> Self {
        Verdict {
            action,
            breaker_failure,
            misconfigured: false,
        }
    }
}

pub fn classify(error: &UpstreamError) -> Verdict {
    let verdict = by_failure(error);
    match error.should_retry {
        // The server knows best, in both directions.
        Some(true) => Verdict {
            action: Action::Retry,
            ..verdict
        },
        Some(false) if verdict.action == Action::Retry => Verdict {
            action: Action::FailOver,
            ..verdict
        },
        _ => verdict,
    }
}

fn by_failure(error: &UpstreamError) -> Verdict {
    match &error.failure {
        UpstreamFailure::Connect | UpstreamFailure::Decode | UpstreamFailure::Stream { .. } => {
            Verdict::new(Action::Retry, true)
        }
        UpstreamFailure::Timeout => Verdict::new(Action::FailOver, true),
        UpstreamFailure::Rejected(_) | UpstreamFailure::LimitReached => {
            Verdict::new(Action::FailOver, false)
        }
        UpstreamFailure::Status {
            status,
            provider_code,
        } => {
            let code = provider_code.as_deref().unwrap_or_default();
            match status {
                429 if quota_exhausted(code) => Verdict::new(Action::FailOver, true),
                429 => Verdict::new(Action::Retry, false),
                402 => Verdict::new(Action::FailOver, true),
                // A refused key, or a model the provider does not have: this
                // target is misconfigured, and another may well work.
                401 | 403 | 404 => Verdict {
                    action: Action::FailOver,
                    breaker_failure: true,
                    misconfigured: true,
                },
                400 | 413 if context_exceeded(code, &error.message) => {
                    Verdict::new(Action::FailOverToLargerContext, false)
                }
                408 | 409 | 425 | 500..=599 => Verdict::new(Action::Retry, true),
                _ => Verdict::new(Action::FailFast, false),
            }
        }
    }
}

/// Quotas that will not refill in seconds: retrying only burns time.
fn quota_exhausted(code: &str) -> bool {
    code == "insufficient_quota" || code == "billing_error" || code.ends_with(":PerDay")
}

/// Each provider words "the prompt is too long" its own way.
fn context_exceeded(code: &str, message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    code == "context_length_exceeded"
        || message.contains("context_length_exceeded")
        || message.contains("prompt is too long")
        || message.contains("maximum context length")
        || message.contains("exceeds the maximum number of tokens")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, code: Option<&str>) -> UpstreamError {
        UpstreamError::new(
            "p/m",
            UpstreamFailure::Status {
                status,
                provider_code: code.map(str::to_string),
            },
            format!("HTTP {status}"),
        )
    }

    fn action(error: &UpstreamError) -> Action {
        classify(error).action
    }

    #[test]
    fn transient_statuses_are_retried() {
        for s in [408, 409, 429, 500, 502, 503, 504, 520, 522, 524, 529] {
            assert_eq!(action(&status(s, None)), Action::Retry, "{s}");
        }
        assert!(
            !classify(&status(429, None)).breaker_failure,
            "rate limits are not ill health"
        );
        assert!(classify(&status(529, Some("overloaded_error"))).breaker_failure);
    }

    #[test]
    fn client_errors_fail_fast_and_credentials_fail_over() {
        for s in [400, 413, 422] {
            assert_eq!(action(&status(s, None)), Action::FailFast, "{s}");
        }
        for s in [401, 403, 404] {
            let verdict = classify(&status(s, None));
            assert_eq!(verdict.action, Action::FailOver);
            assert!(verdict.misconfigured);
        }
    }

    #[test]
    fn exhausted_quotas_fail_over_without_retrying() {
        assert_eq!(
            action(&status(429, Some("insufficient_quota"))),
            Action::FailOver
        );
        assert_eq!(
            action(&status(402, Some("billing_error"))),
            Action::FailOver
        );
        assert_eq!(
            action(&status(429, Some("RESOURCE_EXHAUSTED:PerDay"))),
            Action::FailOver
        );
        assert_eq!(
            action(&status(429, Some("RESOURCE_EXHAUSTED"))),
            Action::Retry
        );
    }

    #[test]
    fn should_retry_overrides_both_ways() {
        let mut error = status(400, None);
        error.should_retry = Some(true);
        assert_eq!(action(&error), Action::Retry);
        let mut error = status(503, None);
        error.should_retry = Some(false);
        assert_eq!(action(&error), Action::FailOver);
    }

    #[test]
    fn context_overflow_only_moves_to_larger_windows() {
        assert_eq!(
            action(&status(400, Some("context_length_exceeded"))),
            Action::FailOverToLargerContext
        );
        let mut anthropic = status(400, Some("invalid_request_error"));
        anthropic.message =
            "HTTP 400 invalid_request_error: prompt is too long: 210000 tokens > 200000 maximum"
                .into();
        assert_eq!(action(&anthropic), Action::FailOverToLargerContext);
    }

    #[test]
    fn transport_failures() {
        let failure = |f| UpstreamError::new("p/m", f, "x");
        assert_eq!(action(&failure(UpstreamFailure::Connect)), Action::Retry);
        assert_eq!(action(&failure(UpstreamFailure::Timeout)), Action::FailOver);
        assert_eq!(
            action(&failure(UpstreamFailure::Stream {
                provider_code: None
            })),
            Action::Retry
        );
        assert!(classify(&failure(UpstreamFailure::Timeout)).breaker_failure);
    }
}
