//! The report against a drill built by hand, where every request's fate is
//! known: each figure is recomputed here from that knowledge, not from the
//! report's own helpers, and the chart is rendered with rsvg-convert.

use std::path::PathBuf;
use std::time::Duration;

use bulwark::observe::component::ComponentState;
use bulwark::observe::incident::{Impact, Incident, IncidentStatus, TimelineEntry, TimelineKind};
use bulwark_drill::PhaseSpan;
use bulwark_drill::outcome::{DrillData, Marker, MarkerKind, Path, Sent};
use bulwark_drill::report::{self, Assertion, Report};

const SPEED: f64 = 240.0;
const PER_PATH: u64 = 600;
/// Unix ms of the drill's start, for the incident's timestamps.
const EPOCH: i64 = 1_764_409_501_000;
const FAILED_SEQ: u64 = 150;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn mins(n: u64) -> Duration {
    Duration::from_secs(n * 60)
}

/// What the test decided should happen to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    First,
    Fallback,
    Cache,
    Degraded,
    Failed,
}

/// One request every 100 ms of wall time; the outage (scenario 30m to 2h)
/// is wall 7.5 s to 30 s, so seq 75 to 299.
fn in_outage(seq: u64) -> bool {
    (75..300).contains(&seq)
}

fn direct_fails(seq: u64) -> bool {
    in_outage(seq) && seq % 10 < 7
}

fn bulwark_fate(seq: u64) -> Fate {
    if seq == FAILED_SEQ {
        Fate::Failed
    } else if seq % 50 == 13 {
        Fate::Cache
    } else if in_outage(seq) && seq % 100 == 42 {
        Fate::Degraded
    } else if direct_fails(seq) && seq >= 82 {
        // Before 8.2 s the breaker had not opened yet: retries on the
        // primary still got through.
        Fate::Fallback
    } else {
        Fate::First
    }
}

fn base(path: Path, seq: u64) -> Sent {
    Sent {
        path,
        seq,
        at: ms(seq * 100),
        stream: seq.is_multiple_of(2),
        client_format: if seq.is_multiple_of(3) {
            "anthropic"
        } else {
            "openai"
        }
        .to_string(),
        status: Some(200),
        ok: true,
        error: None,
        detail: None,
        latency: Duration::ZERO,
        first_token: None,
        target: None,
        attempts: None,
        fallback: false,
        cache: None,
        degraded: None,
        dropped: None,
    }
}

fn direct(seq: u64) -> Sent {
    let mut s = base(Path::Direct, seq);
    if direct_fails(seq) {
        s.ok = false;
        match seq % 10 {
            0..=3 => {
                s.status = Some(529);
                s.error = Some("529 overloaded".to_string());
                s.latency = ms(150 + (seq % 5) * 10);
            }
            4 | 5 => {
                s.status = Some(500);
                s.error = Some("500".to_string());
                s.latency = ms(200 + (seq % 5) * 10);
            }
            _ => {
                s.status = None;
                s.error = Some("timeout".to_string());
                s.latency = ms(20_000 + seq);
            }
        }
    } else {
        s.latency = ms(400 + (seq % 7) * 50);
        if s.stream {
            s.first_token = Some(s.latency / 3);
        }
    }
    s
}

fn bulwark(seq: u64) -> Sent {
    let mut s = base(Path::Bulwark, seq);
    s.target = Some("anthropic".to_string());
    s.attempts = Some(1);
    match bulwark_fate(seq) {
        Fate::Failed => {
            s.ok = false;
            s.status = Some(504);
            s.error = Some("deadline exceeded".to_string());
            s.latency = ms(30_500);
            s.attempts = Some(3);
        }
        Fate::Cache => {
            s.cache = Some(if in_outage(seq) { "stale" } else { "hit" }.to_string());
            s.latency = ms(5);
            s.attempts = Some(0);
        }
        Fate::Degraded => {
            // Degraded wins over fallback: the answer is a lesser one.
            s.fallback = true;
            s.degraded = Some("static".to_string());
            s.latency = ms(30);
        }
        Fate::Fallback => {
            s.fallback = true;
            s.target = Some("openai".to_string());
            s.attempts = Some(2);
            s.latency = ms(900 + (seq % 9) * 40);
        }
        Fate::First => {
            s.latency = ms(350 + (seq % 11) * 30);
            if in_outage(seq) {
                s.attempts = Some(2);
                s.latency += ms(400);
            }
        }
    }
    if s.ok && s.stream && s.cache.is_none() {
        s.first_token = Some(s.latency / 2);
    }
    s
}

fn span(provider: &str, name: &str, index: usize, start: Duration, end: Duration) -> PhaseSpan {
    PhaseSpan {
        provider: provider.to_string(),
        name: name.to_string(),
        index,
        start,
        end,
    }
}

fn marker(at_ms: u64, kind: MarkerKind, label: &str) -> Marker {
    Marker {
        at: ms(at_ms),
        kind,
        label: label.to_string(),
    }
}

const TITLE: &str = "anthropic: elevated errors";

fn entry(at_ms: i64, kind: TimelineKind, status: IncidentStatus, message: &str) -> TimelineEntry {
    TimelineEntry {
        at: EPOCH + at_ms,
        kind,
        component: Some("anthropic".to_string()),
        status,
        message: message.to_string(),
    }
}

fn incident() -> Incident {
    Incident {
        id: "inc-20261129-094501-3f2a".to_string(),
        title: TITLE.to_string(),
        status: IncidentStatus::Resolved,
        worst: ComponentState::MajorOutage,
        components: vec!["anthropic".to_string()],
        started_at: EPOCH + 9_000,
        updated_at: EPOCH + 33_000,
        resolved_at: Some(EPOCH + 33_000),
        impact: Impact {
            affected: 220,
            saved_by_fallback: 150,
            from_cache: 4,
            degraded: 2,
            failed: 1,
        },
        timeline: vec![
            entry(
                9_000,
                TimelineKind::Detected,
                IncidentStatus::Investigating,
                "Error rate 68 % | above 20 %",
            ),
            entry(
                9_100,
                TimelineKind::BreakerOpened,
                IncidentStatus::Identified,
                "Breaker open",
            ),
            entry(
                9_200,
                TimelineKind::FallbackEngaged,
                IncidentStatus::Identified,
                "Serving from openai",
            ),
            entry(
                33_000,
                TimelineKind::Resolved,
                IncidentStatus::Resolved,
                "Healthy again",
            ),
        ],
    }
}

fn data() -> DrillData {
    let mut sent = Vec::new();
    for seq in 0..PER_PATH {
        sent.push(bulwark(seq));
        sent.push(direct(seq));
    }
    DrillData {
        scenario: "provider-outage".to_string(),
        description: "Anthropic overloaded for ninety minutes; backups healthy.".to_string(),
        config_name: "bulwark.yaml".to_string(),
        speed: SPEED,
        wall_duration: Duration::from_secs(60),
        primary: "anthropic".to_string(),
        route: "chat".to_string(),
        deadline: Duration::from_secs(30),
        phases: vec![
            span("anthropic", "healthy", 0, mins(0), mins(30)),
            span("anthropic", "elevated error rates", 1, mins(30), mins(120)),
            span("anthropic", "recovered", 2, mins(120), mins(240)),
            span("gemini", "healthy", 0, mins(0), mins(240)),
            span("openai", "healthy", 0, mins(0), mins(60)),
            span("openai", "rate limited", 1, mins(60), mins(90)),
            span("openai", "healthy", 2, mins(90), mins(240)),
        ],
        outage_start: Some(mins(30)),
        recovery_start: Some(mins(120)),
        sent,
        markers: vec![
            // Before the outage: must not count as the first alert.
            marker(2_000, MarkerKind::AlertDelivered, "test alert"),
            marker(8_200, MarkerKind::BreakerOpened, "anthropic"),
            marker(9_000, MarkerKind::IncidentOpened, TITLE),
            marker(9_400, MarkerKind::AlertDelivered, TITLE),
            marker(12_000, MarkerKind::AlertDelivered, TITLE),
            marker(31_000, MarkerKind::BreakerClosed, "anthropic"),
            marker(33_000, MarkerKind::IncidentResolved, TITLE),
        ],
        upstream_calls: vec![
            ("anthropic".to_string(), 700),
            ("gemini".to_string(), 10),
            ("openai".to_string(), 180),
        ],
        retry_budget_allowance: 720,
        incidents: vec![incident()],
    }
}

/// Nearest rank, written out again: the ⌈p·n/100⌉-th smallest.
fn nearest_rank(mut values: Vec<Duration>, p: u64) -> Duration {
    values.sort();
    let n = values.len() as u64;
    values[((p * n).div_ceil(100) - 1) as usize]
}

#[test]
fn figures_match_what_was_recorded() {
    let d = data();
    let r = Report::from_data(&d);
    r.reconciles().unwrap();

    let fates: Vec<Fate> = (0..PER_PATH).map(bulwark_fate).collect();
    let count = |f: Fate| fates.iter().filter(|&&x| x == f).count() as u64;
    let b = &r.bulwark;
    assert_eq!(b.sent, 600);
    assert_eq!(b.failed, 1);
    assert_eq!(b.ok, 599);
    assert_eq!(b.from_cache, count(Fate::Cache));
    assert_eq!(b.from_cache, 12, "seq 13, 63, ... 563");
    assert_eq!(b.degraded, 2, "seq 142 and 242");
    assert_eq!(b.fallback, count(Fate::Fallback));
    assert_eq!(b.first_target, count(Fate::First));
    assert_eq!(b.availability, 599.0 / 600.0);
    assert_eq!(b.errors, vec![("deadline exceeded".to_string(), 1)]);
    assert_eq!(b.slowest, ms(30_500));
    let lat: Vec<Duration> = (0..PER_PATH).map(|s| bulwark(s).latency).collect();
    assert_eq!(b.p50, nearest_rank(lat.clone(), 50));
    assert_eq!(b.p95, nearest_rank(lat.clone(), 95));
    assert_eq!(b.p99, nearest_rank(lat, 99));
    let ft: Vec<Duration> = (0..PER_PATH)
        .filter_map(|s| bulwark(s).first_token)
        .collect();
    assert_eq!(b.first_token_p50, Some(nearest_rank(ft.clone(), 50)));
    assert_eq!(b.first_token_p95, Some(nearest_rank(ft, 95)));

    let dr = &r.direct;
    let failing: Vec<u64> = (0..PER_PATH).filter(|&s| direct_fails(s)).collect();
    assert_eq!(
        failing.len(),
        156,
        "seq 75, 76, then 7 of every 10 of 80..300"
    );
    assert_eq!(dr.sent, 600);
    assert_eq!(dr.failed, 156);
    assert_eq!(dr.ok, 444);
    assert_eq!(dr.first_target, 444);
    assert_eq!((dr.fallback, dr.from_cache, dr.degraded), (0, 0, 0));
    assert_eq!(dr.availability, 444.0 / 600.0);
    let by = |pred: fn(u64) -> bool| failing.iter().filter(|&&s| pred(s)).count() as u64;
    let (e529, e500, timeout) = (
        by(|s| s % 10 < 4),
        by(|s| s % 10 == 4 || s % 10 == 5),
        by(|s| s % 10 == 6),
    );
    assert_eq!(e529 + e500 + timeout, 156);
    assert_eq!(
        dr.errors,
        vec![
            ("529 overloaded".to_string(), e529),
            ("500".to_string(), e500),
            ("timeout".to_string(), timeout),
        ]
    );
    assert_eq!(dr.slowest, ms(20_000 + 296), "the last timeout, seq 296");
    let lat: Vec<Duration> = (0..PER_PATH).map(|s| direct(s).latency).collect();
    assert_eq!(dr.p95, nearest_rank(lat.clone(), 95));
    assert_eq!(dr.p99, nearest_rank(lat, 99));

    assert_eq!(r.upstream_calls, 890);
    assert_eq!(r.amplification, 890.0 / 600.0);
    assert_eq!(r.retry_budget_allowance, 720);
    assert_eq!(r.over_deadline, 1);
    // Outage at scenario 30m = wall 7.5 s.
    // Reaction times are measured on the wall clock and given in scenario
    // time (× SPEED): the gateway's clocks run at the drill's speed.
    assert_eq!(r.time_to_detect, Some(ms(1_500).mul_f64(SPEED)));
    assert_eq!(r.time_to_first_alert, Some(ms(1_900).mul_f64(SPEED)));
    assert_eq!(
        r.time_to_fail_over,
        Some(ms(700).mul_f64(SPEED)),
        "seq 82, sent at 8.2 s"
    );
    // Recovery at scenario 2h = wall 30 s.
    assert_eq!(r.time_to_recover, Some(ms(3_000).mul_f64(SPEED)));
    assert_eq!(r.incidents, vec![incident()]);
}

#[test]
fn reconciliation_catches_lost_and_doubled_requests() {
    let mut doubled = data();
    doubled.sent.push(bulwark(17));
    let err = Report::from_data(&doubled).reconciles().unwrap_err();
    assert!(
        err.contains("bulwark: requests recorded more than once: seq 17"),
        "{err}"
    );

    let mut dropped = data();
    dropped
        .sent
        .retain(|s| !(s.path == Path::Direct && s.seq == 10));
    let err = Report::from_data(&dropped).reconciles().unwrap_err();
    assert!(
        err.contains("direct: requests never recorded: seq 10"),
        "{err}"
    );
    assert!(!err.contains("bulwark"), "{err}");

    // The last request is no gap, but the other path has it.
    let mut last = data();
    last.sent
        .retain(|s| !(s.path == Path::Bulwark && s.seq == PER_PATH - 1));
    let err = Report::from_data(&last).reconciles().unwrap_err();
    assert!(
        err.contains("bulwark: requests never recorded: seq 599"),
        "{err}"
    );

    let mut doctored = Report::from_data(&data());
    doctored.bulwark.ok -= 1;
    let err = doctored.reconciles().unwrap_err();
    assert!(
        err.contains("bulwark: 600 sent but 598 ok + 1 failed"),
        "{err}"
    );
}

#[test]
fn assertions_parse_and_check() {
    let r = Report::from_data(&data());
    let check = |text: &str| text.parse::<Assertion>().unwrap().check(&r);
    assert_eq!(
        check("availability>=99.9"),
        Err("FAIL availability >= 99.9 % (actual 99.83 %)".to_string())
    );
    assert_eq!(
        check("availability >= 99.5%"),
        Ok("PASS availability >= 99.5 % (actual 99.83 %)".to_string())
    );
    assert_eq!(
        check("p99<=10s"),
        Ok(format!(
            "PASS p99 <= 10s (actual {})",
            fmt_ms(r.bulwark.p99)
        ))
    );
    assert_eq!(
        check("slowest<10s"),
        Err("FAIL slowest < 10s (actual 30.5 s)".to_string())
    );
    assert!(check("p95<2s").is_ok());
    assert_eq!(check("fallback>=1").map(|_| ()), Ok(()));
    assert_eq!(
        check("amplification<=1.5"),
        Ok("PASS amplification <= 1.5 (actual 1.483)".to_string())
    );
    assert_eq!(
        check("failed==0"),
        Err("FAIL failed == 0 (actual 1)".to_string())
    );
    assert_eq!(
        check("time_to_detect<=10m"),
        Ok("PASS time_to_detect <= 10m (actual 6m)".to_string())
    );
    assert_eq!(
        check("direct.availability<80"),
        Ok("PASS direct.availability < 80 % (actual 74.00 %)".to_string())
    );
    assert!(check("over_deadline==1").is_ok());

    // 999 of 1000 meets 99.9 exactly, whatever floating point thinks of 0.999.
    let mut exact = r.clone();
    (exact.bulwark.ok, exact.bulwark.sent) = (999, 1000);
    assert!(
        "availability>=99.9"
            .parse::<Assertion>()
            .unwrap()
            .check(&exact)
            .is_ok()
    );

    // An event that never happened fails any threshold on it.
    let mut quiet = data();
    quiet
        .markers
        .retain(|m| m.kind != MarkerKind::IncidentResolved);
    let quiet = Report::from_data(&quiet);
    assert_eq!(
        "time_to_recover<=60s"
            .parse::<Assertion>()
            .unwrap()
            .check(&quiet),
        Err("FAIL time_to_recover <= 60s (actual never happened)".to_string())
    );
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

#[test]
fn bad_assertions_are_rejected_clearly() {
    let err = |text: &str| text.parse::<Assertion>().unwrap_err().to_string();
    let unknown = err("availabilty>=99");
    assert!(
        unknown.contains("unknown metric `availabilty`"),
        "{unknown}"
    );
    for metric in [
        "availability",
        "p99",
        "amplification",
        "time_to_detect",
        "fallback",
    ] {
        assert!(unknown.contains(metric), "{unknown}");
    }
    assert!(
        err("p99<=10").contains("duration with a unit"),
        "{}",
        err("p99<=10")
    );
    assert!(err("availability").contains("no comparison"));
    assert!(err("availability>=120").contains("between 0 and 100"));
    assert!(err("failed<=1.5").contains("whole number"));
    assert!(err("amplification<=lots").contains("number of upstream calls"));
    assert!(err("direct.amplification<=2").contains("not measured per path"));
    assert!(err("p99<=").contains("no value"));
}

#[test]
fn markdown_has_its_sections() {
    let d = data();
    let r = Report::from_data(&d);
    let md = report::markdown(&r, &d, Some("provider-outage.svg"));
    std::fs::write(out_dir().join("provider-outage.md"), &md).unwrap();
    let sections = [
        "# Drill report: provider-outage",
        "## Summary",
        "## Results",
        "## Timings",
        "## Incidents",
        "## Phases",
        "## Chart",
        "## How to read this",
    ];
    let mut last = 0;
    for s in sections {
        let at = md
            .find(&format!("{s}\n"))
            .unwrap_or_else(|| panic!("no `{s}` in\n{md}"));
        assert!(at >= last, "`{s}` out of order");
        last = at;
    }
    assert!(md.contains(
        "Through Bulwark 99.83 % of 600 requests succeeded; calling anthropic directly, 74.00 % did."
    ));
    assert!(md.contains("| With Bulwark | Without (anthropic direct) |"));
    assert!(md.contains("![Success rate and latency"));
    assert!(md.contains("(provider-outage.svg)"));
    assert!(md.contains("| Time to detect | 6m | (1.50 s) |"), "{md}");
    assert!(md.contains("### anthropic: elevated errors (`inc-20261129-094501-3f2a`)"));
    // The incident's timeline on the drill's clock: opened at wall 9 s.
    assert!(md.contains("| 9.00 s (36m) | detected | anthropic | investigating | Error rate 68 % \\| above 20 % |"), "{md}");
    assert!(md.contains("| 33.0 s (2h12m) | resolved |"), "{md}");
    assert!(md.contains("| anthropic (primary) | elevated error rates | 30m | 2h |"));
    assert!(md.contains("real time"));
    assert!(!md.contains("do not reconcile"));
    assert!(report::markdown(&r, &d, None).contains("No chart was written"));
}

#[test]
fn table_shows_both_columns_and_the_timings() {
    let d = data();
    let r = Report::from_data(&d);
    let t = report::table(&r, &d);
    std::fs::write(out_dir().join("provider-outage.txt"), &t).unwrap();
    assert!(t.contains("With Bulwark"), "{t}");
    assert!(t.contains("Without (anthropic direct)"), "{t}");
    assert!(t.contains("99.83 %") && t.contains("74.00 %"), "{t}");
    assert!(t.contains("Time to fail over"), "{t}");
    assert!(t.contains("2m48s (700 ms real)"), "{t}");
    assert!(t.contains("inc-20261129-094501-3f2a"), "{t}");
    // Columns line up: every row of the results block is the same width.
    let rows: Vec<&str> = t
        .lines()
        .skip_while(|l| !l.contains("With Bulwark"))
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(rows.len() > 10);
    let width = rows[0].chars().count();
    assert!(rows.iter().all(|r| r.chars().count() == width), "{t}");
}

#[expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup fails the test"
)]
fn out_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/drill-report-test");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Render with rsvg-convert; returns the PNG's width and height.
#[expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failed setup fails the test"
)]
fn render(svg: &str, name: &str) -> (u32, u32) {
    let dir = out_dir();
    let svg_path = dir.join(format!("{name}.svg"));
    let png_path = dir.join(format!("{name}.png"));
    std::fs::write(&svg_path, svg).unwrap();
    let status = std::process::Command::new("rsvg-convert")
        .arg("-o")
        .arg(&png_path)
        .arg(&svg_path)
        .status();
    let status = match status {
        Ok(s) => s,
        Err(e) => panic!(
            "rsvg-convert is needed to check the chart renders ({e}): apt-get install librsvg2-bin"
        ),
    };
    assert!(
        status.success(),
        "rsvg-convert failed on {}",
        svg_path.display()
    );
    let png = std::fs::read(&png_path).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.len() > 10_000, "a {}-byte PNG is blank", png.len());
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn chart_is_valid_svg_and_renders() {
    let d = data();
    let svg = report::chart_svg(&d);
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let texts: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(str::to_string))
        .collect();
    for wanted in [
        "Drill: provider-outage",
        "elevated error rates",
        "incident opened",
        "incident resolved",
        "first alert",
        "With Bulwark",
        "Without (anthropic direct)",
        "30m",
        "4h",
        "openai",
        "rate limited",
    ] {
        assert!(
            texts.iter().any(|t| t.contains(wanted)),
            "no `{wanted}` in {texts:?}"
        );
    }
    assert!(!svg.contains("<script"));
    assert!(!svg.contains("href"), "no external assets");
    let (w, h) = render(&svg, "provider-outage");
    assert_eq!(w, 1100);
    assert!(h > 500);
}

#[test]
fn chart_leaves_gaps_and_escapes_text() {
    let mut d = data();
    d.scenario = "<odd> & \"quoted\" scenario".to_string();
    d.phases[1].name = "errors <5xx> & hangs".to_string();
    // Nothing sent between wall 20 s and 40 s.
    d.sent.retain(|s| !(200..400).contains(&s.seq));
    let svg = report::chart_svg(&d);
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert!(svg.contains("&lt;odd&gt; &amp; &quot;quoted&quot;"));
    let bulwark_lines: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("path") && n.attribute("stroke") == Some("#1d4ed8"))
        .filter_map(|n| n.attribute("d"))
        .collect();
    assert!(!bulwark_lines.is_empty());
    for d in bulwark_lines {
        assert_eq!(d.matches('M').count(), 2, "one gap, two runs: {d}");
    }
    render(&svg, "gaps");
}

#[test]
fn empty_drill_still_reports() {
    let mut d = data();
    d.sent.clear();
    d.markers.clear();
    d.incidents.clear();
    d.upstream_calls.clear();
    let r = Report::from_data(&d);
    r.reconciles().unwrap();
    assert_eq!(
        (r.bulwark.sent, r.bulwark.availability, r.amplification),
        (0, 0.0, 0.0)
    );
    assert_eq!(r.time_to_detect, None);
    assert!(Assertion::check(&"availability>=0.1".parse().unwrap(), &r).is_err());
    let md = report::markdown(&r, &d, None);
    assert!(md.contains("The gateway opened no incident."));
    assert!(report::table(&r, &d).contains("none opened"));
    let svg = report::chart_svg(&d);
    roxmltree::Document::parse(&svg).unwrap();
    render(&svg, "empty");
}

/// A short drill at speed 1 with the primary flapping: many incidents and
/// breaker changes, buckets finer than a second.
#[test]
fn chart_copes_with_a_flapping_drill() {
    let mut d = data();
    d.scenario = "flapping".to_string();
    d.speed = 1.0;
    d.wall_duration = Duration::from_secs(20);
    d.phases = vec![
        span("anthropic", "healthy", 0, ms(0), ms(4_000)),
        span("anthropic", "flapping", 1, ms(4_000), ms(16_000)),
        span("anthropic", "recovered", 2, ms(16_000), ms(20_000)),
        span("openai", "healthy", 0, ms(0), ms(20_000)),
    ];
    d.outage_start = Some(ms(4_000));
    d.recovery_start = Some(ms(16_000));
    d.sent.retain(|s| s.seq < 200);
    d.markers.clear();
    for cycle in 0..4u64 {
        let t = 4_000 + cycle * 3_000;
        d.markers
            .push(marker(t + 300, MarkerKind::BreakerOpened, "anthropic"));
        d.markers
            .push(marker(t + 400, MarkerKind::IncidentOpened, TITLE));
        d.markers
            .push(marker(t + 500, MarkerKind::AlertDelivered, TITLE));
        d.markers
            .push(marker(t + 1_800, MarkerKind::BreakerClosed, "anthropic"));
        d.markers
            .push(marker(t + 2_000, MarkerKind::IncidentResolved, TITLE));
    }
    let svg = report::chart_svg(&d);
    roxmltree::Document::parse(&svg).unwrap();
    assert!(
        svg.contains("Each point covers 667 ms of wall time"),
        "30 buckets of 20 s"
    );
    render(&svg, "flapping");
    let r = Report::from_data(&d);
    assert_eq!(r.time_to_detect, Some(ms(400)));
    assert_eq!(
        r.time_to_recover, None,
        "the last incident closed before recovery"
    );
}
