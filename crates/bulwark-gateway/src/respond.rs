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
use bulwark::wire::{SseSink, StreamWriter};
use futures_util::StreamExt;

use crate::ClientFormat;
use crate::observe::StreamEnd;

pub const TARGET_HEADER: &str = "x-bulwark-target";
pub const ATTEMPTS_HEADER: &str = "x-bulwark-attempts";
pub const FALLBACK_HEADER: &str = "x-bulwark-fallback";
pub const CACHE_HEADER: &str = "x-bulwark-cache";
pub const DEGRADED_HEADER: &str = "x-bulwark-degraded";
/// Features of the request the answering target's format could not carry.
pub const DROPPED_HEADER: &str = "x-bulwark-dropped";

pub fn complete(format: ClientFormat, served: Served<Vec<Chunk>>) -> Response {
    let dialect = format.dialect();
    let body = if dialect.relays(served.format) {
        dialect.assemble_relayed(&mut served.value.iter().map(|c: &Chunk| &c.raw))
    } else {
        dialect.encode_response(&aggregate(served.value.iter().flat_map(|c| &c.events)))
    };
    json_answer(&body, &served)
}

/// A complete answer's body, with the headers that say how it was served.
pub fn json_answer<T>(body: &serde_json::Value, served: &Served<T>) -> Response {
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
        &served.dropped,
    );
    response
}

/// A unary answer (embeddings, a token count): its JSON as it is, with
/// the headers that say how it was obtained.
pub fn unary(served: &Served<serde_json::Value>) -> Response {
    json_answer(&served.value, served)
}

/// `record` is completed as the stream is written, and handed to the
/// observer when the stream ends or the client goes away.
pub fn stream(
    format: ClientFormat,
    served: Served<ChunkStream>,
    include_usage: bool,
    record: Option<StreamEnd>,
) -> Response {
    let writer = format.dialect().stream_writer(served.format, include_usage);
    stream_with(writer, served, record)
}

/// A stream written by `writer`, for a front door that builds its own.
pub fn stream_with(
    writer: Box<dyn StreamWriter>,
    served: Served<ChunkStream>,
    record: Option<StreamEnd>,
) -> Response {
    framed_stream(writer, served, record, Framing::Sse)
}

/// A stream asked for without server-sent events (Gemini's
/// `streamGenerateContent` without `alt=sse`): the same chunks as one JSON
/// array, written as they come, as Google's REST API answers. A broken
/// stream ends with the format's error object as the array's last element,
/// so the array still parses and the client sees the error.
pub fn json_array_stream(
    format: ClientFormat,
    served: Served<ChunkStream>,
    include_usage: bool,
    record: Option<StreamEnd>,
) -> Response {
    let writer = format.dialect().stream_writer(served.format, include_usage);
    framed_stream(writer, served, record, Framing::JsonArray)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Sse,
    JsonArray,
}

/// Where a stream's events are written, framed as the client asked.
struct Framed {
    out: Vec<Bytes>,
    framing: Framing,
    /// Whether an array element was written, so the next needs a comma.
    written: bool,
}

impl SseSink for Framed {
    fn push_event(&mut self, event: Option<&str>, data: &str) {
        match self.framing {
            Framing::Sse => self.out.push_event(event, data),
            Framing::JsonArray => {
                let separator = if self.written { ",\r\n" } else { "" };
                self.written = true;
                self.out.push(Bytes::from(format!("{separator}{data}")));
            }
        }
    }
}

fn framed_stream(
    mut writer: Box<dyn StreamWriter>,
    served: Served<ChunkStream>,
    record: Option<StreamEnd>,
    framing: Framing,
) -> Response {
    let Served {
        value: mut chunks,
        target,
        attempts,
        fallback,
        cache,
        degraded,
        dropped,
        ..
    } = served;
    let body = async_stream::stream! {
        let mut record = record;
        let mut out = Framed { out: Vec::new(), framing, written: false };
        if framing == Framing::JsonArray {
            yield Ok::<Bytes, Infallible>(Bytes::from_static(b"["));
        }
        while let Some(item) = chunks.next().await {
            match item {
                Ok(chunk) => {
                    writer.write(&chunk, &mut out);
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
                    writer.error(&error, &mut out);
                    for bytes in out.out.drain(..) {
                        yield Ok::<Bytes, Infallible>(bytes);
                    }
                    if framing == Framing::JsonArray {
                        yield Ok(Bytes::from_static(b"]"));
                    }
                    return;
                }
            }
            for bytes in out.out.drain(..) {
                yield Ok(bytes);
            }
        }
        writer.finish(&mut out);
        for bytes in out.out.drain(..) {
            yield Ok(bytes);
        }
        if framing == Framing::JsonArray {
            yield Ok(Bytes::from_static(b"]"));
        }
    };
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(match framing {
            Framing::Sse => "text/event-stream",
            Framing::JsonArray => "application/json",
        }),
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
        &dropped,
    );
    response
}

pub fn error(format: ClientFormat, error: &ApiError, attempts: u32) -> Response {
    let dialect = format.dialect();
    let body = dialect.encode_error(error);
    let status = StatusCode::from_u16(dialect.status_for(error))
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

pub async fn not_found(uri: axum::http::Uri) -> Response {
    // Google's clients read errors only in Google's shape.
    let path = uri.path();
    let format = if path.starts_with("/v1beta/")
        || (path.starts_with("/v1/models/") && path.contains(':'))
    {
        ClientFormat::Gemini
    } else {
        ClientFormat::OpenAi
    };
    error(
        format,
        &ApiError::new(
            ErrorKind::NotFound,
            format!(
                "no such endpoint `{}`; Bulwark serves POST /v1/chat/completions, POST /v1/messages, POST /v1/messages/count_tokens, POST /v1/responses, POST /v1/embeddings, POST /v1beta/models/{{model}}:generateContent (and :streamGenerateContent) and GET /v1/models",
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
    dropped: &[&'static str],
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
    if !dropped.is_empty()
        && let Ok(value) = HeaderValue::from_str(&dropped.join(","))
    {
        headers.insert(DROPPED_HEADER, value);
    }
}
