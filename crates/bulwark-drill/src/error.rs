//! Scenario problems, reported the way `bulwark check` reports config
//! problems (`file: key.path: reason`, every problem at once), with the
//! very same types.

pub use bulwark::config::{ConfigError as ScenarioError, Issue};
