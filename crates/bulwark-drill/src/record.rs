//! Recording: what a request log saw (per target over time: the error mix,
//! hangs, broken streams, first-token latency, and the load) turned into a
//! scenario, so last Tuesday's incident can be replayed against next
//! week's config.
//!
//! The log is cut into buckets; each provider's buckets with alike
//! conditions merge into one phase. A bucket in which a provider got too
//! few calls to judge (its breaker was open, say) keeps the conditions
//! before it: no calls is not evidence of recovery.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use bulwark::config::Config;
use bulwark::observe::record::RequestRecord;

use crate::error::ScenarioError;
use crate::scenario::Scenario;
use bulwark::config::duration::format as format_duration;

/// Fewer calls than this in a bucket say nothing about a provider.
const MIN_CALLS: u32 = 5;
/// How many buckets the log is cut into, at most.
const BUCKETS: u64 = 48;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("the request log holds no requests in that time")]
    Empty,
    #[error("the recorded scenario did not validate (a bug in recording): {0}")]
    Invalid(#[from] ScenarioError),
}

/// What one provider did in one bucket.
#[derive(Debug, Clone, Default)]
struct Tally {
    calls: u32,
    statuses: BTreeMap<u16, u32>,
    hangs: u32,
    hang_ms: Vec<f64>,
    cuts: u32,
    resets: u32,
    first_token_ms: Vec<f64>,
}

/// Conditions of a phase, as shares of calls.
#[derive(Debug, Clone, PartialEq)]
struct Mix {
    errors: BTreeMap<u16, f64>,
    hang: f64,
    hang_ms: (f64, f64),
    cut: f64,
    reset: f64,
    first_token_ms: Option<(f64, f64)>,
}

impl Mix {
    fn of(t: &Tally, speed: f64) -> Mix {
        let share = |n: u32| f64::from(n) / f64::from(t.calls.max(1));
        Mix {
            errors: t.statuses.iter().map(|(s, n)| (*s, share(*n))).collect(),
            hang: share(t.hangs),
            hang_ms: spread(&t.hang_ms, speed).unwrap_or((0.0, 0.0)),
            cut: share(t.cuts),
            reset: share(t.resets),
            first_token_ms: spread(&t.first_token_ms, speed),
        }
    }

    fn failing(&self) -> f64 {
        self.errors.values().sum::<f64>() + self.hang + self.cut + self.reset
    }

    /// Close enough to be one phase: failure shares within 10 points plus
    /// the sampling error of a bucket of `calls` (a handful of calls can
    /// show 100 % failing by chance), first-token medians within a factor
    /// of two.
    fn alike(&self, other: &Mix, calls: u32) -> bool {
        let latency_alike = match (self.first_token_ms, other.first_token_ms) {
            (Some((a, _)), Some((b, _))) => a.max(b) <= 2.0 * a.min(b).max(1.0),
            _ => true,
        };
        let noise = 1.0 / f64::from(calls.max(1)).sqrt();
        (self.failing() - other.failing()).abs() < 0.10 + noise
            && (self.hang - other.hang).abs() < 0.05 + noise
            && latency_alike
    }
}

/// Median and p95, in scenario milliseconds.
fn spread(values: &[f64], speed: f64) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at =
        |q: f64| sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
    Some((at(0.5) * speed, at(0.95) * speed))
}

/// Writes the scenario for `rows`, recorded at `speed` (1 for a real
/// gateway's log), and checks it parses back.
pub fn record(
    rows: &[RequestRecord],
    config: &Config,
    speed: f64,
    name: &str,
) -> Result<String, RecordError> {
    let rows: Vec<&RequestRecord> = rows.iter().filter(|r| r.client_format != "probe").collect();
    let (Some(first), Some(last)) = (
        rows.iter().map(|r| r.at).min(),
        rows.iter().map(|r| r.at).max(),
    ) else {
        return Err(RecordError::Empty);
    };
    let wall_ms = (last - first).max(1_000) as u64;
    let bucket_ms = wall_ms.div_ceil(BUCKETS).max(250);
    let buckets = wall_ms.div_ceil(bucket_ms).max(1) as usize;
    let scenario_bucket = Duration::from_millis(bucket_ms).mul_f64(speed);
    let duration = scenario_bucket * buckets as u32;

    // Providers the log's routes use, in config order, with their models.
    let mut models: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut tallies: BTreeMap<String, Vec<Tally>> = BTreeMap::new();
    let mut first_choice: BTreeMap<String, u64> = BTreeMap::new();
    for route in rows.iter().map(|r| r.route.as_str()) {
        if let Some(route) = config.routes.get(route) {
            for target in &route.targets {
                let known = models.entry(target.provider.clone()).or_default();
                if !known.contains(&target.model) {
                    known.push(target.model.clone());
                }
            }
        }
    }
    for row in &rows {
        if let Some(attempt) = row.attempts.first() {
            let provider = attempt.target.split('/').next().unwrap_or_default();
            *first_choice.entry(provider.to_string()).or_default() += 1;
        }
        for attempt in &row.attempts {
            let Some((provider, model)) = attempt.target.split_once('/') else {
                continue;
            };
            let class = attempt.error_class.as_deref();
            // A hedge cancelled because its twin won, or an attempt the
            // client's own deadline cut, says nothing about the provider.
            if matches!(class, Some("cancelled" | "deadline"))
                || !config.providers.contains_key(provider)
            {
                continue;
            }
            let known = models.entry(provider.to_string()).or_default();
            if !known.iter().any(|m| m == model) {
                known.push(model.to_string());
            }
            let index =
                (((attempt.at - first).max(0) as u64) / bucket_ms).min(buckets as u64 - 1) as usize;
            let slots = tallies
                .entry(provider.to_string())
                .or_insert_with(|| vec![Tally::default(); buckets]);
            let Some(tally) = slots.get_mut(index) else {
                continue;
            };
            tally.calls += 1;
            match (class, attempt.status) {
                (None, _) => tally.first_token_ms.extend(attempt.first_token_ms),
                (Some("timeout"), _) => {
                    tally.hangs += 1;
                    tally.hang_ms.push(attempt.latency_ms);
                }
                (Some("stream" | "decode" | "too_large"), _) => tally.cuts += 1,
                (Some("connect"), None) => tally.resets += 1,
                (_, Some(status)) => *tally.statuses.entry(status).or_default() += 1,
                (Some(_), None) => tally.resets += 1,
            }
        }
    }
    let primary = first_choice
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(p, _)| p.clone())
        .or_else(|| models.keys().next().cloned())
        .ok_or(RecordError::Empty)?;

    let mut yaml = String::new();
    let _ = writeln!(
        yaml,
        "# Recorded by `bulwark drill record` from {} requests.",
        rows.len()
    );
    let _ = writeln!(yaml, "name: {}", quote(name));
    let _ = writeln!(
        yaml,
        "description: {}",
        quote(&format!(
            "What the request log saw over {} of traffic (recorded at speed {speed}).",
            format_duration(round(duration))
        ))
    );
    let _ = writeln!(yaml, "duration: {}", format_duration(round(duration)));
    let _ = writeln!(yaml, "primary: {}", quote(&primary));
    let _ = writeln!(yaml, "speed: {speed}");
    let _ = writeln!(yaml, "providers:");
    for (provider, models) in &models {
        let Some(settings) = config.providers.get(provider) else {
            continue;
        };
        let format = bulwark::wire::upstream(settings.kind).kind_name();
        let _ = writeln!(yaml, "  {}:", quote(provider));
        let _ = writeln!(yaml, "    format: {format}");
        let _ = writeln!(
            yaml,
            "    models: [{}]",
            models
                .iter()
                .map(|m| quote(m))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(yaml, "    phases:");
        let phases = phases(
            tallies.get(provider).map(Vec::as_slice).unwrap_or_default(),
            speed,
        );
        for (i, (end_bucket, mix)) in phases.iter().enumerate() {
            let last = i + 1 == phases.len();
            write_phase(
                &mut yaml,
                mix,
                (!last).then(|| scenario_bucket * *end_bucket as u32),
            );
        }
    }
    let (streams, anthropic) = (
        rows.iter().filter(|r| r.stream).count(),
        rows.iter()
            .filter(|r| r.client_format == "anthropic")
            .count(),
    );
    let count = rows.len() as f64;
    let _ = writeln!(yaml, "load:");
    let _ = writeln!(yaml, "  rps: {:.3}", count / (wall_ms as f64 / 1000.0));
    let _ = writeln!(yaml, "  stream_share: {:.3}", streams as f64 / count);
    let _ = writeln!(
        yaml,
        "  anthropic_client_share: {:.3}",
        anthropic as f64 / count
    );
    Scenario::parse(&yaml, "recorded scenario")?;
    Ok(yaml)
}

/// Merges a provider's buckets into phases: (end bucket, conditions).
/// Buckets with too few calls to judge (the breaker kept traffic away)
/// are no evidence either way: a run of them between two different
/// phases is split down the middle.
fn phases(tallies: &[Tally], speed: f64) -> Vec<(usize, Mix)> {
    let mut phases: Vec<(usize, Tally)> = Vec::new();
    // Where the current run of unjudged buckets began.
    let mut unjudged_from: Option<usize> = None;
    // Calls of unjudged buckets that disagree with the current phase: they
    // belong to whichever phase the next judged bucket says comes next.
    // Merged into the current phase, a healthy one would take in the
    // failing probes of the outage after it and replay as failing.
    let mut pending = Tally::default();
    for (i, tally) in tallies.iter().enumerate() {
        if tally.calls < MIN_CALLS {
            // A few calls (a breaker's probes) cannot start a phase, but
            // ones that agree with the current phase extend it: probes
            // failing in a failing phase are evidence it went on.
            let agrees = tally.calls > 0
                && phases.last().is_some_and(|(_, sum)| {
                    (Mix::of(sum, speed).failing() >= 0.5)
                        == (Mix::of(tally, speed).failing() >= 0.5)
                });
            if agrees && let Some((end, sum)) = phases.last_mut() {
                merge(sum, tally);
                merge(sum, &std::mem::take(&mut pending));
                *end = i + 1;
                unjudged_from = None;
                continue;
            }
            merge(&mut pending, tally);
            unjudged_from.get_or_insert(i);
            continue;
        }
        let gap_start = unjudged_from.take();
        let gap = std::mem::take(&mut pending);
        match phases.last_mut() {
            Some((end, sum)) if Mix::of(sum, speed).alike(&Mix::of(tally, speed), tally.calls) => {
                merge(sum, &gap);
                merge(sum, tally);
                *end = i + 1;
            }
            Some((end, _)) => {
                *end = gap_start.map_or(i, |g| g + (i - g) / 2);
                let mut next = gap;
                merge(&mut next, tally);
                phases.push((i + 1, next));
            }
            None => {
                let mut first = gap;
                merge(&mut first, tally);
                phases.push((i + 1, first));
            }
        }
    }
    if let Some((_, sum)) = phases.last_mut() {
        merge(sum, &pending);
    }
    if let Some((end, _)) = phases.last_mut() {
        *end = tallies.len();
    }
    if phases.is_empty() {
        return vec![(1, Mix::of(&Tally::default(), speed))];
    }
    phases
        .into_iter()
        .map(|(end, t)| (end, Mix::of(&t, speed)))
        .collect()
}

fn merge(into: &mut Tally, from: &Tally) {
    into.calls += from.calls;
    for (status, n) in &from.statuses {
        *into.statuses.entry(*status).or_default() += n;
    }
    into.hangs += from.hangs;
    into.hang_ms.extend(&from.hang_ms);
    into.cuts += from.cuts;
    into.resets += from.resets;
    into.first_token_ms.extend(&from.first_token_ms);
}

fn write_phase(yaml: &mut String, mix: &Mix, until: Option<Duration>) {
    let failing = mix.failing();
    let name = if failing < 0.01 {
        "healthy".to_string()
    } else {
        format!("{:.0} % failing", failing * 100.0)
    };
    let _ = writeln!(yaml, "      - name: {}", quote(&name));
    if let Some(until) = until {
        let _ = writeln!(yaml, "        until: {}", format_duration(round(until)));
    }
    if let Some((p50, p95)) = mix.first_token_ms {
        let _ = writeln!(
            yaml,
            "        latency: {{ first_token: {{ p50: {}ms, p95: {}ms }} }}",
            p50.round().max(1.0),
            p95.round().max(p50.round().max(1.0))
        );
    }
    let errors: Vec<String> = mix
        .errors
        .iter()
        .filter(|(_, share)| **share >= 0.001)
        .map(|(status, share)| format!("{status}: {share:.3}"))
        .collect();
    if !errors.is_empty() {
        let _ = writeln!(yaml, "        errors: {{ {} }}", errors.join(", "));
    }
    if mix.hang >= 0.001 {
        let (p50, p95) = mix.hang_ms;
        let _ = writeln!(
            yaml,
            "        hang: {{ share: {:.3}, for: {{ p50: {}ms, p95: {}ms }} }}",
            mix.hang,
            p50.round().max(1.0),
            p95.round().max(p50.round().max(1.0))
        );
    }
    if mix.cut >= 0.001 {
        let _ = writeln!(yaml, "        cut: {{ share: {:.3} }}", mix.cut);
    }
    if mix.reset >= 0.001 {
        let _ = writeln!(yaml, "        reset: {:.3}", mix.reset);
    }
}

fn round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs().max(1))
}

fn quote(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(calls: u32, failed: u32) -> Tally {
        let mut tally = Tally {
            calls,
            ..Tally::default()
        };
        if failed > 0 {
            tally.statuses.insert(529, failed);
        }
        tally
    }

    #[test]
    fn failing_probes_after_a_healthy_stretch_belong_to_the_outage() {
        // Healthy, then the breaker opens: a few failing probes a bucket,
        // then enough calls to judge the outage.
        let mut tallies = vec![bucket(20, 0); 8];
        tallies.extend([bucket(3, 3), bucket(2, 2), bucket(4, 4)]);
        tallies.extend(vec![bucket(10, 8); 6]);
        let phases = phases(&tallies, 1.0);
        assert_eq!(phases.len(), 2, "{phases:?}");
        assert!(
            phases[0].1.failing() < 0.01,
            "the healthy stretch took in the outage's probes: {phases:?}"
        );
        // The unjudged stretch is split down the middle.
        assert_eq!(phases[0].0, 9);
        assert!(phases[1].1.failing() > 0.8, "{phases:?}");
    }

    #[test]
    fn probes_agreeing_with_the_phase_extend_it() {
        let mut tallies = vec![bucket(10, 8); 4];
        tallies.extend([bucket(2, 2), bucket(3, 3)]);
        tallies.extend(vec![bucket(20, 0); 4]);
        let phases = phases(&tallies, 1.0);
        assert_eq!(phases.len(), 2, "{phases:?}");
        assert_eq!(phases[0].0, 6, "{phases:?}");
        assert!(phases[1].1.failing() < 0.01, "{phases:?}");
    }
}
