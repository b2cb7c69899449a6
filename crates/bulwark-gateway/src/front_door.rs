//! The two front doors. Each decodes its format, runs the request through the
//! engine, and answers in the same format.

use std::time::Duration;

use crate::config::ClientKey;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::response::Response;
use bulwark::RequestOptions;
use bulwark::api::{ChatRequest, WireFormat};
use bulwark::cache::CachePolicy;
use bulwark::engine::Failed;
use bulwark::error::{ApiError, ErrorKind};
use bulwark::limit::queue::Priority;
use bulwark::wire::{ClientDialect, anthropic, openai};
use futures_util::StreamExt;
use tracing::Instrument;

use crate::Gateway;
use crate::auth::Auth;
use crate::observe::Pending;
use crate::respond;

/// A client's own deadline for one request, in milliseconds. It can shorten
/// the route's deadline, never lengthen it.
pub const DEADLINE_HEADER: &str = "x-bulwark-deadline-ms";
pub const PRIORITY_HEADER: &str = "x-bulwark-priority";
/// The request's id: the client's when sane, else made here; returned on
/// every answer, and written to the request log and the request's span.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Longer client ids are ignored rather than cut: a cut id would no longer
/// match the client's own logs. 128 bytes holds any UUID, ULID or trace id.
pub const MAX_REQUEST_ID_BYTES: usize = 128;

/// Bounds on what a same-format target receives besides the body: far more
/// than any SDK sends (Claude Code sends two headers and `beta=true`), so
/// that a client cannot make every attempt carry an unbounded copy of its
/// request's headers.
pub const MAX_FORWARDED_HEADERS: usize = 16;
pub const MAX_FORWARDED_HEADER_BYTES: usize = 4096;
pub const MAX_FORWARDED_QUERY_BYTES: usize = 2048;

/// The wire format a client spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFormat {
    OpenAi,
    Anthropic,
}

impl ClientFormat {
    /// The dialect the client speaks: the one place a client format is told
    /// apart.
    pub fn dialect(self) -> &'static dyn ClientDialect {
        match self {
            ClientFormat::OpenAi => &openai::FrontDoor,
            ClientFormat::Anthropic => &anthropic::FrontDoor,
        }
    }

    fn decode(self, body: &[u8]) -> Result<ChatRequest, ApiError> {
        self.dialect().decode_request(body)
    }

    pub fn as_str(self) -> &'static str {
        self.dialect().format().as_str()
    }

    /// Whether a provider speaking `format` can be relayed to this client as is.
    pub fn speaks(self, format: WireFormat) -> bool {
        self.dialect().relays(format)
    }
}

pub async fn openai(
    State(gateway): State<Gateway>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(gateway, ClientFormat::OpenAi, &uri, &headers, body).await
}

pub async fn anthropic(
    State(gateway): State<Gateway>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(gateway, ClientFormat::Anthropic, &uri, &headers, body).await
}

async fn handle(
    gateway: Gateway,
    format: ClientFormat,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let pending = Pending::new(
        std::sync::Arc::clone(&gateway.observer),
        format,
        client_request_id(headers),
    );
    // A client's trace continues through Bulwark's spans (when they are
    // exported): the request's span takes the client's as its parent.
    if let Some(traceparent) = headers.get(bulwark::observe::propagate::TRACEPARENT) {
        bulwark::observe::propagate::set_parent(pending.span(), traceparent.as_bytes());
    }
    // Set on the answer here, once, so that no path (a refusal, an error
    // after every attempt, a stream's head) can leave it out. A sane id is
    // printable ASCII, and so always a valid header value.
    let id = HeaderValue::from_str(pending.request_id()).ok();
    let mut response = answer(gateway, format, uri, headers, body, pending).await;
    if let Some(id) = id {
        response.headers_mut().insert(REQUEST_ID_HEADER, id);
    }
    response
}

/// The client's `x-request-id` when it is sane: 1 to 128 bytes of
/// printable ASCII. Anything else (empty, too long, control characters,
/// non-ASCII) is ignored and an id is made instead, so that a hostile
/// client cannot put garbage into the log, the traces or the answer.
pub fn client_request_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(REQUEST_ID_HEADER)?.as_bytes();
    let sane = !value.is_empty()
        && value.len() <= MAX_REQUEST_ID_BYTES
        && value.iter().all(|b| b.is_ascii_graphic() || *b == b' ');
    // The check above makes it ASCII, so this never fails.
    sane.then(|| String::from_utf8(value.to_vec()).ok())
        .flatten()
}

async fn answer(
    gateway: Gateway,
    format: ClientFormat,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    mut pending: Pending,
) -> Response {
    // Every refusal is logged too: a flood of 401s or 400s is worth seeing.
    let refuse = |pending: Pending, error: ApiError| {
        let response = respond::error(format, &error, 0);
        pending.error(response.status().as_u16(), &error, None);
        response
    };
    let key = match gateway.auth.authenticate(headers) {
        Ok(key) => key,
        Err(error) => return refuse(pending, error),
    };
    pending.key(key.map(|k| k.name.as_str()));
    let mut options = match options(headers) {
        Ok(options) => options,
        Err(error) => return refuse(pending, error),
    };
    options.tenant = key.map(|k| std::sync::Arc::from(k.name.as_str()));
    options.priority = match priority(headers, key) {
        Ok(priority) => priority,
        Err(error) => return refuse(pending, error),
    };
    // Only now, with the key checked, is the body read: an unauthenticated
    // client cannot make the gateway hold its upload.
    let body = match read_body(
        body,
        headers,
        gateway.max_request_bytes,
        gateway.server.body_timeout,
    )
    .await
    {
        Ok(body) => body,
        Err(error) => return refuse(pending, error),
    };
    let mut request = match format.decode(&body) {
        Ok(request) => request,
        Err(error) => return refuse(pending, error),
    };
    if let Err(error) = carry_extras(&mut request, format, uri.query(), headers) {
        return refuse(pending, error);
    }
    pending.request(&request, &body);
    if let Err(error) = Auth::allows(key, &request.model) {
        return refuse(pending, error);
    }
    let estimate = bulwark::limit::estimate::total_tokens(
        &request,
        u64::from(bulwark::config::DEFAULT_MAX_TOKENS),
    );
    if let Err(error) = gateway.auth.take_quota(key, estimate) {
        let response = respond::error(format, &error, 0);
        pending.error_as(response.status().as_u16(), "client_quota", None);
        return response;
    }
    // The engine runs in the request's span, so each attempt's span is its
    // child; the span itself ends with the request's record.
    let span = pending.span().clone();
    if request.stream {
        let include_usage = request.include_usage;
        match gateway
            .client
            .stream_chunks(request, options)
            .instrument(span)
            .await
        {
            Ok(served) => {
                let end = pending.stream(&served);
                respond::stream(format, served, include_usage, Some(end))
            }
            Err(failed) => failed_response(pending, format, &failed),
        }
    } else {
        match gateway
            .client
            .complete_chunks(request, options)
            .instrument(span)
            .await
        {
            Ok(served) => {
                pending.complete(&served);
                respond::complete(format, served)
            }
            Err(failed) => failed_response(pending, format, &failed),
        }
    }
}

/// Puts the client's query string and the provider headers its dialect
/// forwards on the request's source, for a target of the client's own format.
fn carry_extras(
    request: &mut ChatRequest,
    format: ClientFormat,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let Some(source) = request.source.as_mut() else {
        return Ok(());
    };
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        if query.len() > MAX_FORWARDED_QUERY_BYTES {
            return Err(ApiError::invalid(format!(
                "the query string is longer than {MAX_FORWARDED_QUERY_BYTES} bytes"
            )));
        }
        source.query = Some(query.to_string());
    }
    let forwarded = format.dialect().forwarded_headers();
    for (name, value) in headers {
        if !forwarded.contains(&name.as_str()) {
            continue;
        }
        if value.len() > MAX_FORWARDED_HEADER_BYTES {
            return Err(ApiError::invalid(format!(
                "the `{name}` header is longer than {MAX_FORWARDED_HEADER_BYTES} bytes"
            )));
        }
        if source.headers.len() == MAX_FORWARDED_HEADERS {
            return Err(ApiError::invalid(format!(
                "more than {MAX_FORWARDED_HEADERS} values of the headers {} were sent",
                forwarded.join(", ")
            )));
        }
        source.headers.push((name.clone(), value.clone()));
    }
    Ok(())
}

pub(crate) fn failed_response(pending: Pending, format: ClientFormat, failed: &Failed) -> Response {
    let response = respond::error(format, &failed.error, failed.attempts);
    pending.error(response.status().as_u16(), &failed.error, Some(failed));
    response
}

pub(crate) fn options(headers: &HeaderMap) -> Result<RequestOptions, ApiError> {
    let deadline = match headers.get(DEADLINE_HEADER) {
        None => None,
        Some(value) => match value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            Some(ms) if ms > 0 => Some(Duration::from_millis(ms)),
            _ => {
                return Err(ApiError::invalid(format!(
                    "`{DEADLINE_HEADER}` must be a positive whole number of milliseconds"
                )));
            }
        },
    };
    let cache_control = headers
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let directives: Vec<&str> = cache_control.split(',').map(str::trim).collect();
    let cache = if directives.contains(&"no-store") {
        CachePolicy::Bypass
    } else if directives.contains(&"no-cache") {
        CachePolicy::Refresh
    } else {
        CachePolicy::Use
    };
    Ok(RequestOptions {
        deadline,
        cache,
        tenant: None,
        priority: Priority::Normal,
    })
}

/// A request's priority class: its key's, or the one it asks for with
/// `x-bulwark-priority` when its key allows that (an open gateway does).
pub(crate) fn priority(headers: &HeaderMap, key: Option<&ClientKey>) -> Result<Priority, ApiError> {
    let asked = match headers.get(PRIORITY_HEADER) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| Priority::parse(v.trim()))
                .ok_or_else(|| {
                    ApiError::invalid(format!("`{PRIORITY_HEADER}` must be high, normal or low"))
                })?,
        ),
    };
    Ok(match (key, asked) {
        (None, asked) => asked.unwrap_or_default(),
        (Some(key), Some(asked)) if key.priority_header => asked,
        (Some(key), _) => key.priority,
    })
}

/// Reads a request body of at most `limit` bytes within `timeout`. A
/// declared length over the limit is refused before a byte is read; a body
/// still arriving at the deadline (a client trickling it) gets 408.
pub(crate) async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| usize::try_from(length).map_or(true, |l| l > limit)) {
        return Err(too_large(limit));
    }
    let read = async {
        let mut stream = body.into_data_stream();
        // Grown as bytes arrive, not sized from the declared length: a
        // client could declare the limit and send nothing.
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| {
                ApiError::invalid(format!("the request body could not be read: {error}"))
            })?;
            if out.len() + chunk.len() > limit {
                return Err(too_large(limit));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(out))
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(read) => read,
        Err(_) => Err(ApiError {
            // 408 Request Timeout: the client was too slow, not the service.
            status: 408,
            ..ApiError::invalid(format!(
                "the request body was not received within {timeout:?} (config key `server.body_timeout`)"
            ))
        }),
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorKind::RequestTooLarge,
        format!(
            "the request body is larger than this gateway's limit of {limit} bytes (config key `max_request_bytes`)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_dialect_forwards_credentials_or_connection_headers() {
        for format in [ClientFormat::OpenAi, ClientFormat::Anthropic] {
            for name in format.dialect().forwarded_headers() {
                assert_eq!(
                    *name,
                    name.to_ascii_lowercase(),
                    "header maps are lower-case"
                );
                assert!(
                    !matches!(
                        *name,
                        "authorization"
                            | "x-api-key"
                            | "x-goog-api-key"
                            | "api-key"
                            | "cookie"
                            | "host"
                            | "content-length"
                            | "connection"
                            | "transfer-encoding"
                            | "openai-organization"
                            | "openai-project"
                    ) && !name.starts_with("x-bulwark")
                        && !name.starts_with("x-stainless"),
                    "{name}"
                );
            }
        }
    }
}
