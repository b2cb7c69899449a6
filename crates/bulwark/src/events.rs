//! What the engine decided and why, as events others subscribe to (metrics,
//! incidents, logs). Sending never waits: with no subscriber, or a slow
//! one, events are dropped rather than holding up a request.

use std::time::Duration;

use tokio::sync::broadcast;

use crate::resilience::breaker::BreakerState;
use crate::resilience::classify::Action;

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// One attempt on a target failed, and what the engine does next.
    AttemptFailed {
        route: String,
        target: String,
        /// Low-cardinality failure class, e.g. `overloaded`, `timeout`.
        class: &'static str,
        action: Action,
    },
    /// A target's circuit breaker changed state.
    Breaker {
        target: String,
        from: BreakerState,
        to: BreakerState,
        open_for: Option<Duration>,
    },
    /// A target was passed over without a call.
    Skipped {
        route: String,
        target: String,
        reason: &'static str,
    },
    /// A target's retry budget was spent; the engine moved on instead.
    RetryBudgetExhausted { target: String },
    /// The provider refused the gateway's credentials for this target.
    Misconfigured { target: String },
    /// A hedge attempt was started on `target` while `primary` was slow.
    Hedged {
        route: String,
        primary: String,
        target: String,
    },
    /// A stream broke after content was sent, and `to` continues it.
    Continued {
        route: String,
        from: String,
        to: String,
        /// Features of the client's request `to` was sent without (the
        /// client's `x-bulwark-dropped` was already sent with the stream's
        /// head, for the first target).
        dropped: Vec<&'static str>,
    },
    /// Every target failed and the answer was degraded (`how`: stale-cache,
    /// a degrade target, static).
    Degraded { route: String, how: String },
    /// The route's cache was consulted: `hit`, `miss` or `stale`.
    Cache { route: String, status: &'static str },
    /// A request was shed by the route's admission queue.
    Shed { route: String },
    /// A request got its turn in the route's admission queue after `waited`.
    Admitted { route: String, waited: Duration },
    /// A request was answered, by which target and after how many attempts.
    Served {
        route: String,
        target: String,
        attempts: u32,
        fallback: bool,
    },
}

#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            sender: broadcast::channel(1024).0,
        }
    }
}

impl EventBus {
    /// Sends the event built by `make`, which only runs if someone listens.
    pub fn emit(&self, make: impl FnOnce() -> Event) {
        if self.sender.receiver_count() > 0 {
            let _ = self.sender.send(make());
        }
    }

    /// Logs and publishes a breaker's state change, if there was one.
    pub fn breaker(
        &self,
        target: &str,
        transition: Option<crate::resilience::breaker::Transition>,
    ) {
        if let Some(t) = transition {
            tracing::info!(target = %target, from = t.from.as_str(), to = t.to.as_str(), "circuit breaker changed state");
            self.emit(|| Event::Breaker {
                target: target.to_string(),
                from: t.from,
                to: t.to,
                open_for: t.open_for,
            });
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }
}
