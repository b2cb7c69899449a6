//! Building a request's record as it goes: opened when the request
//! arrives, closed when the answer is sent (or, for a stream, when its last
//! byte is, or the client goes away).
//!
//! The request's `bulwark.request` tracing span lives and ends with its
//! record, and takes its outcome from it, so that a trace and the request
//! log never disagree. The binary exports it over OTLP when configured.

use std::sync::Arc;

use bulwark::api::{ChatRequest, StreamEvent};
use bulwark::cache::CacheStatus;
use bulwark::engine::{Failed, Served};
use bulwark::error::{ApiError, ErrorKind};
use bulwark::observe::record::{
    AttemptRecord, MAX_LOGGED_BODY, MAX_LOGGED_NAME, RequestRecord, capped, capped_body,
};
use bulwark::observe::{UnixMs, millis, unix_ms_now};
use bulwark::provider::Chunk;
use tokio::time::Instant;
use tracing::Span;

use super::Observer;
use crate::ClientFormat;

/// A request under way.
#[derive(Debug)]
pub struct Pending {
    observer: Arc<Observer>,
    /// The log row's own id, unique.
    id: String,
    /// The client's sane `x-request-id`, if it sent one.
    client_id: Option<String>,
    started: Instant,
    at: UnixMs,
    format: ClientFormat,
    route: String,
    stream: bool,
    key_id: Option<String>,
    body: Option<String>,
    span: Span,
}

impl Pending {
    /// `client_id` is the client's `x-request-id`, already checked as sane
    /// (see `front_door::client_request_id`).
    pub fn new(
        observer: Arc<Observer>,
        format: ClientFormat,
        client_id: Option<String>,
    ) -> Pending {
        let id = format!("req_{:016x}", fastrand::u64(..));
        let request_id = client_id.as_deref().unwrap_or(&id);
        let span = tracing::info_span!(
            "bulwark.request",
            "bulwark.request_id" = request_id,
            "otel.kind" = "server",
            "otel.status_code" = tracing::field::Empty,
            "gen_ai.operation.name" = "chat",
            "gen_ai.request.model" = tracing::field::Empty,
            "bulwark.client_format" = format.as_str(),
            "bulwark.stream" = tracing::field::Empty,
            "http.response.status_code" = tracing::field::Empty,
            "error.type" = tracing::field::Empty,
            "bulwark.outcome" = tracing::field::Empty,
            "bulwark.attempts" = tracing::field::Empty,
            "bulwark.target" = tracing::field::Empty,
            "bulwark.fallback" = tracing::field::Empty,
            "bulwark.cache" = tracing::field::Empty,
            "bulwark.degraded" = tracing::field::Empty,
        );
        Pending {
            observer,
            id,
            client_id,
            started: Instant::now(),
            at: unix_ms_now(),
            format,
            route: String::new(),
            stream: false,
            key_id: None,
            body: None,
            span,
        }
    }

    /// The id the client is given back as `x-request-id`: its own when it
    /// sent a sane one, else the log row's.
    pub fn request_id(&self) -> &str {
        self.client_id.as_deref().unwrap_or(&self.id)
    }

    /// The request's span: the engine runs inside it, so that its attempts
    /// are children.
    pub fn span(&self) -> &Span {
        &self.span
    }

    pub fn key(&mut self, name: Option<&str>) {
        self.key_id = name.map(str::to_string);
    }

    /// The client's own strings are cut to their caps here, as they are
    /// taken, rather than copied whole first: a model name can be as long
    /// as the body.
    pub fn request(&mut self, request: &ChatRequest, body: &[u8]) {
        self.route = capped(&request.model, MAX_LOGGED_NAME).into_owned();
        self.stream = request.stream;
        if self.observer.log_bodies {
            self.body = Some(capped_body(body, MAX_LOGGED_BODY));
        }
    }

    /// A unary request (embeddings, a token count): its operation, for the
    /// span (`embeddings` is the GenAI conventions' name), the model it named
    /// and its body, capped as a chat request's are.
    pub fn unary_request(&mut self, operation: &'static str, model: &str, body: &[u8]) {
        self.span.record("gen_ai.operation.name", operation);
        self.route = capped(model, MAX_LOGGED_NAME).into_owned();
        self.stream = false;
        if self.observer.log_bodies {
            self.body = Some(capped_body(body, MAX_LOGGED_BODY));
        }
    }

    /// A unary answer; `input_tokens` as the answer's usage gives them.
    pub fn unary<T>(mut self, served: &Served<T>, input_tokens: Option<u64>) {
        let mut record = self.record(200, None);
        fill_served(&mut record, served);
        record.input_tokens = input_tokens;
        record.first_token_ms = Some(record.latency_ms);
        close(&self.span, &self.observer, record);
    }

    /// The request was refused, by Bulwark or after every attempt.
    pub fn error(self, status: u16, error: &ApiError, failed: Option<&Failed>) {
        let class = failed.and_then(|f| f.failures.last()).map_or_else(
            || kind_class(error.kind).to_string(),
            |f| f.class().to_string(),
        );
        self.error_as(status, &class, failed);
    }

    /// As `error`, with the class given: `client_quota` for a client key
    /// over its own quota, which is not the service failing.
    pub fn error_as(mut self, status: u16, class: &str, failed: Option<&Failed>) {
        let mut record = self.record(status, Some(class.to_string()));
        if let Some(failed) = failed {
            record.attempts = failed.attempt_log.clone();
        }
        close(&self.span, &self.observer, record);
    }

    pub fn complete(mut self, served: &Served<Vec<Chunk>>) {
        let mut record = self.record(200, None);
        fill_served(&mut record, served);
        let usage = usage(served.value.iter().flat_map(|c| &c.events));
        (record.input_tokens, record.output_tokens) = usage;
        record.first_token_ms =
            first_token(&record.attempts, record.at).or(Some(record.latency_ms));
        close(&self.span, &self.observer, record);
    }

    /// The record of a stream, finished when the stream is.
    pub fn stream<T>(mut self, served: &Served<T>) -> StreamEnd {
        let mut record = self.record(200, None);
        fill_served(&mut record, served);
        StreamEnd {
            started: self.started,
            observer: Arc::clone(&self.observer),
            record: Some(record),
            span: self.span.clone(),
        }
    }

    /// Every caller consumes the request, so its strings move into the
    /// record rather than being copied.
    fn record(&mut self, status: u16, error_class: Option<String>) -> RequestRecord {
        RequestRecord {
            id: std::mem::take(&mut self.id),
            client_request_id: self.client_id.take(),
            at: self.at,
            route: std::mem::take(&mut self.route),
            client_format: self.format.as_str().to_string(),
            stream: self.stream,
            status,
            error_class,
            target: None,
            fallback: false,
            cache: None,
            degraded: None,
            dropped: Vec::new(),
            latency_ms: millis(self.started.elapsed()),
            first_token_ms: None,
            input_tokens: None,
            output_tokens: None,
            key_id: self.key_id.take(),
            request_body: self.body.take(),
            attempts: Vec::new(),
        }
    }
}

/// A streamed answer's record, completed as the stream is written and
/// handed over when it is dropped: at its end, or when the client leaves.
#[derive(Debug)]
pub struct StreamEnd {
    started: Instant,
    observer: Arc<Observer>,
    record: Option<RequestRecord>,
    /// The request's span, ended with the stream.
    span: Span,
}

impl StreamEnd {
    /// Called for every chunk sent.
    pub fn sent(&mut self, chunk: &Chunk) {
        let started = self.started;
        let Some(record) = &mut self.record else {
            return;
        };
        if record.first_token_ms.is_none() {
            record.first_token_ms = Some(millis(started.elapsed()));
        }
        let (input, output) = usage(chunk.events.iter());
        record.input_tokens = input.or(record.input_tokens);
        record.output_tokens = output.or(record.output_tokens);
    }

    /// The stream broke after it started.
    pub fn broke(&mut self, class: &str) {
        if let Some(record) = &mut self.record {
            record.error_class = Some(class.to_string());
        }
    }
}

impl Drop for StreamEnd {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.latency_ms = millis(self.started.elapsed());
            close(&self.span, &self.observer, record);
        }
    }
}

/// Hands a finished record over, with the client's strings capped first:
/// the span, the metrics and the request log all see the capped record.
/// (A direct target's label carries the client's model, so the cap is
/// applied after the engine's fields are filled in, not only as they come.)
fn close(span: &Span, observer: &Observer, mut record: RequestRecord) {
    record.cap_client_fields();
    end_span(span, &record);
    observer.finish(record);
}

/// Puts the request's outcome on its span. The span is entered to do so:
/// tracing-opentelemetry ends a span at its last exit, which would otherwise
/// be when the engine returned, before a stream was sent.
fn end_span(span: &Span, record: &RequestRecord) {
    span.in_scope(|| {
        span.record("gen_ai.request.model", record.route.as_str());
        span.record("bulwark.stream", record.stream);
        // As i64: tracing-opentelemetry turns unsigned values into strings.
        span.record("http.response.status_code", i64::from(record.status));
        span.record("bulwark.outcome", record.outcome());
        span.record(
            "bulwark.attempts",
            i64::try_from(record.attempts.len()).unwrap_or(i64::MAX),
        );
        span.record("bulwark.fallback", record.fallback);
        if let Some(target) = &record.target {
            span.record("bulwark.target", target.as_str());
        }
        if let Some(cache) = &record.cache {
            span.record("bulwark.cache", cache.as_str());
        }
        if let Some(degraded) = &record.degraded {
            span.record("bulwark.degraded", degraded.as_str());
        }
        if let Some(class) = &record.error_class {
            span.record("error.type", class.as_str());
        }
        if !record.is_good() && !record.is_client_error() {
            span.record("otel.status_code", "error");
        }
    });
}

fn fill_served<T>(record: &mut RequestRecord, served: &Served<T>) {
    record.target = Some(match served.cache {
        Some(CacheStatus::Hit | CacheStatus::Stale) => "cache".to_string(),
        _ => served.target.clone(),
    });
    record.fallback = served.fallback;
    record.cache = served.cache.map(|c| c.as_str().to_string());
    record.degraded = served.degraded.clone();
    record.dropped = served.dropped.iter().map(|f| (*f).to_string()).collect();
    record.attempts = served.attempt_log.clone();
}

/// When the answering attempt's first token arrived, from the request's start.
fn first_token(attempts: &[AttemptRecord], at: UnixMs) -> Option<f64> {
    let answered = attempts.iter().rev().find(|a| a.error_class.is_none())?;
    Some((answered.at - at) as f64 + answered.first_token_ms?)
}

fn usage<'a>(events: impl Iterator<Item = &'a StreamEvent>) -> (Option<u64>, Option<u64>) {
    let (mut input, mut output) = (None, None);
    for event in events {
        match event {
            StreamEvent::Usage(usage) => {
                input = Some(usage.input_tokens);
                output = Some(usage.output_tokens);
            }
            StreamEvent::Start {
                input_tokens: Some(n),
                ..
            } if input.is_none() => input = Some(*n),
            _ => {}
        }
    }
    (input, output)
}

fn kind_class(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest => "invalid_request",
        ErrorKind::Authentication => "authentication",
        ErrorKind::Billing => "billing",
        ErrorKind::Permission => "permission",
        ErrorKind::NotFound => "not_found",
        ErrorKind::RequestTooLarge => "request_too_large",
        ErrorKind::RateLimit => "rate_limit",
        ErrorKind::Api => "api_error",
        ErrorKind::Timeout => "timeout",
        ErrorKind::Overloaded => "overloaded",
    }
}
