//! The `/_sim` control API: fault rules, the request log and stats over HTTP,
//! mirroring the methods on [`Sim`].

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::config::Latency;
use crate::fault::FaultRule;
use crate::phase::SimPhase;
use crate::state::Sim;

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route(
            "/_sim/faults",
            get(get_faults)
                .put(put_faults)
                .post(post_fault)
                .delete(delete_faults),
        )
        .route("/_sim/requests", get(get_requests).delete(delete_requests))
        .route("/_sim/stats", get(get_stats))
        .route("/_sim/latency", put(put_latency))
        .route("/_sim/phase", get(get_phase).put(put_phase))
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(body)
}

fn bad_request(e: &serde_json::Error) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": e.to_string()})),
    )
        .into_response()
}

fn faults_json(sim: &Sim) -> Response {
    axum::Json(sim.faults()).into_response()
}

async fn get_faults(State(sim): State<Sim>) -> Response {
    faults_json(&sim)
}

async fn put_faults(State(sim): State<Sim>, body: Bytes) -> Response {
    match parse::<Vec<FaultRule>>(&body) {
        Ok(rules) => {
            sim.set_faults(rules);
            faults_json(&sim)
        }
        Err(e) => bad_request(&e),
    }
}

async fn post_fault(State(sim): State<Sim>, body: Bytes) -> Response {
    match parse::<FaultRule>(&body) {
        Ok(rule) => {
            sim.add_fault(rule);
            faults_json(&sim)
        }
        Err(e) => bad_request(&e),
    }
}

async fn delete_faults(State(sim): State<Sim>) -> Response {
    sim.clear_faults();
    faults_json(&sim)
}

async fn get_requests(State(sim): State<Sim>) -> Response {
    axum::Json(sim.requests()).into_response()
}

async fn delete_requests(State(sim): State<Sim>) -> StatusCode {
    sim.clear_requests();
    StatusCode::NO_CONTENT
}

async fn get_stats(State(sim): State<Sim>) -> Response {
    axum::Json(sim.stats()).into_response()
}

async fn put_latency(State(sim): State<Sim>, body: Bytes) -> Response {
    match parse::<Latency>(&body) {
        Ok(latency) => {
            sim.set_latency(latency);
            axum::Json(latency).into_response()
        }
        Err(e) => bad_request(&e),
    }
}

async fn get_phase(State(sim): State<Sim>) -> Response {
    axum::Json(SimPhase::of(&sim.config())).into_response()
}

/// Latency, distribution, rules and quota replaced in one step, as a drill
/// switching phases needs.
async fn put_phase(State(sim): State<Sim>, body: Bytes) -> Response {
    match parse::<SimPhase>(&body) {
        Ok(phase) => {
            sim.apply_phase(phase);
            get_phase(State(sim)).await
        }
        Err(e) => bad_request(&e),
    }
}
