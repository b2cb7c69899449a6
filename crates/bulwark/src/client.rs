//! `Client`: the engine in-process. The HTTP gateway is a thin layer over it,
//! so both behave identically.

use std::sync::Arc;

use futures_util::StreamExt;
use tokio::sync::broadcast;

use crate::aggregate::aggregate;
use std::time::Instant;

use crate::api::{ChatRequest, ChatResponse, FinishReason, StreamEvent, Usage, WireFormat};
use crate::cache::{CacheKey, CachedAnswer, ResponseCache, cache_key};
use crate::config::{Config, RouteCache};
use crate::engine::{self, Answer, CachePolicy, CacheStatus, Failed, Mode, RequestOptions, Served};
use crate::error::{ApiError, ErrorKind};
use crate::events::{Event, EventBus};
use crate::limit::queue::Admitted;
use crate::provider::{Chunk, ChunkStream, EventStream, ProviderBuildError};
use crate::route::{DegradeStep, Route, RouteTable};
use crate::sse::SseEvent;

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
        let (served, store, admitted) = self.answer(request, options, Mode::Stream).await?;
        let (format, target) = (served.format, served.target.clone());
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
                cache.insert(cacheable.key, CachedAnswer::new(seen, format, target, settings.ttl, settings.max_stale)).await;
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
        let started = Instant::now();
        let route = self
            .table
            .resolve(&request.model)
            .map_err(Failed::before_any_attempt)?;
        let cacheable = self.cacheable(&route, &request, &options);
        if let Some(hit) = self.cached(cacheable.as_ref()).await {
            self.events.emit(|| Event::Cache {
                route: route.name.clone(),
                status: "hit",
            });
            return Ok((hit.map(Answer::Complete), None, None));
        }
        // The route's admission queue; the time spent in it counts against
        // the request's deadline.
        let budget = options
            .deadline
            .map_or(route.timeouts.deadline, |d| d.min(route.timeouts.deadline));
        let admitted = match &route.admission {
            None => None,
            Some(queue) => {
                let queued = tokio::time::Instant::now();
                let deadline = queued + budget;
                match queue.admit(options.priority, deadline).await {
                    Ok(admitted) => {
                        self.events.emit(|| Event::Admitted {
                            route: route.name.clone(),
                            waited: queued.elapsed(),
                        });
                        Some(admitted)
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
                        return Err(Failed::before_any_attempt(error));
                    }
                }
            }
        };
        let mut options = options;
        options.deadline = Some(budget.saturating_sub(started.elapsed()));
        let mut request = request;
        request.stream = mode == Mode::Stream;
        match engine::run(&route, &request, options.clone(), mode, &self.events).await {
            Ok(mut served) => {
                // A degraded answer is never stored: it would outlive the outage.
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
                let served = self
                    .degrade(
                        &route,
                        &request,
                        cacheable.as_ref(),
                        options,
                        mode,
                        started,
                        failed,
                    )
                    .await?;
                Ok((served, None, admitted))
            }
        }
    }

    /// Every target failed: the route's degrade steps, in order, within
    /// what is left of the deadline. Each degraded answer says so.
    #[allow(clippy::too_many_arguments)]
    async fn degrade(
        &self,
        route: &Arc<Route>,
        request: &ChatRequest,
        cacheable: Option<&Cacheable>,
        options: RequestOptions,
        mode: Mode,
        started: Instant,
        failed: Failed,
    ) -> Result<Served<Answer>, Failed> {
        let budget = options
            .deadline
            .map_or(route.timeouts.deadline, |d| d.min(route.timeouts.deadline));
        for step in &route.degrade {
            let (served, how) = match step {
                DegradeStep::StaleCache => {
                    let Some(cacheable) = cacheable else { continue };
                    let Some(stale) = self.cache.get_stale(&cacheable.key).await else {
                        continue;
                    };
                    let mut served = from_cache(&stale, CacheStatus::Stale);
                    self.events.emit(|| Event::Cache {
                        route: route.name.clone(),
                        status: "stale",
                    });
                    served.attempts = failed.attempts;
                    (served.map(Answer::Complete), "stale-cache".to_string())
                }
                DegradeStep::Target(target) => {
                    let left = budget.saturating_sub(started.elapsed());
                    if left.is_zero() {
                        continue;
                    }
                    let single = Arc::new(route.narrowed_to(target.clone()));
                    let options = RequestOptions {
                        deadline: Some(left),
                        ..options.clone()
                    };
                    match engine::run(&single, request, options, mode, &self.events).await {
                        Ok(mut served) => {
                            served.attempts += failed.attempts;
                            (served, target.label.clone())
                        }
                        Err(_) => continue,
                    }
                }
                DegradeStep::Static(text) => (
                    static_answer(text).map(Answer::Complete),
                    "static".to_string(),
                ),
            };
            let mut served = served;
            // The failed attempts came first, whichever way it was saved.
            served.attempt_log.splice(0..0, failed.attempt_log);
            served.fallback = true;
            self.events.emit(|| Event::Degraded {
                route: route.name.clone(),
                how: how.clone(),
            });
            tracing::warn!(route = %route.name, how = %how, "every target failed; answered degraded");
            served.degraded = Some(how);
            return Ok(served);
        }
        Err(failed)
    }

    /// Whether this request's answer may be cached, and under which key:
    /// each tenant (client key) has entries of its own.
    fn cacheable(
        &self,
        route: &Route,
        request: &ChatRequest,
        options: &RequestOptions,
    ) -> Option<Cacheable> {
        let settings = route.cache?;
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

fn from_cache(answer: &CachedAnswer, status: CacheStatus) -> Served<Vec<Chunk>> {
    Served {
        value: answer.chunks.clone(),
        target: answer.target.clone(),
        format: answer.format,
        attempts: 0,
        fallback: false,
        cache: Some(status),
        degraded: None,
        attempt_log: Vec::new(),
    }
}

/// A fixed answer, written as an OpenAI-format stream (clients of other
/// formats get it translated like any answer).
fn static_answer(text: &str) -> Served<Vec<Chunk>> {
    let created = crate::api::unix_now();
    let chunk = |data: serde_json::Value, events: Vec<StreamEvent>| Chunk {
        raw: SseEvent {
            event: None,
            data: data.to_string(),
        },
        events,
    };
    let frame = |delta: serde_json::Value, finish: serde_json::Value| {
        serde_json::json!({
            "id": "chatcmpl-bulwark-static", "object": "chat.completion.chunk", "created": created,
            "model": "bulwark-static", "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        })
    };
    let start = StreamEvent::Start {
        id: "chatcmpl-bulwark-static".into(),
        model: "bulwark-static".into(),
        created,
        input_tokens: Some(0),
    };
    let chunks = vec![
        chunk(
            frame(
                serde_json::json!({"role": "assistant", "content": text}),
                serde_json::Value::Null,
            ),
            vec![
                start,
                StreamEvent::TextDelta {
                    index: 0,
                    text: text.to_string(),
                },
            ],
        ),
        chunk(
            frame(serde_json::json!({}), serde_json::json!("stop")),
            vec![StreamEvent::Finish {
                reason: FinishReason::Stop,
                stop_sequence: None,
            }],
        ),
        chunk(
            serde_json::json!({"id": "chatcmpl-bulwark-static", "object": "chat.completion.chunk", "created": created, "model": "bulwark-static", "choices": [], "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}),
            vec![StreamEvent::Usage(Usage::default())],
        ),
        Chunk {
            raw: SseEvent {
                event: None,
                data: "[DONE]".into(),
            },
            events: vec![],
        },
    ];
    Served {
        value: chunks,
        target: "static".into(),
        format: WireFormat::OpenAi,
        attempts: 0,
        fallback: true,
        cache: None,
        degraded: None,
        attempt_log: Vec::new(),
    }
}

/// Chunks already in hand, as a stream.
fn replay(chunks: Vec<Chunk>) -> ChunkStream {
    Box::pin(futures_util::stream::iter(chunks.into_iter().map(Ok)))
}
