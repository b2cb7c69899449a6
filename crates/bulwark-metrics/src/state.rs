//! Gauges of current state (breakers, components, queues, concurrency) and
//! the running totals other parts of the gateway keep themselves.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bulwark::observe::component::{ComponentKind, ComponentState};
use bulwark::resilience::breaker::BreakerState;
use prometheus_client::metrics::counter::Counter;

use crate::Metrics;
use crate::labels::{ComponentLabels, NotStoredLabels, RouteLabels, TargetLabels};

impl Metrics {
    pub fn set_breaker_state(&self, target: &str, state: BreakerState) {
        if self.is_forgotten(target) {
            return;
        }
        self.breaker_state
            .get_or_create(&TargetLabels {
                target: self.target(target),
            })
            .set(breaker_level(state));
    }

    pub fn set_component_state(&self, component: &str, kind: ComponentKind, state: ComponentState) {
        if self.is_forgotten(component) {
            return;
        }
        let component = match kind {
            ComponentKind::Target => self.target(component),
            ComponentKind::Route => self.route(component),
            // The gateway names its dependencies itself: a fixed few.
            ComponentKind::Dependency => component.to_string(),
        };
        self.component_state
            .get_or_create(&ComponentLabels {
                component,
                kind: kind.as_str(),
            })
            .set(i64::from(state.level()));
    }

    pub fn set_queue(&self, route: &str, depth: u64) {
        if self.is_forgotten(route) {
            return;
        }
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
        if self.is_forgotten(target) {
            return;
        }
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

    /// Takes the conversation store's running totals, like
    /// [`Metrics::set_store_stats`].
    pub fn set_conversation_stats(
        &self,
        stored: u64,
        too_large: u64,
        failed: u64,
        dropped: u64,
        over_budget: u64,
    ) {
        set_counter(&self.conversations_stored, stored);
        for (reason, count) in [
            ("too_large", too_large),
            ("failed", failed),
            ("dropped", dropped),
            ("over_budget", over_budget),
        ] {
            set_counter(
                &self
                    .conversations_not_stored
                    .get_or_create(&NotStoredLabels { reason }),
                count,
            );
        }
    }

    /// Takes the request memory budget's state: bytes reserved now, and
    /// requests shed since start.
    pub fn set_request_memory(&self, reserved: u64, shed: u64) {
        self.request_memory_reserved.set(clamp_i64(reserved));
        set_counter(&self.request_memory_shed, shed);
    }

    /// Takes the alerter's running totals, like [`Metrics::set_store_stats`].
    pub fn set_alert_stats(&self, delivered: u64, failed: u64, retried: u64) {
        set_counter(&self.alerts_delivered, delivered);
        set_counter(&self.alerts_failed, failed);
        set_counter(&self.alerts_retried, retried);
    }

    /// Takes the link to Redis's figures (`bulwark::shared::SharedStats`),
    /// like [`Metrics::set_store_stats`].
    pub fn set_shared_stats(
        &self,
        up: bool,
        instances: u32,
        fallbacks: u64,
        outages: u64,
        dropped: u64,
    ) {
        self.shared_up.set(i64::from(up));
        self.shared_instances.set(i64::from(instances));
        set_counter(&self.shared_fallbacks, fallbacks);
        set_counter(&self.shared_outages, outages);
        set_counter(&self.shared_dropped, dropped);
    }

    /// Whether this instance is the one judging health for all of them.
    pub fn set_health_leader(&self, leader: bool) {
        self.health_leader.set(i64::from(leader));
    }

    /// Takes the process's own figures, read when scraped (a field the
    /// platform cannot tell is left out rather than reported as 0).
    pub fn set_process_stats(&self, stats: &ProcessStats) {
        for (gauge, value) in [
            (&self.process_resident_bytes, stats.resident_bytes),
            (&self.process_peak_resident_bytes, stats.peak_resident_bytes),
            (&self.process_open_fds, stats.open_fds),
            (&self.process_threads, stats.threads),
            (&self.runtime_alive_tasks, stats.alive_tasks),
        ] {
            if let Some(value) = value {
                gauge.set(clamp_i64(value));
            }
        }
    }
}

fn breaker_level(state: BreakerState) -> i64 {
    match state {
        BreakerState::Closed => 0,
        BreakerState::HalfOpen => 1,
        BreakerState::Open => 2,
    }
}

fn clamp_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn set_counter(counter: &Counter, value: u64) {
    counter.inner().store(value, Ordering::Relaxed);
}

/// What the process knows of itself; see [`Metrics::set_process_stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessStats {
    pub resident_bytes: Option<u64>,
    pub peak_resident_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub threads: Option<u64>,
    pub alive_tasks: Option<u64>,
}
