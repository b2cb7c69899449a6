//! Azure OpenAI: OpenAI's bodies at Azure's paths.
//!
//! - `POST /openai/deployments/{deployment}/chat/completions?api-version=…`
//!   and `…/embeddings`: the deployment is the model; `api-version` is
//!   required (missing: 404 "Resource not found"; unknown: 400), as Azure does.
//! - `POST /openai/v1/chat/completions`, `/openai/v1/embeddings`,
//!   `/openai/v1/responses`: the newer surface, model in the body,
//!   `api-version` optional (`preview` or `latest`).
//! - Auth (when [`AzureSimConfig`] is set): `api-key: <key>` or
//!   `Authorization: Bearer <token>` issued by this sim's Entra endpoint
//!   (`entra.rs`) and not expired.
//! - Two misconfigurations past auth: an Entra app without the "Cognitive
//!   Services OpenAI User" role (403 `PermissionDenied`), and a deployment the
//!   resource does not have (404 `DeploymentNotFound`).
//!
//! Everything after these checks is the sim's OpenAI machinery, so faults,
//! latency and the request log work as on `/v1/chat/completions`; answers
//! gain Azure's content-filter annotations (`filter.rs`).

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Cloud, Refused};
use crate::config::SimConfig;
use crate::fault::StatusFault;
use crate::format::Format;
use crate::handler::{Call, Incoming, handle};
use crate::server::{Parts, incoming};
use crate::state::Sim;
use crate::wire::ErrorSpec;

/// API versions the deployment paths accept unless the config lists its
/// own: Azure's GA versions and recent previews.
const API_VERSIONS: [&str; 10] = [
    "2024-02-01",
    "2024-06-01",
    "2024-10-21",
    "2024-08-01-preview",
    "2024-10-01-preview",
    "2024-12-01-preview",
    "2025-01-01-preview",
    "2025-03-01-preview",
    "2025-04-01-preview",
    "2025-04-14",
];

/// The first API version that takes `stream_options`; older ones refuse
/// the field as an unrecognized argument. (Versions are dates, so they
/// compare as strings.)
const STREAM_OPTIONS_SINCE: &str = "2024-08-01";

/// `api-version` values the `/openai/v1/` surface accepts.
const V1_API_VERSIONS: [&str; 3] = ["preview", "latest", "v1"];

const KEY_REFUSED: &str = "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.";
const TOKEN_REFUSED: &str = "Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), or have expired.";
const NO_DEPLOYMENT: &str = "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.";

/// Azure's settings; `None` in [`SimConfig::azure`] checks no credentials.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AzureSimConfig {
    /// Accepted in the `api-key` header; `None`: only Entra tokens pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// The directory tokens are issued for (`/{tenant}/oauth2/v2.0/token`).
    pub tenant_id: String,
    /// The app registration that may ask for tokens.
    pub client_id: String,
    /// Its secret; empty: every grant is refused.
    pub client_secret: String,
    /// Lifetime of issued tokens (`expires_in`).
    pub token_ttl_secs: u64,
    /// Accepted `api-version`s on the deployment paths (default: a list of
    /// Azure's real ones).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_versions: Option<Vec<String>>,
    /// The resource's deployments (the deployment path's segment, the v1
    /// surface's `model`); others get 404 `DeploymentNotFound`. `None`: any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployments: Option<Vec<String>>,
    /// The app `client_id` has no "Cognitive Services OpenAI User" role on
    /// the resource: its tokens are granted and valid, and refused with 403
    /// `PermissionDenied`. An `api-key` is not subject to roles.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub client_lacks_role: bool,
}

impl Default for AzureSimConfig {
    fn default() -> Self {
        Self {
            api_key: None,
            tenant_id: String::new(),
            client_id: String::new(),
            client_secret: String::new(),
            token_ttl_secs: 3599,
            api_versions: None,
            deployments: None,
            client_lacks_role: false,
        }
    }
}

/// Credentials never show in Debug output.
impl std::fmt::Debug for AzureSimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureSimConfig")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("token_ttl_secs", &self.token_ttl_secs)
            .field("api_versions", &self.api_versions)
            .field("deployments", &self.deployments)
            .field("client_lacks_role", &self.client_lacks_role)
            .finish()
    }
}

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route(
            "/openai/deployments/{deployment}/chat/completions",
            post(deployment_chat),
        )
        .route(
            "/openai/deployments/{deployment}/embeddings",
            post(deployment_embeddings),
        )
        .route("/openai/v1/chat/completions", post(v1_chat))
        .route("/openai/v1/embeddings", post(v1_embeddings))
        .route("/openai/v1/responses", post(v1_responses))
        .route("/{tenant}/oauth2/v2.0/token", post(super::entra::token))
        .route("/_sim/azure", get(super::entra::stats))
}

fn azure(call: Call, parts: Parts, deployment: Option<String>) -> Incoming {
    let mut inc = incoming(Format::OpenAi, call, parts, deployment);
    inc.cloud = Some(Cloud::Azure);
    inc
}

async fn deployment_chat(
    State(sim): State<Sim>,
    Path(deployment): Path<String>,
    parts: Parts,
) -> Response {
    let call = Call::Generate { stream: None };
    handle(sim, azure(call, parts, Some(deployment))).await
}

async fn deployment_embeddings(
    State(sim): State<Sim>,
    Path(deployment): Path<String>,
    parts: Parts,
) -> Response {
    let call = Call::Embed { batch: false };
    handle(sim, azure(call, parts, Some(deployment))).await
}

async fn v1_chat(State(sim): State<Sim>, parts: Parts) -> Response {
    let call = Call::Generate { stream: None };
    handle(sim, azure(call, parts, None)).await
}

async fn v1_embeddings(State(sim): State<Sim>, parts: Parts) -> Response {
    handle(sim, azure(Call::Embed { batch: false }, parts, None)).await
}

async fn v1_responses(State(sim): State<Sim>, parts: Parts) -> Response {
    handle(sim, azure(Call::Respond, parts, None)).await
}

/// Azure's checks before the OpenAI pipeline: the API version, then the
/// credentials. `None`: the request goes on.
pub(crate) fn gate(
    sim: &Sim,
    config: &SimConfig,
    inc: &Incoming,
    body: Option<&Value>,
) -> Option<Refused> {
    let version = inc.query.get("api-version").map(String::as_str);
    if inc.path.starts_with("/openai/deployments/") {
        let Some(version) = version else {
            return Some(refusal(404, error("404", "Resource not found")));
        };
        let known = match config.azure.as_ref().and_then(|a| a.api_versions.as_ref()) {
            Some(list) => list.iter().any(|v| v == version),
            None => API_VERSIONS.contains(&version),
        };
        if !known {
            return Some(refusal(
                400,
                error("BadRequest", "API version not supported"),
            ));
        }
        if version < STREAM_OPTIONS_SINCE && body.is_some_and(|b| b.get("stream_options").is_some())
        {
            return Some(refusal(
                400,
                json!({"error": {
                    "code": null,
                    "message": "Unrecognized request argument supplied: stream_options",
                    "param": null,
                    "type": "invalid_request_error"
                }}),
            ));
        }
    } else if let Some(version) = version
        && !V1_API_VERSIONS.contains(&version)
    {
        return Some(refusal(
            400,
            error("BadRequest", "API version not supported"),
        ));
    }
    let azure = config.azure.as_ref()?;
    authorize(sim, azure, inc).or_else(|| deployment_exists(azure, inc, body))
}

/// The credential, then (for a token) the app's role on the resource.
fn authorize(sim: &Sim, azure: &AzureSimConfig, inc: &Incoming) -> Option<Refused> {
    let key = header(&inc.headers, "api-key");
    if let Some(key) = key {
        return match &azure.api_key {
            Some(expected) if expected == key => None,
            _ => Some(refusal(401, error("401", KEY_REFUSED))),
        };
    }
    let bearer = header(&inc.headers, "authorization").and_then(|v| v.strip_prefix("Bearer "));
    match bearer {
        Some(token) if sim.entra().valid(token) => azure
            .client_lacks_role
            .then(|| permission_denied(azure, inc)),
        Some(_) => Some(refusal(401, error("401", TOKEN_REFUSED))),
        None => Some(refusal(401, error("401", KEY_REFUSED))),
    }
}

/// Azure names the principal, the data action its role lacks and the
/// operation, with the deployment as a placeholder.
fn permission_denied(azure: &AzureSimConfig, inc: &Incoming) -> Refused {
    let deployment_path = inc.path.starts_with("/openai/deployments/");
    let (action, operation) = match (&inc.call, deployment_path) {
        (Call::Embed { .. }, true) => (
            "deployments/embeddings",
            "/openai/deployments/{deployment-id}/embeddings",
        ),
        (Call::Embed { .. }, false) => ("deployments/embeddings", "/openai/v1/embeddings"),
        (Call::Respond, _) => ("responses", "/openai/v1/responses"),
        (_, true) => (
            "deployments/chat/completions",
            "/openai/deployments/{deployment-id}/chat/completions",
        ),
        (_, false) => (
            "deployments/chat/completions",
            "/openai/v1/chat/completions",
        ),
    };
    // The sim has no service principal object id; the client id stands in.
    let message = format!(
        "The principal `{}` lacks the required data action `Microsoft.CognitiveServices/accounts/OpenAI/{action}/action` to perform `{} {operation}` operation.",
        azure.client_id, inc.method
    );
    refusal(403, error("PermissionDenied", &message))
}

/// The deployment is the path's segment, or on the v1 surface the body's
/// `model` (a body without one is left to the OpenAI pipeline to refuse).
fn deployment_exists(
    azure: &AzureSimConfig,
    inc: &Incoming,
    body: Option<&Value>,
) -> Option<Refused> {
    let known = azure.deployments.as_ref()?;
    let deployment = if inc.path.starts_with("/openai/deployments/") {
        inc.path_model.as_deref()
    } else {
        body.and_then(|b| b.get("model")).and_then(Value::as_str)
    }?;
    if known.iter().any(|d| d == deployment) {
        return None;
    }
    Some(refusal(404, error("DeploymentNotFound", NO_DEPLOYMENT)))
}

/// Azure words its own rate limits (`code` the status as a string, the
/// operation and API version named); other statuses come from the model
/// service behind it in OpenAI's words.
pub(crate) fn status_error(spec: &mut ErrorSpec, fault: &StatusFault, inc: &Incoming) {
    if fault.status != 429 || fault.code.is_some() || fault.message.is_some() {
        return;
    }
    let version = inc.query.get("api-version").map_or("v1", String::as_str);
    let operation = match inc.call {
        Call::Embed { .. } => "Embeddings_Create",
        _ => "ChatCompletions_Create",
    };
    let wait = fault.retry_after.unwrap_or(1);
    spec.code = Some("429".into());
    spec.message = Some(format!(
        "Requests to the {operation} Operation under Azure OpenAI API version {version} have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after {wait} seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit."
    ));
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Azure's own error shape (not OpenAI's): `{"error": {"code", "message"}}`
/// with the status as a string code for auth and routing failures.
fn error(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

fn refusal(status: u16, body: Value) -> Refused {
    Refused {
        label: format!("error_{status}"),
        response: json_response(status, &body),
    }
}

/// A JSON response with the request id Azure's API management adds.
pub(crate) fn json_response(status: u16, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let id = format!("{:032x}", fastrand::u128(..));
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert("apim-request-id", v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misconfigurations_are_off_unless_asked_for() {
        let plain: AzureSimConfig = serde_json::from_value(json!({"tenant_id": "t"})).unwrap();
        assert_eq!((plain.deployments, plain.client_lacks_role), (None, false));
        let set: AzureSimConfig =
            serde_json::from_value(json!({"deployments": ["my-gpt"], "client_lacks_role": true}))
                .unwrap();
        assert_eq!(set.deployments, Some(vec!["my-gpt".to_string()]));
        assert!(set.client_lacks_role);
        // Unset, they stay out of a saved scenario.
        let saved = serde_json::to_value(AzureSimConfig::default()).unwrap();
        assert!(saved.get("deployments").is_none() && saved.get("client_lacks_role").is_none());
    }
}
