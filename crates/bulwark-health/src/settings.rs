//! The tracker's knobs, with defaults chosen so that a real outage is
//! visible within half a minute and a single failed request never is.

use std::time::Duration;

/// The tracker's knobs and their defaults live with the config that sets
/// them; the tracker reads them as they are.
pub use bulwark::observe::config::HealthConfig as HealthSettings;

/// A route's service-level objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SloSettings {
    /// Share of good requests promised, e.g. 0.999.
    pub objective: f64,
    /// The window the promise is measured over, e.g. 30 days.
    pub window: Duration,
}
