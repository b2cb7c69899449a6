//! The retry budget: retries (and hedges) may add at most `ratio` of the
//! requests seen in the last `window`, plus `min_per_second` regardless, so
//! that an outage never multiplies the load on a failing provider. The
//! defaults are tower's `TpsBudget` and Linkerd's: 20 % plus 10 per second
//! over 10 s.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetConfig {
    pub ratio: f64,
    pub min_per_second: f64,
    pub window: Duration,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            ratio: 0.2,
            min_per_second: 10.0,
            window: Duration::from_secs(10),
        }
    }
}

/// Counts per slice of the window; ten slices keep the window accurate to a
/// tenth without storing every event.
const SLICES: u32 = 10;

#[derive(Debug, Clone, Copy)]
struct Slice {
    start: Instant,
    requests: u64,
    retries: u64,
}

#[derive(Debug)]
pub struct RetryBudget {
    config: BudgetConfig,
    slices: VecDeque<Slice>,
}

impl RetryBudget {
    pub fn new(config: BudgetConfig) -> Self {
        RetryBudget {
            config,
            slices: VecDeque::with_capacity(SLICES as usize + 1),
        }
    }

    fn current(&mut self, now: Instant) -> &mut Slice {
        let slice_len = self.config.window / SLICES;
        while self
            .slices
            .front()
            .is_some_and(|s| now.saturating_duration_since(s.start) >= self.config.window)
        {
            self.slices.pop_front();
        }
        let fresh = match self.slices.back() {
            Some(last) => now.saturating_duration_since(last.start) >= slice_len,
            None => true,
        };
        if fresh {
            self.slices.push_back(Slice {
                start: now,
                requests: 0,
                retries: 0,
            });
        }
        // Just pushed or already present, so never empty.
        let last = self.slices.len() - 1;
        &mut self.slices[last]
    }

    /// Records a first attempt, which earns retry credit.
    pub fn record_request(&mut self, now: Instant) {
        self.current(now).requests += 1;
    }

    /// Takes credit for one retry or hedge; `false` means the budget is spent
    /// and the caller must move on instead.
    pub fn try_withdraw(&mut self, now: Instant) -> bool {
        self.current(now);
        let (requests, retries) = self
            .slices
            .iter()
            .fold((0u64, 0u64), |(q, r), s| (q + s.requests, r + s.retries));
        let allowance = self.config.ratio * requests as f64
            + self.config.min_per_second * self.config.window.as_secs_f64();
        if (retries + 1) as f64 <= allowance {
            self.current(now).retries += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[tokio::test(start_paused = true)]
    async fn retries_are_limited_to_the_ratio_plus_the_floor() {
        let mut budget = RetryBudget::new(BudgetConfig {
            ratio: 0.2,
            min_per_second: 1.0,
            window: Duration::from_secs(10),
        });
        let now = Instant::now();
        for _ in 0..100 {
            budget.record_request(now);
        }
        let granted = (0..1000).filter(|_| budget.try_withdraw(now)).count();
        // 20 % of 100 plus 1 per second over 10 s.
        assert_eq!(granted, 30);
        // Credit returns as the window moves on.
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(budget.try_withdraw(Instant::now()));
    }

    proptest! {
        /// However requests and retries interleave, within any one window the
        /// retries granted never exceed the allowance.
        #[test]
        fn never_grants_more_than_the_allowance(steps in proptest::collection::vec((0u64..300, any::<bool>()), 1..400)) {
            let config = BudgetConfig { ratio: 0.2, min_per_second: 2.0, window: Duration::from_secs(10) };
            let mut budget = RetryBudget::new(config);
            let start = Instant::now();
            let mut requests = 0u64;
            let mut granted = 0u64;
            let mut elapsed = Duration::ZERO;
            for (advance_ms, is_retry) in steps {
                elapsed += Duration::from_millis(advance_ms);
                if elapsed >= config.window { break; } // one window only: every event still counts
                let now = start + elapsed;
                if is_retry {
                    if budget.try_withdraw(now) { granted += 1; }
                } else {
                    budget.record_request(now);
                    requests += 1;
                }
                let allowance = config.ratio * requests as f64 + config.min_per_second * config.window.as_secs_f64();
                prop_assert!(granted as f64 <= allowance);
            }
        }
    }
}
