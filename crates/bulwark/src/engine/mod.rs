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
//!
//! The loop is the same for every operation ([`operation`]): chat
//! ([`chat`]) with all of the above, and unary calls ([`unary`]:
//! embeddings, token counts), whose attempt sends one JSON request and
//! reads one JSON answer, with no stream, first token or hedge.

mod attempt;
mod chat;
mod hedge;
mod log;
mod operation;
mod outcome;
mod plan;
mod streams;
mod unary;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::api::ChatRequest;
use crate::deadline::Deadline;
use crate::error::UpstreamError;
use crate::events::{Event, EventBus};
use crate::resilience::classify::{Action, classify};
use crate::route::{Route, Target, Ticket};
use crate::wire::translate::{self, Prepared, Refusal};

pub(crate) use attempt::Call;
pub(crate) use streams::report_at_end;

pub use outcome::{Answer, Failed, Mode, Served};
pub use unary::{run_unary, serves_unary};

use chat::Chat;
use hedge::Attempted;
use log::AttemptLog;
use operation::Operation;
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
                target.provider.format_for(request, &target.model),
                target.traits,
                target.provider.dialect_of(&target.model).takes_top_k(),
                target.provider.default_max_tokens(),
                route.policy.translation,
            )
        })
        .collect();
    let chat = Chat {
        request,
        prepared: &prepared,
        mode,
    };
    Run::new(route, events, deadline)
        .within_deadline(&chat)
        .await
}

/// What one request's attempts share, whatever the operation: the route,
/// the deadline, and what has happened so far.
struct Run<'a> {
    /// Shared, so that a stream continued on another target can outlive
    /// this run.
    route: &'a Arc<Route>,
    /// Targets that cannot take the request, passed over before any call.
    refused: Vec<(String, Refusal)>,
    events: &'a EventBus,
    deadline: Deadline,
    attempts: u32,
    failures: Vec<UpstreamError>,
    /// Targets passed over without a call, and why.
    skipped: Vec<String>,
    log: AttemptLog,
}

impl<'a> Run<'a> {
    fn new(route: &'a Arc<Route>, events: &'a EventBus, deadline: Deadline) -> Run<'a> {
        Run {
            route,
            refused: Vec::new(),
            events,
            deadline,
            attempts: 0,
            failures: Vec::new(),
            skipped: Vec::new(),
            log: AttemptLog::new(route.targets.len()),
        }
    }

    /// Runs `operation` through the targets, never past the deadline.
    async fn within_deadline<O: Operation>(
        mut self,
        operation: &O,
    ) -> Result<Served<O::Answer>, Failed> {
        // Every wait inside is already clipped to the deadline; this is the
        // guarantee that nothing overlooked can hold a request past it.
        match tokio::time::timeout_at(self.deadline.at(), self.try_targets(operation)).await {
            Ok(result) => result,
            Err(_) => Err(self.deadline_exceeded()),
        }
    }

    /// Tries the targets in the plan's order until one answers or the
    /// failure table says to stop.
    async fn try_targets<O: Operation>(
        &mut self,
        operation: &O,
    ) -> Result<Served<O::Answer>, Failed> {
        let route = self.route;
        let mut plan = Plan::new(route);
        operation.refuse_targets(self, &mut plan);
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
                let Some(ticket) = self.admit(target).await else {
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
                let (attempted, lost) = operation
                    .attempt(self, index, ticket, hedge, may_wait)
                    .await;
                if let Some(lost) = lost {
                    plan.mark_used(lost.target);
                    let translated = operation.translated_for(&route.targets[lost.target]);
                    if self.fail(lost.target, lost.ticket, lost.error, translated, &mut plan)
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
                        return Ok(operation.serve(
                            self,
                            answered_by,
                            ticket,
                            answer,
                            first_token,
                            &plan,
                        ));
                    }
                    Err(error) => error,
                };
                let hint = error.retry_after;
                let translated = operation.translated_for(&route.targets[answered_by]);
                match self.fail(answered_by, ticket, error, translated, &mut plan) {
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

    /// Books a success on target `index`: its first-token time, the
    /// attempt log, the `Served` event. Says whether it was a fallback.
    fn served_by(&mut self, index: usize, first_token: Duration, plan: &Plan) -> bool {
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
        fallback
    }

    /// Books a failed attempt (breaker, events, the failure list) and says
    /// what to do next, by the failure table. A prompt too long for this
    /// target moves on only if a larger window may exist. `translated`:
    /// the target was sent a translation of the client's request.
    fn fail(
        &mut self,
        index: usize,
        ticket: Ticket,
        error: UpstreamError,
        translated: bool,
        plan: &mut Plan,
    ) -> Action {
        let route = self.route;
        let target = &route.targets[index];
        let mut error = error;
        error.translated = translated;
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

    /// Asks the target's breaker for a call; `None` means skip it.
    async fn admit(&mut self, target: &Target) -> Option<Ticket> {
        match target.state.admit(&target.label, self.events).await {
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
}
