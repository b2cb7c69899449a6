//! The status page people read, rendered on the server with maud.
//!
//! maud escapes every interpolated value, so component names, reasons and
//! incident messages (which come from config and admins) cannot inject
//! markup; the only raw strings are the constants below. The page loads
//! nothing: it has to render when the network, a CDN or the gateway's own
//! upstreams are what is broken, and it must read well on a phone because
//! that is where people check it during an outage.

use bulwark::observe::component::{ComponentKind, ComponentState};
use bulwark::observe::incident::{Incident, IncidentStatus, TimelineEntry};
use bulwark::observe::snapshot::{ComponentStatus, DayUptime, SloStatus, StatusSnapshot};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::format::{
    count, date_from_days, duration, human_time, latency, objective, parse_date, percent,
    percent_opt,
};
use crate::group_title;
use crate::review::timeline_label;

const STYLE: &str = include_str!("style.css");

/// Live updates are a nicety: an `update` (a component or incident changed)
/// or `reload` (the reader fell behind) event on `/status/events` reloads
/// the page; the `hello` sent on connecting does not, or the page would
/// reload forever. Without JavaScript the page is simply static, which is
/// complete on its own.
const LIVE_SCRIPT: &str = "(function(){if(!window.EventSource)return;\
var s=new EventSource('/status/events'),r=function(){location.reload()};\
s.addEventListener('update',r);s.addEventListener('reload',r);\
s.onerror=function(){if(s.readyState===2)s.close()}})();";

/// Days shown on each component's chart.
const CHART_DAYS: usize = 90;

fn bar_colour(day: &DayUptime) -> &'static str {
    if day.uptime.is_none() {
        return "#dfe3e8";
    }
    match day.worst {
        ComponentState::Operational => "#2fcc66",
        ComponentState::UnderMaintenance => "#3498db",
        ComponentState::DegradedPerformance => "#f1c40f",
        ComponentState::PartialOutage => "#e67e22",
        ComponentState::MajorOutage => "#e74c3c",
    }
}

/// Human headline for the banner; the Statuspage wording stays in the JSON.
fn headline(state: ComponentState) -> &'static str {
    match state {
        ComponentState::Operational => "All systems operational",
        ComponentState::UnderMaintenance => "Under maintenance",
        ComponentState::DegradedPerformance => "Degraded performance",
        ComponentState::PartialOutage => "Partial outage",
        ComponentState::MajorOutage => "Major outage",
    }
}

fn banner_icon(state: ComponentState) -> Markup {
    let mark = match state {
        ComponentState::Operational => "M7 12.5l3.2 3.2L17 9",
        ComponentState::UnderMaintenance => "M8 12h8",
        _ => "M12 7v6M12 16.5v.5",
    };
    html! {
        svg width="30" height="30" viewBox="0 0 24 24" aria-hidden="true" {
            circle cx="12" cy="12" r="11" fill="rgba(255,255,255,.25)" {}
            path d=(mark) stroke="currentColor" stroke-width="2.4" fill="none"
                stroke-linecap="round" stroke-linejoin="round" {}
        }
    }
}

/// The 90 days ending on the component's last day, padding the front with
/// "no data" days so every chart lines up with "90 days ago".
fn chart_days(component: &ComponentStatus) -> Vec<(String, Option<&DayUptime>)> {
    let shown = &component.days[component.days.len().saturating_sub(CHART_DAYS)..];
    let missing = CHART_DAYS - shown.len();
    let first = shown.first().and_then(|d| parse_date(&d.date));
    let mut out: Vec<(String, Option<&DayUptime>)> = (0..missing)
        .map(|i| {
            let label =
                first.map_or_else(String::new, |f| date_from_days(f - (missing - i) as i64));
            (label, None)
        })
        .collect();
    out.extend(shown.iter().map(|d| (d.date.clone(), Some(d))));
    out
}

fn uptime_bars(component: &ComponentStatus) -> Markup {
    const STEP: f64 = 5.0;
    const WIDTH: f64 = 3.4;
    let days = chart_days(component);
    let view_width = STEP * CHART_DAYS as f64 - (STEP - WIDTH);
    html! {
        svg.bars viewBox={ "0 0 " (view_width) " 34" } preserveAspectRatio="none"
            role="img" aria-label={ "Uptime over the last " (CHART_DAYS) " days" } {
            @for (i, (date, day)) in days.iter().enumerate() {
                @let (fill, tip) = match day {
                    Some(d) => match d.uptime {
                        Some(u) => (bar_colour(d), format!(
                            "{date}: {} uptime, worst {}", percent(u), d.worst.label().to_lowercase()
                        )),
                        None => (bar_colour(d), format!("{date}: no data")),
                    },
                    None if date.is_empty() => ("#dfe3e8", "No data".to_string()),
                    None => ("#dfe3e8", format!("{date}: no data")),
                };
                rect x=(i as f64 * STEP) y="0" width=(WIDTH) height="34" rx="1" fill=(fill) {
                    title { (tip) }
                }
            }
        }
    }
}

fn component_row(c: &ComponentStatus) -> Markup {
    html! {
        div.comp id={ "c-" (crate::format::component_id(c.kind, &c.name)) } {
            div.row {
                span.name { (c.name) }
                span class={ "state s-" (c.state.as_str()) } { (c.state.label()) }
            }
            @if let Some(reason) = &c.reason {
                p.reason { (reason) }
            }
            (uptime_bars(c))
            div.legend {
                span { (CHART_DAYS) " days ago" }
                i {}
                span { (percent_opt(c.uptime_30d)) " uptime (30 d)" }
                i {}
                span { "Today" }
            }
            ul.stats {
                li { b { "24 h" } (percent_opt(c.uptime_24h)) }
                li { b { "7 d" } (percent_opt(c.uptime_7d)) }
                li { b { "30 d" } (percent_opt(c.uptime_30d)) }
                li title="Median time to the first token" { b { "p50" } (latency(c.latency_p50_ms)) }
                li title="95th percentile time to the first token" { b { "p95" } (latency(c.latency_p95_ms)) }
            }
        }
    }
}

fn component_group(snapshot: &StatusSnapshot, kind: ComponentKind) -> Markup {
    let members: Vec<&ComponentStatus> = snapshot
        .components
        .iter()
        .filter(|c| c.kind == kind)
        .collect();
    let affected = members
        .iter()
        .filter(|c| c.state != ComponentState::Operational)
        .count();
    html! {
        @if !members.is_empty() {
            section.card aria-label=(group_title(kind)) {
                div.card-head {
                    h2 { (group_title(kind)) }
                    span {
                        @if affected == 0 { "All operational" }
                        @else { (affected) " of " (members.len()) " affected" }
                    }
                }
                @for c in members { (component_row(c)) }
            }
        }
    }
}

fn budget_class(remaining: f64) -> &'static str {
    if remaining <= 0.0 {
        "f-spent"
    } else if remaining < 0.25 {
        "f-low"
    } else if remaining < 0.5 {
        "f-warn"
    } else {
        "f-ok"
    }
}

/// Burn rates that would spend a 30-day budget in about two days (1 h) or
/// five days (6 h): the usual multi-window paging thresholds.
fn burn(label: &str, rate: f64, hot_at: f64) -> Markup {
    let text = if rate.is_finite() {
        format!("{rate:.1}×")
    } else {
        "–".to_string()
    };
    html! {
        li class=[(rate >= hot_at).then_some("hot")] title="Error-budget burn rate; 1× spends the budget exactly over the window" {
            b { (label) } (text)
        }
    }
}

fn slo_row(slo: &SloStatus) -> Markup {
    let remaining = if slo.budget_remaining.is_finite() {
        slo.budget_remaining
    } else {
        0.0
    };
    let width = (remaining.clamp(0.0, 1.0) * 100.0).round();
    let remaining_text = if remaining < 0.0 {
        format!("overspent by {:.1} %", -remaining * 100.0)
    } else {
        format!("{:.1} % left", remaining * 100.0)
    };
    html! {
        div.slo {
            div.row {
                span.name { (slo.route) }
                span.obj { "Objective " (objective(slo.objective)) " over " (duration(slo.window_secs as i64 * 1000)) }
            }
            div class=(if remaining <= 0.0 { "budget over" } else { "budget" })
                role="img" aria-label={ "Error budget " (remaining_text) } {
                div class=(budget_class(remaining)) style={ "width:" (width) "%" } {}
            }
            ul.stats {
                li { b { "Budget" } (remaining_text) }
                li { b { "Availability" } (percent_opt(slo.availability)) }
                (burn("Burn 1 h", slo.burn_rate_1h, 14.4))
                (burn("Burn 6 h", slo.burn_rate_6h, 6.0))
                li { b { "Requests" } (count(slo.good)) " good of " (count(slo.total)) }
            }
        }
    }
}

fn status_badge(status: IncidentStatus) -> Markup {
    let class = match status {
        IncidentStatus::Investigating | IncidentStatus::Identified => "badge open",
        IncidentStatus::Monitoring => "badge watch",
        IncidentStatus::Resolved | IncidentStatus::Postmortem => "badge done",
    };
    html! { span class=(class) { (status.as_str()) } }
}

fn timeline(entries: &[TimelineEntry]) -> Markup {
    html! {
        ol.timeline {
            // Newest first, as status pages are read during an incident.
            @for e in entries.iter().rev() {
                li {
                    time { (human_time(e.at)) }
                    div {
                        div.what { (timeline_label(e.kind)) (status_badge(e.status)) }
                        p { (e.message) }
                        @if let Some(c) = &e.component { small { (c) } }
                    }
                }
            }
        }
    }
}

fn impact(incident: &Incident) -> Markup {
    let i = &incident.impact;
    html! {
        dl.impact {
            div { dt { "Affected requests" } dd { (count(i.affected)) } }
            div.good { dt { "Saved by fallback" } dd { (count(i.saved_by_fallback)) } }
            div.good { dt { "From cache" } dd { (count(i.from_cache)) } }
            div { dt { "Degraded" } dd { (count(i.degraded)) } }
            div.bad { dt { "Failed" } dd { (count(i.failed)) } }
        }
    }
}

fn incident_meta(incident: &Incident) -> Markup {
    let end = incident.resolved_at.unwrap_or(incident.updated_at);
    html! {
        p.inc-meta {
            @if let Some(resolved) = incident.resolved_at {
                "Resolved " (human_time(resolved)) " after " (duration(resolved - incident.started_at))
            } @else {
                "Started " (human_time(incident.started_at)) " · open " (duration(end - incident.started_at))
            }
            @if !incident.components.is_empty() {
                " · Affects " (incident.components.join(", "))
            }
        }
    }
}

fn active_incident(snapshot: &StatusSnapshot, incident: &Incident) -> Markup {
    html! {
        article class={ "incident i-" (crate::felt(snapshot, incident).indicator()) } id=(incident.id) {
            div.row {
                h3 { (incident.title) }
                (status_badge(incident.status))
            }
            (incident_meta(incident))
            (impact(incident))
            (timeline(&incident.timeline))
        }
    }
}

fn past_incident(incident: &Incident) -> Markup {
    html! {
        details.past id=(incident.id) {
            summary {
                span class={ "name" } {
                    span class={ "state s-" (incident.felt(None).as_str()) } {}
                    (incident.title)
                }
                small {
                    (human_time(incident.started_at)) " · "
                    @if let Some(r) = incident.resolved_at { "lasted " (duration(r - incident.started_at)) }
                    @else { (incident.status.as_str()) }
                    " · " (incident.felt(None).label())
                }
            }
            div.body {
                (incident_meta(incident))
                (impact(incident))
                (timeline(&incident.timeline))
            }
        }
    }
}

/// `GET /status`: the whole page as one self-contained HTML document.
pub fn render_html(snapshot: &StatusSnapshot) -> String {
    let overall = snapshot.overall();
    // The banner counts what clients call, as its headline does; the
    // upstreams have their own group below.
    let has_routes = snapshot
        .components
        .iter()
        .any(|c| c.kind == ComponentKind::Route);
    let client_facing: Vec<&ComponentStatus> = snapshot
        .components
        .iter()
        .filter(|c| !has_routes || c.kind == ComponentKind::Route)
        .collect();
    let affected = client_facing
        .iter()
        .filter(|c| c.state != ComponentState::Operational)
        .count();
    let noun = if has_routes { "routes" } else { "components" };
    let notices = crate::notices(&snapshot.absorbed, &snapshot.provider_names);
    let feed = "/status/feed.atom";
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light";
                title { (snapshot.page_name) " status: " (headline(overall)) }
                link rel="alternate" type="application/atom+xml" href=(feed)
                    title={ (snapshot.page_name) " status" };
                style { (PreEscaped(STYLE)) }
            }
            body {
                div.wrap {
                    header.top {
                        div.brand { (snapshot.page_name) span { "Status" } }
                        div.meta { "Updated " (human_time(snapshot.generated_at)) }
                    }
                    section class={ "banner b-" (overall.as_str()) } id="overall"
                        data-indicator=(overall.indicator()) {
                        (banner_icon(overall))
                        div {
                            h1 { (headline(overall)) }
                            p {
                                @if affected == 0 {
                                    (client_facing.len()) " " (noun) " operational"
                                } @else {
                                    (affected) " of " (client_facing.len()) " " (noun) " affected"
                                }
                                @if !snapshot.active_incidents.is_empty() {
                                    " · " (snapshot.active_incidents.len()) " active incident"
                                    @if snapshot.active_incidents.len() > 1 { "s" }
                                }
                            }
                            @for notice in &notices {
                                p.notice { (notice) }
                            }
                        }
                    }
                    @if !snapshot.active_incidents.is_empty() {
                        section aria-label="Active incidents" {
                            h2 { "Active incidents" }
                            @for i in &snapshot.active_incidents { (active_incident(snapshot, i)) }
                        }
                    }
                    // What clients call first; the upstreams behind them
                    // beneath, so a red upstream reads as a cause, not as
                    // the page's state.
                    (component_group(snapshot, ComponentKind::Route))
                    (component_group(snapshot, ComponentKind::Target))
                    (component_group(snapshot, ComponentKind::Dependency))
                    @if !snapshot.slos.is_empty() {
                        section.card aria-label="Error budgets" {
                            div.card-head { h2 { "Error budgets" } span { "per route" } }
                            @for s in &snapshot.slos { (slo_row(s)) }
                        }
                    }
                    section aria-label="Past incidents" {
                        h2 { "Past incidents" }
                        @if snapshot.recent_incidents.is_empty() {
                            p.empty { "No incidents reported recently." }
                        }
                        @for i in &snapshot.recent_incidents { (past_incident(i)) }
                    }
                    footer {
                        "Times in UTC · "
                        a href=(feed) { "Atom feed" }
                        a href="/api/v2/summary.json" { "JSON API" }
                        br;
                        "Powered by Bulwark"
                    }
                }
                script { (PreEscaped(LIVE_SCRIPT)) }
            }
        }
    };
    page.into_string()
}
