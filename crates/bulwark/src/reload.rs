//! What a config reload keeps: a target's state survives when everything
//! that shapes its calls is the same in both configs (its provider's
//! settings, which hold the model's own, and the breaker and retry-budget
//! settings every target shares); the name alone is not enough, since a
//! breaker opened by a wrong key or URL must not outlive the fix.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::config::{Config, Degrade};
use crate::route::TargetState;

/// Names sorted into what a reload did with them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// In both configs, with other settings: starts fresh.
    pub changed: Vec<String>,
    /// In both configs, the same: keeps its state.
    pub kept: Vec<String>,
}

/// What a reload did to the routes and to the configured targets (those
/// routes and their degrade steps name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableDiff {
    pub routes: Changes,
    pub targets: Changes,
}

impl TableDiff {
    pub fn between(old: &Config, new: &Config) -> TableDiff {
        let (old_targets, new_targets) = (configured_targets(old), configured_targets(new));
        let mut targets = Changes::default();
        for label in old_targets.union(&new_targets) {
            let list = match (old_targets.contains(label), new_targets.contains(label)) {
                (true, false) => &mut targets.removed,
                (false, true) => &mut targets.added,
                _ if same_target(old, new, label) => &mut targets.kept,
                _ => &mut targets.changed,
            };
            list.push(label.clone());
        }
        let mut routes = Changes::default();
        let names: BTreeSet<&String> = old.routes.keys().chain(new.routes.keys()).collect();
        for name in names {
            let list = match (old.routes.get(name), new.routes.get(name)) {
                (Some(_), None) => &mut routes.removed,
                (None, Some(_)) => &mut routes.added,
                (Some(before), Some(after))
                    if before == after
                        && route_targets(after)
                            .iter()
                            .all(|t| !targets.changed.contains(t)) =>
                {
                    &mut routes.kept
                }
                _ => &mut routes.changed,
            };
            list.push(name.clone());
        }
        TableDiff { routes, targets }
    }
}

/// The states of `old`'s targets that `new` leaves unchanged, by label;
/// targets clients named directly (`provider/model`) included.
pub(crate) fn kept_states(
    old: &Config,
    new: &Config,
    states: &[(String, Arc<TargetState>)],
) -> HashMap<String, Arc<TargetState>> {
    states
        .iter()
        .filter(|(label, _)| same_target(old, new, label))
        .map(|(label, state)| (label.clone(), Arc::clone(state)))
        .collect()
}

/// Whether `provider/model` is served alike under both configs.
fn same_target(old: &Config, new: &Config, label: &str) -> bool {
    let Some((provider, _model)) = label.split_once('/') else {
        return false;
    };
    let provider_same = match (old.providers.get(provider), new.providers.get(provider)) {
        (Some(before), Some(after)) => before == after,
        _ => false,
    };
    provider_same && old.breaker == new.breaker && old.retry_budget == new.retry_budget
}

fn route_targets(route: &crate::config::RouteConfig) -> Vec<String> {
    let degrade = route.degrade.iter().filter_map(|step| match step {
        Degrade::Target(t) => Some(t.to_string()),
        Degrade::StaleCache | Degrade::Static(_) => None,
    });
    route
        .targets
        .iter()
        .map(ToString::to_string)
        .chain(degrade)
        .collect()
}

fn configured_targets(config: &Config) -> BTreeSet<String> {
    config.routes.values().flat_map(route_targets).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        match Config::from_yaml(yaml, "test", &|_| None) {
            Ok(config) => config,
            Err(error) => panic!("{error}"),
        }
    }

    const BEFORE: &str = "providers:\n  a: { kind: openai, api_key: k1 }\n  b: { kind: anthropic, api_key: k2 }\nroutes:\n  one: { targets: [a/x] }\n  two: { targets: [b/y], degrade: [a/z] }\n  gone: { targets: [a/w] }\n";

    #[test]
    fn a_changed_key_changes_its_providers_targets_and_the_routes_using_them() {
        let before = config(BEFORE);
        let after = config(&BEFORE.replace("api_key: k1", "api_key: k3").replace(
            "  gone: { targets: [a/w] }\n",
            "  new: { targets: [b/v] }\n",
        ));
        let diff = TableDiff::between(&before, &after);
        assert_eq!(diff.targets.changed, ["a/x", "a/z"]);
        assert_eq!(diff.targets.kept, ["b/y"]);
        assert_eq!(diff.targets.added, ["b/v"]);
        assert_eq!(diff.targets.removed, ["a/w"]);
        // `two` changes through its degrade target.
        assert_eq!(diff.routes.changed, ["one", "two"]);
        assert_eq!(diff.routes.added, ["new"]);
        assert_eq!(diff.routes.removed, ["gone"]);
        assert!(diff.routes.kept.is_empty());
    }

    #[test]
    fn shared_breaker_settings_change_every_target() {
        let before = config(BEFORE);
        let after = config(&format!("breaker: {{ consecutive_failures: 9 }}\n{BEFORE}"));
        let diff = TableDiff::between(&before, &after);
        assert!(diff.targets.kept.is_empty(), "{diff:?}");
        assert_eq!(
            TableDiff::between(&before, &before).targets.changed.len(),
            0
        );
    }
}
