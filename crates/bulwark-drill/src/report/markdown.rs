//! The report as a Markdown file: something to attach to a postmortem or
//! a pull request that changes the gateway config, readable without the
//! drill at hand, so it carries its own definitions.

use std::fmt::Write as _;
use std::time::Duration;

use bulwark::observe::incident::Incident;

use crate::outcome::DrillData;

use super::{Report, figures, table, text};

pub fn markdown(report: &Report, data: &DrillData, chart_file: Option<&str>) -> String {
    let mut out = String::new();
    header(&mut out, data);
    summary(&mut out, report, data);
    results(&mut out, report, data);
    timings(&mut out, report, data);
    incidents(&mut out, report, data);
    phases(&mut out, data);
    chart(&mut out, data, chart_file);
    how_to_read(&mut out, data);
    out
}

fn header(out: &mut String, data: &DrillData) {
    let _ = writeln!(out, "# Drill report: {}\n", data.scenario);
    if !data.description.trim().is_empty() {
        let _ = writeln!(out, "{}\n", data.description.trim());
    }
    let _ = writeln!(
        out,
        "Config `{}`, route `{}` (deadline {}), primary provider `{}`. Run at speed {}: \
         {} of wall time replayed {} of the scenario.\n",
        data.config_name,
        data.route,
        text::duration(data.deadline),
        data.primary,
        data.speed,
        text::duration(data.wall_duration),
        text::scenario(data.scenario_time(data.wall_duration)),
    );
}

fn summary(out: &mut String, report: &Report, data: &DrillData) {
    let (b, d) = (&report.bulwark, &report.direct);
    let _ = writeln!(out, "## Summary\n");
    let mut s = format!(
        "Through Bulwark {} of {} requests succeeded; calling {} directly, {} did.",
        text::percent(b.availability),
        text::thousands(b.sent),
        data.primary,
        text::percent(d.availability),
    );
    let saved: Vec<String> = [
        (b.fallback, "came from a fallback"),
        (b.from_cache, "came from the cache"),
        (b.degraded, "were degraded"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{} {what}", text::thousands(*n)))
    .collect();
    if !saved.is_empty() {
        let _ = write!(s, " Of Bulwark's answers, {}.", join_words(&saved));
    }
    let _ = write!(
        s,
        " The 99th percentile latency was {} with Bulwark and {} without; the slowest answer \
         took {} and {}.",
        text::duration(b.p99),
        text::duration(d.p99),
        text::duration(b.slowest),
        text::duration(d.slowest),
    );
    let _ = write!(
        s,
        " The gateway made {:.2} upstream calls per request (retry budget ceiling: {} calls).",
        report.amplification,
        text::thousands(report.retry_budget_allowance),
    );
    match (report.time_to_detect, report.time_to_recover) {
        (Some(t), Some(r)) => {
            let _ = write!(
                s,
                " It opened an incident {} after the outage began and resolved it {} after the \
                 provider recovered.",
                text::duration(t),
                text::duration(r)
            );
        }
        (Some(t), None) => {
            let _ = write!(
                s,
                " It opened an incident {} after the outage began.",
                text::duration(t)
            );
        }
        _ if data.outage_start.is_some() => {
            s.push_str(" No incident was opened after the outage began.");
        }
        _ => {}
    }
    if let Err(why) = report.reconciles() {
        let _ = write!(s, " **The figures do not reconcile:** {why}.");
    }
    let _ = writeln!(out, "{s}\n");
}

fn join_words(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn results(out: &mut String, report: &Report, data: &DrillData) {
    let _ = writeln!(out, "## Results\n");
    let _ = writeln!(
        out,
        "| | With Bulwark | Without ({} direct) |",
        text::cell(&data.primary)
    );
    let _ = writeln!(out, "|---|---:|---:|");
    for [label, b, d] in table::result_rows(report) {
        let _ = writeln!(out, "| {label} | {b} | {d} |");
    }
    let _ = writeln!(
        out,
        "| Failures by error | {} | {} |",
        text::cell(&table::error_summary(&report.bulwark)),
        text::cell(&table::error_summary(&report.direct)),
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "| Gateway | |\n|---|---:|");
    let _ = writeln!(
        out,
        "| Upstream calls | {} |",
        text::cell(&table::upstream_summary(report))
    );
    let _ = writeln!(
        out,
        "| Amplification (calls per request) | {:.2} |",
        report.amplification
    );
    let _ = writeln!(
        out,
        "| Retry budget allowance | {} |",
        text::thousands(report.retry_budget_allowance)
    );
    let _ = writeln!(
        out,
        "| Slower than the {} deadline | {} |\n",
        text::duration(report.deadline),
        text::thousands(report.over_deadline)
    );
}

fn timings(out: &mut String, report: &Report, data: &DrillData) {
    let _ = writeln!(out, "## Timings\n");
    let from_outage = data
        .outage_start
        .map(|t| format!("outage start ({} into the scenario)", text::scenario(t)));
    let from_recovery = data
        .recovery_start
        .map(|t| format!("recovery start ({} into the scenario)", text::scenario(t)));
    let _ = writeln!(out, "| | Scenario time | (Real time) | Measured from |");
    let _ = writeln!(out, "|---|---:|---:|---|");
    let rows = [
        ("Time to detect", report.time_to_detect, &from_outage),
        (
            "Time to first alert",
            report.time_to_first_alert,
            &from_outage,
        ),
        ("Time to fail over", report.time_to_fail_over, &from_outage),
        ("Time to recover", report.time_to_recover, &from_recovery),
    ];
    for (label, t, from) in rows {
        let from = from
            .as_deref()
            .unwrap_or("(the scenario has no such moment)");
        match t {
            Some(t) => {
                let _ = writeln!(
                    out,
                    "| {label} | {} | ({}) | {from} |",
                    text::scenario(t),
                    text::duration(data.wall_time(t))
                );
            }
            None => {
                let _ = writeln!(out, "| {label} | never | | {from} |");
            }
        }
    }
    let _ = writeln!(out);
}

fn incidents(out: &mut String, report: &Report, data: &DrillData) {
    let _ = writeln!(out, "## Incidents\n");
    if report.incidents.is_empty() {
        let _ = writeln!(out, "The gateway opened no incident.\n");
        return;
    }
    let epoch = figures::drill_epoch_ms(data);
    for incident in &report.incidents {
        incident_section(out, data, incident, epoch);
    }
}

fn incident_section(out: &mut String, data: &DrillData, incident: &Incident, epoch: Option<i64>) {
    let _ = writeln!(out, "### {} (`{}`)\n", incident.title, incident.id);
    let i = &incident.impact;
    let _ = writeln!(
        out,
        "Status **{}**, {} impact, affecting {}. While it was open: {} requests affected, {} \
         saved by fallback, {} from the cache, {} degraded, {} failed.\n",
        incident.status.as_str(),
        incident.impact_level(),
        if incident.components.is_empty() {
            "no named component".to_string()
        } else {
            incident
                .components
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        },
        text::thousands(i.affected),
        text::thousands(i.saved_by_fallback),
        text::thousands(i.from_cache),
        text::thousands(i.degraded),
        text::thousands(i.failed),
    );
    let when = |at: i64| -> String {
        match epoch {
            Some(e) => {
                let wall = figures::wall_of(e, at);
                format!(
                    "{} ({})",
                    text::duration(wall),
                    text::scenario(data.scenario_time(wall))
                )
            }
            None => {
                let after =
                    Duration::from_millis(at.saturating_sub(incident.started_at).max(0) as u64);
                format!("+{}", text::duration(after))
            }
        }
    };
    let header = if epoch.is_some() {
        "Drill time (scenario)"
    } else {
        "After opening"
    };
    let _ = writeln!(out, "| {header} | Event | Component | Status | Message |");
    let _ = writeln!(out, "|---:|---|---|---|---|");
    for entry in &incident.timeline {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            when(entry.at),
            entry.kind.as_str(),
            text::cell(entry.component.as_deref().unwrap_or("")),
            entry.status.as_str(),
            text::cell(&entry.message),
        );
    }
    let _ = writeln!(out);
}

fn phases(out: &mut String, data: &DrillData) {
    let _ = writeln!(out, "## Phases\n");
    if data.phases.is_empty() {
        let _ = writeln!(out, "The scenario recorded no phases.\n");
        return;
    }
    let _ = writeln!(out, "| Provider | Phase | From | Until | Wall time |");
    let _ = writeln!(out, "|---|---|---:|---:|---:|");
    // The primary first: it is the story; the others are the backups.
    let mut spans: Vec<_> = data.phases.iter().collect();
    spans.sort_by_key(|p| (p.provider != data.primary, p.provider.clone(), p.start));
    for p in spans {
        let provider = if p.provider == data.primary {
            format!("{} (primary)", text::cell(&p.provider))
        } else {
            text::cell(&p.provider)
        };
        let _ = writeln!(
            out,
            "| {provider} | {} | {} | {} | {} to {} |",
            text::cell(&p.name),
            text::scenario(p.start),
            text::scenario(p.end),
            text::duration(data.wall_time(p.start)),
            text::duration(data.wall_time(p.end)),
        );
    }
    let _ = writeln!(out);
}

fn chart(out: &mut String, data: &DrillData, chart_file: Option<&str>) {
    let _ = writeln!(out, "## Chart\n");
    match chart_file {
        Some(file) => {
            let _ = writeln!(
                out,
                "![Success rate and latency per second of {}, with and without Bulwark]({})\n",
                data.scenario,
                file.replace(' ', "%20")
            );
            let _ = writeln!(
                out,
                "Top: share of requests answered successfully in each interval. Bottom: median \
                 (solid) and 95th percentile (faint) latency. Solid lines are through Bulwark, \
                 dashed lines straight to {}. Shaded bands are the primary's phases; vertical \
                 lines mark incidents, breakers and the first alert.\n",
                data.primary
            );
        }
        None => {
            let _ = writeln!(out, "No chart was written for this run.\n");
        }
    }
}

fn how_to_read(out: &mut String, data: &DrillData) {
    let _ = writeln!(out, "## How to read this\n");
    let speed = data.speed;
    let lines = [
        "**With Bulwark / Without**: every logical request was sent twice, once through the \
         gateway with this config and once straight to the primary provider, so the two columns \
         saw the same incident at the same moments."
            .to_string(),
        "**Availability**: requests answered successfully (for a stream: it ended properly) \
         divided by requests sent. A request that got no answer at all counts as failed."
            .to_string(),
        "**Latency p50/p95/p99**: nearest-rank percentiles over all requests of the path, \
         failed ones included, so a hang the user waited through counts. Each is a latency \
         some request actually had. **Slowest** is the longest of them."
            .to_string(),
        "**Answered by fallback / from cache / degraded / first target**: every successful \
         answer is counted once, in the first of cache, degraded, fallback that applies, \
         otherwise first target. Requests sent = succeeded + failed."
            .to_string(),
        "**Amplification**: calls the simulated providers received from the gateway (retries, \
         hedges, fallbacks and health probes included) per request sent through Bulwark. The \
         retry budget allowance is the ceiling the config sets for this load."
            .to_string(),
        "**Time to detect**: from the start of the primary's outage to the first incident the \
         gateway opened. **Time to first alert**: to the first alert delivered to the drill's \
         webhook. **Time to fail over**: to the first request sent through Bulwark that a \
         fallback answered. **Time to recover**: from the primary's recovery to the first \
         incident resolved."
            .to_string(),
        format!(
            "**Scenario time and real time**: everything runs {speed}x faster than the \
             incident it plays (one real second is {speed} scenario seconds): the providers' \
             phases, latencies and hangs, and the gateway's own timeouts, breaker cool-downs \
             and health timers. Times and latencies are given in scenario time, real time in \
             parentheses. Work the machine does in real time (a request's trip through the \
             gateway, about a millisecond) is stretched by the same factor, so at high speeds \
             latencies read higher than they would be; use `--speed 60` or less for latency \
             figures."
        ),
    ];
    for line in lines {
        let _ = writeln!(out, "- {line}");
    }
}
