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
use tracing::{Instrument, Span};

use crate::api::{ChatRequest, StreamEvent, WireFormat};
use crate::error::{ApiError, ErrorKind, UpstreamError, UpstreamFailure};
use crate::events::{Event, EventBus};
use crate::limit::window::Refusal;
use crate::observe::record::AttemptRecord;
use crate::observe::{UnixMs, millis, unix_ms_now};
use crate::provider::{Chunk, ChunkStream};
use crate::resilience::breaker::CallOutcome;
use crate::resilience::classify::{Action, classify};
use crate::resilience::concurrency::Signal;
use crate::route::{MidStream, Permit, Route, Target, Ticket, Tokens};
use std::sync::Arc;

/// Per-request settings from the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestOptions {
    /// The caller's own deadline; it can shorten the route's, never lengthen it.
    pub deadline: Option<Duration>,
    pub cache: CachePolicy,
    /// Who is asking (a client key's name); cached answers are not shared
    /// across tenants.
    pub tenant: Option<Arc<str>>,
    /// The request's place in the route's admission queue.
    pub priority: crate::limit::queue::Priority,
}

/// What the caller allows the response cache to do (`Cache-Control`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CachePolicy {
    #[default]
    Use,
    /// `no-cache`: do not answer from the cache, but store the fresh answer.
    Refresh,
    /// `no-store`: neither read nor write.
    Bypass,
}

/// Whether an answer came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Miss,
    /// An expired entry, served because every target failed.
    Stale,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Stale => "stale",
        }
    }
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
    /// Set when the route caches answers.
    pub cache: Option<CacheStatus>,
    /// How the answer was degraded, when every target failed: `stale-cache`,
    /// the degrade target's `provider/model`, or `static`.
    pub degraded: Option<String>,
    /// Every upstream attempt, in the order they ended, for the request log.
    pub attempt_log: Vec<AttemptRecord>,
}

impl<T> Served<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Served<U> {
        Served {
            value: f(self.value),
            target: self.target,
            format: self.format,
            attempts: self.attempts,
            fallback: self.fallback,
            cache: self.cache,
            degraded: self.degraded,
            attempt_log: self.attempt_log,
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
    /// Every upstream attempt, for the request log.
    pub attempt_log: Vec<AttemptRecord>,
}

impl Failed {
    pub fn before_any_attempt(error: ApiError) -> Failed {
        Failed {
            error,
            attempts: 0,
            failures: Vec::new(),
            attempt_log: Vec::new(),
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
        log: AttemptLog::new(route.targets.len()),
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
    /// When the token quota was taken, and the estimate taken.
    quota: Option<(Instant, Tokens)>,
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
    log: AttemptLog,
}

/// Attempts as the request log sees them. Wall-clock times are derived from
/// the runtime's clock, so they stay consistent under paused test time.
///
/// Each attempt also has a `bulwark.attempt` tracing span, a child of the
/// caller's current span (the gateway's `bulwark.request`), so that a trace
/// exporter installed by the binary shows attempts, hedges included, without
/// the engine depending on one.
struct AttemptLog {
    base: (Instant, UnixMs),
    /// The attempt in flight on each target.
    open: Vec<Option<OpenAttempt>>,
    done: Vec<AttemptRecord>,
}

#[derive(Clone)]
struct OpenAttempt {
    started: Instant,
    hedge: bool,
    span: Span,
}

impl AttemptLog {
    fn new(targets: usize) -> AttemptLog {
        AttemptLog {
            base: (Instant::now(), unix_ms_now()),
            open: vec![None; targets],
            done: Vec::new(),
        }
    }

    /// Opens target `who`'s attempt; the span returned instruments the call.
    fn start(&mut self, who: usize, target: &Target, hedge: bool) -> Span {
        let span = tracing::info_span!(
            "bulwark.attempt",
            "otel.kind" = "client",
            "otel.status_code" = tracing::field::Empty,
            "gen_ai.operation.name" = "chat",
            "gen_ai.provider.name" = semconv_provider(target.provider.format()),
            "gen_ai.request.model" = %target.model,
            "bulwark.target" = %target.label,
            "bulwark.hedge" = hedge,
            "http.response.status_code" = tracing::field::Empty,
            "error.type" = tracing::field::Empty,
            "bulwark.first_token_ms" = tracing::field::Empty,
        );
        if let Some(slot) = self.open.get_mut(who) {
            *slot = Some(OpenAttempt {
                started: Instant::now(),
                hedge,
                span: span.clone(),
            });
        }
        span
    }

    fn unix_at(&self, at: Instant) -> UnixMs {
        self.base.1 + at.saturating_duration_since(self.base.0).as_millis() as i64
    }

    /// Closes target `who`'s attempt: `error` is `None` when it answered.
    fn end(
        &mut self,
        who: usize,
        label: &str,
        first_token: Option<Duration>,
        error: Option<&UpstreamError>,
    ) {
        let Some(OpenAttempt {
            started,
            hedge,
            span,
        }) = self.open.get_mut(who).and_then(Option::take)
        else {
            return;
        };
        // Bulwark's own limits refused it before any call: the provider
        // never saw it, so it is no attempt on the provider.
        if error.is_some_and(|e| matches!(e.failure, UpstreamFailure::LimitReached)) {
            span.record("error.type", "not_sent");
            return;
        }
        let status = error.and_then(|e| match e.failure {
            UpstreamFailure::Status { status, .. } => Some(status),
            _ => None,
        });
        let record = AttemptRecord {
            target: label.to_string(),
            at: self.unix_at(started),
            latency_ms: millis(Instant::now().saturating_duration_since(started)),
            first_token_ms: first_token.map(millis),
            status: status.or(error.is_none().then_some(200)),
            error_class: error.map(|e| e.class().to_string()),
            hedge,
        };
        end_span(&span, &record);
        self.done.push(record);
    }

    /// Everything so far, with attempts still in flight closed as `class`
    /// (a hedge that lost the race, or a call the deadline cut short).
    fn snapshot(&self, targets: &[Target], class: &str) -> Vec<AttemptRecord> {
        let now = Instant::now();
        let mut all = self.done.clone();
        for (who, open) in self.open.iter().enumerate() {
            if let Some(open) = open {
                let record = AttemptRecord {
                    target: targets
                        .get(who)
                        .map(|t| t.label.clone())
                        .unwrap_or_default(),
                    at: self.unix_at(open.started),
                    latency_ms: millis(now.saturating_duration_since(open.started)),
                    first_token_ms: None,
                    status: None,
                    error_class: Some(class.to_string()),
                    hedge: open.hedge,
                };
                end_span(&open.span, &record);
                all.push(record);
            }
        }
        all
    }
}

/// Puts an attempt's outcome on its span. The span is entered to do so:
/// tracing-opentelemetry ends a span at its last exit, and the call it
/// instruments may have returned well before the attempt is booked (a
/// complete answer is read after its first token).
fn end_span(span: &Span, record: &AttemptRecord) {
    span.in_scope(|| {
        // As i64: tracing-opentelemetry turns unsigned values into strings.
        if let Some(status) = record.status {
            span.record("http.response.status_code", i64::from(status));
        }
        if let Some(ms) = record.first_token_ms {
            span.record("bulwark.first_token_ms", ms);
        }
        if let Some(class) = &record.error_class {
            span.record("error.type", class.as_str());
            span.record("otel.status_code", "error");
        }
    });
}

/// The API a target speaks, by the OpenTelemetry GenAI conventions'
/// well-known `gen_ai.provider.name` values; which provider it is stays in
/// `bulwark.target`.
fn semconv_provider(format: WireFormat) -> &'static str {
    match format {
        WireFormat::OpenAi => "openai",
        WireFormat::Anthropic => "anthropic",
        WireFormat::Gemini => "gcp.gemini",
    }
}

/// What the engine does after a failed attempt.
enum Step {
    Retry,
    Next,
    GiveUp,
}

/// An attempt's outcome: who made it, with the breaker ticket to report on.
struct Attempted {
    who: usize,
    ticket: Ticket,
    result: Result<(Answer, Duration), UpstreamError>,
}

/// The losing side of a hedge race that failed before the other finished.
struct LostRace {
    who: usize,
    ticket: Ticket,
    error: UpstreamError,
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
            if !fits(target, context_floor) {
                self.skip(target, "context window too small");
                continue;
            }
            let mut retries = 0;
            loop {
                if Instant::now() >= self.deadline {
                    return Err(self.deadline_exceeded());
                }
                let Some(ticket) = self.admit(target) else {
                    break;
                };
                if retries == 0 {
                    target
                        .state
                        .with_budget(|b| b.record_request(Instant::now()));
                }
                used[i] = true;
                let later = &plan[position + 1..];
                let hedge_to = if retries == 0 {
                    self.hedge_target(later, &used, context_floor)
                } else {
                    None
                };
                let may_wait = self.nothing_else_left(later, &used, context_floor);
                let (attempted, lost) = self.attempt_hedged(i, ticket, hedge_to, may_wait).await;
                if let Some(lost) = lost {
                    used[lost.who] = true;
                    if let Step::GiveUp =
                        self.fail(lost.who, lost.ticket, lost.error, &mut context_floor)
                    {
                        return Err(self.give_up());
                    }
                }
                used[attempted.who] = true;
                let error = match attempted.result {
                    Ok((answer, first_token)) => {
                        return Ok(self.serve(
                            attempted.who,
                            attempted.ticket,
                            answer,
                            first_token,
                            &plan,
                            &used,
                        ));
                    }
                    Err(error) => error,
                };
                let (who, hint) = (attempted.who, error.retry_after);
                match self.fail(who, attempted.ticket, error, &mut context_floor) {
                    Step::GiveUp => return Err(self.give_up()),
                    Step::Next => break,
                    Step::Retry if who != i => break, // the hedge failed too: both were tried
                    Step::Retry => {
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
                        tokio::time::sleep(wait).await;
                        // Paid after the wait: a breaker that opened meanwhile
                        // skips the target without spending the credit.
                        if target
                            .state
                            .with_breaker(|b| b.admit_preview(Instant::now()))
                            .is_some()
                        {
                            break;
                        }
                        if !target.state.with_budget(|b| b.try_withdraw(Instant::now())) {
                            self.events.emit(|| Event::RetryBudgetExhausted {
                                target: target.label.clone(),
                            });
                            break;
                        }
                        retries += 1;
                    }
                }
            }
        }
        Err(self.give_up())
    }

    /// Books a success and hands the answer over. A stream reports to the
    /// breaker when it ends, since it can still fail after its first token.
    fn serve(
        &mut self,
        who: usize,
        ticket: Ticket,
        answer: Answer,
        first_token: Duration,
        plan: &[usize],
        used: &[bool],
    ) -> Served<Answer> {
        let target = &self.route.targets[who];
        target.state.observe_first_token(first_token);
        self.log.end(who, &target.label, Some(first_token), None);
        let fallback = who != plan[0];
        self.events.emit(|| Event::Served {
            route: self.route.name.clone(),
            target: target.label.clone(),
            attempts: self.attempts,
            fallback,
        });
        let value = match answer {
            Answer::Complete(chunks) => {
                ticket.report(CallOutcome::Success {
                    latency: first_token,
                });
                Answer::Complete(chunks)
            }
            Answer::Stream(stream) => {
                let stream = report_at_end(stream, ticket, first_token);
                match self.route.mid_stream {
                    MidStream::Error => Answer::Stream(stream),
                    MidStream::Continue => {
                        let position = plan.iter().position(|&j| j == who).unwrap_or(plan.len());
                        let candidates = plan
                            .iter()
                            .skip(position + 1)
                            .copied()
                            .filter(|&j| !used[j])
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
                }
            }
        };
        Served {
            value,
            target: target.label.clone(),
            format: target.provider.format(),
            attempts: self.attempts,
            fallback,
            cache: None,
            degraded: None,
            attempt_log: self.log.snapshot(&self.route.targets, "cancelled"),
        }
    }

    /// Books a failed attempt (breaker, events, the failure list) and says
    /// what to do next, by the failure table.
    fn fail(
        &mut self,
        who: usize,
        ticket: Ticket,
        error: UpstreamError,
        context_floor: &mut Option<u64>,
    ) -> Step {
        let target = &self.route.targets[who];
        self.log.end(who, &target.label, None, Some(&error));
        let verdict = classify(&error);
        if matches!(error.failure, UpstreamFailure::Timeout) {
            // A hang is the slowest answer of all, for balancing.
            target
                .state
                .observe_timeout(self.route.timeouts.first_token);
        }
        ticket.report(if verdict.breaker_failure {
            CallOutcome::Failure
        } else {
            CallOutcome::Ignored
        });
        if verdict.misconfigured {
            tracing::error!(target = %target.label, "the provider refused this target ({}); check its key and model", error.message);
            self.events.emit(|| Event::Misconfigured {
                target: target.label.clone(),
            });
        }
        tracing::warn!(target = %target.label, class = error.class(), action = ?verdict.action, "attempt failed: {}", error.message);
        self.events.emit(|| Event::AttemptFailed {
            route: self.route.name.clone(),
            target: target.label.clone(),
            class: error.class(),
            action: verdict.action,
        });
        let window = target.context_window;
        self.failures.push(error);
        match verdict.action {
            Action::Retry => Step::Retry,
            Action::FailOver => Step::Next,
            Action::FailFast => Step::GiveUp,
            Action::FailOverToLargerContext => match window {
                Some(window) => {
                    *context_floor = Some(context_floor.map_or(window, |f| f.max(window)));
                    Step::Next
                }
                // Nothing is known to be larger: every target would refuse it.
                None => Step::GiveUp,
            },
        }
    }

    /// Asks the target's breaker for a call; `None` means skip it.
    fn admit(&mut self, target: &Target) -> Option<Ticket> {
        match target.state.admit(&target.label, self.events) {
            Ok(ticket) => Some(ticket),
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

    /// The next target a hedge could go to, if hedging is on.
    fn hedge_target(
        &self,
        later: &[usize],
        used: &[bool],
        context_floor: Option<u64>,
    ) -> Option<usize> {
        self.route.hedge_after?;
        let targets = &self.route.targets;
        later
            .iter()
            .copied()
            .find(|&j| !used[j] && fits(&targets[j], context_floor))
    }

    /// Whether no later target could take the request: then, and only then,
    /// it waits for a full target's concurrency slot.
    fn nothing_else_left(
        &self,
        later: &[usize],
        used: &[bool],
        context_floor: Option<u64>,
    ) -> bool {
        let now = Instant::now();
        later.iter().all(|&j| {
            let target = &self.route.targets[j];
            used[j]
                || !fits(target, context_floor)
                || target
                    .state
                    .with_breaker(|b| b.admit_preview(now))
                    .is_some()
        })
    }

    /// One attempt on target `i`, raced against a hedge on target `hedge_to`
    /// if `i` is slow to produce its first token. The first to produce
    /// content wins and the other is dropped, closing its connection.
    async fn attempt_hedged(
        &mut self,
        i: usize,
        ticket: Ticket,
        hedge_to: Option<usize>,
        may_wait: bool,
    ) -> (Attempted, Option<LostRace>) {
        let targets = &self.route.targets;
        let opener = self.opener();
        self.attempts += 1;
        let span = self.log.start(i, &targets[i], false);
        let delay = hedge_to.and_then(|_| self.route.hedge_delay(&targets[i]));
        let (Some(j), Some(delay)) = (hedge_to, delay) else {
            let opened = opener.open(&targets[i], may_wait).instrument(span).await;
            let result = self.finish(&targets[i], opened).await;
            return (
                Attempted {
                    who: i,
                    ticket,
                    result,
                },
                None,
            );
        };
        let primary = opener.open(&targets[i], may_wait).instrument(span);
        tokio::pin!(primary);
        tokio::select! {
            opened = &mut primary => {
                // Answered before a hedge was due: no hedge, nothing paid.
                let result = self.finish(&targets[i], opened).await;
                return (Attempted { who: i, ticket, result }, None);
            }
            () = tokio::time::sleep(delay) => {}
        }
        // The hedge is sent now, if its breaker admits it and the primary's
        // retry budget pays for it; otherwise the primary carries on alone.
        let hedge_ticket = match self.admit(&targets[j]) {
            Some(hedge_ticket)
                if targets[i]
                    .state
                    .with_budget(|b| b.try_withdraw(Instant::now())) =>
            {
                Some(hedge_ticket)
            }
            Some(_unpaid) => {
                self.events.emit(|| Event::RetryBudgetExhausted {
                    target: targets[i].label.clone(),
                });
                None
            }
            None => None,
        };
        let Some(hedge_ticket) = hedge_ticket else {
            let result = self.finish(&targets[i], primary.await).await;
            return (
                Attempted {
                    who: i,
                    ticket,
                    result,
                },
                None,
            );
        };
        self.attempts += 1;
        let hedge_span = self.log.start(j, &targets[j], true);
        self.events.emit(|| Event::Hedged {
            route: self.route.name.clone(),
            primary: targets[i].label.clone(),
            target: targets[j].label.clone(),
        });
        let second = opener.open(&targets[j], false).instrument(hedge_span);
        tokio::pin!(second);
        tokio::select! {
            opened = &mut primary => match opened {
                Ok(opened) => {
                    let result = self.finish(&targets[i], Ok(opened)).await;
                    (Attempted { who: i, ticket, result }, None)
                }
                Err(error) => {
                    let result = self.finish(&targets[j], second.await).await;
                    (Attempted { who: j, ticket: hedge_ticket, result }, Some(LostRace { who: i, ticket, error }))
                }
            },
            opened = &mut second => match opened {
                Ok(opened) => {
                    let result = self.finish(&targets[j], Ok(opened)).await;
                    (Attempted { who: j, ticket: hedge_ticket, result }, None)
                }
                Err(error) => {
                    let result = self.finish(&targets[i], primary.await).await;
                    (Attempted { who: i, ticket, result }, Some(LostRace { who: j, ticket: hedge_ticket, error }))
                }
            },
        }
    }

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
        // The provider's quotas: wait for room only if nothing else is left.
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
        let taken = loop {
            match target.state.take_quota(estimate) {
                Ok(taken) => break taken,
                Err(Refusal::Wait(wait)) if may_wait && Instant::now() + wait < self.deadline => {
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
        };
        let mut opened = self.open_with(target).await;
        match &mut opened {
            Ok(opened) => {
                opened.permit = Some(permit);
                opened.quota = taken.map(|at| (at, estimate));
            }
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
            let (mut stream, exhausted) = target
                .provider
                .stream(
                    self.request,
                    &target.model,
                    &target.label,
                    self.route.timeouts.stream_idle,
                )
                .await?;
            // The provider says its quota is used up: hold further requests
            // until it resets, rather than collect its 429s.
            if let Some(reset) = exhausted {
                target.state.pause_quota(reset);
            }
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
                                quota: None,
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
                let head = futures_util::stream::iter(opened.head.into_iter().map(Ok));
                let rest =
                    within_deadline(opened.rest, self.deadline, target.label.clone(), permit);
                let stream: ChunkStream = Box::pin(head.chain(rest));
                let stream = match opened.quota {
                    Some((at, estimate)) => {
                        correct_quota_at_end(stream, Arc::clone(&target.state), at, estimate)
                    }
                    None => stream,
                };
                Ok((Answer::Stream(stream), first_token))
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
                    Ok(Ok(())) => {
                        if let Some((at, estimate)) = opened.quota {
                            let used = chunks
                                .iter()
                                .rev()
                                .flat_map(|c| &c.events)
                                .filter_map(|e| match e {
                                    StreamEvent::Usage(u) => Some(Tokens {
                                        input: u.input_tokens,
                                        output: u.output_tokens,
                                    }),
                                    _ => None,
                                })
                                .next();
                            if let Some(used) = used {
                                target.state.correct_tokens(at, estimate, used);
                            }
                        }
                        Ok((Answer::Complete(chunks), first_token))
                    }
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
            attempt_log: self.log.snapshot(&self.route.targets, "timeout"),
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
                unavailable(last.to_api_error())
            }
            Some(last) => {
                let mut error = last.to_api_error();
                error.message = format!(
                    "every target of route `{}` failed ({} attempts){}",
                    self.route.name,
                    self.attempts,
                    self.summary()
                );
                unavailable(error)
            }
        };
        Failed {
            error,
            attempts: self.attempts,
            failures: self.failures.clone(),
            attempt_log: self.log.snapshot(&self.route.targets, "cancelled"),
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
        // Dropped with the stream; a reader that went away says nothing
        // about the provider, so the slot's default signal is `Ignore`.
        let mut permit = permit;
        let mut stream = stream;
        loop {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(item)) => {
                    if let (Err(error), Some(permit)) = (&item, permit.as_mut()) {
                        permit.signal = signal_for(error);
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
                    yield Err(UpstreamError::new(&target, UpstreamFailure::Timeout, "the request deadline passed while the answer was streaming"));
                    return;
                }
            }
        }
    })
}

/// The providers failed, not the request: to the client the service is
/// unavailable for now (503, with a hint of when to come back), unless the
/// failures were rate limits (429) or timeouts (504), which say more.
fn unavailable(mut error: ApiError) -> ApiError {
    if error.status == 502 {
        error.kind = ErrorKind::Overloaded;
        error.status = 503;
        error.retry_after = error.retry_after.or(Some(1));
    }
    error
}

/// Replaces a stream's token estimate by its real usage once it ends.
fn correct_quota_at_end(
    stream: ChunkStream,
    state: Arc<crate::route::TargetState>,
    at: Instant,
    estimate: Tokens,
) -> ChunkStream {
    Box::pin(async_stream::stream! {
        let mut stream = stream;
        let mut used = None;
        while let Some(item) = stream.next().await {
            if let Ok(chunk) = &item {
                for event in &chunk.events {
                    if let StreamEvent::Usage(u) = event {
                        used = Some(Tokens { input: u.input_tokens, output: u.output_tokens });
                    }
                }
            }
            yield item;
        }
        if let Some(used) = used {
            state.correct_tokens(at, estimate, used);
        }
    })
}

/// Whether `target` can take a prompt that was too long for a window of
/// `context_floor` tokens.
fn fits(target: &Target, context_floor: Option<u64>) -> bool {
    context_floor.is_none_or(|floor| target.context_window.is_some_and(|w| w > floor))
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
                let failed = classify(error).breaker_failure;
                ticket.report(if failed { CallOutcome::Failure } else { CallOutcome::Ignored });
            }
            yield item;
        }
        if let Some(ticket) = ticket {
            ticket.report(CallOutcome::Success { latency: first_token });
        }
    })
}
