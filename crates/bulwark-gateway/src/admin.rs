//! `/admin/`: what operators may look at, behind the admin key.
//!
//! `GET /admin/targets`: every target's breaker state and concurrency.
//! `GET /admin/status`: every component's live state, routes then the
//! upstream providers behind them, named whatever `show_targets` says.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bulwark::error::{ApiError, ErrorKind};
use bulwark::observe::component::{ComponentKind, ComponentState};
use bulwark::observe::incident::IncidentStatus;
use bulwark::observe::snapshot::client_overall;
use bulwark::observe::unix_ms_now;
use serde_json::json;

use crate::observe::AdminWord;
use crate::{ClientFormat, Gateway, respond};

pub async fn targets(State(gateway): State<Gateway>, headers: HeaderMap) -> Response {
    if let Err(error) = authorize(&gateway, &headers) {
        return respond::error(ClientFormat::OpenAi, &error, 0);
    }
    let now = tokio::time::Instant::now();
    let targets: Vec<_> = gateway
        .client()
        .target_states()
        .into_iter()
        .map(|(label, state)| {
            let (breaker, open_for) = state.with_breaker(|b| (b.state(), b.admit_preview(now)));
            let (limit, in_flight) = state.concurrency();
            json!({
                "target": label,
                "breaker": breaker.as_str(),
                "open_for_ms": open_for.map(|d| d.as_millis() as u64),
                "concurrency_limit": limit,
                "in_flight": in_flight,
            })
        })
        .collect();
    Json(json!({"targets": targets})).into_response()
}

/// The status page's grouping for operators: the headline from the routes
/// (what clients get), each group with its worst state, and the sentences
/// for outages fallback absorbed. Live states only: the page's history is
/// on `/status`. With `redis:`, the judge's fresh word, as the page shows
/// it (a follower's own states are silent guesses), with Redis itself in
/// the "Gateway" group.
pub async fn status(State(gateway): State<Gateway>, headers: HeaderMap) -> Response {
    if let Err(error) = authorize(&gateway, &headers) {
        return respond::error(ClientFormat::OpenAi, &error, 0);
    }
    let now = unix_ms_now();
    let (components, absorbed) = match gateway.observer.cluster.fresh_judged().await {
        Some(judged) => (
            judged
                .components
                .into_iter()
                .map(bulwark_health::ComponentView::from)
                .collect(),
            judged.absorbed,
        ),
        None => {
            let health = gateway.observer.health();
            let mut components = health.components();
            components.extend(gateway.observer.cluster.component());
            (components, health.absorbed(now))
        }
    };
    let overall = client_overall(components.iter().map(|c| (c.kind, c.state)));
    let groups: Vec<_> = [
        ComponentKind::Route,
        ComponentKind::Target,
        ComponentKind::Dependency,
    ]
    .into_iter()
    // No `redis:`: no Gateway group to show.
    .filter(|kind| components.iter().any(|c| c.kind == *kind) || *kind != ComponentKind::Dependency)
    .map(|kind| {
        let members: Vec<_> = components.iter().filter(|c| c.kind == kind).collect();
        let worst = members
            .iter()
            .map(|c| c.state)
            .max()
            .unwrap_or(ComponentState::Operational);
        let members: Vec<_> = members
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "status": c.state.as_str(),
                    "reason": c.reason,
                    "updated_at": c.updated_at,
                    "first_token_p50_ms": c.first_token_p50_ms,
                    "first_token_p95_ms": c.first_token_p95_ms,
                })
            })
            .collect();
        json!({
            "name": bulwark_status::group_title(kind),
            "status": worst.as_str(),
            "components": members,
        })
    })
    .collect();
    Json(json!({
        "status": overall.as_str(),
        "notices": bulwark_status::notices(&absorbed, gateway.observer.public().provider_names()),
        "absorbed": absorbed,
        "groups": groups,
    }))
    .into_response()
}

pub(crate) fn authorize(gateway: &Gateway, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = gateway.live().admin_key else {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            "the admin API is off: set `admin_key` in the config to turn it on",
        ));
    };
    if presents(headers, &expected) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorKind::Authentication,
            "the admin API needs the admin key as `Authorization: Bearer <key>`",
        ))
    }
}

/// Whether `/metrics` may be read: always without a `metrics_key`, else
/// with it or the admin key.
pub(crate) fn may_read_metrics(gateway: &Gateway, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = gateway.live().metrics_key else {
        return Ok(());
    };
    let admin = gateway
        .live()
        .admin_key
        .is_some_and(|admin| presents(headers, &admin));
    if admin || presents(headers, &expected) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorKind::Authentication,
            "`/metrics` needs the metrics key as `Authorization: Bearer <key>` (Prometheus: `authorization: {credentials: ...}` in the scrape config)",
        ))
    }
}

/// Whether the request carries the key whose blake3 hash is `expected`.
fn presents(headers: &HeaderMap, expected: &[u8; 32]) -> bool {
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .unwrap_or_default();
    // Constant-time: blake3::Hash's equality is.
    blake3::hash(presented.trim().as_bytes()) == blake3::Hash::from(*expected)
}

/// `GET /admin/incidents`: the latest incidents, newest first.
pub async fn incidents(State(gateway): State<Gateway>, headers: HeaderMap) -> Response {
    if let Err(error) = authorize(&gateway, &headers) {
        return respond::error(ClientFormat::OpenAi, &error, 0);
    }
    match gateway.observer.store.incidents(100).await {
        Ok(incidents) => Json(json!({ "incidents": incidents })).into_response(),
        Err(error) => store_error(&error),
    }
}

/// `GET /admin/incidents/{id}`: one incident as JSON, or with
/// `?format=md` as a ready post-incident review.
pub async fn incident(
    State(gateway): State<Gateway>,
    Path(id): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(error) = authorize(&gateway, &headers) {
        return respond::error(ClientFormat::OpenAi, &error, 0);
    }
    let found = match gateway.observer.store.incident(&id).await {
        Ok(found) => found,
        Err(error) => return store_error(&error),
    };
    let Some(incident) = found else {
        return respond::error(
            ClientFormat::OpenAi,
            &ApiError::new(
                ErrorKind::NotFound,
                format!("no incident `{id}`; GET /admin/incidents lists them"),
            ),
            0,
        );
    };
    if query.get("format").map(String::as_str) == Some("md") {
        return (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/markdown; charset=utf-8",
            )],
            bulwark_status::incident_markdown(&incident),
        )
            .into_response();
    }
    Json(json!(incident)).into_response()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Annotation {
    status: Option<String>,
    message: Option<String>,
}

/// An annotation is a status and a sentence or two; far more is a mistake.
const MAX_ANNOTATION_BYTES: usize = 64 * 1024;

const ANNOTATION_SHAPE: &str =
    r#"expected a JSON body like {"status": "identified", "message": "..."}"#;

async fn read_annotation(body: axum::body::Body) -> Result<Annotation, ApiError> {
    let bytes = axum::body::to_bytes(body, MAX_ANNOTATION_BYTES)
        .await
        .map_err(|error| {
            let too_large = std::error::Error::source(&error)
                .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            if too_large {
                ApiError::new(
                    ErrorKind::RequestTooLarge,
                    format!("{ANNOTATION_SHAPE}, of at most {MAX_ANNOTATION_BYTES} bytes"),
                )
            } else {
                ApiError::invalid(format!("the body could not be read: {error}"))
            }
        })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid(format!("{ANNOTATION_SHAPE}: {e}")))
}

/// `POST /admin/incidents/current/updates` with `{"status": "identified",
/// "message": "..."}`: an admin's word on the open incident.
pub async fn annotate(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    // The key is checked before a byte of the body is read: a caller
    // without it must not make the gateway wait for, or hold, its upload.
    if let Err(error) = authorize(&gateway, &headers) {
        return respond::error(ClientFormat::OpenAi, &error, 0);
    }
    let annotation = match read_annotation(body).await {
        Ok(annotation) => annotation,
        Err(error) => return respond::error(ClientFormat::OpenAi, &error, 0),
    };
    let status = match annotation.status.as_deref().map(IncidentStatus::parse) {
        None => None,
        Some(Some(status)) => Some(status),
        Some(None) => {
            return respond::error(
                ClientFormat::OpenAi,
                &ApiError::invalid(
                    "`status` must be investigating, identified, monitoring, resolved or postmortem",
                ),
                0,
            );
        }
    };
    if status.is_none() && annotation.message.as_deref().is_none_or(str::is_empty) {
        return respond::error(
            ClientFormat::OpenAi,
            &ApiError::invalid("give a `status`, a `message`, or both"),
            0,
        );
    }
    let now = unix_ms_now();
    let update = gateway
        .observer
        .health()
        .annotate(now, status, annotation.message.clone());
    if update.is_some() && !gateway.observer.cluster.is_judge() {
        // Another instance judges: it writes the annotation, and this
        // instance's copy follows it.
        gateway.observer.share_admin_word(AdminWord::Annotation {
            at: now,
            status,
            message: annotation.message,
        });
    }
    match update {
        Some(update) => {
            let incident = update.incident().clone();
            crate::observe::publish_incident_update(&gateway.observer, update);
            Json(json!(incident)).into_response()
        }
        None => respond::error(
            ClientFormat::OpenAi,
            &ApiError::new(ErrorKind::NotFound, "no incident is open"),
            0,
        ),
    }
}

/// `PUT /admin/components/{name}/maintenance`: shows the component as
/// under maintenance until the matching `DELETE`.
pub async fn maintenance_on(
    state: State<Gateway>,
    path: Path<String>,
    headers: HeaderMap,
) -> Response {
    maintenance(state, path, headers, true)
}

pub async fn maintenance_off(
    state: State<Gateway>,
    path: Path<String>,
    headers: HeaderMap,
) -> Response {
    maintenance(state, path, headers, false)
}

fn maintenance(
    State(gateway): State<Gateway>,
    Path(name): Path<String>,
    headers: HeaderMap,
    on: bool,
) -> Response {
    if let Err(error) = authorize(&gateway, &headers) {
        return respond::error(ClientFormat::OpenAi, &error, 0);
    }
    let now = unix_ms_now();
    let change = gateway.observer.health().set_maintenance(now, &name, on);
    if change.is_some() {
        gateway.observer.share_admin_word(AdminWord::Maintenance {
            at: now,
            component: name.clone(),
            on,
        });
    }
    match change {
        Some(change) => {
            gateway
                .observer
                .metrics
                .set_component_state(&change.name, change.kind, change.to);
            Json(json!({"component": change.name, "status": change.to.as_str()})).into_response()
        }
        None => respond::error(
            ClientFormat::OpenAi,
            &ApiError::new(
                ErrorKind::NotFound,
                format!(
                    "no component `{name}`; components are targets (`provider/model`, URL-encoded) and route names"
                ),
            ),
            0,
        ),
    }
}

fn store_error(error: &bulwark_store::StoreError) -> Response {
    respond::error(
        ClientFormat::OpenAi,
        &ApiError::new(
            ErrorKind::Overloaded,
            format!("the store is not answering: {error}"),
        ),
        0,
    )
}
