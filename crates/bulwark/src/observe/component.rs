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

    /// How much of the time spent in this state counts as down, the way
    /// Atlassian Statuspage's uptime showcase counts it: a major outage
    /// fully, a partial outage 30 % (it hits part of the traffic), and
    /// degraded performance and maintenance not at all, since requests are
    /// still answered. See "How it works" in
    /// <https://help.statuspage.io/help/uptime-calendar>, and
    /// <https://www.sorryapp.com/compare/uptime-sorry-vs-statuspage>
    /// ("Major state has 100% of the downtime applied, Partial states
    /// receive a 30% discount"). Without this a route that fell back for a
    /// day showed as down all day while every request was served.
    pub fn downtime_weight(self) -> f64 {
        match self {
            ComponentState::Operational
            | ComponentState::UnderMaintenance
            | ComponentState::DegradedPerformance => 0.0,
            ComponentState::PartialOutage => 0.3,
            ComponentState::MajorOutage => 1.0,
        }
    }

    /// The ladder's rung for a share of failed calls or requests: one in
    /// twenty is noticeable, one in four is an outage of part of the
    /// traffic, three in four is most of it.
    pub fn for_failure_rate(rate: f64) -> ComponentState {
        if rate >= 0.75 {
            ComponentState::MajorOutage
        } else if rate >= 0.25 {
            ComponentState::PartialOutage
        } else if rate >= 0.05 {
            ComponentState::DegradedPerformance
        } else {
            ComponentState::Operational
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

/// Uptime from seconds spent in each state (indexed by
/// `ComponentState as usize`): the share of observed time not weighed as
/// down by [`ComponentState::downtime_weight`]; `None` when nothing was
/// observed. The one formula behind every bar and percentage.
pub fn uptime_of(seconds: &[f64; 5]) -> Option<f64> {
    let observed: f64 = seconds.iter().sum();
    if observed <= 0.0 {
        return None;
    }
    let down: f64 = ComponentState::ALL
        .into_iter()
        .map(|state| seconds[state as usize] * state.downtime_weight())
        .sum();
    Some(((observed - down) / observed).clamp(0.0, 1.0))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(state: ComponentState, secs: f64, rest: f64) -> [f64; 5] {
        let mut out = [0.0; 5];
        out[ComponentState::Operational as usize] = rest;
        out[state as usize] += secs;
        out
    }

    #[test]
    fn degraded_and_maintenance_count_as_up() {
        for state in [
            ComponentState::DegradedPerformance,
            ComponentState::UnderMaintenance,
        ] {
            assert_eq!(uptime_of(&seconds(state, 600.0, 0.0)), Some(1.0));
            assert_eq!(uptime_of(&seconds(state, 300.0, 300.0)), Some(1.0));
        }
    }

    #[test]
    fn a_partial_outage_counts_thirty_percent_down() {
        let all_partial = uptime_of(&seconds(ComponentState::PartialOutage, 1000.0, 0.0));
        assert!(
            all_partial.is_some_and(|u| (u - 0.7).abs() < 1e-9),
            "{all_partial:?}"
        );
        // Half the time partial: 15 % down.
        let half = uptime_of(&seconds(ComponentState::PartialOutage, 500.0, 500.0));
        assert!(half.is_some_and(|u| (u - 0.85).abs() < 1e-9), "{half:?}");
    }

    #[test]
    fn a_major_outage_counts_fully_down() {
        assert_eq!(
            uptime_of(&seconds(ComponentState::MajorOutage, 250.0, 750.0)),
            Some(0.75)
        );
        assert_eq!(uptime_of(&[0.0; 5]), None);
    }
}
