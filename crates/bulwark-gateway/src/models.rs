//! `GET /v1/models`: the routes, and every `provider/model` they use, in
//! OpenAI's list format (or Anthropic's, for Anthropic clients);
//! `GET /v1beta/models`: the same in Gemini's.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::Auth;
use crate::{ClientFormat, Gateway, respond};

pub async fn list(
    State(gateway): State<Gateway>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    // `google-genai` lists `/v1/models` too; it always sends its telemetry
    // header, and its key in its own header.
    if headers.contains_key("x-goog-api-client") || headers.contains_key("x-goog-api-key") {
        return gemini_list(State(gateway), uri, headers).await;
    }
    let anthropic = headers.contains_key("anthropic-version");
    let key = match gateway.auth.authenticate(&headers) {
        Ok(key) => key,
        Err(error) => {
            let format = if anthropic {
                ClientFormat::Anthropic
            } else {
                ClientFormat::OpenAi
            };
            return respond::error(format, &error, 0);
        }
    };
    let all = visible_models(&gateway, key);
    // Anthropic's SDK always sends its version header; its list shape differs.
    if anthropic {
        let data: Vec<Value> = all
            .iter()
            .map(|(id, _)| json!({"type": "model", "id": id, "display_name": id, "created_at": "1970-01-01T00:00:00Z"}))
            .collect();
        let first = all.first().map(|(id, _)| id.clone());
        let last = all.last().map(|(id, _)| id.clone());
        return Json(json!({"data": data, "has_more": false, "first_id": first, "last_id": last}))
            .into_response();
    }
    let data: Vec<Value> = all
        .iter()
        .map(|(id, owner)| json!({"id": id, "object": "model", "created": 0, "owned_by": owner}))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

/// `GET /v1beta/models`, as `google-genai`'s `models.list` reads it: every
/// route and target under `models/`, each serving the two methods of the
/// Gemini front door. One page holds them all.
pub async fn gemini_list(
    State(gateway): State<Gateway>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let key = match gateway.auth.authenticate_with_query(&headers, uri.query()) {
        Ok(key) => key,
        Err(error) => return respond::error(ClientFormat::Gemini, &error, 0),
    };
    let models: Vec<Value> = visible_models(&gateway, key)
        .into_iter()
        .map(|(id, _)| {
            json!({
                "name": format!("models/{id}"),
                "displayName": id,
                "supportedGenerationMethods": ["generateContent", "streamGenerateContent"],
            })
        })
        .collect();
    Json(json!({"models": models})).into_response()
}

/// The routes and `provider/model` targets `key` may use, each with its
/// owner: routes first, then targets in order.
fn visible_models(
    gateway: &Gateway,
    key: Option<&crate::config::ClientKey>,
) -> Vec<(String, &'static str)> {
    // A key sees only what it may use.
    let visible = |name: &str| Auth::allows(key, name).is_ok();
    let mut ids = BTreeSet::new();
    let mut routes = Vec::new();
    for route in gateway.client.routes() {
        if visible(&route.name) {
            routes.push(route.name.clone());
        }
        for target in route.targets.iter().filter(|t| visible(&t.label)) {
            ids.insert(target.label.clone());
        }
    }
    routes
        .into_iter()
        .map(|r| (r, "bulwark-route"))
        .chain(ids.into_iter().map(|t| {
            let owner = t.split('/').next().unwrap_or_default().to_string();
            (
                t,
                if owner.is_empty() {
                    "bulwark"
                } else {
                    "provider"
                },
            )
        }))
        .collect()
}
