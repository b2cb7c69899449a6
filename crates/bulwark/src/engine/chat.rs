//! Chat as the engine's operation: the request translated per target, a
//! stream or a complete answer, hedges, and a broken stream continued.

use std::sync::Arc;
use std::time::Duration;

use crate::api::ChatRequest;
use crate::continuation::{Candidate, Continuation, continue_on_failure};
use crate::deadline::Deadline;
use crate::events::Event;
use crate::resilience::breaker::CallOutcome;
use crate::route::{MidStream, Route, Target, Ticket};
use crate::wire::translate::{Prepared, Refusal};

use super::hedge::{Attempted, LostRace};
use super::operation::Operation;
use super::plan::Plan;
use super::{Answer, Call, Mode, Run, Served, report_at_end};

pub(super) struct Chat<'a> {
    pub(super) request: &'a ChatRequest,
    /// Per target, in the route's order: the request as translated for it,
    /// or why it cannot take the request.
    pub(super) prepared: &'a [Result<Prepared, Refusal>],
    pub(super) mode: Mode,
}

impl Operation for Chat<'_> {
    type Answer = Answer;

    fn refuse_targets(&self, run: &mut Run<'_>, plan: &mut Plan) {
        for position in 0..plan.len() {
            let Some(index) = plan.candidate(position) else {
                continue;
            };
            if let Some(Err(refusal)) = self.prepared.get(index) {
                let target = &run.route.targets[index];
                tracing::debug!(target = %target.label, "the target cannot take this request: {}", refusal.describe());
                run.events.emit(|| Event::Skipped {
                    route: run.route.name.clone(),
                    target: target.label.clone(),
                    reason: "untranslatable",
                });
                run.refused.push((target.label.clone(), refusal.clone()));
                plan.mark_used(index);
            }
        }
    }

    async fn attempt(
        &self,
        run: &mut Run<'_>,
        primary: usize,
        ticket: Ticket,
        hedge: Option<usize>,
        may_wait: bool,
    ) -> (Attempted<Answer>, Option<LostRace>) {
        self.attempt_hedged(run, primary, ticket, hedge, may_wait)
            .await
    }

    /// A stream reports to the breaker when it ends, since it can still
    /// fail after its first token.
    fn serve(
        &self,
        run: &mut Run<'_>,
        index: usize,
        ticket: Ticket,
        answer: Answer,
        first_token: Duration,
        plan: &Plan,
    ) -> Served<Answer> {
        let fallback = run.served_by(index, first_token, plan);
        let route = run.route;
        let target = &route.targets[index];
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
                            candidates: self.continuations(run, plan.untried_after(index)),
                            deadline: run.deadline,
                            events: run.events.clone(),
                            served: index,
                        },
                    )),
                }
            }
        };
        Served {
            value,
            target: target.label.clone(),
            format: target.provider.format_for(self.request, &target.model),
            attempts: run.attempts,
            fallback,
            cache: None,
            degraded: None,
            attempt_log: run.log.snapshot(&route.targets, "cancelled"),
            dropped: match self.prepared.get(index) {
                Some(Ok(prepared)) => prepared.dropped.clone(),
                _ => Vec::new(),
            },
        }
    }

    /// The client's format is not the target's own, or the target is a
    /// cloud's. A request built in code (no client body) is the client's
    /// own in every format.
    fn translated_for(&self, target: &Target) -> bool {
        target.provider.kind().is_cloud()
            || self.request.source.as_ref().is_some_and(|source| {
                source.format != target.provider.format_for(self.request, &target.model)
            })
    }
}

impl<'a> Chat<'a> {
    /// The targets that may continue a broken stream, each with the request
    /// as translated for it: a continuation is sent what a first attempt
    /// there would have been. A target that cannot take the request is
    /// left out.
    fn continuations(&self, run: &Run<'_>, untried: Vec<usize>) -> Vec<Candidate> {
        untried
            .into_iter()
            .filter_map(|index| {
                let target = &run.route.targets[index];
                if !target
                    .provider
                    .dialect_of(&target.model)
                    .continues_prefill()
                {
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

    /// An attempt on target `index` of `route`, with the request as
    /// translated for it.
    pub(super) fn call_for<'c>(
        &'c self,
        route: &'c Route,
        deadline: Deadline,
        index: usize,
    ) -> Call<'c> {
        let prepared: &'c [Result<Prepared, Refusal>] = self.prepared;
        let request = match prepared.get(index) {
            Some(Ok(Prepared {
                request: Some(translated),
                ..
            })) => translated,
            _ => self.request,
        };
        Call {
            route,
            request,
            deadline,
            mode: self.mode,
        }
    }
}
