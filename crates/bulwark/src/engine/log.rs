//! The attempt log: every upstream attempt as the request log sees it, and
//! as a `bulwark.attempt` tracing span.
//!
//! Each span is a child of the caller's current span (the gateway's
//! `bulwark.request`), so that a trace exporter installed by the binary shows
//! attempts, hedges included, without the engine depending on one.
//! Wall-clock times are derived from the runtime's clock, so they stay
//! consistent under paused test time.

use std::time::Duration;

use tokio::time::Instant;
use tracing::Span;

use crate::error::{UpstreamError, UpstreamFailure};
use crate::observe::record::AttemptRecord;
use crate::observe::{UnixMs, millis, unix_ms_now};
use crate::route::Target;

pub(super) struct AttemptLog {
    base: (Instant, UnixMs),
    /// The attempt in flight on each target, by the target's index.
    open: Vec<Option<OpenAttempt>>,
    done: Vec<AttemptRecord>,
}

#[derive(Clone)]
struct OpenAttempt {
    started: Instant,
    hedge: bool,
    span: Span,
}

impl AttemptLog {
    pub(super) fn new(targets: usize) -> AttemptLog {
        AttemptLog {
            base: (Instant::now(), unix_ms_now()),
            open: vec![None; targets],
            done: Vec::new(),
        }
    }

    /// Opens an attempt on the target at `index`; the span returned
    /// instruments the call.
    pub(super) fn start(&mut self, index: usize, target: &Target, hedge: bool) -> Span {
        let span = tracing::info_span!(
            "bulwark.attempt",
            "otel.kind" = "client",
            "otel.status_code" = tracing::field::Empty,
            "gen_ai.operation.name" = "chat",
            "gen_ai.provider.name" = target.provider.semconv_name(),
            "gen_ai.request.model" = %target.model,
            "bulwark.target" = %target.label,
            "bulwark.hedge" = hedge,
            "http.response.status_code" = tracing::field::Empty,
            "error.type" = tracing::field::Empty,
            "bulwark.first_token_ms" = tracing::field::Empty,
        );
        if let Some(slot) = self.open.get_mut(index) {
            *slot = Some(OpenAttempt {
                started: Instant::now(),
                hedge,
                span: span.clone(),
            });
        }
        span
    }

    fn unix_at(&self, at: Instant) -> UnixMs {
        self.base.1 + at.saturating_duration_since(self.base.0).as_millis() as i64
    }

    /// Closes the attempt on the target at `index`: `error` is `None` when
    /// it answered.
    pub(super) fn end(
        &mut self,
        index: usize,
        label: &str,
        first_token: Option<Duration>,
        error: Option<&UpstreamError>,
    ) {
        let Some(OpenAttempt {
            started,
            hedge,
            span,
        }) = self.open.get_mut(index).and_then(Option::take)
        else {
            return;
        };
        // Bulwark's own limits refused it before any call: the provider
        // never saw it, so it is no attempt on the provider.
        if error.is_some_and(|e| matches!(e.failure, UpstreamFailure::LimitReached)) {
            span.record("error.type", "not_sent");
            return;
        }
        let status = error.and_then(|e| match e.failure {
            UpstreamFailure::Status { status, .. } => Some(status),
            _ => None,
        });
        let record = AttemptRecord {
            target: label.to_string(),
            at: self.unix_at(started),
            latency_ms: millis(Instant::now().saturating_duration_since(started)),
            first_token_ms: first_token.map(millis),
            status: status.or(error.is_none().then_some(200)),
            error_class: error.map(|e| e.class().to_string()),
            hedge,
        };
        end_span(&span, &record);
        self.done.push(record);
    }

    /// Everything so far, with attempts still in flight closed as `class`
    /// (a hedge that lost the race, or a call the deadline cut short).
    pub(super) fn snapshot(&self, targets: &[Target], class: &str) -> Vec<AttemptRecord> {
        let now = Instant::now();
        let mut all = self.done.clone();
        for (index, open) in self.open.iter().enumerate() {
            if let Some(open) = open {
                let record = AttemptRecord {
                    target: targets
                        .get(index)
                        .map(|t| t.label.clone())
                        .unwrap_or_default(),
                    at: self.unix_at(open.started),
                    latency_ms: millis(now.saturating_duration_since(open.started)),
                    first_token_ms: None,
                    status: None,
                    error_class: Some(class.to_string()),
                    hedge: open.hedge,
                };
                end_span(&open.span, &record);
                all.push(record);
            }
        }
        all
    }
}

/// Puts an attempt's outcome on its span. The span is entered to do so:
/// tracing-opentelemetry ends a span at its last exit, and the call it
/// instruments may have returned well before the attempt is booked (a
/// complete answer is read after its first token).
fn end_span(span: &Span, record: &AttemptRecord) {
    span.in_scope(|| {
        // As i64: tracing-opentelemetry turns unsigned values into strings.
        if let Some(status) = record.status {
            span.record("http.response.status_code", i64::from(status));
        }
        if let Some(ms) = record.first_token_ms {
            span.record("bulwark.first_token_ms", ms);
        }
        if let Some(class) = &record.error_class {
            span.record("error.type", class.as_str());
            span.record("otel.status_code", "error");
        }
    });
}
