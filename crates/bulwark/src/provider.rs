//! The HTTP client for a provider: sending, reading error bodies and wait
//! hints, and the stream's byte loop. Everything about the provider's wire
//! format is its dialect's (`wire::upstream`). Every failure leaves here as a
//! classified `UpstreamError`, made by the provider's `Redactor`: its
//! credentials, or fragments of them, never appear in one. Redirects are
//! never followed, so credentials never leave for another origin.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::Stream;
use http::HeaderMap;
use serde_json::Value;

use crate::api::{ChatRequest, StreamEvent, WireFormat};
use crate::config::{ProviderConfig, ProviderKind};
use crate::error::{ApiError, UpstreamError, UpstreamFailure};
use crate::unary::{Unary, UnaryCall};
use crate::wire::UpstreamDialect;

mod body;
pub(crate) mod cloud;
pub(crate) mod complete;
mod hints;
mod redact;
use body::{BoundedBody, describe_transport, read_capped};
use hints::header_text;
pub use hints::{rate_limit_reset, retry_after};
use redact::Redactor;

pub use crate::wire::Chunk;

/// A stream of answer events; an `Err` ends it.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, UpstreamError>> + Send>>;

/// A provider's answer as it streams in; an `Err` ends it.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Chunk, UpstreamError>> + Send>>;

/// How much of an error body is read: enough for any provider's JSON error,
/// little enough that a runaway HTML page cannot cost much.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Idle pooled connections are closed before the providers' load balancers
/// (often 60 s or more) would drop them, avoiding resets on reuse.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(50);

#[derive(Debug, thiserror::Error)]
#[error("provider `{name}`: cannot build its HTTP client: {source}")]
pub struct ProviderBuildError {
    name: String,
    source: reqwest::Error,
}

#[derive(Debug)]
pub struct Provider {
    name: String,
    config: ProviderConfig,
    dialect: &'static dyn UpstreamDialect,
    http: reqwest::Client,
    /// Every error this provider causes is made by it, so that its key
    /// never reaches a client or a log.
    redactor: Arc<Redactor>,
    /// The cloud serving the API, for a cloud kind (`provider/cloud/`):
    /// its URLs, body changes, auth and stream framing replace the
    /// dialect's.
    cloud: Option<Box<dyn cloud::CloudApi>>,
}

impl Provider {
    pub fn new(name: &str, config: ProviderConfig) -> Result<Provider, ProviderBuildError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .tcp_nodelay(true)
            // An LLM API does not redirect; a 3xx means a wrong base_url or
            // a hijacked one. Following it would send the key headers
            // (`x-api-key`, `x-goog-api-key`) and the prompt to wherever it
            // points, so the 3xx is returned and classified instead.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("bulwark/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| ProviderBuildError {
                name: name.to_string(),
                source,
            })?;
        let redactor = Redactor::new(
            config.api_key.as_ref().map(|key| key.expose()),
            config
                .headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.expose())),
            &config
                .cloud
                .as_ref()
                .map(crate::config::CloudConfig::secrets)
                .unwrap_or_default(),
        );
        Ok(Provider {
            name: name.to_string(),
            redactor: Arc::new(redactor),
            dialect: crate::wire::upstream(config.kind),
            cloud: cloud::build(&config, &http),
            config,
            http,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> ProviderKind {
        self.config.kind
    }

    /// The dialect `model` is served in: the kind's, or on a cloud that
    /// serves several APIs the one of that model (Gemini on Vertex).
    pub fn dialect_of(&self, model: &str) -> &'static dyn UpstreamDialect {
        self.cloud
            .as_ref()
            .map_or(self.dialect, |cloud| cloud.dialect(model))
    }

    /// The dialect `request` is sent in to `model`: the one of the
    /// client's own format when this provider also speaks it (OpenAI's
    /// Responses API for a Responses client), so nothing is translated;
    /// the model's (`dialect_of`) otherwise. Every per-request use of the
    /// format goes through here.
    pub fn dialect_for(&self, request: &ChatRequest, model: &str) -> &'static dyn UpstreamDialect {
        let dialect = self.dialect_of(model);
        request
            .source
            .as_ref()
            .and_then(|source| dialect.also_speaks(source.format))
            .unwrap_or(dialect)
    }

    /// The wire format `request` is sent and answered in (`dialect_for`).
    pub fn format_for(&self, request: &ChatRequest, model: &str) -> WireFormat {
        self.dialect_for(request, model).format()
    }

    /// The OpenTelemetry GenAI `gen_ai.provider.name`: the cloud's, or the
    /// API's.
    pub fn semconv_name(&self) -> &'static str {
        self.cloud
            .as_ref()
            .map_or(self.dialect.semconv_name(), |cloud| cloud.semconv_name())
    }

    /// Sends the request and returns the response once its status is a success.
    async fn send(
        &self,
        request: &ChatRequest,
        model: &str,
        target: &str,
    ) -> Result<reqwest::Response, UpstreamError> {
        let rejected = |error: crate::error::ApiError| {
            self.redactor.error(
                target,
                UpstreamFailure::Rejected(error.clone()),
                error.message,
            )
        };
        let dialect = self.dialect_for(request, model);
        let mut url = match &self.cloud {
            Some(cloud) => cloud.url(dialect, model, self.config.stream),
            None => dialect.url(&self.config.base_url, model),
        }
        .map_err(rejected)?;
        // What the client sent besides its body names its own format's
        // features (Claude Code's `?beta=true`, its `anthropic-beta`): only
        // a target of that format is given it. A cloud's query string is
        // its own (`api-version`), and takes nothing else.
        let own = request
            .source
            .as_ref()
            .filter(|source| source.format == dialect.format());
        if self.cloud.is_none()
            && let Some(query) = own.and_then(|source| source.query.as_deref())
        {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(query);
        }
        let mut body = dialect
            .encode_request(request, model, self.config.default_max_tokens)
            .map_err(rejected)?;
        if !self.config.stream {
            complete::ask_complete(&mut body);
        }
        let forwarded = own.map_or(&[][..], |source| source.headers.as_slice());
        let forwarded = match &self.cloud {
            Some(cloud) => cloud.adapt(dialect, &mut body, forwarded),
            None => forwarded.to_vec(),
        };
        let body = self.encoded(&body, target).map_err(|e| *e)?;
        self.post(url, body, &forwarded, target, dialect).await
    }

    /// A body as JSON bytes; the error is redacted as any other.
    fn encoded(&self, body: &Value, target: &str) -> Result<Vec<u8>, Box<UpstreamError>> {
        serde_json::to_vec(body).map_err(|e| {
            Box::new(self.redactor.error(
                target,
                UpstreamFailure::Decode,
                format!("cannot encode the request: {e}"),
            ))
        })
    }

    /// POSTs a JSON body to `url` with the dialect's and the operator's
    /// headers, and the client's `forwarded` ones (for a target of its own
    /// format); returns the response once its status is a success. Chat and
    /// unary calls all leave through here.
    async fn post(
        &self,
        url: String,
        body: Vec<u8>,
        forwarded: &[(http::HeaderName, http::HeaderValue)],
        target: &str,
        dialect: &'static dyn UpstreamDialect,
    ) -> Result<reqwest::Response, UpstreamError> {
        let mut builder = self
            .http
            .post(url)
            .header(http::header::CONTENT_TYPE, "application/json");
        let key = self.config.api_key.as_ref().map(|key| key.expose());
        // A cloud authenticates in its own way, below; the API's own key
        // and version headers are not its.
        let dialect_headers = match self.cloud {
            Some(_) => Vec::new(),
            None => dialect.headers(key),
        };
        for header in dialect_headers {
            builder = match http::HeaderValue::from_str(&header.value) {
                Ok(mut value) => {
                    value.set_sensitive(header.secret);
                    builder.header(header.name, value)
                }
                // reqwest keeps the error and reports it when sending.
                Err(_) => builder.header(header.name, header.value),
            };
        }
        // Names this attempt's span as the upstream call's parent, when
        // traces are exported (see `observe::propagate`).
        if let Some(traceparent) = crate::observe::propagate::traceparent(&tracing::Span::current())
            .and_then(|t| http::HeaderValue::from_str(&t).ok())
        {
            builder = builder.header(crate::observe::propagate::TRACEPARENT, traceparent);
        }
        if !forwarded.is_empty() {
            let mut headers = HeaderMap::new();
            for (name, value) in forwarded {
                headers.append(name.clone(), value.clone());
            }
            // Replaces the dialect's own values of the same names: a client's
            // `anthropic-version` is the version its body was written for.
            builder = builder.headers(headers);
        }
        // The operator's headers replace the dialect's and the client's of
        // the same names (an `anthropic-version` pinned for this provider):
        // added beside them, they would go out as two values, which a
        // provider joins into one it does not know or refuses.
        let mut configured = HeaderMap::new();
        for (name, value) in &self.config.headers {
            match (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value.expose()),
            ) {
                (Ok(name), Ok(mut value)) => {
                    value.set_sensitive(true);
                    configured.append(name, value);
                }
                // reqwest keeps the error and reports it when sending.
                _ => builder = builder.header(name, value.expose()),
            }
        }
        builder = builder.headers(configured);
        let mut request = builder
            .body(body)
            .build()
            .map_err(|e| self.transport_error(target, &e))?;
        if let Some(cloud) = &self.cloud {
            cloud
                .authorize(&mut request)
                .await
                .map_err(|e| self.auth_error(target, e))?;
        }
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| self.transport_error(target, &e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        if status == http::StatusCode::UNAUTHORIZED
            && let Some(cloud) = &self.cloud
        {
            cloud.credentials_rejected();
        }
        Err(self.status_error(target, response, dialect).await)
    }

    /// A cloud credential that could not authenticate: refused ones are
    /// the operator's to fix, as a provider's 401 is; an unreachable token
    /// endpoint is as transient as an unreachable provider.
    fn auth_error(&self, target: &str, error: cloud::CloudAuthError) -> UpstreamError {
        let (failure, message) = match error {
            cloud::CloudAuthError::Refused(message) => (
                UpstreamFailure::Status {
                    status: 401,
                    provider_code: Some("credentials_refused".into()),
                },
                format!("the cloud's credentials were refused: {message}"),
            ),
            cloud::CloudAuthError::Unavailable(message) => (
                UpstreamFailure::Connect,
                format!("the cloud's token endpoint failed: {message}"),
            ),
        };
        self.redactor.error(target, failure, message)
    }

    pub fn limits(&self) -> crate::config::RateLimits {
        self.config.limits
    }

    pub fn default_max_tokens(&self) -> u32 {
        self.config.default_max_tokens
    }

    pub fn concurrency(&self) -> crate::resilience::concurrency::ConcurrencyConfig {
        self.config.concurrency
    }

    /// The configured context window of `model`, in tokens.
    pub fn context_window(&self, model: &str) -> Option<u64> {
        self.config.context_windows.get(model).copied()
    }

    /// The wire format this provider speaks.
    pub fn format(&self) -> WireFormat {
        self.dialect.format()
    }

    /// Whether the provider is asked for streams (`stream: true`, the
    /// default); without, it is asked for complete answers, whose first
    /// token is their last.
    pub fn streams(&self) -> bool {
        self.config.stream
    }

    /// Sends the request as a stream, whatever the client asked for: only a
    /// stream shows when the first token arrives, and a broken answer can be
    /// replaced before a non-streaming client sees any of it. Returns once
    /// the provider accepted the request, with when its quota resets if its
    /// rate-limit headers say it is used up; chunks follow. A gap longer than
    /// `idle_timeout`, a stream cut before its terminator, or an error event
    /// ends the stream with an `Err`.
    ///
    /// So does an answer past `max_response_bytes`, or one event past the
    /// SSE decoder's cap (`sse::MAX_EVENT_BYTES`): a complete answer is held
    /// whole until its end, and even a relayed stream, which holds nothing,
    /// must end, so the cap counts every byte read for the answer whatever
    /// the client asked for.
    ///
    /// A provider that answers with JSON instead (some compatible servers
    /// do, whatever they were asked; one configured with `stream: false` is
    /// asked to) gives its complete answer, read whole within the same caps
    /// and decoded by the dialect, as the chunks of the stream it stands
    /// for: the rest of the engine cannot tell it from a stream.
    pub async fn stream(
        &self,
        request: &ChatRequest,
        model: &str,
        target: &str,
        idle_timeout: Duration,
    ) -> Result<(ChunkStream, Option<Duration>), UpstreamError> {
        let response = self.send(request, model, target).await?;
        // A quota the provider says is used up: when it resets.
        let exhausted = rate_limit_reset(response.headers(), SystemTime::now());
        if complete::is_json(response.headers()) {
            return Ok((
                self.complete_answer(response, request, model, target, idle_timeout),
                exhausted,
            ));
        }
        let mut body = BoundedBody::new(
            response.bytes_stream(),
            idle_timeout,
            self.config.max_response_bytes,
            "stream",
        );
        let mut decoder = self.dialect_for(request, model).stream_decoder();
        let framing = self
            .cloud
            .as_ref()
            .map_or(cloud::Framing::Sse, |cloud| cloud.framing());
        let target = target.to_string();
        let model_name = model.to_string();
        let redactor = Arc::clone(&self.redactor);
        let stream = async_stream::stream! {
            let mut frames = framing.decoder();
            let mut sse_events = Vec::new();
            loop {
                let chunk = match body.next().await {
                    Ok(Some(chunk)) => chunk,
                    Ok(None) => break,
                    Err((failure, message)) => {
                        yield Err(redactor.error(&target, failure, message));
                        return;
                    }
                };
                // The events completed before an overflow go on first, as
                // with any break; one of them may even end the answer.
                let fed = frames.feed(&chunk, &mut sse_events);
                for raw in sse_events.drain(..) {
                    let mut events = Vec::new();
                    if let Err(fault) = decoder.on_event(&raw, &mut events) {
                        yield Err(redactor.error(&target, UpstreamFailure::Stream { provider_code: fault.code }, fault.message));
                        return;
                    }
                    name_model(&mut events, &model_name);
                    yield Ok(Chunk { raw, events });
                    if decoder.is_done() {
                        return;
                    }
                }
                match fed {
                    Ok(()) => {}
                    Err(cloud::FrameError::TooLarge(message)) => {
                        yield Err(redactor.error(&target, UpstreamFailure::TooLarge, message));
                        return;
                    }
                    Err(cloud::FrameError::Fault(fault)) => {
                        yield Err(redactor.error(&target, UpstreamFailure::Stream { provider_code: fault.code }, fault.message));
                        return;
                    }
                }
            }
            if !decoder.is_done() {
                yield Err(redactor.error(&target, UpstreamFailure::Stream { provider_code: None }, "the stream ended before its terminator (the answer is truncated)"));
            }
        };
        Ok((Box::pin(stream), exhausted))
    }

    /// How this provider's API takes a unary `operation` on `model`;
    /// `None` when it has no such endpoint. Cheap: no body is made until
    /// the call is sent.
    pub fn unary_call<'a>(
        &self,
        operation: &'a Unary,
        model: &str,
    ) -> Option<Result<UnaryCall<'a>, ApiError>> {
        // A cloud says which of its endpoints it serves (Azure's
        // embeddings); the others' targets are passed over.
        if let Some(cloud) = &self.cloud {
            return cloud.unary(operation, model);
        }
        self.dialect.unary(operation, &self.config.base_url, model)
    }

    /// Sends a unary call (each of its bodies in turn, each made only when
    /// sent) and reads each JSON answer whole, within the idle timeout as
    /// any answer, then into the client's shape by the call's decoder.
    /// `max_response_bytes` bounds the call's answers together, not each
    /// part: a call of many batches holds no more than one answer may. The
    /// client's `forwarded` headers are the only extra it carries.
    pub async fn unary(
        &self,
        call: &UnaryCall<'_>,
        forwarded: &[(http::HeaderName, http::HeaderValue)],
        target: &str,
        idle_timeout: Duration,
    ) -> Result<Value, UpstreamError> {
        let mut answers = Vec::with_capacity(call.parts);
        let mut read = 0;
        for part in 0..call.parts {
            let body = call.body(part);
            answers.push(
                self.unary_part(&call.url, &body, forwarded, target, idle_timeout, &mut read)
                    .await?,
            );
        }
        (call.decode)(answers).map_err(|message| {
            self.redactor
                .error(target, UpstreamFailure::Decode, message)
        })
    }

    /// One request of a unary call, and its answer as JSON. `read`: the
    /// bytes the call's earlier answers took of `max_response_bytes`.
    async fn unary_part(
        &self,
        url: &str,
        body: &Value,
        forwarded: &[(http::HeaderName, http::HeaderValue)],
        target: &str,
        idle_timeout: Duration,
        read: &mut u64,
    ) -> Result<Value, UpstreamError> {
        let body = self.encoded(body, target).map_err(|e| *e)?;
        let response = self
            .post(url.to_string(), body, forwarded, target, self.dialect)
            .await?;
        let mut bounded = BoundedBody::new(
            response.bytes_stream(),
            idle_timeout,
            self.config.max_response_bytes,
            "answer",
        );
        bounded.read = *read;
        let mut body: Vec<u8> = Vec::new();
        loop {
            match bounded.next().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err((failure, message)) => {
                    return Err(self.redactor.error(target, failure, message));
                }
            }
        }
        *read = bounded.read;
        serde_json::from_slice::<Value>(&body).map_err(|e| {
            self.redactor.error(
                target,
                UpstreamFailure::Decode,
                format!("the answer is not JSON: {e}"),
            )
        })
    }

    /// A complete JSON answer, read whole under the same idle timeout and
    /// `max_response_bytes` as a stream, as the chunks of its stream.
    fn complete_answer(
        &self,
        response: reqwest::Response,
        request: &ChatRequest,
        model: &str,
        target: &str,
        idle_timeout: Duration,
    ) -> ChunkStream {
        let mut bounded = BoundedBody::new(
            response.bytes_stream(),
            idle_timeout,
            self.config.max_response_bytes,
            "answer",
        );
        let dialect = self.dialect_for(request, model);
        let target = target.to_string();
        let model_name = model.to_string();
        let redactor = Arc::clone(&self.redactor);
        let stream = async_stream::stream! {
            let mut body: Vec<u8> = Vec::new();
            loop {
                match bounded.next().await {
                    Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                    Ok(None) => break,
                    Err((failure, message)) => {
                        yield Err(redactor.error(&target, failure, message));
                        return;
                    }
                }
            }
            match complete::chunks(dialect, &body) {
                Ok(chunks) => {
                    for mut chunk in chunks {
                        name_model(&mut chunk.events, &model_name);
                        yield Ok(chunk);
                    }
                }
                Err((failure, message)) => yield Err(redactor.error(&target, failure, message)),
            }
        };
        Box::pin(stream)
    }

    fn transport_error(&self, target: &str, error: &reqwest::Error) -> UpstreamError {
        let failure = if error.is_timeout() {
            UpstreamFailure::Timeout
        } else {
            UpstreamFailure::Connect
        };
        self.redactor
            .error(target, failure, describe_transport(error))
    }

    async fn status_error(
        &self,
        target: &str,
        response: reqwest::Response,
        dialect: &'static dyn UpstreamDialect,
    ) -> UpstreamError {
        let status = response.status().as_u16();
        if (300..400).contains(&status) {
            // Redirects are not followed (see `new`). Neither the body nor
            // the location goes further: they are the redirecting server's,
            // and the location may carry tokens.
            return self.redactor.error(
                target,
                UpstreamFailure::Status {
                    status,
                    provider_code: None,
                },
                format!(
                    "HTTP {status}: the provider redirected to another location, which Bulwark does not follow; check the provider's base_url"
                ),
            );
        }
        let headers = response.headers().clone();
        let body = read_capped(response).await;
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        let (message, mut code) = match &json {
            Some(value) => dialect.decode_error(value),
            None => (None, None),
        };
        if let Some(cloud_code) = self
            .cloud
            .as_ref()
            .and_then(|cloud| cloud.error_code(&headers, json.as_ref()))
        {
            code = Some(cloud_code);
        }
        let mut description = format!("HTTP {status}");
        if let Some(code) = &code {
            description.push_str(&format!(" {code}"));
        }
        match &message {
            // Providers quote fragments of a refused key back
            // ("sk-proj-abcd...wxyz"); none of it goes further.
            Some(_) if matches!(status, 401 | 403) => {}
            Some(m) => description.push_str(&format!(": {m}")),
            None if !body.is_empty() => {
                let kind = headers
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("unknown content type");
                description.push_str(&format!(" with a non-JSON body ({kind})"));
            }
            None => {}
        }
        // Redacted as a whole: the provider's code and message both.
        let mut error = self.redactor.error(
            target,
            UpstreamFailure::Status {
                status,
                provider_code: code,
            },
            description,
        );
        let now = SystemTime::now();
        error.retry_after = retry_after(&headers, now)
            .or_else(|| rate_limit_reset(&headers, now))
            .or_else(|| json.as_ref().and_then(|body| dialect.retry_hint(body)));
        error.should_retry = match header_text(&headers, "x-should-retry") {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        };
        error
    }
}

/// An answer whose API names no model (Bedrock's Converse) is named after
/// the target's model, so that no client is told an empty one.
fn name_model(events: &mut [StreamEvent], target_model: &str) {
    for event in events {
        if let StreamEvent::Start { model, .. } = event
            && model.is_empty()
        {
            *model = target_model.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn providers() -> Vec<Provider> {
        let config = crate::config::Config::from_yaml(
            "providers:\n  o: { kind: openai, api_key: k }\n  c: { kind: openai-compatible, base_url: \"http://127.0.0.1:9/v1\" }\n  a: { kind: anthropic, api_key: k }\nroutes: {}\n",
            "t.yaml",
            &|_: &str| None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        ["o", "c", "a"]
            .iter()
            .map(|name| {
                let provider = config.providers.get(*name).cloned();
                Provider::new(name, provider.unwrap_or_else(|| panic!("no {name}")))
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect()
    }

    fn from(format: WireFormat) -> ChatRequest {
        let mut request = crate::wire::responses::decode_request(br#"{"model":"m","input":"hi"}"#)
            .unwrap_or_else(|e| panic!("{e:?}"));
        if let Some(source) = request.source.as_mut() {
            source.format = format;
        }
        request
    }

    #[test]
    fn only_openai_itself_speaks_the_responses_api_and_only_to_its_clients() {
        let [openai, compatible, anthropic] =
            <[Provider; 3]>::try_from(providers()).unwrap_or_else(|_| panic!("three providers"));
        let responses = from(WireFormat::Responses);
        assert_eq!(openai.format_for(&responses, "m"), WireFormat::Responses);
        assert_eq!(
            openai
                .dialect_for(&responses, "m")
                .url("https://x/v1", "m")
                .ok(),
            Some("https://x/v1/responses".to_string())
        );
        assert_eq!(openai.format(), WireFormat::OpenAi);
        assert_eq!(compatible.format_for(&responses, "m"), WireFormat::OpenAi);
        assert_eq!(anthropic.format_for(&responses, "m"), WireFormat::Anthropic);
        for other in [
            WireFormat::OpenAi,
            WireFormat::Anthropic,
            WireFormat::Gemini,
        ] {
            assert_eq!(openai.format_for(&from(other), "m"), WireFormat::OpenAi);
        }
        let mut built_in_code = responses;
        built_in_code.source = None;
        assert_eq!(openai.format_for(&built_in_code, "m"), WireFormat::OpenAi);
    }
}
