//! The public face of health: the status page, its Statuspage-shaped JSON,
//! an Atom feed, live updates, Prometheus metrics and the health probes.

use std::convert::Infallible;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde_json::json;

use crate::Gateway;

pub async fn page(State(gateway): State<Gateway>) -> Response {
    let snapshot = gateway.observer.snapshot().await;
    let mut response = axum::response::Html(bulwark_status::render_html(&snapshot)).into_response();
    no_store(&mut response);
    response
}

pub async fn summary(State(gateway): State<Gateway>) -> Response {
    json_response(bulwark_status::summary_json(
        &gateway.observer.snapshot().await,
    ))
}

pub async fn status(State(gateway): State<Gateway>) -> Response {
    json_response(bulwark_status::status_json(
        &gateway.observer.snapshot().await,
    ))
}

pub async fn components(State(gateway): State<Gateway>) -> Response {
    json_response(bulwark_status::components_json(
        &gateway.observer.snapshot().await,
    ))
}

pub async fn incidents(State(gateway): State<Gateway>) -> Response {
    json_response(bulwark_status::incidents_json(
        &gateway.observer.snapshot().await,
    ))
}

pub async fn feed(State(gateway): State<Gateway>) -> Response {
    let body = bulwark_status::atom_feed(&gateway.observer.snapshot().await);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/atom+xml; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// Component and incident changes as they happen.
pub async fn events(
    State(gateway): State<Gateway>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let mut updates = gateway.observer.updates.subscribe();
    // The live states are enough here: the full snapshot would read 90
    // days of history from the store for every subscriber.
    let overall = gateway.observer.public_overall();
    // The view, not the observer: holding the observer would keep it (and
    // this stream) alive after the gateway is dropped.
    let public = Arc::clone(&gateway.observer.public);
    let stream = async_stream::stream! {
        yield Ok(SseEvent::default().event("hello").data(json!({"status": overall.as_str()}).to_string()));
        loop {
            match updates.recv().await {
                // Only what the public view lets through (`show_targets`).
                Ok(update) => {
                    let update = public.read().unwrap_or_else(PoisonError::into_inner).update(&update);
                    if let Some(update) = update {
                        yield Ok(SseEvent::default().event("update").data(update));
                    }
                }
                // A slow reader misses updates; it is told to reload instead.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    yield Ok(SseEvent::default().event("reload").data("{}"));
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    };
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

pub async fn metrics(State(gateway): State<Gateway>, headers: HeaderMap) -> Response {
    if let Err(error) = crate::admin::may_read_metrics(&gateway, &headers) {
        return crate::respond::error(crate::ClientFormat::OpenAi, &error, 0);
    }
    gateway
        .observer
        .metrics
        .set_request_memory(gateway.budget.reserved(), gateway.budget.shed());
    let stats = gateway.conversations().stats();
    gateway.observer.metrics.set_conversation_stats(
        stats.stored,
        stats.too_large,
        stats.failed,
        stats.dropped,
        stats.over_budget,
    );
    // Reading /proc (one entry per open descriptor) is blocking file work.
    let alive_tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks() as u64;
    if let Ok(mut process) = tokio::task::spawn_blocking(crate::observe::process::read).await {
        process.alive_tasks = Some(alive_tasks);
        gateway.observer.metrics.set_process_stats(&process);
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(bulwark_metrics::CONTENT_TYPE),
        )],
        gateway.observer.metrics.render(),
    )
        .into_response()
}

/// Ready when the config is loaded (it is, or the gateway would not be
/// running) and the store answers.
pub async fn ready(State(gateway): State<Gateway>) -> Response {
    if gateway.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "draining"})),
        )
            .into_response();
    }
    match gateway.observer.store.ping().await {
        Ok(()) => Json(json!({"status": "ready", "store": gateway.observer.store.backend()})).into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "store": gateway.observer.store.backend(), "error": error.to_string()})),
        )
            .into_response(),
    }
}

fn json_response(value: serde_json::Value) -> Response {
    let mut response = Json(value).into_response();
    no_store(&mut response);
    // Status widgets are embedded on other sites.
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}
