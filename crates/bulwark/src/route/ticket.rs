//! A target's breaker asked for one call, and the call's verdict given
//! back: locally, and to the other instances when state is shared.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::TargetState;
use crate::events::EventBus;
use crate::resilience::breaker::{Admission, CallOutcome};
use crate::shared::SharedError;
use crate::shared_breakers::ProbeLock;

impl TargetState {
    /// Asks the breaker for a call; `Err` says how long it stays open. A
    /// half-open probe goes out only with the shared probe lock, so that
    /// one instance probes for all; another's probe counts as open here.
    pub async fn admit(
        self: &Arc<Self>,
        label: &str,
        events: &EventBus,
    ) -> Result<Ticket, Duration> {
        let now = Instant::now();
        let (admission, transition) = self.with_breaker(|b| b.admit(now))?;
        events.breaker(label, transition);
        let mut ticket = Ticket {
            state: Arc::clone(self),
            label: label.to_string(),
            events: events.clone(),
            admission,
            reported: false,
            probe_lock: None,
        };
        if let (Admission::Probe(_), Some(shared)) = (admission, &self.shared) {
            let ttl = self.with_breaker(|b| b.probe_timeout());
            let lock = ProbeLock::new(shared, ttl);
            match crate::shared_breakers::take_probe(shared, label, &lock).await {
                Ok(true) => ticket.probe_lock = Some(lock),
                Ok(false) => {
                    // Dropped unreported, the probe slot is given back.
                    drop(ticket);
                    return Err(Duration::ZERO);
                }
                // Redis unreachable: this instance probes on its own.
                Err(SharedError::Down) => {}
                // Timed out or lost mid-call: Redis may have taken the
                // lock, so it is given back with the verdict all the same.
                Err(_) => ticket.probe_lock = Some(lock),
            }
        }
        Ok(ticket)
    }
}

/// Permission from a target's breaker for one call. Reporting the outcome
/// uses it up; dropped unreported (a call cancelled by a hedge, a deadline or
/// a client that went away), it reports the call as neither success nor
/// failure, so that a half-open probe is never lost.
#[derive(Debug)]
pub struct Ticket {
    state: Arc<TargetState>,
    label: String,
    events: EventBus,
    admission: Admission,
    reported: bool,
    /// The shared probe lock this probe holds (or may hold), given back
    /// with its verdict (or its loss), so the next half-open round finds
    /// it free.
    probe_lock: Option<ProbeLock>,
}

impl Ticket {
    pub fn report(mut self, outcome: CallOutcome) {
        self.record(outcome);
    }

    fn record(&mut self, outcome: CallOutcome) {
        if std::mem::replace(&mut self.reported, true) {
            return;
        }
        let now = Instant::now();
        let transition = self
            .state
            .with_breaker(|b| b.record(now, self.admission, outcome));
        if let Some(shared) = &self.state.shared {
            if let Some(change) = transition {
                crate::shared_breakers::announce(shared, &self.label, change);
            }
            if let Some(lock) = self.probe_lock.take() {
                crate::shared_breakers::release_probe(shared, &self.label, lock);
            }
        }
        self.events.breaker(&self.label, transition);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.record(CallOutcome::Ignored);
    }
}
