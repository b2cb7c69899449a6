//! Everything the status page shows, gathered in one value so rendering is
//! a pure function of it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::UnixMs;
use super::component::{ComponentKind, ComponentState};
use super::incident::Incident;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusSnapshot {
    /// The page's name, e.g. `Bulwark`.
    pub page_name: String,
    /// The public URL of the page, if configured (for links in feeds).
    pub page_url: Option<String>,
    pub generated_at: UnixMs,
    pub components: Vec<ComponentStatus>,
    /// Routes' error budgets.
    pub slos: Vec<SloStatus>,
    /// Open incidents, newest first.
    pub active_incidents: Vec<Incident>,
    /// Incidents resolved recently, newest first.
    pub recent_incidents: Vec<Incident>,
    /// Routes answering from other upstreams while one of theirs is out.
    #[serde(default)]
    pub absorbed: Vec<Absorbed>,
    /// Each provider's name for people (`primary` of kind `openai` is
    /// `OpenAI`), for sentences about upstreams. Empty when they are hidden.
    #[serde(default)]
    pub provider_names: BTreeMap<String, String>,
}

impl StatusSnapshot {
    /// The page's overall status: what clients get, see [`client_overall`].
    pub fn overall(&self) -> ComponentState {
        client_overall(self.components.iter().map(|c| (c.kind, c.state)))
    }
}

/// The worst state of the routes, the components clients call. An upstream
/// that is down while fallback answers every request is not an outage for
/// anyone reading the page; it shows in its own group and in
/// [`Absorbed`]. With no route at all (only direct targets), targets are
/// what clients call, so they count.
pub fn client_overall(
    components: impl IntoIterator<Item = (ComponentKind, ComponentState)>,
) -> ComponentState {
    let (mut routes, mut all) = (None::<ComponentState>, None::<ComponentState>);
    for (kind, state) in components {
        all = all.max(Some(state));
        if kind == ComponentKind::Route {
            routes = routes.max(Some(state));
        }
    }
    routes.or(all).unwrap_or(ComponentState::Operational)
}

/// A route whose requests other upstreams are answering while upstreams it
/// uses are in an outage: the page says so in words ("Anthropic is down;
/// every request is being served by OpenAI") rather than leaving readers
/// to square a red upstream with a green route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Absorbed {
    pub route: String,
    /// The route's upstreams (`provider/model`) in a partial or major
    /// outage, and their state. Empty when upstream names are hidden.
    pub down: Vec<(String, ComponentState)>,
    /// The upstreams that answered the route's requests in the health
    /// window. Empty when upstream names are hidden.
    pub serving: Vec<String>,
    /// The route's requests in the health window (clients' own mistakes
    /// left out), and how many of them failed.
    pub requests: u32,
    pub failed: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentStatus {
    /// Unique name: `provider/model` for a target, the route's name for a route.
    pub name: String,
    pub kind: ComponentKind,
    pub state: ComponentState,
    /// When the state last changed.
    pub updated_at: UnixMs,
    /// Why it is in this state, for people (e.g. `error rate 62 % over 60 s`).
    pub reason: Option<String>,
    /// Share of good time, as fractions 0..=1, when known.
    pub uptime_24h: Option<f64>,
    pub uptime_7d: Option<f64>,
    pub uptime_30d: Option<f64>,
    /// Oldest first, up to 90 days ending today (UTC).
    pub days: Vec<DayUptime>,
    /// Recent median and p95 latency to the first token, in milliseconds.
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
}

/// One bar of the 90-day chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayUptime {
    /// `YYYY-MM-DD`, UTC.
    pub date: String,
    /// Share of the day's observed time spent operational; `None` when
    /// nothing was observed that day.
    pub uptime: Option<f64>,
    /// The worst state seen that day.
    pub worst: ComponentState,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloStatus {
    pub route: String,
    /// The objective, e.g. 0.999.
    pub objective: f64,
    /// The SLO window, e.g. 30 days, in seconds.
    pub window_secs: u64,
    /// Measured availability over the window so far (good / total).
    pub availability: Option<f64>,
    pub total: u64,
    pub good: u64,
    /// Share of the error budget left, 1.0 = untouched, negative = overspent.
    pub budget_remaining: f64,
    /// Current burn rates over the short windows (1 h, 6 h).
    pub burn_rate_1h: f64,
    pub burn_rate_6h: f64,
}
