//! Building a [`Metrics`]: its label guards and the registration of every
//! metric under its exported name and help text.

use std::collections::HashSet;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::buckets::{first_token_histogram, queue_wait_histogram, request_histogram};
use crate::labels::{LabelGuard, ReloadLabels};
use crate::{Metrics, Prices};

impl Metrics {
    /// Metrics that accept any route and target name up to
    /// [`MAX_LABEL_VALUES`](crate::MAX_LABEL_VALUES) each; prefer
    /// [`Metrics::with_names`] when the configuration is at hand.
    pub fn new(prices: Prices) -> Metrics {
        Metrics::build(prices, None, None)
    }

    /// Metrics whose `route` and `target` labels only take the configured
    /// names (anything else becomes `other`). `static` and `cache` are
    /// always allowed as targets since records use them for answers that
    /// came from no provider.
    pub fn with_names(
        prices: Prices,
        routes: impl IntoIterator<Item = String>,
        targets: impl IntoIterator<Item = String>,
    ) -> Metrics {
        let routes = routes.into_iter().collect();
        let mut targets: HashSet<String> = targets.into_iter().collect();
        targets.insert("static".to_string());
        targets.insert("cache".to_string());
        Metrics::build(prices, Some(routes), Some(targets))
    }

    /// Metrics limited to the configuration's routes and targets (those of
    /// routes, degrade lists and priced models), with its prices.
    pub fn from_config(config: &bulwark::Config) -> Metrics {
        let (prices, routes, targets) = names(config);
        Metrics::with_names(prices, routes, targets)
    }

    fn build(
        prices: Prices,
        routes: Option<HashSet<String>>,
        targets: Option<HashSet<String>>,
    ) -> Metrics {
        let mut registry = Registry::with_prefix("bulwark");
        let m = Metrics {
            prices: std::sync::RwLock::new(prices),
            routes: LabelGuard::new(routes),
            targets: LabelGuard::new(targets),
            classes: LabelGuard::new(None),
            features: LabelGuard::new(None),
            requests: Family::default(),
            request_duration: Family::new_with_constructor(request_histogram),
            first_token: Family::new_with_constructor(first_token_histogram),
            attempts: Family::default(),
            retries: Family::default(),
            fallbacks: Family::default(),
            hedges: Family::default(),
            tokens: Family::default(),
            cost: Family::default(),
            cache: Family::default(),
            degraded: Family::default(),
            translation_dropped: Family::default(),
            retry_budget_exhausted: Family::default(),
            breaker_transitions: Family::default(),
            shed: Family::default(),
            skipped: Family::default(),
            continued: Family::default(),
            misconfigured: Family::default(),
            breaker_state: Family::default(),
            component_state: Family::default(),
            queue_depth: Family::default(),
            queue_wait: Family::new_with_constructor(queue_wait_histogram),
            concurrency_limit: Family::default(),
            in_flight: Family::default(),
            conversations_stored: Counter::default(),
            conversations_not_stored: Family::default(),
            request_memory_reserved: Gauge::default(),
            request_memory_shed: Counter::default(),
            store_written: Counter::default(),
            store_dropped: Counter::default(),
            store_failed_batches: Counter::default(),
            store_pending: Gauge::default(),
            store_up: Gauge::default(),
            alerts_delivered: Counter::default(),
            alerts_failed: Counter::default(),
            alerts_retried: Counter::default(),
            shared_up: Gauge::default(),
            shared_instances: Gauge::default(),
            shared_fallbacks: Counter::default(),
            shared_outages: Counter::default(),
            shared_dropped: Counter::default(),
            health_leader: Gauge::default(),
            process_resident_bytes: Gauge::default(),
            process_peak_resident_bytes: Gauge::default(),
            process_open_fds: Gauge::default(),
            process_threads: Gauge::default(),
            runtime_alive_tasks: Gauge::default(),
            config_reloads: Family::default(),
            config_applied_at: Gauge::default(),
            forgotten: std::sync::RwLock::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "requests",
            "Requests answered, by route, answering target, outcome and client format",
            m.requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time from a request's arrival to its last byte",
            m.request_duration.clone(),
        );
        r.register(
            "time_to_first_token_seconds",
            "Time from a request's arrival to the first content byte sent",
            m.first_token.clone(),
        );
        r.register(
            "attempts",
            "Upstream attempts, by target and result (ok or the failure class)",
            m.attempts.clone(),
        );
        r.register(
            "retries",
            "Attempts on the same target as the request's previous attempt",
            m.retries.clone(),
        );
        r.register(
            "fallbacks",
            "Requests answered by a target other than the route's first",
            m.fallbacks.clone(),
        );
        r.register(
            "hedges",
            "Hedge attempts started beside a slow attempt, by the hedge's target",
            m.hedges.clone(),
        );
        r.register(
            "tokens",
            "Tokens of answered requests, by answering target and direction",
            m.tokens.clone(),
        );
        r.register(
            "cost_usd",
            "Estimated spend in US dollars from configured prices, by target",
            m.cost.clone(),
        );
        r.register(
            "cache",
            "Cache lookups, by route and result",
            m.cache.clone(),
        );
        r.register(
            "degraded",
            "Requests answered degraded, by route and how",
            m.degraded.clone(),
        );
        r.register(
            "translation_dropped",
            "Request features left out because the answering target's format cannot carry them, by route, target and feature",
            m.translation_dropped.clone(),
        );
        r.register(
            "retry_budget_exhausted",
            "Times a target's retry budget was spent and the engine moved on",
            m.retry_budget_exhausted.clone(),
        );
        r.register(
            "breaker_transitions",
            "Circuit breaker state changes, by target and new state",
            m.breaker_transitions.clone(),
        );
        r.register(
            "shed",
            "Requests shed by a route's admission queue",
            m.shed.clone(),
        );
        r.register(
            "skipped",
            "Targets passed over without a call, by reason",
            m.skipped.clone(),
        );
        r.register(
            "stream_continuations",
            "Broken streams continued on another target",
            m.continued.clone(),
        );
        r.register(
            "misconfigured",
            "Calls whose credentials the provider refused",
            m.misconfigured.clone(),
        );
        r.register(
            "breaker_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open",
            m.breaker_state.clone(),
        );
        r.register(
            "component_state",
            "Component state: 0 operational, 1 under maintenance, 2 degraded performance, 3 partial outage, 4 major outage",
            m.component_state.clone(),
        );
        r.register(
            "queue_depth",
            "Requests waiting in a route's admission queue",
            m.queue_depth.clone(),
        );
        r.register(
            "queue_wait_seconds",
            "Time requests waited in a route's admission queue",
            m.queue_wait.clone(),
        );
        r.register(
            "concurrency_limit",
            "Current adaptive concurrency limit of a target",
            m.concurrency_limit.clone(),
        );
        r.register(
            "in_flight",
            "Calls currently in flight to a target",
            m.in_flight.clone(),
        );
        r.register(
            "conversations_stored",
            "Responses API answers stored with their conversation (for previous_response_id)",
            m.conversations_stored.clone(),
        );
        r.register(
            "conversations_not_stored",
            "Responses API answers whose conversation was not stored, by reason: too_large (over conversations.max_bytes), failed (the store failed), dropped (too many writes waiting), over_budget (over conversations.max_bytes_per_key)",
            m.conversations_not_stored.clone(),
        );
        r.register(
            "request_memory_reserved_bytes",
            "Memory reserved by requests in flight for their bodies and parsing (against server.max_inflight_request_bytes)",
            m.request_memory_reserved.clone(),
        );
        r.register(
            "requests_shed_memory",
            "Requests refused with 503 because server.max_inflight_request_bytes was spent",
            m.request_memory_shed.clone(),
        );
        r.register(
            "store_rows_written",
            "Request-log rows the store has written",
            m.store_written.clone(),
        );
        r.register(
            "store_rows_dropped",
            "Request-log rows dropped because the store's queue was full",
            m.store_dropped.clone(),
        );
        r.register(
            "store_failed_batches",
            "Store write batches that failed",
            m.store_failed_batches.clone(),
        );
        r.register(
            "store_pending_rows",
            "Request-log rows waiting to be written",
            m.store_pending.clone(),
        );
        r.register(
            "store_up",
            "Whether the store's last write succeeded (1) or not (0)",
            m.store_up.clone(),
        );
        r.register(
            "alerts_delivered",
            "Alert webhooks delivered",
            m.alerts_delivered.clone(),
        );
        r.register(
            "alerts_failed",
            "Alert webhooks given up on",
            m.alerts_failed.clone(),
        );
        r.register(
            "alerts_retried",
            "Alert webhook deliveries retried",
            m.alerts_retried.clone(),
        );
        r.register(
            "shared_up",
            "Whether Redis, the state instances share, is reachable (1) or each instance uses its local state (0)",
            m.shared_up.clone(),
        );
        r.register(
            "shared_instances",
            "Gateway instances heard from lately through Redis, this one included",
            m.shared_instances.clone(),
        );
        r.register(
            "shared_fallbacks",
            "Redis calls answered from local state because Redis was down or slow",
            m.shared_fallbacks.clone(),
        );
        r.register(
            "shared_outages",
            "Times Redis was found down",
            m.shared_outages.clone(),
        );
        r.register(
            "shared_dropped",
            "Best-effort Redis calls (the response cache's) that failed or timed out: a miss or an unshared answer, Redis not marked down",
            m.shared_dropped.clone(),
        );
        r.register(
            "health_leader",
            "Whether this instance holds the health lease (1): the one that opens incidents and sends alerts",
            m.health_leader.clone(),
        );
        r.register(
            "process_resident_memory_bytes",
            "Resident memory of the gateway process (VmRSS), read when scraped",
            m.process_resident_bytes.clone(),
        );
        r.register(
            "process_peak_resident_memory_bytes",
            "Peak resident memory of the gateway process since it started (VmHWM)",
            m.process_peak_resident_bytes.clone(),
        );
        r.register(
            "process_open_fds",
            "File descriptors the gateway process holds open (sockets, the store, logs)",
            m.process_open_fds.clone(),
        );
        r.register(
            "process_threads",
            "Operating-system threads of the gateway process",
            m.process_threads.clone(),
        );
        r.register(
            "runtime_alive_tasks",
            "Async tasks alive in the gateway's runtime: a count that only grows means a leak",
            m.runtime_alive_tasks.clone(),
        );
        r.register(
            "config_reloads",
            "Config reloads, by result: applied, or refused (the old config kept serving)",
            m.config_reloads.clone(),
        );
        r.register(
            "config_last_applied_timestamp_seconds",
            "When the config now serving was applied (at start or by a reload), in Unix seconds",
            m.config_applied_at.clone(),
        );
        // Both results from the start, so that a rate over them is defined
        // before the first reload.
        for result in ["applied", "refused"] {
            drop(m.config_reloads.get_or_create(&ReloadLabels { result }));
        }
        Metrics { registry, ..m }
    }
}

/// The prices, route names and target names (those of routes, degrade
/// lists and priced models) of a config.
pub(crate) fn names(config: &bulwark::Config) -> (Prices, Vec<String>, HashSet<String>) {
    let mut targets: HashSet<String> = HashSet::new();
    for route in config.routes.values() {
        targets.extend(route.targets.iter().map(ToString::to_string));
        for degrade in &route.degrade {
            if let bulwark::config::Degrade::Target(t) = degrade {
                targets.insert(t.to_string());
            }
        }
    }
    let prices = Prices::from_config(config);
    targets.extend(prices.per_target.keys().cloned());
    (prices, config.routes.keys().cloned().collect(), targets)
}
