//! A post-incident review drafted from what the gateway recorded, so the
//! people writing it start from facts (times, counts, what the gateway did
//! on its own) and only add causes and follow-ups.

use std::fmt::Write as _;

use bulwark::observe::incident::{Incident, TimelineKind};

use crate::format::{count, duration, human_time, md_escape};

pub(crate) fn timeline_label(kind: TimelineKind) -> &'static str {
    match kind {
        TimelineKind::Detected => "Detected",
        TimelineKind::StateChanged => "State changed",
        TimelineKind::BreakerOpened => "Breaker opened",
        TimelineKind::BreakerClosed => "Breaker closed",
        TimelineKind::FallbackEngaged => "Fallback engaged",
        TimelineKind::DegradedStarted => "Degraded answers",
        TimelineKind::PartialRecovery => "Partial recovery",
        TimelineKind::Resolved => "Resolved",
        TimelineKind::Note => "Note",
    }
}

/// The gateway's own mitigations, the part of an incident no human did.
fn is_mitigation(kind: TimelineKind) -> bool {
    matches!(
        kind,
        TimelineKind::FallbackEngaged | TimelineKind::DegradedStarted | TimelineKind::BreakerOpened
    )
}

fn share(part: u64, whole: u64) -> String {
    if whole == 0 {
        "–".to_string()
    } else {
        format!("{:.1} %", part as f64 * 100.0 / whole as f64)
    }
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// A Markdown post-incident review of one incident.
pub fn incident_markdown(incident: &Incident) -> String {
    let mut out = String::with_capacity(4096);
    let end = incident.resolved_at.unwrap_or(incident.updated_at);
    let lasted = duration(end - incident.started_at);
    let components = if incident.components.is_empty() {
        "none recorded".to_string()
    } else {
        incident
            .components
            .iter()
            .map(|c| md_escape(c))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let impact = &incident.impact;

    let _ = writeln!(out, "# Incident review: {}\n", md_escape(&incident.title));
    let _ = writeln!(out, "- **Incident:** {}", md_escape(&incident.id));
    let _ = writeln!(
        out,
        "- **Status:** {}",
        capitalised(incident.status.as_str())
    );
    let _ = writeln!(
        out,
        "- **Impact:** {} (worst state: {})",
        incident.impact_level(),
        incident.worst.label().to_lowercase()
    );
    let _ = writeln!(out, "- **Components:** {components}");
    let _ = writeln!(out, "- **Started:** {}", human_time(incident.started_at));
    match incident.resolved_at {
        Some(at) => {
            let _ = writeln!(out, "- **Resolved:** {}", human_time(at));
        }
        None => {
            let _ = writeln!(out, "- **Resolved:** not yet");
        }
    }
    let _ = writeln!(out, "- **Duration:** {lasted}\n");

    out.push_str("## Summary\n\n");
    let window = match incident.resolved_at {
        Some(at) => format!(
            "Between {} and {} ({lasted})",
            human_time(incident.started_at),
            human_time(at)
        ),
        None => format!(
            "Since {} ({lasted} as of {})",
            human_time(incident.started_at),
            human_time(incident.updated_at)
        ),
    };
    let _ = writeln!(
        out,
        "{window}, {components} reached *{}*. {} requests touched an affected \
         component: {} were answered by a fallback target, {} from the cache, \
         {} with a degraded answer, and {} failed ({} of affected).\n",
        incident.worst.label().to_lowercase(),
        count(impact.affected),
        count(impact.saved_by_fallback),
        count(impact.from_cache),
        count(impact.degraded),
        count(impact.failed),
        share(impact.failed, impact.affected),
    );

    out.push_str("## Impact\n\n");
    out.push_str("| Requests | Count | Share of affected |\n");
    out.push_str("| --- | ---: | ---: |\n");
    for (label, n) in [
        ("Affected", impact.affected),
        ("Saved by fallback", impact.saved_by_fallback),
        ("Served from cache", impact.from_cache),
        ("Degraded answers", impact.degraded),
        ("Failed", impact.failed),
    ] {
        let _ = writeln!(
            out,
            "| {label} | {} | {} |",
            count(n),
            share(n, impact.affected)
        );
    }
    out.push('\n');

    out.push_str("## Timeline\n\n");
    if incident.timeline.is_empty() {
        out.push_str("No timeline entries were recorded.\n\n");
    } else {
        out.push_str("| Time (UTC) | Event | Component | Status | Message |\n");
        out.push_str("| --- | --- | --- | --- | --- |\n");
        for entry in &incident.timeline {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                human_time(entry.at).trim_end_matches(" UTC"),
                timeline_label(entry.kind),
                entry
                    .component
                    .as_deref()
                    .map_or_else(|| "–".to_string(), md_escape),
                entry.status.as_str(),
                md_escape(&entry.message),
            );
        }
        out.push('\n');
    }

    out.push_str("## What the gateway did\n\n");
    let mut any = false;
    for (heading, kinds) in [
        ("Fallbacks", &[TimelineKind::FallbackEngaged][..]),
        ("Degraded answers", &[TimelineKind::DegradedStarted][..]),
        (
            "Circuit breakers",
            &[TimelineKind::BreakerOpened, TimelineKind::BreakerClosed][..],
        ),
    ] {
        let events: Vec<_> = incident
            .timeline
            .iter()
            .filter(|e| kinds.contains(&e.kind))
            .collect();
        if events.is_empty() {
            continue;
        }
        any = true;
        let _ = writeln!(out, "**{heading}**\n");
        for e in events {
            let on = e
                .component
                .as_deref()
                .map(|c| format!(" on {}", md_escape(c)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "- {}: {}{on}: {}",
                human_time(e.at),
                timeline_label(e.kind).to_lowercase(),
                md_escape(&e.message)
            );
        }
        out.push('\n');
    }
    if !any {
        out.push_str("No fallback, degraded-answer or circuit-breaker events were recorded.\n\n");
    }
    if impact.saved_by_fallback + impact.from_cache + impact.degraded > 0 {
        let _ = writeln!(
            out,
            "Of {} affected requests, {} got an answer anyway ({}).\n",
            count(impact.affected),
            count(impact.saved_by_fallback + impact.from_cache + impact.degraded),
            share(
                impact.saved_by_fallback + impact.from_cache + impact.degraded,
                impact.affected
            ),
        );
    }

    out.push_str("## Duration\n\n");
    let detected = incident
        .timeline
        .iter()
        .find(|e| e.kind == TimelineKind::Detected)
        .map_or(incident.started_at, |e| e.at);
    let _ = writeln!(out, "- Detected: {}", human_time(detected));
    if let Some(m) = incident.timeline.iter().find(|e| is_mitigation(e.kind)) {
        let _ = writeln!(
            out,
            "- First automatic mitigation: {} ({} after detection)",
            human_time(m.at),
            duration(m.at - detected)
        );
    }
    match incident.resolved_at {
        Some(at) => {
            let _ = writeln!(
                out,
                "- Resolved: {} ({} after detection)",
                human_time(at),
                duration(at - detected)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "- Still open: {lasted} as of {}",
                human_time(incident.updated_at)
            );
        }
    }
    let _ = writeln!(out, "- Total duration: {lasted}\n");

    out.push_str("## Root cause and follow-ups\n\n");
    out.push_str("_To be written by the reviewers._\n");
    out
}
