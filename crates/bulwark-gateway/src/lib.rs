//! Bulwark's HTTP gateway: the OpenAI and Anthropic front doors over the
//! `bulwark` engine. Requests are decoded once into the neutral types, run
//! through [`bulwark::Client`], and answered in the format the client spoke.
//!
//! Routes: `POST /v1/chat/completions` (OpenAI), `POST /v1/messages`
//! (Anthropic), `GET /v1/models`, `GET /healthz`.

mod admin;
mod auth;
mod front_door;
mod models;
mod respond;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use bulwark::config::Config;
use bulwark::provider::ProviderBuildError;
use tokio::net::TcpListener;

pub use front_door::ClientFormat;

/// Shared state of one gateway instance.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub(crate) client: Arc<bulwark::Client>,
    pub(crate) max_request_bytes: usize,
    pub(crate) auth: Arc<auth::Auth>,
    pub(crate) admin_key: Option<[u8; 32]>,
}

impl Gateway {
    pub fn new(config: &Config) -> Result<Gateway, ProviderBuildError> {
        Ok(Gateway {
            client: Arc::new(bulwark::Client::from_config(config)?),
            max_request_bytes: config.max_request_bytes,
            auth: Arc::new(auth::Auth::new(config.keys.clone())),
            admin_key: config.admin_key,
        })
    }

    /// Whether the gateway takes requests without a client key.
    pub fn is_open(&self) -> bool {
        self.auth.is_open()
    }

    /// The engine's decisions as they happen (see `bulwark::events`).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<bulwark::events::Event> {
        self.client.subscribe()
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/chat/completions", post(front_door::openai))
            .route("/v1/messages", post(front_door::anthropic))
            .route("/v1/models", get(models::list))
            .route("/healthz", get(|| async { "ok" }))
            .route("/admin/targets", get(admin::targets))
            .fallback(respond::not_found)
            // The handlers enforce the limit themselves, to answer in the
            // client's format; this only stops axum's smaller default.
            .layer(DefaultBodyLimit::max(self.max_request_bytes))
            .with_state(self.clone())
    }
}

/// Serves the gateway on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    gateway: Gateway,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Without TCP_NODELAY, each small SSE chunk after the first waits for
    // the client's delayed ACK (Nagle's algorithm): about 40 ms per answer.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {error}");
        }
    });
    axum::serve(listener, gateway.router())
        .with_graceful_shutdown(shutdown)
        .await
}
