//! Peak-EWMA of time to first token, the latency estimate behind
//! least-latency balancing (Finagle and Linkerd's peak EWMA): a slower
//! sample is believed at once, a faster one only gradually, so a target that
//! turns slow loses traffic immediately and earns it back over `decay`.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct PeakEwma {
    decay: Duration,
    estimate: Option<f64>,
    updated: Instant,
}

impl PeakEwma {
    pub fn new(decay: Duration, now: Instant) -> Self {
        PeakEwma {
            decay,
            estimate: None,
            updated: now,
        }
    }

    pub fn observe(&mut self, sample: Duration, now: Instant) {
        let sample = sample.as_secs_f64();
        self.estimate = Some(match self.estimate {
            Some(current) if sample < current => {
                let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
                let weight = (-elapsed / self.decay.as_secs_f64().max(1e-9)).exp();
                current * weight + sample * (1.0 - weight)
            }
            _ => sample,
        });
        self.updated = now;
    }

    /// The estimate in seconds; `None` until the first sample, so that an
    /// untried target is not mistaken for a fast one or a slow one.
    pub fn estimate(&self) -> Option<f64> {
        self.estimate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn peaks_at_once_and_recovers_gradually() {
        let mut ewma = PeakEwma::new(Duration::from_secs(10), Instant::now());
        assert_eq!(ewma.estimate(), None);
        ewma.observe(Duration::from_millis(100), Instant::now());
        ewma.observe(Duration::from_secs(2), Instant::now());
        assert_eq!(ewma.estimate(), Some(2.0), "a slow sample counts at once");
        tokio::time::advance(Duration::from_secs(10)).await;
        ewma.observe(Duration::from_millis(100), Instant::now());
        let after = ewma.estimate().unwrap_or_default();
        // One decay period keeps 1/e of the old estimate.
        assert!(
            (after - (2.0 / std::f64::consts::E + 0.1 * (1.0 - 1.0 / std::f64::consts::E))).abs()
                < 1e-9
        );
    }
}
