//! The unary front doors: `POST /v1/embeddings` (OpenAI's shape) and
//! `POST /v1/messages/count_tokens` (Anthropic's). One JSON request, one
//! JSON answer, through the same steps as the chat doors: the key checked
//! before the body is read, its model allow-list and quota, the request id,
//! the request log and metrics; errors in the client's own format.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use bulwark::RequestOptions;
use bulwark::error::ApiError;
use bulwark::unary::{CountTokensRequest, EmbeddingsRequest};
use bulwark::wire::limits::{self, Shape};
use serde_json::Value;
use tracing::Instrument;

use crate::Gateway;
use crate::auth::Auth;
use crate::config::ClientKey;
use crate::front_door::{
    ClientFormat, caller, failed_response, forwarded_headers, hold_until_sent, quota_refused,
    read_body, with_request,
};
use crate::observe::Pending;
use crate::respond;

/// Set on a token count Bulwark estimated itself, because no Anthropic
/// target was there to count, or none answered.
pub const ESTIMATED_HEADER: &str = "x-bulwark-estimated";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Door {
    Embeddings,
    CountTokens,
}

impl Door {
    fn format(self) -> ClientFormat {
        match self {
            Door::Embeddings => ClientFormat::OpenAi,
            Door::CountTokens => ClientFormat::Anthropic,
        }
    }

    /// What the parse limits count: a count of tokens is a Messages
    /// request; an embeddings request's `input` items count as messages.
    fn shape(self) -> &'static Shape {
        const EMBEDDINGS: Shape = Shape {
            messages: "input",
            parts: "content",
            top_parts: &[],
            model: Some("model"),
        };
        match self {
            Door::Embeddings => &EMBEDDINGS,
            Door::CountTokens => self.format().dialect().request_shape(),
        }
    }
}

pub async fn embeddings(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(gateway, Door::Embeddings, &headers, body).await
}

pub async fn count_tokens(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(gateway, Door::CountTokens, &headers, body).await
}

async fn handle(gateway: Gateway, door: Door, headers: &HeaderMap, body: Body) -> Response {
    let observer = Arc::clone(&gateway.observer);
    with_request(observer, door.format(), headers, |pending| {
        answer(gateway, door, headers, body, pending)
    })
    .await
}

async fn answer(
    gateway: Gateway,
    door: Door,
    headers: &HeaderMap,
    body: Body,
    mut pending: Pending,
) -> Response {
    let format = door.format();
    // Taken once: a config reload from here on does not touch this request.
    let live = gateway.live();
    let refuse = |pending: Pending, error: ApiError| {
        let response = respond::error(format, &error, 0);
        pending.error(response.status().as_u16(), &error, None);
        response
    };
    let (key, options) = match caller(&live, headers, None, &mut pending) {
        Ok(caller) => caller,
        Err(error) => return refuse(pending, error),
    };
    // Only now, with the key checked, is the body read.
    let mut reservation = gateway.budget.reservation();
    let body = match read_body(
        body,
        headers,
        live.max_request_bytes,
        gateway.server.body_timeout,
        &mut reservation,
    )
    .await
    {
        Ok(body) => body,
        Err(error) => return refuse(pending, error),
    };
    let scanned = match limits::check(&body, door.shape(), &gateway.server.limits) {
        Ok(scanned) => scanned,
        Err(error) => return refuse(pending, error),
    };
    if let Err(error) = reservation.cover_decode(body.len(), &scanned) {
        return refuse(pending, error);
    }
    let response = call(&live, door, headers, &body, key, options, pending).await;
    hold_until_sent(response, reservation)
}

/// Decodes the body of `door`'s kind and asks the engine.
async fn call(
    live: &crate::Live,
    door: Door,
    headers: &HeaderMap,
    body: &Bytes,
    key: Option<&ClientKey>,
    options: RequestOptions,
    mut pending: Pending,
) -> Response {
    let format = door.format();
    let refuse = |pending: Pending, error: ApiError| {
        let response = respond::error(format, &error, 0);
        pending.error(response.status().as_u16(), &error, None);
        response
    };
    let span = pending.span().clone();
    match door {
        Door::Embeddings => {
            let request = match EmbeddingsRequest::decode(body) {
                Ok(request) => request,
                Err(error) => return refuse(pending, error),
            };
            pending.unary_request("embeddings", &request.model, body);
            if let Err(error) = Auth::allows(key, &request.model) {
                return refuse(pending, error);
            }
            if let Err(error) = live.auth.take_quota(key, request.estimated_tokens()).await {
                return quota_refused(pending, format, &error);
            }
            match live
                .client
                .embeddings(request, options)
                .instrument(span)
                .await
            {
                Ok(served) => {
                    let tokens = served
                        .value
                        .pointer("/usage/prompt_tokens")
                        .and_then(Value::as_u64);
                    let response = respond::unary(&served);
                    pending.unary(&served, tokens);
                    response
                }
                Err(failed) => failed_response(pending, format, &failed),
            }
        }
        Door::CountTokens => {
            let mut request = match CountTokensRequest::decode(body) {
                Ok(request) => request,
                Err(error) => return refuse(pending, error),
            };
            pending.unary_request("count_tokens", &request.model, body);
            match forwarded_headers(format, headers) {
                Ok(forwarded) => request.headers = forwarded,
                Err(error) => return refuse(pending, error),
            }
            if let Err(error) = Auth::allows(key, &request.model) {
                return refuse(pending, error);
            }
            // A count costs no tokens: only the key's request quota counts.
            if let Err(error) = live.auth.take_quota(key, 0).await {
                return quota_refused(pending, format, &error);
            }
            match live
                .client
                .count_tokens(request, options)
                .instrument(span)
                .await
            {
                Ok(served) => {
                    let estimated = served.value.estimated;
                    let served = served.map(|counted| counted.body);
                    let mut response = respond::unary(&served);
                    if estimated {
                        response
                            .headers_mut()
                            .insert(ESTIMATED_HEADER, HeaderValue::from_static("true"));
                    }
                    pending.unary(&served, None);
                    response
                }
                Err(failed) => failed_response(pending, format, &failed),
            }
        }
    }
}
