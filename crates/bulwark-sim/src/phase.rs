//! A phase: everything about a provider's behaviour that changes during an
//! incident, applied as one unit so that no request ever sees the faults of
//! one phase with the latency or quota of another.

use serde::{Deserialize, Serialize};

use crate::config::{Latency, SimConfig};
use crate::dist::LatencyDist;
use crate::fault::FaultRule;

/// The incident-dependent part of a [`SimConfig`]; applied with
/// [`crate::Sim::apply_phase`] or `PUT /_sim/phase`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimPhase {
    pub latency: Latency,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_dist: Option<LatencyDist>,
    pub faults: Vec<FaultRule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_rpm: Option<u64>,
}

impl SimPhase {
    /// Overwrite the phase fields of `config`, leaving models, keys and speed.
    pub fn apply_to(self, config: &mut SimConfig) {
        config.latency = self.latency;
        config.latency_dist = self.latency_dist;
        config.faults = self.faults;
        config.rate_limit_rpm = self.rate_limit_rpm;
    }

    /// The phase currently in `config`.
    pub fn of(config: &SimConfig) -> Self {
        Self {
            latency: config.latency,
            latency_dist: config.latency_dist,
            faults: config.faults.clone(),
            rate_limit_rpm: config.rate_limit_rpm,
        }
    }
}
