//! The observability part of the config file: where the request log goes,
//! how health is judged, where alerts are sent, SLOs and prices.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::config::{Issue, deserialize_at};

pub const DEFAULT_STORE: &str = "sqlite://bulwark.db";
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 86_400);

#[derive(Debug, Clone, PartialEq)]
pub struct ObserveConfig {
    /// `sqlite://path`, `sqlite::memory:` or `postgres://...`.
    pub store: String,
    /// Request-log rows older than this are deleted.
    pub retention: Duration,
    /// Keep the request body in the log. Off by default: prompts are the
    /// users' data.
    pub log_bodies: bool,
    pub health: HealthConfig,
    pub webhooks: Vec<WebhookConfig>,
    pub status_page: StatusPageConfig,
}

impl Default for ObserveConfig {
    fn default() -> Self {
        ObserveConfig {
            store: DEFAULT_STORE.into(),
            retention: DEFAULT_RETENTION,
            log_bodies: false,
            health: HealthConfig::default(),
            webhooks: Vec::new(),
            status_page: StatusPageConfig::default(),
        }
    }
}

/// How health is judged (`bulwark_health` reads it as its settings). The
/// defaults make a real outage visible within half a minute and a single
/// failed request never.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    /// Rolling window the rates are computed over.
    pub window: Duration,
    /// How often states are judged.
    pub evaluate_every: Duration,
    /// Fewer attempts than this in the window say nothing about error rates.
    pub min_volume: u32,
    /// Consecutive evaluations a worse state must persist before it shows:
    /// one bad tick is noise.
    pub raise_after: u32,
    /// Consecutive evaluations a better state must persist before it shows:
    /// slower than raising, so a flapping provider stays flagged.
    pub recover_after: u32,
    /// How long a component must be out of `operational` to open an incident.
    pub incident_after: Duration,
    /// How long every affected component must be back before the incident
    /// is resolved.
    pub resolve_after: Duration,
    /// First-token median over this many times its baseline counts as slow.
    pub slow_factor: f64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            window: Duration::from_secs(60),
            evaluate_every: Duration::from_secs(5),
            min_volume: 5,
            raise_after: 2,
            recover_after: 6,
            incident_after: Duration::from_secs(30),
            resolve_after: Duration::from_secs(120),
            slow_factor: 3.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    pub url: String,
    /// `generic` or `slack`.
    pub format: String,
    /// Alert kinds to send; all when `None`.
    pub events: Option<Vec<String>>,
}

pub const ALERT_KINDS: [&str; 4] = [
    "incident_opened",
    "incident_updated",
    "incident_resolved",
    "budget_burn",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusPageConfig {
    pub title: String,
    /// The page's public address, for links in feeds and alerts.
    pub url: Option<String>,
}

impl Default for StatusPageConfig {
    fn default() -> Self {
        StatusPageConfig {
            title: "Bulwark".into(),
            url: None,
        }
    }
}

/// A route's availability objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SloConfig {
    /// e.g. 0.999.
    pub objective: f64,
    pub window: Duration,
}

/// USD per million tokens, in and out.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    window: Option<String>,
    evaluate_every: Option<String>,
    min_volume: Option<u32>,
    raise_after: Option<u32>,
    recover_after: Option<u32>,
    incident_after: Option<String>,
    resolve_after: Option<String>,
    slow_factor: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    #[serde(default)]
    webhooks: Vec<RawWebhook>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: String,
    format: Option<String>,
    events: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatusPage {
    title: Option<String>,
    url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSlo {
    availability: Value,
    window: Option<String>,
}

/// The top-level keys this module reads, already split off the file.
pub(crate) struct RawObserve {
    pub store: Option<String>,
    pub retention: Option<String>,
    pub log_bodies: Option<bool>,
    pub health: Option<Value>,
    pub alerts: Option<Value>,
    pub status_page: Option<Value>,
}

pub(crate) fn build(raw: RawObserve, issues: &mut Vec<Issue>) -> ObserveConfig {
    let defaults = ObserveConfig::default();
    let store = raw.store.unwrap_or(defaults.store);
    if !(store.starts_with("sqlite:")
        || store.starts_with("postgres://")
        || store.starts_with("postgresql://"))
    {
        issues.push(Issue {
            path: "store".into(),
            message: format!("`{store}` is not a store URL; use sqlite://bulwark.db, sqlite::memory: or postgres://user@host/db"),
        });
    }
    let retention = long_duration(raw.retention, defaults.retention, "retention", issues);
    let health = raw
        .health
        .and_then(|v| deserialize_at::<RawHealth>(v, "health", issues))
        .map_or_else(HealthConfig::default, |h| build_health(h, issues));
    let webhooks = raw
        .alerts
        .and_then(|v| deserialize_at::<RawAlerts>(v, "alerts", issues))
        .map(|a| build_webhooks(a, issues))
        .unwrap_or_default();
    let status_page = raw
        .status_page
        .and_then(|v| deserialize_at::<RawStatusPage>(v, "status_page", issues))
        .map_or_else(StatusPageConfig::default, |p| StatusPageConfig {
            title: p.title.unwrap_or_else(|| "Bulwark".into()),
            url: p.url,
        });
    ObserveConfig {
        store,
        retention,
        log_bodies: raw.log_bodies.unwrap_or(false),
        health,
        webhooks,
        status_page,
    }
}

fn build_health(raw: RawHealth, issues: &mut Vec<Issue>) -> HealthConfig {
    let d = HealthConfig::default();
    let duration = |text: Option<String>, default: Duration, key: &str, issues: &mut Vec<Issue>| {
        long_duration(text, default, &format!("health.{key}"), issues)
    };
    let health = HealthConfig {
        window: duration(raw.window, d.window, "window", issues),
        evaluate_every: duration(
            raw.evaluate_every,
            d.evaluate_every,
            "evaluate_every",
            issues,
        ),
        min_volume: raw.min_volume.unwrap_or(d.min_volume),
        raise_after: raw.raise_after.unwrap_or(d.raise_after).max(1),
        recover_after: raw.recover_after.unwrap_or(d.recover_after).max(1),
        incident_after: duration(
            raw.incident_after,
            d.incident_after,
            "incident_after",
            issues,
        ),
        resolve_after: duration(raw.resolve_after, d.resolve_after, "resolve_after", issues),
        slow_factor: raw.slow_factor.unwrap_or(d.slow_factor),
    };
    if health.slow_factor <= 1.0 {
        issues.push(Issue {
            path: "health.slow_factor".into(),
            message: "must be greater than 1: it is how many times its usual first-token time makes a target slow".into(),
        });
    }
    health
}

fn build_webhooks(raw: RawAlerts, issues: &mut Vec<Issue>) -> Vec<WebhookConfig> {
    let mut webhooks = Vec::new();
    for (i, hook) in raw.webhooks.into_iter().enumerate() {
        let path = format!("alerts.webhooks[{i}]");
        match reqwest::Url::parse(&hook.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => issues.push(Issue {
                path: format!("{path}.url"),
                message: format!("`{}` is not an http(s) URL", hook.url),
            }),
        }
        let format = hook.format.unwrap_or_else(|| "generic".into());
        if format != "generic" && format != "slack" {
            issues.push(Issue {
                path: format!("{path}.format"),
                message: format!("`{format}` is not a webhook format; use generic or slack"),
            });
        }
        for event in hook.events.iter().flatten() {
            if !ALERT_KINDS.contains(&event.as_str()) {
                issues.push(Issue {
                    path: format!("{path}.events"),
                    message: format!(
                        "`{event}` is not an alert kind; use {}",
                        ALERT_KINDS.join(", ")
                    ),
                });
            }
        }
        webhooks.push(WebhookConfig {
            url: hook.url,
            format,
            events: hook.events,
        });
    }
    webhooks
}

/// `slo: { availability: 99.9%, window: 30d }` on a route.
pub(crate) fn build_slo(raw: RawSlo, path: &str, issues: &mut Vec<Issue>) -> Option<SloConfig> {
    let objective = match &raw.availability {
        Value::Number(n) => n.as_f64().map(|v| if v > 1.0 { v / 100.0 } else { v }),
        Value::String(s) => s
            .trim()
            .strip_suffix('%')
            .and_then(|p| p.trim().parse::<f64>().ok())
            .map(|p| p / 100.0),
        _ => None,
    };
    let objective = match objective {
        Some(o) if o > 0.0 && o < 1.0 => o,
        _ => {
            issues.push(Issue {
                path: format!("{path}.slo.availability"),
                message: format!(
                    "`{}` is not an availability such as 99.9%",
                    raw.availability
                ),
            });
            return None;
        }
    };
    let window = long_duration(
        raw.window,
        Duration::from_secs(30 * 86_400),
        &format!("{path}.slo.window"),
        issues,
    );
    Some(SloConfig { objective, window })
}

/// Durations that may run to days or months (`30d`), unlike timeouts.
fn long_duration(
    text: Option<String>,
    default: Duration,
    path: &str,
    issues: &mut Vec<Issue>,
) -> Duration {
    let Some(text) = text else { return default };
    match humantime::parse_duration(&text) {
        Ok(d) if !d.is_zero() => d,
        _ => {
            issues.push(Issue {
                path: path.to_string(),
                message: format!("`{text}` is not a positive duration such as 30s, 5m or 30d"),
            });
            default
        }
    }
}

/// Prices per model for one provider.
pub type Prices = BTreeMap<String, Price>;

/// An active health probe: a one-token completion sent to a target at an
/// interval, so the status page stays true while no traffic flows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeConfig {
    pub every: Duration,
    /// The model to probe; the provider's first model used by a route when
    /// not set.
    pub model: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProbe {
    every: Option<String>,
    model: Option<String>,
}

pub(crate) fn build_probe(raw: RawProbe, path: &str, issues: &mut Vec<Issue>) -> ProbeConfig {
    let every = long_duration(
        raw.every,
        Duration::from_secs(30),
        &format!("{path}.probe.every"),
        issues,
    );
    if every < Duration::from_secs(1) {
        issues.push(Issue {
            path: format!("{path}.probe.every"),
            message: "probing more often than once a second spends quota for nothing".into(),
        });
    }
    ProbeConfig {
        every,
        model: raw.model,
    }
}
