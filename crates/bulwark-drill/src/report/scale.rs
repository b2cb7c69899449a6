//! Axes for the chart: where the time ticks go, and how latency maps to
//! height. Latencies in an incident span milliseconds to the length of a
//! hang, so a log scale keeps the healthy baseline visible next to a 47 s
//! hang; a narrow range reads better on a linear one.

use std::time::Duration;

use super::text;

/// Scenario-time ticks from 0 to `max`: round steps (30m, 1h, ...), at
/// most about ten of them.
pub(crate) fn time_ticks(max: Duration) -> Vec<Duration> {
    const STEPS: &[u64] = &[
        1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200,
        86_400, 172_800, 604_800,
    ];
    let max_s = max.as_secs_f64();
    let step = STEPS
        .iter()
        .copied()
        .find(|&s| max_s / s as f64 <= 10.0)
        .unwrap_or(604_800);
    let mut ticks = Vec::new();
    let mut t = 0;
    while (t as f64) <= max_s + 1e-9 {
        ticks.push(Duration::from_secs(t));
        t += step;
    }
    ticks
}

/// A tick label for scenario time: `0`, `30m`, `1h`, `1h30m`.
pub(crate) fn time_label(t: Duration) -> String {
    if t.is_zero() {
        "0".to_string()
    } else {
        text::scenario(t)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum LatencyScale {
    /// Seconds, from `lo` to `hi`, logarithmic.
    Log { lo: f64, hi: f64 },
    /// Seconds, from 0 to `hi`.
    Linear { hi: f64 },
}

impl LatencyScale {
    /// Pick a scale that shows every value from `min` to `max` (seconds).
    /// Log when they span more than a factor of ten, starting at 10 ms (or
    /// lower if something was faster).
    pub fn fit(min: f64, max: f64) -> LatencyScale {
        let max = max.max(0.001);
        let min = min.clamp(0.000_1, max);
        if max / min <= 10.0 {
            return LatencyScale::Linear {
                hi: nice_ceiling(max * 1.05),
            };
        }
        let lo = 10f64.powf(min.log10().floor()).min(0.01);
        let decade = 10f64.powf(max.log10().floor());
        let hi = [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * decade)
            .find(|&v| v >= max * 1.02)
            .unwrap_or(decade * 10.0);
        LatencyScale::Log { lo, hi }
    }

    /// Height from the bottom, 0 to 1; values outside are clamped.
    pub fn fraction(&self, seconds: f64) -> f64 {
        let f = match *self {
            LatencyScale::Log { lo, hi } => {
                (seconds.max(lo).log10() - lo.log10()) / (hi.log10() - lo.log10())
            }
            LatencyScale::Linear { hi } => seconds / hi,
        };
        f.clamp(0.0, 1.0)
    }

    /// Gridlines with labels, in seconds.
    pub fn ticks(&self) -> Vec<(f64, String)> {
        match *self {
            LatencyScale::Log { lo, hi } => {
                let decades = (hi / lo).log10();
                // Label 1-3-10 when there is room, else decades only.
                let mantissas: &[f64] = if decades <= 4.5 { &[1.0, 3.0] } else { &[1.0] };
                let mut out = Vec::new();
                let mut decade = lo;
                while decade <= hi * 1.000_1 {
                    for m in mantissas {
                        let v = decade * m;
                        if v <= hi * 1.000_1 {
                            out.push((v, latency_label(v)));
                        }
                    }
                    decade *= 10.0;
                }
                if out.last().is_some_and(|(v, _)| *v < hi * 0.5) {
                    out.push((hi, latency_label(hi)));
                }
                out
            }
            LatencyScale::Linear { hi } => {
                let step = nice_ceiling(hi / 5.0);
                let mut out = Vec::new();
                let mut v = 0.0;
                while v <= hi * 1.000_1 {
                    out.push((v, latency_label(v)));
                    v += step;
                }
                out
            }
        }
    }

    pub fn is_log(&self) -> bool {
        matches!(self, LatencyScale::Log { .. })
    }
}

/// The smallest of 1, 2, 2.5, 5 × 10^k at or above `x`.
fn nice_ceiling(x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let decade = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * decade)
        .find(|&v| v >= x * 0.999_999)
        .unwrap_or(decade * 10.0)
}

/// `10 ms`, `300 ms`, `1 s`, `2.5 s`, `1 min`: short, for an axis.
pub(crate) fn latency_label(seconds: f64) -> String {
    let trim = |v: f64| {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    if seconds == 0.0 {
        "0".to_string()
    } else if seconds < 1.0 {
        format!("{} ms", trim(seconds * 1000.0))
    } else if seconds < 60.0 {
        format!("{} s", trim(seconds))
    } else {
        format!("{} min", trim(seconds / 60.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_for_four_hours() {
        let ticks = time_ticks(Duration::from_secs(4 * 3600));
        let labels: Vec<String> = ticks.into_iter().map(time_label).collect();
        assert_eq!(
            labels,
            [
                "0", "30m", "1h", "1h30m", "2h", "2h30m", "3h", "3h30m", "4h"
            ]
        );
    }

    #[test]
    fn latency_scales() {
        let log = LatencyScale::fit(0.2, 47.0);
        assert_eq!(log, LatencyScale::Log { lo: 0.01, hi: 50.0 });
        assert!((log.fraction(0.01) - 0.0).abs() < 1e-9);
        assert!((log.fraction(50.0) - 1.0).abs() < 1e-9);
        let labels: Vec<String> = log.ticks().into_iter().map(|(_, l)| l).collect();
        assert_eq!(
            labels,
            [
                "10 ms", "30 ms", "100 ms", "300 ms", "1 s", "3 s", "10 s", "30 s"
            ]
        );
        let lin = LatencyScale::fit(0.3, 0.9);
        assert_eq!(lin, LatencyScale::Linear { hi: 1.0 });
        assert_eq!(latency_label(0.25), "250 ms");
    }
}
