//! Adaptive concurrency per target: an AIMD limit on requests in flight, in
//! the manner of Netflix's concurrency-limits `AIMDLimit`. Each success while
//! the target is at least half busy raises the limit by one; an overload
//! signal (429, 529, timeout) cuts it by `backoff_ratio`. A provider that
//! starts to struggle thus sees less traffic from this gateway before it
//! falls over, and more again as it recovers. A `pinned` limit never moves.

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConcurrencyConfig {
    pub initial: u32,
    pub min: u32,
    pub max: u32,
    pub backoff_ratio: f64,
    /// A fixed limit (the provider's documented maximum, say).
    pub pinned: bool,
}

impl Default for ConcurrencyConfig {
    /// High enough never to queue a healthy provider's traffic (1,000
    /// streams at once are ordinary); overload signals bring it down fast.
    fn default() -> Self {
        ConcurrencyConfig {
            initial: 1000,
            min: 1,
            max: 10_000,
            backoff_ratio: 0.9,
            pinned: false,
        }
    }
}

impl ConcurrencyConfig {
    pub fn pinned(limit: u32) -> Self {
        ConcurrencyConfig {
            initial: limit,
            min: limit,
            max: limit,
            pinned: true,
            ..ConcurrencyConfig::default()
        }
    }
}

/// How a call that held a permit ended, as the limit counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Success,
    /// The provider said it is overloaded, or did not answer in time.
    Overload,
    /// Neither (a client error, a cancelled call).
    Ignore,
}

#[derive(Debug)]
pub struct Aimd {
    config: ConcurrencyConfig,
    limit: f64,
    in_flight: u32,
}

impl Aimd {
    pub fn new(config: ConcurrencyConfig) -> Self {
        Aimd {
            config,
            limit: f64::from(config.initial.clamp(config.min.max(1), config.max.max(1))),
            in_flight: 0,
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit as u32
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// Takes a slot if one is free.
    pub fn try_acquire(&mut self) -> bool {
        if self.in_flight < self.limit() {
            self.in_flight += 1;
            true
        } else {
            false
        }
    }

    /// Returns a slot, adjusting the limit by how the call went.
    pub fn release(&mut self, signal: Signal) {
        let busy = f64::from(self.in_flight) * 2.0 >= self.limit;
        self.in_flight = self.in_flight.saturating_sub(1);
        if self.config.pinned {
            return;
        }
        let (min, max) = (
            f64::from(self.config.min.max(1)),
            f64::from(self.config.max.max(1)),
        );
        match signal {
            Signal::Success if busy => self.limit = (self.limit + 1.0).min(max),
            Signal::Overload => self.limit = (self.limit * self.config.backoff_ratio).max(min),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cuts_on_overload_and_grows_while_busy() {
        let mut aimd = Aimd::new(ConcurrencyConfig {
            initial: 10,
            ..ConcurrencyConfig::default()
        });
        for _ in 0..10 {
            assert!(aimd.try_acquire());
        }
        assert!(!aimd.try_acquire(), "the eleventh call must wait");
        aimd.release(Signal::Overload);
        assert_eq!(aimd.limit(), 9);
        // Successes while at least half busy raise the limit again.
        aimd.release(Signal::Success);
        assert_eq!(aimd.limit(), 10);
        // Successes while nearly idle do not: no evidence more would work.
        for _ in 0..8 {
            aimd.release(Signal::Success);
        }
        assert_eq!((aimd.limit(), aimd.in_flight()), (13, 0));
        aimd.release(Signal::Success);
        assert_eq!(aimd.limit(), 13);
    }

    #[test]
    fn a_pinned_limit_never_moves() {
        let mut aimd = Aimd::new(ConcurrencyConfig::pinned(2));
        assert!(aimd.try_acquire() && aimd.try_acquire() && !aimd.try_acquire());
        aimd.release(Signal::Overload);
        aimd.release(Signal::Success);
        assert_eq!(aimd.limit(), 2);
    }

    proptest! {
        #[test]
        fn in_flight_never_exceeds_the_limit_and_the_limit_stays_in_bounds(
            ops in proptest::collection::vec(0u8..4, 1..500)
        ) {
            let config = ConcurrencyConfig { initial: 5, min: 2, max: 20, ..ConcurrencyConfig::default() };
            let mut aimd = Aimd::new(config);
            for op in ops {
                match op {
                    0 => { aimd.try_acquire(); }
                    1 if aimd.in_flight() > 0 => aimd.release(Signal::Success),
                    2 if aimd.in_flight() > 0 => aimd.release(Signal::Overload),
                    3 if aimd.in_flight() > 0 => aimd.release(Signal::Ignore),
                    _ => {}
                }
                prop_assert!(aimd.limit() >= 2 && aimd.limit() <= 20);
                // A cut may leave more in flight than the new limit; no new
                // slot is given out until they drain.
                if aimd.in_flight() > aimd.limit() {
                    prop_assert!(!aimd.try_acquire());
                }
            }
        }
    }
}
