//! Unary calls (embeddings, token counts) as the engine's operation: one
//! JSON request, one JSON answer. Each attempt takes a concurrency slot and
//! the target's quota as chat does, sends, and reads the answer whole
//! within `attempt_timeout`. There is no first token to wait for, so no
//! hedge either: a slow answer is bounded by `attempt_timeout` and the
//! deadline, then retried or failed over like any other failure.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use tracing::Instrument;

use crate::deadline::Deadline;
use crate::error::{ApiError, UpstreamError, UpstreamFailure};
use crate::events::{Event, EventBus};
use crate::resilience::breaker::CallOutcome;
use crate::resilience::classify::classify;
use crate::resilience::concurrency::Signal;
use crate::route::{Route, Target, Ticket, Tokens};
use crate::unary::Unary;

use super::attempt::{expired, slot, take_quota};
use super::hedge::{Attempted, LostRace};
use super::operation::Operation;
use super::plan::Plan;
use super::{Failed, Run, Served};

/// Answers a unary `operation` from `route`'s targets before `deadline`.
/// Targets whose API has no such endpoint are passed over; a route with
/// none that has is refused before any call (see [`serves_unary`]). A
/// target's call is built only when it is attempted: a request of many
/// inputs costs nothing on the targets never tried.
pub async fn run_unary(
    route: &Arc<Route>,
    operation: &Unary,
    deadline: Deadline,
    events: &EventBus,
) -> Result<Served<Value>, Failed> {
    if !serves_unary(route, operation) {
        return Err(Failed::before_any_attempt(ApiError::invalid(format!(
            "route `{}` has no target that serves {}",
            route.name,
            operation.name()
        ))));
    }
    let unary = UnaryRun { operation };
    Run::new(route, events, deadline)
        .within_deadline(&unary)
        .await
}

/// Whether some target of `route` can serve `operation`. Building a call
/// makes none of its bodies, so this is cheap.
pub fn serves_unary(route: &Route, operation: &Unary) -> bool {
    route.targets.iter().any(|target| {
        target
            .provider
            .unary_call(operation, &target.model)
            .is_some()
    })
}

struct UnaryRun<'a> {
    operation: &'a Unary,
}

impl Operation for UnaryRun<'_> {
    type Answer = Value;

    /// Passes over, before any call, the targets whose API has no such
    /// endpoint, and those whose own configuration makes the call
    /// impossible (a model name the API cannot take): that is the
    /// operator's mistake, so it is neither charged to the target's
    /// breaker nor answered to the client as its own.
    fn refuse_targets(&self, run: &mut Run<'_>, plan: &mut Plan) {
        let route = run.route;
        for position in 0..plan.len() {
            let Some(index) = plan.candidate(position) else {
                continue;
            };
            let target = &route.targets[index];
            match target.provider.unary_call(self.operation, &target.model) {
                None => {
                    run.events.emit(|| Event::Skipped {
                        route: route.name.clone(),
                        target: target.label.clone(),
                        reason: "unsupported",
                    });
                    plan.mark_used(index);
                }
                Some(Err(error)) => {
                    tracing::error!(target = %target.label, "this target cannot be called ({}); check its model", error.message);
                    run.events.emit(|| Event::Misconfigured {
                        target: target.label.clone(),
                    });
                    run.skip(target, "misconfigured");
                    plan.mark_used(index);
                }
                Some(Ok(_)) => {}
            }
        }
    }

    async fn attempt(
        &self,
        run: &mut Run<'_>,
        primary: usize,
        ticket: Ticket,
        _hedge: Option<usize>,
        may_wait: bool,
    ) -> (Attempted<Value>, Option<LostRace>) {
        let route = run.route;
        let target = &route.targets[primary];
        run.attempts += 1;
        let span = run.log.start(primary, target, false);
        let result = self
            .call(route, primary, run.deadline, may_wait)
            .instrument(span)
            .await;
        (
            Attempted {
                target: primary,
                ticket,
                result,
            },
            None,
        )
    }

    fn serve(
        &self,
        run: &mut Run<'_>,
        index: usize,
        ticket: Ticket,
        answer: Value,
        latency: Duration,
        plan: &Plan,
    ) -> Served<Value> {
        let fallback = run.served_by(index, latency, plan);
        ticket.report(CallOutcome::Success { latency });
        let route = run.route;
        let target = &route.targets[index];
        Served {
            value: answer,
            target: target.label.clone(),
            format: target.provider.format(),
            attempts: run.attempts,
            fallback,
            cache: None,
            degraded: None,
            attempt_log: run.log.snapshot(&route.targets, "cancelled"),
            dropped: Vec::new(),
        }
    }

    fn translated_for(&self, target: &Target) -> bool {
        target.provider.kind().is_cloud() || self.client_format() != target.provider.format()
    }
}

impl UnaryRun<'_> {
    fn client_format(&self) -> crate::api::WireFormat {
        match self.operation {
            Unary::Embeddings(_) => crate::api::WireFormat::OpenAi,
            Unary::CountTokens(_) => crate::api::WireFormat::Anthropic,
        }
    }

    /// One call on target `index`: a slot, the quota, the request, and its
    /// answer read whole within `attempt_timeout`. Returns the answer and
    /// how long it took.
    async fn call(
        &self,
        route: &Route,
        index: usize,
        deadline: Deadline,
        may_wait: bool,
    ) -> Result<(Value, Duration), UpstreamError> {
        let target = &route.targets[index];
        let call = match target.provider.unary_call(self.operation, &target.model) {
            Some(Ok(call)) => call,
            // `refuse_targets` passed such a target over before any attempt.
            Some(Err(error)) => {
                return Err(UpstreamError::new(
                    &target.label,
                    UpstreamFailure::Rejected(error.clone()),
                    error.message,
                ));
            }
            None => {
                return Err(UpstreamError::new(
                    &target.label,
                    UpstreamFailure::Rejected(ApiError::invalid(format!(
                        "this target does not serve {}",
                        self.operation.name()
                    ))),
                    format!("does not serve {}", self.operation.name()),
                ));
            }
        };
        let mut permit = slot(target, may_wait, deadline).await?;
        let estimate = Tokens {
            input: match self.operation {
                Unary::Embeddings(request) => request.estimated_tokens(),
                // A count is not billed in tokens; only its request counts.
                Unary::CountTokens(_) => 0,
            },
            output: 0,
        };
        take_quota(target, estimate, may_wait, deadline).await?;
        let started = Instant::now();
        let limit = route.policy.timeouts.attempt;
        let own_limit = started + limit;
        let sending = target.provider.unary(
            &call,
            self.operation.forwarded_headers(target.provider.format()),
            &target.label,
            route.policy.timeouts.stream_idle,
        );
        let result = match tokio::time::timeout_at(deadline.clip(own_limit), sending).await {
            Ok(Ok(answer)) => Ok((answer, started.elapsed())),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(expired(
                target,
                "answer",
                limit.min(deadline.budget()),
                deadline,
                Some(own_limit),
            )),
        };
        permit.signal = match &result {
            Ok(_) => Signal::Success,
            Err(error) => classify(error).concurrency,
        };
        result
    }
}
