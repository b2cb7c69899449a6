//! Google Vertex AI: Claude at `…/publishers/anthropic/models/{model}:rawPredict`
//! and `:streamRawPredict`, Gemini at `…/publishers/google/models/{model}:generateContent`
//! and `:streamGenerateContent`, behind OAuth access tokens from the token
//! endpoint in `google_token`.
//!
//! What Vertex itself decides (the bearer token, the project and region in
//! the path, the publisher serving the model, `anthropic_version` in the
//! body) is checked here, in Google's error shape; everything after is the
//! simulator's Anthropic or Gemini machinery, so faults, latency and the
//! request log behave as on the providers' own paths.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cloud::google_token::{self, TokenProblem};
use crate::cloud::{Cloud, Refused};
use crate::config::SimConfig;
use crate::format::Format;
use crate::handler::{Call, Incoming, handle};
use crate::server::{Parts, incoming};
use crate::state::Sim;
use crate::wire::{Ctx, ErrorSpec};

/// The only `anthropic_version` Vertex accepts in a Claude body.
pub(crate) const ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

/// The Vertex project, its region and its service account. Absent from the
/// config, Vertex paths check no token, project or region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VertexSimConfig {
    /// The project the paths must name.
    pub project: String,
    /// The region the paths must name (`global` is a region too).
    pub region: String,
    /// How long an access token from `POST /token` lives; short values let
    /// tests see tokens refreshed.
    pub token_ttl_secs: u64,
    /// The service account the token endpoint knows (`iss` of assertions).
    pub client_email: String,
    /// When set, `POST /token` answers this status instead of a token (an
    /// outage of the token endpoint, e.g. 503); change it at run time with
    /// [`Sim::update`](crate::Sim::update).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_status: Option<u16>,
}

impl Default for VertexSimConfig {
    fn default() -> Self {
        Self {
            project: "bulwark-sim".into(),
            region: "us-east5".into(),
            token_ttl_secs: 3600,
            client_email: "sim-test-service-account@bulwark-sim.iam.gserviceaccount.com".into(),
            token_status: None,
        }
    }
}

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route("/token", post(google_token::token_endpoint))
        .route(
            "/_sim/tokens",
            axum::routing::get(google_token::token_stats),
        )
        .route(
            "/v1/projects/{project}/locations/{region}/publishers/{publisher}/models/{rest}",
            post(predict),
        )
}

/// The parts of a Vertex model path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target<'a> {
    project: &'a str,
    region: &'a str,
    publisher: &'a str,
    model: &'a str,
    action: &'a str,
}

fn target(path: &str) -> Option<Target<'_>> {
    let segments: Vec<&str> = path.strip_prefix("/v1/")?.split('/').collect();
    let [
        "projects",
        project,
        "locations",
        region,
        "publishers",
        publisher,
        "models",
        last,
    ] = segments[..]
    else {
        return None;
    };
    let (model, action) = last.rsplit_once(':')?;
    Some(Target {
        project,
        region,
        publisher,
        model,
        action,
    })
}

async fn predict(
    State(sim): State<Sim>,
    Path((_project, _region, publisher, rest)): Path<(String, String, String, String)>,
    parts: Parts,
) -> Response {
    let (model, action) = rest.rsplit_once(':').unwrap_or((rest.as_str(), ""));
    let (format, call) = match (publisher.as_str(), action) {
        ("google", "generateContent") => (
            Format::Gemini,
            Call::Generate {
                stream: Some(false),
            },
        ),
        ("google", "streamGenerateContent") => {
            (Format::Gemini, Call::Generate { stream: Some(true) })
        }
        ("google", "countTokens") => (Format::Gemini, Call::CountTokens),
        // Claude's stream is asked for in the body, on either method.
        (_, _) => (Format::Anthropic, Call::Generate { stream: None }),
    };
    let mut inc = incoming(format, call, parts, Some(model.to_string()));
    inc.cloud = Some(Cloud::Vertex);
    let response = handle(sim, inc).await;
    if format == Format::Anthropic && response.status() == StatusCode::TOO_MANY_REQUESTS {
        return quota_exceeded(response, model);
    }
    response
}

/// Claude's rate limits on Vertex are Vertex's quotas: a 429 comes in
/// Google's shape, not Anthropic's, whatever the model would have said.
fn quota_exceeded(response: Response, model: &str) -> Response {
    let (mut head, _) = response.into_parts();
    let base_model = model.split('@').next().unwrap_or(model);
    let message = format!(
        "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model with base model: anthropic-{base_model}. Please submit a quota increase request."
    );
    let body = json!({"error": {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED"}});
    let limits: Vec<_> = head
        .headers
        .keys()
        .filter(|name| name.as_str().starts_with("anthropic-ratelimit"))
        .cloned()
        .collect();
    for name in limits {
        head.headers.remove(name);
    }
    head.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    head.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(head, Body::from(body.to_string()))
}

/// What Vertex refuses before a model sees the request, or `None`.
pub(crate) fn refusal(
    sim: &Sim,
    config: &SimConfig,
    inc: &Incoming,
    body: Option<&Value>,
    ctx: &Ctx,
) -> Option<Refused> {
    let Some(target) = target(&inc.path) else {
        return Some(google_error(
            404,
            "NOT_FOUND",
            "The requested URL was not found.",
        ));
    };
    if let Some(vertex) = &config.vertex {
        if let Some(refused) = unauthenticated(sim, inc) {
            return Some(refused);
        }
        if target.project != vertex.project {
            let message = format!(
                "Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/{}' (or it may not exist).",
                resource(&target)
            );
            return Some(google_error(403, "PERMISSION_DENIED", &message));
        }
        if target.region != vertex.region {
            let message = format!(
                "Location {} is not found or not served for project {}.",
                target.region, target.project
            );
            return Some(google_error(404, "NOT_FOUND", &message));
        }
    }
    let served = match target.publisher {
        "anthropic" => {
            target.model.starts_with("claude")
                && matches!(target.action, "rawPredict" | "streamRawPredict")
        }
        "google" => {
            !target.model.starts_with("claude")
                && matches!(
                    target.action,
                    "generateContent" | "streamGenerateContent" | "countTokens"
                )
        }
        _ => false,
    };
    if !served {
        let message = format!(
            "Publisher Model `{}` was not found or your project does not have access to it, or the method `{}` is not supported.",
            resource(&target),
            target.action
        );
        return Some(google_error(404, "NOT_FOUND", &message));
    }
    if target.publisher == "anthropic" {
        return claude_body_problem(body).map(|message| {
            let spec = ErrorSpec {
                status: 400,
                message: Some(message),
                model: ctx.model.clone(),
                request_id: ctx.request_id.clone(),
                ..ErrorSpec::default()
            };
            let body = crate::anthropic::error_body(&spec);
            json_response(400, "application/json", &body)
        });
    }
    None
}

fn resource(target: &Target<'_>) -> String {
    format!(
        "projects/{}/locations/{}/publishers/{}/models/{}",
        target.project, target.region, target.publisher, target.model
    )
}

/// The bearer token, checked against those the token endpoint issued.
fn unauthenticated(sim: &Sim, inc: &Incoming) -> Option<Refused> {
    let token = inc
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let problem = match token {
        None => Some(TokenProblem::Unknown),
        Some(token) => sim
            .google_tokens()
            .check(token, tokio::time::Instant::now())
            .err(),
    }?;
    let message = match (token.is_some(), problem) {
        (false, _) => {
            "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
        }
        (true, TokenProblem::Expired) => {
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. The access token has expired."
        }
        (true, TokenProblem::Unknown) => {
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
        }
    };
    let mut refused = google_error(401, "UNAUTHENTICATED", message);
    refused.response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"https://accounts.google.com/\""),
    );
    Some(refused)
}

/// Vertex's Claude body: no `model` (the path names it) and an
/// `anthropic_version`: Vertex's own, or an Anthropic API version date,
/// which Anthropic's current SDKs send to Vertex (anthropic-sdk-python
/// 2.14's `AnthropicVertex` sends its `ANTHROPIC_API_VERSION`). Another
/// cloud's version (Bedrock's) or none is refused.
fn claude_body_problem(body: Option<&Value>) -> Option<String> {
    let body = body?;
    if body.get("model").is_some() {
        return Some("model: Extra inputs are not permitted".into());
    }
    match body.get("anthropic_version").and_then(Value::as_str) {
        Some(version) if version == ANTHROPIC_VERSION || is_api_date(version) => None,
        Some(other) => Some(format!(
            "anthropic_version: Input should be '{ANTHROPIC_VERSION}', got '{other}'"
        )),
        None => Some("anthropic_version: Field required".into()),
    }
}

/// `YYYY-MM-DD`.
pub(super) fn is_api_date(version: &str) -> bool {
    let bytes = version.as_bytes();
    bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
}

fn google_error(status: u16, code: &str, message: &str) -> Refused {
    let body = json!({"error": {"code": status, "message": message, "status": code}});
    json_response(status, "application/json; charset=UTF-8", &body)
}

fn json_response(status: u16, content_type: &'static str, body: &Value) -> Refused {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Refused {
        label: format!("error_{status}"),
        response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_their_parts() {
        let t = target("/v1/projects/p1/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict").unwrap();
        assert_eq!(
            t,
            Target {
                project: "p1",
                region: "us-east5",
                publisher: "anthropic",
                model: "claude-sonnet-4-5@20250929",
                action: "streamRawPredict"
            }
        );
        assert!(target("/v1/projects/p1/zones/us/publishers/a/models/m:x").is_none());
        assert!(target("/v1/projects/p1/locations/us/publishers/a/models/m").is_none());
    }

    #[test]
    fn claude_bodies_need_vertexs_version_and_no_model() {
        let ok = json!({"anthropic_version": ANTHROPIC_VERSION, "max_tokens": 5, "messages": []});
        assert_eq!(claude_body_problem(Some(&ok)), None);
        let sdk = json!({"anthropic_version": "2026-10-21", "max_tokens": 5, "messages": []});
        assert_eq!(claude_body_problem(Some(&sdk)), None);
        let garbage = json!({"anthropic_version": "2026-10-2x"});
        assert!(claude_body_problem(Some(&garbage)).is_some());
        let mut with_model = ok.clone();
        with_model["model"] = json!("claude-sonnet-4-5");
        assert!(
            claude_body_problem(Some(&with_model))
                .unwrap()
                .starts_with("model:")
        );
        let bedrock = json!({"anthropic_version": "bedrock-2023-05-31"});
        assert!(
            claude_body_problem(Some(&bedrock))
                .unwrap()
                .contains("bedrock-2023-05-31")
        );
        assert!(
            claude_body_problem(Some(&json!({})))
                .unwrap()
                .contains("Field required")
        );
    }
}
