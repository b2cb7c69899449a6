//! Webhook alerts on incidents and error-budget burn.
//!
//! Alerts are raised on the request path (by the health tracker and the
//! SLO evaluator) but delivered off it: [`AlertSender::send`] only puts the
//! alert on a bounded queue per webhook and returns. Each webhook has its
//! own worker task, so a slow or dead receiver delays only its own alerts,
//! and alerts to one webhook arrive in the order they were sent (an
//! incident's resolve never overtakes its open).

mod delivery;
pub mod payload;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bulwark::observe::incident::{Incident, TimelineEntry};
use serde::Deserialize;
use tokio::sync::{mpsc, watch};

pub use delivery::retry_delay;

/// The names [`Webhook::events`] may list; shared with the config
/// checker so both agree.
pub use bulwark::observe::config::ALERT_KINDS;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    #[default]
    Generic,
    Slack,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// Often holds a secret (Slack's webhook URLs are bearer tokens), so
    /// logs only ever show its host.
    pub url: String,
    #[serde(default)]
    pub format: WebhookFormat,
    /// Alert kinds to send here (see [`ALERT_KINDS`]); `None` sends all.
    #[serde(default)]
    pub events: Option<Vec<String>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error("webhook url {0:?} is not an http(s) URL")]
    BadUrl(String),
    #[error("webhook format {0:?} is unknown; expected generic or slack")]
    UnknownFormat(String),
    #[error("webhook event {name:?} is unknown; expected one of {}", ALERT_KINDS.join(", "))]
    UnknownEvent { name: String },
}

impl Webhook {
    /// From the gateway's validated configuration.
    pub fn from_config(
        config: &bulwark::observe::config::WebhookConfig,
    ) -> Result<Webhook, WebhookError> {
        let format = match config.format.as_str() {
            "generic" => WebhookFormat::Generic,
            "slack" => WebhookFormat::Slack,
            other => return Err(WebhookError::UnknownFormat(other.to_string())),
        };
        let webhook = Webhook {
            url: config.url.clone(),
            format,
            events: config.events.clone(),
        };
        webhook.validate()?;
        Ok(webhook)
    }

    /// Config-time check, so a typo in `events` does not silently mute a
    /// webhook.
    pub fn validate(&self) -> Result<(), WebhookError> {
        let parsed =
            reqwest::Url::parse(&self.url).map_err(|_| WebhookError::BadUrl(redact(&self.url)))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(WebhookError::BadUrl(redact(&self.url)));
        }
        for name in self.events.iter().flatten() {
            if !ALERT_KINDS.contains(&name.as_str()) {
                return Err(WebhookError::UnknownEvent { name: name.clone() });
            }
        }
        Ok(())
    }

    pub fn wants(&self, kind: &str) -> bool {
        self.events
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == kind))
    }
}

/// What a URL may show in logs and errors: scheme and host, no path or
/// query where tokens live.
pub(crate) fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or("?")),
        Err(_) => "<unparseable url>".to_string(),
    }
}

pub use bulwark::observe::burn::BurnSeverity;

#[derive(Clone, Debug, PartialEq)]
pub enum Alert {
    IncidentOpened(Incident),
    IncidentUpdated {
        incident: Incident,
        update: TimelineEntry,
    },
    IncidentResolved(Incident),
    BudgetBurn {
        route: String,
        severity: BurnSeverity,
        burn_rate: f64,
        long_window: Duration,
        short_window: Duration,
        /// Share of the budget left: 1.0 untouched, negative overspent.
        budget_remaining: f64,
    },
}

impl Alert {
    pub fn kind(&self) -> &'static str {
        match self {
            Alert::IncidentOpened(_) => "incident_opened",
            Alert::IncidentUpdated { .. } => "incident_updated",
            Alert::IncidentResolved(_) => "incident_resolved",
            Alert::BudgetBurn { .. } => "budget_burn",
        }
    }

    /// Equal for alerts that say the same thing, so re-raising one (after
    /// a restart, or a burn evaluated every minute) does not post it again.
    /// A burn alert has no identity of its own, so it is keyed by the wall
    /// clock hour it is raised in: one post per route and severity an hour.
    pub fn dedup_key(&self) -> String {
        self.dedup_key_at(bulwark::observe::unix_ms_now())
    }

    /// [`Alert::dedup_key`] as if raised at `now`.
    pub fn dedup_key_at(&self, now: bulwark::observe::UnixMs) -> String {
        match self {
            Alert::IncidentOpened(i) | Alert::IncidentResolved(i) => {
                format!("{}:{}", i.id, self.kind())
            }
            Alert::IncidentUpdated { incident, update } => format!(
                "{}:{}:{}:{}",
                incident.id,
                self.kind(),
                update.at,
                update.kind.as_str()
            ),
            Alert::BudgetBurn {
                route, severity, ..
            } => format!(
                "budget_burn:{route}:{}:{}",
                severity.as_str(),
                now.div_euclid(3_600_000)
            ),
        }
    }
}

#[derive(Clone, Debug)]
pub struct DeliveryOptions {
    /// Tries per alert and webhook, the first included.
    pub max_attempts: u32,
    pub backoff_base: Duration,
    /// Also caps a receiver's `Retry-After`, so one receiver asking for an
    /// hour cannot hold every later alert to it for that long.
    pub backoff_cap: Duration,
    /// For one whole POST, connect to last byte.
    pub timeout: Duration,
    pub dedup_window: Duration,
    /// Alerts waiting per webhook before new ones are dropped.
    pub queue_capacity: usize,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            max_attempts: 5,
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            dedup_window: Duration::from_secs(24 * 3600),
            queue_capacity: 256,
        }
    }
}

/// Counted per webhook: an alert sent to two webhooks and delivered to
/// both counts two deliveries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AlertStats {
    pub delivered: u64,
    /// Given up on: a non-retryable answer, or out of attempts.
    pub failed: u64,
    /// Tries after the first.
    pub retried: u64,
    /// Not queued because the webhook's queue was full.
    pub dropped: u64,
    /// Not posted because the same alert was delivered within the window.
    pub deduplicated: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub retried: AtomicU64,
    pub dropped: AtomicU64,
    pub deduplicated: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One queued alert: shared between webhooks, keyed once at send time so
/// every webhook dedups it the same way.
#[derive(Debug)]
pub(crate) struct Queued {
    pub alert: Arc<Alert>,
    pub key: Arc<str>,
}

#[derive(Debug)]
struct Lane {
    webhook: Webhook,
    queue: mpsc::Sender<Queued>,
    /// Alerts accepted onto `queue` so far.
    accepted: AtomicU64,
    /// Alerts the worker has finished with (delivered, given up or
    /// deduplicated); FIFO, so `done >= n` means the first `n` are done.
    done: watch::Receiver<u64>,
}

pub struct Alerter;

impl Alerter {
    /// Starts one delivery worker per webhook. Must run inside a Tokio
    /// runtime; outside one, every alert is counted as dropped.
    pub fn spawn(webhooks: Vec<Webhook>, options: DeliveryOptions) -> AlertSender {
        let counters = Arc::new(Counters::default());
        let runtime = tokio::runtime::Handle::try_current();
        if runtime.is_err() {
            tracing::error!("alerter started outside a Tokio runtime; alerts will be dropped");
        }
        let client = delivery::client(&options);
        let mut lanes = Vec::with_capacity(webhooks.len());
        for webhook in webhooks {
            if let Err(error) = webhook.validate() {
                tracing::warn!(%error, "webhook configuration looks wrong; delivering anyway");
            }
            let (queue, rx) = mpsc::channel(options.queue_capacity.max(1));
            let (done_tx, done) = watch::channel(0);
            if let Ok(handle) = &runtime {
                handle.spawn(delivery::run_worker(
                    webhook.clone(),
                    rx,
                    done_tx,
                    client.clone(),
                    options.clone(),
                    counters.clone(),
                ));
            }
            lanes.push(Lane {
                webhook,
                queue,
                accepted: AtomicU64::new(0),
                done,
            });
        }
        AlertSender {
            inner: Arc::new(Inner { lanes, counters }),
        }
    }
}

#[derive(Debug)]
struct Inner {
    lanes: Vec<Lane>,
    counters: Arc<Counters>,
}

/// Cheap to clone; workers stop once every clone is dropped and their
/// queues are drained.
#[derive(Clone, Debug)]
pub struct AlertSender {
    inner: Arc<Inner>,
}

impl AlertSender {
    /// Queues `alert` for every webhook that wants its kind. Never waits:
    /// a full queue drops the alert (counted) rather than hold up the
    /// caller.
    pub fn send(&self, alert: Alert) {
        let key: Arc<str> = alert.dedup_key().into();
        let kind = alert.kind();
        let alert = Arc::new(alert);
        for lane in &self.inner.lanes {
            if !lane.webhook.wants(kind) {
                continue;
            }
            let queued = Queued {
                alert: alert.clone(),
                key: key.clone(),
            };
            match lane.queue.try_send(queued) {
                Ok(()) => {
                    lane.accepted.fetch_add(1, Ordering::AcqRel);
                }
                Err(_) => {
                    tracing::warn!(
                        webhook = %redact(&lane.webhook.url),
                        kind,
                        "alert queue full or closed; alert dropped"
                    );
                    Counters::add(&self.inner.counters.dropped);
                }
            }
        }
    }

    pub fn stats(&self) -> AlertStats {
        let c = &self.inner.counters;
        AlertStats {
            delivered: c.delivered.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            deduplicated: c.deduplicated.load(Ordering::Relaxed),
        }
    }

    /// Waits until every alert queued before the call is delivered or
    /// given up on, for tests and graceful shutdown. Returns early for a
    /// webhook whose worker is gone (its runtime shut down).
    pub async fn flush(&self) {
        let targets: Vec<(watch::Receiver<u64>, u64)> = self
            .inner
            .lanes
            .iter()
            .map(|lane| (lane.done.clone(), lane.accepted.load(Ordering::Acquire)))
            .collect();
        for (mut done, target) in targets {
            let _ = done.wait_for(|n| *n >= target).await;
        }
    }
}

#[cfg(test)]
mod tests;
