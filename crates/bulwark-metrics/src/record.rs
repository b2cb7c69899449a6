//! Counting finished requests and the engine's events.

use bulwark::events::Event;
use bulwark::observe::record::RequestRecord;

use crate::Metrics;
use crate::labels::{
    CacheLabels, DegradedLabels, DroppedLabels, DurationLabels, RequestLabels, RouteFormatLabels,
    RouteLabels, SkippedLabels, TargetLabels, TargetResultLabels, TokenLabels, TransitionLabels,
    cache_result, client_format,
};

impl Metrics {
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
                && let Some(cost) = self
                    .prices
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .cost(raw, input, output)
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

        if let Some(target) = &answered_by {
            for feature in &record.dropped {
                self.translation_dropped
                    .get_or_create(&DroppedLabels {
                        route: route.clone(),
                        target: target.clone(),
                        feature: self.feature(feature),
                    })
                    .inc();
            }
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
}

fn seconds(ms: f64) -> f64 {
    if ms.is_finite() && ms > 0.0 {
        ms / 1000.0
    } else {
        0.0
    }
}
