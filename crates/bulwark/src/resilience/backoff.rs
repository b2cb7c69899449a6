//! Exponential backoff with full jitter: the wait before retry `n` (0-based)
//! is uniform in `[0, min(cap, base * 2^n))`. Full jitter spreads a crowd of
//! retrying clients evenly instead of letting them return in lockstep
//! (AWS Architecture Blog, "Exponential Backoff And Jitter").

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    /// The official OpenAI and Anthropic SDKs start at 0.5 s and cap at 8 s.
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(8),
        }
    }
}

impl Backoff {
    /// The ceiling of the wait before retry `retry` (0 for the first retry).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(31));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The wait before retry `retry`, given a uniform sample in `[0, 1)`.
    pub fn delay(&self, retry: u32, unit_sample: f64) -> Duration {
        self.ceiling(retry).mul_f64(unit_sample.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let backoff = Backoff::default();
        let ceilings: Vec<u64> = (0..6)
            .map(|n| backoff.ceiling(n).as_millis() as u64)
            .collect();
        assert_eq!(ceilings, [500, 1000, 2000, 4000, 8000, 8000]);
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(8));
    }

    proptest! {
        #[test]
        fn delays_stay_within_zero_and_the_ceiling(retry in 0u32..64, sample in 0.0f64..1.0) {
            let backoff = Backoff { base: Duration::from_millis(25), cap: Duration::from_millis(250) };
            let delay = backoff.delay(retry, sample);
            prop_assert!(delay <= backoff.ceiling(retry));
            prop_assert!(delay <= backoff.cap);
        }
    }
}
