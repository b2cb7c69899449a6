//! Health as pure logic: request records and engine events go in, component
//! states, incidents and error-budget burn come out. Time is always passed
//! in (`UnixMs`), never read, so every transition can be tested exactly and
//! a drill can replay hours in milliseconds.
//!
//! The gateway feeds a [`HealthTracker`] and calls
//! [`HealthTracker::evaluate`] on a timer; what changed is returned for it to
//! store, alert on and publish.

mod absorbed;
mod incident;
mod ladder;
mod settings;
mod slo;
mod tracker;
mod window;

pub use incident::IncidentBook;
pub use incident::IncidentUpdate;
pub use ladder::{Hysteresis, Judgement, judge_route, judge_target};
pub use settings::{HealthSettings, SloSettings};
pub use slo::budget_remaining;
pub use slo::{BurnAlert, BurnSeverity, SloTracker};
pub use tracker::{ComponentChange, ComponentView, Evaluation, HealthTracker, Topology};
pub use window::{RouteStats, Served, TargetStats};
