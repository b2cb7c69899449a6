//! The tracker's knobs, with defaults chosen so that a real outage is
//! visible within half a minute and a single failed request never is.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct HealthSettings {
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

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
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

/// A route's service-level objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SloSettings {
    /// Share of good requests promised, e.g. 0.999.
    pub objective: f64,
    /// The window the promise is measured over, e.g. 30 days.
    pub window: Duration,
}
