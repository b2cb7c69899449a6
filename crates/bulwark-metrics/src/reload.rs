//! Config reloads: how many were applied or refused, and when the config
//! now serving was applied.

use crate::Metrics;
use crate::labels::ReloadLabels;

impl Metrics {
    /// Follows a reloaded config: its routes and targets become label
    /// values (those of the config before stay allowed), and its prices
    /// price the requests from now on.
    pub fn reconfigure(&self, config: &bulwark::Config) {
        let (prices, routes, targets) = crate::construct::names(config);
        self.routes.allow(routes);
        self.targets.allow(targets);
        *self
            .prices
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = prices;
    }

    /// Counts a reload; `at_unix_s` is when an applied one took effect.
    pub fn config_reloaded(&self, applied: bool, at_unix_s: i64) {
        let result = if applied { "applied" } else { "refused" };
        self.config_reloads
            .get_or_create(&ReloadLabels { result })
            .inc();
        if applied {
            self.config_applied_at.set(at_unix_s);
        }
    }

    /// When the config now serving was applied (at start), in Unix seconds.
    pub fn config_applied(&self, at_unix_s: i64) {
        self.config_applied_at.set(at_unix_s);
    }
}
