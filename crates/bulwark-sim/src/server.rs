//! HTTP wiring: the router, the per-path extractors, and helpers to run the
//! simulator as a server (in-process for tests, or until Ctrl-C).

use std::collections::HashMap;

use axum::serve::ListenerExt;
use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Path, Query, Request, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::config::SimConfig;
use crate::error::SimError;
use crate::format::Format;
use crate::handler::{Call, Incoming, handle};
use crate::state::Sim;

pub(crate) fn router(sim: Sim) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai_chat))
        .route("/v1/responses", post(openai_responses))
        .route("/v1/messages", post(anthropic_messages))
        .route("/v1/messages/count_tokens", post(anthropic_count_tokens))
        .route("/v1/embeddings", post(openai_embeddings))
        .route("/v1/models", get(list_models))
        .route("/v1beta/models", get(gemini_models))
        .route(
            "/v1beta/models/{*rest}",
            post(gemini_post).get(gemini_model),
        )
        .merge(crate::cloud::bedrock::routes())
        .merge(crate::cloud::vertex::routes())
        .merge(crate::cloud::azure::routes())
        .merge(crate::control::routes())
        .with_state(sim)
}

/// What every simulated endpoint reads of a request, extracted in one
/// place: the method, the URI, the query, the headers and the body (empty
/// for a GET).
pub(crate) struct Parts {
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    query: HashMap<String, String>,
    body: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for Parts {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut head, body) = request.into_parts();
        let uri = OriginalUri::from_request_parts(&mut head, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Query(query) = Query::<HashMap<String, String>>::from_request_parts(&mut head, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let request = Request::from_parts(head, body);
        let method = request.method().clone();
        let headers = request.headers().clone();
        let body = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Parts {
            method,
            uri,
            headers,
            query,
            body,
        })
    }
}

pub(crate) fn incoming(
    format: Format,
    call: Call,
    parts: Parts,
    path_model: Option<String>,
) -> Incoming {
    Incoming {
        format,
        call,
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        raw_query: parts.uri.query().map(String::from),
        headers: parts.headers,
        query: parts.query,
        body: parts.body,
        path_model,
        cloud: None,
    }
}

async fn openai_chat(State(sim): State<Sim>, parts: Parts) -> Response {
    let call = Call::Generate { stream: None };
    handle(sim, incoming(Format::OpenAi, call, parts, None)).await
}

async fn openai_responses(State(sim): State<Sim>, parts: Parts) -> Response {
    handle(sim, incoming(Format::OpenAi, Call::Respond, parts, None)).await
}

async fn anthropic_messages(State(sim): State<Sim>, parts: Parts) -> Response {
    let call = Call::Generate { stream: None };
    handle(sim, incoming(Format::Anthropic, call, parts, None)).await
}

async fn openai_embeddings(State(sim): State<Sim>, parts: Parts) -> Response {
    let call = Call::Embed { batch: false };
    handle(sim, incoming(Format::OpenAi, call, parts, None)).await
}

async fn anthropic_count_tokens(State(sim): State<Sim>, parts: Parts) -> Response {
    handle(
        sim,
        incoming(Format::Anthropic, Call::CountTokens, parts, None),
    )
    .await
}

/// `GET /v1/models` answers in Anthropic's shape when the client sends
/// `anthropic-version`, as only Anthropic clients do.
async fn list_models(State(sim): State<Sim>, parts: Parts) -> Response {
    let format = if parts.headers.contains_key("anthropic-version") {
        Format::Anthropic
    } else {
        Format::OpenAi
    };
    handle(
        sim,
        incoming(format, Call::Models { model: None }, parts, None),
    )
    .await
}

async fn gemini_models(State(sim): State<Sim>, parts: Parts) -> Response {
    let call = Call::Models { model: None };
    handle(sim, incoming(Format::Gemini, call, parts, None)).await
}

async fn gemini_model(State(sim): State<Sim>, Path(rest): Path<String>, parts: Parts) -> Response {
    let call = Call::Models {
        model: Some(rest.clone()),
    };
    handle(sim, incoming(Format::Gemini, call, parts, Some(rest))).await
}

/// `POST /v1beta/models/{model}:{method}`.
async fn gemini_post(State(sim): State<Sim>, Path(rest): Path<String>, parts: Parts) -> Response {
    let (model, action) = rest.rsplit_once(':').unwrap_or((rest.as_str(), ""));
    let call = match action {
        "generateContent" => Call::Generate {
            stream: Some(false),
        },
        "streamGenerateContent" => Call::Generate { stream: Some(true) },
        "countTokens" => Call::CountTokens,
        "embedContent" => Call::Embed { batch: false },
        "batchEmbedContents" => Call::Embed { batch: true },
        // Unknown methods get the same 404 shape as an unknown model.
        _ => Call::Models {
            model: Some(String::new()),
        },
    };
    let model = model.to_string();
    handle(sim, incoming(Format::Gemini, call, parts, Some(model))).await
}

/// A simulator serving on a local socket; shuts down on [`SimServer::shutdown`]
/// or drop.
pub struct SimServer {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// Handle for in-process control of faults and the request log.
    pub sim: Sim,
    shutdown: Option<oneshot::Sender<()>>,
}

impl SimServer {
    /// Bind `addr` (e.g. `127.0.0.1:0`) and serve in a background task.
    pub async fn start(addr: &str, config: SimConfig) -> Result<SimServer, SimError> {
        let bind_err = |source| SimError::Bind {
            addr: addr.to_string(),
            source,
        };
        let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
        let local = listener.local_addr().map_err(bind_err)?;
        let sim = Sim::new(config);
        let app = sim.router();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = rx.await;
            };
            if let Err(e) = axum::serve(listener.tap_io(set_nodelay), app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!(error = %e, "bulwark-sim server stopped with an error");
            }
        });
        Ok(SimServer {
            addr: local,
            sim,
            shutdown: Some(tx),
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting connections; in-flight responses finish.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Real providers send each SSE chunk at once; without TCP_NODELAY the
/// kernel would hold small chunks for the client's delayed ACK (~40 ms).
fn set_nodelay(tcp: &mut tokio::net::TcpStream) {
    if let Err(error) = tcp.set_nodelay(true) {
        tracing::debug!("cannot set TCP_NODELAY: {error}");
    }
}

/// Serve on `listen` until Ctrl-C.
pub async fn run(listen: &str, config: SimConfig) -> Result<(), SimError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| SimError::Bind {
            addr: listen.to_string(),
            source,
        })?;
    let addr = listener.local_addr().map_err(SimError::Serve)?;
    println!("bulwark-sim listening on http://{addr}");
    let app = Sim::new(config).router();
    axum::serve(listener.tap_io(set_nodelay), app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(SimError::Serve)
}
