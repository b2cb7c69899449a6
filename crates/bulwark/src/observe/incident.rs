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
    /// Statuspage's impact level (none, minor, major or critical) of what
    /// clients got, as far as the incident alone tells: see [`Self::felt`].
    pub fn impact_level(&self) -> &'static str {
        self.felt(None).indicator()
    }

    /// What clients got, on the ladder, never worse than the worst
    /// component: an upstream's major outage that fallback absorbed is not
    /// a critical incident for anyone calling the gateway.
    ///
    /// From the impact counts once requests were counted: the share that
    /// failed, judged as a route's, and at least degraded performance while
    /// answers came from fallback, the cache or a degrade step (not the
    /// ones asked for). Before that, from `routes`, the worst state of the
    /// incident's routes where the caller knows it (at least degraded: an
    /// upstream is out); without either, the worst component is all there
    /// is to go on.
    pub fn felt(&self, routes: Option<ComponentState>) -> ComponentState {
        let i = &self.impact;
        let felt = if i.affected > 0 {
            let failed = ComponentState::for_failure_rate(i.failed as f64 / i.affected as f64);
            if i.saved_by_fallback + i.from_cache + i.degraded > 0 {
                failed.max(ComponentState::DegradedPerformance)
            } else {
                failed
            }
        } else if let Some(routes) = routes {
            routes.max(ComponentState::DegradedPerformance)
        } else {
            self.worst
        };
        felt.min(self.worst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(worst: ComponentState, impact: Impact) -> Incident {
        Incident {
            id: "inc-1".into(),
            title: "Major outage of anthropic/claude".into(),
            status: IncidentStatus::Investigating,
            worst,
            components: vec!["anthropic/claude".into(), "chat".into()],
            started_at: 0,
            updated_at: 0,
            resolved_at: None,
            impact,
            timeline: Vec::new(),
        }
    }

    #[test]
    fn an_outage_fallback_absorbed_is_minor_for_clients() {
        let absorbed = incident(
            ComponentState::MajorOutage,
            Impact {
                affected: 100,
                saved_by_fallback: 100,
                ..Impact::default()
            },
        );
        assert_eq!(absorbed.felt(None), ComponentState::DegradedPerformance);
        assert_eq!(absorbed.impact_level(), "minor");
    }

    #[test]
    fn failures_count_like_a_route_and_never_above_the_worst() {
        let failing = |failed, worst| {
            incident(
                worst,
                Impact {
                    affected: 100,
                    saved_by_fallback: 100 - failed,
                    failed,
                    ..Impact::default()
                },
            )
            .impact_level()
        };
        assert_eq!(failing(30, ComponentState::MajorOutage), "major");
        assert_eq!(failing(80, ComponentState::MajorOutage), "critical");
        assert_eq!(failing(80, ComponentState::PartialOutage), "major");
        // Nothing counted yet: the routes' states, else the worst component.
        let uncounted = incident(ComponentState::MajorOutage, Impact::default());
        assert_eq!(uncounted.impact_level(), "critical");
        let routes = Some(ComponentState::DegradedPerformance);
        assert_eq!(uncounted.felt(routes), ComponentState::DegradedPerformance);
        // An upstream out and no route affected is still felt a little.
        let operational = Some(ComponentState::Operational);
        assert_eq!(
            uncounted.felt(operational),
            ComponentState::DegradedPerformance
        );
    }
}
