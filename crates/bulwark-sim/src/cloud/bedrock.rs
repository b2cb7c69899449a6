//! Amazon Bedrock serving Claude: `POST /model/{modelId}/invoke` and
//! `/invoke-with-response-stream`, SigV4 or a Bedrock API key, Anthropic's
//! Messages body without `model`/`stream` and with `anthropic_version`;
//! and the Converse API (`converse.rs`) at `/converse`, `/converse-stream`.
//!
//! A request goes through the same pipeline as `/v1/messages` (faults,
//! latency, the request log); Bedrock's own checks run first (see
//! [`refuse`]) and the answer is rewritten into Bedrock's shape afterwards
//! (`bedrock_reply`).

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::routing::post;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Cloud;
use super::bedrock_reply::{self, Exception};
use super::sigv4::{self, Keys, Scope, SignedRequest};
use super::vertex::is_api_date;
use crate::config::SimConfig;
use crate::format::Format;
use crate::handler::{Call, Incoming, handle};
use crate::state::Sim;

/// The `anthropic_version` of Claude's Messages API on Bedrock; later
/// `bedrock-` versions are accepted too, as newer SDKs send them.
pub(crate) const ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// The service name in SigV4 credential scopes.
const SERVICE: &str = "bedrock";

/// What the Bedrock simulation checks requests against. Without it (`None`
/// in [`SimConfig::bedrock`]) no auth is checked, as with `api_key: None`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BedrockSimConfig {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Set for temporary credentials: requests must carry it as `x-amz-security-token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
    /// A Bedrock API key, accepted as `Authorization: Bearer <key>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// The region signatures must be scoped to, unless the `Host` is a
    /// regional endpoint (`bedrock-runtime.{region}.amazonaws.com`).
    pub region: String,
}

/// Credentials never show in Debug output; the key id stays, as it names
/// the credentials without granting anything.
impl std::fmt::Debug for BedrockSimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("BedrockSimConfig")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &redacted(&self.session_token))
            .field("api_key", &redacted(&self.api_key))
            .field("region", &self.region)
            .finish()
    }
}

/// Which of Bedrock's runtime APIs a request calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// InvokeModel: the model's own body (Anthropic's, for Claude).
    Invoke,
    /// Converse: Bedrock's body, the same for every model.
    Converse,
}

impl Api {
    /// The API and whether it streams, from the path's last segment.
    fn of_action(action: &str) -> Option<(Api, bool)> {
        Some(match action {
            "invoke" => (Api::Invoke, false),
            "invoke-with-response-stream" => (Api::Invoke, true),
            "converse" => (Api::Converse, false),
            "converse-stream" => (Api::Converse, true),
            _ => return None,
        })
    }

    pub(crate) fn of_path(path: &str) -> Option<(Api, bool)> {
        Api::of_action(path.rsplit('/').next()?)
    }
}

pub(crate) fn routes() -> Router<Sim> {
    Router::new().route("/model/{model_id}/{action}", post(model_action))
}

/// `POST /model/{modelId}/{action}`; the model id arrives percent-encoded
/// (`%3A` for `:`) and the router decodes it.
async fn model_action(
    State(sim): State<Sim>,
    Path((model_id, action)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    method: Method,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (api, stream) = match Api::of_action(&action) {
        Some(found) => found,
        None => {
            return bedrock_reply::error(404, &Exception::new("UnknownOperationException", ""), "");
        }
    };
    let inc = Incoming {
        format: Format::Anthropic,
        call: Call::Generate {
            stream: Some(stream),
        },
        method: method.to_string(),
        path: uri.path().to_string(),
        raw_query: uri.query().map(String::from),
        headers,
        query,
        body,
        path_model: Some(model_id),
        cloud: Some(Cloud::Bedrock),
    };
    // Bedrock's latencies count from the request's arrival, faults' delays included.
    let started = tokio::time::Instant::now();
    let response = handle(sim, inc).await;
    bedrock_reply::reshape(response, stream, api, started).await
}

/// Bedrock's checks before the model's: auth, then the body rules of
/// Claude on Bedrock. `Some` is the refusal: a log label and the response.
pub(crate) fn refuse(
    config: &SimConfig,
    inc: &Incoming,
    request_id: &str,
) -> Option<(String, Response)> {
    let refusal =
        authenticate(config, inc)
            .err()
            .map(|e| (403, e))
            .or_else(|| match Api::of_path(&inc.path) {
                Some((Api::Converse, _)) => None,
                _ => check_body(&inc.body).err().map(|e| (400, e)),
            })?;
    let (status, exception) = refusal;
    Some((
        format!("error_{status}"),
        bedrock_reply::error(status, &exception, request_id),
    ))
}

fn authenticate(config: &SimConfig, inc: &Incoming) -> Result<(), Exception> {
    let Some(bedrock) = &config.bedrock else {
        return Ok(());
    };
    let authorization = inc
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    let Some(authorization) = authorization else {
        return Err(Exception::new(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    if let Some(key) = authorization.strip_prefix("Bearer ") {
        return match &bedrock.api_key {
            Some(expected) if expected == key => Ok(()),
            _ => Err(Exception::new(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )),
        };
    }
    let host = inc
        .headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let region = region_of_host(host).unwrap_or(&bedrock.region);
    let request = SignedRequest {
        method: &inc.method,
        raw_path: &inc.path,
        raw_query: inc.raw_query.as_deref(),
        headers: &inc.headers,
        body: &inc.body,
    };
    let keys = Keys {
        access_key_id: &bedrock.access_key_id,
        secret_access_key: &bedrock.secret_access_key,
        session_token: bedrock.session_token.as_deref(),
    };
    let scope = Scope {
        region,
        service: SERVICE,
        now_secs: crate::clock::unix_secs(),
    };
    sigv4::verify(&request, &keys, &scope).map_err(|r| Exception::new(r.error_type, r.message))
}

/// `bedrock-runtime.us-west-2.amazonaws.com` → `us-west-2`.
fn region_of_host(host: &str) -> Option<&str> {
    let host = host.split(':').next()?;
    host.strip_prefix("bedrock-runtime.")?
        .strip_suffix(".amazonaws.com")
        .filter(|r| !r.is_empty() && !r.contains('.'))
}

/// Claude on Bedrock takes the Messages body with the model in the path:
/// keys of the first-party API that Bedrock does not take are refused, as
/// its schema validation does, and `anthropic_version` is required: a
/// `bedrock-` version or an Anthropic API version date, which Anthropic's
/// current SDKs send (anthropic-sdk-python 2.14's `AnthropicBedrock` sends
/// its `ANTHROPIC_API_VERSION`, `2026-10-21`).
fn check_body(body: &[u8]) -> Result<(), Exception> {
    // An unreadable body is left to the Messages parser, which says why.
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return Ok(());
    };
    let malformed = |what: String| {
        Exception::new(
            "ValidationException",
            format!(
                "Malformed input request: #: {what}, please reformat your input and try again."
            ),
        )
    };
    for key in ["model", "stream"] {
        if map.contains_key(key) {
            return Err(malformed(format!(
                "extraneous key [{key}] is not permitted"
            )));
        }
    }
    match map.get("anthropic_version") {
        None => Err(malformed(
            "required key [anthropic_version] not found".into(),
        )),
        Some(Value::String(v)) if v.starts_with("bedrock-20") || is_api_date(v) => Ok(()),
        Some(v) => Err(Exception::new(
            "ValidationException",
            format!("invalid anthropic_version: {v}; expected {ANTHROPIC_VERSION}"),
        )),
    }?;
    match map.get("anthropic_beta") {
        None => Ok(()),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => Ok(()),
        Some(_) => Err(malformed(
            "#/anthropic_beta: expected type: JSONArray of strings".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: &str) -> Option<String> {
        check_body(body.as_bytes()).err().map(|e| e.message)
    }

    #[test]
    fn body_rules() {
        let ok = r#"{"anthropic_version":"bedrock-2023-05-31","max_tokens":5,"messages":[]}"#;
        assert_eq!(refused(ok), None);
        let with_model = r#"{"anthropic_version":"bedrock-2023-05-31","model":"x"}"#;
        assert!(
            refused(with_model)
                .unwrap()
                .contains("extraneous key [model] is not permitted")
        );
        let with_stream = r#"{"anthropic_version":"bedrock-2023-05-31","stream":true}"#;
        assert!(
            refused(with_stream)
                .unwrap()
                .contains("extraneous key [stream]")
        );
        let missing = r#"{"max_tokens":5}"#;
        assert!(
            refused(missing)
                .unwrap()
                .contains("required key [anthropic_version] not found")
        );
        let sdk = r#"{"anthropic_version":"2026-10-21","max_tokens":5,"messages":[]}"#;
        assert_eq!(refused(sdk), None);
        let wrong = r#"{"anthropic_version":"vertex-2023-10-16"}"#;
        assert!(refused(wrong).unwrap().contains("anthropic_version"));
        let garbage = r#"{"anthropic_version":"2026-10-2x"}"#;
        assert!(refused(garbage).unwrap().contains("anthropic_version"));
        let beta = r#"{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":"x"}"#;
        assert!(refused(beta).unwrap().contains("anthropic_beta"));
        assert_eq!(refused("not json"), None);
    }

    #[test]
    fn debug_output_hides_the_credentials() {
        let config = BedrockSimConfig {
            access_key_id: "AKIDSHOWN".into(),
            secret_access_key: "secret-never-shown".into(),
            session_token: Some("token-never-shown".into()),
            api_key: Some("api-key-never-shown".into()),
            region: "us-west-2".into(),
        };
        let shown = format!("{config:?} {config:#?}");
        assert!(!shown.contains("never-shown"), "{shown}");
        assert!(
            shown.contains("AKIDSHOWN") && shown.contains("us-west-2"),
            "{shown}"
        );
        assert!(
            shown.contains("session_token: Some(\"<redacted>\")"),
            "{shown}"
        );
        let without = BedrockSimConfig {
            session_token: None,
            api_key: None,
            ..config
        };
        assert!(format!("{without:?}").contains("api_key: None"));
    }

    #[test]
    fn regions_from_hosts() {
        assert_eq!(
            region_of_host("bedrock-runtime.us-west-2.amazonaws.com"),
            Some("us-west-2")
        );
        assert_eq!(
            region_of_host("bedrock-runtime.eu-central-1.amazonaws.com:443"),
            Some("eu-central-1")
        );
        assert_eq!(region_of_host("127.0.0.1:4000"), None);
    }
}
