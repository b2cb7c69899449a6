//! A sliding-window limit: at most `limit` units (requests or tokens) in any
//! `window`. Exact rather than approximate (every grant is remembered until
//! it leaves the window), so a provider's per-minute quota holds over every
//! minute, not just on average.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct SlidingWindow {
    limit: u64,
    window: Duration,
    grants: VecDeque<(Instant, u64)>,
    total: u64,
}

/// Why a grant cannot be made now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Capacity frees up after this long.
    Wait(Duration),
    /// More than the whole limit: it can never be granted.
    TooLarge,
}

impl SlidingWindow {
    pub fn new(limit: u64, window: Duration) -> Self {
        SlidingWindow {
            limit,
            window,
            grants: VecDeque::new(),
            total: 0,
        }
    }

    pub fn per_minute(limit: u64) -> Self {
        SlidingWindow::new(limit, Duration::from_secs(60))
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(at, amount)) = self.grants.front() {
            if now.saturating_duration_since(at) < self.window {
                break;
            }
            self.grants.pop_front();
            self.total -= amount;
        }
    }

    /// How long until `amount` fits, without taking it.
    pub fn check(&mut self, amount: u64, now: Instant) -> Result<(), Refusal> {
        self.check_share(amount, now, 1)
    }

    /// As [`SlidingWindow::check`] against the limit divided among
    /// `instances`. An amount over the share but within the whole limit
    /// fits an empty window, so that it is delayed, never refused for good.
    pub fn check_share(
        &mut self,
        amount: u64,
        now: Instant,
        instances: u32,
    ) -> Result<(), Refusal> {
        if amount > self.limit {
            return Err(Refusal::TooLarge);
        }
        let limit = (self.limit / u64::from(instances.max(1))).max(amount);
        self.expire(now);
        if self.total + amount <= limit {
            return Ok(());
        }
        // Walk the oldest grants until enough would have left the window.
        let mut freed = 0;
        let needed = self.total + amount - limit;
        for &(at, granted) in &self.grants {
            freed += granted;
            if freed >= needed {
                return Err(Refusal::Wait(
                    (at + self.window).saturating_duration_since(now),
                ));
            }
        }
        Err(Refusal::Wait(self.window))
    }

    /// Counts a grant. Expires first: grants decided by Redis come here
    /// without a check, and only the check expired before, so while Redis
    /// answered the window grew without bound.
    pub fn take(&mut self, amount: u64, now: Instant) {
        self.expire(now);
        self.grants.push_back((now, amount));
        self.total += amount;
    }

    /// Replaces an estimate granted at `at` by what was really used (tokens
    /// are estimated before a call and known from its usage after).
    pub fn correct(&mut self, at: Instant, estimated: u64, actual: u64) {
        // Corrections come seconds after their grant: the newest end finds
        // them first.
        if let Some(grant) = self
            .grants
            .iter_mut()
            .rev()
            .find(|(t, a)| *t == at && *a == estimated)
        {
            grant.1 = actual;
            self.total = self.total - estimated + actual;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Taking whenever allowed, every millisecond for a simulated ten
    /// minutes, never puts more than the limit into any one minute.
    #[tokio::test(start_paused = true)]
    async fn the_limit_holds_in_every_window() {
        for limit in [60u64, 1000, 3500] {
            let mut window = SlidingWindow::per_minute(limit);
            let start = Instant::now();
            let mut granted: Vec<Duration> = Vec::new();
            for ms in 0..600_000u64 {
                let now = start + Duration::from_millis(ms);
                if window.check(1, now).is_ok() {
                    window.take(1, now);
                    granted.push(now - start);
                }
            }
            // Slide a one-minute window over the grants: never over the limit,
            // and (taking greedily) never far under it either.
            let mut lo = 0;
            let mut most = 0;
            for hi in 0..granted.len() {
                while granted[hi] - granted[lo] >= Duration::from_secs(60) {
                    lo += 1;
                }
                most = most.max(hi - lo + 1);
            }
            assert_eq!(most as u64, limit, "limit {limit}");
            let per_minute = granted.len() as f64 / 10.0;
            assert!(
                (per_minute - limit as f64).abs() <= limit as f64 * 0.01,
                "limit {limit}: {per_minute} per minute"
            );
        }
    }

    /// Grants recorded without a check (Redis decided them) still leave
    /// the window: after ten minutes of them only the last minute is kept.
    #[tokio::test(start_paused = true)]
    async fn unchecked_grants_leave_the_window() {
        let mut window = SlidingWindow::per_minute(1_000_000);
        let start = Instant::now();
        for second in 0..600u64 {
            window.take(3, start + Duration::from_secs(second));
        }
        assert_eq!(window.grants.len(), 60);
        assert_eq!(window.total, 180);
        // The newest grant is the one corrected, even when an older one
        // (still in the window) has the same instant and amount.
        let last = start + Duration::from_secs(599);
        window.take(3, last);
        window.correct(last, 3, 1);
        assert_eq!(window.grants.back().map(|g| g.1), Some(1));
        assert_eq!(window.total, 181);
    }

    #[tokio::test(start_paused = true)]
    async fn it_says_how_long_to_wait_and_refuses_the_impossible() {
        let mut window = SlidingWindow::per_minute(100);
        let now = Instant::now();
        window.take(60, now);
        window.take(40, now + Duration::from_secs(10));
        assert_eq!(
            window.check(50, now + Duration::from_secs(20)),
            Err(Refusal::Wait(Duration::from_secs(40)))
        );
        assert_eq!(window.check(101, now), Err(Refusal::TooLarge));
        // A generous estimate corrected down frees the difference.
        window.correct(now, 60, 10);
        assert_eq!(window.check(50, now + Duration::from_secs(20)), Ok(()));
    }
}
