//! Scenario parsing and validation, and the scenarios shipped in
//! `scenarios/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use bulwark_drill::{ErrorShare, Scenario, Spread, WireFormat, phase_spans};

const BASE: &str = r#"
name: t
duration: 1h
primary: a
providers:
  a:
    format: anthropic
    models: [claude-sonnet-4-5]
    phases:
      - { name: healthy, until: 10m }
      - name: bad
        until: 40m
        errors: { 529: { share: 0.4, type: overloaded_error, retry_after: 30s }, 500: 0.2 }
        hang: { share: 0.1, for: 47s }
        latency: { first_token: { p50: 400ms, p95: 1.2s }, per_token: 20ms }
      - { name: recovered }
  b: { format: openai-compatible, models: [m], phases: [ { name: healthy } ] }
"#;

fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

/// The single issue `yaml` produces, as `path: message`.
fn issue(yaml: &str) -> String {
    let err = Scenario::parse(yaml, "s.yaml").unwrap_err();
    assert_eq!(err.issues.len(), 1, "{err}");
    format!("{}: {}", err.issues[0].path, err.issues[0].message)
}

fn edited(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from}");
    BASE.replacen(from, to, 1)
}

#[test]
fn a_full_scenario_parses() {
    let s = Scenario::parse(BASE, "s.yaml").unwrap();
    assert_eq!(s.duration, Duration::from_secs(3600));
    assert_eq!(s.providers["b"].format, WireFormat::OpenaiCompatible);
    let bad = &s.providers["a"].phases[1];
    assert_eq!(bad.until, Some(Duration::from_secs(2400)));
    let ErrorShare::Detailed(d) = &bad.errors[&529] else {
        panic!("529 should carry details")
    };
    assert_eq!(
        (d.share, d.error_type.as_deref(), d.retry_after),
        (0.4, Some("overloaded_error"), Some(Duration::from_secs(30)))
    );
    assert_eq!(bad.errors[&500], ErrorShare::Share(0.2));
    let latency = bad.latency.as_ref().unwrap();
    assert_eq!(
        latency.first_token,
        Some(Spread::Percentiles {
            p50: Duration::from_millis(400),
            p95: Duration::from_millis(1200)
        })
    );
    assert_eq!(
        latency.per_token,
        Some(Spread::Fixed(Duration::from_millis(20)))
    );
    let spans = phase_spans(&s);
    assert_eq!(spans[2].name, "recovered");
    assert_eq!(spans[2].end, Duration::from_secs(3600));
    assert_eq!(s.load.rps_at(Duration::ZERO), 5.0);
}

#[test]
fn shape_errors_name_the_key() {
    assert_eq!(
        issue(&edited(
            "hang: { share: 0.1, for: 47s }",
            "hang: { share: 0.1, for: 47s, bogus: 1 }"
        )),
        "providers.a.phases[1].hang.bogus: unknown field `bogus`, expected `share` or `for`"
    );
    let msg = issue(&edited("until: 40m", "until: soon"));
    assert!(
        msg.starts_with("providers.a.phases[1].until: `soon` is not a duration"),
        "{msg}"
    );
    let msg = issue(&edited("per_token: 20ms", "per_token: 20"));
    assert!(
        msg.starts_with("providers.a.phases[1].latency.per_token: `20` has no unit"),
        "{msg}"
    );
    let msg = issue(&edited("format: openai-compatible", "format: cohere"));
    assert!(
        msg.starts_with("providers.b.format: unknown variant `cohere`"),
        "{msg}"
    );
    let msg = issue(&edited(
        "  b: { format: openai-compatible, models: [m],",
        "  b: { models: [m],",
    ));
    assert_eq!(msg, "providers.b: missing field `format`");
    let msg = issue(&edited("p95: 1.2s }", "p95: 1.2s, p99: 3s }"));
    assert!(
        msg.starts_with("providers.a.phases[1].latency.first_token.p99: unknown field `p99`"),
        "{msg}"
    );
    let msg = issue(&edited("name: t", "name: t\nowner: me"));
    assert!(
        msg.starts_with("owner: unknown field `owner`, expected one of `name`"),
        "{msg}"
    );
    let err = Scenario::parse("name: [", "s.yaml").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("s.yaml: 1 problem found\n  s.yaml: not valid YAML"),
        "{err}"
    );
}

#[test]
fn every_validation_rule_reports_its_path() {
    let cases: &[(&str, &str, &str)] = &[
        ("name: t", "name: ''", "name: must not be empty"),
        ("duration: 1h", "duration: 0s", "duration: must be positive"),
        (
            "primary: a",
            "primary: zz",
            "primary: `zz` is not one of the providers (a, b)",
        ),
        (
            "primary: a",
            "primary: a\nspeed: 0",
            "speed: must be above 0, got 0",
        ),
        (
            "models: [m]",
            "models: []",
            "providers.b.models: at least one model is needed",
        ),
        (
            "phases: [ { name: healthy } ]",
            "phases: []",
            "providers.b.phases: at least one phase is needed",
        ),
        (
            "{ name: healthy, until: 10m }",
            "{ name: '', until: 10m }",
            "providers.a.phases[0].name: must not be empty",
        ),
        (
            "{ name: healthy, until: 10m }",
            "{ name: healthy, until: 50m }",
            "providers.a.phases[1].until: must be after the previous phase's end (50m); phases are listed in order",
        ),
        (
            "{ name: healthy, until: 10m }",
            "{ name: healthy }",
            "providers.a.phases[0].until: only the last phase may leave out `until` (it runs to the end)",
        ),
        (
            "{ name: recovered }",
            "{ name: recovered, until: 2h }",
            "providers.a.phases[2].until: is past the end of the scenario (1h)",
        ),
        (
            "{ name: recovered }",
            "{ name: recovered, until: 50m }",
            "providers.a.phases[2].until: the last phase runs to the end of the scenario (1h); leave out `until` or set it to that",
        ),
        (
            "500: 0.2",
            "500: 1.5",
            "providers.a.phases[1].errors.500: must be between 0 and 1, got 1.5",
        ),
        (
            "500: 0.2",
            "200: 0.2",
            "providers.a.phases[1].errors.200: 200 is not an HTTP error status (400 to 599)",
        ),
        (
            "500: 0.2",
            "500: 0.6",
            "providers.a.phases[1]: fault shares add up to 1.1; each is a share of all requests, so together at most 1",
        ),
        (
            "hang: { share: 0.1, for: 47s }",
            "hang: { share: -0.1, for: 47s }",
            "providers.a.phases[1].hang.share: must be between 0 and 1, got -0.1",
        ),
        (
            "hang: { share: 0.1, for: 47s }",
            "hang: { share: 0.1, for: 0s }",
            "providers.a.phases[1].hang.for: must be positive",
        ),
        (
            "p95: 1.2s",
            "p95: 100ms",
            "providers.a.phases[1].latency.first_token: p95 (100ms) must not be below p50 (400ms)",
        ),
        (
            "{ name: recovered }",
            "{ name: recovered, rpm: 0 }",
            "providers.a.phases[2].rpm: must be at least 1 (leave it out for no quota)",
        ),
        (
            "{ name: recovered }",
            "{ name: recovered, stall: { share: 2, for: 1s } }",
            "providers.a.phases[2].stall.share: must be between 0 and 1, got 2",
        ),
        (
            "{ name: recovered }",
            "{ name: recovered, error_event: { share: 0.1, status: 200 } }",
            "providers.a.phases[2].error_event.status: 200 is not an HTTP error status (400 to 599)",
        ),
        (
            "{ name: recovered }",
            "{ name: recovered, flap: { period: 6s, down_for: 6s, down: { errors: { 503: 1 } } } }",
            "providers.a.phases[2].flap.down_for: must be positive and shorter than the period (6s)",
        ),
        (
            "{ name: recovered }",
            "{ name: recovered, flap: { period: 1ms, down_for: 500us, down: {} } }",
            "providers.a.phases[2].flap.period: is too short: more than 100000 flaps in the phase",
        ),
        (
            "{ name: recovered }",
            "{ name: recovered, flap: { period: 6s, down_for: 3s, down: { errors: { 503: 0.7 }, reset: 0.7 } } }",
            "providers.a.phases[2].flap.down: fault shares add up to 1.4; each is a share of all requests, so together at most 1",
        ),
        (
            "primary: a",
            "primary: a\nload: { rps: -1 }",
            "load.rps: must be a rate of 0 or more requests a second, got -1",
        ),
        (
            "primary: a",
            "primary: a\nload: { stream_share: 1.5 }",
            "load.stream_share: must be between 0 and 1, got 1.5",
        ),
        (
            "primary: a",
            "primary: a\nload: { anthropic_client_share: -1 }",
            "load.anthropic_client_share: must be between 0 and 1, got -1",
        ),
        (
            "primary: a",
            "primary: a\nload: { phases: [ { until: 10m, rps: 1 }, { until: 5m, rps: 2 }, { rps: 1 } ] }",
            "load.phases[1].until: must be after the previous phase's end (10m); phases are listed in order",
        ),
    ];
    for (from, to, want) in cases {
        assert_eq!(&issue(&edited(from, to)), want, "{from} -> {to}");
    }
    let no_providers = "name: t\nduration: 1h\nprimary: a\nproviders: {}\n";
    assert_eq!(
        issue(no_providers),
        "providers: at least one provider is needed"
    );
}

#[test]
fn all_problems_are_reported_at_once() {
    let yaml = edited("name: t", "name: ''").replace("duration: 1h", "duration: 0s");
    let err = Scenario::parse(&yaml, "s.yaml").unwrap_err();
    assert!(err.issues.len() >= 2, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("\n  s.yaml: name: must not be empty"),
        "{text}"
    );
    assert!(
        text.contains("\n  s.yaml: duration: must be positive"),
        "{text}"
    );
}

#[test]
fn shipped_scenarios_parse_and_validate() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(scenarios_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(s.providers.contains_key(&s.primary));
            names.push(s.name);
        }
    }
    names.sort();
    for required in [
        "brownout",
        "flapping",
        "provider-outage",
        "rate-limit-storm",
    ] {
        assert!(names.iter().any(|n| n == required), "{names:?}");
    }
}

#[test]
fn provider_outage_follows_the_incident() {
    let s = Scenario::load(&scenarios_dir().join("provider-outage.yaml")).unwrap();
    assert_eq!(s.primary, "anthropic");
    let spans = phase_spans(&s);
    let anthropic: Vec<_> = spans.iter().filter(|p| p.provider == "anthropic").collect();
    let outage = anthropic
        .iter()
        .find(|p| p.name == "elevated error rates")
        .unwrap();
    let recovered = anthropic.iter().find(|p| p.name == "recovered").unwrap();
    // About three hours of trouble, partial restoration after about 90 minutes.
    let trouble = recovered.start - outage.start;
    assert!((Duration::from_secs(9000)..=Duration::from_secs(10_800)).contains(&trouble));
    assert_eq!(outage.end - outage.start, Duration::from_secs(90 * 60));
    for backup in ["openai", "gemini"] {
        let phases = &s.providers[backup].phases;
        assert_eq!(phases.len(), 1);
        assert!(phases[0].errors.is_empty() && phases[0].hang.is_none());
    }
    let storm = Scenario::load(&scenarios_dir().join("rate-limit-storm.yaml")).unwrap();
    assert!(storm.load.rps_at(Duration::from_secs(600)) > storm.load.rps_at(Duration::ZERO));
}
