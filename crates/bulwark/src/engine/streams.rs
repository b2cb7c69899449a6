//! Wrappers around an answer's stream that outlive the engine's loop: they
//! enforce the deadline, hold the concurrency slot, correct the token quota
//! and tell the breaker how the stream ended.

use std::sync::Arc;
use std::time::Duration;

use crate::limit::book::Grant;
use futures_util::StreamExt;

use crate::api::StreamEvent;
use crate::deadline::Deadline;
use crate::error::{UpstreamError, UpstreamFailure};
use crate::provider::ChunkStream;
use crate::resilience::breaker::CallOutcome;
use crate::resilience::classify::classify;
use crate::resilience::concurrency::Signal;
use crate::route::{Permit, TargetState, Ticket, Tokens};

/// Ends the stream with a timeout error once the request's deadline passes,
/// and holds the target's concurrency slot until the stream is done.
pub(crate) fn within_deadline(
    stream: ChunkStream,
    deadline: Deadline,
    target: String,
    permit: Option<Permit>,
) -> ChunkStream {
    Box::pin(async_stream::stream! {
        // Dropped with the stream; a reader that went away says nothing
        // about the provider, so the slot's default signal is `Ignore`.
        let mut permit = permit;
        let mut stream = stream;
        loop {
            match tokio::time::timeout_at(deadline.at(), stream.next()).await {
                Ok(Some(item)) => {
                    if let (Err(error), Some(permit)) = (&item, permit.as_mut()) {
                        permit.signal = classify(error).concurrency;
                    }
                    let failed = item.is_err();
                    yield item;
                    if failed {
                        return;
                    }
                }
                Ok(None) => {
                    if let Some(permit) = permit.as_mut() {
                        permit.signal = Signal::Success;
                    }
                    return;
                }
                Err(_) => {
                    // The caller's own deadline says nothing about the provider.
                    let failure = if deadline.set_by_caller() { UpstreamFailure::CallerDeadline } else { UpstreamFailure::Timeout };
                    yield Err(UpstreamError::new(&target, failure, "the request deadline passed while the answer was streaming"));
                    return;
                }
            }
        }
    })
}

/// The usage an answer reports, if any: its last usage event.
pub(crate) fn reported_usage<'a>(
    events: impl IntoIterator<Item = &'a StreamEvent>,
) -> Option<Tokens> {
    events
        .into_iter()
        .filter_map(|event| match event {
            StreamEvent::Usage(u) => Some(Tokens {
                input: u.input_tokens,
                output: u.output_tokens,
            }),
            _ => None,
        })
        .last()
}

/// Replaces a stream's token estimate by its real usage once it ends.
pub(crate) fn correct_quota_at_end(
    stream: ChunkStream,
    state: Arc<TargetState>,
    at: Grant,
    estimate: Tokens,
) -> ChunkStream {
    Box::pin(async_stream::stream! {
        let mut stream = stream;
        let mut used = None;
        while let Some(item) = stream.next().await {
            if let Ok(chunk) = &item {
                used = reported_usage(&chunk.events).or(used);
            }
            yield item;
        }
        if let Some(used) = used {
            state.correct_tokens(&at, estimate, used);
        }
    })
}

/// Reports a stream's outcome to its target's breaker when it ends: a
/// success if it reached its terminator, by the failure table if it broke,
/// neither if the reader went away.
pub(crate) fn report_at_end(
    stream: ChunkStream,
    ticket: Ticket,
    first_token: Duration,
) -> ChunkStream {
    Box::pin(async_stream::stream! {
        let mut stream = stream;
        let mut ticket = Some(ticket);
        while let Some(item) = stream.next().await {
            if let Err(error) = &item
                && let Some(ticket) = ticket.take()
            {
                ticket.report(classify(error).breaker_outcome());
            }
            yield item;
        }
        if let Some(ticket) = ticket {
            ticket.report(CallOutcome::Success { latency: first_token });
        }
    })
}
