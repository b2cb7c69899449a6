//! `GET /v1/models`: the routes, and every `provider/model` they use, in
//! OpenAI's list format (or Anthropic's, for Anthropic clients);
//! `GET /v1beta/models`: the same in Gemini's. `GET /v1/models/{id}` and
//! `GET /v1beta/models/{model}` answer for one of them, or with the
//! format's 404.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::Auth;
use crate::{ClientFormat, Gateway, respond};
use bulwark::error::{ApiError, ErrorKind};

pub async fn list(
    State(gateway): State<Gateway>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let format = format_of(&headers);
    if format == ClientFormat::Gemini {
        return gemini_list(State(gateway), uri, headers).await;
    }
    let live = gateway.live();
    let key = match live.auth.authenticate(&headers) {
        Ok(key) => key,
        Err(error) => return respond::error(format, &error, 0),
    };
    let all = visible_models(&live, key);
    if format == ClientFormat::Anthropic {
        let data: Vec<Value> = all.iter().map(|(id, _)| anthropic_model(id)).collect();
        let first = all.first().map(|(id, _)| id.clone());
        let last = all.last().map(|(id, _)| id.clone());
        return Json(json!({"data": data, "has_more": false, "first_id": first, "last_id": last}))
            .into_response();
    }
    let data: Vec<Value> = all
        .iter()
        .map(|(id, owner)| openai_model(id, owner))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

/// `GET /v1/models/{id}` (`models.retrieve` in OpenAI's and Anthropic's
/// SDKs, `models.get` in `google-genai` at `v1`): one route or target in
/// the shape of the client's format, told by its headers as for the list.
/// The id may hold `/` (`provider/model`), so the whole rest is taken.
pub async fn retrieve(
    State(gateway): State<Gateway>,
    rest: Result<Path<String>, PathRejection>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let format = if uri.path().contains(':') {
        // `{model}:generateContent` asked for with GET: Google's client.
        ClientFormat::Gemini
    } else {
        format_of(&headers)
    };
    if format == ClientFormat::Gemini {
        return gemini_retrieve(State(gateway), rest, uri, headers).await;
    }
    let live = gateway.live();
    let key = match live.auth.authenticate(&headers) {
        Ok(key) => key,
        Err(error) => return respond::error(format, &error, 0),
    };
    let Ok(Path(id)) = rest else {
        return respond::error(format, &no_model("(undecodable)"), 0);
    };
    match visible_models(&live, key)
        .into_iter()
        .find(|(seen, _)| *seen == id)
    {
        Some((id, _)) if format == ClientFormat::Anthropic => {
            Json(anthropic_model(&id)).into_response()
        }
        Some((id, owner)) => Json(openai_model(&id, owner)).into_response(),
        None => respond::error(format, &no_model(&id), 0),
    }
}

/// `GET /v1beta/models/{model}` (`google-genai`'s `models.get`): one route
/// or target as Gemini's `Model`, under its `models/` name.
pub async fn gemini_retrieve(
    State(gateway): State<Gateway>,
    rest: Result<Path<String>, PathRejection>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let live = gateway.live();
    let key = match live.auth.authenticate_with_query(&headers, uri.query()) {
        Ok(key) => key,
        Err(error) => return respond::error(ClientFormat::Gemini, &error, 0),
    };
    let Ok(Path(rest)) = rest else {
        return respond::error(ClientFormat::Gemini, &no_model("(undecodable)"), 0);
    };
    if rest.contains(':') {
        // A method of a model (`:generateContent`) is served only by POST.
        return respond::method_not_allowed(axum::http::Method::GET, uri).await;
    }
    let id = rest.strip_prefix("models/").unwrap_or(&rest);
    match visible_models(&live, key)
        .into_iter()
        .find(|(seen, _)| seen == id)
    {
        Some((id, _)) => Json(gemini_model(&id)).into_response(),
        None => respond::error(ClientFormat::Gemini, &no_model(id), 0),
    }
}

/// The format a models request is answered in, told by the headers each
/// SDK always sends: `google-genai` its telemetry header and its key in
/// its own header, Anthropic's SDK its version header.
fn format_of(headers: &HeaderMap) -> ClientFormat {
    if headers.contains_key("x-goog-api-client") || headers.contains_key("x-goog-api-key") {
        ClientFormat::Gemini
    } else if headers.contains_key("anthropic-version") {
        ClientFormat::Anthropic
    } else {
        ClientFormat::OpenAi
    }
}

fn no_model(id: &str) -> ApiError {
    ApiError::new(
        ErrorKind::NotFound,
        format!("no route or target named `{id}`; GET /v1/models lists them"),
    )
    .with_code("model_not_found")
}

fn openai_model(id: &str, owner: &str) -> Value {
    json!({"id": id, "object": "model", "created": 0, "owned_by": owner})
}

fn anthropic_model(id: &str) -> Value {
    json!({"type": "model", "id": id, "display_name": id, "created_at": "1970-01-01T00:00:00Z"})
}

fn gemini_model(id: &str) -> Value {
    json!({
        "name": format!("models/{id}"),
        "displayName": id,
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent"],
    })
}

/// `GET /v1beta/models`, as `google-genai`'s `models.list` reads it: every
/// route and target under `models/`, each serving the two methods of the
/// Gemini front door. One page holds them all.
pub async fn gemini_list(
    State(gateway): State<Gateway>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let live = gateway.live();
    let key = match live.auth.authenticate_with_query(&headers, uri.query()) {
        Ok(key) => key,
        Err(error) => return respond::error(ClientFormat::Gemini, &error, 0),
    };
    let models: Vec<Value> = visible_models(&live, key)
        .into_iter()
        .map(|(id, _)| gemini_model(&id))
        .collect();
    Json(json!({"models": models})).into_response()
}

/// The routes and `provider/model` targets `key` may use, each with its
/// owner: routes first, then targets in order.
fn visible_models(
    live: &crate::Live,
    key: Option<&crate::config::ClientKey>,
) -> Vec<(String, &'static str)> {
    // A key sees only what it may use.
    let visible = |name: &str| Auth::allows(key, name).is_ok();
    let mut ids = BTreeSet::new();
    let mut routes = Vec::new();
    for route in live.client.routes() {
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
