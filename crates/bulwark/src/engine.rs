//! Runs one request through its route: each target in order until one
//! answers. This is the basic fallback; the resilience engine (retries in
//! place, budgets, breakers, hedging, deadlines) grows here.
//!
//! A stream is only handed to the caller once its first content event has
//! arrived, so that a target failing before it said anything can still be
//! replaced by the next one without the client noticing.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream;

use crate::api::{ChatRequest, ChatResponse, StreamEvent};
use crate::error::{ApiError, Disposition, ErrorKind, UpstreamError, UpstreamFailure};
use crate::provider::EventStream;
use crate::route::{Route, Target};

/// A successful answer and how it was obtained.
pub struct Served<T> {
    pub value: T,
    /// `provider/model` that answered.
    pub target: String,
    /// Upstream attempts made, including the successful one.
    pub attempts: u32,
    /// The answer came from a target other than the route's first.
    pub fallback: bool,
}

/// The request failed on every target it was allowed to try.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{error}")]
pub struct Failed {
    pub error: ApiError,
    pub attempts: u32,
    /// Every failed attempt, in order.
    pub failures: Vec<UpstreamError>,
}

impl Failed {
    pub fn before_any_attempt(error: ApiError) -> Failed {
        Failed {
            error,
            attempts: 0,
            failures: Vec::new(),
        }
    }
}

pub async fn chat(route: &Route, request: &ChatRequest) -> Result<Served<ChatResponse>, Failed> {
    let mut failures = Vec::new();
    for (position, target) in route.targets.iter().enumerate() {
        let attempt = target.provider.chat(request, &target.model, &target.label);
        let outcome = match tokio::time::timeout(route.timeouts.attempt, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => Err(timeout(target, "answer", route.timeouts.attempt)),
        };
        match outcome {
            Ok(value) => return Ok(served(value, target, position, failures.len())),
            Err(error) => {
                tracing::warn!(target = %target.label, class = error.class(), "attempt failed: {}", error.message);
                let fail_fast = error.disposition() == Disposition::FailFast;
                failures.push(error);
                if fail_fast {
                    break;
                }
            }
        }
    }
    Err(give_up(route, failures))
}

pub async fn stream(route: &Route, request: &ChatRequest) -> Result<Served<EventStream>, Failed> {
    let mut failures = Vec::new();
    for (position, target) in route.targets.iter().enumerate() {
        let first_token = route.timeouts.first_token;
        let attempt = open_stream(route, request, target);
        let outcome = match tokio::time::timeout(first_token, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => Err(timeout(target, "first token", first_token)),
        };
        match outcome {
            Ok(value) => return Ok(served(value, target, position, failures.len())),
            Err(error) => {
                tracing::warn!(target = %target.label, class = error.class(), "attempt failed: {}", error.message);
                let fail_fast = error.disposition() == Disposition::FailFast;
                failures.push(error);
                if fail_fast {
                    break;
                }
            }
        }
    }
    Err(give_up(route, failures))
}

/// Opens a stream and reads ahead to its first content event.
async fn open_stream(
    route: &Route,
    request: &ChatRequest,
    target: &Target,
) -> Result<EventStream, UpstreamError> {
    let mut upstream = target
        .provider
        .stream(
            request,
            &target.model,
            &target.label,
            route.timeouts.stream_idle,
        )
        .await?;
    let mut head: Vec<StreamEvent> = Vec::new();
    loop {
        match upstream.next().await {
            Some(Ok(event)) => {
                let content = event.is_content();
                head.push(event);
                if content {
                    break;
                }
            }
            Some(Err(error)) => return Err(error),
            None => {
                return Err(UpstreamError::new(
                    &target.label,
                    UpstreamFailure::Stream {
                        provider_code: None,
                    },
                    "the stream ended before any content",
                ));
            }
        }
    }
    let head = stream::iter(head.into_iter().map(Ok));
    Ok(Box::pin(head.chain(upstream)))
}

fn served<T>(value: T, target: &Target, position: usize, failed: usize) -> Served<T> {
    Served {
        value,
        target: target.label.clone(),
        attempts: u32::try_from(failed + 1).unwrap_or(u32::MAX),
        fallback: position > 0,
    }
}

fn timeout(target: &Target, what: &str, limit: Duration) -> UpstreamError {
    UpstreamError::new(
        &target.label,
        UpstreamFailure::Timeout,
        format!("no {what} within {limit:?}"),
    )
}

/// The error for a request no target could serve. A request the client got
/// wrong keeps its own error; otherwise the client learns every attempt.
fn give_up(route: &Route, failures: Vec<UpstreamError>) -> Failed {
    let attempts = u32::try_from(failures.len()).unwrap_or(u32::MAX);
    let error = match failures.last() {
        None => ApiError::new(
            ErrorKind::Api,
            format!("route `{}` has no targets", route.name),
        ),
        Some(last) if last.disposition() == Disposition::FailFast || failures.len() == 1 => {
            last.to_api_error()
        }
        Some(last) => {
            // Untranslatable everywhere: the client's fields are the problem.
            if failures
                .iter()
                .all(|f| matches!(f.failure, UpstreamFailure::Rejected(_)))
            {
                last.to_api_error()
            } else {
                let summary: Vec<String> = failures
                    .iter()
                    .map(|f| format!("{}: {}", f.target, f.message))
                    .collect();
                let mut error = last.to_api_error();
                error.message = format!(
                    "every target of route `{}` failed ({} attempts): {}",
                    route.name,
                    failures.len(),
                    summary.join("; ")
                );
                error
            }
        }
    };
    Failed {
        error,
        attempts,
        failures,
    }
}
