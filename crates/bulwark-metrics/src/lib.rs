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

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bulwark::events::Event;
use bulwark::observe::component::{ComponentKind, ComponentState};
use bulwark::observe::record::RequestRecord;
use bulwark::resilience::breaker::BreakerState;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Content type of [`Metrics::render`]'s output (Prometheus text 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Content type of [`Metrics::render_openmetrics`]'s output.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whole-request latency: a cached answer takes milliseconds, a long
/// completion with retries and fallbacks can take minutes.
pub const REQUEST_BUCKETS: [f64; 16] = [
    0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 20.0, 30.0, 60.0, 120.0,
];

/// Time to first token: what users feel, usually well under a few seconds,
/// with a long tail when providers queue.
pub const FIRST_TOKEN_BUCKETS: [f64; 15] = [
    0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0,
];

/// Admission-queue wait: zero when not overloaded; anything past the
/// route's queue timeout is shed, so seconds are enough at the top.
pub const QUEUE_WAIT_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Distinct values a label may take when no allow-list is configured,
/// before further values are folded into [`OTHER`]: keeps a misbehaving
/// client from exploding the series count.
pub const MAX_LABEL_VALUES: usize = 200;

/// The label value that stands for anything not allowed.
pub const OTHER: &str = "other";

/// USD per million tokens, input and output, by `provider/model` target.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prices {
    pub per_target: HashMap<String, (f64, f64)>,
}

impl Prices {
    /// The configured prices, re-keyed from per-provider model names to the
    /// `provider/model` target labels records carry.
    pub fn from_config(config: &bulwark::Config) -> Prices {
        let per_target = config
            .providers
            .iter()
            .flat_map(|(provider, p)| {
                p.prices.iter().map(move |(model, price)| {
                    (format!("{provider}/{model}"), (price.input, price.output))
                })
            })
            .collect();
        Prices { per_target }
    }

    /// Cost of a call's tokens, if the target has a price.
    pub fn cost(&self, target: &str, input_tokens: u64, output_tokens: u64) -> Option<f64> {
        let (input, output) = self.per_target.get(target)?;
        Some((input_tokens as f64 * input + output_tokens as f64 * output) / 1_000_000.0)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    target: String,
    outcome: &'static str,
    format: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    route: String,
    format: &'static str,
    stream: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteFormatLabels {
    route: String,
    format: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetResultLabels {
    target: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    target: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    route: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DegradedLabels {
    route: String,
    how: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    target: String,
    to: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SkippedLabels {
    target: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComponentLabels {
    component: String,
    kind: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_BUCKETS)
}

fn first_token_histogram() -> Histogram {
    Histogram::new(FIRST_TOKEN_BUCKETS)
}

fn queue_wait_histogram() -> Histogram {
    Histogram::new(QUEUE_WAIT_BUCKETS)
}

/// Keeps one label's set of values small: an allow-list when the caller
/// knows the configured names, otherwise a first-come cap.
#[derive(Debug, Default)]
struct LabelGuard {
    allowed: Option<HashSet<String>>,
    seen: Mutex<HashSet<String>>,
}

impl LabelGuard {
    fn value(&self, raw: &str) -> String {
        if let Some(allowed) = &self.allowed {
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

fn client_format(format: &str) -> &'static str {
    match format {
        "openai" => "openai",
        "anthropic" => "anthropic",
        // The gateway's own health probes.
        "probe" => "probe",
        _ => OTHER,
    }
}

fn cache_result(result: &str) -> &'static str {
    match result {
        "hit" => "hit",
        "miss" => "miss",
        "stale" => "stale",
        _ => OTHER,
    }
}

fn breaker_level(state: BreakerState) -> i64 {
    match state {
        BreakerState::Closed => 0,
        BreakerState::HalfOpen => 1,
        BreakerState::Open => 2,
    }
}

/// The metrics of one gateway instance. Cheap to update from many tasks at
/// once; share it through an `Arc`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    prices: Prices,
    routes: LabelGuard,
    targets: LabelGuard,
    classes: LabelGuard,

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

    alerts_delivered: Counter,
    alerts_failed: Counter,
    alerts_retried: Counter,
}

impl Metrics {
    /// Metrics that accept any route and target name up to
    /// [`MAX_LABEL_VALUES`] each; prefer [`Metrics::with_names`] when the
    /// configuration is at hand.
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
        Metrics::with_names(prices, config.routes.keys().cloned(), targets)
    }

    fn build(
        prices: Prices,
        routes: Option<HashSet<String>>,
        targets: Option<HashSet<String>>,
    ) -> Metrics {
        let mut registry = Registry::with_prefix("bulwark");
        let m = Metrics {
            prices,
            routes: LabelGuard {
                allowed: routes,
                ..LabelGuard::default()
            },
            targets: LabelGuard {
                allowed: targets,
                ..LabelGuard::default()
            },
            classes: LabelGuard::default(),
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
            store_written: Counter::default(),
            store_dropped: Counter::default(),
            store_failed_batches: Counter::default(),
            store_pending: Gauge::default(),
            store_up: Gauge::default(),
            alerts_delivered: Counter::default(),
            alerts_failed: Counter::default(),
            alerts_retried: Counter::default(),
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
        Metrics { registry, ..m }
    }

    fn route(&self, route: &str) -> String {
        self.routes.value(route)
    }

    fn target(&self, target: &str) -> String {
        self.targets.value(target)
    }

    fn class(&self, class: &str) -> String {
        self.classes.value(class)
    }

    /// Counts one finished request and its attempts.
    pub fn record(&self, record: &RequestRecord) {
        let route = self.route(&record.route);
        let format = client_format(&record.client_format);
        let answered_by = record.target.as_deref().map(|t| self.target(t));

        self.requests
            .get_or_create(&RequestLabels {
                route: route.clone(),
                target: answered_by.clone().unwrap_or_else(|| "none".to_string()),
                outcome: record.outcome(),
                format,
            })
            .inc();
        self.request_duration
            .get_or_create(&DurationLabels {
                route: route.clone(),
                format,
                stream: if record.stream { "true" } else { "false" },
            })
            .observe(seconds(record.latency_ms));
        if let Some(ms) = record.first_token_ms {
            self.first_token
                .get_or_create(&RouteFormatLabels {
                    route: route.clone(),
                    format,
                })
                .observe(seconds(ms));
        }

        let mut previous: Option<&str> = None;
        for attempt in &record.attempts {
            let target = self.target(&attempt.target);
            let result = match &attempt.error_class {
                None => "ok".to_string(),
                Some(class) => self.class(class),
            };
            self.attempts
                .get_or_create(&TargetResultLabels {
                    target: target.clone(),
                    result,
                })
                .inc();
            if attempt.hedge {
                self.hedges.get_or_create(&TargetLabels { target }).inc();
            } else {
                // A hedge runs beside the attempt it shadows, so it is
                // neither a retry nor what a later retry repeats.
                if previous == Some(attempt.target.as_str()) {
                    self.retries.get_or_create(&TargetLabels { target }).inc();
                }
                previous = Some(&attempt.target);
            }
        }

        if record.fallback {
            self.fallbacks
                .get_or_create(&RouteLabels {
                    route: route.clone(),
                })
                .inc();
        }

        if let Some(target) = &answered_by {
            let input = record.input_tokens.unwrap_or(0);
            let output = record.output_tokens.unwrap_or(0);
            if input > 0 {
                self.tokens
                    .get_or_create(&TokenLabels {
                        target: target.clone(),
                        direction: "input",
                    })
                    .inc_by(input);
            }
            if output > 0 {
                self.tokens
                    .get_or_create(&TokenLabels {
                        target: target.clone(),
                        direction: "output",
                    })
                    .inc_by(output);
            }
            // Prices are looked up by the raw name: a folded `other` has none.
            if let Some(raw) = &record.target
                && let Some(cost) = self.prices.cost(raw, input, output)
                && cost > 0.0
            {
                self.cost
                    .get_or_create(&TargetLabels {
                        target: target.clone(),
                    })
                    .inc_by(cost);
            }
        }

        if let Some(result) = &record.cache {
            self.cache
                .get_or_create(&CacheLabels {
                    route: route.clone(),
                    result: cache_result(result),
                })
                .inc();
        }

        if let Some(how) = &record.degraded {
            let how = match how.as_str() {
                "stale-cache" | "static" => how.clone(),
                target => self.target(target),
            };
            self.degraded
                .get_or_create(&DegradedLabels { route, how })
                .inc();
        }
    }

    /// Counts the engine decisions a request record does not show. Events
    /// the record already covers (attempts, cache, degraded, served) are
    /// ignored so nothing is counted twice.
    pub fn on_event(&self, event: &Event) {
        match event {
            Event::RetryBudgetExhausted { target } => {
                self.retry_budget_exhausted
                    .get_or_create(&TargetLabels {
                        target: self.target(target),
                    })
                    .inc();
            }
            Event::Breaker { target, to, .. } => {
                self.breaker_transitions
                    .get_or_create(&TransitionLabels {
                        target: self.target(target),
                        to: to.as_str(),
                    })
                    .inc();
                self.set_breaker_state(target, *to);
            }
            Event::Shed { route } => {
                self.shed
                    .get_or_create(&RouteLabels {
                        route: self.route(route),
                    })
                    .inc();
            }
            Event::Skipped { target, reason, .. } => {
                self.skipped
                    .get_or_create(&SkippedLabels {
                        target: self.target(target),
                        reason: self.class(reason),
                    })
                    .inc();
            }
            Event::Continued { route, .. } => {
                self.continued
                    .get_or_create(&RouteLabels {
                        route: self.route(route),
                    })
                    .inc();
            }
            Event::Misconfigured { target } => {
                self.misconfigured
                    .get_or_create(&TargetLabels {
                        target: self.target(target),
                    })
                    .inc();
            }
            Event::Admitted { route, waited } => self.observe_queue_wait(route, *waited),
            Event::AttemptFailed { .. }
            | Event::Hedged { .. }
            | Event::Degraded { .. }
            | Event::Cache { .. }
            | Event::Served { .. } => {}
        }
    }

    pub fn set_breaker_state(&self, target: &str, state: BreakerState) {
        self.breaker_state
            .get_or_create(&TargetLabels {
                target: self.target(target),
            })
            .set(breaker_level(state));
    }

    pub fn set_component_state(&self, component: &str, kind: ComponentKind, state: ComponentState) {
        let component = match kind {
            ComponentKind::Target => self.target(component),
            ComponentKind::Route => self.route(component),
        };
        self.component_state
            .get_or_create(&ComponentLabels {
                component,
                kind: kind.as_str(),
            })
            .set(i64::from(state.level()));
    }

    pub fn set_queue(&self, route: &str, depth: u64) {
        self.queue_depth
            .get_or_create(&RouteLabels {
                route: self.route(route),
            })
            .set(clamp_i64(depth));
    }

    pub fn observe_queue_wait(&self, route: &str, wait: Duration) {
        self.queue_wait
            .get_or_create(&RouteLabels {
                route: self.route(route),
            })
            .observe(wait.as_secs_f64());
    }

    pub fn set_concurrency(&self, target: &str, limit: u64, in_flight: u64) {
        let labels = TargetLabels {
            target: self.target(target),
        };
        self.concurrency_limit
            .get_or_create(&labels)
            .set(clamp_i64(limit));
        self.in_flight
            .get_or_create(&labels)
            .set(clamp_i64(in_flight));
    }

    /// Takes the store writer's own running totals. They are exported as
    /// counters (they only grow while the writer lives; a new writer
    /// starting from zero reads as a counter reset, which `rate()` handles),
    /// so the absolute value is stored rather than added.
    pub fn set_store_stats(
        &self,
        written: u64,
        dropped: u64,
        failed_batches: u64,
        pending: u64,
        up: bool,
    ) {
        set_counter(&self.store_written, written);
        set_counter(&self.store_dropped, dropped);
        set_counter(&self.store_failed_batches, failed_batches);
        self.store_pending.set(clamp_i64(pending));
        self.store_up.set(i64::from(up));
    }

    /// Takes the alerter's running totals, like [`Metrics::set_store_stats`].
    pub fn set_alert_stats(&self, delivered: u64, failed: u64, retried: u64) {
        set_counter(&self.alerts_delivered, delivered);
        set_counter(&self.alerts_failed, failed);
        set_counter(&self.alerts_retried, retried);
    }

    /// The Prometheus text format (0.0.4); serve with [`CONTENT_TYPE`].
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; an error here would be an
        // encoder bug, and a partial page is better than none.
        if let Err(error) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            tracing::error!(%error, "encoding metrics failed");
        }
        out
    }

    /// The OpenMetrics text format; serve with [`OPENMETRICS_CONTENT_TYPE`].
    pub fn render_openmetrics(&self) -> String {
        let mut out = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(%error, "encoding metrics failed");
        }
        out
    }
}

fn seconds(ms: f64) -> f64 {
    if ms.is_finite() && ms > 0.0 {
        ms / 1000.0
    } else {
        0.0
    }
}

fn clamp_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn set_counter(counter: &Counter, value: u64) {
    counter.inner().store(value, Ordering::Relaxed);
}

#[cfg(test)]
mod tests;
