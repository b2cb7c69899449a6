//! The drill's report: figures computed from [`DrillData`] alone, so that
//! the same numbers appear in the terminal, in the Markdown file, in the
//! chart and in `--assert` checks, and tests can reconcile them against
//! what was recorded without running anything.
//!
//! Two clocks meet here. `Sent.at` and `Marker.at` are *wall* time since
//! the drill started; phases, `outage_start`, `recovery_start`, and each
//! request's `latency` and `first_token` are *scenario* time. The whole
//! system (providers and the gateway's own timers) runs `speed` times
//! faster than the incident it plays, so reaction times are reported in
//! scenario time too, with the real time beside them.

mod assertion;
mod buckets;
mod chart;
mod figures;
mod markdown;
mod scale;
mod table;
mod text;

use std::time::Duration;

use bulwark::observe::incident::Incident;

use crate::outcome::{DrillData, MarkerKind, Path};

pub use assertion::{Assertion, AssertionError, Comparison, METRICS};
pub use chart::chart_svg;
pub use markdown::markdown;
pub use table::table;

/// What one path (through Bulwark, or straight to the primary) delivered.
///
/// Every request sent is counted exactly once in `ok` or `failed`, and
/// every `ok` answer exactly once in `from_cache`, `degraded`, `fallback`
/// or `first_target`, checked in that order: a stale cache answer served
/// while a fallback was tried is a cache answer, a degraded answer from a
/// fallback model is degraded. The order goes from "least like a normal
/// answer" to "a normal answer", so nothing unusual hides in
/// `first_target`.
#[derive(Debug, Clone, PartialEq)]
pub struct PathFigures {
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    /// `ok / sent`, a fraction (0.999 is 99.9 %). 0 when nothing was sent,
    /// so an empty run cannot pass an availability check.
    pub availability: f64,
    /// Nearest-rank percentiles over *all* requests of the path, failed
    /// included: a hang the user waited through before an error is part of
    /// what they experienced.
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub slowest: Duration,
    /// Over the requests that got a first content byte.
    pub first_token_p50: Option<Duration>,
    pub first_token_p95: Option<Duration>,
    /// Answered by another target after the first failed or was skipped.
    pub fallback: u64,
    /// Answered from the cache, fresh (`hit`) or `stale`.
    pub from_cache: u64,
    /// Answered degraded (a simpler model or a static answer).
    pub degraded: u64,
    /// Answered normally by the route's first target.
    pub first_target: u64,
    /// Answers that left out fields the client sent, as a translation to
    /// a format lacking them does (`x-bulwark-dropped`); counted apart
    /// from how they were served.
    pub dropped: u64,
    /// Failures by error, most frequent first.
    pub errors: Vec<(String, u64)>,
    /// Sequence numbers recorded more than once: a request counted twice.
    pub duplicate_seqs: Vec<u64>,
    /// Sequence numbers never recorded on this path although the load sent
    /// them (a gap in the numbering, or present on the other path only).
    pub missing_seqs: Vec<u64>,
}

/// The whole drill, in figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub bulwark: PathFigures,
    pub direct: PathFigures,
    /// Upstream calls per Bulwark request: what retries, hedges, fallbacks
    /// and probes cost the providers. 0 when nothing was sent.
    pub amplification: f64,
    /// Upstream calls the retry budget allows for this load.
    pub retry_budget_allowance: u64,
    /// Calls all simulated providers received from the gateway.
    pub upstream_calls: u64,
    /// The same, by provider name.
    pub upstream_by_provider: Vec<(String, u64)>,
    /// Wall time from the outage's start to the first incident opened.
    pub time_to_detect: Option<Duration>,
    /// Wall time from the outage's start to the first alert delivered.
    pub time_to_first_alert: Option<Duration>,
    /// Wall time from the outage's start to the first Bulwark request sent
    /// that a fallback answered.
    pub time_to_fail_over: Option<Duration>,
    /// Wall time from the primary's recovery to the first incident
    /// resolved.
    pub time_to_recover: Option<Duration>,
    /// Bulwark answers (or errors) slower than the route's deadline.
    pub over_deadline: u64,
    pub deadline: Duration,
    pub incidents: Vec<Incident>,
    /// `incident_opened` alerts delivered to the drill's webhook.
    pub incident_alerts: u64,
}

impl Report {
    pub fn from_data(data: &DrillData) -> Report {
        let mut bulwark = figures::path_figures(data, Path::Bulwark);
        let mut direct = figures::path_figures(data, Path::Direct);
        figures::cross_check_seqs(data, &mut bulwark, &mut direct);
        let upstream_calls: u64 = data.upstream_calls.iter().map(|(_, n)| n).sum();
        let timings = figures::timings(data);
        Report {
            amplification: ratio(upstream_calls, bulwark.sent),
            bulwark,
            direct,
            retry_budget_allowance: data.retry_budget_allowance,
            upstream_calls,
            upstream_by_provider: data.upstream_calls.clone(),
            time_to_detect: timings.detect,
            time_to_first_alert: timings.first_alert,
            time_to_fail_over: timings.fail_over,
            time_to_recover: timings.recover,
            over_deadline: data
                .sent
                .iter()
                .filter(|s| s.path == Path::Bulwark && s.latency > data.deadline)
                .count() as u64,
            deadline: data.deadline,
            incidents: data.incidents.clone(),
            incident_alerts: data
                .markers
                .iter()
                .filter(|m| m.kind == MarkerKind::AlertDelivered && m.label == "incident_opened")
                .count() as u64,
        }
    }

    /// Every request sent is accounted for exactly once: per path,
    /// `sent == ok + failed`, `ok == from_cache + degraded + fallback +
    /// first_target`, and every sequence number appears exactly once.
    /// The error lists every broken identity, so one run shows them all.
    pub fn reconciles(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        for (name, f) in [("bulwark", &self.bulwark), ("direct", &self.direct)] {
            if f.sent != f.ok + f.failed {
                problems.push(format!(
                    "{name}: {} sent but {} ok + {} failed",
                    f.sent, f.ok, f.failed
                ));
            }
            let kinds = f.from_cache + f.degraded + f.fallback + f.first_target;
            if f.ok != kinds {
                problems.push(format!(
                    "{name}: {} ok but {} from cache + {} degraded + {} fallback + {} first target = {kinds}",
                    f.ok, f.from_cache, f.degraded, f.fallback, f.first_target
                ));
            }
            let errors: u64 = f.errors.iter().map(|(_, n)| n).sum();
            if errors != f.failed {
                problems.push(format!(
                    "{name}: {} failed but the error breakdown sums to {errors}",
                    f.failed
                ));
            }
            if !f.duplicate_seqs.is_empty() {
                problems.push(format!(
                    "{name}: requests recorded more than once: seq {}",
                    text::list(&f.duplicate_seqs)
                ));
            }
            if !f.missing_seqs.is_empty() {
                problems.push(format!(
                    "{name}: requests never recorded: seq {}",
                    text::list(&f.missing_seqs)
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}
