//! Component states, on the Atlassian Statuspage ladder.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Ordered from best to worst, so `max` is the worse of two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentState {
    Operational,
    /// Set by an admin; sorts below outages so a real outage still shows.
    UnderMaintenance,
    DegradedPerformance,
    PartialOutage,
    MajorOutage,
}

impl ComponentState {
    pub const ALL: [ComponentState; 5] = [
        ComponentState::Operational,
        ComponentState::UnderMaintenance,
        ComponentState::DegradedPerformance,
        ComponentState::PartialOutage,
        ComponentState::MajorOutage,
    ];

    /// The Statuspage API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentState::Operational => "operational",
            ComponentState::UnderMaintenance => "under_maintenance",
            ComponentState::DegradedPerformance => "degraded_performance",
            ComponentState::PartialOutage => "partial_outage",
            ComponentState::MajorOutage => "major_outage",
        }
    }

    pub fn parse(text: &str) -> Option<ComponentState> {
        ComponentState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Words for people.
    pub fn label(self) -> &'static str {
        match self {
            ComponentState::Operational => "Operational",
            ComponentState::UnderMaintenance => "Under maintenance",
            ComponentState::DegradedPerformance => "Degraded performance",
            ComponentState::PartialOutage => "Partial outage",
            ComponentState::MajorOutage => "Major outage",
        }
    }

    /// Statuspage's page-level indicator for a worst component state.
    pub fn indicator(self) -> &'static str {
        match self {
            ComponentState::Operational => "none",
            ComponentState::UnderMaintenance => "maintenance",
            ComponentState::DegradedPerformance => "minor",
            ComponentState::PartialOutage => "major",
            ComponentState::MajorOutage => "critical",
        }
    }

    /// Gauge value for metrics: 0 operational ... 4 major outage.
    pub fn level(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for ComponentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a component is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentKind {
    /// An upstream `provider/model`.
    Target,
    /// A route clients call.
    Route,
    /// Something the gateway itself leans on, such as the Redis its
    /// instances share state through.
    Dependency,
}

impl ComponentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentKind::Target => "target",
            ComponentKind::Route => "route",
            ComponentKind::Dependency => "dependency",
        }
    }
}
