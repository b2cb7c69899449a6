//! The front doors. Each decodes its format, runs the request through the
//! engine, and answers in the same format.

use std::time::Duration;

use crate::config::ClientKey;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header;
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::response::Response;
use bulwark::RequestOptions;
use bulwark::api::{ChatRequest, WireFormat};
use bulwark::cache::CachePolicy;
use bulwark::engine::Failed;
use bulwark::error::{ApiError, ErrorKind};
use bulwark::limit::queue::Priority;
use bulwark::wire::limits;
use bulwark::wire::{ClientDialect, anthropic, gemini, openai, responses as responses_wire};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use tracing::Instrument;

use crate::Gateway;
use crate::auth::Auth;
use crate::budget::Reservation;
use crate::observe::Pending;
use crate::respond;
use crate::responses as responses_door;

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
    /// OpenAI's Responses API.
    Responses,
    Gemini,
}

impl ClientFormat {
    /// The dialect the client speaks: the one place a client format is told
    /// apart.
    pub fn dialect(self) -> &'static dyn ClientDialect {
        match self {
            ClientFormat::OpenAi => &openai::FrontDoor,
            ClientFormat::Anthropic => &anthropic::FrontDoor,
            ClientFormat::Responses => &responses_wire::FrontDoor,
            ClientFormat::Gemini => &gemini::FrontDoor,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.dialect().format().as_str()
    }

    /// Whether a provider speaking `format` can be relayed to this client as is.
    pub fn speaks(self, format: WireFormat) -> bool {
        self.dialect().relays(format)
    }
}

/// What a front door's URL says about the request, where its format puts
/// that in the URL rather than in the body (Gemini's model and method).
#[derive(Debug, Clone, Default)]
struct FromUrl {
    /// The model the path names.
    model: Option<String>,
    /// Whether the method streams.
    stream: Option<bool>,
    /// A stream without `alt=sse`: one JSON array of the chunks.
    json_array: bool,
}

pub async fn openai(
    State(gateway): State<Gateway>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(
        gateway,
        ClientFormat::OpenAi,
        &uri,
        &headers,
        body,
        Ok(FromUrl::default()),
    )
    .await
}

pub async fn anthropic(
    State(gateway): State<Gateway>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(
        gateway,
        ClientFormat::Anthropic,
        &uri,
        &headers,
        body,
        Ok(FromUrl::default()),
    )
    .await
}

/// `POST /v1beta/models/{model}:{method}` (or `/v1/...`): the model and the method come
/// from the path, whose model part may hold `/` (`provider/model`, a route
/// named so), so the whole rest is taken and split on its last `:`.
pub async fn gemini_models(
    State(gateway): State<Gateway>,
    rest: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let call = gemini_path(rest).and_then(|rest| gemini_call(rest, uri.query()));
    handle(gateway, ClientFormat::Gemini, &uri, &headers, body, call).await
}

/// `POST /v1beta/tunedModels/{model}:{method}` (or `/v1/...`): a tuned
/// model's name keeps its `tunedModels/` prefix, so that it is never taken
/// for a base model of the same name; no route can be named so, and the
/// client is told the model is not found, in Google's shape.
pub async fn gemini_tuned_models(
    State(gateway): State<Gateway>,
    rest: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let call =
        gemini_path(rest).and_then(|rest| gemini_call(format!("tunedModels/{rest}"), uri.query()));
    handle(gateway, ClientFormat::Gemini, &uri, &headers, body, call).await
}

/// The path's `{model}:{method}`, percent-decoded; one that does not decode
/// (invalid UTF-8) is answered in Google's shape like any other refusal.
fn gemini_path(rest: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    rest.map(|Path(rest)| rest).map_err(|rejection| {
        ApiError::invalid(format!("the path does not name a model: {rejection}"))
    })
}

/// The model and method of a Gemini path's `{model}:{method}`.
fn gemini_call(rest: String, query: Option<&str>) -> Result<FromUrl, ApiError> {
    let Some((model, method)) = rest.rsplit_once(':') else {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            format!(
                "`{rest}` names no method; this gateway serves `{{model}}:generateContent` and `{{model}}:streamGenerateContent`"
            ),
        ));
    };
    let stream = match method {
        "generateContent" => false,
        "streamGenerateContent" => true,
        _ => {
            return Err(ApiError::new(
                ErrorKind::NotFound,
                format!(
                    "the method `{method}` is not served here; this gateway serves `generateContent` and `streamGenerateContent`"
                ),
            ));
        }
    };
    let model = model.strip_prefix("models/").unwrap_or(model);
    if model.is_empty() {
        return Err(ApiError::invalid("the path names no model"));
    }
    let sse = query_values(query, "alt").any(|alt| alt == "sse");
    Ok(FromUrl {
        model: Some(model.to_string()),
        stream: Some(stream),
        json_array: stream && !sse,
    })
}

/// The values of `name` in a query string, decoded.
pub(crate) fn query_values<'a>(
    query: Option<&'a str>,
    name: &'a str,
) -> impl Iterator<Item = String> + 'a {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(move |(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

pub async fn responses(
    State(gateway): State<Gateway>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(
        gateway,
        ClientFormat::Responses,
        &uri,
        &headers,
        body,
        Ok(FromUrl::default()),
    )
    .await
}

async fn handle(
    gateway: Gateway,
    format: ClientFormat,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    from_url: Result<FromUrl, ApiError>,
) -> Response {
    let observer = std::sync::Arc::clone(&gateway.observer);
    with_request(observer, format, headers, |pending| {
        answer(gateway, format, uri, headers, body, from_url, pending)
    })
    .await
}

/// Every door's start and end: the request's record (its id, the client's
/// trace as its parent) made before `answer` runs, and the id set on
/// whatever it answers.
pub(crate) async fn with_request<F, Fut>(
    observer: std::sync::Arc<crate::observe::Observer>,
    format: ClientFormat,
    headers: &HeaderMap,
    answer: F,
) -> Response
where
    F: FnOnce(Pending) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let pending = Pending::new(observer, format, client_request_id(headers));
    // A client's trace continues through Bulwark's spans (when they are
    // exported): the request's span takes the client's as its parent.
    if let Some(traceparent) = headers.get(bulwark::observe::propagate::TRACEPARENT) {
        bulwark::observe::propagate::set_parent(pending.span(), traceparent.as_bytes());
    }
    // Set on the answer here, once, so that no path (a refusal, an error
    // after every attempt, a stream's head) can leave it out. A sane id is
    // printable ASCII, and so always a valid header value.
    let id = HeaderValue::from_str(pending.request_id()).ok();
    let mut response = answer(pending).await;
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
    from_url: Result<FromUrl, ApiError>,
    mut pending: Pending,
) -> Response {
    // Taken once: a config reload from here on does not touch this request.
    let live = gateway.live();
    // Every refusal is logged too: a flood of 401s or 400s is worth seeing.
    let refuse = |pending: Pending, error: ApiError| {
        let response = respond::error(format, &error, 0);
        pending.error(response.status().as_u16(), &error, None);
        response
    };
    // Google's clients may send their key as `?key=`; only that door reads it.
    let query_key = match format {
        ClientFormat::Gemini => uri.query(),
        ClientFormat::OpenAi | ClientFormat::Anthropic | ClientFormat::Responses => None,
    };
    let (key, options) = match caller(&live, headers, query_key, &mut pending) {
        Ok(caller) => caller,
        Err(error) => return refuse(pending, error),
    };
    // A path naming no model or method is refused before its body is read.
    let from_url = match from_url {
        Ok(from_url) => from_url,
        Err(error) => return refuse(pending, error),
    };
    // Only now, with the key checked, is the body read: an unauthenticated
    // client cannot make the gateway hold its upload.
    let mut reservation = gateway.budget.reservation();
    let body = match read_body(
        body,
        headers,
        live.max_request_bytes,
        gateway.server.body_timeout,
        &mut reservation,
    )
    .await
    {
        Ok(body) => body,
        Err(error) => return refuse(pending, error),
    };
    // The counts that make decoding costly are checked before it, and so is
    // the key's right to the model: a refused body builds no tree.
    let scanned = match limits::check(
        &body,
        format.dialect().request_shape(),
        &gateway.server.limits,
    ) {
        Ok(scanned) => scanned,
        Err(error) => return refuse(pending, error),
    };
    if let Some(model) = from_url.model.as_ref().or(scanned.model.as_ref())
        && let Err(error) = Auth::allows(key, model)
    {
        return refuse(pending, error);
    }
    if let Err(error) = reservation.cover_decode(body.len(), &scanned) {
        return refuse(pending, error);
    }
    let decoded = match format {
        ClientFormat::Responses => {
            responses_door::decode(gateway.conversations(), options.tenant.as_deref(), &body)
                .await
                .map(|(request, door)| (request, Some(door)))
        }
        ClientFormat::OpenAi | ClientFormat::Anthropic | ClientFormat::Gemini => {
            format.dialect().decode_request(&body).map(|r| (r, None))
        }
    };
    let (mut request, door) = match decoded {
        Ok(decoded) => decoded,
        Err(error) => return refuse(pending, error),
    };
    if let Some(model) = from_url.model {
        request.model = model;
    }
    if let Some(stream) = from_url.stream {
        request.stream = stream;
    }
    // A Gemini query holds the key, `alt` and Google's system parameters
    // (`$fields`, `prettyPrint`): none changes the answer, and the key must
    // never reach a target.
    let query = match format {
        ClientFormat::Gemini => None,
        ClientFormat::OpenAi | ClientFormat::Anthropic | ClientFormat::Responses => uri.query(),
    };
    if let Err(error) = carry_extras(&mut request, format, query, headers) {
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
    if let Err(error) = live.auth.take_quota(key, estimate).await {
        return quota_refused(pending, format, &error);
    }
    // Decoding is done. A request that keeps the client's body parses it
    // again for every attempt on a target of the client's own format (and
    // for the cache key), so it keeps what decoding reserved until its
    // answer has been sent; one that does not keeps only its trees.
    if request.source.is_none() {
        reservation.settle(body.len(), &scanned);
    }
    drop(body);
    let response = engine_answer(
        &live,
        format,
        request,
        options,
        door,
        from_url.json_array,
        pending,
    )
    .await;
    hold_until_sent(response, reservation)
}

/// The engine's answer to a decoded request, in the client's format.
async fn engine_answer(
    live: &crate::Live,
    format: ClientFormat,
    request: ChatRequest,
    options: RequestOptions,
    door: Option<responses_door::Door>,
    json_array: bool,
    pending: Pending,
) -> Response {
    // The engine runs in the request's span, so each attempt's span is its
    // child; the span itself ends with the request's record.
    let span = pending.span().clone();
    if request.stream {
        let include_usage = request.include_usage;
        match live
            .client
            .stream_chunks(request, options)
            .instrument(span)
            .await
        {
            Ok(served) => {
                let end = pending.stream(&served);
                match door {
                    Some(door) => responses_door::stream(served, door, Some(end)),
                    None if json_array => {
                        respond::json_array_stream(format, served, include_usage, Some(end))
                    }
                    None => respond::stream(format, served, include_usage, Some(end)),
                }
            }
            Err(failed) => failed_response(pending, format, &failed),
        }
    } else {
        match live
            .client
            .complete_chunks(request, options)
            .instrument(span)
            .await
        {
            Ok(served) => {
                pending.complete(&served);
                match door {
                    Some(door) => responses_door::complete(served, &door),
                    None => respond::complete(format, served),
                }
            }
            Err(failed) => failed_response(pending, format, &failed),
        }
    }
}

/// Who is calling and how it asks: its key (from the headers, or from
/// `query_key` for the door that reads one), recorded on `pending`, and
/// its request options with its tenant and priority.
pub(crate) fn caller<'g>(
    gateway: &'g crate::Live,
    headers: &HeaderMap,
    query_key: Option<&str>,
    pending: &mut Pending,
) -> Result<(Option<&'g ClientKey>, RequestOptions), ApiError> {
    let key = gateway.auth.authenticate_with_query(headers, query_key)?;
    pending.key(key.map(|k| k.name.as_str()));
    let mut options = options(headers)?;
    options.tenant = key.map(|k| std::sync::Arc::from(k.name.as_str()));
    options.priority = priority(headers, key)?;
    Ok((key, options))
}

/// The answer when the caller's key is over its quota, logged as such.
pub(crate) fn quota_refused(pending: Pending, format: ClientFormat, error: &ApiError) -> Response {
    let response = respond::error(format, error, 0);
    pending.error_as(response.status().as_u16(), "client_quota", None);
    response
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
    source.headers.extend(forwarded_headers(format, headers)?);
    Ok(())
}

/// The client's headers its dialect forwards to a target of its own
/// format (`anthropic-beta`, `anthropic-version`), within bounds.
pub(crate) fn forwarded_headers(
    format: ClientFormat,
    headers: &HeaderMap,
) -> Result<Vec<(axum::http::HeaderName, HeaderValue)>, ApiError> {
    let forwarded = format.dialect().forwarded_headers();
    let mut out = Vec::new();
    for (name, value) in headers {
        if !forwarded.contains(&name.as_str()) {
            continue;
        }
        if value.len() > MAX_FORWARDED_HEADER_BYTES {
            return Err(ApiError::invalid(format!(
                "the `{name}` header is longer than {MAX_FORWARDED_HEADER_BYTES} bytes"
            )));
        }
        if out.len() == MAX_FORWARDED_HEADERS {
            return Err(ApiError::invalid(format!(
                "more than {MAX_FORWARDED_HEADERS} values of the headers {} were sent",
                forwarded.join(", ")
            )));
        }
        out.push((name.clone(), value.clone()));
    }
    Ok(out)
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
/// The body is covered by `reservation` (from its declared length before a
/// byte is read, then as it grows), or refused with 503 when the memory
/// budget is spent.
pub(crate) async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    timeout: Duration,
    reservation: &mut Reservation,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| usize::try_from(length).map_or(true, |l| l > limit)) {
        return Err(too_large(limit));
    }
    if let Some(declared) = declared.and_then(|length| usize::try_from(length).ok()) {
        reservation.cover_read(declared)?;
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
            reservation.cover_read(out.len() + chunk.len())?;
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

/// Keeps `reservation` until the answer's body has been sent or dropped:
/// a stream holds its request for as long as it runs.
pub(crate) fn hold_until_sent(response: Response, reservation: Reservation) -> Response {
    let (parts, body) = response.into_parts();
    let body = body.map_frame(move |frame| {
        let _held = &reservation;
        frame
    });
    Response::from_parts(parts, Body::new(body))
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
        for format in [
            ClientFormat::OpenAi,
            ClientFormat::Anthropic,
            ClientFormat::Responses,
            ClientFormat::Gemini,
        ] {
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
