//! Runs one request through its route's targets. For every failure it asks
//! the failure table (`resilience::classify`) whether to retry the same
//! target, move on, or give up, and it never lets the request run past its
//! deadline.
//!
//! Per attempt:
//! 1. skip the target without a call if its breaker is open ([`plan`] keeps
//!    the order, the targets used and the context-window floor);
//! 2. send, and wait for the first token, content or thinking
//!    (`first_token_timeout`, [`attempt`]), then for the first event the
//!    client is shown; with `hedge_after`, a second attempt starts on the
//!    next target if the first has produced no token yet, and the first to
//!    show the client something wins ([`hedge`]);
//! 3. for a complete answer, read the rest (`attempt_timeout`);
//! 4. on failure: retry the same target after a backoff or the server's hint
//!    (within the retry budget and the deadline), or fail over, or stop
//!    ([`outcome`] words the final error).
//!
//! A stream is handed to the caller only once its first content event has
//! arrived (or its first thinking, for a client relayed the provider's own
//! events, which shows it), so a target that fails before the client saw
//! anything is replaced without the client noticing ([`streams`] wraps what
//! is handed over). A
//! complete answer is buffered whole, so even a stream that breaks halfway
//! is replaced unseen. Every attempt is logged and traced ([`log`]).

mod attempt;
mod hedge;
mod log;
mod outcome;
mod plan;
mod streams;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::api::ChatRequest;
use crate::continuation::{Candidate, Continuation, continue_on_failure};
use crate::deadline::Deadline;
use crate::error::UpstreamError;
use crate::events::{Event, EventBus};
use crate::resilience::breaker::CallOutcome;
use crate::resilience::classify::{Action, classify};
use crate::route::{MidStream, Route, Target, Ticket};
use crate::wire::translate::{self, Prepared, Refusal};

pub(crate) use attempt::Call;
pub(crate) use streams::report_at_end;

pub use outcome::{Answer, Failed, Mode, Served};

use hedge::Attempted;
use log::AttemptLog;
use plan::Plan;

/// Answers `request` from `route`'s targets before `deadline`.
pub async fn run(
    route: &Arc<Route>,
    request: &ChatRequest,
    deadline: Deadline,
    mode: Mode,
    events: &EventBus,
) -> Result<Served<Answer>, Failed> {
    let prepared: Vec<Result<Prepared, Refusal>> = route
        .targets
        .iter()
        .map(|target| {
            translate::prepare(
                request,
                target.provider.format(),
                target.traits,
                target.provider.dialect().takes_top_k(),
                target.provider.default_max_tokens(),
                route.policy.translation,
            )
        })
        .collect();
    let mut run = Run {
        route,
        request,
        prepared: &prepared,
        refused: Vec::new(),
        mode,
        events,
        deadline,
        attempts: 0,
        failures: Vec::new(),
        skipped: Vec::new(),
        log: AttemptLog::new(route.targets.len()),
    };
    // Every wait inside is already clipped to the deadline; this is the
    // guarantee that nothing overlooked can hold a request past it.
    match tokio::time::timeout_at(deadline.at(), run.try_targets()).await {
        Ok(result) => result,
        Err(_) => Err(run.deadline_exceeded()),
    }
}

struct Run<'a> {
    /// Shared, so that a stream continued on another target can outlive
    /// this run.
    route: &'a Arc<Route>,
    request: &'a ChatRequest,
    /// Per target, in the route's order: the request as translated for it,
    /// or why it cannot take the request.
    prepared: &'a [Result<Prepared, Refusal>],
    /// Targets that cannot take the request, passed over before any call.
    refused: Vec<(String, Refusal)>,
    mode: Mode,
    events: &'a EventBus,
    deadline: Deadline,
    attempts: u32,
    failures: Vec<UpstreamError>,
    /// Targets passed over without a call, and why.
    skipped: Vec<String>,
    log: AttemptLog,
}

impl Run<'_> {
    /// Tries the targets in the plan's order until one answers or the
    /// failure table says to stop.
    async fn try_targets(&mut self) -> Result<Served<Answer>, Failed> {
        let route = self.route;
        let mut plan = Plan::new(route);
        self.refuse_untranslatable(&mut plan);
        for position in 0..plan.len() {
            let Some(index) = plan.candidate(position) else {
                continue;
            };
            let target = &route.targets[index];
            if !plan.fits(target) {
                self.skip(target, "context window too small");
                continue;
            }
            let mut retries = 0;
            loop {
                if self.deadline.passed() {
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
                plan.mark_used(index);
                // Hedges go out on first attempts only: a retry is already
                // a second try.
                let hedge = if retries == 0 {
                    plan.hedge_target(route, position)
                } else {
                    None
                };
                let may_wait = plan.nothing_else_left(route, position);
                let (attempted, lost) = self.attempt_hedged(index, ticket, hedge, may_wait).await;
                if let Some(lost) = lost {
                    plan.mark_used(lost.target);
                    if self.fail(lost.target, lost.ticket, lost.error, &mut plan)
                        == Action::FailFast
                    {
                        return Err(self.give_up());
                    }
                }
                plan.mark_used(attempted.target);
                let Attempted {
                    target: answered_by,
                    ticket,
                    result,
                } = attempted;
                let error = match result {
                    Ok((answer, first_token)) => {
                        return Ok(self.serve(answered_by, ticket, answer, first_token, &plan));
                    }
                    Err(error) => error,
                };
                let hint = error.retry_after;
                match self.fail(answered_by, ticket, error, &mut plan) {
                    Action::FailFast => return Err(self.give_up()),
                    Action::FailOver | Action::FailOverToLargerContext => break,
                    // The hedge failed too: both were tried.
                    Action::Retry if answered_by != index => break,
                    Action::Retry => {
                        if retries >= route.policy.retry.max_retries {
                            break;
                        }
                        let Some(wait) = self.retry_wait(retries, hint) else {
                            break;
                        };
                        tokio::time::sleep(wait).await;
                        if !self.pay_for_retry(target) {
                            break;
                        }
                        retries += 1;
                    }
                }
            }
        }
        Err(self.give_up())
    }

    /// How long to wait before retrying the same target, or `None` if a
    /// retry would not fit.
    fn retry_wait(&self, retries: u32, hint: Option<Duration>) -> Option<Duration> {
        let backoff = self.route.policy.retry.backoff;
        let wait = match hint {
            // A long hint means this target is out for a while.
            Some(hint) if hint > backoff.cap => return None,
            Some(hint) => hint,
            None => backoff.delay(retries, fastrand::f64()),
        };
        self.deadline.leaves_room_for(wait).then_some(wait)
    }

    /// Takes a retry from the target's budget. Paid after the wait: a
    /// breaker that opened meanwhile skips the target without spending the
    /// credit.
    fn pay_for_retry(&self, target: &Target) -> bool {
        if target
            .state
            .with_breaker(|b| b.admit_preview(Instant::now()))
            .is_some()
        {
            return false;
        }
        if !target.state.with_budget(|b| b.try_withdraw(Instant::now())) {
            self.events.emit(|| Event::RetryBudgetExhausted {
                target: target.label.clone(),
            });
            return false;
        }
        true
    }

    /// Books a success and hands the answer over. A stream reports to the
    /// breaker when it ends, since it can still fail after its first token.
    fn serve(
        &mut self,
        index: usize,
        ticket: Ticket,
        answer: Answer,
        first_token: Duration,
        plan: &Plan,
    ) -> Served<Answer> {
        let route = self.route;
        let target = &route.targets[index];
        target.state.observe_first_token(first_token);
        self.log.end(index, &target.label, Some(first_token), None);
        let fallback = plan.first() != Some(index);
        self.events.emit(|| Event::Served {
            route: route.name.clone(),
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
                match route.policy.mid_stream {
                    MidStream::Error => Answer::Stream(stream),
                    MidStream::Continue => Answer::Stream(continue_on_failure(
                        stream,
                        Continuation {
                            route: Arc::clone(route),
                            request: self.request.clone(),
                            candidates: self.continuations(plan.untried_after(index)),
                            deadline: self.deadline,
                            events: self.events.clone(),
                            served: index,
                        },
                    )),
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
            attempt_log: self.log.snapshot(&route.targets, "cancelled"),
            dropped: match self.prepared.get(index) {
                Some(Ok(prepared)) => prepared.dropped.clone(),
                _ => Vec::new(),
            },
        }
    }

    /// Books a failed attempt (breaker, events, the failure list) and says
    /// what to do next, by the failure table. A prompt too long for this
    /// target moves on only if a larger window may exist.
    fn fail(
        &mut self,
        index: usize,
        ticket: Ticket,
        error: UpstreamError,
        plan: &mut Plan,
    ) -> Action {
        let route = self.route;
        let target = &route.targets[index];
        let mut error = error;
        error.translated = self.translated_for(target);
        self.log.end(index, &target.label, None, Some(&error));
        let verdict = classify(&error);
        if matches!(error.failure, crate::error::UpstreamFailure::Timeout) {
            // A hang is the slowest answer of all, for balancing.
            target
                .state
                .observe_timeout(route.policy.timeouts.first_token);
        }
        ticket.report(verdict.breaker_outcome());
        if verdict.misconfigured {
            tracing::error!(target = %target.label, "the provider refused this target ({}); check its key and model", error.message);
            self.events.emit(|| Event::Misconfigured {
                target: target.label.clone(),
            });
        }
        tracing::warn!(target = %target.label, class = verdict.class, action = ?verdict.action, "attempt failed: {}", error.message);
        self.events.emit(|| Event::AttemptFailed {
            route: route.name.clone(),
            target: target.label.clone(),
            class: verdict.class,
            action: verdict.action,
        });
        self.failures.push(error);
        match (verdict.action, target.context_window) {
            (Action::FailOverToLargerContext, Some(window)) => {
                plan.raise_context_floor(window);
                Action::FailOverToLargerContext
            }
            // Nothing is known to be larger: every target would refuse it.
            (Action::FailOverToLargerContext, None) => Action::FailFast,
            (action, _) => action,
        }
    }

    /// Whether `target` is sent a translation: the client's format is not
    /// its own. A request built in code (no client body) is the client's
    /// own in every format.
    fn translated_for(&self, target: &Target) -> bool {
        self.request
            .source
            .as_ref()
            .is_some_and(|source| source.format != target.provider.format())
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

    /// Passes over, before any call, every target that cannot take the
    /// request: no breaker, quota, slot or retry is spent on it.
    fn refuse_untranslatable(&mut self, plan: &mut Plan) {
        for position in 0..plan.len() {
            let Some(index) = plan.candidate(position) else {
                continue;
            };
            if let Some(Err(refusal)) = self.prepared.get(index) {
                let target = &self.route.targets[index];
                tracing::debug!(target = %target.label, "the target cannot take this request: {}", refusal.describe());
                self.events.emit(|| Event::Skipped {
                    route: self.route.name.clone(),
                    target: target.label.clone(),
                    reason: "untranslatable",
                });
                self.refused.push((target.label.clone(), refusal.clone()));
                plan.mark_used(index);
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
}

impl<'a> Run<'a> {
    /// The targets that may continue a broken stream, each with the request
    /// as translated for it: a continuation is sent what a first attempt
    /// there would have been. A target that cannot take the request is
    /// left out.
    fn continuations(&self, untried: Vec<usize>) -> Vec<Candidate> {
        untried
            .into_iter()
            .filter_map(|index| {
                let target = &self.route.targets[index];
                if !target.provider.dialect().continues_prefill() {
                    return None;
                }
                match self.prepared.get(index) {
                    Some(Ok(prepared)) => Some(Candidate {
                        index,
                        request: prepared.request.clone(),
                        dropped: prepared.dropped.clone(),
                        translated: self.translated_for(target),
                    }),
                    Some(Err(_)) => None,
                    None => Some(Candidate {
                        index,
                        request: None,
                        dropped: Vec::new(),
                        translated: self.translated_for(target),
                    }),
                }
            })
            .collect()
    }

    /// An attempt on target `index`, with the request as translated for it.
    fn call_for(&self, index: usize) -> Call<'a> {
        let prepared: &'a [Result<Prepared, Refusal>] = self.prepared;
        let request = match prepared.get(index) {
            Some(Ok(Prepared {
                request: Some(translated),
                ..
            })) => translated,
            _ => self.request,
        };
        Call {
            route: self.route.as_ref(),
            request,
            deadline: self.deadline,
            mode: self.mode,
        }
    }
}
