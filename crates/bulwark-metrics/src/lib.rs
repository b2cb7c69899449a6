//! Prometheus metrics for one gateway instance.
//!
//! Each [`Metrics`] owns its own [`Registry`] instead of installing a global
//! recorder, so several gateways can run in one process (as the tests do)
//! without mixing their numbers.
//!
//! Label values only ever come from configuration (route and target names)
//! or from fixed vocabularies (outcomes, error classes, cache results), never
//! from request content: a route name for an unmatched request is the model
//! the client asked for, so names outside the configured sets (or beyond a
//! cap when no set is configured) are folded into `other`.
//!
//! [`Metrics::render`] produces the Prometheus text format 0.0.4 (served
//! with [`CONTENT_TYPE`]): Prometheus scrapes it as well as OpenMetrics, and
//! it is what `promtool check metrics` validates. [`Metrics::render_openmetrics`]
//! is there for scrapers that ask for OpenMetrics.
//!
//! Every metric, its type, labels and meaning is listed in `METRICS.md`
//! next to this crate's `Cargo.toml`.

mod buckets;
mod construct;
mod labels;
mod prices;
mod record;
mod reload;
mod render;
mod state;

pub use buckets::{FIRST_TOKEN_BUCKETS, QUEUE_WAIT_BUCKETS, REQUEST_BUCKETS};
pub use labels::{MAX_LABEL_VALUES, OTHER};
pub use prices::Prices;
pub use state::ProcessStats;

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use buckets::HistogramFamily;
use labels::{
    CacheLabels, ComponentLabels, DegradedLabels, DroppedLabels, DurationLabels, LabelGuard,
    NotStoredLabels, ReloadLabels, RequestLabels, RouteFormatLabels, RouteLabels, SkippedLabels,
    TargetLabels, TargetResultLabels, TokenLabels, TransitionLabels,
};

/// Content type of [`Metrics::render`]'s output (Prometheus text 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Content type of [`Metrics::render_openmetrics`]'s output.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The metrics of one gateway instance. Cheap to update from many tasks at
/// once; share it through an `Arc`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Swapped whole by a config reload.
    prices: std::sync::RwLock<Prices>,
    routes: LabelGuard,
    targets: LabelGuard,
    classes: LabelGuard,
    /// Translation features (`wire::translate`), capped like classes: a
    /// stored record could carry any text.
    features: LabelGuard,

    requests: Family<RequestLabels, Counter>,
    request_duration: HistogramFamily<DurationLabels>,
    first_token: HistogramFamily<RouteFormatLabels>,
    attempts: Family<TargetResultLabels, Counter>,
    retries: Family<TargetLabels, Counter>,
    fallbacks: Family<RouteLabels, Counter>,
    hedges: Family<TargetLabels, Counter>,
    tokens: Family<TokenLabels, Counter>,
    cost: Family<TargetLabels, Counter<f64, AtomicU64>>,
    cache: Family<CacheLabels, Counter>,
    degraded: Family<DegradedLabels, Counter>,
    translation_dropped: Family<DroppedLabels, Counter>,

    retry_budget_exhausted: Family<TargetLabels, Counter>,
    breaker_transitions: Family<TransitionLabels, Counter>,
    shed: Family<RouteLabels, Counter>,
    skipped: Family<SkippedLabels, Counter>,
    continued: Family<RouteLabels, Counter>,
    misconfigured: Family<TargetLabels, Counter>,

    breaker_state: Family<TargetLabels, Gauge>,
    component_state: Family<ComponentLabels, Gauge>,
    queue_depth: Family<RouteLabels, Gauge>,
    queue_wait: HistogramFamily<RouteLabels>,
    concurrency_limit: Family<TargetLabels, Gauge>,
    in_flight: Family<TargetLabels, Gauge>,

    store_written: Counter,
    store_dropped: Counter,
    store_failed_batches: Counter,
    store_pending: Gauge,
    store_up: Gauge,

    conversations_stored: Counter,
    conversations_not_stored: Family<NotStoredLabels, Counter>,

    request_memory_reserved: Gauge,
    request_memory_shed: Counter,

    alerts_delivered: Counter,
    alerts_failed: Counter,
    alerts_retried: Counter,

    shared_up: Gauge,
    shared_instances: Gauge,
    shared_fallbacks: Counter,
    shared_outages: Counter,
    shared_dropped: Counter,
    health_leader: Gauge,

    process_resident_bytes: Gauge,
    process_peak_resident_bytes: Gauge,
    process_open_fds: Gauge,
    process_threads: Gauge,
    runtime_alive_tasks: Gauge,
    config_reloads: Family<ReloadLabels, Counter>,
    config_applied_at: Gauge,
    /// Targets and routes a reload removed: their state gauges are not made
    /// again by a late event from a request that was still running on them.
    forgotten: std::sync::RwLock<std::collections::HashSet<String>>,
}

#[cfg(test)]
mod tests;
