//! The circuit breaker for one target (provider + model).
//!
//! Two ways to trip, as in Envoy's outlier detection and resilience4j:
//! - `consecutive_failures` in a row (fast: a dead provider is ejected after
//!   a handful of calls);
//! - a failure rate at or over `failure_rate` across the last `window`, once
//!   at least `min_calls` were made (slow: catches a provider failing one
//!   call in two without ever failing five in a row).
//!
//! Calls slower than `slow_call` count as failures.
//!
//! An open breaker rejects calls without a network round trip for
//! `base_ejection * n` (n = how many times in a row it tripped, capped at
//! `max_ejection`), then lets `half_open_probes` calls through: a success
//! closes it, a failure opens it again for longer.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    pub consecutive_failures: u32,
    pub failure_rate: f64,
    pub window: Duration,
    pub min_calls: u32,
    pub slow_call: Option<Duration>,
    pub base_ejection: Duration,
    pub max_ejection: Duration,
    pub half_open_probes: u32,
    /// A probe with no verdict after this long is given up on and another
    /// is let through: a lost probe must not keep a target out for good.
    pub probe_timeout: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            consecutive_failures: 5,
            failure_rate: 0.5,
            window: Duration::from_secs(30),
            min_calls: 20,
            slow_call: Some(Duration::from_secs(60)),
            base_ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(300),
            half_open_probes: 1,
            probe_timeout: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// Permission to make one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A normal call.
    Call,
    /// One of the limited half-open probes; report its outcome. The number
    /// is the half-open round, so a late verdict from an earlier round cannot
    /// count for the current one.
    Probe(u64),
}

/// The outcome of a call, as the breaker counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    Success {
        latency: Duration,
    },
    Failure,
    /// Neither: e.g. the client's own mistake, or a rate limit.
    Ignored,
}

/// A state change, for metrics, incidents and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: BreakerState,
    pub to: BreakerState,
    /// How long the breaker stays open, when it opened.
    pub open_for: Option<Duration>,
}

const SLICES: u32 = 10;

#[derive(Debug, Clone, Copy)]
struct Slice {
    start: Instant,
    calls: u32,
    failures: u32,
}

#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    state: BreakerState,
    open_until: Instant,
    probes_in_flight: u32,
    /// Counts half-open rounds.
    round: u64,
    half_open_since: Instant,
    consecutive: u32,
    /// Trips in a row without a healthy spell between them.
    ejections: u32,
    closed_since: Instant,
    slices: Vec<Slice>,
}

impl Breaker {
    pub fn new(config: BreakerConfig, now: Instant) -> Self {
        Breaker {
            config,
            state: BreakerState::Closed,
            open_until: now,
            probes_in_flight: 0,
            round: 0,
            half_open_since: now,
            consecutive: 0,
            ejections: 0,
            closed_since: now,
            slices: Vec::with_capacity(SLICES as usize),
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Asks to make a call. `Err` carries how long until the breaker will let
    /// a probe through.
    pub fn admit(&mut self, now: Instant) -> Result<(Admission, Option<Transition>), Duration> {
        let mut transition = None;
        if self.state == BreakerState::Open {
            if now < self.open_until {
                return Err(self.open_until - now);
            }
            transition = Some(self.go(BreakerState::HalfOpen, None));
            self.half_open_since = now;
        }
        if self.state == BreakerState::HalfOpen
            && self.probes_in_flight >= self.config.half_open_probes
            && now.saturating_duration_since(self.half_open_since) >= self.config.probe_timeout
        {
            // The probes of this round never reported: start a new round.
            self.round += 1;
            self.half_open_since = now;
            self.probes_in_flight = 0;
        }
        match self.state {
            BreakerState::HalfOpen if self.probes_in_flight >= self.config.half_open_probes => {
                // Probes are out; others wait for their verdict elsewhere.
                Err(Duration::ZERO)
            }
            BreakerState::HalfOpen => {
                self.probes_in_flight += 1;
                Ok((Admission::Probe(self.round), transition))
            }
            _ => Ok((Admission::Call, transition)),
        }
    }

    /// How long until an open breaker lets a probe through; `None` when it
    /// would admit a call now. Changes nothing.
    pub fn admit_preview(&self, now: Instant) -> Option<Duration> {
        (self.state == BreakerState::Open && now < self.open_until).then(|| self.open_until - now)
    }

    /// How long a half-open probe may go without a verdict.
    pub fn probe_timeout(&self) -> Duration {
        self.config.probe_timeout
    }

    /// The longest this breaker ever stays open on its own.
    pub fn max_ejection(&self) -> Duration {
        self.config.max_ejection.max(self.config.base_ejection)
    }

    /// Opens the breaker until `until`, as another instance's opened: this
    /// one need not pay the failures itself. A longer break already under
    /// way is kept.
    pub fn force_open(&mut self, now: Instant, until: Instant) -> Option<Transition> {
        if until <= now || (self.state == BreakerState::Open && self.open_until >= until) {
            return None;
        }
        self.open_until = until;
        if self.state == BreakerState::Open {
            return None;
        }
        Some(self.go(BreakerState::Open, Some(until - now)))
    }

    /// Closes the breaker, as another instance's closed after a good probe.
    pub fn force_close(&mut self, now: Instant) -> Option<Transition> {
        (self.state != BreakerState::Closed).then(|| self.close(now))
    }

    /// Reports how an admitted call went.
    pub fn record(
        &mut self,
        now: Instant,
        admission: Admission,
        outcome: CallOutcome,
    ) -> Option<Transition> {
        if let Admission::Probe(round) = admission {
            if round != self.round || self.state != BreakerState::HalfOpen {
                return None; // a verdict from a round already decided
            }
            self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
        }
        let failed = match outcome {
            CallOutcome::Ignored => return None,
            CallOutcome::Failure => true,
            CallOutcome::Success { latency } => {
                self.config.slow_call.is_some_and(|slow| latency >= slow)
            }
        };
        if matches!(admission, Admission::Probe(_)) {
            return Some(if failed {
                self.trip(now)
            } else {
                self.close(now)
            });
        }
        if self.state != BreakerState::Closed {
            return None; // a call admitted before the breaker opened
        }
        self.count(now, failed);
        if failed {
            self.consecutive += 1;
        } else {
            self.consecutive = 0;
        }
        let (calls, failures) = self.window_counts(now);
        let rate_tripped = calls >= self.config.min_calls
            && f64::from(failures) >= self.config.failure_rate * f64::from(calls);
        if (failed && self.consecutive >= self.config.consecutive_failures) || rate_tripped {
            return Some(self.trip(now));
        }
        None
    }

    fn trip(&mut self, now: Instant) -> Transition {
        if self.state == BreakerState::Closed {
            // A healthy spell forgives one earlier trip per ejection period.
            let healthy = now.saturating_duration_since(self.closed_since);
            let forgiven =
                healthy.as_secs_f64() / self.config.base_ejection.as_secs_f64().max(0.001);
            self.ejections = self.ejections.saturating_sub(forgiven as u32);
        }
        self.ejections = self.ejections.saturating_add(1);
        let open_for = self
            .config
            .base_ejection
            .saturating_mul(self.ejections)
            .min(self.max_ejection());
        self.open_until = now + open_for;
        self.go(BreakerState::Open, Some(open_for))
    }

    fn close(&mut self, now: Instant) -> Transition {
        self.consecutive = 0;
        self.slices.clear();
        self.closed_since = now;
        self.go(BreakerState::Closed, None)
    }

    fn go(&mut self, to: BreakerState, open_for: Option<Duration>) -> Transition {
        let from = self.state;
        self.state = to;
        self.probes_in_flight = 0;
        if to == BreakerState::HalfOpen {
            self.round += 1;
        }
        Transition { from, to, open_for }
    }

    fn count(&mut self, now: Instant, failed: bool) {
        let slice_len = self.config.window / SLICES;
        let window = self.config.window;
        self.slices
            .retain(|s| now.saturating_duration_since(s.start) < window);
        let fresh = self
            .slices
            .last()
            .is_none_or(|s| now.saturating_duration_since(s.start) >= slice_len);
        if fresh {
            self.slices.push(Slice {
                start: now,
                calls: 0,
                failures: 0,
            });
        }
        if let Some(slice) = self.slices.last_mut() {
            slice.calls += 1;
            slice.failures += u32::from(failed);
        }
    }

    fn window_counts(&self, now: Instant) -> (u32, u32) {
        self.slices
            .iter()
            .filter(|s| now.saturating_duration_since(s.start) < self.config.window)
            .fold((0, 0), |(c, f), s| (c + s.calls, f + s.failures))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FAST: Duration = Duration::from_millis(10);

    fn call(breaker: &mut Breaker, outcome: CallOutcome) -> Result<Option<Transition>, Duration> {
        let now = Instant::now();
        let (admission, _) = breaker.admit(now)?;
        Ok(breaker.record(now, admission, outcome))
    }

    /// Another instance's verdicts: open for the time it has left (a
    /// longer local break is kept), then probe as usual; or closed.
    #[tokio::test(start_paused = true)]
    async fn it_follows_another_instances_open_and_close() {
        let mut breaker = Breaker::new(BreakerConfig::default(), Instant::now());
        let now = Instant::now();
        let opened = breaker.force_open(now, now + Duration::from_secs(10));
        assert_eq!(
            opened.map(|t| (t.to, t.open_for)),
            Some((BreakerState::Open, Some(Duration::from_secs(10))))
        );
        assert_eq!(breaker.admit(now), Err(Duration::from_secs(10)));
        // A shorter break heard later does not cut this one short.
        assert_eq!(breaker.force_open(now, now + Duration::from_secs(5)), None);
        assert_eq!(breaker.admit_preview(now), Some(Duration::from_secs(10)));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(matches!(
            breaker.admit(Instant::now()),
            Ok((Admission::Probe(_), _))
        ));
        let closed = breaker.force_close(Instant::now());
        assert_eq!(closed.map(|t| t.to), Some(BreakerState::Closed));
        assert_eq!(breaker.force_close(Instant::now()), None);
        assert!(matches!(
            breaker.admit(Instant::now()),
            Ok((Admission::Call, None))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn consecutive_failures_open_it_for_an_escalating_time() {
        let mut breaker = Breaker::new(BreakerConfig::default(), Instant::now());
        for _ in 0..4 {
            assert_eq!(call(&mut breaker, CallOutcome::Failure), Ok(None));
        }
        let opened = call(&mut breaker, CallOutcome::Failure);
        assert_eq!(
            opened,
            Ok(Some(Transition {
                from: BreakerState::Closed,
                to: BreakerState::Open,
                open_for: Some(Duration::from_secs(30))
            }))
        );
        // Open: rejected without a call, told how long to wait.
        assert_eq!(breaker.admit(Instant::now()), Err(Duration::from_secs(30)));

        tokio::time::advance(Duration::from_secs(30)).await;
        let (admission, transition) = breaker
            .admit(Instant::now())
            .unwrap_or((Admission::Call, None));
        assert!(matches!(admission, Admission::Probe(_)));
        assert_eq!(transition.map(|t| t.to), Some(BreakerState::HalfOpen));
        // The probe fails: open again, for twice as long.
        let again = breaker.record(Instant::now(), admission, CallOutcome::Failure);
        assert_eq!(
            again.and_then(|t| t.open_for),
            Some(Duration::from_secs(60))
        );

        tokio::time::advance(Duration::from_secs(60)).await;
        let (admission, _) = breaker
            .admit(Instant::now())
            .unwrap_or((Admission::Call, None));
        let closed = breaker.record(
            Instant::now(),
            admission,
            CallOutcome::Success { latency: FAST },
        );
        assert_eq!(closed.map(|t| t.to), Some(BreakerState::Closed));
        assert_eq!(
            call(&mut breaker, CallOutcome::Success { latency: FAST }),
            Ok(None)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_probe_does_not_keep_the_target_out() {
        let config = BreakerConfig {
            consecutive_failures: 1,
            ..BreakerConfig::default()
        };
        let mut breaker = Breaker::new(config, Instant::now());
        assert!(call(&mut breaker, CallOutcome::Failure).is_ok());
        tokio::time::advance(Duration::from_secs(30)).await;
        // A probe goes out and is never reported.
        assert!(breaker.admit(Instant::now()).is_ok());
        assert_eq!(breaker.admit(Instant::now()), Err(Duration::ZERO));
        tokio::time::advance(config.probe_timeout).await;
        let again = breaker.admit(Instant::now()).map(|(a, _)| a);
        assert!(matches!(again, Ok(Admission::Probe(_))), "{again:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn ejection_time_is_capped() {
        let config = BreakerConfig {
            consecutive_failures: 1,
            ..BreakerConfig::default()
        };
        let mut breaker = Breaker::new(config, Instant::now());
        let mut last = None;
        for _ in 0..20 {
            let now = Instant::now();
            if let Ok((admission, _)) = breaker.admit(now) {
                last = breaker
                    .record(now, admission, CallOutcome::Failure)
                    .and_then(|t| t.open_for)
                    .or(last);
            }
            tokio::time::advance(Duration::from_secs(301)).await;
        }
        assert_eq!(last, Some(Duration::from_secs(300)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_high_failure_rate_trips_without_a_streak() {
        let config = BreakerConfig {
            min_calls: 10,
            ..BreakerConfig::default()
        };
        let mut breaker = Breaker::new(config, Instant::now());
        let mut opened = false;
        for i in 0..10 {
            let outcome = if i % 2 == 0 {
                CallOutcome::Failure
            } else {
                CallOutcome::Success { latency: FAST }
            };
            opened |= call(&mut breaker, outcome).ok().flatten().is_some();
        }
        assert!(opened, "50% failures over 10 calls must trip");
        assert_eq!(breaker.state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn slow_calls_count_as_failures_and_ignored_ones_do_not_count() {
        let config = BreakerConfig {
            consecutive_failures: 2,
            slow_call: Some(Duration::from_secs(5)),
            ..BreakerConfig::default()
        };
        let mut breaker = Breaker::new(config, Instant::now());
        for _ in 0..10 {
            assert_eq!(call(&mut breaker, CallOutcome::Ignored), Ok(None));
        }
        assert_eq!(
            call(
                &mut breaker,
                CallOutcome::Success {
                    latency: Duration::from_secs(6)
                }
            ),
            Ok(None)
        );
        let opened = call(
            &mut breaker,
            CallOutcome::Success {
                latency: Duration::from_secs(6),
            },
        );
        assert_eq!(
            opened.ok().flatten().map(|t| t.to),
            Some(BreakerState::Open)
        );
    }

    proptest! {
        /// Whatever happens, a half-open breaker never has more probes out
        /// than configured.
        #[test]
        fn half_open_never_lets_more_than_the_probes_through(
            ops in proptest::collection::vec((0u8..4, 0u64..40_000), 1..300),
            probes in 1u32..4,
        ) {
            let start = Instant::now();
            let config = BreakerConfig {
                consecutive_failures: 2, half_open_probes: probes,
                base_ejection: Duration::from_secs(5), ..BreakerConfig::default()
            };
            let mut breaker = Breaker::new(config, start);
            let mut now = start;
            let mut outstanding: Vec<Admission> = Vec::new();
            for (op, advance_ms) in ops {
                now += Duration::from_millis(advance_ms);
                match op {
                    0 => {
                        if let Ok((admission, _)) = breaker.admit(now) {
                            outstanding.push(admission);
                        }
                    }
                    _ => {
                        if let Some(admission) = outstanding.pop() {
                            let outcome = match op {
                                1 => CallOutcome::Failure,
                                2 => CallOutcome::Success { latency: FAST },
                                _ => CallOutcome::Ignored,
                            };
                            breaker.record(now, admission, outcome);
                        }
                    }
                }
                if breaker.state() == BreakerState::HalfOpen {
                    prop_assert!(breaker.probes_in_flight <= probes);
                }
                let current = Admission::Probe(breaker.round);
                let probes_out = outstanding.iter().filter(|a| **a == current).count() as u32;
                if breaker.state() == BreakerState::HalfOpen {
                    prop_assert!(probes_out <= probes, "{probes_out} probes out, limit {probes}");
                }
            }
        }
    }
}
