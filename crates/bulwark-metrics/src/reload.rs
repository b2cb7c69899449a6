//! Config reloads: how many were applied or refused, and when the config
//! now serving was applied.

use bulwark::observe::component::ComponentKind;

use crate::Metrics;
use crate::labels::{ComponentLabels, OTHER, ReloadLabels, RouteLabels, TargetLabels};

impl Metrics {
    /// Follows a reloaded config: its routes and targets become label
    /// values (those of the config before stay allowed), and its prices
    /// price the requests from now on.
    pub fn reconfigure(&self, config: &bulwark::Config) {
        let (prices, routes, targets) = crate::construct::names(config);
        {
            let mut forgotten = self.forgotten_names();
            for name in routes.iter().chain(&targets) {
                forgotten.remove(name);
            }
        }
        self.routes.allow(routes);
        self.targets.allow(targets);
        *self
            .prices
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = prices;
    }

    /// Drops the state gauges of targets and routes a reload removed, so
    /// that a removed target's last breaker state is not exported for good
    /// (and an alert on it does not fire forever). Counters stay.
    pub fn forget(&self, targets: &[String], routes: &[String]) {
        self.forgotten_names()
            .extend(targets.iter().chain(routes).cloned());
        for target in targets {
            let target = self.target(target);
            if target == OTHER {
                continue;
            }
            let labels = TargetLabels {
                target: target.clone(),
            };
            self.breaker_state.remove(&labels);
            self.concurrency_limit.remove(&labels);
            self.in_flight.remove(&labels);
            self.component_state.remove(&ComponentLabels {
                component: target,
                kind: ComponentKind::Target.as_str(),
            });
        }
        for route in routes {
            let route = self.route(route);
            if route == OTHER {
                continue;
            }
            self.queue_depth.remove(&RouteLabels {
                route: route.clone(),
            });
            self.component_state.remove(&ComponentLabels {
                component: route,
                kind: ComponentKind::Route.as_str(),
            });
        }
    }

    /// Whether `name` (a target or a route) was removed by a reload and not
    /// configured again since.
    pub(crate) fn is_forgotten(&self, name: &str) -> bool {
        self.forgotten
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(name)
    }

    fn forgotten_names(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, std::collections::HashSet<String>> {
        self.forgotten
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
