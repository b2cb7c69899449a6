//! The rules a parsed scenario must meet beyond its shape. Every problem is
//! collected (not just the first) so a scenario author fixes them in one go.

use std::time::Duration;

use crate::error::Issue;
use crate::scenario::{Conditions, LatencySpec, Load, Scenario, Spread};
use bulwark::config::duration::format;

/// Shares may add up to 1 give or take float rounding.
const SUM_SLACK: f64 = 1e-9;

/// More flaps than this in one phase is a unit slip (`6ms` for `6s`), and
/// would make the timeline schedule millions of switches.
const MAX_FLAPS: f64 = 100_000.0;

/// Every problem with `s`, each with its key path.
pub fn validate(s: &Scenario) -> Vec<Issue> {
    let mut issues = Vec::new();
    if s.name.trim().is_empty() {
        issues.push(Issue::new("name", "must not be empty"));
    }
    if s.duration.is_zero() {
        issues.push(Issue::new("duration", "must be positive"));
    }
    if let Some(speed) = s.speed
        && !(speed.is_finite() && speed > 0.0)
    {
        issues.push(Issue::new("speed", format!("must be above 0, got {speed}")));
    }
    if s.providers.is_empty() {
        issues.push(Issue::new("providers", "at least one provider is needed"));
    } else if !s.providers.contains_key(&s.primary) {
        let names: Vec<&str> = s.providers.keys().map(String::as_str).collect();
        issues.push(Issue::new(
            "primary",
            format!(
                "`{}` is not one of the providers ({})",
                s.primary,
                names.join(", ")
            ),
        ));
    }
    for (name, provider) in &s.providers {
        let at = format!("providers.{name}");
        if provider.models.is_empty() {
            issues.push(Issue::new(
                format!("{at}.models"),
                "at least one model is needed",
            ));
        }
        if let Some(latency) = &provider.latency {
            latency_spec(latency, &format!("{at}.latency"), &mut issues);
        }
        if provider.phases.is_empty() {
            issues.push(Issue::new(
                format!("{at}.phases"),
                "at least one phase is needed",
            ));
        }
        let untils: Vec<_> = provider.phases.iter().map(|p| p.until).collect();
        timeline(&untils, s.duration, &format!("{at}.phases"), &mut issues);
        let bounds = s.phase_bounds(provider);
        for (i, phase) in provider.phases.iter().enumerate() {
            let at = format!("{at}.phases[{i}]");
            let length = bounds
                .get(i)
                .map_or(Duration::ZERO, |(a, b)| b.saturating_sub(*a));
            if phase.name.trim().is_empty() {
                issues.push(Issue::new(format!("{at}.name"), "must not be empty"));
            }
            conditions(&phase.conditions(), &at, &mut issues);
            if let Some(flap) = &phase.flap {
                if flap.period.is_zero() {
                    issues.push(Issue::new(format!("{at}.flap.period"), "must be positive"));
                } else if length.as_secs_f64() / flap.period.as_secs_f64() > MAX_FLAPS {
                    issues.push(Issue::new(
                        format!("{at}.flap.period"),
                        format!("is too short: more than {MAX_FLAPS} flaps in the phase"),
                    ));
                }
                if flap.down_for.is_zero() || flap.down_for >= flap.period {
                    issues.push(Issue::new(
                        format!("{at}.flap.down_for"),
                        format!(
                            "must be positive and shorter than the period ({})",
                            format(flap.period)
                        ),
                    ));
                }
                conditions(&flap.down, &format!("{at}.flap.down"), &mut issues);
            }
        }
    }
    load(&s.load, s.duration, &mut issues);
    issues
}

/// Phase ends must rise strictly, stay within the scenario, and only the
/// last may be left open (it runs to the end).
fn timeline(untils: &[Option<Duration>], duration: Duration, at: &str, issues: &mut Vec<Issue>) {
    let mut previous = Duration::ZERO;
    for (i, until) in untils.iter().enumerate() {
        let path = format!("{at}[{i}].until");
        let last = i + 1 == untils.len();
        match until {
            None if !last => issues.push(Issue::new(
                path,
                "only the last phase may leave out `until` (it runs to the end)",
            )),
            None => {}
            Some(u) if u.is_zero() => issues.push(Issue::new(path, "must be positive")),
            Some(u) if *u <= previous => issues.push(Issue::new(
                path,
                format!(
                    "must be after the previous phase's end ({}); phases are listed in order",
                    format(previous)
                ),
            )),
            // A zero duration is reported once, not against every phase.
            Some(u) if *u > duration && !duration.is_zero() => issues.push(Issue::new(
                path,
                format!("is past the end of the scenario ({})", format(duration)),
            )),
            Some(u) if last && *u < duration && !duration.is_zero() => issues.push(Issue::new(
                path,
                format!(
                    "the last phase runs to the end of the scenario ({}); leave out `until` or set it to that",
                    format(duration)
                ),
            )),
            Some(u) => previous = *u,
        }
    }
}

fn share(value: f64, path: String, issues: &mut Vec<Issue>) {
    if !(0.0..=1.0).contains(&value) {
        issues.push(Issue::new(
            path,
            format!("must be between 0 and 1, got {value}"),
        ));
    }
}

fn error_status(status: u16, path: String, issues: &mut Vec<Issue>) {
    if !(400..=599).contains(&status) {
        issues.push(Issue::new(
            path,
            format!("{status} is not an HTTP error status (400 to 599)"),
        ));
    }
}

fn conditions(c: &Conditions, at: &str, issues: &mut Vec<Issue>) {
    let shares = c.shares();
    let before = issues.len();
    for (key, value) in &shares {
        share(*value, format!("{at}.{key}"), issues);
    }
    let total: f64 = shares.iter().map(|(_, v)| v).sum();
    // A sum over a share already reported out of range says nothing new.
    if issues.len() == before && total > 1.0 + SUM_SLACK {
        issues.push(Issue::new(
            at,
            format!(
                "fault shares add up to {}; each is a share of all requests, so together at most 1",
                (total * 1000.0).round() / 1000.0
            ),
        ));
    }
    for status in c.errors.keys() {
        error_status(*status, format!("{at}.errors.{status}"), issues);
    }
    if let Some(status) = c.error_event.and_then(|e| e.status) {
        error_status(status, format!("{at}.error_event.status"), issues);
    }
    if let Some(hang) = &c.hang {
        spread(&hang.length, true, &format!("{at}.hang.for"), issues);
    }
    if let Some(stall) = &c.stall {
        spread(&stall.length, true, &format!("{at}.stall.for"), issues);
    }
    if let Some(latency) = &c.latency {
        latency_spec(latency, &format!("{at}.latency"), issues);
    }
    if c.rpm == Some(0) {
        issues.push(Issue::new(
            format!("{at}.rpm"),
            "must be at least 1 (leave it out for no quota)",
        ));
    }
}

fn latency_spec(l: &LatencySpec, at: &str, issues: &mut Vec<Issue>) {
    for (key, value) in [
        ("headers", &l.headers),
        ("first_token", &l.first_token),
        ("per_token", &l.per_token),
    ] {
        if let Some(value) = value {
            spread(value, false, &format!("{at}.{key}"), issues);
        }
    }
}

/// Latencies may be zero; hangs and stalls of nothing are a typo.
fn spread(s: &Spread, positive: bool, at: &str, issues: &mut Vec<Issue>) {
    match *s {
        Spread::Fixed(d) if positive && d.is_zero() => {
            issues.push(Issue::new(at, "must be positive"));
        }
        Spread::Percentiles { p50, p95 } if p95 < p50 => issues.push(Issue::new(
            at,
            format!(
                "p95 ({}) must not be below p50 ({})",
                format(p95),
                format(p50)
            ),
        )),
        Spread::Percentiles { p50, .. } if positive && p50.is_zero() => {
            issues.push(Issue::new(format!("{at}.p50"), "must be positive"));
        }
        _ => {}
    }
}

fn load(l: &Load, duration: Duration, issues: &mut Vec<Issue>) {
    let rate = |rps: f64, path: String, issues: &mut Vec<Issue>| {
        if !(rps.is_finite() && rps >= 0.0) {
            issues.push(Issue::new(
                path,
                format!("must be a rate of 0 or more requests a second, got {rps}"),
            ));
        }
    };
    rate(l.rps, "load.rps".into(), issues);
    share(l.stream_share, "load.stream_share".into(), issues);
    share(
        l.anthropic_client_share,
        "load.anthropic_client_share".into(),
        issues,
    );
    let untils: Vec<_> = l.phases.iter().map(|p| p.until).collect();
    timeline(&untils, duration, "load.phases", issues);
    for (i, phase) in l.phases.iter().enumerate() {
        rate(phase.rps, format!("load.phases[{i}].rps"), issues);
    }
}
