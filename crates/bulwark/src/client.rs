//! `Client`: the engine in-process. The HTTP gateway is a thin layer over it,
//! so both behave identically.

use std::sync::Arc;

use futures_util::StreamExt;
use tokio::sync::broadcast;

use crate::aggregate::aggregate;
use crate::api::{ChatRequest, ChatResponse};
use crate::cache::{CacheKey, CachedAnswer, ResponseCache, cache_key};
use crate::config::{Config, RouteCache};
use crate::engine::{self, Answer, CachePolicy, CacheStatus, Failed, Mode, RequestOptions, Served};
use crate::events::{Event, EventBus};
use crate::provider::{Chunk, ChunkStream, EventStream, ProviderBuildError};
use crate::route::{Route, RouteTable};

#[derive(Debug)]
pub struct Client {
    table: RouteTable,
    events: EventBus,
    cache: ResponseCache,
}

/// A request the cache may answer or remember.
struct Cacheable {
    key: CacheKey,
    settings: RouteCache,
    policy: CachePolicy,
}

impl Client {
    pub fn from_config(config: &Config) -> Result<Client, ProviderBuildError> {
        Ok(Client {
            table: RouteTable::from_config(config)?,
            events: EventBus::default(),
            cache: ResponseCache::new(config.cache_max_bytes),
        })
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
        let route = self
            .table
            .resolve(&request.model)
            .map_err(Failed::before_any_attempt)?;
        let cacheable = self.cacheable(&route, &request, options);
        if let Some(hit) = self.cached(cacheable.as_ref()).await {
            return Ok(hit.map(replay));
        }
        let served = self.run(&route, request, options, Mode::Stream).await?;
        let (format, target) = (served.format, served.target.clone());
        let mut served = served.map(|answer| match answer {
            Answer::Stream(stream) => stream,
            Answer::Complete(chunks) => replay(chunks),
        });
        let Some(cacheable) = cacheable else {
            return Ok(served);
        };
        served.cache = Some(CacheStatus::Miss);
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
                cache.insert(cacheable.key, CachedAnswer::new(seen, format, target, cacheable.settings.ttl)).await;
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
        let route = self
            .table
            .resolve(&request.model)
            .map_err(Failed::before_any_attempt)?;
        let cacheable = self.cacheable(&route, &request, options);
        if let Some(hit) = self.cached(cacheable.as_ref()).await {
            return Ok(hit);
        }
        let mut served = self.run(&route, request, options, Mode::Complete).await?;
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
                            });
                        }
                    }
                }
                chunks
            }
        };
        let mut served = served.map(|_| chunks);
        if let Some(cacheable) = cacheable {
            served.cache = Some(CacheStatus::Miss);
            let answer = CachedAnswer::new(
                served.value.clone(),
                served.format,
                served.target.clone(),
                cacheable.settings.ttl,
            );
            self.cache.insert(cacheable.key, answer).await;
        }
        Ok(served)
    }

    /// Whether this request's answer may be cached, and under which key.
    /// Tenants arrive with client keys; until then every caller shares one.
    fn cacheable(
        &self,
        route: &Route,
        request: &ChatRequest,
        options: RequestOptions,
    ) -> Option<Cacheable> {
        let settings = route.cache?;
        if options.cache == CachePolicy::Bypass {
            return None;
        }
        // Unless the temperature is 0 the provider samples: the same request
        // may rightly get another answer, so it is cached only if the route
        // says that is fine.
        let deterministic = request.temperature == Some(0.0);
        if !deterministic && !settings.nondeterministic {
            return None;
        }
        Some(Cacheable {
            key: cache_key("", &route.name, request),
            settings,
            policy: options.cache,
        })
    }

    async fn cached(&self, cacheable: Option<&Cacheable>) -> Option<Served<Vec<Chunk>>> {
        let cacheable = cacheable.filter(|c| c.policy == CachePolicy::Use)?;
        let hit = self.cache.get(&cacheable.key).await?;
        Some(Served {
            value: hit.chunks.clone(),
            target: hit.target.clone(),
            format: hit.format,
            attempts: 0,
            fallback: false,
            cache: Some(CacheStatus::Hit),
        })
    }

    async fn run(
        &self,
        route: &Arc<Route>,
        request: ChatRequest,
        options: RequestOptions,
        mode: Mode,
    ) -> Result<Served<Answer>, Failed> {
        let mut request = request;
        request.stream = mode == Mode::Stream;
        engine::run(route, &request, options, mode, &self.events).await
    }

    /// The configured routes, for model listings.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.table.routes()
    }
}

/// Chunks already in hand, as a stream.
fn replay(chunks: Vec<Chunk>) -> ChunkStream {
    Box::pin(futures_util::stream::iter(chunks.into_iter().map(Ok)))
}
