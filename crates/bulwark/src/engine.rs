//! Runs one request through its route. For every failure it asks the
//! failure table (`resilience::classify`) whether to retry the same target,
//! move on, or give up, and it never lets the request run past its deadline.
//!
//! Per attempt:
//! 1. skip the target without a call if its breaker is open;
//! 2. send, and wait for the first content event (`first_token_timeout`);
//!    with `hedge_after`, a second attempt starts on the next target if the
//!    first is slow, and the first to produce content wins;
//! 3. for a complete answer, read the rest (`attempt_timeout`);
//! 4. on failure: retry the same target after a backoff or the server's hint
//!    (within the retry budget and the deadline), or fail over, or stop.
//!
//! A stream is handed to the caller only once its first content event has
//! arrived, so a target that fails before saying anything is replaced
//! without the client noticing. A complete answer is buffered whole, so even
//! a stream that breaks halfway is replaced unseen.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;

use crate::api::{ChatRequest, WireFormat};
use crate::error::{ApiError, ErrorKind, UpstreamError, UpstreamFailure};
use crate::events::{Event, EventBus};
use crate::provider::{Chunk, ChunkStream};
use crate::resilience::breaker::{Admission, CallOutcome, Transition};
use crate::resilience::classify::{Action, classify};
use crate::resilience::concurrency::Signal;
use crate::route::{MidStream, Permit, Route, Target};
use std::sync::Arc;

/// Per-request settings from the caller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestOptions {
    /// The caller's own deadline; it can shorten the route's, never lengthen it.
    pub deadline: Option<Duration>,
}

/// Whether the caller reads the answer as it streams or wants it whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Stream,
    Complete,
}

pub enum Answer {
    /// Chunks from the first content event on; an `Err` item ends it.
    Stream(ChunkStream),
    /// Every chunk of a complete answer.
    Complete(Vec<Chunk>),
}

/// A successful answer and how it was obtained.
pub struct Served<T> {
    pub value: T,
    /// `provider/model` that answered.
    pub target: String,
    /// The wire format of the provider that answered.
    pub format: WireFormat,
    /// Upstream attempts made, including the successful one.
    pub attempts: u32,
    /// The answer came from a target other than the route's first.
    pub fallback: bool,
}

impl<T> Served<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Served<U> {
        Served {
            value: f(self.value),
            target: self.target,
            format: self.format,
            attempts: self.attempts,
            fallback: self.fallback,
        }
    }
}

/// The request could not be answered.
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

pub async fn run(
    route: &Arc<Route>,
    request: &ChatRequest,
    options: RequestOptions,
    mode: Mode,
    events: &EventBus,
) -> Result<Served<Answer>, Failed> {
    let budget = options
        .deadline
        .map_or(route.timeouts.deadline, |d| d.min(route.timeouts.deadline));
    let mut run = Run {
        route,
        shared_route: route,
        request,
        mode,
        events,
        deadline: Instant::now() + budget,
        budget,
        attempts: 0,
        failures: Vec::new(),
        skipped: Vec::new(),
    };
    // Every wait inside is already clipped to the deadline; this is the
    // guarantee that nothing overlooked can hold a request past it.
    match tokio::time::timeout_at(run.deadline, run.go()).await {
        Ok(result) => result,
        Err(_) => Err(run.deadline_exceeded()),
    }
}

/// A stream that reached its first content event.
pub(crate) struct Opened {
    pub(crate) head: Vec<Chunk>,
    pub(crate) rest: ChunkStream,
    first_token: Duration,
    /// The concurrency slot, held until the answer is complete.
    pub(crate) permit: Option<Permit>,
}

struct Run<'a> {
    route: &'a Route,
    /// The same route, shareable with a stream that outlives this run.
    shared_route: &'a Arc<Route>,
    request: &'a ChatRequest,
    mode: Mode,
    events: &'a EventBus,
    deadline: Instant,
    budget: Duration,
    attempts: u32,
    failures: Vec<UpstreamError>,
    /// Targets passed over without a call, and why.
    skipped: Vec<String>,
}

impl<'a> Run<'a> {
    async fn go(&mut self) -> Result<Served<Answer>, Failed> {
        let targets = &self.route.targets;
        let plan = self.route.plan();
        let mut used = vec![false; targets.len()];
        // After a too-long prompt, only targets with a larger window qualify.
        let mut context_floor: Option<u64> = None;
        for (position, &i) in plan.iter().enumerate() {
            if used[i] {
                continue;
            }
            let target = &targets[i];
            if let Some(floor) = context_floor
                && target.context_window.is_none_or(|w| w <= floor)
            {
                self.skip(target, "context window too small");
                continue;
            }
            let mut retries = 0;
            loop {
                if Instant::now() >= self.deadline {
                    return Err(self.deadline_exceeded());
                }
                let Some(admission) = self.admit(target) else {
                    break;
                };
                if retries == 0 {
                    target
                        .state
                        .with_budget(|b| b.record_request(Instant::now()));
                }
                used[i] = true;
                let later = &plan[position + 1..];
                let hedge = if retries == 0 {
                    self.hedge_candidate(i, later, &used, context_floor)
                } else {
                    None
                };
                // The last target left may wait for a concurrency slot;
                // others move on when theirs is full.
                let may_wait = later.iter().all(|&j| used[j]);
                let (who, who_admission, result) =
                    self.attempt_hedged(i, admission, hedge, may_wait).await;
                if who != i {
                    used[who] = true;
                }
                let error = match result {
                    Ok(answer) => {
                        targets[who].state.observe_first_token(answer.1);
                        self.record(
                            &targets[who],
                            who_admission,
                            CallOutcome::Success { latency: answer.1 },
                        );
                        let target = &targets[who];
                        self.events.emit(|| Event::Served {
                            route: self.route.name.clone(),
                            target: target.label.clone(),
                            attempts: self.attempts,
                            fallback: who != plan[0],
                        });
                        let value = match (answer.0, self.route.mid_stream) {
                            (Answer::Stream(stream), MidStream::Continue) => {
                                let candidates: Vec<usize> = plan[position + 1..]
                                    .iter()
                                    .copied()
                                    .filter(|&j| !used[j] && j != who)
                                    .collect();
                                Answer::Stream(crate::continuation::continue_on_failure(
                                    stream,
                                    crate::continuation::Continuation {
                                        route: Arc::clone(self.shared_route),
                                        request: self.request.clone(),
                                        candidates,
                                        deadline: self.deadline,
                                        budget: self.budget,
                                        events: self.events.clone(),
                                        served: who,
                                    },
                                ))
                            }
                            (answer, _) => answer,
                        };
                        return Ok(Served {
                            value,
                            target: target.label.clone(),
                            format: target.provider.format(),
                            attempts: self.attempts,
                            fallback: who != plan[0],
                        });
                    }
                    Err(error) => error,
                };
                let verdict = classify(&error);
                let failed_target = &targets[who];
                if matches!(error.failure, UpstreamFailure::Timeout) {
                    // A hang is the slowest answer of all, for balancing.
                    failed_target
                        .state
                        .observe_timeout(self.route.timeouts.first_token);
                }
                self.record(
                    failed_target,
                    who_admission,
                    if verdict.breaker_failure {
                        CallOutcome::Failure
                    } else {
                        CallOutcome::Ignored
                    },
                );
                if verdict.misconfigured {
                    tracing::error!(target = %failed_target.label, "the provider refused the gateway's credentials: {}", error.message);
                    self.events.emit(|| Event::Misconfigured {
                        target: failed_target.label.clone(),
                    });
                }
                tracing::warn!(target = %failed_target.label, class = error.class(), action = ?verdict.action, "attempt failed: {}", error.message);
                self.events.emit(|| Event::AttemptFailed {
                    route: self.route.name.clone(),
                    target: failed_target.label.clone(),
                    class: error.class(),
                    action: verdict.action,
                });
                let hint = error.retry_after;
                self.failures.push(error);
                match verdict.action {
                    Action::FailFast => return Err(self.give_up()),
                    Action::FailOver => break,
                    Action::FailOverToLargerContext => {
                        match failed_target.context_window {
                            Some(window) => {
                                context_floor =
                                    Some(context_floor.map_or(window, |f| f.max(window)))
                            }
                            // Nothing is known to be larger: every target would refuse it.
                            None => return Err(self.give_up()),
                        }
                        break;
                    }
                    Action::Retry if who != i => break, // a failed hedge: both tried
                    Action::Retry => {
                        if retries >= self.route.retry.max_retries {
                            break;
                        }
                        let backoff = self.route.retry.backoff;
                        let wait = match hint {
                            // A long hint means this target is out for a while.
                            Some(hint) if hint > backoff.cap => break,
                            Some(hint) => hint,
                            None => backoff.delay(retries, fastrand::f64()),
                        };
                        if Instant::now() + wait >= self.deadline {
                            break;
                        }
                        if !target.state.with_budget(|b| b.try_withdraw(Instant::now())) {
                            self.events.emit(|| Event::RetryBudgetExhausted {
                                target: target.label.clone(),
                            });
                            break;
                        }
                        tokio::time::sleep(wait).await;
                        retries += 1;
                    }
                }
            }
        }
        Err(self.give_up())
    }

    /// Asks the target's breaker for a call; `None` means skip it.
    fn admit(&mut self, target: &Target) -> Option<Admission> {
        let now = Instant::now();
        match target.state.with_breaker(|b| b.admit(now)) {
            Ok((admission, transition)) => {
                self.transition(target, transition);
                Some(admission)
            }
            Err(_) => {
                self.skip(target, "circuit open");
                None
            }
        }
    }

    fn skip(&mut self, target: &Target, reason: &'static str) {
        self.skipped.push(format!("{} ({reason})", target.label));
        self.events.emit(|| Event::Skipped {
            route: self.route.name.clone(),
            target: target.label.clone(),
            reason,
        });
    }

    fn record(&self, target: &Target, admission: Admission, outcome: CallOutcome) {
        let now = Instant::now();
        let transition = target
            .state
            .with_breaker(|b| b.record(now, admission, outcome));
        self.transition(target, transition);
    }

    fn transition(&self, target: &Target, transition: Option<Transition>) {
        if let Some(t) = transition {
            tracing::info!(target = %target.label, from = t.from.as_str(), to = t.to.as_str(), "circuit breaker changed state");
            self.events.emit(|| Event::Breaker {
                target: target.label.clone(),
                from: t.from,
                to: t.to,
                open_for: t.open_for,
            });
        }
    }

    /// The next target a hedge could go to: unused, admitted by its breaker,
    /// and paid for from the primary's retry budget.
    fn hedge_candidate(
        &mut self,
        primary: usize,
        later: &[usize],
        used: &[bool],
        context_floor: Option<u64>,
    ) -> Option<(usize, Admission)> {
        self.route.hedge_after?;
        let targets = &self.route.targets;
        let candidate = later.iter().copied().find(|&j| {
            !used[j]
                && context_floor.is_none_or(|f| targets[j].context_window.is_some_and(|w| w > f))
        })?;
        let now = Instant::now();
        if !targets[primary].state.with_budget(|b| b.try_withdraw(now)) {
            return None;
        }
        let admission = self.admit(&targets[candidate])?;
        Some((candidate, admission))
    }

    /// One attempt on target `i`, raced against a hedge on another target if
    /// `i` is slow to produce its first token. Returns who answered (or
    /// failed last), and records the other's failure.
    async fn attempt_hedged(
        &mut self,
        i: usize,
        admission: Admission,
        hedge: Option<(usize, Admission)>,
        may_wait: bool,
    ) -> (usize, Admission, Result<(Answer, Duration), UpstreamError>) {
        let targets = &self.route.targets;
        let opener = self.opener();
        self.attempts += 1;
        let (Some(hedge_after), Some((j, hedge_admission))) =
            (self.route.hedge_delay(&targets[i]), hedge)
        else {
            let opened = opener.open(&targets[i], may_wait).await;
            return (i, admission, self.finish(&targets[i], opened).await);
        };
        let primary = opener.open(&targets[i], may_wait);
        tokio::pin!(primary);
        tokio::select! {
            opened = &mut primary => {
                // Answered before the hedge was due: the hedge never starts.
                self.record(&targets[j], hedge_admission, CallOutcome::Ignored);
                return (i, admission, self.finish(&targets[i], opened).await);
            }
            () = tokio::time::sleep(hedge_after) => {}
        }
        self.attempts += 1;
        self.events.emit(|| Event::Hedged {
            route: self.route.name.clone(),
            primary: targets[i].label.clone(),
            target: targets[j].label.clone(),
        });
        let second = opener.open(&targets[j], false);
        tokio::pin!(second);
        // The first to produce content wins; the loser is dropped, which
        // closes its connection.
        let (winner, winner_admission, loser, loser_admission, opened) = tokio::select! {
            opened = &mut primary => (i, admission, j, hedge_admission, opened),
            opened = &mut second => (j, hedge_admission, i, admission, opened),
        };
        match opened {
            Ok(opened) => {
                self.record(&targets[loser], loser_admission, CallOutcome::Ignored);
                (
                    winner,
                    winner_admission,
                    self.finish(&targets[winner], Ok(opened)).await,
                )
            }
            Err(error) => {
                // The first to finish failed: the other is the answer.
                let verdict = classify(&error);
                self.record(
                    &targets[winner],
                    winner_admission,
                    if verdict.breaker_failure {
                        CallOutcome::Failure
                    } else {
                        CallOutcome::Ignored
                    },
                );
                self.failures.push(error);
                let other = if loser == j {
                    second.await
                } else {
                    primary.await
                };
                (
                    loser,
                    loser_admission,
                    self.finish(&targets[loser], other).await,
                )
            }
        }
    }

    /// What opening an attempt needs, borrowed from the request rather than
    /// from `self`, so that attempts can run while `self` records outcomes.
    fn opener(&self) -> Opener<'a> {
        Opener {
            route: self.route,
            request: self.request,
            deadline: self.deadline,
            budget: self.budget,
        }
    }
}

#[derive(Clone, Copy)]
pub(crate) struct Opener<'a> {
    pub(crate) route: &'a Route,
    pub(crate) request: &'a ChatRequest,
    pub(crate) deadline: Instant,
    pub(crate) budget: Duration,
}

impl Opener<'_> {
    /// Takes a concurrency slot on `target` (waiting for one only when
    /// `may_wait`, i.e. no other target is left), sends, and reads up to the
    /// first content event.
    pub(crate) async fn open(
        self,
        target: &Target,
        may_wait: bool,
    ) -> Result<Opened, UpstreamError> {
        let permit = match target.state.try_permit() {
            Some(permit) => permit,
            None if may_wait => target
                .state
                .permit_by(self.deadline)
                .await
                .ok_or_else(|| timeout(target, "free concurrency slot", self.budget))?,
            None => {
                return Err(UpstreamError::new(
                    &target.label,
                    UpstreamFailure::LimitReached,
                    "at its concurrency limit",
                ));
            }
        };
        let mut opened = self.open_with(target).await;
        match &mut opened {
            Ok(opened) => opened.permit = Some(permit),
            Err(error) => {
                let mut permit = permit;
                permit.signal = signal_for(error);
            }
        }
        opened
    }

    async fn open_with(self, target: &Target) -> Result<Opened, UpstreamError> {
        let started = Instant::now();
        let limit = self.route.timeouts.first_token;
        let until = (started + limit).min(self.deadline);
        let opening = async {
            let mut stream = target
                .provider
                .stream(
                    self.request,
                    &target.model,
                    &target.label,
                    self.route.timeouts.stream_idle,
                )
                .await?;
            let mut head = Vec::new();
            loop {
                match stream.next().await {
                    Some(Ok(chunk)) => {
                        let content = chunk.has_content();
                        head.push(chunk);
                        if content {
                            return Ok(Opened {
                                head,
                                rest: stream,
                                first_token: started.elapsed(),
                                permit: None,
                            });
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
        };
        match tokio::time::timeout_at(until, opening).await {
            Ok(result) => result,
            Err(_) => Err(timeout(target, "first token", limit.min(self.budget))),
        }
    }
}

impl Run<'_> {
    /// Completes an opened attempt: a stream is handed over as it is; a
    /// complete answer is read to its end within `attempt_timeout`.
    async fn finish(
        &self,
        target: &Target,
        opened: Result<Opened, UpstreamError>,
    ) -> Result<(Answer, Duration), UpstreamError> {
        let mut opened = opened?;
        let first_token = opened.first_token;
        let mut permit = opened.permit.take();
        match self.mode {
            Mode::Stream => {
                if let Some(permit) = &mut permit {
                    permit.signal = Signal::Success;
                }
                let head = futures_util::stream::iter(opened.head.into_iter().map(Ok));
                let rest =
                    within_deadline(opened.rest, self.deadline, target.label.clone(), permit);
                Ok((Answer::Stream(Box::pin(head.chain(rest))), first_token))
            }
            Mode::Complete => {
                let limit = self.route.timeouts.attempt;
                let until = (Instant::now() + limit.saturating_sub(first_token)).min(self.deadline);
                let mut chunks = opened.head;
                let mut rest = opened.rest;
                let reading = async {
                    while let Some(item) = rest.next().await {
                        chunks.push(item?);
                    }
                    Ok::<_, UpstreamError>(())
                };
                let result = match tokio::time::timeout_at(until, reading).await {
                    Ok(Ok(())) => Ok((Answer::Complete(chunks), first_token)),
                    Ok(Err(error)) => Err(error),
                    Err(_) => Err(timeout(target, "complete answer", limit.min(self.budget))),
                };
                if let Some(permit) = &mut permit {
                    permit.signal = match &result {
                        Ok(_) => Signal::Success,
                        Err(error) => signal_for(error),
                    };
                }
                result
            }
        }
    }

    fn deadline_exceeded(&self) -> Failed {
        let mut error = ApiError::new(
            ErrorKind::Timeout,
            format!(
                "no answer within the request deadline of {:?} (route `{}`){}",
                self.budget,
                self.route.name,
                self.summary()
            ),
        );
        error.code = Some("deadline_exceeded".into());
        Failed {
            error,
            attempts: self.attempts,
            failures: self.failures.clone(),
        }
    }

    fn summary(&self) -> String {
        let mut parts: Vec<String> = self
            .failures
            .iter()
            .map(|f| format!("{}: {}", f.target, f.message))
            .collect();
        parts.extend(self.skipped.iter().map(|s| format!("{s}: skipped")));
        if parts.is_empty() {
            String::new()
        } else {
            format!(": {}", parts.join("; "))
        }
    }

    /// The error for a request no target could serve. A request the client
    /// got wrong keeps its own error; otherwise the client learns every
    /// attempt.
    fn give_up(&self) -> Failed {
        let error = match self.failures.last() {
            None if !self.skipped.is_empty() => {
                let mut error = ApiError::new(
                    ErrorKind::Overloaded,
                    format!(
                        "every target of route `{}` is unavailable{}",
                        self.route.name,
                        self.summary()
                    ),
                );
                error.retry_after = Some(self.min_open_wait().as_secs().max(1));
                error
            }
            None => ApiError::new(
                ErrorKind::Api,
                format!("route `{}` has no targets", self.route.name),
            ),
            Some(last) if classify(last).action == Action::FailFast => last.to_api_error(),
            Some(last)
                if self
                    .failures
                    .iter()
                    .all(|f| matches!(f.failure, UpstreamFailure::Rejected(_))) =>
            {
                last.to_api_error()
            }
            Some(last) if self.failures.len() == 1 && self.skipped.is_empty() => {
                last.to_api_error()
            }
            Some(last) => {
                let mut error = last.to_api_error();
                error.message = format!(
                    "every target of route `{}` failed ({} attempts){}",
                    self.route.name,
                    self.attempts,
                    self.summary()
                );
                error
            }
        };
        Failed {
            error,
            attempts: self.attempts,
            failures: self.failures.clone(),
        }
    }

    /// How long until the first skipped target's breaker lets a call through.
    fn min_open_wait(&self) -> Duration {
        let now = Instant::now();
        self.route
            .targets
            .iter()
            .filter_map(|t| t.state.with_breaker(|b| b.admit_preview(now)))
            .min()
            .unwrap_or(Duration::from_secs(1))
    }
}

fn timeout(target: &Target, what: &str, limit: Duration) -> UpstreamError {
    UpstreamError::new(
        &target.label,
        UpstreamFailure::Timeout,
        format!("no {what} within {limit:?}"),
    )
}

/// How a failure should move a target's concurrency limit: overload and
/// slowness shrink it, the client's own mistakes do not.
fn signal_for(error: &UpstreamError) -> Signal {
    match &error.failure {
        UpstreamFailure::Timeout => Signal::Overload,
        UpstreamFailure::Status {
            status: 429 | 503 | 529,
            ..
        } => Signal::Overload,
        UpstreamFailure::Stream {
            provider_code: Some(code),
        } if code.contains("overloaded") => Signal::Overload,
        _ => Signal::Ignore,
    }
}

/// Ends the stream with a timeout error once the request's deadline passes,
/// and holds the target's concurrency slot until the stream is done.
pub(crate) fn within_deadline(
    stream: ChunkStream,
    deadline: Instant,
    target: String,
    permit: Option<Permit>,
) -> ChunkStream {
    Box::pin(async_stream::stream! {
        let _permit = permit;
        let mut stream = stream;
        loop {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(item)) => {
                    let failed = item.is_err();
                    yield item;
                    if failed {
                        return;
                    }
                }
                Ok(None) => return,
                Err(_) => {
                    yield Err(UpstreamError::new(&target, UpstreamFailure::Timeout, "the request deadline passed while the answer was streaming"));
                    return;
                }
            }
        }
    })
}
