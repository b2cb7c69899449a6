//! Every shipped scenario, run at high speed through a real gateway: the
//! report's figures must reconcile with what the gateway logged and what
//! the simulated providers counted. And a drill's own request log,
//! recorded as a scenario and replayed, gives a report close to the first.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup fails the test"
)]

mod common;

use common::{demo_config, shipped};

use std::time::Duration;

use bulwark_drill::outcome::Path as Via;
use bulwark_drill::report::Report;
use bulwark_drill::run::{DrillOptions, DrillRun, run};
use bulwark_drill::{Scenario, Speed};

async fn drill(scenario: Scenario, speed: f64, rps: f64, store: Option<String>) -> DrillRun {
    run(
        DrillOptions {
            scenario,
            config: demo_config(),
            config_name: "demo".into(),
            route: Some("smart".into()),
            speed: Speed::new(speed).unwrap(),
            rps: Some(rps),
            duration: None,
            store,
            listen: "127.0.0.1:0".into(),
            seed: 7,
            instances: 1,
        },
        |_| {},
    )
    .await
    .unwrap()
}

/// The report against the gateway's own log and the simulators' counters.
async fn reconcile(drill: &DrillRun) -> Report {
    let data = &drill.data;
    let report = Report::from_data(data);
    report.reconciles().unwrap();
    let log = drill
        .gateway
        .observer()
        .store()
        .requests_between(0, i64::MAX, None)
        .await
        .unwrap();
    let clients: Vec<_> = log.iter().filter(|r| r.client_format != "probe").collect();
    // Every request sent through Bulwark was logged by the gateway, once.
    assert_eq!(
        clients.len() as u64,
        report.bulwark.sent,
        "{}",
        data.scenario
    );
    let logged_good = clients.iter().filter(|r| r.is_good()).count() as u64;
    assert_eq!(
        logged_good, report.bulwark.ok,
        "{}: the gateway's verdicts match the clients'",
        data.scenario
    );
    let logged_fallback = clients
        .iter()
        .filter(|r| {
            r.is_good() && r.fallback && r.degraded.is_none() && r.cache.as_deref() != Some("hit")
        })
        .count() as u64;
    assert_eq!(
        logged_fallback, report.bulwark.fallback,
        "{}",
        data.scenario
    );
    // Every upstream call the simulators saw is an attempt in the log
    // (hedges that lost the race included).
    let attempts: usize = log.iter().map(|r| r.attempts.len()).sum();
    assert_eq!(attempts as u64, report.upstream_calls, "{}", data.scenario);
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shipped_scenario_reconciles() {
    for (name, speed) in [
        ("rate-limit-storm.yaml", 120.0),
        ("brownout.yaml", 360.0),
        ("flapping.yaml", 120.0),
    ] {
        let drill = drill(shipped(name), speed, 10.0, None).await;
        let report = reconcile(&drill).await;
        eprintln!(
            "{name}: bulwark {:.2} % of {}, direct {:.2} %, amplification {:.2}",
            report.bulwark.availability * 100.0,
            report.bulwark.sent,
            report.direct.availability * 100.0,
            report.amplification
        );
        assert!(report.bulwark.sent >= 50, "{name}: {}", report.bulwark.sent);
        assert!(
            report.bulwark.availability >= report.direct.availability,
            "{name}: Bulwark should never do worse than calling the primary directly"
        );
        assert!(
            report.upstream_calls <= report.retry_budget_allowance,
            "{name}"
        );
    }
}

/// A short outage: healthy, then most calls failing, then healthy again.
const SHORT_OUTAGE: &str = r#"
name: short-outage
duration: 30m
primary: anthropic
providers:
  anthropic:
    format: anthropic
    models: [claude-sonnet-4-5]
    latency: { first_token: { p50: 500ms, p95: 1s }, per_token: 10ms }
    phases:
      - { name: healthy, until: 8m }
      - { name: failing, until: 22m, errors: { 529: 0.5, 500: 0.2 } }
      - { name: healthy again }
  openai:
    format: openai
    models: [gpt-4o-mini]
    phases: [ { name: healthy } ]
  gemini:
    format: gemini
    models: [gemini-2.5-flash]
    phases: [ { name: healthy } ]
load: { rps: 5, stream_share: 0.5, anthropic_client_share: 0.5 }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_drill_replays_to_a_close_report() {
    let speed = 120.0;
    let db = std::env::temp_dir().join(format!("bulwark-drill-record-{}.db", std::process::id()));
    let store = format!("sqlite://{}", db.display());
    let original = drill(
        Scenario::parse(SHORT_OUTAGE, "short").unwrap(),
        speed,
        20.0,
        Some(store),
    )
    .await;
    let first = reconcile(&original).await;
    let rows = original
        .gateway
        .observer()
        .store()
        .requests_between(0, i64::MAX, None)
        .await
        .unwrap();
    let yaml =
        bulwark_drill::record::record(&rows, &demo_config().engine, speed, "replay").unwrap();
    eprintln!("{yaml}");
    let recorded = Scenario::parse(&yaml, "recorded").unwrap();
    assert_eq!(recorded.primary, "anthropic");
    let scenario_length = recorded.duration.as_secs_f64();
    assert!(
        (scenario_length - 30.0 * 60.0).abs() < 3.0 * 60.0,
        "{scenario_length}"
    );
    drop(original);
    let replay = drill(recorded, speed, 20.0, None).await;
    let second = reconcile(&replay).await;
    eprintln!(
        "original: bulwark {:.3} direct {:.3} amplification {:.2}; replay: bulwark {:.3} direct {:.3} amplification {:.2}",
        first.bulwark.availability,
        first.direct.availability,
        first.amplification,
        second.bulwark.availability,
        second.direct.availability,
        second.amplification
    );
    // The same story: Bulwark answers nearly everything, calling the
    // primary directly fails about as often, at about the same cost.
    assert!((first.bulwark.availability - second.bulwark.availability).abs() <= 0.01);
    // The direct baseline follows the recorded error mix, which the
    // gateway could only sample while the primary's breaker let calls
    // through: close, not exact.
    assert!((first.direct.availability - second.direct.availability).abs() <= 0.15);
    assert!((first.amplification - second.amplification).abs() <= 0.25);
    let sent_ratio = second.bulwark.sent as f64 / first.bulwark.sent as f64;
    assert!((0.85..=1.15).contains(&sent_ratio), "{sent_ratio}");
    let direct_failures_in_window = |run: &DrillRun, from: u64, to: u64| {
        run.data
            .sent
            .iter()
            // Failures the provider answered with; a client timeout on a
            // busy test machine is not part of the story.
            .filter(|s| s.path == Via::Direct && !s.ok && s.status.is_some())
            .filter(|s| {
                let t = run.data.scenario_time(s.at);
                t >= Duration::from_secs(from * 60) && t < Duration::from_secs(to * 60)
            })
            .count()
    };
    // The failures fall in the same stretch: few before the outage (a
    // bucket straddling its start may blur the edge), most during it.
    let direct_in_window = |run: &DrillRun, from: u64, to: u64| {
        run.data
            .sent
            .iter()
            .filter(|s| s.path == Via::Direct)
            .filter(|s| {
                let t = run.data.scenario_time(s.at);
                t >= Duration::from_secs(from * 60) && t < Duration::from_secs(to * 60)
            })
            .count()
    };
    let before = direct_failures_in_window(&replay, 0, 6);
    assert!(
        before * 10 <= direct_in_window(&replay, 0, 6),
        "{before} failures before the outage"
    );
    let during = direct_failures_in_window(&replay, 9, 21);
    assert!(
        during * 2 >= direct_in_window(&replay, 9, 21),
        "{during} failures during the outage"
    );
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}
