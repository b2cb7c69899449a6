//! The failure table: everything a failed attempt means, decided in one
//! place. For each way an attempt can fail it says whether to retry the same
//! target, fail over to the next, or give up; whether it counts against the
//! target's breaker; how it moves the target's concurrency limit; its class
//! for logs and metrics; and what the client is told if it is the last word.
//! The README's failure table documents it.
//!
//! | Failure | Action | Breaker | Concurrency | Class | Client sees |
//! |---|---|---|---|---|---|
//! | `x-should-retry: true` | retry | as below | as below | as below | as below |
//! | `x-should-retry: false` on a transient failure | fail over | as below | as below | as below | as below |
//! | connection refused/reset | retry | failure | - | `connect` | 502 |
//! | broken stream, error event inside a 200 stream | retry | failure | overload if the provider says overloaded | `stream` | 503 if overloaded, else 502 |
//! | garbled answer | retry | failure | - | `decode` | 502 |
//! | answer over `max_response_bytes`, or one stream event over 8 MiB | fail over | failure | - | `too_large` | 502 |
//! | attempt or first-token timeout, the route's deadline | fail over | failure | overload | `timeout` | 504 |
//! | the caller's own (shorter) deadline | fail over | not counted | - | `deadline` | 504 |
//! | 408, 409, 425, 500, 502, 504, 520-524, HTML error page | retry | failure | - | `server_error` (`client_error` below 500) | 502 (408/409: their own status) |
//! | 503, 529 | retry | failure | overload | `overloaded` | 502 |
//! | 3xx (redirects are never followed: they would carry the key elsewhere) | fail over | failure | - | `redirect` | 502 |
//! | 429 rate limit (Bedrock's `ThrottlingException` too) | retry (honouring hints) | not counted | overload | `rate_limited` | 429 |
//! | Bedrock 429 `ModelNotReadyException` (the model is loading) | retry | failure | - | `overloaded` | 502 |
//! | OpenAI 429 `insufficient_quota`, Anthropic 402 `billing_error`, Gemini 429 per-day quota | fail over | failure | overload (429) | `rate_limited` / `client_error` | 429 / 402 |
//! | 401, 403 (Bedrock's `InvalidSignatureException`, `UnrecognizedClientException`, `AccessDeniedException`) | fail over; target marked misconfigured | failure | - | `auth` | 502: the gateway's key, not the client's |
//! | 404 (model unknown to the provider) | fail over; target marked misconfigured | failure | - | `client_error` | 502: the route's model |
//! | 400 `context_length_exceeded` | fail over to a larger context window only | not counted | - | `client_error` | 400 |
//! | 400 `content_filter` (Azure's content filter refused the prompt), translated or not; the same code in a stream's error event | fail fast | not counted | - | `content_filter` | 400 `content_filter`, saying the prompt was filtered |
//! | a field the target's encoder cannot express (a temperature over 1 for Anthropic, a URL image for Gemini) | fail over | not counted | - | `untranslatable` | 400, naming the field, unless another target failed upstream |
//! | the target is at its concurrency or rate limit (no call made) | fail over | not counted | - | `concurrency_limit` | 429 |
//! | 400, 413, 422 from a target sent a translation (its format is not the client's), or from a cloud's target (`azure-openai`, `bedrock`, `vertex`: a beta or parameter the cloud does not take, a model id it does not serve in the region) | fail over | not counted | - | `translation_refused` | the same status, only if no target failed upstream or is resting (else 503) |
//! | Bedrock 424 `ModelErrorException` (the model failed) | retry | failure | - | `server_error` | 502 |
//! | other 4xx (400, 413, 422...) | fail fast | not counted | - | `client_error` | the same status |
//!
//! When every target failed, a 502 becomes 503 with a `Retry-After`: the
//! service is unavailable for now ([`every_target_failed`]).
//!
//! A translated request carries what the client asked in another format's
//! terms, with values the client chose for its own provider (Claude Code's
//! `max_tokens: 32000` is over gpt-4o-mini's cap), so the target's 4xx
//! says the translation does not fit there, not that the request is wrong:
//! another target (the client's own format) may take it. It is no outage
//! either, so it ranks below every real upstream failure when the engine
//! words the final error: the client gets the provider's 4xx only when
//! every target refused its request so.
//!
//! A target that cannot take the request at all (`wire::translate`: a field
//! whose fate is to refuse, or any left-out field on a strict route) never
//! reaches this table: the engine skips it before any call, with no breaker,
//! quota or retry effect. Its refusal is the client's answer (a 400 naming
//! fields, reasons and targets) only when no target was tried or resting;
//! otherwise the client hears the other targets' failure, as above. The status each
//! SDK needs for its own exception class (Anthropic's 529) is set at the
//! HTTP edge, by the client's dialect.
//!
//! A prompt refused by a content filter (Azure OpenAI's `content_filter`)
//! is the client's problem, not the provider's, and not the
//! translation's either, even when the request was translated: the filter
//! judged what the client wrote, which every translation keeps. It fails
//! fast rather than over: an operator who routes through Azure chose its
//! content policy, and passing a filtered prompt on to a target with a
//! laxer one would launder it. (An answer the filter cuts short is no
//! failure: it ends with `finish_reason: content_filter`, which each
//! client format names its own way, `refusal` for Anthropic's, `SAFETY`
//! for Gemini's.)
//!
//! Timeouts fail over rather than retry: a target that just hung will most
//! likely hang again, and the time it took is gone from the deadline.
//!
//! An answer cut at a size cap fails over for the same reason: no real
//! answer comes near the caps, so the target is sending garbage without end
//! (a proxy's loop, a model stuck repeating itself past any token limit),
//! and asking it again would only spend the deadline reading as much again.
//! It is the provider's fault, so the breaker counts it; it says nothing
//! about load, so the concurrency limit stays.

use crate::error::{ApiError, ErrorKind, UpstreamError, UpstreamFailure};
use crate::resilience::breaker::CallOutcome;
use crate::resilience::concurrency::Signal;

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
    /// How the failure moves the target's concurrency limit: overload and
    /// slowness shrink it, the client's own mistakes do not.
    pub concurrency: Signal,
    /// Low-cardinality label for logs and metrics.
    pub class: &'static str,
}

impl Verdict {
    /// What the target's breaker is told about this attempt.
    pub fn breaker_outcome(&self) -> CallOutcome {
        if self.breaker_failure {
            CallOutcome::Failure
        } else {
            CallOutcome::Ignored
        }
    }
}

/// The class of a 4xx answering a translated request.
pub const TRANSLATION_REFUSED: &str = "translation_refused";

/// The class of a prompt a content filter refused.
pub const CONTENT_FILTER: &str = "content_filter";

/// Whether this failure is a target refusing the translation it was sent,
/// which says nothing of the provider's health or the client's request.
pub fn is_translation_refused(error: &UpstreamError) -> bool {
    by_failure(error).class == TRANSLATION_REFUSED
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
    let verdict = |action, breaker_failure, concurrency, class| Verdict {
        action,
        breaker_failure,
        misconfigured: false,
        concurrency,
        class,
    };
    match &error.failure {
        UpstreamFailure::Connect => verdict(Action::Retry, true, Signal::Ignore, "connect"),
        UpstreamFailure::Decode => verdict(Action::Retry, true, Signal::Ignore, "decode"),
        // An error event inside a 200 stream names in its code what a
        // status would have said, and is judged the same way.
        UpstreamFailure::Stream { provider_code } => {
            let code = provider_code.as_deref().unwrap_or_default();
            if quota_exhausted(code) {
                verdict(Action::FailOver, true, Signal::Ignore, "stream")
            } else if is_rate_limited_code(code) {
                verdict(Action::Retry, false, Signal::Overload, "rate_limited")
            } else if context_exceeded(code, &error.message) {
                verdict(
                    Action::FailOverToLargerContext,
                    false,
                    Signal::Ignore,
                    "stream",
                )
            } else if is_content_filtered(code) {
                verdict(Action::FailFast, false, Signal::Ignore, CONTENT_FILTER)
            } else if is_request_refused_code(code) {
                // The request (a client's prompt, or a translation), not
                // the provider's health: another target may take it.
                verdict(Action::FailOver, false, Signal::Ignore, "stream")
            } else if is_overloaded_code(code) {
                verdict(Action::Retry, true, Signal::Overload, "stream")
            } else {
                verdict(Action::Retry, true, Signal::Ignore, "stream")
            }
        }
        UpstreamFailure::Timeout => verdict(Action::FailOver, true, Signal::Overload, "timeout"),
        UpstreamFailure::TooLarge => verdict(Action::FailOver, true, Signal::Ignore, "too_large"),
        // The caller gave up; the provider may have been about to answer.
        UpstreamFailure::CallerDeadline => {
            verdict(Action::FailOver, false, Signal::Ignore, "deadline")
        }
        UpstreamFailure::Rejected(_) => {
            verdict(Action::FailOver, false, Signal::Ignore, "untranslatable")
        }
        UpstreamFailure::LimitReached => {
            verdict(Action::FailOver, false, Signal::Ignore, "concurrency_limit")
        }
        UpstreamFailure::Status {
            status,
            provider_code,
        } => {
            let code = provider_code.as_deref().unwrap_or_default();
            let class = status_class(*status);
            let concurrency = match status {
                429 | 503 | 529 => Signal::Overload,
                _ => Signal::Ignore,
            };
            let verdict =
                |action, breaker_failure| verdict(action, breaker_failure, concurrency, class);
            match status {
                429 if quota_exhausted(code) => verdict(Action::FailOver, true),
                // Not a quota: the model is not serving yet, and soon will.
                429 if model_not_ready(code) => Verdict {
                    class: "overloaded",
                    concurrency: Signal::Ignore,
                    ..verdict(Action::Retry, true)
                },
                429 => verdict(Action::Retry, false),
                402 => verdict(Action::FailOver, true),
                // A refused key, or a model the provider does not have: this
                // target is misconfigured, and another may well work.
                401 | 403 | 404 => Verdict {
                    misconfigured: true,
                    ..verdict(Action::FailOver, true)
                },
                400 if is_content_filtered(code) => Verdict {
                    class: CONTENT_FILTER,
                    ..verdict(Action::FailFast, false)
                },
                400 | 413 if context_exceeded(code, &error.message) => {
                    verdict(Action::FailOverToLargerContext, false)
                }
                400 | 413 | 422 if error.translated => Verdict {
                    class: TRANSLATION_REFUSED,
                    ..verdict(Action::FailOver, false)
                },
                // 424: Bedrock's `ModelErrorException`, the model itself failed.
                408 | 409 | 424 | 425 | 500..=599 => verdict(Action::Retry, true),
                // A misconfigured or hijacked base_url: asking again gets
                // the same redirect, another target may be fine.
                300..=399 => verdict(Action::FailOver, true),
                _ => verdict(Action::FailFast, false),
            }
        }
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        429 => "rate_limited",
        529 | 503 => "overloaded",
        500..=599 | 424 => "server_error",
        300..=399 => "redirect",
        401 | 403 => "auth",
        _ => "client_error",
    }
}

/// Providers name an overload in their error events `overloaded_error`
/// (Anthropic) or similar.
fn is_overloaded_code(code: &str) -> bool {
    code.contains("overloaded") || code.eq_ignore_ascii_case("serviceUnavailableException")
}

/// A rate limit named in a stream's error event (OpenAI's
/// `rate_limit_exceeded`, Anthropic's `rate_limit_error`, Bedrock's
/// `throttlingException`).
fn is_rate_limited_code(code: &str) -> bool {
    code.starts_with("rate_limit") || code.eq_ignore_ascii_case("throttlingException")
}

/// Bedrock's 429 for a model that is still loading: transient, not a quota.
fn model_not_ready(code: &str) -> bool {
    code.eq_ignore_ascii_case("ModelNotReadyException")
}

/// A request the provider refused in a stream's error event: its content
/// (`invalid_prompt`) or shape (`invalid_request_error`, Bedrock's
/// `validationException`).
fn is_request_refused_code(code: &str) -> bool {
    code.starts_with("invalid_") || code.eq_ignore_ascii_case("validationException")
}

/// Azure OpenAI's code for a prompt its content filter refused.
fn is_content_filtered(code: &str) -> bool {
    code == "content_filter"
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
        || message.contains("input is too long for requested model")
}

/// The error the client sees when this failure was the last word.
pub fn client_error(error: &UpstreamError) -> ApiError {
    let target = &error.target;
    let message = &error.message;
    match &error.failure {
        UpstreamFailure::Rejected(refusal) => refusal.clone(),
        // Bulwark's own limits: the client should slow down, not retry now.
        UpstreamFailure::LimitReached => {
            let mut api = ApiError::new(ErrorKind::RateLimit, format!("{target}: {message}"));
            api.retry_after = Some(error.retry_after.map_or(1, |d| d.as_secs().max(1)));
            api
        }
        // The client's credentials are fine; the gateway's are not.
        UpstreamFailure::Status {
            status: 401 | 403, ..
        } => ApiError::new(
            ErrorKind::Api,
            format!(
                "{target} rejected the gateway's credentials ({message}); check the provider's api_key (or a cloud's aws, entra or credentials_file) in the Bulwark config"
            ),
        )
        .with_status(502),
        // The model the config names does not exist there (any more).
        UpstreamFailure::Status { status: 404, .. } => ApiError::new(
            ErrorKind::Api,
            format!(
                "{target} answered 404 ({message}); check that the model in this route's target exists at the provider"
            ),
        )
        .with_status(502),
        UpstreamFailure::Status {
            status: 400,
            provider_code: Some(code),
        }
        | UpstreamFailure::Stream {
            provider_code: Some(code),
        } if is_content_filtered(code) => {
            let mut api = ApiError::invalid(format!(
                "the prompt was filtered: {target}'s content filter refused it ({message})"
            ));
            api.code = Some(code.clone());
            api
        }
        UpstreamFailure::Status {
            status,
            provider_code,
        } if (400..500).contains(status)
            && *status != 424
            && !provider_code.as_deref().is_some_and(model_not_ready) =>
        {
            let mut api = ApiError::new(passed_through_kind(*status), format!("{target}: {message}"));
            api.status = *status;
            api.code.clone_from(provider_code);
            api.retry_after = error.retry_after.map(|d| d.as_secs().max(1));
            api
        }
        // Never the 3xx itself: a client would follow it.
        UpstreamFailure::Status { status, .. } if (300..400).contains(status) => ApiError::new(
            ErrorKind::Api,
            format!("{target} failed: {message}"),
        )
        .with_status(502),
        UpstreamFailure::Stream {
            provider_code: Some(code),
        } if is_overloaded_code(code) => ApiError::new(
            ErrorKind::Overloaded,
            format!("{target} is overloaded: {message}"),
        ),
        UpstreamFailure::Timeout => ApiError::new(
            ErrorKind::Timeout,
            format!("{target} did not answer in time: {message}"),
        ),
        UpstreamFailure::CallerDeadline => ApiError::new(
            ErrorKind::Timeout,
            format!("{target} had not answered when the request's deadline passed: {message}"),
        )
        .with_code("deadline_exceeded"),
        _ => ApiError::new(ErrorKind::Api, format!("{target} failed: {message}")).with_status(502),
    }
}

/// The providers failed, not the request: to the client the service is
/// unavailable for now (503, with a hint of when to come back), unless the
/// failures were rate limits (429) or timeouts (504), which say more.
pub fn every_target_failed(mut error: ApiError) -> ApiError {
    if error.status == 502 {
        error.kind = ErrorKind::Overloaded;
        error.status = 503;
        error.retry_after = error.retry_after.or(Some(1));
    }
    error
}

/// The kind of a provider's 4xx that reaches the client with its status.
fn passed_through_kind(status: u16) -> ErrorKind {
    match status {
        401 => ErrorKind::Authentication,
        402 => ErrorKind::Billing,
        403 => ErrorKind::Permission,
        404 => ErrorKind::NotFound,
        408 => ErrorKind::Timeout,
        413 => ErrorKind::RequestTooLarge,
        429 => ErrorKind::RateLimit,
        400 | 409 | 422 => ErrorKind::InvalidRequest,
        _ => ErrorKind::Api,
    }
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
    fn a_4xx_to_a_translated_request_fails_over_without_counting() {
        for s in [400, 413, 422] {
            let mut error = status(s, Some("invalid_request_error"));
            error.translated = true;
            let verdict = classify(&error);
            assert_eq!(verdict.action, Action::FailOver, "{s}");
            assert!(!verdict.breaker_failure, "{s}");
            assert_eq!(verdict.concurrency, Signal::Ignore, "{s}");
            assert_eq!(verdict.class, "translation_refused", "{s}");
            assert!(is_translation_refused(&error));
            // Alone, it is the provider's word on the client's request.
            assert_eq!(client_error(&error).status, s);
        }
        // A prompt too long is still about window sizes.
        let mut error = status(400, Some("context_length_exceeded"));
        error.translated = true;
        assert_eq!(action(&error), Action::FailOverToLargerContext);
        assert!(!is_translation_refused(&error));
        // Other statuses mean the same translated or not.
        for s in [401, 404, 429, 500, 529] {
            let mut error = status(s, None);
            error.translated = true;
            assert_eq!(classify(&error), classify(&status(s, None)), "{s}");
        }
    }

    /// A filtered prompt is the client's, translated or not: no retry, no
    /// fail-over to a laxer target, no breaker, and the client is told.
    #[test]
    fn a_content_filter_refusal_fails_fast_as_the_clients_problem() {
        for translated in [false, true] {
            let mut error = status(400, Some("content_filter"));
            error.translated = translated;
            error.message = "HTTP 400 content_filter: The response was filtered".into();
            let verdict = classify(&error);
            assert_eq!(verdict.action, Action::FailFast, "{translated}");
            assert!(!verdict.breaker_failure);
            assert!(!verdict.misconfigured);
            assert_eq!(verdict.concurrency, Signal::Ignore);
            assert_eq!(verdict.class, CONTENT_FILTER);
            assert!(!is_translation_refused(&error));
            let told = client_error(&error);
            assert_eq!((told.status, told.kind), (400, ErrorKind::InvalidRequest));
            assert_eq!(told.code.as_deref(), Some("content_filter"));
            assert!(
                told.message.contains("the prompt was filtered"),
                "{}",
                told.message
            );
        }
        let stream = UpstreamError::new(
            "p/m",
            UpstreamFailure::Stream {
                provider_code: Some("content_filter".into()),
            },
            "x",
        );
        assert_eq!(classify(&stream).action, Action::FailFast);
        assert!(!classify(&stream).breaker_failure);
        assert_eq!(client_error(&stream).status, 400);
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

    /// A client's bad prompt reported in a stream must not open the
    /// breaker every tenant shares, nor a rate limit count as ill health.
    #[test]
    fn stream_error_codes_are_judged_as_their_statuses_are() {
        let stream = |code: &str| {
            classify(&UpstreamError::new(
                "p/m",
                UpstreamFailure::Stream {
                    provider_code: Some(code.to_string()),
                },
                "x",
            ))
        };
        let rate = stream("rate_limit_exceeded");
        assert_eq!(rate.action, Action::Retry);
        assert!(!rate.breaker_failure);
        assert_eq!(rate.concurrency, Signal::Overload);
        assert_eq!(stream("insufficient_quota").action, Action::FailOver);
        assert_eq!(
            stream("context_length_exceeded").action,
            Action::FailOverToLargerContext
        );
        for code in ["invalid_prompt", "invalid_request_error"] {
            let verdict = stream(code);
            assert_eq!(verdict.action, Action::FailOver, "{code}");
            assert!(!verdict.breaker_failure, "{code}");
        }
        let server = stream("server_error");
        assert_eq!(server.action, Action::Retry);
        assert!(server.breaker_failure);
    }

    /// Bedrock names its failures in `x-amzn-ErrorType` (statuses) and in
    /// exception frames (streams); both are judged as their meaning says.
    #[test]
    fn bedrock_failures() {
        let throttled = classify(&status(429, Some("ThrottlingException")));
        assert_eq!(throttled.action, Action::Retry);
        assert!(!throttled.breaker_failure);
        assert_eq!(throttled.class, "rate_limited");
        let unavailable = classify(&status(503, Some("ServiceUnavailableException")));
        assert_eq!(unavailable.action, Action::Retry);
        assert_eq!(unavailable.class, "overloaded");
        let not_ready = status(429, Some("ModelNotReadyException"));
        let verdict = classify(&not_ready);
        assert_eq!(verdict.action, Action::Retry);
        assert!(verdict.breaker_failure);
        assert_eq!(verdict.class, "overloaded");
        assert_eq!(verdict.concurrency, Signal::Ignore);
        assert_eq!(client_error(&not_ready).status, 502);
        for code in [
            "InvalidSignatureException",
            "UnrecognizedClientException",
            "AccessDeniedException",
        ] {
            let verdict = classify(&status(403, Some(code)));
            assert_eq!(verdict.action, Action::FailOver, "{code}");
            assert!(verdict.misconfigured, "{code}");
            assert_eq!(verdict.class, "auth", "{code}");
        }
        let too_long = UpstreamError::new(
            "p/m",
            UpstreamFailure::Status {
                status: 400,
                provider_code: Some("ValidationException".into()),
            },
            "Input is too long for requested model.",
        );
        assert_eq!(action(&too_long), Action::FailOverToLargerContext);
        assert_eq!(
            action(&status(400, Some("ValidationException"))),
            Action::FailFast
        );

        let stream = |code: &str| {
            classify(&UpstreamError::new(
                "p/m",
                UpstreamFailure::Stream {
                    provider_code: Some(code.to_string()),
                },
                "x",
            ))
        };
        let throttled = stream("throttlingException");
        assert_eq!(
            (throttled.action, throttled.class),
            (Action::Retry, "rate_limited")
        );
        assert!(!throttled.breaker_failure);
        let unavailable = stream("serviceUnavailableException");
        assert_eq!(unavailable.action, Action::Retry);
        assert_eq!(unavailable.concurrency, Signal::Overload);
        let refused = stream("validationException");
        assert_eq!(refused.action, Action::FailOver);
        assert!(!refused.breaker_failure);
        for code in ["internalServerException", "modelStreamErrorException"] {
            let verdict = stream(code);
            assert_eq!(verdict.action, Action::Retry, "{code}");
            assert!(verdict.breaker_failure, "{code}");
        }
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

    #[test]
    fn an_answer_over_a_size_cap_fails_over_as_a_provider_fault() {
        let error = UpstreamError::new("p/m", UpstreamFailure::TooLarge, "too big");
        let verdict = classify(&error);
        assert_eq!(verdict.action, Action::FailOver);
        assert!(verdict.breaker_failure);
        assert_eq!(verdict.concurrency, Signal::Ignore);
        assert_eq!(verdict.class, "too_large");
        let told = every_target_failed(client_error(&error));
        assert_eq!(told.status, 503);
        assert!(told.message.contains("too big"), "{}", told.message);
    }

    #[test]
    fn the_callers_own_deadline_says_nothing_about_the_provider() {
        let verdict = classify(&UpstreamError::new(
            "p/m",
            UpstreamFailure::CallerDeadline,
            "x",
        ));
        assert!(!verdict.breaker_failure);
        assert_eq!(verdict.concurrency, Signal::Ignore);
        assert_eq!(verdict.class, "deadline");
        let told = client_error(&UpstreamError::new(
            "p/m",
            UpstreamFailure::CallerDeadline,
            "x",
        ));
        assert_eq!(told.status, 504);
    }

    #[test]
    fn overload_and_slowness_shrink_concurrency_and_client_mistakes_do_not() {
        for s in [429, 503, 529] {
            assert_eq!(
                classify(&status(s, None)).concurrency,
                Signal::Overload,
                "{s}"
            );
        }
        for s in [400, 401, 404, 500, 502] {
            assert_eq!(
                classify(&status(s, None)).concurrency,
                Signal::Ignore,
                "{s}"
            );
        }
        let failure = |f| classify(&UpstreamError::new("p/m", f, "x")).concurrency;
        assert_eq!(failure(UpstreamFailure::Timeout), Signal::Overload);
        assert_eq!(
            failure(UpstreamFailure::Stream {
                provider_code: Some("overloaded_error".into())
            }),
            Signal::Overload
        );
        assert_eq!(
            failure(UpstreamFailure::Stream {
                provider_code: Some("api_error".into())
            }),
            Signal::Ignore
        );
        assert_eq!(failure(UpstreamFailure::LimitReached), Signal::Ignore);
    }

    #[test]
    fn redirects_fail_over_count_against_the_breaker_and_reach_the_client_as_502() {
        for s in [301, 302, 303, 307, 308] {
            let verdict = classify(&status(s, None));
            assert_eq!(verdict.action, Action::FailOver, "{s}");
            assert!(verdict.breaker_failure, "{s}");
            assert!(!verdict.misconfigured, "{s}: the key was not refused");
            assert_eq!(verdict.class, "redirect", "{s}");
            let told = client_error(&status(s, None));
            assert_eq!((told.status, told.kind), (502, ErrorKind::Api), "{s}");
            assert!(told.message.starts_with("p/m failed"), "{}", told.message);
            assert_eq!(every_target_failed(told).status, 503);
        }
    }

    #[test]
    fn every_failure_has_a_class() {
        let class = |s| classify(&status(s, None)).class;
        assert_eq!(class(429), "rate_limited");
        assert_eq!(class(529), "overloaded");
        assert_eq!(class(503), "overloaded");
        assert_eq!(class(500), "server_error");
        assert_eq!(class(401), "auth");
        assert_eq!(class(400), "client_error");
        let failure = |f| classify(&UpstreamError::new("p/m", f, "x")).class;
        assert_eq!(failure(UpstreamFailure::Connect), "connect");
        assert_eq!(failure(UpstreamFailure::LimitReached), "concurrency_limit");
        assert_eq!(
            failure(UpstreamFailure::Rejected(ApiError::invalid("no"))),
            "untranslatable"
        );
    }

    #[test]
    fn the_client_gets_a_4xx_only_for_its_own_mistakes() {
        // The gateway's key or model is wrong: a server error, not the client's.
        for s in [401, 403, 404] {
            let told = client_error(&status(s, None));
            assert_eq!(told.status, 502, "{s}");
            assert!(
                told.message.contains("Bulwark config")
                    || told.message.contains("exists at the provider")
            );
        }
        let told = client_error(&status(400, Some("invalid_request_error")));
        assert_eq!((told.status, told.kind), (400, ErrorKind::InvalidRequest));
        assert_eq!(told.code.as_deref(), Some("invalid_request_error"));
        let told = client_error(&status(500, None));
        assert_eq!(told.status, 502);
        assert_eq!(every_target_failed(told).status, 503);
        let told = client_error(&UpstreamError::new("p/m", UpstreamFailure::Timeout, "x"));
        assert_eq!(
            (told.status, every_target_failed(told.clone()).status),
            (504, 504)
        );
        let mut limited = UpstreamError::new("p/m", UpstreamFailure::LimitReached, "x");
        limited.retry_after = Some(std::time::Duration::from_millis(2_500));
        let told = client_error(&limited);
        assert_eq!((told.status, told.retry_after), (429, Some(2)));
    }
}
