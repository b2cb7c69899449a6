//! `bulwark-drill`: replay an incident against your config.
//!
//! A scenario ([`Scenario`], documented in `SCENARIOS.md`) names simulated
//! providers and, for each, a timeline of phases with their latency, fault
//! mix and quota. A [`Timeline`] drives running `bulwark-sim` servers
//! through those phases with time compressed by a [`Speed`], so a
//! four-hour outage replays in four minutes. The load generator and the
//! report are built on top of this crate.

mod clock;
mod clouds;
mod compile;
mod compress;
mod error;
mod instances;
pub mod load;
pub mod outcome;
pub mod record;
pub mod report;
pub mod run;
mod scenario;
mod schedule;
mod timeline;
mod validate;

pub use bulwark::config::duration::{format as format_duration, parse as parse_duration};
pub use clock::{InvalidSpeed, Speed, scenario_to_wall, wall_to_scenario};
pub use clouds::sim_service_account_json;
pub use compile::{fault_shares, sim_config, sim_phase};
pub use compress::compress;
pub use error::{Issue, ScenarioError};
pub use scenario::{
    Conditions, CutSpec, ErrorDetails, ErrorEventSpec, ErrorShare, Flap, HangSpec, LatencySpec,
    Load, LoadPhase, Phase, Provider, Scenario, Spread, StallSpec, WireFormat,
};
pub use schedule::{PhaseSpan, Segment, phase_spans, segments};
pub use timeline::{Timeline, TimelineError, TimelineHandle};
