//! Label sets and the guards that keep each label's set of values small.

use std::collections::HashSet;
use std::sync::{Mutex, RwLock};

use prometheus_client::encoding::EncodeLabelSet;

use crate::Metrics;

/// Distinct values a label may take when no allow-list is configured,
/// before further values are folded into [`OTHER`]: keeps a misbehaving
/// client from exploding the series count.
pub const MAX_LABEL_VALUES: usize = 200;

/// The label value that stands for anything not allowed.
pub const OTHER: &str = "other";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub(crate) route: String,
    pub(crate) target: String,
    pub(crate) outcome: &'static str,
    pub(crate) format: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DurationLabels {
    pub(crate) route: String,
    pub(crate) format: &'static str,
    pub(crate) stream: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteFormatLabels {
    pub(crate) route: String,
    pub(crate) format: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TargetResultLabels {
    pub(crate) target: String,
    pub(crate) result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TargetLabels {
    pub(crate) target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReloadLabels {
    pub(crate) result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteLabels {
    pub(crate) route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TokenLabels {
    pub(crate) target: String,
    pub(crate) direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CacheLabels {
    pub(crate) route: String,
    pub(crate) result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DegradedLabels {
    pub(crate) route: String,
    pub(crate) how: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DroppedLabels {
    pub(crate) route: String,
    pub(crate) target: String,
    pub(crate) feature: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TransitionLabels {
    pub(crate) target: String,
    pub(crate) to: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct SkippedLabels {
    pub(crate) target: String,
    pub(crate) reason: String,
}

/// Why a finished Responses answer's conversation was not stored.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct NotStoredLabels {
    pub(crate) reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ComponentLabels {
    pub(crate) component: String,
    pub(crate) kind: &'static str,
}

/// Keeps one label's set of values small: an allow-list when the caller
/// knows the configured names, otherwise a first-come cap.
#[derive(Debug, Default)]
pub(crate) struct LabelGuard {
    /// Grows on a config reload (a removed route's series stay, as
    /// counters must).
    allowed: RwLock<Option<HashSet<String>>>,
    seen: Mutex<HashSet<String>>,
}

impl LabelGuard {
    /// A guard that admits only `allowed` when given, otherwise the first
    /// [`MAX_LABEL_VALUES`] values it sees.
    pub(crate) fn new(allowed: Option<HashSet<String>>) -> LabelGuard {
        LabelGuard {
            allowed: RwLock::new(allowed),
            seen: Mutex::default(),
        }
    }

    /// Admits `names` too, when this guard keeps to an allow-list.
    pub(crate) fn allow(&self, names: impl IntoIterator<Item = String>) {
        let mut allowed = self.allowed.write().unwrap_or_else(|e| e.into_inner());
        if let Some(allowed) = allowed.as_mut() {
            allowed.extend(names);
        }
    }

    pub(crate) fn value(&self, raw: &str) -> String {
        let allowed = self.allowed.read().unwrap_or_else(|e| e.into_inner());
        if let Some(allowed) = allowed.as_ref() {
            return if allowed.contains(raw) {
                raw.to_string()
            } else {
                OTHER.to_string()
            };
        }
        // A poisoned lock only means another thread panicked mid-insert; the
        // set is still usable.
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(raw) {
            return raw.to_string();
        }
        if seen.len() < MAX_LABEL_VALUES {
            seen.insert(raw.to_string());
            raw.to_string()
        } else {
            OTHER.to_string()
        }
    }
}

pub(crate) fn client_format(format: &str) -> &'static str {
    match format {
        "openai" => "openai",
        "anthropic" => "anthropic",
        "openai-responses" => "openai-responses",
        // The gateway's own health probes.
        "probe" => "probe",
        _ => OTHER,
    }
}

pub(crate) fn cache_result(result: &str) -> &'static str {
    match result {
        "hit" => "hit",
        "miss" => "miss",
        "stale" => "stale",
        _ => OTHER,
    }
}

/// Each label's value as it may be exported; see [`LabelGuard`].
impl Metrics {
    pub(crate) fn route(&self, route: &str) -> String {
        self.routes.value(route)
    }

    pub(crate) fn target(&self, target: &str) -> String {
        self.targets.value(target)
    }

    pub(crate) fn class(&self, class: &str) -> String {
        self.classes.value(class)
    }

    pub(crate) fn feature(&self, feature: &str) -> String {
        self.features.value(feature)
    }
}
