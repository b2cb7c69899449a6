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
}

impl Deadline {
    /// Starts the clock now: the route's limit, shortened (never lengthened)
    /// by the caller's own.
    pub fn start(route_limit: Duration, caller: Option<Duration>) -> Deadline {
        let budget = caller.map_or(route_limit, |asked| asked.min(route_limit));
        Deadline {
            at: Instant::now() + budget,
            budget,
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
}
