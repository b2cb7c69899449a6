//! Runs Debian's `promtool check metrics` over the page a realistic
//! workload renders: the same parser and linter Prometheus users rely on.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use bulwark::events::Event;
use bulwark::observe::component::{ComponentKind, ComponentState};
use bulwark::observe::record::{AttemptRecord, RequestRecord};
use bulwark::resilience::breaker::BreakerState;
use bulwark_metrics::{Metrics, Prices};

const PROMTOOL: &str = "/usr/bin/promtool";

/// promtool's exit status and everything it printed; an error says what
/// to install.
fn promtool_check(text: &str) -> std::io::Result<(bool, String)> {
    let mut child = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot run {PROMTOOL} ({e}); install it with \
                     `apt-get install -y --no-install-recommends prometheus`"
                ),
            )
        })?;
    // Written and closed in one statement: promtool reads until EOF.
    child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("promtool's stdin is not piped"))?
        .write_all(text.as_bytes())?;
    let out = child.wait_with_output()?;
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), printed))
}

fn attempt(target: &str, error: Option<&str>, hedge: bool, ms: f64) -> AttemptRecord {
    AttemptRecord {
        target: target.to_string(),
        at: 1_764_400_000_000,
        latency_ms: ms,
        first_token_ms: error.is_none().then_some(ms),
        status: Some(if error.is_some() { 529 } else { 200 }),
        error_class: error.map(str::to_string),
        hedge,
    }
}

fn base(i: usize, route: &str) -> RequestRecord {
    RequestRecord {
        id: format!("req-{i}"),
        at: 1_764_400_000_000 + i as i64,
        route: route.to_string(),
        client_format: if i.is_multiple_of(3) {
            "anthropic"
        } else {
            "openai"
        }
        .to_string(),
        stream: i.is_multiple_of(2),
        status: 200,
        error_class: None,
        target: None,
        fallback: false,
        cache: None,
        degraded: None,
        dropped: Vec::new(),
        latency_ms: 50.0 + (i % 40) as f64 * 97.0,
        first_token_ms: Some(20.0 + (i % 30) as f64 * 41.0),
        input_tokens: Some(200 + i as u64 % 900),
        output_tokens: Some(50 + i as u64 % 400),
        key_id: Some("team-a".to_string()),
        request_body: None,
        client_request_id: None,
        attempts: vec![],
    }
}

/// Every kind of request, event and gauge the gateway produces.
fn workload() -> Metrics {
    let primary = "openai/gpt-4o";
    let backup = "anthropic/claude-sonnet";
    let m = Metrics::with_names(
        Prices {
            per_target: HashMap::from([
                (primary.to_string(), (2.5, 10.0)),
                (backup.to_string(), (3.0, 15.0)),
            ]),
        },
        ["chat".to_string(), "embed".to_string()],
        [primary.to_string(), backup.to_string()],
    );
    for i in 0..500_usize {
        let route = if i.is_multiple_of(5) { "embed" } else { "chat" };
        let mut r = base(i, route);
        match i % 10 {
            0..=4 => {
                r.target = Some(primary.to_string());
                r.attempts = vec![attempt(primary, None, false, 400.0)];
                r.cache = Some("miss".to_string());
            }
            5 => {
                r.target = Some(backup.to_string());
                r.fallback = true;
                r.attempts = vec![
                    attempt(primary, Some("overloaded"), false, 900.0),
                    attempt(primary, Some("overloaded"), false, 800.0),
                    attempt(backup, None, false, 700.0),
                ];
            }
            6 => {
                r.target = Some(primary.to_string());
                r.attempts = vec![
                    attempt(primary, None, false, 3000.0),
                    attempt(backup, Some("cancelled"), true, 1000.0),
                ];
            }
            7 => {
                r.target = Some("cache".to_string());
                r.cache = Some(if i % 20 == 7 { "hit" } else { "stale" }.to_string());
                if i % 20 != 7 {
                    r.degraded = Some("stale-cache".to_string());
                }
            }
            8 => {
                r.status = 503;
                r.error_class = Some("all_targets_failed".to_string());
                r.first_token_ms = None;
                r.input_tokens = None;
                r.output_tokens = None;
                r.attempts = vec![
                    attempt(primary, Some("timeout"), false, 30_000.0),
                    attempt(backup, Some("rate_limited"), false, 100.0),
                ];
            }
            _ => {
                r.status = 400;
                r.error_class = Some("invalid_request".to_string());
                r.route = "a-model-nobody-configured".to_string();
                r.first_token_ms = None;
            }
        }
        m.record(&r);
    }
    m.record(&{
        let mut r = base(1000, "chat");
        r.target = Some("static".to_string());
        r.degraded = Some("static".to_string());
        r
    });
    m.on_event(&Event::RetryBudgetExhausted {
        target: primary.to_string(),
    });
    m.on_event(&Event::Breaker {
        target: primary.to_string(),
        from: BreakerState::Closed,
        to: BreakerState::Open,
        open_for: Some(Duration::from_secs(30)),
    });
    m.on_event(&Event::Breaker {
        target: primary.to_string(),
        from: BreakerState::Open,
        to: BreakerState::HalfOpen,
        open_for: None,
    });
    m.on_event(&Event::Shed {
        route: "chat".to_string(),
    });
    m.on_event(&Event::Skipped {
        route: "chat".to_string(),
        target: primary.to_string(),
        reason: "breaker_open",
    });
    m.on_event(&Event::Continued {
        route: "chat".to_string(),
        from: primary.to_string(),
        to: backup.to_string(),
        dropped: Vec::new(),
    });
    m.on_event(&Event::Misconfigured {
        target: backup.to_string(),
    });
    m.set_breaker_state(backup, BreakerState::Closed);
    m.set_component_state(
        primary,
        ComponentKind::Target,
        ComponentState::PartialOutage,
    );
    m.set_component_state(
        "chat",
        ComponentKind::Route,
        ComponentState::DegradedPerformance,
    );
    m.set_queue("chat", 4);
    m.observe_queue_wait("chat", Duration::from_millis(35));
    m.set_concurrency(primary, 32, 7);
    m.set_store_stats(12_000, 3, 1, 40, true);
    m.set_alert_stats(5, 1, 2);
    m
}

#[test]
fn promtool_accepts_the_rendered_page_without_lint_warnings() {
    let text = workload().render();
    let (ok, printed) = promtool_check(&text).unwrap_or_else(|e| panic!("{e}"));
    assert!(ok, "promtool rejected the page:\n{printed}\n---\n{text}");
    assert!(
        printed.trim().is_empty(),
        "promtool printed lint findings:\n{printed}"
    );
    // The workload reached every metric family.
    for family in [
        "bulwark_requests_total",
        "bulwark_request_duration_seconds_bucket",
        "bulwark_time_to_first_token_seconds_bucket",
        "bulwark_attempts_total",
        "bulwark_retries_total",
        "bulwark_fallbacks_total",
        "bulwark_hedges_total",
        "bulwark_tokens_total",
        "bulwark_cost_usd_total",
        "bulwark_cache_total",
        "bulwark_degraded_total",
        "bulwark_retry_budget_exhausted_total",
        "bulwark_breaker_transitions_total",
        "bulwark_shed_total",
        "bulwark_skipped_total",
        "bulwark_stream_continuations_total",
        "bulwark_misconfigured_total",
        "bulwark_breaker_state",
        "bulwark_component_state",
        "bulwark_queue_depth",
        "bulwark_queue_wait_seconds_bucket",
        "bulwark_concurrency_limit",
        "bulwark_in_flight",
        "bulwark_store_rows_written_total",
        "bulwark_store_up",
        "bulwark_alerts_delivered_total",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{family}{{"))
                    || l.starts_with(&format!("{family} "))),
            "{family} missing from:\n{text}"
        );
    }
    assert!(!text.contains("nobody-configured"));
}

/// Why `render()` emits the Prometheus text format: promtool (2.42, as
/// Debian ships it) parses only that, and trips over OpenMetrics pages.
/// Prints its verdict on the OpenMetrics rendering for the record.
#[test]
fn promtool_on_the_openmetrics_rendering() {
    let (ok, printed) =
        promtool_check(&workload().render_openmetrics()).unwrap_or_else(|e| panic!("{e}"));
    println!("promtool on OpenMetrics: ok={ok}\n{printed}");
}
