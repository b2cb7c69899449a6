//! A request's deadline: fixed once, when the request arrives, and carried
//! down through admission, every attempt and every degrade step, so that
//! time spent in one stage is gone from the next.
//!
//! It reads tokio's clock, so that tests with paused time see queueing,
//! backoff and timeouts on one consistent clock.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Instant,
    /// The whole allowance, as the error message states it.
    budget: Duration,
    /// The caller asked for less than the route allows: when this deadline
    /// cuts an attempt short, it was the caller's choice, not the
    /// provider's failure.
    set_by_caller: bool,
}

impl Deadline {
    /// Starts the clock now: the route's limit, shortened (never lengthened)
    /// by the caller's own.
    pub fn start(route_limit: Duration, caller: Option<Duration>) -> Deadline {
        let budget = caller.map_or(route_limit, |asked| asked.min(route_limit));
        Deadline {
            at: Instant::now() + budget,
            budget,
            set_by_caller: budget < route_limit,
        }
    }

    pub fn at(self) -> Instant {
        self.at
    }

    pub fn budget(self) -> Duration {
        self.budget
    }

    pub fn remaining(self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    pub fn passed(self) -> bool {
        Instant::now() >= self.at
    }

    /// Whether waiting `wait` from now still ends before the deadline.
    pub fn leaves_room_for(self, wait: Duration) -> bool {
        Instant::now() + wait < self.at
    }

    /// Whether the caller chose this deadline (shorter than the route's).
    pub fn set_by_caller(self) -> bool {
        self.set_by_caller
    }

    /// Whether a wait that Bulwark would have ended at `own_limit` (a first
    /// token or attempt timeout) was instead cut by the caller's deadline.
    pub fn cuts_short(self, own_limit: Instant) -> bool {
        self.set_by_caller && self.at < own_limit
    }

    /// `until`, or the deadline if that comes first.
    pub fn clip(self, until: Instant) -> Instant {
        until.min(self.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_caller_can_shorten_the_route_limit_but_never_lengthen_it() {
        let route = Duration::from_secs(10);
        assert_eq!(Deadline::start(route, None).budget(), route);
        assert_eq!(
            Deadline::start(route, Some(Duration::from_secs(2))).budget(),
            Duration::from_secs(2)
        );
        assert_eq!(
            Deadline::start(route, Some(Duration::from_secs(60))).budget(),
            route
        );
    }

    #[tokio::test(start_paused = true)]
    async fn time_spent_is_gone_from_what_remains() {
        let deadline = Deadline::start(Duration::from_secs(10), None);
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(deadline.remaining(), Duration::from_secs(6));
        assert!(deadline.leaves_room_for(Duration::from_secs(5)));
        assert!(!deadline.leaves_room_for(Duration::from_secs(6)));
        assert!(!deadline.passed());
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(deadline.passed());
        assert_eq!(deadline.remaining(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn only_a_deadline_shorter_than_the_routes_is_the_callers() {
        let route = Duration::from_secs(10);
        let own = Deadline::start(route, None);
        assert!(!own.set_by_caller());
        assert!(!Deadline::start(route, Some(Duration::from_secs(60))).set_by_caller());
        let asked = Deadline::start(route, Some(Duration::from_secs(2)));
        assert!(asked.set_by_caller());
        let first_token_limit = Instant::now() + Duration::from_secs(5);
        assert!(asked.cuts_short(first_token_limit));
        assert!(!asked.cuts_short(Instant::now() + Duration::from_secs(1)));
        assert!(!own.cuts_short(first_token_limit + Duration::from_secs(60)));
    }
}
