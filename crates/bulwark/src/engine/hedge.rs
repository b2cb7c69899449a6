//! Hedging: an attempt that is slow to produce its first token races a
//! second attempt on the next target. A model that is thinking has
//! produced its first token, even if the client is not shown its thinking:
//! no hedge is sent. Once both run, the first to commit (`Call::open`)
//! wins; the other is dropped, closing its connection.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::time::Instant;
use tracing::Instrument;

use crate::error::UpstreamError;
use crate::events::Event;
use crate::route::Ticket;

use super::{Answer, Chat, Run};

/// An attempt's outcome: on which target, with the breaker ticket to report on.
pub(super) struct Attempted<A> {
    pub(super) target: usize,
    pub(super) ticket: Ticket,
    pub(super) result: Result<(A, std::time::Duration), UpstreamError>,
}

/// The losing side of a hedge race that failed before the other finished.
pub(super) struct LostRace {
    pub(super) target: usize,
    pub(super) ticket: Ticket,
    pub(super) error: UpstreamError,
}

impl Chat<'_> {
    /// One attempt on target `primary`, raced against a hedge on target
    /// `hedge` if `primary` is slow to produce its first token.
    pub(super) async fn attempt_hedged(
        &self,
        run: &mut Run<'_>,
        primary: usize,
        ticket: Ticket,
        hedge: Option<usize>,
        may_wait: bool,
    ) -> (Attempted<Answer>, Option<LostRace>) {
        let route = run.route;
        let targets = &route.targets;
        let deadline = run.deadline;
        let call = self.call_for(route, deadline, primary);
        let hedge_call = hedge.map(|index| self.call_for(route, deadline, index));
        run.attempts += 1;
        let span = run.log.start(primary, &targets[primary], false);
        let delay = hedge.and_then(|_| route.hedge_delay(&targets[primary]));
        let (Some(hedge), Some(delay)) = (hedge, delay) else {
            let opened = call
                .open(&targets[primary], may_wait, None)
                .instrument(span)
                .await;
            let result = call.finish(&targets[primary], opened).await;
            return (
                Attempted {
                    target: primary,
                    ticket,
                    result,
                },
                None,
            );
        };
        let alive = AtomicBool::new(false);
        let first = call
            .open(&targets[primary], may_wait, Some(&alive))
            .instrument(span);
        tokio::pin!(first);
        tokio::select! {
            opened = &mut first => {
                // Answered before a hedge was due: no hedge, nothing paid.
                let result = call.finish(&targets[primary], opened).await;
                return (Attempted { target: primary, ticket, result }, None);
            }
            () = tokio::time::sleep(delay) => {}
        }
        // The hedge is sent now, if its breaker admits it and the primary's
        // retry budget pays for it; otherwise the primary carries on alone.
        // So it does while it is thinking where this client cannot see it:
        // it is answering, and a hedge would only pay for the same work
        // twice.
        let hedge_ticket = if alive.load(Ordering::Relaxed) {
            None
        } else {
            match run.admit(&targets[hedge]).await {
                Some(hedge_ticket)
                    if targets[primary]
                        .state
                        .with_budget(|b| b.try_withdraw(Instant::now())) =>
                {
                    Some(hedge_ticket)
                }
                Some(_unpaid) => {
                    run.events.emit(|| Event::RetryBudgetExhausted {
                        target: targets[primary].label.clone(),
                    });
                    None
                }
                None => None,
            }
        };
        let Some(hedge_ticket) = hedge_ticket else {
            let result = call.finish(&targets[primary], first.await).await;
            return (
                Attempted {
                    target: primary,
                    ticket,
                    result,
                },
                None,
            );
        };
        run.attempts += 1;
        let hedge_span = run.log.start(hedge, &targets[hedge], true);
        run.events.emit(|| Event::Hedged {
            route: route.name.clone(),
            primary: targets[primary].label.clone(),
            target: targets[hedge].label.clone(),
        });
        let hedge_call = hedge_call.unwrap_or(call);
        let second = hedge_call
            .open(&targets[hedge], false, None)
            .instrument(hedge_span);
        tokio::pin!(second);
        tokio::select! {
            opened = &mut first => match opened {
                Ok(opened) => {
                    let result = call.finish(&targets[primary], Ok(opened)).await;
                    (Attempted { target: primary, ticket, result }, None)
                }
                Err(error) => {
                    let result = hedge_call.finish(&targets[hedge], second.await).await;
                    (
                        Attempted { target: hedge, ticket: hedge_ticket, result },
                        Some(LostRace { target: primary, ticket, error }),
                    )
                }
            },
            opened = &mut second => match opened {
                Ok(opened) => {
                    let result = hedge_call.finish(&targets[hedge], Ok(opened)).await;
                    (Attempted { target: hedge, ticket: hedge_ticket, result }, None)
                }
                Err(error) => {
                    let result = call.finish(&targets[primary], first.await).await;
                    (
                        Attempted { target: primary, ticket, result },
                        Some(LostRace { target: hedge, ticket: hedge_ticket, error }),
                    )
                }
            },
        }
    }
}
