//! Bulwark's HTTP gateway: the OpenAI and Anthropic front doors over the
//! `bulwark` engine. Requests are decoded once into the neutral types, run
//! through [`bulwark::Client`], and answered in the format the client spoke.
//!
//! [`Gateway::router`] is the one list of the paths it serves: the front
//! doors under `/v1`, liveness and readiness probes, Prometheus metrics,
//! the status page with its feed, event stream and Statuspage-style
//! `/api/v2` JSON, and the admin API under `/admin`.

mod admin;
mod auth;
pub mod config;
mod front_door;
mod models;
pub mod observe;
mod respond;
mod status;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use bulwark::provider::ProviderBuildError;
use tokio::net::TcpListener;

pub use config::GatewayConfig;
pub use front_door::ClientFormat;

/// Shared state of one gateway instance.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub(crate) client: Arc<bulwark::Client>,
    pub(crate) max_request_bytes: usize,
    pub(crate) auth: Arc<auth::Auth>,
    pub(crate) admin_key: Option<[u8; 32]>,
    pub(crate) observer: Arc<observe::Observer>,
    /// Set once a shutdown starts: `/readyz` answers 503 so that load
    /// balancers stop sending.
    pub(crate) draining: Arc<AtomicBool>,
    shutdown_grace: Duration,
}

/// Why a gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Provider(#[from] ProviderBuildError),
    #[error(transparent)]
    Observe(#[from] observe::ObserveError),
}

impl Gateway {
    /// Builds the engine and opens the store (running its migrations).
    pub async fn start(config: &GatewayConfig) -> Result<Gateway, StartError> {
        let client = Arc::new(bulwark::Client::from_config(&config.engine)?);
        let observer = observe::Observer::start(config, &client).await?;
        Ok(Gateway {
            client,
            max_request_bytes: config.max_request_bytes,
            auth: Arc::new(auth::Auth::new(config.keys.clone())),
            admin_key: config.admin_key,
            observer,
            draining: Arc::new(AtomicBool::new(false)),
            shutdown_grace: config.shutdown_grace,
        })
    }

    /// Marks the gateway as shutting down: `/readyz` answers 503 from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// The request log, health, incidents and metrics of this gateway.
    pub fn observer(&self) -> &Arc<observe::Observer> {
        &self.observer
    }

    /// Judges health now instead of at the next tick (for tests and drills).
    pub async fn evaluate_health(&self) {
        observe::evaluate_now(&self.observer, &self.client).await;
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
            .route("/readyz", get(status::ready))
            .route("/metrics", get(status::metrics))
            .route("/status", get(status::page))
            .route("/status/", get(status::page))
            .route("/status/feed.atom", get(status::feed))
            .route("/status/events", get(status::events))
            .route("/api/v2/summary.json", get(status::summary))
            .route("/api/v2/status.json", get(status::status))
            .route("/api/v2/components.json", get(status::components))
            .route("/api/v2/incidents.json", get(status::incidents))
            .route("/admin/targets", get(admin::targets))
            .route("/admin/incidents", get(admin::incidents))
            .route("/admin/incidents/{id}", get(admin::incident))
            .route("/admin/incidents/current/updates", post(admin::annotate))
            .route(
                "/admin/components/{name}/maintenance",
                axum::routing::put(admin::maintenance_on).delete(admin::maintenance_off),
            )
            .fallback(respond::not_found)
            // The handlers enforce the limit themselves, to answer in the
            // client's format; this only stops axum's smaller default.
            .layer(DefaultBodyLimit::max(self.max_request_bytes))
            .with_state(self.clone())
    }
}

/// Serves the gateway on `listener` until `shutdown` completes, then drains:
/// `/readyz` turns 503, no new connection is accepted, requests and streams
/// in flight get `shutdown_grace` to finish, and the request log is flushed
/// before this returns.
pub async fn serve(
    listener: TcpListener,
    gateway: Gateway,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (drain_started, drain_begun) = tokio::sync::oneshot::channel::<()>();
    let draining = gateway.clone();
    let shutdown = async move {
        shutdown.await;
        draining.start_draining();
        tracing::info!(
            grace = ?draining.shutdown_grace,
            "shutting down: finishing the requests in flight"
        );
        let _ = drain_started.send(());
    };
    let grace = gateway.shutdown_grace;
    let grace_over = async move {
        // Until a shutdown starts there is no grace period to count.
        if drain_begun.await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(grace).await;
    };
    let served = tokio::select! {
        served = serve_until(listener, gateway.clone(), shutdown) => served,
        () = grace_over => {
            tracing::warn!(?grace, "shutdown grace over with requests still in flight; cutting them");
            Ok(())
        }
    };
    gateway.observer.flush().await;
    served
}

async fn serve_until(
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
    // A plain `Router` is rebuilt for every connection (its route table
    // copied, about 6 kB); a make-service built once is only cloned.
    axum::serve(listener, gateway.router().into_make_service())
        .with_graceful_shutdown(shutdown)
        .await
}
