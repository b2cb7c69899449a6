//! One attempt on one target: take a concurrency slot and the target's
//! quota, send, and wait for the first token and then for what the client
//! is shown first; then either hand the answer over as a stream or read it
//! whole. The engine's loop, hedges and
//! `mid_stream: continue` all open attempts this way.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;

use crate::api::ChatRequest;
use crate::deadline::Deadline;
use crate::error::{UpstreamError, UpstreamFailure};
use crate::limit::book::Grant;
use crate::limit::window::Refusal;
use crate::provider::{Chunk, ChunkStream};
use crate::resilience::classify::classify;
use crate::resilience::concurrency::Signal;
use crate::route::{Permit, Route, Target, Tokens};

use super::streams::{correct_quota_at_end, reported_usage, within_deadline};
use super::{Answer, Mode};

/// What every attempt of one request shares.
#[derive(Clone, Copy)]
pub(crate) struct Call<'a> {
    pub(crate) route: &'a Route,
    pub(crate) request: &'a ChatRequest,
    pub(crate) deadline: Deadline,
    /// Whether the caller reads a stream or the complete answer.
    pub(crate) mode: Mode,
}

/// An attempt committed to: its stream reached the first event the client
/// is shown.
pub(crate) struct Opened {
    head: Vec<Chunk>,
    rest: ChunkStream,
    /// From sending to the first output, content or thinking.
    pub(crate) first_token: Duration,
    /// When the request was sent.
    started: Instant,
    /// The concurrency slot, held until the answer is complete.
    permit: Option<Permit>,
    /// When the token quota was taken, and the estimate taken.
    quota: Option<(Grant, Tokens)>,
}

impl Opened {
    /// The whole answer as a stream: the chunks already read, then the rest,
    /// cut at the deadline, holding the concurrency slot to its end and
    /// replacing the token estimate by the usage it reports.
    pub(crate) fn into_stream(self, target: &Target, deadline: Deadline) -> ChunkStream {
        let head = futures_util::stream::iter(self.head.into_iter().map(Ok));
        let rest = within_deadline(self.rest, deadline, target.label.clone(), self.permit);
        let stream: ChunkStream = Box::pin(head.chain(rest));
        match self.quota {
            Some((at, estimate)) => {
                correct_quota_at_end(stream, Arc::clone(&target.state), at, estimate)
            }
            None => stream,
        }
    }
}

impl Call<'_> {
    /// Takes a concurrency slot on `target` (waiting for one only when
    /// `may_wait`, i.e. no other target is left) and room in its quotas,
    /// sends, and reads up to the first event the client is shown. `alive`
    /// is set at the first output, thinking included, which may come long
    /// before that: the hedge waits for it.
    pub(crate) async fn open(
        self,
        target: &Target,
        may_wait: bool,
        alive: Option<&AtomicBool>,
    ) -> Result<Opened, UpstreamError> {
        let permit = slot(target, may_wait, self.deadline).await?;
        let (taken, estimate) = self.take_quota(target, may_wait).await?;
        let mut opened = self.send_and_await_first_content(target, alive).await;
        match &mut opened {
            Ok(opened) => {
                opened.permit = Some(permit);
                opened.quota = taken.map(|at| (at, estimate));
            }
            Err(error) => {
                let mut permit = permit;
                permit.signal = classify(error).concurrency;
            }
        }
        opened
    }

    /// The provider's quotas, for this request's estimate. Returns when
    /// the quota was taken (if the target has one) and the estimate taken.
    async fn take_quota(
        self,
        target: &Target,
        may_wait: bool,
    ) -> Result<(Option<Grant>, Tokens), UpstreamError> {
        // Estimating walks the whole prompt: only for targets with quotas.
        let estimate = if target.state.has_quotas() {
            Tokens {
                input: crate::limit::estimate::input_tokens(self.request),
                output: self
                    .request
                    .max_tokens
                    .map_or(u64::from(target.provider.default_max_tokens()), u64::from),
            }
        } else {
            Tokens::default()
        };
        let taken = take_quota(target, estimate, may_wait, self.deadline).await?;
        Ok((taken, estimate))
    }

    /// Sends, and reads the stream up to the first event the client is
    /// shown (`Chunk::is_shown`), where the attempt is committed.
    ///
    /// The first output, content or thinking, must arrive within
    /// `first_token_timeout` (from a provider asked for complete answers,
    /// whose first token comes with its last, within `attempt_timeout`): it
    /// says the provider is answering, not hung. A thinking model may think
    /// for minutes before its first text, so once it thinks, the rest of the
    /// wait is bounded as an answer in progress is: by the stream's idle
    /// timeout and the request's deadline (and, for a complete answer,
    /// `attempt_timeout`). Thinking commits the attempt only if the client
    /// sees it, i.e. is relayed the provider's own events; any other client
    /// has seen nothing until the first content, so a failure while the
    /// model thinks is still replaced unseen.
    async fn send_and_await_first_content(
        self,
        target: &Target,
        alive: Option<&AtomicBool>,
    ) -> Result<Opened, UpstreamError> {
        let started = Instant::now();
        let limit = if target.provider.streams() {
            self.route.policy.timeouts.first_token
        } else {
            self.route.policy.timeouts.attempt
        };
        let relayed = self.mode == Mode::Stream
            && self.request.source.as_ref().is_some_and(|source| {
                source.format == target.provider.format_for(self.request, &target.model)
            });
        let until = self.deadline.clip(started + limit);
        let opening = async {
            let (mut stream, exhausted) = target
                .provider
                .stream(
                    self.request,
                    &target.model,
                    &target.label,
                    self.route.policy.timeouts.stream_idle,
                )
                .await?;
            // The provider says its quota is used up: hold further requests
            // until it resets, rather than collect its 429s.
            if let Some(reset) = exhausted {
                target.state.pause_quota(reset);
            }
            let mut head = Vec::new();
            loop {
                let chunk = next_chunk(&mut stream, target).await?;
                let output = chunk.has_output();
                head.push(chunk);
                if output {
                    return Ok((stream, head));
                }
            }
        };
        let (mut rest, mut head) = match tokio::time::timeout_at(until, opening).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(expired(
                    target,
                    "first token",
                    limit.min(self.deadline.budget()),
                    self.deadline,
                    Some(started + limit),
                ));
            }
        };
        let first_token = started.elapsed();
        if let Some(alive) = alive {
            alive.store(true, Ordering::Relaxed);
        }
        let shown = |head: &[Chunk]| head.last().is_some_and(|chunk| chunk.is_shown(relayed));
        if !shown(&head) {
            let own_limit =
                (self.mode == Mode::Complete).then(|| started + self.route.policy.timeouts.attempt);
            let until = own_limit.map_or(self.deadline.at(), |at| self.deadline.clip(at));
            let thinking = async {
                while !shown(&head) {
                    head.push(next_chunk(&mut rest, target).await?);
                }
                Ok::<_, UpstreamError>(())
            };
            match tokio::time::timeout_at(until, thinking).await {
                Ok(result) => result?,
                Err(_) => {
                    let limit = match own_limit {
                        Some(_) => self.route.policy.timeouts.attempt,
                        None => self.deadline.budget(),
                    };
                    return Err(expired(
                        target,
                        "content",
                        limit.min(self.deadline.budget()),
                        self.deadline,
                        own_limit,
                    ));
                }
            }
        }
        Ok(Opened {
            head,
            rest,
            first_token,
            started,
            permit: None,
            quota: None,
        })
    }

    /// Completes an opened attempt as the caller reads it: a stream is
    /// handed over as it is; a complete answer is read to its end within
    /// `attempt_timeout`.
    pub(crate) async fn finish(
        self,
        target: &Target,
        opened: Result<Opened, UpstreamError>,
    ) -> Result<(Answer, Duration), UpstreamError> {
        let opened = opened?;
        let first_token = opened.first_token;
        match self.mode {
            Mode::Stream => Ok((
                Answer::Stream(opened.into_stream(target, self.deadline)),
                first_token,
            )),
            Mode::Complete => {
                let limit = self.route.policy.timeouts.attempt;
                let own_limit = opened.started + limit;
                let until = self.deadline.clip(own_limit);
                let Opened {
                    head: mut chunks,
                    mut rest,
                    mut permit,
                    quota,
                    ..
                } = opened;
                let reading = async {
                    while let Some(item) = rest.next().await {
                        chunks.push(item?);
                    }
                    Ok::<_, UpstreamError>(())
                };
                let result = match tokio::time::timeout_at(until, reading).await {
                    Ok(Ok(())) => {
                        if let Some((at, estimate)) = quota
                            && let Some(used) =
                                reported_usage(chunks.iter().flat_map(|c| &c.events))
                        {
                            target.state.correct_tokens(&at, estimate, used);
                        }
                        Ok((Answer::Complete(chunks), first_token))
                    }
                    Ok(Err(error)) => Err(error),
                    Err(_) => Err(expired(
                        target,
                        "complete answer",
                        limit.min(self.deadline.budget()),
                        self.deadline,
                        Some(own_limit),
                    )),
                };
                if let Some(permit) = &mut permit {
                    permit.signal = match &result {
                        Ok(_) => Signal::Success,
                        Err(error) => classify(error).concurrency,
                    };
                }
                result
            }
        }
    }
}

/// A concurrency slot on `target`, waited for (within the deadline) only
/// when `may_wait`, i.e. no other target is left.
pub(super) async fn slot(
    target: &Target,
    may_wait: bool,
    deadline: Deadline,
) -> Result<Permit, UpstreamError> {
    match target.state.try_permit() {
        Some(permit) => Ok(permit),
        None if may_wait => target.state.permit_by(deadline.at()).await.ok_or_else(|| {
            expired(
                target,
                "free concurrency slot",
                deadline.budget(),
                deadline,
                None,
            )
        }),
        None => Err(UpstreamError::new(
            &target.label,
            UpstreamFailure::LimitReached,
            "at its concurrency limit",
        )),
    }
}

/// Room for `estimate` in the provider's quotas: waits for it only if
/// nothing else is left. Returns when the quota was taken, if the target
/// has one.
pub(super) async fn take_quota(
    target: &Target,
    estimate: Tokens,
    may_wait: bool,
    deadline: Deadline,
) -> Result<Option<Grant>, UpstreamError> {
    loop {
        match target.state.take_quota(estimate).await {
            Ok(taken) => return Ok(taken),
            Err(Refusal::Wait(wait)) if may_wait && deadline.leaves_room_for(wait) => {
                tokio::time::sleep(wait).await;
            }
            Err(Refusal::Wait(wait)) => {
                let mut error = UpstreamError::new(
                    &target.label,
                    UpstreamFailure::LimitReached,
                    format!("at its rate limit for another {:.1} s", wait.as_secs_f64()),
                );
                error.retry_after = Some(wait);
                return Err(error);
            }
            Err(Refusal::TooLarge) => {
                return Err(UpstreamError::new(
                    &target.label,
                    UpstreamFailure::LimitReached,
                    format!(
                        "the request (about {} tokens with its max_tokens) exceeds this target's tokens-per-minute limit",
                        estimate.input + estimate.output
                    ),
                ));
            }
        }
    }
}

/// The stream's next chunk; its end, before the attempt was committed, is
/// a failure.
async fn next_chunk(stream: &mut ChunkStream, target: &Target) -> Result<Chunk, UpstreamError> {
    match stream.next().await {
        Some(result) => result,
        None => Err(UpstreamError::new(
            &target.label,
            UpstreamFailure::Stream {
                provider_code: None,
            },
            "the stream ended before any content",
        )),
    }
}

/// A wait that ran out: Bulwark's own timeout (ending at `own_limit`; `None`
/// when only the deadline bounds the wait), or the caller's shorter
/// deadline, which says nothing about the provider.
pub(super) fn expired(
    target: &Target,
    what: &str,
    limit: Duration,
    deadline: Deadline,
    own_limit: Option<Instant>,
) -> UpstreamError {
    let callers = match own_limit {
        Some(own_limit) => deadline.cuts_short(own_limit),
        None => deadline.set_by_caller(),
    };
    if callers {
        return UpstreamError::new(
            &target.label,
            UpstreamFailure::CallerDeadline,
            format!(
                "no {what} within the request's deadline of {:?}",
                deadline.budget()
            ),
        );
    }
    UpstreamError::new(
        &target.label,
        UpstreamFailure::Timeout,
        format!("no {what} within {limit:?}"),
    )
}
