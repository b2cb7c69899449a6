//! The drill as a picture: success rate and latency over the scenario,
//! with and without Bulwark, over the primary's phases, with the gateway's
//! reactions marked. Hand-written SVG with no scripts, no external fonts or
//! images, so it renders the same in a browser, in rsvg-convert and as a
//! CI artifact.

use std::fmt::Write as _;
use std::time::Duration;

use bulwark::observe::xml;

use crate::outcome::{DrillData, MarkerKind};
use crate::schedule::PhaseSpan;

use super::buckets::{Bucket, Buckets, buckets, wall_span};
use super::scale::{LatencyScale, time_label, time_ticks};
use super::text;

const WIDTH: f64 = 1100.0;
const LEFT: f64 = 84.0;
const RIGHT: f64 = 28.0;
const FONT: &str = "DejaVu Sans, Helvetica, Arial, sans-serif";

const BULWARK: &str = "#1d4ed8";
const DIRECT: &str = "#dc2626";
const OPENED: &str = "#b91c1c";
const RESOLVED: &str = "#15803d";
const ALERT: &str = "#7c3aed";
const BREAKER_OPEN: &str = "#c2410c";
const BREAKER_CLOSED: &str = "#0f766e";
/// Fills for the primary's troubled phases, in order of appearance:
/// the first trouble is usually the worst.
const TROUBLE: &[&str] = &["#ef4444", "#f59e0b", "#a855f7", "#0ea5e9", "#ec4899"];

/// Vertical layout, computed once from how many provider lanes there are.
struct Layout {
    phase_labels: f64,
    lanes_top: f64,
    top: f64,
    top_bottom: f64,
    bottom: f64,
    bottom_bottom: f64,
    height: f64,
}

const LANE: f64 = 11.0;
const TOP_PANEL: f64 = 190.0;
const GAP: f64 = 46.0;
const BOTTOM_PANEL: f64 = 220.0;

impl Layout {
    fn new(lanes: usize) -> Layout {
        let phase_labels = 118.0;
        let lanes_top = 128.0;
        let top = lanes_top + lanes as f64 * LANE + 6.0;
        let top_bottom = top + TOP_PANEL;
        let bottom = top_bottom + GAP;
        let bottom_bottom = bottom + BOTTOM_PANEL;
        Layout {
            phase_labels,
            lanes_top,
            top,
            top_bottom,
            bottom,
            bottom_bottom,
            height: bottom_bottom + 58.0,
        }
    }
}

/// Maps scenario time to x.
struct TimeAxis {
    max: f64,
}

impl TimeAxis {
    fn x(&self, scenario: Duration) -> f64 {
        LEFT + (scenario.as_secs_f64() / self.max).clamp(0.0, 1.0) * (WIDTH - LEFT - RIGHT)
    }
}

pub fn chart_svg(data: &DrillData) -> String {
    let speed = if data.speed.is_finite() && data.speed > 0.0 {
        data.speed
    } else {
        1.0
    };
    let data_max = data.phases.iter().map(|p| p.end).max().unwrap_or_default();
    let span = wall_span(data).mul_f64(speed).max(data_max);
    let axis = TimeAxis {
        max: span.as_secs_f64().max(1.0),
    };
    let lanes = other_lanes(data);
    let layout = Layout::new(lanes.len());
    let buckets = buckets(data);
    let scale = latency_scale(&buckets, data.deadline);

    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="{FONT}" font-size="11">"##,
        w = WIDTH,
        h = layout.height
    );
    let _ = write!(
        svg,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
    );
    heading(&mut svg, data, &buckets);
    legend(&mut svg, data);
    primary_phases(&mut svg, data, &axis, &layout);
    provider_lanes(&mut svg, &lanes, &axis, &layout);
    success_panel(&mut svg, &buckets, speed, &axis, &layout);
    latency_panel(
        &mut svg,
        &buckets,
        speed,
        &axis,
        &layout,
        scale,
        data.deadline,
    );
    time_axis(&mut svg, &axis, span, &layout);
    markers(&mut svg, data, &axis, &layout);
    svg.push_str("</svg>\n");
    svg
}

fn heading(svg: &mut String, data: &DrillData, buckets: &Buckets) {
    let _ = write!(
        svg,
        r##"<text x="{LEFT}" y="30" font-size="18" font-weight="bold" fill="#111827">Drill: {}</text>"##,
        xml::escape(&data.scenario)
    );
    let _ = write!(
        svg,
        r##"<text x="{LEFT}" y="50" font-size="12" fill="#4b5563">Speed {speed}x: {wall} of wall time replays {scen} of scenario. Each point covers {per} of wall time ({bucket} of scenario). Config {config}, route {route}.</text>"##,
        speed = data.speed,
        wall = xml::escape(&text::duration(data.wall_duration)),
        scen = xml::escape(&text::scenario(data.scenario_time(data.wall_duration))),
        per = xml::escape(&if buckets.width.subsec_nanos() == 0 {
            format!("{} s", buckets.width.as_secs())
        } else {
            text::duration(buckets.width)
        }),
        bucket = xml::escape(&text::scenario(data.scenario_time(buckets.width))),
        config = xml::escape(&data.config_name),
        route = xml::escape(&data.route),
    );
}

/// A legend entry: a sample drawn at (x, y) and a label; returns the x
/// after it.
fn legend_item(svg: &mut String, x: f64, y: f64, sample: &str, label: &str) -> f64 {
    let _ = write!(svg, r##"<g transform="translate({x},{y})">{sample}"##);
    let _ = write!(
        svg,
        r##"<text x="26" y="4" fill="#374151">{}</text></g>"##,
        xml::escape(label)
    );
    x + 26.0 + text_width(label, 11.0) + 12.0
}

/// Two rows: what the lines are, then what the marks are.
fn legend(svg: &mut String, data: &DrillData) {
    let y = 72.0;
    let line = |color: &str, dash: &str, opacity: f64| {
        format!(
            r##"<line x1="0" y1="0" x2="20" y2="0" stroke="{color}" stroke-width="2.2" stroke-opacity="{opacity}"{dash}/>"##
        )
    };
    let dashed = r##" stroke-dasharray="5 3""##;
    let mut x = LEFT;
    x = legend_item(svg, x, y, &line(BULWARK, "", 1.0), "With Bulwark");
    x = legend_item(
        svg,
        x,
        y,
        &line(DIRECT, dashed, 1.0),
        &format!("Without ({} direct)", data.primary),
    );
    legend_item(svg, x, y, &line("#6b7280", "", 0.35), "p95 latency (faint)");
    let (mut x, y) = (LEFT, y + 18.0);
    x = legend_item(svg, x, y, &line(OPENED, "", 1.0), "incident opened");
    x = legend_item(svg, x, y, &line(RESOLVED, "", 1.0), "incident resolved");
    x = legend_item(
        svg,
        x,
        y,
        &line(ALERT, r##" stroke-dasharray="2 2""##, 1.0),
        "first alert",
    );
    x = legend_item(
        svg,
        x,
        y,
        &triangle(10.0, 4.0, BREAKER_OPEN, true),
        "breaker opened",
    );
    legend_item(
        svg,
        x,
        y,
        &triangle(10.0, -4.0, BREAKER_CLOSED, false),
        "breaker closed",
    );
}

/// A small marker triangle with its tip at (x, y), pointing down if
/// `down`.
fn triangle(x: f64, y: f64, color: &str, down: bool) -> String {
    let d = if down { -7.0 } else { 7.0 };
    format!(
        r##"<path d="M{x},{y} l-4.5,{d} h9 z" fill="{color}"/>"##,
        x = x,
        y = y,
        d = d
    )
}

/// Names like "healthy" or "recovered" are the calm phases: left unshaded
/// so the trouble stands out.
fn calm(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    words.iter().any(|w| {
        matches!(
            *w,
            "healthy" | "recovered" | "recovery" | "normal" | "baseline" | "steady" | "calm" | "ok"
        )
    }) && !words.iter().any(|w| matches!(*w, "unhealthy" | "not"))
}

fn primary_phases(svg: &mut String, data: &DrillData, axis: &TimeAxis, l: &Layout) {
    let mut trouble = 0;
    for p in data.phases.iter().filter(|p| p.provider == data.primary) {
        let (x0, x1) = (axis.x(p.start), axis.x(p.end));
        let width = (x1 - x0).max(0.0);
        let colour = if calm(&p.name) {
            None
        } else {
            let c = TROUBLE
                .get(trouble % TROUBLE.len())
                .copied()
                .unwrap_or("#ef4444");
            trouble += 1;
            Some(c)
        };
        if let Some(c) = colour {
            let _ = write!(
                svg,
                r##"<rect x="{x0:.1}" y="{y:.1}" width="{width:.1}" height="{h:.1}" fill="{c}" fill-opacity="0.12"><title>{title}</title></rect>"##,
                y = l.phase_labels - 12.0,
                h = l.bottom_bottom - l.phase_labels + 12.0,
                title = xml::escape(&phase_title(p)),
            );
            let _ = write!(
                svg,
                r##"<rect x="{x0:.1}" y="{y:.1}" width="{width:.1}" height="3" fill="{c}" fill-opacity="0.7"/>"##,
                y = l.phase_labels - 12.0,
            );
        }
        if p.start > Duration::ZERO {
            let _ = write!(
                svg,
                r##"<line x1="{x0:.1}" y1="{y0:.1}" x2="{x0:.1}" y2="{y1:.1}" stroke="#9ca3af" stroke-width="0.8" stroke-dasharray="1 3"/>"##,
                y0 = l.phase_labels - 12.0,
                y1 = l.bottom_bottom,
            );
        }
        if let Some(label) = fit(&p.name, width - 8.0, 11.0) {
            let fill = if colour.is_some() {
                "#7f1d1d"
            } else {
                "#6b7280"
            };
            let weight = if colour.is_some() { "bold" } else { "normal" };
            let _ = write!(
                svg,
                r##"<text x="{x:.1}" y="{y:.1}" text-anchor="middle" fill="{fill}" font-weight="{weight}">{}</text>"##,
                xml::escape(&label),
                x = (x0 + x1) / 2.0,
                y = l.phase_labels + 2.0,
            );
        }
    }
}

fn phase_title(p: &PhaseSpan) -> String {
    format!(
        "{}: {} ({} to {})",
        p.provider,
        p.name,
        text::scenario(p.start),
        text::scenario(p.end)
    )
}

/// Other providers with a troubled phase, each with those phases: a
/// backup that was itself rate limited explains a dip the primary's
/// phases do not.
fn other_lanes(data: &DrillData) -> Vec<(String, Vec<PhaseSpan>)> {
    let mut lanes: Vec<(String, Vec<PhaseSpan>)> = Vec::new();
    for p in data
        .phases
        .iter()
        .filter(|p| p.provider != data.primary && !calm(&p.name))
    {
        match lanes.iter_mut().find(|(name, _)| *name == p.provider) {
            Some((_, spans)) => spans.push(p.clone()),
            None => lanes.push((p.provider.clone(), vec![p.clone()])),
        }
    }
    lanes
}

fn provider_lanes(
    svg: &mut String,
    lanes: &[(String, Vec<PhaseSpan>)],
    axis: &TimeAxis,
    l: &Layout,
) {
    for (i, (provider, spans)) in lanes.iter().enumerate() {
        let y = l.lanes_top + i as f64 * LANE;
        let _ = write!(
            svg,
            r##"<text x="{x}" y="{ty:.1}" text-anchor="end" font-size="9" fill="#6b7280">{}</text>"##,
            xml::escape(&fit(provider, LEFT - 10.0, 9.0).unwrap_or_default()),
            x = LEFT - 6.0,
            ty = y + 7.0,
        );
        let _ = write!(
            svg,
            r##"<rect x="{LEFT}" y="{y:.1}" width="{w:.1}" height="6" fill="#f3f4f6"/>"##,
            w = WIDTH - LEFT - RIGHT,
        );
        for (j, p) in spans.iter().enumerate() {
            let (x0, x1) = (axis.x(p.start), axis.x(p.end));
            let c = TROUBLE
                .get((j + 1) % TROUBLE.len())
                .copied()
                .unwrap_or("#f59e0b");
            let _ = write!(
                svg,
                r##"<rect x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="6" fill="{c}" fill-opacity="0.6"><title>{t}</title></rect>"##,
                w = (x1 - x0).max(1.0),
                t = xml::escape(&phase_title(p)),
            );
            if let Some(label) = fit(&p.name, x1 - x0 - 6.0, 8.0) {
                let _ = write!(
                    svg,
                    r##"<text x="{x:.1}" y="{ty:.1}" font-size="8" fill="#374151">{}</text>"##,
                    xml::escape(&label),
                    x = x0 + 3.0,
                    ty = y + 5.5,
                );
            }
        }
    }
}

fn panel_frame(svg: &mut String, top: f64, bottom: f64, title: &str) {
    let _ = write!(
        svg,
        r##"<rect x="{LEFT}" y="{top:.1}" width="{w:.1}" height="{h:.1}" fill="none" stroke="#d1d5db"/>"##,
        w = WIDTH - LEFT - RIGHT,
        h = bottom - top,
    );
    let _ = write!(
        svg,
        r##"<text transform="translate(18,{y:.1}) rotate(-90)" text-anchor="middle" font-size="12" fill="#374151">{}</text>"##,
        xml::escape(title),
        y = (top + bottom) / 2.0,
    );
}

fn gridline(svg: &mut String, y: f64, label: &str) {
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{y:.1}" x2="{x2:.1}" y2="{y:.1}" stroke="#e5e7eb" stroke-width="1"/><text x="{tx}" y="{ty:.1}" text-anchor="end" font-size="10" fill="#6b7280">{}</text>"##,
        xml::escape(label),
        x2 = WIDTH - RIGHT,
        tx = LEFT - 6.0,
        ty = y + 3.5,
    );
}

fn success_panel(svg: &mut String, b: &Buckets, speed: f64, axis: &TimeAxis, l: &Layout) {
    let y = |fraction: f64| l.top_bottom - fraction * (l.top_bottom - l.top - 6.0);
    for p in [0.0, 0.25, 0.5, 0.75, 1.0] {
        gridline(svg, y(p), &format!("{} %", (p * 100.0) as u32));
    }
    panel_frame(svg, l.top, l.top_bottom, "success rate");
    if b.bulwark.iter().chain(&b.direct).all(|k| k.sent == 0) {
        let _ = write!(
            svg,
            r##"<text x="{x:.1}" y="{y:.1}" text-anchor="middle" font-size="13" fill="#6b7280">No requests were recorded.</text>"##,
            x = (LEFT + WIDTH - RIGHT) / 2.0,
            y = (l.top + l.top_bottom) / 2.0,
        );
    }
    let point = |series: &[Bucket]| -> Vec<Option<(f64, f64)>> {
        series
            .iter()
            .enumerate()
            .map(|(i, bucket)| {
                bucket
                    .success()
                    .map(|s| (bucket_x(i, b.width, speed, axis), y(s)))
            })
            .collect()
    };
    polyline(svg, &point(&b.direct), DIRECT, 1.4, 1.0, true);
    polyline(svg, &point(&b.bulwark), BULWARK, 1.8, 1.0, false);
}

fn latency_scale(b: &Buckets, deadline: Duration) -> LatencyScale {
    let values = b
        .bulwark
        .iter()
        .chain(&b.direct)
        .flat_map(|bucket| [bucket.p50, bucket.p95])
        .flatten()
        .map(|d| d.as_secs_f64());
    let (mut min, mut max) = (f64::INFINITY, 0.0f64);
    for v in values {
        min = min.min(v);
        max = max.max(v);
    }
    if !min.is_finite() {
        // Nothing recorded: an empty axis up to the deadline still tells
        // the reader what the chart would have shown.
        min = 0.01;
        max = deadline.as_secs_f64().max(1.0);
    }
    // Show the deadline when it is near enough to matter.
    let d = deadline.as_secs_f64();
    if d > 0.0 && d <= max * 5.0 {
        max = max.max(d);
    }
    LatencyScale::fit(min, max)
}

fn latency_panel(
    svg: &mut String,
    b: &Buckets,
    speed: f64,
    axis: &TimeAxis,
    l: &Layout,
    scale: LatencyScale,
    deadline: Duration,
) {
    let y = |seconds: f64| {
        l.bottom_bottom - scale.fraction(seconds) * (l.bottom_bottom - l.bottom - 6.0)
    };
    for (v, label) in scale.ticks() {
        gridline(svg, y(v), &label);
    }
    let title = if scale.is_log() {
        "latency (log scale)"
    } else {
        "latency"
    };
    panel_frame(svg, l.bottom, l.bottom_bottom, title);
    let d = deadline.as_secs_f64();
    if d > 0.0 && scale.fraction(d) < 1.0 {
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" y1="{yd:.1}" x2="{x2:.1}" y2="{yd:.1}" stroke="#111827" stroke-width="1" stroke-dasharray="6 3" stroke-opacity="0.6"/><text x="{tx:.1}" y="{ty:.1}" text-anchor="end" font-size="10" fill="#111827">deadline {}</text>"##,
            xml::escape(&text::duration(deadline)),
            yd = y(d),
            x2 = WIDTH - RIGHT,
            tx = WIDTH - RIGHT - 4.0,
            ty = y(d) - 4.0,
        );
    }
    let series = |s: &[Bucket], pick: fn(&Bucket) -> Option<Duration>| -> Vec<Option<(f64, f64)>> {
        s.iter()
            .enumerate()
            .map(|(i, bucket)| {
                pick(bucket).map(|v| (bucket_x(i, b.width, speed, axis), y(v.as_secs_f64())))
            })
            .collect()
    };
    polyline(svg, &series(&b.direct, |k| k.p95), DIRECT, 1.1, 0.35, true);
    polyline(
        svg,
        &series(&b.bulwark, |k| k.p95),
        BULWARK,
        1.2,
        0.35,
        false,
    );
    polyline(svg, &series(&b.direct, |k| k.p50), DIRECT, 1.4, 1.0, true);
    polyline(
        svg,
        &series(&b.bulwark, |k| k.p50),
        BULWARK,
        1.8,
        1.0,
        false,
    );
}

/// A bucket's centre, in scenario time, as x.
fn bucket_x(i: usize, width: Duration, speed: f64, axis: &TimeAxis) -> f64 {
    axis.x(width.mul_f64((i as f64 + 0.5) * speed))
}

/// A line through the points, broken where a bucket was empty (a gap, not
/// a zero). A point with no neighbour gets a dot, or it would vanish.
fn polyline(
    svg: &mut String,
    points: &[Option<(f64, f64)>],
    color: &str,
    width: f64,
    opacity: f64,
    dashed: bool,
) {
    let mut d = String::new();
    let mut dots = String::new();
    for (i, p) in points.iter().enumerate() {
        let Some((x, y)) = p else { continue };
        let prev = i > 0 && points.get(i - 1).is_some_and(Option::is_some);
        let next = points.get(i + 1).is_some_and(Option::is_some);
        if prev {
            let _ = write!(d, " L{x:.1},{y:.1}");
        } else if next {
            let _ = write!(d, " M{x:.1},{y:.1}");
        } else {
            let _ = write!(
                dots,
                r##"<circle cx="{x:.1}" cy="{y:.1}" r="{r:.1}" fill="{color}" fill-opacity="{opacity}"/>"##,
                r = width
            );
        }
    }
    if !d.is_empty() {
        let dash = if dashed {
            r##" stroke-dasharray="5 3""##
        } else {
            ""
        };
        let _ = write!(
            svg,
            r##"<path d="{}" fill="none" stroke="{color}" stroke-width="{width}" stroke-opacity="{opacity}" stroke-linejoin="round"{dash}/>"##,
            d.trim_start()
        );
    }
    svg.push_str(&dots);
}

fn time_axis(svg: &mut String, axis: &TimeAxis, span: Duration, l: &Layout) {
    for t in time_ticks(span) {
        let x = axis.x(t);
        for bottom in [l.top_bottom, l.bottom_bottom] {
            let _ = write!(
                svg,
                r##"<line x1="{x:.1}" y1="{bottom:.1}" x2="{x:.1}" y2="{y2:.1}" stroke="#9ca3af"/>"##,
                y2 = bottom + 4.0,
            );
        }
        let _ = write!(
            svg,
            r##"<text x="{x:.1}" y="{y:.1}" text-anchor="middle" font-size="10" fill="#374151">{}</text>"##,
            xml::escape(&time_label(t)),
            y = l.bottom_bottom + 17.0,
        );
    }
    let _ = write!(
        svg,
        r##"<text x="{x:.1}" y="{y:.1}" text-anchor="middle" font-size="11" fill="#4b5563">scenario time</text>"##,
        x = (LEFT + WIDTH - RIGHT) / 2.0,
        y = l.bottom_bottom + 36.0,
    );
}

/// Incident and alert lines across both panels, labelled in the gap
/// between them; breaker changes as small ticks on the panels' edges.
fn markers(svg: &mut String, data: &DrillData, axis: &TimeAxis, l: &Layout) {
    let mut sorted: Vec<_> = data.markers.iter().collect();
    sorted.sort_by_key(|m| m.at);
    // The same first alert as the report's time to first alert: a test
    // alert sent before the outage is not the gateway reacting to it.
    let outage = data
        .outage_start
        .map(|t| data.wall_time(t))
        .unwrap_or_default();
    let first_alert = sorted
        .iter()
        .position(|m| m.kind == MarkerKind::AlertDelivered && m.at >= outage);
    let mut rows: [f64; 2] = [f64::NEG_INFINITY; 2];
    for (i, m) in sorted.iter().enumerate() {
        let x = axis.x(data.scenario_time(m.at));
        let when = format!(
            "{} (wall {})",
            text::scenario(data.scenario_time(m.at)),
            text::duration(m.at)
        );
        let (color, label, dash) = match m.kind {
            MarkerKind::IncidentOpened => (OPENED, "incident opened", ""),
            MarkerKind::IncidentResolved => (RESOLVED, "incident resolved", ""),
            MarkerKind::AlertDelivered if Some(i) == first_alert => {
                (ALERT, "first alert", r##" stroke-dasharray="2 2""##)
            }
            MarkerKind::AlertDelivered => continue,
            MarkerKind::BreakerOpened | MarkerKind::BreakerClosed => {
                let opened = m.kind == MarkerKind::BreakerOpened;
                let color = if opened { BREAKER_OPEN } else { BREAKER_CLOSED };
                let what = if opened {
                    "breaker opened"
                } else {
                    "breaker closed"
                };
                let _ = write!(
                    svg,
                    "<g><title>{}</title>",
                    xml::escape(&format!("{what}: {} at {when}", m.label))
                );
                for edge in [l.top_bottom, l.bottom_bottom] {
                    let (tip, down) = if opened {
                        (edge - 1.0, true)
                    } else {
                        (edge - 8.0, false)
                    };
                    svg.push_str(&triangle(x, tip, color, down));
                }
                svg.push_str("</g>");
                continue;
            }
        };
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" y1="{y0:.1}" x2="{x:.1}" y2="{y1:.1}" stroke="{color}" stroke-width="1.4"{dash}><title>{t}</title></line>"##,
            y0 = l.top,
            y1 = l.bottom_bottom,
            t = xml::escape(&format!("{label}: {} at {when}", m.label)),
        );
        // Two rows of labels in the gap; a label goes in the first row it
        // does not overlap. No room in either (a flapping drill): the line
        // and its tooltip stay, the label goes rather than overprint.
        let w = text_width(label, 10.0) + 4.0;
        let anchor_right = x + w > WIDTH - RIGHT;
        let (start, end) = if anchor_right { (x - w, x) } else { (x, x + w) };
        let Some(row) = rows.iter().position(|&taken| taken < start) else {
            continue;
        };
        let (tx, anchor) = if anchor_right {
            (x - 3.0, "end")
        } else {
            (x + 3.0, "start")
        };
        if let Some(taken) = rows.get_mut(row) {
            *taken = end;
        }
        let _ = write!(
            svg,
            r##"<text x="{tx:.1}" y="{y:.1}" text-anchor="{anchor}" font-size="10" fill="{color}">{}</text>"##,
            xml::escape(label),
            y = l.top_bottom + 17.0 + row as f64 * 14.0,
        );
    }
}

/// Roughly how wide text is in DejaVu Sans, whose average glyph is a bit
/// over half the font size: enough to avoid overlaps, not typesetting.
fn text_width(s: &str, size: f64) -> f64 {
    s.chars().count() as f64 * size * 0.6
}

/// `s`, shortened with an ellipsis to fit `width`, or `None` if not even
/// a few letters would.
fn fit(s: &str, width: f64, size: f64) -> Option<String> {
    if text_width(s, size) <= width {
        return Some(s.to_string());
    }
    let chars = (width / (size * 0.6)).floor() as usize;
    if chars < 4 {
        return None;
    }
    let cut: String = s.chars().take(chars - 1).collect();
    Some(format!("{}…", cut.trim_end()))
}
