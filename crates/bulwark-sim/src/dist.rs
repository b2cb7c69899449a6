//! Per-request latency distributions. Real providers are not metronomes: a
//! fixed first-token delay hides exactly the tail that timeouts and hedging
//! exist for, so a drill samples each request's pacing from a log-normal
//! fitted to the p50 and p95 an operator can read off a dashboard.
//!
//! ```yaml
//! latency_dist:
//!   first_token: { p50_ms: 400, p95_ms: 1200 }
//!   token_interval: 20          # a plain number is a fixed value
//! ```

use serde::{Deserialize, Serialize};

use crate::config::Latency;

/// z-score of the 95th percentile of a standard normal.
const Z95: f64 = 1.644_853_626_951_472_2;

/// A single draw is capped at this multiple of the p95: the log-normal tail is
/// unbounded, and one astronomically slow request would stall a whole drill
/// without telling anyone anything the p95 did not already say.
const TAIL_CAP: f64 = 10.0;

/// One latency component: a fixed value or a log-normal given by two
/// percentiles, all in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Distribution {
    /// Always this many milliseconds.
    Fixed(u64),
    /// Log-normal whose median is `p50_ms` and 95th percentile `p95_ms`.
    LogNormal { p50_ms: f64, p95_ms: f64 },
}

impl Distribution {
    /// The log-normal through these percentiles.
    pub fn log_normal(p50_ms: f64, p95_ms: f64) -> Self {
        Distribution::LogNormal { p50_ms, p95_ms }
    }

    /// Why this distribution cannot be sampled, if it cannot.
    pub fn problem(&self) -> Option<String> {
        match *self {
            Distribution::Fixed(_) => None,
            Distribution::LogNormal { p50_ms, p95_ms } => {
                if !(p50_ms.is_finite() && p95_ms.is_finite()) || p50_ms < 0.0 {
                    Some(format!(
                        "p50_ms and p95_ms must be finite and not negative, got {p50_ms} and {p95_ms}"
                    ))
                } else if p95_ms < p50_ms {
                    Some(format!(
                        "p95_ms ({p95_ms}) must not be below p50_ms ({p50_ms})"
                    ))
                } else {
                    None
                }
            }
        }
    }

    /// `(mu, sigma)` of the underlying normal; `None` when the value is
    /// degenerate (fixed, or a zero median).
    pub fn log_normal_params(&self) -> Option<(f64, f64)> {
        match *self {
            Distribution::LogNormal { p50_ms, p95_ms } if p50_ms > 0.0 => {
                let mu = p50_ms.ln();
                let sigma = ((p95_ms.max(p50_ms)).ln() - mu) / Z95;
                Some((mu, sigma.max(0.0)))
            }
            _ => None,
        }
    }

    /// Draw one value in milliseconds.
    pub fn sample_ms(&self, rng: &mut fastrand::Rng) -> f64 {
        match *self {
            Distribution::Fixed(ms) => ms as f64,
            Distribution::LogNormal { p50_ms, p95_ms } => {
                let Some((mu, sigma)) = self.log_normal_params() else {
                    return p50_ms.max(0.0);
                };
                let draw = (mu + sigma * standard_normal(rng)).exp();
                draw.min(p95_ms.max(p50_ms) * TAIL_CAP)
            }
        }
    }
}

/// Box-Muller: two uniforms give one standard normal draw.
fn standard_normal(rng: &mut fastrand::Rng) -> f64 {
    // 1 - f64() lies in (0, 1], so the logarithm is finite.
    let u1 = 1.0 - rng.f64();
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Distributions for the pacing components; an unset one keeps the fixed
/// value from [`Latency`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LatencyDist {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Distribution>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_token: Option<Distribution>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_interval: Option<Distribution>,
}

impl LatencyDist {
    /// The first problem found, prefixed with the component's name.
    pub fn problem(&self) -> Option<String> {
        [
            ("headers", self.headers),
            ("first_token", self.first_token),
            ("token_interval", self.token_interval),
        ]
        .into_iter()
        .find_map(|(name, d)| Some(format!("{name}: {}", d?.problem()?)))
    }

    /// One request's pacing: `base` with every set component redrawn.
    pub fn sample(&self, base: Latency, rng: &mut fastrand::Rng) -> Latency {
        let draw = |d: Option<Distribution>, fixed: u64, rng: &mut fastrand::Rng| {
            d.map_or(fixed, |d| d.sample_ms(rng).round() as u64)
        };
        Latency {
            headers_ms: draw(self.headers, base.headers_ms, rng),
            first_token_ms: draw(self.first_token, base.first_token_ms, rng),
            token_interval_ms: draw(self.token_interval, base.token_interval_ms, rng),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn percentile(sorted: &[f64], p: f64) -> f64 {
        sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
    }

    #[test]
    fn sampled_percentiles_land_on_the_targets() {
        let mut rng = fastrand::Rng::with_seed(7);
        for (p50, p95) in [(400.0, 1200.0), (2000.0, 8000.0), (20.0, 25.0)] {
            let d = Distribution::log_normal(p50, p95);
            let mut draws: Vec<f64> = (0..20_000).map(|_| d.sample_ms(&mut rng)).collect();
            draws.sort_by(f64::total_cmp);
            let got50 = percentile(&draws, 0.5);
            let got95 = percentile(&draws, 0.95);
            assert!((got50 / p50 - 1.0).abs() < 0.05, "p50 {got50} vs {p50}");
            assert!((got95 / p95 - 1.0).abs() < 0.07, "p95 {got95} vs {p95}");
        }
    }

    #[test]
    fn fitting_is_exact_in_closed_form() {
        let (mu, sigma) = Distribution::log_normal(400.0, 1200.0)
            .log_normal_params()
            .unwrap();
        assert!((mu.exp() - 400.0).abs() < 1e-9);
        assert!(((mu + Z95 * sigma).exp() - 1200.0).abs() < 1e-6);
    }

    #[test]
    fn degenerate_and_fixed_values() {
        let mut rng = fastrand::Rng::with_seed(1);
        assert_eq!(Distribution::Fixed(30).sample_ms(&mut rng), 30.0);
        assert!((Distribution::log_normal(50.0, 50.0).sample_ms(&mut rng) - 50.0).abs() < 1e-9);
        assert_eq!(Distribution::log_normal(0.0, 0.0).sample_ms(&mut rng), 0.0);
        assert!(Distribution::log_normal(10.0, 5.0).problem().is_some());
        assert!(Distribution::log_normal(-1.0, 5.0).problem().is_some());
        let dist = LatencyDist {
            token_interval: Some(Distribution::log_normal(9.0, 1.0)),
            ..LatencyDist::default()
        };
        assert!(dist.problem().unwrap().starts_with("token_interval: "));
    }

    #[test]
    fn unset_components_keep_the_fixed_base() {
        let base = Latency {
            headers_ms: 3,
            first_token_ms: 4,
            token_interval_ms: 5,
        };
        let dist = LatencyDist {
            first_token: Some(Distribution::Fixed(400)),
            ..LatencyDist::default()
        };
        let l = dist.sample(base, &mut fastrand::Rng::with_seed(3));
        assert_eq!(
            (l.headers_ms, l.first_token_ms, l.token_interval_ms),
            (3, 400, 5)
        );
    }

    #[test]
    fn yaml_shapes() {
        let d: LatencyDist = serde_saphyr::from_str(
            "first_token: { p50_ms: 400, p95_ms: 1200 }\ntoken_interval: 20\n",
        )
        .unwrap();
        assert_eq!(d.first_token, Some(Distribution::log_normal(400.0, 1200.0)));
        assert_eq!(d.token_interval, Some(Distribution::Fixed(20)));
        assert_eq!(d.headers, None);
    }
}
