//! `GET /v1/models`: the routes, and every `provider/model` they use, in
//! OpenAI's list format (or Anthropic's, for Anthropic clients).

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::Auth;
use crate::{ClientFormat, Gateway, respond};

pub async fn list(State(gateway): State<Gateway>, headers: HeaderMap) -> Response {
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
    let all: Vec<(String, &str)> = routes
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
        .collect();
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
