//! The HTML page: what it shows, that it is self-contained, and that it
//! escapes everything that comes from config or admins.

mod common;

use bulwark_status::render_html;

#[test]
fn page_during_an_incident_shows_states_and_timeline() {
    let html = render_html(&common::during_incident());
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(
        html.contains(r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#)
    );
    // The headline is what clients get: the route's partial outage, not
    // the upstream's major one, which shows in its own group.
    assert!(html.contains("<h1>Partial outage</h1>"));
    assert!(html.contains(r#"class="banner b-partial_outage""#));
    assert!(html.contains("1 of 3 routes affected"));
    // Groups, routes first, upstreams beneath; states, reasons.
    let routes = html.find("<h2>Routes</h2>");
    let upstreams = html.find("<h2>Upstream providers</h2>");
    assert!(
        routes.is_some() && upstreams.is_some() && routes < upstreams,
        "{routes:?} {upstreams:?}"
    );
    assert!(html.contains(r#"<span class="state s-major_outage">Major outage</span>"#));
    assert!(html.contains(r#"<span class="state s-partial_outage">Partial outage</span>"#));
    assert!(html.contains("error rate 62 % over 60 s; circuit breaker open"));
    // Uptime and latency.
    assert!(html.contains("98.5 %") || html.contains("98.54 %"));
    assert!(html.contains("1.84 s"));
    assert!(html.contains("9.02 s"));
    // 90 bars per component, each with a tooltip.
    assert_eq!(html.matches("<rect ").count(), 6 * 90);
    assert_eq!(html.matches("<title>").count(), 1 + 6 * 90);
    assert!(html.contains("<title>2026-11-29: 98.5 % uptime, worst major outage</title>"));
    // Gemini's padded days are named and grey.
    assert!(html.contains("<title>2026-09-26: no data</title>"));
    // Error budgets.
    assert!(html.contains("Objective 99.9 % over 30 d"));
    assert!(html.contains("21.0 % left"));
    assert!(html.contains("overspent by 18.0 %"));
    assert!(html.contains(r#"<li class="hot""#));
    // Active incident with its full timeline and impact.
    assert!(html.contains("<h2>Active incidents</h2>"));
    assert!(html.contains(r#"id="inc-20261129-094501-3f2a""#));
    for entry in common::open_timeline() {
        assert!(html.contains(&entry.message), "missing {}", entry.message);
    }
    for label in [
        "Detected",
        "Breaker opened",
        "Fallback engaged",
        "Degraded answers",
        "Note",
    ] {
        assert!(
            html.contains(&format!(r#"<div class="what">{label}<span"#)),
            "{label}"
        );
    }
    assert!(html.contains("2026-11-29 09:45 UTC"));
    assert!(html.contains("18\u{202f}432"));
    // Past incidents.
    assert!(html.contains("Slow first tokens on chat"));
}

#[test]
fn page_is_self_contained() {
    let html = render_html(&common::during_incident());
    for external in [
        "http://",
        "https://",
        "src=",
        "<link rel=\"stylesheet\"",
        "@import",
        "url(",
    ] {
        assert!(!html.contains(external), "page references {external}");
    }
    // The one script is the optional live-update hook.
    assert_eq!(html.matches("<script>").count(), 1);
    assert!(html.contains("EventSource('/status/events')"));
}

#[test]
fn quiet_and_resolved_pages_read_well() {
    let html = render_html(&common::operational());
    assert!(html.contains("<h1>All systems operational</h1>"));
    assert!(html.contains("3 routes operational"));
    assert!(!html.contains("Active incidents"));
    assert!(html.contains("All operational"));

    let html = render_html(&common::after_resolution());
    assert!(html.contains("<h1>All systems operational</h1>"));
    assert!(html.contains("Resolved 2026-11-29 11:02 UTC after 1 h 17 min"));
    assert!(html.contains("All components operational for 20 minutes."));

    let mut empty = common::operational();
    empty.recent_incidents.clear();
    assert!(render_html(&empty).contains("No incidents reported recently."));
}

#[test]
fn hostile_names_and_messages_are_escaped() {
    let html = render_html(&common::hostile());
    // Only the page's own script tag survives.
    assert_eq!(html.matches("<script>").count(), 1);
    assert!(!html.contains("<script>alert"));
    assert!(html.contains("&lt;script&gt;alert('x')&lt;/script&gt; &amp; &quot;friends&quot;"));
    let escaped = html.matches("&lt;script&gt;alert").count();
    // Page name (title and brand), component name and reason, SLO route,
    // incident title and affected list, five messages, two component lines.
    assert!(escaped >= 12, "only {escaped} escaped occurrences");
}

#[test]
fn an_outage_fallback_absorbs_is_no_outage_in_the_headline() {
    let html = render_html(&common::absorbed());
    // Every request served by the backup: degraded at most, never an outage.
    assert!(html.contains("<h1>Degraded performance</h1>"), "{html}");
    assert!(!html.contains("<h1>Major outage</h1>"));
    assert!(html.contains(
        r#"<p class="notice">OpenAI is down; every request is being served by Anthropic</p>"#
    ));
    // The upstream's outage stays visible, in its group beneath the routes.
    let Some(upstreams) = html.find("<h2>Upstream providers</h2>") else {
        panic!("no upstream group");
    };
    let down = html.find(r#"<span class="state s-major_outage">Major outage</span>"#);
    assert!(down.is_some_and(|at| at > upstreams), "{down:?}");
    assert!(html.contains("1 of 3 routes affected"));
}
