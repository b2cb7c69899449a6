//! What a drill observed, as plain data: every request sent (through
//! Bulwark and directly to the primary), what the gateway decided, and
//! what the simulated providers saw. The report is computed from this
//! alone, so it can be tested without running anything.

use std::time::Duration;

use bulwark::observe::incident::Incident;
use serde::{Deserialize, Serialize};

use crate::schedule::PhaseSpan;

/// Which path a request took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Path {
    /// Through the gateway, with the team's config.
    Bulwark,
    /// Straight to the primary provider: what the app sees without Bulwark.
    Direct,
}

/// One request of the load, as the client saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sent {
    pub path: Path,
    /// Sequence number within its path; the same number on both paths is
    /// the same logical request.
    pub seq: u64,
    /// When it was sent, in wall time since the drill started.
    pub at: Duration,
    pub stream: bool,
    /// `openai` or `anthropic`: the format the client spoke.
    pub client_format: String,
    /// The HTTP status, or `None` when no response came (connection error,
    /// client timeout).
    pub status: Option<u16>,
    /// A good, complete answer (for a stream: it ended properly).
    pub ok: bool,
    /// Why not, in a few words (`529`, `timeout`, `stream cut`, ...).
    pub error: Option<String>,
    /// The error's own message, when the answer was an error body: what
    /// the gateway or provider said, for reading a failure afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// From sending to the last byte, in scenario time (the real time
    /// times the drill's speed).
    pub latency: Duration,
    /// From sending to the first content byte, when there was one, in
    /// scenario time.
    pub first_token: Option<Duration>,
    /// Bulwark's headers: who answered, and how.
    pub target: Option<String>,
    pub attempts: Option<u32>,
    pub fallback: bool,
    /// `hit` or `stale`.
    pub cache: Option<String>,
    pub degraded: Option<String>,
    /// `x-bulwark-dropped`: the fields of the client's request its answer
    /// left out (a translation to a format lacking them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped: Option<String>,
}

/// Something the gateway did, at a wall time since the drill started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    pub at: Duration,
    pub kind: MarkerKind,
    /// e.g. the target whose breaker opened, or the incident's title.
    pub label: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkerKind {
    BreakerOpened,
    BreakerClosed,
    IncidentOpened,
    IncidentResolved,
    /// An alert reached the drill's webhook receiver.
    AlertDelivered,
}

/// Everything the report needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillData {
    pub scenario: String,
    pub description: String,
    /// The config the gateway ran, as named on the command line.
    pub config_name: String,
    /// Scenario seconds per wall second.
    pub speed: f64,
    /// Wall time the load ran.
    pub wall_duration: Duration,
    pub primary: String,
    /// The route the load called.
    pub route: String,
    /// The route's deadline: no answer through Bulwark should take longer.
    pub deadline: Duration,
    /// Phases in scenario time, for shading.
    pub phases: Vec<PhaseSpan>,
    /// When the primary's trouble began and ended, in scenario time (the
    /// first phase after its first, and its last phase's start).
    pub outage_start: Option<Duration>,
    pub recovery_start: Option<Duration>,
    pub sent: Vec<Sent>,
    pub markers: Vec<Marker>,
    /// Calls each simulated provider received from the gateway (probes
    /// included), by provider name.
    pub upstream_calls: Vec<(String, u64)>,
    /// Upstream calls the retry budget allows for this load: the ceiling
    /// for amplification.
    pub retry_budget_allowance: u64,
    pub incidents: Vec<Incident>,
}

impl DrillData {
    /// Wall time since the start, as scenario time.
    pub fn scenario_time(&self, wall: Duration) -> Duration {
        wall.mul_f64(self.speed)
    }

    /// Scenario time as wall time since the start.
    pub fn wall_time(&self, scenario: Duration) -> Duration {
        scenario.div_f64(self.speed)
    }
}
