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
mod budget;
pub mod config;
pub mod conversations;
mod front_door;
mod models;
pub mod observe;
pub mod reload;
mod respond;
mod responses;
mod status;
mod unary_door;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::routing::{get, post};
use bulwark::provider::ProviderBuildError;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tower::ServiceExt;

pub use budget::{BODY_FACTOR, READ_FACTOR, decode_cost};
pub use config::GatewayConfig;
pub use front_door::{ClientFormat, MAX_REQUEST_ID_BYTES, REQUEST_ID_HEADER};
pub use unary_door::ESTIMATED_HEADER;

/// Shared state of one gateway instance.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// What the config decides, swapped whole by a reload (`reload.rs`).
    live: Arc<RwLock<Arc<Live>>>,
    pub(crate) observer: Arc<observe::Observer>,
    /// Set once a shutdown starts: `/readyz` answers 503 so that load
    /// balancers stop sending.
    pub(crate) draining: Arc<AtomicBool>,
    shutdown_grace: Duration,
    /// Timeouts and limits on client connections.
    pub(crate) server: config::ServerConfig,
    /// Stored Responses API conversations (`previous_response_id`).
    pub(crate) conversations: Arc<conversations::Conversations>,
    /// The file a reload reads, when the gateway was started from one.
    config_file: Arc<RwLock<Option<reload::ConfigFile>>>,
    /// One reload at a time, each building on the one before.
    reloading: Arc<tokio::sync::Mutex<()>>,
    /// The config the gateway started with: what the settings a reload
    /// cannot change still come from.
    started: Arc<GatewayConfig>,
    /// Set when the gateway listens beyond loopback without
    /// `--insecure-open`: a reload may not remove every client key.
    keys_required: Arc<AtomicBool>,
    /// Memory held by request bodies and their decoding.
    pub(crate) budget: Arc<budget::MemoryBudget>,
}

/// The part of a gateway a config reload replaces. A request takes it once,
/// at its start, and keeps it to its end: a reload in between changes
/// nothing for that request, and a stream in flight finishes on the engine
/// it started on.
#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) client: Arc<bulwark::Client>,
    pub(crate) auth: Arc<auth::Auth>,
    pub(crate) max_request_bytes: usize,
    pub(crate) admin_key: Option<[u8; 32]>,
    pub(crate) metrics_key: Option<[u8; 32]>,
    /// The config it was made from, for the next reload to compare with.
    pub(crate) config: GatewayConfig,
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
        observer
            .metrics
            .config_applied(bulwark::observe::unix_ms_now() / 1000);
        let conversations = Arc::new(conversations::Conversations::new(
            observer.store.clone(),
            config.conversations.clone(),
        ));
        conversations.spawn_expiry();
        let auth = Arc::new(auth::Auth::new(config.keys.clone(), client.shared()));
        let live = Live {
            client,
            auth,
            max_request_bytes: config.max_request_bytes,
            admin_key: config.admin_key,
            metrics_key: config.metrics_key,
            config: config.clone(),
        };
        Ok(Gateway {
            live: Arc::new(RwLock::new(Arc::new(live))),
            observer,
            draining: Arc::new(AtomicBool::new(false)),
            shutdown_grace: config.shutdown_grace,
            server: config.server.clone(),
            conversations,
            config_file: Arc::new(RwLock::new(None)),
            reloading: Arc::new(tokio::sync::Mutex::new(())),
            started: Arc::new(config.clone()),
            keys_required: Arc::new(AtomicBool::new(false)),
            budget: budget::MemoryBudget::new(config.server.max_inflight_request_bytes),
        })
    }

    /// What the current config decides; a request takes it once.
    pub(crate) fn live(&self) -> Arc<Live> {
        // The lock is held only to clone an `Arc`, never across an await.
        Arc::clone(&self.live.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The engine of the current config.
    pub fn client(&self) -> Arc<bulwark::Client> {
        Arc::clone(&self.live().client)
    }

    /// From now on a reload that leaves no client key is refused: the
    /// gateway listens where others can reach it.
    pub fn require_client_keys(&self) {
        self.keys_required.store(true, Ordering::Relaxed);
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

    /// Stored Responses API conversations: `expand` before a Responses
    /// request is decoded, `remember` after it is answered.
    pub fn conversations(&self) -> &Arc<conversations::Conversations> {
        &self.conversations
    }

    /// Judges health now instead of at the next tick (for tests and drills).
    pub async fn evaluate_health(&self) {
        observe::evaluate_now(&self.observer, &self.live().client).await;
    }

    /// Whether the gateway takes requests without a client key.
    pub fn is_open(&self) -> bool {
        self.live().auth.is_open()
    }

    /// The engine's decisions as they happen (see `bulwark::events`).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<bulwark::events::Event> {
        self.live().client.subscribe()
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/chat/completions", post(front_door::openai))
            .route("/v1/messages", post(front_door::anthropic))
            .route("/v1/responses", post(front_door::responses))
            .route("/v1/messages/count_tokens", post(unary_door::count_tokens))
            .route("/v1/embeddings", post(unary_door::embeddings))
            .route("/v1/models", get(models::list))
            .route(
                "/v1/responses/{id}",
                get(conversations::get_response).delete(conversations::delete_response),
            )
            .route(
                "/v1/responses/{id}/input_items",
                get(conversations::list_input_items),
            )
            // Gemini's front door, at both API versions `google-genai`
            // uses (`v1` is its default since 3.0); `GET /v1/models` tells
            // a Google client by its headers.
            .route("/v1beta/models", get(models::gemini_list))
            .route(
                "/v1beta/models/{*rest}",
                get(models::gemini_retrieve).post(front_door::gemini_models),
            )
            .route(
                "/v1/models/{*rest}",
                get(models::retrieve).post(front_door::gemini_models),
            )
            .route(
                "/v1beta/tunedModels/{*rest}",
                post(front_door::gemini_tuned_models),
            )
            .route(
                "/v1/tunedModels/{*rest}",
                post(front_door::gemini_tuned_models),
            )
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
            .route("/admin/status", get(admin::status))
            .route("/admin/reload", post(reload::admin_reload))
            .route("/admin/incidents", get(admin::incidents))
            .route("/admin/incidents/{id}", get(admin::incident))
            .route("/admin/incidents/current/updates", post(admin::annotate))
            .route(
                "/admin/components/{name}/maintenance",
                axum::routing::put(admin::maintenance_on).delete(admin::maintenance_off),
            )
            .fallback(respond::not_found)
            // After every route: it applies to the routes added before it.
            .method_not_allowed_fallback(respond::method_not_allowed)
            // The handlers enforce the limit themselves, to answer in the
            // client's format; this only stops axum's smaller default.
            .layer(DefaultBodyLimit::max(self.live().max_request_bytes))
            .with_state(self.clone())
    }
}

/// Serves the gateway on `listener` until `shutdown` completes, then drains:
/// `/readyz` turns 503, no new connection is accepted, requests and streams
/// in flight get `shutdown_grace` to finish, and the request log is flushed
/// before this returns. Until then clients are held to the `server:`
/// section: header, body and idle timeouts, `max_connections`, and the
/// HTTP/2 limits.
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

/// Headers of one HTTP/2 request, decoded (nginx's
/// `large_client_header_buffers` allows 32 KiB; h2's default is 16 MiB).
const HTTP2_MAX_HEADER_LIST_BYTES: u32 = 64 * 1024;

async fn serve_until(
    listener: TcpListener,
    gateway: Gateway,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let settings = gateway.server.clone();
    // Built once: a `Router` clone shares its route table.
    let router = gateway.router();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // A slowloris client holds its connection at most this long.
        .header_read_timeout(settings.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(settings.http2_max_streams)
        .max_header_list_size(HTTP2_MAX_HEADER_LIST_BYTES)
        // Pings find a vanished peer that still holds streams open.
        .keep_alive_interval(Some(settings.idle_timeout));
    let builder = Arc::new(builder);
    // Past `max_connections` the loop stops accepting until one closes,
    // rather than accepting and closing at once: the kernel's backlog holds
    // the newcomers, which are served late instead of refused (a refused
    // client retries at once, and a flood of those costs more than a
    // queue), and once the backlog is full the kernel drops their SYNs,
    // which clients retry with backoff.
    warn_if_short_of_descriptors(settings.max_connections);
    let slots = Arc::new(tokio::sync::Semaphore::new(settings.max_connections));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    // Owning the connections: when `serve` gives up on them at the end of
    // the grace period, dropping this cuts them.
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let tcp = loop {
            tokio::select! {
                () = &mut shutdown => break None,
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((tcp, _)) => break Some(tcp),
                    Err(error) => accept_failed(&error).await,
                },
            }
        };
        let Some(tcp) = tcp else { break };
        // Without TCP_NODELAY, each small SSE chunk after the first waits for
        // the client's delayed ACK (Nagle's algorithm): about 40 ms per answer.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {error}");
        }
        connections.spawn(connection(
            tcp,
            Arc::clone(&builder),
            router.clone(),
            settings.idle_timeout,
            stopping.clone(),
            slot,
        ));
    }
    // No new connection from here on; those open finish what they are
    // doing and close.
    drop(listener);
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Each connection takes a file descriptor and each request in flight a
/// second one upstream: a cap the descriptor limit cannot hold is worth
/// saying at start, rather than as failed accepts under load.
fn warn_if_short_of_descriptors(max_connections: usize) {
    let Some(limit) = open_files_limit() else {
        return;
    };
    let needed = u64::try_from(max_connections)
        .unwrap_or(u64::MAX)
        .saturating_mul(2);
    if limit < needed {
        tracing::warn!(
            "server.max_connections is {max_connections}, which takes up to {needed} file descriptors, \
             but this process may open {limit}: raise `ulimit -n` (LimitNOFILE under systemd) or lower server.max_connections"
        );
    }
}

/// The soft limit on open files, where Linux tells it.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.get("Max open files".len()..)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Like `axum::serve`: a connection the client dropped before it was
/// accepted is nothing, while running out of file descriptors is worth a
/// pause instead of a busy loop.
async fn accept_failed(error: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        tracing::debug!("accept: {error}");
    } else {
        tracing::error!("accept: {error}; trying again in a second");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Serves one connection until it closes: by the client, by a timeout, by
/// `idle` with no request in flight, or once `stopping` turns true.
async fn connection(
    tcp: tokio::net::TcpStream,
    builder: Arc<auto::Builder<TokioExecutor>>,
    router: Router,
    idle: Duration,
    mut stopping: tokio::sync::watch::Receiver<bool>,
    _slot: tokio::sync::OwnedSemaphorePermit,
) {
    // Requests in flight on this connection, a response counting until its
    // body is sent or dropped (a stream can be quiet for long).
    let (in_flight, mut watched) = tokio::sync::watch::channel(0_usize);
    let in_flight = Arc::new(in_flight);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let router = router.clone();
        let guard = InFlight::start(Arc::clone(&in_flight));
        async move {
            let response = router.oneshot(request.map(Body::new)).await;
            response.map(|response| {
                response.map(|body| {
                    Body::new(body.map_frame(move |frame| {
                        let _counted = &guard;
                        frame
                    }))
                })
            })
        }
    });
    let idle_over = async move {
        loop {
            let quiet = *watched.borrow_and_update() == 0;
            let changed = async {
                if watched.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            if quiet {
                tokio::select! {
                    () = tokio::time::sleep(idle) => return,
                    () = changed => {}
                }
            } else {
                changed.await;
            }
        }
    };
    let served = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
    let mut served = std::pin::pin!(served);
    let mut idle_over = std::pin::pin!(idle_over);
    let mut closing = false;
    loop {
        tokio::select! {
            result = served.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!("connection closed: {error}");
                }
                return;
            }
            () = &mut idle_over, if !closing => {
                closing = true;
                served.as_mut().graceful_shutdown();
            }
            _ = stopping.wait_for(|stop| *stop), if !closing => {
                closing = true;
                served.as_mut().graceful_shutdown();
            }
        }
    }
}

/// One request in flight on a connection, until dropped.
struct InFlight(Arc<tokio::sync::watch::Sender<usize>>);

impl InFlight {
    fn start(count: Arc<tokio::sync::watch::Sender<usize>>) -> InFlight {
        count.send_modify(|n| *n += 1);
        InFlight(count)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}
