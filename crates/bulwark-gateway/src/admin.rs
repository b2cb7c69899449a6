//! `/admin/`: what operators may look at, behind the admin key.
//!
//! `GET /admin/targets`: every target's breaker state and concurrency.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bulwark::error::{ApiError, ErrorKind};
use serde_json::json;

use crate::{ClientFormat, Gateway, respond};

pub async fn targets(State(gateway): State<Gateway>, headers: HeaderMap) -> Response {
    if let Err(error) = authorize(&gateway, &headers) {
        return respond::error(ClientFormat::OpenAi, &error, 0);
    }
    let now = tokio::time::Instant::now();
    let targets: Vec<_> = gateway
        .client
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

fn authorize(gateway: &Gateway, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = gateway.admin_key else {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            "the admin API is off: set `admin_key` in the config to turn it on",
        ));
    };
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .unwrap_or_default();
    // Constant-time: blake3::Hash's equality is.
    if blake3::hash(presented.trim().as_bytes()) == blake3::Hash::from(expected) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorKind::Authentication,
            "the admin API needs the admin key as `Authorization: Bearer <key>`",
        ))
    }
}
