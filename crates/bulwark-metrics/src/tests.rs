use std::collections::HashMap;
use std::time::Duration;

use super::*;
use bulwark::events::Event;
use bulwark::observe::component::{ComponentKind, ComponentState};
use bulwark::observe::record::AttemptRecord;
use bulwark::observe::record::RequestRecord;
use bulwark::resilience::breaker::BreakerState;
use bulwark::resilience::classify::Action;

fn attempt(target: &str, error: Option<&str>, hedge: bool) -> AttemptRecord {
    AttemptRecord {
        target: target.to_string(),
        at: 0,
        latency_ms: 120.0,
        first_token_ms: None,
        status: if error.is_some() {
            Some(503)
        } else {
            Some(200)
        },
        error_class: error.map(str::to_string),
        hedge,
    }
}

fn record(route: &str, target: Option<&str>, attempts: Vec<AttemptRecord>) -> RequestRecord {
    RequestRecord {
        id: "r1".to_string(),
        at: 0,
        route: route.to_string(),
        client_format: "openai".to_string(),
        stream: false,
        status: 200,
        error_class: None,
        target: target.map(str::to_string),
        fallback: false,
        cache: None,
        degraded: None,
        dropped: Vec::new(),
        latency_ms: 800.0,
        first_token_ms: Some(300.0),
        input_tokens: Some(1000),
        output_tokens: Some(500),
        key_id: None,
        request_body: None,
        client_request_id: None,
        attempts,
    }
}

fn prices() -> Prices {
    Prices {
        per_target: HashMap::from([("openai/gpt-4o".to_string(), (2.5, 10.0))]),
    }
}

/// The sample line for `name{labels}`, or panics with the whole page.
fn sample(text: &str, series: &str) -> String {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .map(|l| l[series.len() + 1..].to_string())
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

#[test]
fn a_plain_request_counts_everywhere_it_should() {
    let m = Metrics::new(prices());
    m.record(&record(
        "chat",
        Some("openai/gpt-4o"),
        vec![attempt("openai/gpt-4o", None, false)],
    ));
    let text = m.render();
    assert_eq!(
        sample(
            &text,
            r#"bulwark_requests_total{route="chat",target="openai/gpt-4o",outcome="ok",format="openai"}"#
        ),
        "1"
    );
    assert_eq!(
        sample(
            &text,
            r#"bulwark_attempts_total{target="openai/gpt-4o",result="ok"}"#
        ),
        "1"
    );
    assert_eq!(
        sample(
            &text,
            r#"bulwark_tokens_total{target="openai/gpt-4o",direction="input"}"#
        ),
        "1000"
    );
    assert_eq!(
        sample(
            &text,
            r#"bulwark_tokens_total{target="openai/gpt-4o",direction="output"}"#
        ),
        "500"
    );
    // 1000 * 2.5 / 1e6 + 500 * 10 / 1e6
    let cost: f64 = sample(&text, r#"bulwark_cost_usd_total{target="openai/gpt-4o"}"#)
        .parse()
        .unwrap();
    assert!((cost - 0.0075).abs() < 1e-12, "{cost}");
    assert_eq!(
        sample(
            &text,
            r#"bulwark_request_duration_seconds_bucket{route="chat",format="openai",stream="false",le="0.75"}"#
        ),
        "0"
    );
    assert_eq!(
        sample(
            &text,
            r#"bulwark_request_duration_seconds_bucket{route="chat",format="openai",stream="false",le="1"}"#
        ),
        "1"
    );
    assert_eq!(
        sample(
            &text,
            r#"bulwark_request_duration_seconds_sum{route="chat",format="openai",stream="false"}"#
        ),
        "0.8"
    );
    assert_eq!(
        sample(
            &text,
            r#"bulwark_time_to_first_token_seconds_count{route="chat",format="openai"}"#
        ),
        "1"
    );
    assert!(!text.contains("bulwark_retries_total{"), "{text}");
    assert!(!text.contains("bulwark_fallbacks_total{"), "{text}");
}

#[test]
fn retries_fallbacks_and_hedges_are_told_apart() {
    let m = Metrics::new(prices());
    let mut r = record(
        "chat",
        Some("anthropic/claude"),
        vec![
            attempt("openai/gpt-4o", Some("overloaded"), false),
            // A hedge on the same target is not a retry.
            attempt("openai/gpt-4o", Some("timeout"), true),
            attempt("openai/gpt-4o", Some("overloaded"), false),
            attempt("anthropic/claude", None, false),
        ],
    );
    r.fallback = true;
    m.record(&r);
    let text = m.render();
    assert_eq!(
        sample(
            &text,
            r#"bulwark_attempts_total{target="openai/gpt-4o",result="overloaded"}"#
        ),
        "2"
    );
    assert_eq!(
        sample(
            &text,
            r#"bulwark_attempts_total{target="openai/gpt-4o",result="timeout"}"#
        ),
        "1"
    );
    assert_eq!(
        sample(&text, r#"bulwark_retries_total{target="openai/gpt-4o"}"#),
        "1"
    );
    assert!(!text.contains(r#"bulwark_retries_total{target="anthropic/claude"}"#));
    assert_eq!(
        sample(&text, r#"bulwark_hedges_total{target="openai/gpt-4o"}"#),
        "1"
    );
    assert_eq!(
        sample(&text, r#"bulwark_fallbacks_total{route="chat"}"#),
        "1"
    );
    assert_eq!(
        sample(
            &text,
            r#"bulwark_requests_total{route="chat",target="anthropic/claude",outcome="fallback",format="openai"}"#
        ),
        "1"
    );
    // No price for claude: no cost series at all.
    assert!(!text.contains(r#"bulwark_cost_usd_total{target="anthropic/claude"}"#));
}

#[test]
fn cache_degraded_and_errors() {
    let m = Metrics::new(Prices::default());
    let mut hit = record("chat", Some("cache"), vec![]);
    hit.cache = Some("hit".to_string());
    m.record(&hit);

    let mut stale = record("chat", Some("cache"), vec![]);
    stale.cache = Some("stale".to_string());
    stale.degraded = Some("stale-cache".to_string());
    m.record(&stale);

    let mut failed = record(
        "chat",
        None,
        vec![attempt("openai/gpt-4o", Some("timeout"), false)],
    );
    failed.status = 504;
    failed.error_class = Some("timeout".to_string());
    failed.cache = Some("miss".to_string());
    failed.first_token_ms = None;
    failed.input_tokens = None;
    failed.output_tokens = None;
    m.record(&failed);

    let text = m.render();
    assert_eq!(
        sample(&text, r#"bulwark_cache_total{route="chat",result="hit"}"#),
        "1"
    );
    assert_eq!(
        sample(&text, r#"bulwark_cache_total{route="chat",result="stale"}"#),
        "1"
    );
    assert_eq!(
        sample(&text, r#"bulwark_cache_total{route="chat",result="miss"}"#),
        "1"
    );
    assert_eq!(
        sample(
            &text,
            r#"bulwark_degraded_total{route="chat",how="stale-cache"}"#
        ),
        "1"
    );
    assert_eq!(
        sample(
            &text,
            r#"bulwark_requests_total{route="chat",target="cache",outcome="cache",format="openai"}"#
        ),
        "1"
    );
    assert_eq!(
        sample(
            &text,
            r#"bulwark_requests_total{route="chat",target="none",outcome="error",format="openai"}"#
        ),
        "1"
    );
    assert_eq!(
        sample(
            &text,
            r#"bulwark_time_to_first_token_seconds_count{route="chat",format="openai"}"#
        ),
        "2"
    );
}

#[test]
fn events_count_what_records_do_not_show() {
    let m = Metrics::new(Prices::default());
    m.on_event(&Event::RetryBudgetExhausted {
        target: "openai/gpt-4o".to_string(),
    });
    m.on_event(&Event::Breaker {
        target: "openai/gpt-4o".to_string(),
        from: BreakerState::Closed,
        to: BreakerState::Open,
        open_for: Some(Duration::from_secs(30)),
    });
    m.on_event(&Event::Shed {
        route: "chat".to_string(),
    });
    m.on_event(&Event::Shed {
        route: "chat".to_string(),
    });
    m.on_event(&Event::Skipped {
        route: "chat".to_string(),
        target: "openai/gpt-4o".to_string(),
        reason: "breaker_open",
    });
    // Covered by the request record: must not count.
    m.on_event(&Event::AttemptFailed {
        route: "chat".to_string(),
        target: "openai/gpt-4o".to_string(),
        class: "overloaded",
        action: Action::Retry,
    });
    let text = m.render();
    assert_eq!(
        sample(
            &text,
            r#"bulwark_retry_budget_exhausted_total{target="openai/gpt-4o"}"#
        ),
        "1"
    );
    assert_eq!(
        sample(
            &text,
            r#"bulwark_breaker_transitions_total{target="openai/gpt-4o",to="open"}"#
        ),
        "1"
    );
    assert_eq!(
        sample(&text, r#"bulwark_breaker_state{target="openai/gpt-4o"}"#),
        "2"
    );
    assert_eq!(sample(&text, r#"bulwark_shed_total{route="chat"}"#), "2");
    assert_eq!(
        sample(
            &text,
            r#"bulwark_skipped_total{target="openai/gpt-4o",reason="breaker_open"}"#
        ),
        "1"
    );
    assert!(!text.contains("bulwark_attempts_total{"), "{text}");
}

#[test]
fn gauges_reflect_the_latest_values() {
    let m = Metrics::new(Prices::default());
    m.set_breaker_state("a/b", BreakerState::HalfOpen);
    m.set_component_state("a/b", ComponentKind::Target, ComponentState::PartialOutage);
    m.set_component_state("chat", ComponentKind::Route, ComponentState::Operational);
    m.set_queue("chat", 7);
    m.set_queue("chat", 3);
    m.observe_queue_wait("chat", Duration::from_millis(20));
    m.set_concurrency("a/b", 16, 5);
    m.set_store_stats(100, 2, 1, 9, true);
    m.set_store_stats(150, 2, 1, 0, false);
    m.set_alert_stats(4, 1, 2);
    m.set_conversation_stats(3, 0, 1, 0, 0);
    m.set_conversation_stats(7, 1, 1, 2, 4);
    let text = m.render();
    assert_eq!(sample(&text, "bulwark_conversations_stored_total"), "7");
    assert_eq!(
        sample(
            &text,
            r#"bulwark_conversations_not_stored_total{reason="too_large"}"#
        ),
        "1"
    );
    assert_eq!(
        sample(
            &text,
            r#"bulwark_conversations_not_stored_total{reason="dropped"}"#
        ),
        "2"
    );
    assert_eq!(
        sample(
            &text,
            r#"bulwark_conversations_not_stored_total{reason="over_budget"}"#
        ),
        "4"
    );
    assert_eq!(sample(&text, r#"bulwark_breaker_state{target="a/b"}"#), "1");
    assert_eq!(
        sample(
            &text,
            r#"bulwark_component_state{component="a/b",kind="target"}"#
        ),
        "3"
    );
    assert_eq!(
        sample(
            &text,
            r#"bulwark_component_state{component="chat",kind="route"}"#
        ),
        "0"
    );
    assert_eq!(sample(&text, r#"bulwark_queue_depth{route="chat"}"#), "3");
    assert_eq!(
        sample(
            &text,
            r#"bulwark_queue_wait_seconds_bucket{route="chat",le="0.025"}"#
        ),
        "1"
    );
    assert_eq!(
        sample(&text, r#"bulwark_concurrency_limit{target="a/b"}"#),
        "16"
    );
    assert_eq!(sample(&text, r#"bulwark_in_flight{target="a/b"}"#), "5");
    assert_eq!(sample(&text, "bulwark_store_rows_written_total"), "150");
    assert_eq!(sample(&text, "bulwark_store_rows_dropped_total"), "2");
    assert_eq!(sample(&text, "bulwark_store_failed_batches_total"), "1");
    assert_eq!(sample(&text, "bulwark_store_pending_rows"), "0");
    assert_eq!(sample(&text, "bulwark_store_up"), "0");
    assert_eq!(sample(&text, "bulwark_alerts_delivered_total"), "4");
    assert_eq!(sample(&text, "bulwark_alerts_failed_total"), "1");
    assert_eq!(sample(&text, "bulwark_alerts_retried_total"), "2");
}

#[test]
fn the_link_to_redis_and_the_health_lease_are_exported() {
    let metrics = Metrics::new(prices());
    metrics.set_shared_stats(false, 3, 17, 2, 5);
    metrics.set_health_leader(true);
    let text = metrics.render();
    assert_eq!(sample(&text, "bulwark_shared_up"), "0");
    assert_eq!(sample(&text, "bulwark_shared_instances"), "3");
    assert_eq!(sample(&text, "bulwark_shared_fallbacks_total"), "17");
    assert_eq!(sample(&text, "bulwark_shared_outages_total"), "2");
    assert_eq!(sample(&text, "bulwark_shared_dropped_total"), "5");
    assert_eq!(sample(&text, "bulwark_health_leader"), "1");
    metrics.set_health_leader(false);
    assert_eq!(sample(&metrics.render(), "bulwark_health_leader"), "0");
}

#[test]
fn unknown_names_fold_into_other() {
    let m = Metrics::with_names(
        Prices::default(),
        ["chat".to_string()],
        ["openai/gpt-4o".to_string()],
    );
    let mut r = record(
        "some-model-a-client-made-up",
        Some("openai/gpt-4o"),
        vec![attempt("openai/gpt-4o", None, false)],
    );
    r.client_format = "weird".to_string();
    m.record(&r);
    m.record(&record("chat", Some("static"), vec![]));
    let text = m.render();
    assert!(!text.contains("made-up"), "{text}");
    assert_eq!(
        sample(
            &text,
            r#"bulwark_requests_total{route="other",target="openai/gpt-4o",outcome="ok",format="other"}"#
        ),
        "1"
    );
    assert!(text.contains(r#"target="static""#), "{text}");
}

#[test]
fn without_names_the_label_set_is_capped() {
    let m = Metrics::new(Prices::default());
    for i in 0..(MAX_LABEL_VALUES + 50) {
        m.on_event(&Event::Shed {
            route: format!("r{i}"),
        });
    }
    let text = m.render();
    let series = text
        .lines()
        .filter(|l| l.starts_with("bulwark_shed_total{"))
        .count();
    assert_eq!(series, MAX_LABEL_VALUES + 1);
    assert_eq!(sample(&text, r#"bulwark_shed_total{route="other"}"#), "50");
}

#[test]
fn separate_instances_do_not_share_numbers() {
    let a = Metrics::new(Prices::default());
    let b = Metrics::new(Prices::default());
    a.on_event(&Event::Shed {
        route: "chat".to_string(),
    });
    assert!(a.render().contains(r#"bulwark_shed_total{route="chat"} 1"#));
    assert!(!b.render().contains(r#"bulwark_shed_total{route="chat"}"#));
}

#[test]
fn openmetrics_rendering_ends_with_eof() {
    let m = Metrics::new(Prices::default());
    m.set_queue("chat", 1);
    let text = m.render_openmetrics();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains(r#"bulwark_queue_depth{route="chat"} 1"#));
}

#[test]
fn metrics_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Metrics>();
}

#[test]
fn from_config_takes_names_and_prices() {
    let config = bulwark::Config::from_yaml(
        "providers:\n  a: { kind: openai, api_key: k, prices: { x: { input: 1.0, output: 2.0 } } }\nroutes:\n  r: { targets: [a/x], degrade: [a/small] }\n",
        "test.yaml",
        &|_| None,
    )
    .unwrap();
    let prices = Prices::from_config(&config);
    assert_eq!(prices.per_target.get("a/x"), Some(&(1.0, 2.0)));
    let m = Metrics::from_config(&config);
    m.record(&record(
        "r",
        Some("a/x"),
        vec![attempt("a/small", None, false)],
    ));
    m.record(&record("made-up", Some("b/z"), vec![]));
    let text = m.render();
    assert!(
        text.contains(r#"bulwark_attempts_total{target="a/small",result="ok"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"bulwark_cost_usd_total{target="a/x"} 0.002"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"bulwark_requests_total{route="other",target="other",outcome="ok",format="openai"} 1"#
        ),
        "{text}"
    );
}

#[test]
fn dropped_translation_features_are_counted_per_target() {
    let m = Metrics::new(Prices::default());
    let mut translated = record(
        "chat",
        Some("openai/gpt-4o"),
        vec![attempt("openai/gpt-4o", None, false)],
    );
    translated.dropped = vec!["thinking".to_string(), "cache_control".to_string()];
    m.record(&translated);
    m.record(&translated);

    let text = m.render();
    for feature in ["thinking", "cache_control"] {
        assert_eq!(
            sample(
                &text,
                &format!(
                    r#"bulwark_translation_dropped_total{{route="chat",target="openai/gpt-4o",feature="{feature}"}}"#
                )
            ),
            "2"
        );
    }
}

#[test]
fn request_memory_is_a_gauge_and_a_running_total() {
    let m = Metrics::new(Prices::default());
    m.set_request_memory(4096, 2);
    m.set_request_memory(1024, 3);
    let text = m.render();
    assert_eq!(
        sample(&text, "bulwark_request_memory_reserved_bytes"),
        "1024"
    );
    assert_eq!(sample(&text, "bulwark_requests_shed_memory_total"), "3");
}

/// A stream still running on a target a reload removed may report its
/// breaker after the reload dropped the gauge: the gauge must not come back
/// (an alert on it would fire for good), until a reload configures the
/// target again.
#[test]
fn a_removed_targets_gauges_stay_gone_until_it_is_configured_again() {
    let yaml =
        "providers:\n  a: { kind: openai, api_key: k }\nroutes:\n  chat: { targets: [a/b] }\n";
    let config = match bulwark::Config::from_yaml(yaml, "test", &|_| None) {
        Ok(config) => config,
        Err(error) => panic!("{error}"),
    };
    let m = Metrics::new(Prices::default());
    m.reconfigure(&config);
    m.set_breaker_state("a/b", BreakerState::Open);
    m.set_queue("chat", 2);
    m.forget(&["a/b".to_string()], &["chat".to_string()]);
    m.set_breaker_state("a/b", BreakerState::Open);
    m.set_concurrency("a/b", 4, 1);
    m.set_component_state("a/b", ComponentKind::Target, ComponentState::MajorOutage);
    m.set_queue("chat", 3);
    let text = m.render();
    assert!(
        !text.contains(r#"bulwark_breaker_state{target="a/b"}"#),
        "{text}"
    );
    assert!(
        !text.contains(r#"bulwark_in_flight{target="a/b"}"#),
        "{text}"
    );
    assert!(!text.contains(r#"component="a/b""#), "{text}");
    assert!(
        !text.contains(r#"bulwark_queue_depth{route="chat"}"#),
        "{text}"
    );

    m.reconfigure(&config);
    m.set_breaker_state("a/b", BreakerState::HalfOpen);
    assert_eq!(
        sample(&m.render(), r#"bulwark_breaker_state{target="a/b"}"#),
        "1"
    );
}
