//! `Client`: the engine in-process. The HTTP gateway is a thin layer over it,
//! so both behave identically.
//!
//! A request's way, top to bottom; each stage may touch only what it names:
//!
//! 1. **front door** (`bulwark-gateway`: `front_door.rs`): decodes the
//!    client's wire format into a neutral [`ChatRequest`] through its
//!    dialect (`wire::`);
//! 2. **auth** (`bulwark-gateway`: `auth.rs`): the client key, its models and
//!    its quota;
//! 3. **route** ([`RouteTable::resolve`]): the request's `model` names a
//!    route or a target; its [`Deadline`] starts here, once, and is carried
//!    down through every later stage;
//! 4. **cache** ([`crate::cache`]): an exact-match hit answers here;
//! 5. **admission** ([`crate::limit::queue`]): the route's priority queue,
//!    within the deadline;
//! 6. **engine** ([`crate::engine`]): plan the targets' order, attempt each
//!    (breaker, concurrency, quotas, the call, hedges, retries), and relay
//!    the answer's stream ([`crate::continuation`] continues a broken one);
//! 7. **degrade** ([`crate::degrade`]): when every target failed, a stale
//!    answer, a last-resort target or a fixed answer;
//! 8. **encode** (`bulwark-gateway`: `respond.rs`): the answer or error in
//!    the client's format, with headers that say what happened;
//! 9. **record** (`bulwark-gateway`: `observe/`): the request log, metrics,
//!    health and traces.

mod unary;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::broadcast;

use crate::aggregate::aggregate;
use crate::api::{ChatRequest, ChatResponse};
use crate::cache::{CacheKey, CachePolicy, CacheStatus, CachedAnswer, ResponseCache, cache_key};
use crate::config::{Config, RouteCache};
use crate::deadline::Deadline;
use crate::degrade::Degrade;
use crate::engine::{self, Answer, Failed, Mode, Served};
use crate::error::{ApiError, ErrorKind};
use crate::events::{Event, EventBus};
use crate::limit::queue::{Admitted, Priority};
use crate::provider::{Chunk, ChunkStream, EventStream, ProviderBuildError};
use crate::route::{Route, RouteTable};
use crate::shared::Shared;

pub use unary::{Counted, ESTIMATE_TARGET};

/// Per-request settings from the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestOptions {
    /// The caller's own deadline; it can shorten the route's, never lengthen it.
    pub deadline: Option<Duration>,
    pub cache: CachePolicy,
    /// Who is asking (a client key's name); cached answers are not shared
    /// across tenants.
    pub tenant: Option<Arc<str>>,
    /// The request's place in the route's admission queue.
    pub priority: Priority,
}

#[derive(Debug)]
pub struct Client {
    table: RouteTable,
    events: EventBus,
    cache: ResponseCache,
    /// Redis, when `redis:` is set: state shared with other instances.
    shared: Option<Shared>,
}

/// A request the cache may answer or remember.
struct Cacheable {
    key: CacheKey,
    settings: RouteCache,
    policy: CachePolicy,
}

/// Starts the link to Redis. Outside a Tokio runtime (a synchronous
/// embedding) there is nothing to run it on, and state stays local.
fn start_shared(config: &Config) -> Option<Shared> {
    let shared = config.shared.clone()?;
    tokio::runtime::Handle::try_current().ok()?;
    match Shared::start(shared) {
        Ok(shared) => Some(shared),
        Err(error) => {
            tracing::warn!("state stays local: {error}");
            None
        }
    }
}

impl Client {
    pub fn from_config(config: &Config) -> Result<Client, ProviderBuildError> {
        let events = EventBus::default();
        let shared = start_shared(config);
        // The board (and its listener) lives as long as this engine and
        // the engines reloads make from it.
        let board = shared
            .clone()
            .map(|s| crate::shared_breakers::BreakerBoard::start(s, events.clone()));
        Ok(Client {
            table: RouteTable::shared_from_config(config, board)?,
            events,
            cache: ResponseCache::new(config.cache_max_bytes).with_shared(shared.clone()),
            shared,
        })
    }

    /// The engine for a new config, carrying over this one's state: the
    /// event bus (its subscribers keep listening), the response cache, and
    /// the state of every target the new config leaves unchanged (see
    /// [`RouteTable::reloaded`]). Requests already running finish on
    /// `self`. The cache keeps the size it was made with.
    pub fn reloaded(
        &self,
        config: &Config,
    ) -> Result<(Client, crate::reload::TableDiff), ProviderBuildError> {
        let (table, diff) = self.table.reloaded(config)?;
        let client = Client {
            table,
            events: self.events.clone(),
            cache: self.cache.clone(),
            shared: self.shared.clone(),
        };
        Ok((client, diff))
    }

    /// The link to the other instances, when `redis:` is set.
    pub fn shared(&self) -> Option<&Shared> {
        self.shared.as_ref()
    }

    /// Every decision the engine makes, as it makes it.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Answers a request in one piece. `request.model` names a route or
    /// `provider/model`.
    pub async fn chat(&self, request: ChatRequest) -> Result<Served<ChatResponse>, Failed> {
        self.chat_with(request, RequestOptions::default()).await
    }

    pub async fn chat_with(
        &self,
        request: ChatRequest,
        options: RequestOptions,
    ) -> Result<Served<ChatResponse>, Failed> {
        let served = self.complete_chunks(request, options).await?;
        Ok(served.map(|chunks| aggregate(chunks.iter().flat_map(|c| &c.events))))
    }

    /// Answers a request as a stream of events. Returns once the first
    /// content has arrived from some target; an `Err` item ends the stream
    /// if that target fails later.
    pub async fn stream(&self, request: ChatRequest) -> Result<Served<EventStream>, Failed> {
        self.stream_with(request, RequestOptions::default()).await
    }

    pub async fn stream_with(
        &self,
        request: ChatRequest,
        options: RequestOptions,
    ) -> Result<Served<EventStream>, Failed> {
        let served = self.stream_chunks(request, options).await?;
        Ok(served.map(|chunks| -> EventStream {
            Box::pin(chunks.flat_map(|item| {
                let events: Vec<_> = match item {
                    Ok(chunk) => chunk.events.into_iter().map(Ok).collect(),
                    Err(error) => vec![Err(error)],
                };
                futures_util::stream::iter(events)
            }))
        }))
    }

    /// The streamed answer as the provider's chunks, raw and decoded.
    pub async fn stream_chunks(
        &self,
        request: ChatRequest,
        options: RequestOptions,
    ) -> Result<Served<ChunkStream>, Failed> {
        let (served, store, admitted) = self.answer(request, options, Mode::Stream).await?;
        let (format, target, dropped) =
            (served.format, served.target.clone(), served.dropped.clone());
        let mut served = served.map(|answer| match answer {
            Answer::Stream(stream) => stream,
            Answer::Complete(chunks) => replay(chunks),
        });
        // The queue place is held until the stream ends.
        if let Some(admitted) = admitted {
            let stream =
                std::mem::replace(&mut served.value, Box::pin(futures_util::stream::empty()));
            served.value = Box::pin(async_stream::stream! {
                let _held = admitted;
                let mut stream = stream;
                while let Some(item) = stream.next().await {
                    yield item;
                }
            });
        }
        let Some(cacheable) = store else {
            return Ok(served);
        };
        let cache = self.cache.clone();
        let mut stream =
            std::mem::replace(&mut served.value, Box::pin(futures_util::stream::empty()));
        // Stored only once the stream reached its end: an answer that failed,
        // or whose reader went away, leaves nothing behind.
        served.value = Box::pin(async_stream::stream! {
            let mut seen = Vec::new();
            let mut broken = false;
            while let Some(item) = stream.next().await {
                match &item {
                    Ok(chunk) => seen.push(chunk.clone()),
                    Err(_) => broken = true,
                }
                yield item;
            }
            if !broken {
                let settings = cacheable.settings;
                cache.insert(cacheable.key, CachedAnswer::new(seen, format, target, dropped, settings.ttl, settings.max_stale)).await;
            }
        });
        Ok(served)
    }

    /// The complete answer as the provider's chunks, raw and decoded.
    pub async fn complete_chunks(
        &self,
        request: ChatRequest,
        options: RequestOptions,
    ) -> Result<Served<Vec<Chunk>>, Failed> {
        let (mut served, store, _admitted) = self.answer(request, options, Mode::Complete).await?;
        let answer = std::mem::replace(&mut served.value, Answer::Complete(Vec::new()));
        let chunks = match answer {
            Answer::Complete(all) => all,
            Answer::Stream(mut stream) => {
                let mut chunks = Vec::new();
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(chunk) => chunks.push(chunk),
                        Err(error) => {
                            return Err(Failed {
                                error: error.to_api_error(),
                                attempts: served.attempts,
                                failures: vec![error],
                                attempt_log: std::mem::take(&mut served.attempt_log),
                            });
                        }
                    }
                }
                chunks
            }
        };
        let served = served.map(|_| chunks);
        if let Some(cacheable) = store {
            let settings = cacheable.settings;
            let answer = CachedAnswer::new(
                served.value.clone(),
                served.format,
                served.target.clone(),
                served.dropped.clone(),
                settings.ttl,
                settings.max_stale,
            );
            self.cache.insert(cacheable.key, answer).await;
        }
        Ok(served)
    }

    /// Answers from the cache, the route's targets, or its degrade steps, in
    /// that order. Also says where to store the answer, if anywhere.
    async fn answer(
        &self,
        request: ChatRequest,
        options: RequestOptions,
        mode: Mode,
    ) -> Result<(Served<Answer>, Option<Cacheable>, Option<Admitted>), Failed> {
        let route = self
            .table
            .resolve(&request.model)
            .map_err(Failed::before_any_attempt)?;
        let deadline = Deadline::start(route.policy.timeouts.deadline, options.deadline);
        let cacheable = self.cacheable(&route, &request, &options);
        if let Some(hit) = self.cached(cacheable.as_ref()).await {
            self.events.emit(|| Event::Cache {
                route: route.name.clone(),
                status: "hit",
            });
            return Ok((hit.map(Answer::Complete), None, None));
        }
        let admitted = self.admit(&route, options.priority, deadline).await?;
        let mut request = request;
        request.stream = mode == Mode::Stream;
        match engine::run(&route, &request, deadline, mode, &self.events).await {
            Ok(mut served) => {
                let store = cacheable.filter(|c| c.policy != CachePolicy::Bypass);
                if store.is_some() {
                    served.cache = Some(CacheStatus::Miss);
                    self.events.emit(|| Event::Cache {
                        route: route.name.clone(),
                        status: "miss",
                    });
                }
                Ok((served, store, admitted))
            }
            Err(failed) => {
                let degrade = Degrade {
                    route: &route,
                    request: &request,
                    cache_key: cacheable.as_ref().map(|c| &c.key),
                    cache: &self.cache,
                    deadline,
                    mode,
                    events: &self.events,
                };
                // A degraded answer is never stored: it would outlive the outage.
                Ok((degrade.answer(failed).await?, None, admitted))
            }
        }
    }

    /// A place in the route's admission queue, if it has one; the time spent
    /// waiting for it counts against the request's deadline.
    async fn admit(
        &self,
        route: &Route,
        priority: Priority,
        deadline: Deadline,
    ) -> Result<Option<Admitted>, Failed> {
        let Some(queue) = &route.admission else {
            return Ok(None);
        };
        let queued = tokio::time::Instant::now();
        match queue.admit(priority, deadline.at()).await {
            Ok(admitted) => {
                self.events.emit(|| Event::Admitted {
                    route: route.name.clone(),
                    waited: queued.elapsed(),
                });
                Ok(Some(admitted))
            }
            Err(shed) => {
                let mut error = ApiError::new(
                    ErrorKind::RateLimit,
                    format!(
                        "route `{}` is at capacity and this request would not get its turn within its deadline; retry after {:.0} s",
                        route.name,
                        shed.retry_after.as_secs_f64().ceil()
                    ),
                );
                error.retry_after = Some(shed.retry_after.as_secs().max(1));
                self.events.emit(|| Event::Shed {
                    route: route.name.clone(),
                });
                Err(Failed::before_any_attempt(error))
            }
        }
    }

    /// Whether this request's answer may be cached, and under which key:
    /// each tenant (client key) has entries of its own.
    fn cacheable(
        &self,
        route: &Route,
        request: &ChatRequest,
        options: &RequestOptions,
    ) -> Option<Cacheable> {
        let settings = route.policy.cache?;
        // Unless the temperature is 0 the provider samples: the same request
        // may rightly get another answer, so it is cached only if the route
        // says that is fine.
        let deterministic = request.temperature == Some(0.0);
        if !deterministic && !settings.nondeterministic {
            return None;
        }
        Some(Cacheable {
            key: cache_key(
                options.tenant.as_deref().unwrap_or_default(),
                &route.name,
                request,
            ),
            settings,
            policy: options.cache,
        })
    }

    async fn cached(&self, cacheable: Option<&Cacheable>) -> Option<Served<Vec<Chunk>>> {
        let cacheable = cacheable.filter(|c| c.policy == CachePolicy::Use)?;
        let hit = self.cache.get(&cacheable.key).await?;
        Some(from_cache(&hit, CacheStatus::Hit))
    }

    /// Every target's health: breaker state, and concurrency limit and load.
    pub fn target_states(&self) -> Vec<(String, Arc<crate::route::TargetState>)> {
        self.table.target_states()
    }

    /// The configured routes, for model listings.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.table.routes()
    }
}

pub(crate) fn from_cache(answer: &CachedAnswer, status: CacheStatus) -> Served<Vec<Chunk>> {
    Served {
        value: answer.chunks.clone(),
        target: answer.target.clone(),
        format: answer.format,
        attempts: 0,
        fallback: false,
        cache: Some(status),
        degraded: None,
        attempt_log: Vec::new(),
        dropped: answer.dropped.clone(),
    }
}

/// Chunks already in hand, as a stream.
fn replay(chunks: Vec<Chunk>) -> ChunkStream {
    Box::pin(futures_util::stream::iter(chunks.into_iter().map(Ok)))
}
