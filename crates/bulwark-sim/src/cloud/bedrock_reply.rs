//! Rewrites the Anthropic answer of the shared pipeline into Bedrock's
//! shape: errors as `{"message"}` with `x-amzn-ErrorType`, Bedrock's
//! headers instead of Anthropic's, and streams as event-stream frames whose
//! chunks carry each Anthropic event base64-encoded.
//!
//! Fault statuses map onto Bedrock's exceptions as Bedrock sends them:
//! 429 ThrottlingException, 503/529 ServiceUnavailableException (503),
//! 500 InternalServerException, 424 ModelNotReadyException (sent as 429,
//! Bedrock's real status for it), 400 ValidationException, 401/403 (sent
//! as 403) UnrecognizedClientException/AccessDeniedException, 404
//! ResourceNotFoundException, 408 ModelTimeoutException. A fault's
//! `error_type` ending in `Exception` is used as the type as it is.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::bedrock::Api;
use super::converse::{self, StreamState};
use super::eventstream;
use super::invocation_metrics::InvocationMetrics;

/// Error bodies of the pipeline are small; a larger one is not an error body.
const MAX_ERROR_BODY: usize = 1 << 20;

/// A complete answer rewritten for Converse is read whole first.
const MAX_ANSWER_BODY: usize = 64 << 20;

/// Headers of the pipeline's answer that survive into Bedrock's.
const KEPT: [&str; 3] = ["retry-after", "retry-after-ms", "cache-control"];

/// A Bedrock error: its type (e.g. `ThrottlingException`) and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exception {
    pub error_type: String,
    pub message: String,
}

impl Exception {
    pub(crate) fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error_type: error_type.into(),
            message: message.into(),
        }
    }
}

/// A Bedrock error response.
pub(crate) fn error(status: u16, exception: &Exception, request_id: &str) -> Response {
    let body = json!({"message": exception.message}).to_string();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    put(
        headers,
        "x-amzn-errortype",
        &format!(
            "{}:http://internal.amazon.com/coral/com.amazon.bedrock/",
            exception.error_type
        ),
    );
    put(headers, "x-amzn-requestid", request_id);
    response
}

fn put(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

/// The status and exception Bedrock answers for a pipeline error with
/// `status` and Anthropic's error `kind` and `message`.
pub(crate) fn exception_for(status: u16, kind: &str, message: &str) -> (u16, Exception) {
    if kind.ends_with("Exception") {
        let default = default_message(kind).unwrap_or(message);
        return (status, Exception::new(kind, default));
    }
    let (status, kind) = match status {
        429 => (429, "ThrottlingException"),
        503 | 529 => (503, "ServiceUnavailableException"),
        424 => (429, "ModelNotReadyException"),
        401 => (403, "UnrecognizedClientException"),
        403 => (403, "AccessDeniedException"),
        404 => (404, "ResourceNotFoundException"),
        408 => (408, "ModelTimeoutException"),
        500..=599 => (status, "InternalServerException"),
        _ => (status, "ValidationException"),
    };
    let message = default_message(kind).unwrap_or(message);
    (status, Exception::new(kind, message))
}

/// Bedrock's words for each exception; `None` keeps the pipeline's message
/// (a validation error says what was wrong).
fn default_message(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "ThrottlingException" => "Too many requests, please wait before trying again.",
        "ServiceUnavailableException" => "Bedrock is unable to process your request.",
        "ModelNotReadyException" => {
            "Model is not ready to serve inference requests. The AWS SDK will automatically retry the operation up to 5 times. For information about configuring automatic retries, see Retry behavior in the AWS SDKs and Tools reference guide."
        }
        "UnrecognizedClientException" => "The security token included in the request is invalid.",
        "AccessDeniedException" => {
            "You don't have access to the model with the specified model ID."
        }
        "ResourceNotFoundException" => "The provided model identifier is invalid.",
        "ModelTimeoutException" => {
            "Model has timed out in processing the request. Try your request again."
        }
        "InternalServerException" => {
            "The server encountered an internal error while processing the request."
        }
        _ => return None,
    })
}

/// The event-stream exception type for an Anthropic in-stream error type.
fn stream_exception_type(kind: &str) -> &'static str {
    match kind {
        "rate_limit_error" => "throttlingException",
        "overloaded_error" => "serviceUnavailableException",
        "api_error" => "internalServerException",
        "timeout_error" => "modelTimeoutException",
        "invalid_request_error" => "validationException",
        _ => "modelStreamErrorException",
    }
}

/// The pipeline's Anthropic answer in Bedrock's shape.
pub(crate) async fn reshape(
    response: Response,
    stream: bool,
    api: Api,
    started: Instant,
) -> Response {
    // Bedrock's own refusals are already in its shape.
    if response.headers().contains_key("x-amzn-errortype") {
        return response;
    }
    let (parts, body) = response.into_parts();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let request_id = header("request-id").to_string();
    let content_type = header(header::CONTENT_TYPE.as_str()).to_string();
    let mut headers = HeaderMap::new();
    for name in KEPT {
        if let Some(value) = parts.headers.get(name) {
            headers.insert(HeaderName::from_static(name), value.clone());
        }
    }
    put(&mut headers, "x-amzn-requestid", &request_id);
    let status = parts.status.as_u16();
    // A CDN's HTML page stays what it is.
    if !parts.status.is_success() && !content_type.starts_with("text/html") {
        let bytes = axum::body::to_bytes(body, MAX_ERROR_BODY)
            .await
            .unwrap_or_default();
        let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let kind = json
            .pointer("/error/type")
            .and_then(Value::as_str)
            .unwrap_or("");
        let message = json
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("");
        let (status, exception) = exception_for(status, kind, message);
        let mut response = error(status, &exception, &request_id);
        response.headers_mut().extend(headers);
        return response;
    }
    let body = if parts.status.is_success() && content_type.starts_with("text/event-stream") {
        put(
            &mut headers,
            "content-type",
            "application/vnd.amazon.eventstream",
        );
        put(
            &mut headers,
            "x-amzn-bedrock-content-type",
            "application/json",
        );
        frames(body, api, started)
    } else if api == Api::Converse && parts.status.is_success() && !stream {
        put(&mut headers, "content-type", "application/json");
        converse_answer(body).await
    } else {
        if !content_type.is_empty() {
            put(&mut headers, "content-type", &content_type);
        }
        if !stream {
            put(
                &mut headers,
                "x-amzn-bedrock-content-type",
                "application/json",
            );
        }
        body
    };
    let mut response = Response::new(body);
    *response.status_mut() = parts.status;
    *response.headers_mut() = headers;
    response
}

/// A complete Anthropic answer as Converse's; one that is not JSON (a
/// `cut` or `malformed` fault) goes on as it is.
async fn converse_answer(body: Body) -> Body {
    let bytes = axum::body::to_bytes(body, MAX_ANSWER_BODY)
        .await
        .unwrap_or_default();
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(message) => Body::from(converse::response(&message).to_string()),
        Err(_) => Body::from(bytes),
    }
}

/// Anthropic's SSE events, re-framed one by one as they come, so that the
/// pipeline's pacing, stalls and cuts reach the client unchanged.
fn frames(body: Body, api: Api, started: Instant) -> Body {
    let mut upstream = body.into_data_stream();
    let mut reply = match api {
        Api::Converse => Reply::Converse(StreamState::default()),
        Api::Invoke => Reply::Invoke(InvocationMetrics::new(started)),
    };
    let stream = async_stream::stream! {
        let mut buffer: Vec<u8> = Vec::new();
        while let Some(chunk) = upstream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    yield Err(std::io::Error::other(e));
                    return;
                }
            };
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = buffer.drain(..end + 2).collect();
                if let Some(frame) = frame_of(&event, &mut reply) {
                    yield Ok::<Bytes, std::io::Error>(Bytes::from(frame));
                }
            }
        }
        if let Some(frame) = frame_of(&buffer, &mut reply) {
            yield Ok(Bytes::from(frame));
        }
    };
    Body::from_stream(stream)
}

/// What a stream's events become, and what it remembers between them.
enum Reply {
    /// InvokeModel: each event as a `chunk`, metrics added at the end.
    Invoke(InvocationMetrics),
    /// Converse: Bedrock's own events.
    Converse(StreamState),
}

/// One SSE event as event-stream messages: a `chunk` (InvokeModel), the
/// Converse events it stands for, or for `event: error` an exception message.
fn frame_of(event: &[u8], reply: &mut Reply) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(event);
    let mut name = None;
    let mut data: Vec<&str> = Vec::new();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            name = Some(v.trim());
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push(v.strip_prefix(' ').unwrap_or(v));
        }
    }
    if data.is_empty() {
        return None;
    }
    let data = data.join("\n");
    if name == Some("error") {
        let json: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
        let kind = json
            .pointer("/error/type")
            .and_then(Value::as_str)
            .unwrap_or("");
        let message = json
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("");
        let payload = json!({"message": message}).to_string();
        return Some(eventstream::exception(
            stream_exception_type(kind),
            payload.as_bytes(),
        ));
    }
    let metrics = match reply {
        Reply::Converse(state) => return Some(converse_frames(state, &data)),
        Reply::Invoke(metrics) => metrics,
    };
    let data = metrics.observe(&data, Instant::now()).unwrap_or(data);
    let encoded = base64::engine::general_purpose::STANDARD.encode(data.as_bytes());
    let payload = json!({"bytes": encoded}).to_string();
    Some(eventstream::chunk(payload.as_bytes()))
}

fn converse_frames(state: &mut StreamState, data: &str) -> Vec<u8> {
    let Ok(event) = serde_json::from_str::<Value>(data) else {
        // A `malformed` fault: the broken JSON goes out as a delta's payload.
        return eventstream::event("contentBlockDelta", data.as_bytes());
    };
    state
        .events(&event)
        .into_iter()
        .flat_map(|(name, payload)| eventstream::event(name, payload.to_string().as_bytes()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_statuses_map_to_bedrock_exceptions() {
        let cases = [
            (429, 429, "ThrottlingException"),
            (529, 503, "ServiceUnavailableException"),
            (503, 503, "ServiceUnavailableException"),
            (424, 429, "ModelNotReadyException"),
            (500, 500, "InternalServerException"),
            (400, 400, "ValidationException"),
            (403, 403, "AccessDeniedException"),
            (404, 404, "ResourceNotFoundException"),
        ];
        for (fault, status, kind) in cases {
            let (s, e) = exception_for(fault, "", "m");
            assert_eq!((s, e.error_type.as_str()), (status, kind), "fault {fault}");
        }
        let (_, validation) =
            exception_for(400, "invalid_request_error", "max_tokens: Field required");
        assert_eq!(validation.message, "max_tokens: Field required");
        let (s, named) = exception_for(429, "ModelNotReadyException", "x");
        assert_eq!(
            (s, named.error_type.as_str()),
            (429, "ModelNotReadyException")
        );
    }

    fn invoke() -> Reply {
        Reply::Invoke(InvocationMetrics::new(Instant::now()))
    }

    #[test]
    fn sse_events_become_frames() {
        let chunk = frame_of(b"event: ping\ndata: {\"type\":\"ping\"}\n\n", &mut invoke()).unwrap();
        let expected_payload = json!({"bytes": base64::engine::general_purpose::STANDARD.encode(b"{\"type\":\"ping\"}")}).to_string();
        assert!(
            chunk.ends_with(&[expected_payload.as_bytes(), &chunk[chunk.len() - 4..]].concat())
        );
        let error = frame_of(
            b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow\"}}\n\n",
            &mut invoke(),
        )
        .unwrap();
        let text = String::from_utf8_lossy(&error);
        assert!(text.contains("throttlingException"), "{text}");
        assert!(text.contains(r#"{"message":"slow"}"#), "{text}");
        assert_eq!(frame_of(b": comment\n\n", &mut invoke()), None);
    }
}
