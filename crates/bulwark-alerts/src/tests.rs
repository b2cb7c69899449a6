use super::*;
use bulwark::observe::component::ComponentState;
use bulwark::observe::incident::{Impact, IncidentStatus, TimelineKind};

fn incident() -> Incident {
    Incident {
        id: "inc-1".to_string(),
        title: "openai/gpt-4o <failing>".to_string(),
        status: IncidentStatus::Investigating,
        worst: ComponentState::PartialOutage,
        components: vec!["openai/gpt-4o".to_string()],
        started_at: 1_764_400_000_000,
        updated_at: 1_764_400_000_000,
        resolved_at: None,
        impact: Impact::default(),
        timeline: vec![],
    }
}

fn entry(at: i64, kind: TimelineKind) -> TimelineEntry {
    TimelineEntry {
        at,
        kind,
        component: None,
        status: IncidentStatus::Identified,
        message: "provider confirmed".to_string(),
    }
}

fn burn(severity: BurnSeverity) -> Alert {
    Alert::BudgetBurn {
        route: "chat".to_string(),
        severity,
        burn_rate: 14.4,
        long_window: Duration::from_secs(3600),
        short_window: Duration::from_secs(300),
        budget_remaining: 0.42,
    }
}

#[test]
fn dedup_keys_separate_what_differs_and_join_what_repeats() {
    let i = incident();
    let opened = Alert::IncidentOpened(i.clone());
    let resolved = Alert::IncidentResolved(i.clone());
    assert_eq!(
        opened.dedup_key(),
        Alert::IncidentOpened(i.clone()).dedup_key()
    );
    assert_ne!(opened.dedup_key(), resolved.dedup_key());

    let u1 = Alert::IncidentUpdated {
        incident: i.clone(),
        update: entry(1, TimelineKind::Note),
    };
    let u1_again = Alert::IncidentUpdated {
        incident: Incident {
            updated_at: 99,
            ..i.clone()
        },
        update: entry(1, TimelineKind::Note),
    };
    let u2 = Alert::IncidentUpdated {
        incident: i.clone(),
        update: entry(2, TimelineKind::Note),
    };
    assert_eq!(u1.dedup_key(), u1_again.dedup_key());
    assert_ne!(u1.dedup_key(), u2.dedup_key());

    let hour = 3_600_000;
    let page = burn(BurnSeverity::Page);
    assert_eq!(
        page.dedup_key_at(10 * hour),
        page.dedup_key_at(10 * hour + 59 * 60_000)
    );
    assert_ne!(page.dedup_key_at(10 * hour), page.dedup_key_at(11 * hour));
    assert_ne!(
        page.dedup_key_at(10 * hour),
        burn(BurnSeverity::Ticket).dedup_key_at(10 * hour)
    );
}

#[test]
fn kinds_are_the_filter_names() {
    let i = incident();
    let alerts = [
        Alert::IncidentOpened(i.clone()),
        Alert::IncidentUpdated {
            incident: i.clone(),
            update: entry(1, TimelineKind::Note),
        },
        Alert::IncidentResolved(i),
        burn(BurnSeverity::Page),
    ];
    let kinds: Vec<_> = alerts.iter().map(Alert::kind).collect();
    assert_eq!(kinds, ALERT_KINDS);
}

#[test]
fn webhook_config_parses_and_validates() {
    let hook: Webhook = serde_json::from_str(
        r#"{"url": "https://hooks.slack.com/services/T/B/secret", "format": "slack", "events": ["incident_opened"]}"#,
    )
    .unwrap();
    assert_eq!(hook.format, WebhookFormat::Slack);
    assert!(hook.validate().is_ok());
    assert!(hook.wants("incident_opened"));
    assert!(!hook.wants("budget_burn"));

    let all: Webhook = serde_json::from_str(r#"{"url": "http://x.example/a"}"#).unwrap();
    assert_eq!(all.format, WebhookFormat::Generic);
    assert!(ALERT_KINDS.iter().all(|k| all.wants(k)));

    let typo = Webhook {
        events: Some(vec!["incident_open".to_string()]),
        ..all.clone()
    };
    assert_eq!(
        typo.validate(),
        Err(WebhookError::UnknownEvent {
            name: "incident_open".to_string()
        })
    );
    let bad = Webhook {
        url: "ftp://x/secret-token".to_string(),
        ..all
    };
    let err = bad.validate().unwrap_err().to_string();
    assert!(!err.contains("secret-token"), "{err}");
}

#[test]
fn generic_body_carries_the_whole_incident() {
    let mut i = incident();
    i.timeline.push(entry(5, TimelineKind::Detected));
    let body = payload::body(
        &Alert::IncidentOpened(i.clone()),
        WebhookFormat::Generic,
        "k",
    );
    assert_eq!(body["kind"], "incident_opened");
    assert_eq!(body["dedup_key"], "k");
    let back: Incident = serde_json::from_value(body["incident"].clone()).unwrap();
    assert_eq!(back, i);
    assert_eq!(body["update"]["kind"], "detected");
    assert!(body["text"].as_str().unwrap().contains("Partial outage"));

    let body = payload::body(&burn(BurnSeverity::Page), WebhookFormat::Generic, "k");
    assert_eq!(body["route"], "chat");
    assert_eq!(body["severity"], "page");
    assert_eq!(body["burn_rate"], 14.4);
    assert_eq!(body["long_window_secs"], 3600);
    assert_eq!(body["short_window_secs"], 300);
    assert_eq!(body["budget_remaining"], 0.42);
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("14.4x") && text.contains("1 h") && text.contains("5 min"),
        "{text}"
    );
}

#[test]
fn slack_text_escapes_markup() {
    let body = payload::body(
        &Alert::IncidentOpened(incident()),
        WebhookFormat::Slack,
        "k",
    );
    let first = body["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(first.contains("&lt;failing&gt;"), "{first}");
}

#[test]
fn webhooks_come_from_the_gateway_config() {
    let config = bulwark::observe::config::WebhookConfig {
        url: "https://hooks.example/x".to_string(),
        format: "slack".to_string(),
        events: Some(vec!["budget_burn".to_string()]),
    };
    let hook = Webhook::from_config(&config).unwrap();
    assert_eq!(hook.format, WebhookFormat::Slack);
    assert!(hook.wants("budget_burn") && !hook.wants("incident_opened"));
    let bad = bulwark::observe::config::WebhookConfig {
        format: "teams".to_string(),
        ..config
    };
    assert_eq!(
        Webhook::from_config(&bad).unwrap_err(),
        WebhookError::UnknownFormat("teams".to_string())
    );
}
