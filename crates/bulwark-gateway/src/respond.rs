//! Writing answers and errors in the client's format, with the headers that
//! say how the answer was obtained.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bulwark::api::{ChatResponse, StreamEvent};
use bulwark::engine::Served;
use bulwark::error::{ApiError, ErrorKind};
use bulwark::provider::EventStream;
use bulwark::wire::{anthropic, openai};
use futures_util::StreamExt;

use crate::ClientFormat;

pub const TARGET_HEADER: &str = "x-bulwark-target";
pub const ATTEMPTS_HEADER: &str = "x-bulwark-attempts";
pub const FALLBACK_HEADER: &str = "x-bulwark-fallback";

pub fn complete(format: ClientFormat, served: Served<ChatResponse>) -> Response {
    let body = match format {
        ClientFormat::OpenAi => openai::encode_response(&served.value),
        ClientFormat::Anthropic => anthropic::encode_response(&served.value),
    };
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response();
    served_headers(&mut response, &served);
    response
}

pub fn stream(format: ClientFormat, served: Served<EventStream>, include_usage: bool) -> Response {
    let mut encoder = Encoder::new(format, include_usage);
    let mut events = served.value;
    let body = async_stream::stream! {
        let mut out = Vec::new();
        while let Some(item) = events.next().await {
            match item {
                Ok(event) => encoder.encode(&event, &mut out),
                Err(failure) => {
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
    let Served {
        target,
        attempts,
        fallback,
        ..
    } = served;
    set_served_headers(&mut response, &target, attempts, fallback);
    response
}

pub fn error(format: ClientFormat, error: &ApiError, attempts: u32) -> Response {
    let body = match format {
        ClientFormat::OpenAi => openai::encode_error(error),
        ClientFormat::Anthropic => anthropic::encode_error(error),
    };
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
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

fn served_headers<T>(response: &mut Response, served: &Served<T>) {
    set_served_headers(response, &served.target, served.attempts, served.fallback);
}

fn set_served_headers(response: &mut Response, target: &str, attempts: u32, fallback: bool) {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(target) {
        headers.insert(TARGET_HEADER, value);
    }
    headers.insert(ATTEMPTS_HEADER, HeaderValue::from(attempts));
    if fallback {
        headers.insert(FALLBACK_HEADER, HeaderValue::from_static("true"));
    }
}

/// The stream encoder for the client's format.
enum Encoder {
    OpenAi(openai::StreamEncoder),
    Anthropic(anthropic::StreamEncoder),
}

impl Encoder {
    fn new(format: ClientFormat, include_usage: bool) -> Self {
        match format {
            ClientFormat::OpenAi => Encoder::OpenAi(openai::StreamEncoder::new(include_usage)),
            ClientFormat::Anthropic => Encoder::Anthropic(anthropic::StreamEncoder::new()),
        }
    }

    fn encode(&mut self, event: &StreamEvent, out: &mut Vec<Bytes>) {
        match self {
            Encoder::OpenAi(e) => e.encode(event, out),
            Encoder::Anthropic(e) => e.encode(event, out),
        }
    }

    fn finish(&mut self, out: &mut Vec<Bytes>) {
        match self {
            Encoder::OpenAi(e) => e.finish(out),
            Encoder::Anthropic(e) => e.finish(out),
        }
    }

    fn error(&mut self, error: &ApiError, out: &mut Vec<Bytes>) {
        match self {
            Encoder::OpenAi(e) => e.error(error, out),
            Encoder::Anthropic(e) => e.error(error, out),
        }
    }
}
