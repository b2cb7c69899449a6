//! The request pipeline shared by all provider paths: auth, version checks,
//! fault selection, validation, answering, recording, then pacing.
//!
//! Everything is decided synchronously first so the request is logged (with
//! its outcome) before any hang or stream delay starts.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;

use crate::answer::{self, Answer};
use crate::clock;
use crate::cloud::Cloud;
use crate::cloud::filter::{self, Filter};
use crate::config::{Latency, SimConfig};
use crate::fault::{Fault, StatusFault, parse_fault_header, parse_latency_header};
use crate::format::Format;
use crate::headers::{cdn_html, provider_headers};
use crate::state::{RecordedRequest, Sim};
use crate::stream::{self, StreamFault, StreamPlan};
use crate::wire::{Ctx, ErrorSpec, Invalid};
use crate::{anthropic, gemini, openai, responses};

/// Headers whose values the request log replaces by [`REDACTED`]: the
/// providers' key headers (the first four, which also say whether a key was
/// presented) and other credentials.
const SECRET_HEADERS: [&str; 7] = [
    "authorization",
    "x-api-key",
    "x-goog-api-key",
    "api-key",
    "cookie",
    "proxy-authorization",
    "x-amz-security-token",
];

/// What the request log shows instead of a credential.
const REDACTED: &str = "<redacted>";

/// Models whose name ends so answer a stream request with a complete JSON
/// body, as some OpenAI-compatible servers do.
pub(crate) const JSON_STREAM_SUFFIX: &str = "-json-stream";

/// What kind of call a request is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Call {
    /// A generation; `stream` from the path (Gemini) or `None` to read the body.
    Generate { stream: Option<bool> },
    /// A generation by OpenAI's Responses API (`/v1/responses`), in format
    /// `openai` for auth, faults and errors; `stream` read from the body.
    Respond,
    /// Gemini `countTokens`, Anthropic `/v1/messages/count_tokens`.
    CountTokens,
    /// Embeddings: OpenAI `/v1/embeddings`, Gemini `:embedContent` and
    /// (`batch`) `:batchEmbedContents`.
    Embed { batch: bool },
    /// Model listing (`GET`); `model` set for a single-model lookup.
    Models { model: Option<String> },
}

/// A request as it arrived on a provider path.
pub(crate) struct Incoming {
    pub format: Format,
    pub call: Call,
    pub method: String,
    pub path: String,
    /// The query string as sent, without `?`.
    pub raw_query: Option<String>,
    pub headers: HeaderMap,
    pub query: HashMap<String, String>,
    pub body: Bytes,
    /// Model named in the path (Gemini, the clouds).
    pub path_model: Option<String>,
    /// The cloud the request came through, if any.
    pub cloud: Option<crate::cloud::Cloud>,
}

/// The finished decision: how long to wait, then what to send.
struct Outcome {
    label: String,
    delay: Duration,
    response: Response,
}

/// Serve one provider request end to end.
pub(crate) async fn handle(sim: Sim, inc: Incoming) -> Response {
    let config = sim.config();
    let seq = sim.next_seq();
    let parsed: Result<Value, String> = if inc.body.is_empty() {
        Err("empty request body".into())
    } else {
        serde_json::from_slice(&inc.body).map_err(|e| e.to_string())
    };
    let body_json = parsed.as_ref().cloned().unwrap_or(Value::Null);
    let model = inc
        .path_model
        .clone()
        .or_else(|| {
            body_json
                .get("model")
                .and_then(Value::as_str)
                .map(String::from)
        })
        .unwrap_or_default();
    let stream = match inc.call {
        Call::Generate { stream: Some(s) } => s,
        Call::Generate { stream: None } | Call::Respond => body_json
            .get("stream")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        _ => false,
    };
    let ctx = Ctx {
        seq,
        created: clock::unix_secs(),
        model: model.clone(),
        request_id: format!("req_sim{:016x}", seq.wrapping_mul(0x2545_F491_4F6C_DD1D)),
        include_usage: openai::include_usage(&body_json),
    };
    let outcome = decide(&sim, &config, &inc, &ctx, parsed, stream);
    sim.record(RecordedRequest {
        time_ms: clock::unix_millis(),
        method: inc.method.clone(),
        path: loggable_path(&inc.path, inc.raw_query.as_deref()),
        format: inc.format,
        model: (!model.is_empty()).then_some(model),
        stream,
        headers: loggable_headers(&inc.headers),
        auth_present: auth_present(&inc),
        outcome: outcome.label,
        body: body_json,
    });
    if !outcome.delay.is_zero() {
        tokio::time::sleep(outcome.delay).await;
    }
    outcome.response
}

/// Every header, credentials redacted; a header sent several times is kept
/// as its values joined with `, `, as HTTP allows.
fn loggable_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = if SECRET_HEADERS.contains(&name.as_str()) {
            REDACTED.to_string()
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        out.entry(name.to_string())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    out
}

/// The path with its query string; Gemini's `key` parameter (a credential)
/// is redacted like the key headers.
fn loggable_path(path: &str, query: Option<&str>) -> String {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return path.to_string();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some(("key", _)) => format!("key={REDACTED}"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn auth_present(inc: &Incoming) -> bool {
    SECRET_HEADERS[..4]
        .iter()
        .any(|h| inc.headers.contains_key(*h))
        || inc.query.contains_key("key")
}

/// The key the client sent, read the way each provider reads it.
fn presented_key(inc: &Incoming) -> Option<String> {
    let bearer = header_str(&inc.headers, "authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(String::from);
    match inc.format {
        Format::OpenAi => bearer,
        Format::Anthropic => header_str(&inc.headers, "x-api-key")
            .map(String::from)
            .or(bearer),
        Format::Gemini => header_str(&inc.headers, "x-goog-api-key")
            .map(String::from)
            .or_else(|| inc.query.get("key").cloned()),
    }
}

fn spec(ctx: &Ctx, status: u16) -> ErrorSpec {
    ErrorSpec {
        status,
        model: ctx.model.clone(),
        request_id: ctx.request_id.clone(),
        ..ErrorSpec::default()
    }
}

fn spec_from_fault(ctx: &Ctx, f: &StatusFault) -> ErrorSpec {
    ErrorSpec {
        error_type: f.error_type.clone(),
        code: f.code.clone(),
        message: f.message.clone(),
        quota_id: f.quota_id.clone(),
        retry_delay_secs: f.retry_after,
        ..spec(ctx, f.status)
    }
}

fn error_json(format: Format, spec: &ErrorSpec) -> Value {
    match format {
        Format::OpenAi => openai::error_body(spec),
        Format::Anthropic => anthropic::error_body(spec),
        Format::Gemini => gemini::error_body(spec),
    }
}

fn json_content_type(format: Format) -> &'static str {
    match format {
        Format::Gemini => "application/json; charset=UTF-8",
        _ => "application/json",
    }
}

fn build(status: u16, mut headers: HeaderMap, content_type: &str, body: Body) -> Response {
    if !headers.contains_key(header::CONTENT_TYPE)
        && let Ok(v) = HeaderValue::from_str(content_type)
    {
        headers.insert(header::CONTENT_TYPE, v);
    }
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    *resp.headers_mut() = headers;
    resp
}

/// A provider-shaped error response.
fn error_response(format: Format, spec: &ErrorSpec, fault: Option<&StatusFault>) -> Response {
    let headers = provider_headers(format, &spec.request_id, 0, fault);
    if fault.is_some_and(|f| f.html) {
        let (mut html_headers, page) = cdn_html(format, spec.status, &spec.request_id);
        html_headers.extend(headers);
        return build(spec.status, html_headers, "text/html", Body::from(page));
    }
    let body = error_json(format, spec).to_string();
    build(
        spec.status,
        headers,
        json_content_type(format),
        Body::from(body),
    )
}

fn plain_error(label: &str, format: Format, spec: &ErrorSpec) -> Outcome {
    Outcome {
        label: label.to_string(),
        delay: Duration::ZERO,
        response: error_response(format, spec, None),
    }
}

fn invalid(format: Format, ctx: &Ctx, inv: Invalid) -> Outcome {
    let spec = ErrorSpec {
        message: Some(inv.message),
        param: inv.param,
        ..spec(ctx, 400)
    };
    plain_error("error_400", format, &spec)
}

/// Everything up to (not including) the delay: the label and the response.
fn decide(
    sim: &Sim,
    config: &SimConfig,
    inc: &Incoming,
    ctx: &Ctx,
    parsed: Result<Value, String>,
    stream: bool,
) -> Outcome {
    let format = inc.format;
    let azure = inc.cloud == Some(Cloud::Azure);
    if let Some(cloud) = inc.cloud {
        let body = parsed.as_ref().ok();
        if let Some(refused) = crate::cloud::refusal(cloud, sim, config, inc, body, ctx) {
            return Outcome {
                label: refused.label,
                delay: Duration::ZERO,
                response: refused.response,
            };
        }
    } else if let Some(expected) = &config.api_key {
        let presented = presented_key(inc);
        if presented.as_deref() != Some(expected.as_str()) {
            let message = match (format, presented.is_some()) {
                (Format::OpenAi, false) => Some("You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).".to_string()),
                (Format::Anthropic, false) => Some("x-api-key header is required".to_string()),
                _ => None,
            };
            let spec = ErrorSpec {
                message,
                ..spec(ctx, 401)
            };
            return plain_error("error_401", format, &spec);
        }
    }
    // On the clouds the version travels in the body (`anthropic_version`).
    if format == Format::Anthropic
        && inc.cloud.is_none()
        && !matches!(inc.call, Call::Models { .. })
        && !inc.headers.contains_key("anthropic-version")
    {
        let spec = ErrorSpec {
            message: Some("anthropic-version: header is required".into()),
            ..spec(ctx, 400)
        };
        return plain_error("error_400", format, &spec);
    }
    if let Call::Models { model } = &inc.call {
        return models_response(config, format, ctx, model.as_deref());
    }

    let latency_header = header_str(&inc.headers, "x-sim-latency");
    if let Some(Err(e)) = latency_header.map(|h| parse_latency_header(h, Latency::default())) {
        return invalid(format, ctx, Invalid::new(format!("x-sim-latency: {e}")));
    }
    let header_fault = match header_str(&inc.headers, "x-sim-fault") {
        Some(spec_text) => match parse_fault_header(spec_text) {
            Ok(f) => Some(f),
            Err(e) => return invalid(format, ctx, Invalid::new(format!("x-sim-fault: {e}"))),
        },
        None => None,
    };
    let picked = sim.pick(format, &ctx.model, stream, header_fault.is_none());
    let speed = picked.speed;
    let fault = header_fault
        .or(picked.fault)
        .map(|f| crate::speed::fault(f, speed));
    let mut latency = match picked.latency_dist {
        Some(dist) => dist.sample(picked.latency, &mut fastrand::Rng::new()),
        None => picked.latency,
    };
    if let Some(Ok(l)) = latency_header.map(|h| parse_latency_header(h, latency)) {
        latency = l;
    }
    // Rate-limiting mode: over the quota, a real 429; under it, real headers.
    let mut quota_left = None;
    let minute = crate::speed::wait(60_000, speed);
    let fault = match (fault, picked.rate_limit_rpm) {
        (None, Some(rpm)) => match sim.take_quota(rpm, minute) {
            Ok(left) => {
                quota_left = Some((rpm, left.0, left.1));
                None
            }
            Err(wait) => Some(Fault::Status(StatusFault {
                retry_after: Some(wait.as_secs().max(1)),
                ..StatusFault::new(429)
            })),
        },
        (fault, _) => fault,
    };
    let label = fault
        .as_ref()
        .map_or_else(|| "ok".to_string(), |f| format!("fault_{}", f.label()));
    let mut delay = crate::speed::wait(latency.headers_ms, speed);
    match &fault {
        Some(Fault::Status(f)) => {
            let mut spec = spec_from_fault(ctx, f);
            if azure {
                crate::cloud::azure::status_error(&mut spec, f, inc);
            }
            return Outcome {
                label,
                delay,
                response: error_response(format, &spec, Some(f)),
            };
        }
        Some(Fault::ConnectionReset) => {
            return Outcome {
                label,
                delay,
                response: build(
                    200,
                    HeaderMap::new(),
                    "application/json",
                    stream::reset_body(),
                ),
            };
        }
        Some(Fault::Hang { duration_ms }) => delay += crate::speed::wait(*duration_ms, speed),
        _ => {}
    }

    let outcome = |response| Outcome {
        label: label.clone(),
        delay,
        response,
    };
    let body = match parsed {
        Ok(body) => body,
        Err(e) => {
            let message = match format {
                Format::OpenAi => {
                    format!("We could not parse the JSON body of your request. ({e})")
                }
                Format::Anthropic => format!("invalid request: {e}"),
                Format::Gemini => format!("Invalid JSON payload received. {e}"),
            };
            return invalid(format, ctx, Invalid::new(message));
        }
    };
    let body = match crate::cloud::provider_body(inc, body) {
        Ok(body) => body,
        Err(inv) => return invalid(format, ctx, inv),
    };
    if let Call::Embed { batch } = inc.call {
        if config.strict_models && !config.models.contains(&ctx.model) {
            return plain_error("error_404", format, &spec(ctx, 404));
        }
        let json = match crate::embed::answer(format, &body, &ctx.model, batch) {
            Ok(json) => json.to_string(),
            Err(inv) => return invalid(format, ctx, inv),
        };
        let headers = provider_headers(format, &ctx.request_id, 0, None);
        return outcome(json_response(format, ctx, headers, json, fault, speed));
    }
    let respond = inc.call == Call::Respond;
    let prompt = match format {
        Format::OpenAi if respond => responses::parse(&body, &ctx.model),
        Format::OpenAi => openai::parse(&body, &ctx.model),
        // A count takes a Messages body without `max_tokens`.
        Format::Anthropic if inc.call == Call::CountTokens => {
            let mut body = body.clone();
            if let Some(map) = body.as_object_mut() {
                map.entry("max_tokens").or_insert(Value::from(1));
            }
            anthropic::parse(&body, &ctx.model)
        }
        Format::Anthropic => anthropic::parse(&body, &ctx.model),
        Format::Gemini => gemini::parse(&body, &ctx.model),
    };
    let prompt = match prompt {
        Ok(p) => p,
        Err(inv) => return invalid(format, ctx, inv),
    };
    if config.strict_models && !config.models.contains(&ctx.model) {
        return plain_error("error_404", format, &spec(ctx, 404));
    }
    let filter = filter::pick(inc.cloud, fault.as_ref(), &prompt.last_user_text);
    if filter == Some(Filter::Prompt) {
        if !azure {
            return invalid(format, ctx, Invalid::new(filter::GENERIC_MESSAGE));
        }
        return Outcome {
            label: if fault.is_some() {
                label
            } else {
                "error_400".into()
            },
            delay,
            response: filter::refusal(),
        };
    }
    if inc.call == Call::CountTokens {
        let n = answer::prompt_tokens(&prompt.texts);
        let body = match format {
            Format::Anthropic => serde_json::json!({"input_tokens": n}),
            _ => serde_json::json!({
                "totalTokens": n,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": n}]
            }),
        };
        return outcome(build(
            200,
            HeaderMap::new(),
            json_content_type(format),
            Body::from(body.to_string()),
        ));
    }
    let mut answer = answer::answer(&prompt);
    let filtered = filter == Some(Filter::Output);
    if filtered {
        filter::cut(&mut answer);
    }
    let mut headers = provider_headers(format, &ctx.request_id, answer.input_tokens, None);
    if let Some((limit, left, reset)) = quota_left {
        crate::headers::request_quota(&mut headers, format, limit, left, reset);
    }
    let gemini_sse = inc.query.get("alt").is_some_and(|a| a == "sse");
    if stream && !ctx.model.ends_with(JSON_STREAM_SUFFIX) {
        let pacing = Pacing::new(latency, speed);
        return outcome(stream_response(
            format,
            ctx,
            &answer,
            headers,
            pacing,
            fault,
            Variant {
                gemini_sse,
                responses: respond.then_some(&body),
                azure: (azure && !respond).then_some(filtered),
            },
        ));
    }
    let mut json = match format {
        Format::OpenAi if respond => responses::response(ctx, &body, &answer),
        Format::OpenAi => openai::response(ctx, &answer),
        Format::Anthropic => anthropic::response(ctx, &answer),
        Format::Gemini => gemini::response(ctx, &answer),
    };
    if azure && !respond {
        filter::decorate(&mut json, filtered);
    }
    let json = json.to_string();
    let outcome = |response| Outcome {
        label: label.clone(),
        delay: delay.saturating_add(generation_time(
            format,
            ctx,
            &answer,
            Pacing::new(latency, speed),
            respond,
        )),
        response,
    };
    outcome(json_response(format, ctx, headers, json, fault, speed))
}

/// A complete JSON answer, with the faults a non-streamed body can carry.
fn json_response(
    format: Format,
    ctx: &Ctx,
    headers: HeaderMap,
    json: String,
    fault: Option<Fault>,
    speed: f64,
) -> Response {
    match fault {
        Some(Fault::ErrorEvent { status, .. }) => {
            // A non-streamed response has no events, so the error becomes the status.
            let spec = spec(ctx, status.unwrap_or(default_error_event_status(format)));
            error_response(format, &spec, None)
        }
        Some(f @ (Fault::Cut { .. } | Fault::Stall { .. } | Fault::Malformed { .. })) => {
            faulty_json(format, headers, json, &f, speed)
        }
        _ => build(200, headers, json_content_type(format), Body::from(json)),
    }
}

/// The overload status each provider uses for in-stream errors.
fn default_error_event_status(format: Format) -> u16 {
    match format {
        Format::Anthropic => 529,
        Format::OpenAi | Format::Gemini => 503,
    }
}

/// Stream-shaped faults on a non-streamed body act at its midpoint:
/// `cut` sends the first half, `stall` pauses between halves, `malformed`
/// drops the closing brace.
fn faulty_json(
    format: Format,
    headers: HeaderMap,
    json: String,
    fault: &Fault,
    speed: f64,
) -> Response {
    let mut mid = json.len() / 2;
    while !json.is_char_boundary(mid) {
        mid -= 1;
    }
    let (first, second) = json.split_at(mid);
    let (frames, fault) = match fault {
        Fault::Malformed { .. } => {
            let broken = json.strip_suffix('}').unwrap_or(&json).to_string();
            (vec![stream::Frame::immediate(broken)], None)
        }
        Fault::Stall { duration_ms, .. } => (
            vec![
                stream::Frame::immediate(first),
                stream::Frame::immediate(second),
            ],
            Some(StreamFault::Stall {
                after: 1,
                duration: crate::speed::wait(*duration_ms, speed),
            }),
        ),
        _ => (
            vec![
                stream::Frame::immediate(first),
                stream::Frame::immediate(second),
            ],
            Some(StreamFault::Cut { after: 1 }),
        ),
    };
    let plan = StreamPlan {
        frames,
        first_token: Duration::ZERO,
        interval: Duration::ZERO,
        fault,
        error_frame: Bytes::new(),
    };
    build(200, headers, json_content_type(format), stream::body(plan))
}

/// How long the answer takes to generate: a provider sends a complete
/// answer only once it has all of it, as long after the request as the
/// last token of the same answer streamed. Without it, a drill's direct
/// baseline would get its complete answers sooner than any real provider
/// gives them, and look faster than the gateway that streams them.
fn generation_time(
    format: Format,
    ctx: &Ctx,
    answer: &Answer,
    pacing: Pacing,
    respond: bool,
) -> Duration {
    let first_token = crate::speed::wait(pacing.latency.first_token_ms, pacing.speed);
    let interval = crate::speed::wait(pacing.latency.token_interval_ms, pacing.speed);
    if first_token.is_zero() && interval.is_zero() {
        return Duration::ZERO;
    }
    let frames = match format {
        // Only the paced frames are counted: the request's echo is immaterial.
        Format::OpenAi if respond => responses::stream_frames(ctx, &Value::Null, answer),
        Format::OpenAi => openai::stream_frames(ctx, answer),
        Format::Anthropic => anthropic::stream_frames(ctx, answer),
        Format::Gemini => gemini::stream_frames(ctx, answer, true),
    };
    let tokens = frames.iter().filter(|frame| frame.paced).count();
    let later_tokens = u32::try_from(tokens.saturating_sub(1)).unwrap_or(u32::MAX);
    first_token.saturating_add(interval.saturating_mul(later_tokens))
}

/// One request's stream pacing in scenario milliseconds, with the speed that
/// turns it into wall time.
#[derive(Debug, Clone, Copy)]
struct Pacing {
    latency: Latency,
    speed: f64,
}

impl Pacing {
    fn new(latency: Latency, speed: f64) -> Self {
        Self { latency, speed }
    }
}

/// Which of a format's stream shapes a request gets.
#[derive(Debug, Clone, Copy)]
struct Variant<'a> {
    /// Gemini `alt=sse`: server-sent events rather than a JSON array.
    gemini_sse: bool,
    /// OpenAI's Responses API rather than Chat Completions: the request,
    /// whose settings its events repeat.
    responses: Option<&'a Value>,
    /// Azure's Chat Completions: its content-filter annotations, and
    /// whether the answer was filtered.
    azure: Option<bool>,
}

fn stream_response(
    format: Format,
    ctx: &Ctx,
    answer: &Answer,
    mut headers: HeaderMap,
    pacing: Pacing,
    fault: Option<Fault>,
    variant: Variant<'_>,
) -> Response {
    let Variant {
        gemini_sse,
        responses: request,
        azure,
    } = variant;
    let status = match &fault {
        Some(Fault::ErrorEvent {
            status: Some(s), ..
        }) => *s,
        _ => default_error_event_status(format),
    };
    let err = spec(ctx, status);
    let (frames, error_frame, content_type) = match (format, request) {
        (Format::OpenAi, Some(request)) => (
            responses::stream_frames(ctx, request, answer),
            responses::error_frame(&err),
            "text/event-stream; charset=utf-8",
        ),
        (Format::OpenAi, None) => (
            openai::stream_frames(ctx, answer),
            openai::error_frame(&err),
            "text/event-stream; charset=utf-8",
        ),
        (Format::Anthropic, _) => (
            anthropic::stream_frames(ctx, answer),
            anthropic::error_frame(&err),
            "text/event-stream; charset=utf-8",
        ),
        (Format::Gemini, _) => (
            gemini::stream_frames(ctx, answer, gemini_sse),
            gemini::error_frame(&err, gemini_sse),
            if gemini_sse {
                "text/event-stream"
            } else {
                "application/json; charset=UTF-8"
            },
        ),
    };
    let frames = match azure {
        Some(filtered) => filter::decorate_stream(frames, filtered),
        None => frames,
    };
    let stream_fault = match fault {
        Some(Fault::Stall {
            after_chunks,
            duration_ms,
        }) => Some(StreamFault::Stall {
            after: after_chunks,
            duration: crate::speed::wait(duration_ms, pacing.speed),
        }),
        Some(Fault::Cut { after_chunks }) => Some(StreamFault::Cut {
            after: after_chunks,
        }),
        Some(Fault::Malformed { after_chunks }) => Some(StreamFault::Malformed {
            after: after_chunks,
        }),
        Some(Fault::ErrorEvent { after_chunks, .. }) => Some(StreamFault::ErrorEvent {
            after: after_chunks,
        }),
        _ => None,
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let plan = StreamPlan {
        frames,
        first_token: crate::speed::wait(pacing.latency.first_token_ms, pacing.speed),
        interval: crate::speed::wait(pacing.latency.token_interval_ms, pacing.speed),
        fault: stream_fault,
        error_frame: Bytes::from(error_frame),
    };
    build(200, headers, content_type, stream::body(plan))
}

/// Model listing in the provider's shape.
fn models_response(config: &SimConfig, format: Format, ctx: &Ctx, model: Option<&str>) -> Outcome {
    let body = match (format, model) {
        (Format::Gemini, Some(m)) => {
            if config.strict_models && !config.models.iter().any(|x| x == m) {
                return plain_error("error_404", format, &spec(ctx, 404));
            }
            gemini::model_entry(m)
        }
        (Format::Gemini, None) => gemini::models(&config.models),
        (Format::Anthropic, _) => anthropic::models(&config.models),
        (Format::OpenAi, _) => openai::models(&config.models),
    };
    let headers = provider_headers(format, &ctx.request_id, 0, None);
    Outcome {
        label: "ok".into(),
        delay: crate::speed::wait(config.latency.headers_ms, config.speed),
        response: build(
            200,
            headers,
            json_content_type(format),
            Body::from(body.to_string()),
        ),
    }
}
