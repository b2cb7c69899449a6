//! The `store`, `retention`, `log_bodies`, `health`, `alerts` and
//! `status_page` keys: where the request log goes, how health is judged,
//! where alerts are sent and what the status page is called and shows.

use std::time::Duration;

use bulwark::config::{Document, Issue, duration};
use bulwark::observe::config::{ALERT_KINDS, HealthConfig, WebhookConfig};
use serde::Deserialize;
use serde_json::Value;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusPageConfig {
    pub title: String,
    /// The page's public address, for links in feeds and alerts.
    pub url: Option<String>,
    /// List upstream targets (`provider/model`) on the public page, feed,
    /// JSON and live stream. Off, they show routes only, so the page does
    /// not tell anyone which providers are behind the per-key model lists.
    pub show_targets: bool,
}

impl Default for StatusPageConfig {
    fn default() -> Self {
        StatusPageConfig {
            title: "Bulwark".into(),
            url: None,
            show_targets: true,
        }
    }
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
    show_targets: Option<bool>,
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

pub(crate) fn build(raw: RawObserve, doc: &Document, issues: &mut Vec<Issue>) -> ObserveConfig {
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
    let retention = duration::long(raw.retention, defaults.retention, "retention", issues);
    let health = raw
        .health
        .and_then(|v| doc.read::<RawHealth>(v, "health", issues))
        .map_or_else(HealthConfig::default, |h| build_health(h, issues));
    let webhooks = raw
        .alerts
        .and_then(|v| doc.read::<RawAlerts>(v, "alerts", issues))
        .map(|a| build_webhooks(a, issues))
        .unwrap_or_default();
    let status_page = raw
        .status_page
        .and_then(|v| doc.read::<RawStatusPage>(v, "status_page", issues))
        .map_or_else(StatusPageConfig::default, |p| StatusPageConfig {
            title: p.title.unwrap_or_else(|| "Bulwark".into()),
            url: p.url,
            show_targets: p.show_targets.unwrap_or(true),
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
        duration::long(text, default, &format!("health.{key}"), issues)
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
