//! Rolling windows of recent outcomes, per target and per route.

use std::collections::VecDeque;

use bulwark::observe::UnixMs;
use bulwark::observe::percentile::nearest_rank;
use bulwark::observe::record::{AttemptRecord, RequestRecord};

/// What one attempt says about its target's health.
#[derive(Debug, Clone, Copy)]
struct AttemptSample {
    at: UnixMs,
    failed: bool,
    throttled: bool,
    first_token_ms: Option<f64>,
}

impl AttemptSample {
    /// `None` for attempts that say nothing about the provider: the client's
    /// own mistakes (or a target refusing a translation of them), hedges cancelled because the other side won, Bulwark's
    /// own concurrency limit, the client's own deadline.
    fn of(attempt: &AttemptRecord) -> Option<AttemptSample> {
        let class = attempt.error_class.as_deref();
        let failed = match class {
            None => false,
            Some(
                "client_error"
                | "untranslatable"
                | "translation_refused"
                | "concurrency_limit"
                | "cancelled"
                | "deadline",
            ) => {
                return None;
            }
            Some(_) => true,
        };
        Some(AttemptSample {
            at: attempt.at,
            failed,
            throttled: matches!(class, Some("rate_limited" | "overloaded")),
            first_token_ms: attempt.first_token_ms,
        })
    }
}

#[derive(Debug, Default)]
pub(crate) struct TargetWindow {
    samples: VecDeque<AttemptSample>,
}

/// A target's recent record.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TargetStats {
    pub attempts: u32,
    pub failures: u32,
    /// Failures that were 429 or 529/503: the provider is turning work away.
    pub throttled: u32,
    pub first_token_p50_ms: Option<f64>,
    pub first_token_p95_ms: Option<f64>,
}

impl TargetStats {
    pub fn error_rate(&self) -> f64 {
        ratio(self.failures, self.attempts)
    }

    pub fn throttled_share(&self) -> f64 {
        ratio(self.throttled, self.attempts)
    }
}

impl TargetWindow {
    pub(crate) fn push(&mut self, attempt: &AttemptRecord) {
        if let Some(sample) = AttemptSample::of(attempt) {
            self.samples.push_back(sample);
        }
    }

    pub(crate) fn stats(&mut self, since: UnixMs) -> TargetStats {
        while self.samples.front().is_some_and(|s| s.at < since) {
            self.samples.pop_front();
        }
        let mut stats = TargetStats::default();
        let mut first_tokens = Vec::new();
        for sample in &self.samples {
            stats.attempts += 1;
            stats.failures += u32::from(sample.failed);
            stats.throttled += u32::from(sample.throttled);
            first_tokens.extend(sample.first_token_ms);
        }
        first_tokens.sort_by(f64::total_cmp);
        stats.first_token_p50_ms = nearest_rank(&first_tokens, 50.0);
        stats.first_token_p95_ms = nearest_rank(&first_tokens, 95.0);
        stats
    }
}

#[derive(Debug, Clone)]
struct RequestSample {
    at: UnixMs,
    good: bool,
    /// The target that answered a good request.
    served_by: Option<String>,
    fallback: bool,
    degraded: bool,
    first_token_ms: Option<f64>,
}

#[derive(Debug, Default)]
pub(crate) struct RouteWindow {
    samples: VecDeque<RequestSample>,
}

/// A route's recent record, as its clients saw it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RouteStats {
    /// Requests, not counting the clients' own mistakes.
    pub requests: u32,
    pub bad: u32,
    /// Good answers that came from a target other than the first.
    pub fallback: u32,
    /// Good answers that were stale or from a degrade step.
    pub degraded: u32,
    pub first_token_p50_ms: Option<f64>,
    pub first_token_p95_ms: Option<f64>,
}

impl RouteStats {
    pub fn bad_rate(&self) -> f64 {
        ratio(self.bad, self.requests)
    }

    pub fn fallback_share(&self) -> f64 {
        ratio(self.fallback, self.requests)
    }

    pub fn degraded_share(&self) -> f64 {
        ratio(self.degraded, self.requests)
    }
}

impl RouteWindow {
    pub(crate) fn push(&mut self, record: &RequestRecord) {
        if record.is_client_error() {
            return;
        }
        let good = record.is_good();
        self.samples.push_back(RequestSample {
            at: record.at,
            good,
            served_by: record.target.clone().filter(|_| good),
            fallback: good && record.fallback && record.degraded.is_none(),
            degraded: good
                && (record.degraded.is_some() || record.cache.as_deref() == Some("stale")),
            first_token_ms: record.first_token_ms,
        });
    }

    pub(crate) fn stats(&mut self, since: UnixMs) -> RouteStats {
        while self.samples.front().is_some_and(|s| s.at < since) {
            self.samples.pop_front();
        }
        let mut stats = RouteStats::default();
        let mut first_tokens = Vec::new();
        for sample in &self.samples {
            stats.requests += 1;
            stats.bad += u32::from(!sample.good);
            stats.fallback += u32::from(sample.fallback);
            stats.degraded += u32::from(sample.degraded);
            first_tokens.extend(sample.first_token_ms);
        }
        first_tokens.sort_by(f64::total_cmp);
        stats.first_token_p50_ms = nearest_rank(&first_tokens, 50.0);
        stats.first_token_p95_ms = nearest_rank(&first_tokens, 95.0);
        stats
    }
}

/// Who answered a route's recent requests, for saying that fallback
/// absorbed an outage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Served {
    pub requests: u32,
    pub failed: u32,
    /// Good answers per target, in the order targets first answered.
    pub by_target: Vec<(String, u32)>,
}

impl RouteWindow {
    /// Reads without dropping old samples, so a page view never changes
    /// what the next evaluation sees.
    pub(crate) fn served(&self, since: UnixMs) -> Served {
        let mut served = Served::default();
        for sample in self.samples.iter().filter(|s| s.at >= since) {
            served.requests += 1;
            served.failed += u32::from(!sample.good);
            let Some(target) = &sample.served_by else {
                continue;
            };
            match served.by_target.iter_mut().find(|(t, _)| t == target) {
                Some((_, count)) => *count += 1,
                None => served.by_target.push((target.clone(), 1)),
            }
        }
        served
    }
}

fn ratio(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        f64::from(part) / f64::from(whole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(at: UnixMs, class: Option<&str>) -> AttemptRecord {
        AttemptRecord {
            target: "a/m".into(),
            at,
            latency_ms: 10.0,
            first_token_ms: class.is_none().then_some(10.0),
            status: None,
            error_class: class.map(str::to_string),
            hedge: false,
        }
    }

    #[test]
    fn old_samples_fall_out_and_client_errors_do_not_count() {
        let mut window = TargetWindow::default();
        window.push(&attempt(0, Some("server_error")));
        window.push(&attempt(1_000, Some("overloaded")));
        window.push(&attempt(2_000, None));
        window.push(&attempt(2_500, Some("client_error")));
        window.push(&attempt(2_600, Some("cancelled")));
        // The client's own deadline cut it: nothing about the provider.
        window.push(&attempt(2_700, Some("deadline")));
        // A target refusing a translation is well, just not for this request.
        window.push(&attempt(2_800, Some("translation_refused")));
        let stats = window.stats(500);
        assert_eq!(stats.attempts, 2);
        assert_eq!(stats.failures, 1);
        assert_eq!(stats.throttled, 1);
        assert_eq!(stats.first_token_p50_ms, Some(10.0));
    }
}
