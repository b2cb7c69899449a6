//! The post-incident review has its sections and the facts in them.

mod common;

use bulwark_status::incident_markdown;

#[expect(
    clippy::panic,
    reason = "an assertion helper: what is missing fails the test"
)]
fn section<'a>(md: &'a str, heading: &str) -> &'a str {
    let start = md
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("no section {heading}:\n{md}"));
    let rest = &md[start + heading.len() + 5..];
    rest.find("\n## ").map_or(rest, |end| &rest[..end])
}

#[test]
fn resolved_review_has_every_section() {
    let md = incident_markdown(&common::resolved_incident());
    assert!(md.starts_with("# Incident review: Elevated errors from openai/gpt-4o\n"));
    assert!(md.contains("- **Status:** Resolved"));
    // 5 % failed, the rest saved: minor for clients, major for the upstream.
    assert!(md.contains("- **Impact:** minor (worst state: major outage)"));
    assert!(md.contains("- **Started:** 2026-11-29 09:45 UTC"));
    assert!(md.contains("- **Resolved:** 2026-11-29 11:02 UTC"));
    assert!(md.contains("- **Duration:** 1 h 17 min"));

    let summary = section(&md, "Summary");
    assert!(summary.contains("Between 2026-11-29 09:45 UTC and 2026-11-29 11:02 UTC"));
    assert!(summary.contains("*major outage*"));

    let impact = section(&md, "Impact");
    assert!(impact.contains("| Requests | Count | Share of affected |"));
    assert!(impact.contains("| Affected | 31\u{202f}207 | 100.0 % |"));
    assert!(impact.contains("| Saved by fallback | 28\u{202f}840 | 92.4 % |"));
    assert!(impact.contains("| Failed | 1\u{202f}555 | 5.0 % |"));

    let timeline = section(&md, "Timeline");
    let rows: Vec<&str> = timeline
        .lines()
        .filter(|l| l.starts_with("| 2026"))
        .collect();
    assert_eq!(rows.len(), 8);
    assert!(rows[0].contains("| Detected | openai/gpt-4o | investigating |"));
    assert!(rows[7].contains("| Resolved | – | resolved |"));

    let did = section(&md, "What the gateway did");
    assert!(did.contains("**Fallbacks**"));
    assert!(did.contains("fallback engaged on chat"));
    assert!(did.contains("**Degraded answers**"));
    assert!(did.contains("**Circuit breakers**"));
    assert!(did.contains("breaker opened on openai/gpt-4o"));
    assert!(did.contains("breaker closed on openai/gpt-4o"));
    assert!(did.contains("got an answer anyway (95.0 %)"));

    let duration = section(&md, "Duration");
    assert!(duration.contains("- Detected: 2026-11-29 09:45 UTC"));
    assert!(
        duration
            .contains("- First automatic mitigation: 2026-11-29 09:45 UTC (30 s after detection)")
    );
    assert!(duration.contains("- Resolved: 2026-11-29 11:02 UTC (1 h 17 min after detection)"));
    assert!(md.contains("## Root cause and follow-ups"));
}

#[test]
fn open_review_says_it_is_still_open() {
    let md = incident_markdown(&common::open_incident());
    assert!(md.contains("- **Resolved:** not yet"));
    assert!(section(&md, "Duration").contains("- Still open: 20 min as of 2026-11-29 10:05 UTC"));
    assert_eq!(
        section(&md, "Timeline")
            .lines()
            .filter(|l| l.starts_with("| 2026"))
            .count(),
        5
    );
}

#[test]
fn review_without_gateway_actions_says_so() {
    let md = incident_markdown(&common::older_incident());
    assert!(
        section(&md, "What the gateway did")
            .contains("No fallback, degraded-answer or circuit-breaker events were recorded.")
    );
}

#[test]
fn review_escapes_markdown_and_html() {
    let incident = common::hostile().active_incidents[0].clone();
    let md = incident_markdown(&incident);
    assert!(!md.contains("<script>"));
    assert!(md.contains("&lt;script&gt;"));
    assert!(md.contains("\\*bold\\*"));
    // Every timeline row keeps its five cells despite the `|` in the text.
    for row in section(&md, "Timeline")
        .lines()
        .filter(|l| l.starts_with("| 2026"))
    {
        let cells = row.replace("\\|", "").matches('|').count();
        assert_eq!(cells, 6, "{row}");
    }
}
