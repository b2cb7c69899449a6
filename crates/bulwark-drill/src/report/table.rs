//! The report for the terminal: what an operator reads when the drill
//! ends, in aligned plain text (no colours, so it survives CI logs).

use std::fmt::Write as _;
use std::time::Duration;

use crate::outcome::DrillData;

use super::{PathFigures, Report, figures, text};

/// The figures as rows: a label, then Bulwark's and the baseline's value.
/// Shared with the Markdown table so both show the same rows.
pub(crate) fn result_rows(report: &Report) -> Vec<[String; 3]> {
    let (b, d) = (&report.bulwark, &report.direct);
    let row = |label: &str, f: &dyn Fn(&PathFigures) -> String| [label.to_string(), f(b), f(d)];
    let opt = |v: Option<Duration>| v.map_or_else(|| "-".to_string(), text::duration);
    vec![
        row("Requests sent", &|f| text::thousands(f.sent)),
        row("Availability", &|f| text::percent(f.availability)),
        row("Succeeded", &|f| text::thousands(f.ok)),
        row("Failed", &|f| text::thousands(f.failed)),
        row("Latency p50", &|f| text::duration(f.p50)),
        row("Latency p95", &|f| text::duration(f.p95)),
        row("Latency p99", &|f| text::duration(f.p99)),
        row("Slowest", &|f| text::duration(f.slowest)),
        row("First token p50", &|f| opt(f.first_token_p50)),
        row("First token p95", &|f| opt(f.first_token_p95)),
        row("Answered by first target", &|f| {
            text::count_share(f.first_target, f.sent)
        }),
        row("Answered by fallback", &|f| {
            text::count_share(f.fallback, f.sent)
        }),
        row("Answered from cache", &|f| {
            text::count_share(f.from_cache, f.sent)
        }),
        row("Answered degraded", &|f| {
            text::count_share(f.degraded, f.sent)
        }),
        row("Answered with fields dropped", &|f| {
            text::count_share(f.dropped, f.sent)
        }),
    ]
}

pub(crate) fn error_summary(f: &PathFigures) -> String {
    if f.errors.is_empty() {
        return "none".to_string();
    }
    f.errors
        .iter()
        .map(|(e, n)| format!("{e} × {}", text::thousands(*n)))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn upstream_summary(report: &Report) -> String {
    let by: Vec<String> = report
        .upstream_by_provider
        .iter()
        .map(|(p, n)| format!("{p} {}", text::thousands(*n)))
        .collect();
    let mut out = text::thousands(report.upstream_calls);
    if !by.is_empty() {
        let _ = write!(out, " ({})", by.join(", "));
    }
    out
}

/// A reaction time in scenario time, with the real time it took.
pub(crate) fn timing(data: &DrillData, t: Option<Duration>) -> String {
    match t {
        Some(t) => format!(
            "{} ({} real)",
            text::scenario(t),
            text::duration(data.wall_time(t))
        ),
        None => "never".to_string(),
    }
}

pub(crate) fn timing_rows(report: &Report, data: &DrillData) -> Vec<[String; 2]> {
    vec![
        [
            "Time to detect".to_string(),
            timing(data, report.time_to_detect),
        ],
        [
            "Time to first alert".to_string(),
            timing(data, report.time_to_first_alert),
        ],
        [
            "Time to fail over".to_string(),
            timing(data, report.time_to_fail_over),
        ],
        [
            "Time to recover".to_string(),
            timing(data, report.time_to_recover),
        ],
    ]
}

/// One line per incident: what, how bad, when, for how long.
pub(crate) fn incident_line(
    data: &DrillData,
    incident: &bulwark::observe::incident::Incident,
) -> String {
    let epoch = figures::drill_epoch_ms(data);
    let opened = match epoch {
        Some(e) => {
            let at = figures::wall_of(e, incident.started_at);
            format!(
                "opened at {} ({} into the scenario)",
                text::duration(at),
                text::scenario(data.scenario_time(at))
            )
        }
        None => "opened".to_string(),
    };
    let lasted = match incident.resolved_at {
        Some(r) => format!(
            "resolved after {}",
            text::duration(Duration::from_millis(
                r.saturating_sub(incident.started_at).max(0) as u64
            ))
        ),
        None => "still open at the end".to_string(),
    };
    format!(
        "{} \"{}\" [{}, {} impact] {opened}, {lasted}; {} timeline entries; affected {}",
        incident.id,
        incident.title,
        incident.status.as_str(),
        incident.impact_level(),
        incident.timeline.len(),
        incident.components.join(", ")
    )
}

pub fn table(report: &Report, data: &DrillData) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Drill report: {} (config {}, route {}, speed {}x: {} of wall time = {} of scenario)",
        data.scenario,
        data.config_name,
        data.route,
        data.speed,
        text::duration(data.wall_duration),
        text::scenario(data.scenario_time(data.wall_duration)),
    );
    out.push('\n');

    let mut rows = vec![[
        String::new(),
        "With Bulwark".to_string(),
        format!("Without ({} direct)", data.primary),
    ]];
    rows.extend(result_rows(report));
    let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let (w0, w1, w2) = (width(0), width(1), width(2));
    for r in &rows {
        let _ = writeln!(out, "  {:<w0$}   {:>w1$}   {:>w2$}", r[0], r[1], r[2]);
    }
    out.push('\n');
    let lines = [
        ("Failures with Bulwark", error_summary(&report.bulwark)),
        ("Failures without", error_summary(&report.direct)),
        ("Upstream calls", upstream_summary(report)),
        (
            "Amplification",
            format!(
                "{:.2} calls per request (retry budget allows {})",
                report.amplification,
                text::thousands(report.retry_budget_allowance)
            ),
        ),
        (
            "Over the deadline",
            format!(
                "{} slower than {}",
                text::thousands(report.over_deadline),
                text::duration(report.deadline)
            ),
        ),
    ];
    for (label, value) in lines {
        let _ = writeln!(out, "  {:<22}  {value}", format!("{label}:"));
    }
    out.push('\n');

    let _ = writeln!(
        out,
        "Timings (scenario time from the outage's start; the gateway's clocks run at the drill's speed too)"
    );
    let timings = timing_rows(report, data);
    let w = timings.iter().map(|r| r[0].len()).max().unwrap_or(0);
    for [label, value] in &timings {
        let _ = writeln!(out, "  {label:<w$}   {value}");
    }
    out.push('\n');

    let _ = writeln!(out, "Incidents ({})", report.incidents.len());
    if report.incidents.is_empty() {
        let _ = writeln!(out, "  none opened");
    }
    for incident in &report.incidents {
        let _ = writeln!(out, "  {}", incident_line(data, incident));
    }
    out
}
