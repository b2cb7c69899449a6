//! The observability settings the engine's neighbours share: how health is
//! judged (read by `bulwark-health`), where alerts go (`bulwark-alerts`),
//! and the parts of providers and routes that serve observability: SLOs,
//! prices and probes. The gateway reads the top-level `store`, `health`,
//! `alerts` and `status_page` keys into these types.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::config::{Issue, duration};

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
pub(crate) struct RawSlo {
    availability: Value,
    window: Option<String>,
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
    let window = duration::long(
        raw.window,
        Duration::from_secs(30 * 86_400),
        &format!("{path}.slo.window"),
        issues,
    );
    Some(SloConfig { objective, window })
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
    let every = duration::long(
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
