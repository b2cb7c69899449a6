//! Incidents: opened, updated and resolved by the health tracker, annotated
//! by admins, stored, alerted on and shown on the status page.

use serde::{Deserialize, Serialize};

use super::UnixMs;
use super::component::ComponentState;

/// Statuspage's incident statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
    Postmortem,
}

impl IncidentStatus {
    pub const ALL: [IncidentStatus; 5] = [
        IncidentStatus::Investigating,
        IncidentStatus::Identified,
        IncidentStatus::Monitoring,
        IncidentStatus::Resolved,
        IncidentStatus::Postmortem,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Investigating => "investigating",
            IncidentStatus::Identified => "identified",
            IncidentStatus::Monitoring => "monitoring",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::Postmortem => "postmortem",
        }
    }

    pub fn parse(text: &str) -> Option<IncidentStatus> {
        IncidentStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn is_closed(self) -> bool {
        matches!(self, IncidentStatus::Resolved | IncidentStatus::Postmortem)
    }
}

/// What happened at one point of an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimelineKind {
    Detected,
    /// A component's state changed (worse or better).
    StateChanged,
    BreakerOpened,
    BreakerClosed,
    FallbackEngaged,
    DegradedStarted,
    PartialRecovery,
    Resolved,
    /// An admin's note or status change.
    Note,
}

impl TimelineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TimelineKind::Detected => "detected",
            TimelineKind::StateChanged => "state_changed",
            TimelineKind::BreakerOpened => "breaker_opened",
            TimelineKind::BreakerClosed => "breaker_closed",
            TimelineKind::FallbackEngaged => "fallback_engaged",
            TimelineKind::DegradedStarted => "degraded_started",
            TimelineKind::PartialRecovery => "partial_recovery",
            TimelineKind::Resolved => "resolved",
            TimelineKind::Note => "note",
        }
    }

    pub fn parse(text: &str) -> Option<TimelineKind> {
        [
            TimelineKind::Detected,
            TimelineKind::StateChanged,
            TimelineKind::BreakerOpened,
            TimelineKind::BreakerClosed,
            TimelineKind::FallbackEngaged,
            TimelineKind::DegradedStarted,
            TimelineKind::PartialRecovery,
            TimelineKind::Resolved,
            TimelineKind::Note,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub at: UnixMs,
    pub kind: TimelineKind,
    /// The component it concerns, if one.
    pub component: Option<String>,
    /// The incident's status after this entry (Statuspage's incident_update).
    pub status: IncidentStatus,
    pub message: String,
}

/// What the incident did to clients, counted from the request log of the
/// affected routes while it was open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impact {
    /// Requests that touched an affected component.
    pub affected: u64,
    /// Answered by another target after the affected one failed or was skipped.
    pub saved_by_fallback: u64,
    /// Answered from the cache, fresh or stale.
    pub from_cache: u64,
    /// Answered degraded, by a simpler model. A static answer is no
    /// answer, and counts as failed.
    pub degraded: u64,
    /// Got an error, or a static degraded answer.
    pub failed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Stable and URL-safe, e.g. `inc-20261129-094501-3f2a`.
    pub id: String,
    pub title: String,
    pub status: IncidentStatus,
    /// The worst state any affected component reached.
    pub worst: ComponentState,
    /// Components affected, by name.
    pub components: Vec<String>,
    pub started_at: UnixMs,
    pub updated_at: UnixMs,
    pub resolved_at: Option<UnixMs>,
    pub impact: Impact,
    pub timeline: Vec<TimelineEntry>,
}

impl Incident {
    /// Statuspage's impact level: none, minor, major or critical.
    pub fn impact_level(&self) -> &'static str {
        self.worst.indicator()
    }
}
