//! Writing answers and errors in the client's format, with the headers that
//! say how the answer was obtained.
//!
//! When the provider that answered speaks the client's own format, its
//! answer is relayed as sent (a complete answer is rebuilt from the stream
//! field for field), so nothing the neutral model lacks is lost. Otherwise
//! the answer is translated from the neutral events.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bulwark::aggregate::aggregate;
use bulwark::cache::CacheStatus;
use bulwark::engine::Served;
use bulwark::error::{ApiError, ErrorKind};
use bulwark::provider::{Chunk, ChunkStream};
use bulwark::sse;
use bulwark::wire::{anthropic, openai};
use futures_util::StreamExt;

use crate::ClientFormat;
use crate::observe::StreamEnd;

pub const TARGET_HEADER: &str = "x-bulwark-target";
pub const ATTEMPTS_HEADER: &str = "x-bulwark-attempts";
pub const FALLBACK_HEADER: &str = "x-bulwark-fallback";
pub const CACHE_HEADER: &str = "x-bulwark-cache";
pub const DEGRADED_HEADER: &str = "x-bulwark-degraded";

pub fn complete(format: ClientFormat, served: Served<Vec<Chunk>>) -> Response {
    let relay = format.speaks(served.format);
    let body = if relay {
        let raw = served.value.iter().map(|c| &c.raw);
        match format {
            ClientFormat::OpenAi => openai::assemble_response(raw),
            ClientFormat::Anthropic => anthropic::assemble_response(raw),
        }
    } else {
        let response = aggregate(served.value.iter().flat_map(|c| &c.events));
        match format {
            ClientFormat::OpenAi => openai::encode_response(&response),
            ClientFormat::Anthropic => anthropic::encode_response(&response),
        }
    };
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response();
    set_served_headers(
        &mut response,
        &served.target,
        served.attempts,
        served.fallback,
        served.cache,
        served.degraded.as_deref(),
    );
    response
}

/// `record` is completed as the stream is written, and handed to the
/// observer when the stream ends or the client goes away.
pub fn stream(
    format: ClientFormat,
    served: Served<ChunkStream>,
    include_usage: bool,
    record: Option<StreamEnd>,
) -> Response {
    let mut encoder = if format.speaks(served.format) {
        Encoder::Relay {
            format,
            include_usage,
        }
    } else {
        match format {
            ClientFormat::OpenAi => Encoder::OpenAi(openai::StreamEncoder::new(include_usage)),
            ClientFormat::Anthropic => Encoder::Anthropic(anthropic::StreamEncoder::new()),
        }
    };
    let Served {
        value: mut chunks,
        target,
        attempts,
        fallback,
        cache,
        degraded,
        ..
    } = served;
    let body = async_stream::stream! {
        let mut record = record;
        let mut out = Vec::new();
        while let Some(item) = chunks.next().await {
            match item {
                Ok(chunk) => {
                    encoder.encode(&chunk, &mut out);
                    if let Some(record) = &mut record {
                        record.sent(&chunk);
                    }
                }
                Err(failure) => {
                    if let Some(record) = &mut record {
                        record.broke(failure.class());
                    }
                    tracing::warn!(target = %failure.target, class = failure.class(), "stream failed after content was sent: {}", failure.message);
                    let mut error = failure.to_api_error();
                    error.message = format!("the answer was interrupted: {}", error.message);
                    encoder.error(&error, &mut out);
                    for bytes in out.drain(..) {
                        yield Ok::<Bytes, Infallible>(bytes);
                    }
                    return;
                }
            }
            for bytes in out.drain(..) {
                yield Ok(bytes);
            }
        }
        encoder.finish(&mut out);
        for bytes in out.drain(..) {
            yield Ok(bytes);
        }
    };
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies such as nginx would otherwise buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    set_served_headers(
        &mut response,
        &target,
        attempts,
        fallback,
        cache,
        degraded.as_deref(),
    );
    response
}

pub fn error(format: ClientFormat, error: &ApiError, attempts: u32) -> Response {
    let body = match format {
        ClientFormat::OpenAi => openai::encode_error(error),
        ClientFormat::Anthropic => anthropic::encode_error(error),
    };
    let status = StatusCode::from_u16(status_for(format, error))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(ATTEMPTS_HEADER, HeaderValue::from(attempts));
    if let Some(seconds) = error.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The status that makes each SDK raise its matching exception: Anthropic's
/// SDK has `OverloadedError` for 529, OpenAI's has no class for 402.
fn status_for(format: ClientFormat, error: &ApiError) -> u16 {
    match (format, error.kind) {
        (ClientFormat::Anthropic, ErrorKind::Overloaded) if error.status == 503 => 529,
        (ClientFormat::OpenAi, ErrorKind::Billing) if error.status == 402 => 429,
        _ => error.status,
    }
}

pub async fn not_found(uri: axum::http::Uri) -> Response {
    error(
        ClientFormat::OpenAi,
        &ApiError::new(
            ErrorKind::NotFound,
            format!(
                "no such endpoint `{}`; Bulwark serves POST /v1/chat/completions, POST /v1/messages and GET /v1/models",
                uri.path()
            ),
        ),
        0,
    )
}

fn set_served_headers(
    response: &mut Response,
    target: &str,
    attempts: u32,
    fallback: bool,
    cache: Option<CacheStatus>,
    degraded: Option<&str>,
) {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(target) {
        headers.insert(TARGET_HEADER, value);
    }
    headers.insert(ATTEMPTS_HEADER, HeaderValue::from(attempts));
    if fallback {
        headers.insert(FALLBACK_HEADER, HeaderValue::from_static("true"));
    }
    if let Some(status) = cache {
        headers.insert(CACHE_HEADER, HeaderValue::from_static(status.as_str()));
    }
    if let Some(value) = degraded.and_then(|d| HeaderValue::from_str(d).ok()) {
        headers.insert(DEGRADED_HEADER, value);
    }
}

/// Writes the client's stream: relayed from a provider of the same format,
/// or translated from neutral events.
enum Encoder {
    Relay {
        format: ClientFormat,
        include_usage: bool,
    },
    OpenAi(openai::StreamEncoder),
    Anthropic(anthropic::StreamEncoder),
}

impl Encoder {
    fn encode(&mut self, chunk: &Chunk, out: &mut Vec<Bytes>) {
        match self {
            Encoder::Relay {
                format: ClientFormat::OpenAi,
                include_usage,
            } => {
                // Bulwark always asks for usage; pass it on only if the client did.
                if *include_usage || !openai::is_usage_chunk(&chunk.raw.data) {
                    out.push(sse::encode(None, &chunk.raw.data));
                }
            }
            Encoder::Relay {
                format: ClientFormat::Anthropic,
                ..
            } => {
                out.push(sse::encode(chunk.raw.event.as_deref(), &chunk.raw.data));
            }
            Encoder::OpenAi(e) => chunk.events.iter().for_each(|event| e.encode(event, out)),
            Encoder::Anthropic(e) => chunk.events.iter().for_each(|event| e.encode(event, out)),
        }
    }

    /// Ends a complete stream; a relayed stream already carried its terminator.
    fn finish(&mut self, out: &mut Vec<Bytes>) {
        match self {
            Encoder::Relay { .. } => {}
            Encoder::OpenAi(e) => e.finish(out),
            Encoder::Anthropic(e) => e.finish(out),
        }
    }

    fn error(&mut self, error: &ApiError, out: &mut Vec<Bytes>) {
        match self {
            Encoder::Relay {
                format: ClientFormat::OpenAi,
                ..
            } => out.push(sse::encode(None, &openai::encode_error(error).to_string())),
            Encoder::Relay {
                format: ClientFormat::Anthropic,
                ..
            } => out.push(sse::encode(
                Some("error"),
                &anthropic::encode_error(error).to_string(),
            )),
            Encoder::OpenAi(e) => e.error(error, out),
            Encoder::Anthropic(e) => e.error(error, out),
        }
    }
}
