//! Per-minute quotas taken together: a request goes out only if every
//! quota that applies to it has room, and then counts against all of them.
//! A target's provider quotas and a client key's own quotas both work so.

use std::time::Duration;

use tokio::time::Instant;

use super::window::{Refusal, SlidingWindow};
use crate::config::RateLimits;

/// What a per-minute quota counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quota {
    Requests,
    Tokens,
    InputTokens,
    OutputTokens,
}

/// A request's tokens, estimated before the call or reported after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
}

impl Quota {
    fn amount(self, tokens: Tokens) -> u64 {
        match self {
            Quota::Requests => 1,
            Quota::Tokens => tokens.input + tokens.output,
            Quota::InputTokens => tokens.input,
            Quota::OutputTokens => tokens.output,
        }
    }
}

/// The per-minute quotas of one target or one client key.
#[derive(Debug)]
pub struct Quotas {
    windows: Vec<(Quota, SlidingWindow)>,
}

impl Quotas {
    /// A window for each limit that is set.
    pub fn per_minute(limits: RateLimits) -> Quotas {
        let windows = [
            (Quota::Requests, limits.rpm),
            (Quota::Tokens, limits.tpm),
            (Quota::InputTokens, limits.input_tpm),
            (Quota::OutputTokens, limits.output_tpm),
        ]
        .into_iter()
        .filter_map(|(kind, limit)| limit.map(|n| (kind, SlidingWindow::per_minute(n))))
        .collect();
        Quotas { windows }
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// Takes one request and `tokens` from every quota if all have room
    /// now. Otherwise nothing is taken, and the refusal says how long until
    /// the slowest has room, or that the request exceeds a whole quota.
    pub fn take(&mut self, tokens: Tokens, now: Instant) -> Result<(), Refusal> {
        self.take_share(tokens, now, 1)
    }

    /// As [`Quotas::take`], with each limit divided among `instances`: this
    /// instance's share while the others cannot be asked.
    pub fn take_share(
        &mut self,
        tokens: Tokens,
        now: Instant,
        instances: u32,
    ) -> Result<(), Refusal> {
        self.check_share(tokens, now, instances)?;
        self.record(tokens, now);
        Ok(())
    }

    /// Whether [`Quotas::take_share`] would take, without taking.
    pub fn check_share(
        &mut self,
        tokens: Tokens,
        now: Instant,
        instances: u32,
    ) -> Result<(), Refusal> {
        let mut wait = Duration::ZERO;
        for (kind, window) in &mut self.windows {
            match window.check_share(kind.amount(tokens), now, instances) {
                Ok(()) => {}
                Err(Refusal::Wait(w)) => wait = wait.max(w),
                Err(Refusal::TooLarge) => return Err(Refusal::TooLarge),
            }
        }
        if !wait.is_zero() {
            return Err(Refusal::Wait(wait));
        }
        Ok(())
    }

    /// Counts a grant decided elsewhere (by the shared quota), without
    /// checking it.
    pub fn record(&mut self, tokens: Tokens, now: Instant) {
        for (kind, window) in &mut self.windows {
            window.take(kind.amount(tokens), now);
        }
    }

    /// Replaces a token estimate taken at `at` by the answer's real usage.
    pub fn correct_tokens(&mut self, at: Instant, estimated: Tokens, actual: Tokens) {
        for (kind, window) in &mut self.windows {
            if *kind != Quota::Requests {
                window.correct(at, kind.amount(estimated), kind.amount(actual));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(input: u64) -> Tokens {
        Tokens { input, output: 0 }
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_taken_unless_every_quota_has_room() {
        let mut quotas = Quotas::per_minute(RateLimits {
            rpm: Some(10),
            tpm: Some(100),
            ..RateLimits::default()
        });
        let now = Instant::now();
        assert_eq!(quotas.take(tokens(80), now), Ok(()));
        // The token quota refuses, so the request quota must not count it.
        assert!(matches!(
            quotas.take(tokens(80), now),
            Err(Refusal::Wait(_))
        ));
        for _ in 0..9 {
            assert_eq!(quotas.take(tokens(1), now), Ok(()));
        }
        assert!(matches!(quotas.take(tokens(1), now), Err(Refusal::Wait(_))));
        assert_eq!(quotas.take(tokens(101), now), Err(Refusal::TooLarge));
    }

    #[tokio::test(start_paused = true)]
    async fn a_share_is_the_limit_divided_among_instances() {
        let mut quotas = Quotas::per_minute(RateLimits {
            rpm: Some(10),
            tpm: Some(90),
            ..RateLimits::default()
        });
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(quotas.take_share(tokens(1), now, 3), Ok(()));
        }
        assert!(matches!(
            quotas.take_share(tokens(1), now, 3),
            Err(Refusal::Wait(_))
        ));
        // More than a share but within the whole limit: it waits for an
        // empty window rather than being refused for good.
        let mut quotas = Quotas::per_minute(RateLimits {
            tpm: Some(90),
            ..RateLimits::default()
        });
        assert_eq!(quotas.take_share(tokens(60), now, 3), Ok(()));
        assert!(matches!(
            quotas.take_share(tokens(60), now, 3),
            Err(Refusal::Wait(_))
        ));
        assert_eq!(
            quotas.take_share(tokens(91), now, 3),
            Err(Refusal::TooLarge)
        );
    }

    #[test]
    fn no_limits_means_no_windows() {
        assert!(Quotas::per_minute(RateLimits::default()).is_empty());
    }
}
