//! Logging, and OpenTelemetry traces for `serve` when the config has `otel:`.
//!
//! The engine and gateway emit plain `tracing` spans (`bulwark.request`,
//! `bulwark.attempt`); only this binary knows about OpenTelemetry. `serve`
//! installs the subscriber once it has read the config and so knows where
//! traces go; every other command installs it at once. The OTLP layer sits
//! in the subscriber directly, not behind a reload handle, because taking a
//! client's `traceparent` as a span's parent needs to reach the layer
//! through the subscriber, which a reload layer does not allow. Without an
//! exporter those spans are disabled outright (in text logs), so they cost
//! nothing and log lines look the same with or without tracing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use bulwark::observe::propagate::{Propagator, TRACEPARENT};
use bulwark_gateway::config::OtelConfig;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use tracing::Metadata;
use tracing::level_filters::LevelFilter;
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt as _};
use tracing_subscriber::filter::{EnvFilter, FilterExt, filter_fn};
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use crate::LogFormat;

/// The OTLP layer, made by [`Traces::start`] and installed by
/// [`init_subscriber`].
pub type OtelLayer = OpenTelemetryLayer<Registry, SdkTracer>;

/// Whether spans are being exported. Read by the OTLP layer's filter, so
/// that without an exporter (or after it has shut down) the spans are not
/// even created.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// How long the last export may take at shutdown. Past it, spans are lost
/// rather than holding up the exit.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Installs the global subscriber: log lines on stderr by `filter`, in
/// `format`, and the OTLP layer when traces are exported.
pub fn init_subscriber(filter: EnvFilter, format: LogFormat, otel: Option<OtelLayer>) {
    let traced = filter_fn(|meta| EXPORTING.load(Ordering::Relaxed) && is_traced(meta))
        .with_max_level_hint(LevelFilter::INFO);
    let (text, json) = match format {
        // The trace spans stay out of text lines, which keep their usual shape.
        LogFormat::Text => (
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_filter(
                        filter.and(filter_fn(|meta| !(meta.is_span() && is_traced(meta)))),
                    ),
            ),
            None,
        ),
        // In JSON they are the point: every line inside a request carries
        // its spans' fields (the request id among them), and each request
        // and attempt writes a line as it ends, with its outcome. They are
        // then made even when no traces are exported, which text avoids.
        LogFormat::Json => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    // The current span, and the list of every span it is
                    // in: an attempt's lines carry its request's id too.
                    .with_current_span(true)
                    .with_span_list(true)
                    .with_span_events(FmtSpan::CLOSE)
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            ),
        ),
    };
    tracing_subscriber::registry()
        .with(otel.with_filter(traced))
        .with(text)
        .with(json)
        .init();
}

/// What goes to the collector: Bulwark's request and attempt spans, and the
/// warnings and errors logged inside them (as span events).
fn is_traced(meta: &Metadata<'_>) -> bool {
    if meta.is_span() {
        meta.name().starts_with("bulwark.") && *meta.level() <= tracing::Level::INFO
    } else {
        *meta.level() <= tracing::Level::WARN
    }
}

/// The running exporter, if any; [`Traces::shutdown`] sends what is left.
pub struct Traces(Option<SdkTracerProvider>);

impl Traces {
    /// Starts exporting to `config`'s collector; does nothing without one.
    /// The batch processor runs on its own thread with a blocking HTTP
    /// client, so exports never compete with requests on the runtime.
    /// The layer returned goes to [`init_subscriber`]; spans are exported
    /// from then on.
    pub fn start(config: Option<&OtelConfig>) -> anyhow::Result<(Traces, Option<OtelLayer>)> {
        let Some(config) = config else {
            return Ok((Traces(None), None));
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(config.traces_url())
            .with_headers(
                config
                    .headers
                    .iter()
                    .map(|(name, value)| (name.clone(), value.expose().to_string()))
                    .collect(),
            )
            .build()
            .context("cannot set up the OTLP trace exporter")?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                config.sample_ratio,
            ))))
            .with_resource(
                Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .build(),
            )
            .build();
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("bulwark"))
            .with_tracked_inactivity(false);
        // Enabled before the subscriber is installed, which is when the
        // layer's filter is first asked about each callsite.
        EXPORTING.store(true, Ordering::Relaxed);
        // A `traceparent` taken or sent now names exported spans.
        bulwark::observe::propagate::install(Box::new(W3cTraceContext));
        Ok((Traces(Some(provider)), Some(layer)))
    }

    /// Stops tracing and sends the spans still buffered, within
    /// [`SHUTDOWN_TIMEOUT`]. The SDK blocks while it flushes, so it does so
    /// off the runtime's worker threads.
    pub async fn shutdown(self) {
        let Some(provider) = self.0 else {
            return;
        };
        EXPORTING.store(false, Ordering::Relaxed);
        // Callsites cache the filter's answer: asked again, it now says no.
        tracing::callsite::rebuild_interest_cache();
        let flushed =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT))
                .await;
        match flushed {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("the last traces may not have been sent: {e}"),
            Err(e) => tracing::warn!("the last traces may not have been sent: {e}"),
        }
    }
}

/// `traceparent` through OpenTelemetry's W3C propagator and the spans'
/// OpenTelemetry contexts.
struct W3cTraceContext;

impl Propagator for W3cTraceContext {
    fn set_parent(&self, span: &tracing::Span, traceparent: &str) {
        let carrier = HashMap::from([(TRACEPARENT.to_string(), traceparent.to_string())]);
        let parent = TraceContextPropagator::new().extract(&carrier);
        // An unparsable value extracts as an empty context: the span stays
        // a root rather than joining a trace that does not exist.
        if parent.span().span_context().is_valid() {
            // Only fails once the span has started, which it has not: it
            // was made for this request a moment ago.
            let _ = span.set_parent(parent);
        }
    }

    fn traceparent(&self, span: &tracing::Span) -> Option<String> {
        let mut carrier = HashMap::new();
        TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
        carrier.remove(TRACEPARENT)
    }
}
