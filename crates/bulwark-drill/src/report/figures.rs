//! The arithmetic behind the report, kept apart from its presentation so
//! the tests can check each figure against an independent computation.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use bulwark::observe::percentile::nearest_rank;

use crate::outcome::{DrillData, MarkerKind, Path, Sent};

use super::PathFigures;

/// How an answer that succeeded was served. Checked in this order, from
/// least to most like a normal answer (see [`PathFigures`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Served {
    Cache,
    Degraded,
    Fallback,
    FirstTarget,
}

pub(crate) fn served(s: &Sent) -> Served {
    if matches!(s.cache.as_deref(), Some("hit" | "stale")) {
        Served::Cache
    } else if s.degraded.is_some() {
        Served::Degraded
    } else if s.fallback {
        Served::Fallback
    } else {
        Served::FirstTarget
    }
}

/// A failure's name for the breakdown: the recorded reason, else the
/// status, so no failure is left unnamed.
pub(crate) fn error_name(s: &Sent) -> String {
    match (&s.error, s.status) {
        (Some(e), _) if !e.trim().is_empty() => e.trim().to_string(),
        (_, Some(status)) => status.to_string(),
        _ => "no response".to_string(),
    }
}

pub(crate) fn path_figures(data: &DrillData, path: Path) -> PathFigures {
    let sent: Vec<&Sent> = data.sent.iter().filter(|s| s.path == path).collect();
    let mut latencies: Vec<Duration> = sent.iter().map(|s| s.latency).collect();
    latencies.sort_unstable();
    let mut first_tokens: Vec<Duration> = sent.iter().filter_map(|s| s.first_token).collect();
    first_tokens.sort_unstable();

    let (mut ok, mut failed) = (0, 0);
    let (mut cache, mut degraded, mut fallback, mut first) = (0, 0, 0, 0);
    let mut errors: HashMap<String, u64> = HashMap::new();
    let mut dropped = 0;
    for s in &sent {
        if s.ok && s.dropped.is_some() {
            dropped += 1;
        }
        if !s.ok {
            failed += 1;
            *errors.entry(error_name(s)).or_default() += 1;
            continue;
        }
        ok += 1;
        match served(s) {
            Served::Cache => cache += 1,
            Served::Degraded => degraded += 1,
            Served::Fallback => fallback += 1,
            Served::FirstTarget => first += 1,
        }
    }
    let mut errors: Vec<(String, u64)> = errors.into_iter().collect();
    errors.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));

    let mut seen: BTreeMap<u64, u32> = BTreeMap::new();
    for s in &sent {
        *seen.entry(s.seq).or_default() += 1;
    }
    let n = sent.len() as u64;
    PathFigures {
        sent: n,
        ok,
        failed,
        availability: if n == 0 { 0.0 } else { ok as f64 / n as f64 },
        p50: nearest_rank(&latencies, 50.0).unwrap_or_default(),
        p95: nearest_rank(&latencies, 95.0).unwrap_or_default(),
        p99: nearest_rank(&latencies, 99.0).unwrap_or_default(),
        slowest: latencies.last().copied().unwrap_or_default(),
        first_token_p50: nearest_rank(&first_tokens, 50.0),
        first_token_p95: nearest_rank(&first_tokens, 95.0),
        fallback,
        from_cache: cache,
        degraded,
        first_target: first,
        dropped,
        errors,
        duplicate_seqs: seen
            .iter()
            .filter(|(_, count)| **count > 1)
            .map(|(seq, _)| *seq)
            .collect(),
        missing_seqs: Vec::new(),
    }
}

/// The load numbers its requests consecutively and sends each logical
/// request on both paths, so a sequence number absent from a path that
/// ran (a gap, or one the other path has) is a request that was lost
/// between sending and recording.
pub(crate) fn cross_check_seqs(
    data: &DrillData,
    bulwark: &mut PathFigures,
    direct: &mut PathFigures,
) {
    let seqs = |path: Path| -> BTreeSet<u64> {
        data.sent
            .iter()
            .filter(|s| s.path == path)
            .map(|s| s.seq)
            .collect()
    };
    let (b, d) = (seqs(Path::Bulwark), seqs(Path::Direct));
    let all: BTreeSet<u64> = b.union(&d).copied().collect();
    let (Some(&low), Some(&high)) = (all.first(), all.last()) else {
        return;
    };
    for (have, figures) in [(&b, bulwark), (&d, direct)] {
        if have.is_empty() {
            continue;
        }
        figures.missing_seqs = (low..=high).filter(|seq| !have.contains(seq)).collect();
    }
}

pub(crate) struct Timings {
    pub detect: Option<Duration>,
    pub first_alert: Option<Duration>,
    pub fail_over: Option<Duration>,
    pub recover: Option<Duration>,
}

/// Reaction times in scenario time. The outage's start is converted to
/// wall time once, everything is measured from there on the wall clock,
/// and the results converted back: the gateway's clocks run at the drill's
/// speed too, so scenario time is the time of the incident being played.
pub(crate) fn timings(data: &DrillData) -> Timings {
    let outage = data.outage_start.map(|t| data.wall_time(t));
    let recovery = data.recovery_start.map(|t| data.wall_time(t));
    let first_marker = |kind: MarkerKind, from: Option<Duration>| {
        let from = from?;
        data.markers
            .iter()
            .filter(|m| m.kind == kind && m.at >= from)
            .map(|m| m.at - from)
            .min()
    };
    let fail_over = outage.and_then(|from| {
        data.sent
            .iter()
            .filter(|s| s.path == Path::Bulwark && s.at >= from && s.ok && s.fallback)
            .map(|s| s.at - from)
            .min()
    });
    let scenario = |t: Option<Duration>| t.map(|t| data.scenario_time(t));
    Timings {
        detect: scenario(first_marker(MarkerKind::IncidentOpened, outage)),
        first_alert: scenario(first_marker(MarkerKind::AlertDelivered, outage)),
        fail_over: scenario(fail_over),
        recover: scenario(first_marker(MarkerKind::IncidentResolved, recovery)),
    }
}

/// The drill's start as a Unix time in milliseconds, so incident
/// timestamps (Unix times, from the gateway) can be placed on the drill's
/// wall clock. Found from an incident whose opening was also recorded as
/// a marker (labelled with its title or id); `None` when none was.
pub(crate) fn drill_epoch_ms(data: &DrillData) -> Option<i64> {
    data.incidents.iter().find_map(|incident| {
        data.markers
            .iter()
            .filter(|m| {
                m.kind == MarkerKind::IncidentOpened
                    && (m.label == incident.title || m.label == incident.id)
            })
            .map(|m| incident.started_at - m.at.as_millis() as i64)
            .next()
    })
}

/// Wall time since the drill started of a Unix time, given the epoch.
pub(crate) fn wall_of(epoch_ms: i64, unix_ms: i64) -> Duration {
    Duration::from_millis(unix_ms.saturating_sub(epoch_ms).max(0) as u64)
}
