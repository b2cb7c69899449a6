//! Unary operations through the client: embeddings and token counts take
//! the same stages as chat (route, deadline, cache, admission, engine), but
//! an answer is one JSON value. Of the degrade steps only `stale-cache`
//! applies to embeddings (an expired answer to the same request on the
//! same targets); the others' answers are chat answers. A token count has
//! its own last resort: Bulwark's estimate.

use serde_json::Value;

use crate::api::WireFormat;
use crate::cache::{CacheKey, CachePolicy, CacheStatus, CachedAnswer, embeddings_key};
use crate::config::RouteCache;
use crate::deadline::Deadline;
use crate::engine::{self, Failed, Served};
use crate::events::Event;
use crate::provider::Chunk;
use crate::route::{DegradeStep, Route};
use crate::sse::SseEvent;
use crate::unary::{CountTokensRequest, EmbeddingsRequest, Unary};

use super::{Client, RequestOptions};

/// The cache holds answers as chunks of a stream: an embeddings answer is
/// one chunk of this event name, its data the JSON answer.
const EMBEDDINGS_EVENT: &str = "embeddings";

/// What a count answered with Bulwark's own estimate names as its target.
pub const ESTIMATE_TARGET: &str = "bulwark/estimate";

/// A token count, and whether Bulwark estimated it rather than a provider
/// counting it.
#[derive(Debug, Clone, PartialEq)]
pub struct Counted {
    pub body: Value,
    pub estimated: bool,
}

impl Client {
    /// Embeds `request`'s inputs on its route's targets that can. The
    /// answer is OpenAI's, in the encoding the client asked for.
    pub async fn embeddings(
        &self,
        request: EmbeddingsRequest,
        options: RequestOptions,
    ) -> Result<Served<Value>, Failed> {
        let route = self
            .table
            .resolve(&request.model)
            .map_err(Failed::before_any_attempt)?;
        let deadline = Deadline::start(route.policy.timeouts.deadline, options.deadline);
        // The same inputs give the same vectors: no sampling to allow for.
        let cacheable: Option<(CacheKey, RouteCache)> = route.policy.cache.map(|settings| {
            let tenant = options.tenant.as_deref().unwrap_or_default();
            let targets: Vec<&str> = route.targets.iter().map(|t| t.label.as_str()).collect();
            (
                embeddings_key(tenant, &route.name, &targets, &request),
                settings,
            )
        });
        if options.cache == CachePolicy::Use
            && let Some((key, _)) = &cacheable
            && let Some(hit) = self.cache.get(key).await
            && let Some(served) = cached(&hit, CacheStatus::Hit)
        {
            self.events.emit(|| Event::Cache {
                route: route.name.clone(),
                status: "hit",
            });
            return Ok(served);
        }
        let _admitted = self.admit(&route, options.priority, deadline).await?;
        let operation = Unary::Embeddings(request);
        let mut served = match engine::run_unary(&route, &operation, deadline, &self.events).await {
            Ok(served) => served,
            Err(failed) => {
                let key = cacheable.as_ref().map(|(key, _)| key);
                return self.stale_embeddings(&route, key, failed).await;
            }
        };
        if let Some((key, settings)) = cacheable.filter(|_| options.cache != CachePolicy::Bypass) {
            served.cache = Some(CacheStatus::Miss);
            self.events.emit(|| Event::Cache {
                route: route.name.clone(),
                status: "miss",
            });
            let chunk = Chunk {
                raw: SseEvent {
                    event: Some(EMBEDDINGS_EVENT.to_string()),
                    data: served.value.to_string(),
                },
                events: Vec::new(),
            };
            let answer = CachedAnswer::new(
                vec![chunk],
                served.format,
                served.target.clone(),
                Vec::new(),
                settings.ttl,
                settings.max_stale,
            );
            self.cache.insert(key, answer).await;
        }
        Ok(served)
    }

    /// When every target failed: the route's `stale-cache` degrade step,
    /// if it has one and an expired answer to the same request is kept.
    /// Its other steps (a last-resort target, a fixed text) are chat
    /// answers, and a target of another model would give vectors of
    /// another space.
    async fn stale_embeddings(
        &self,
        route: &Route,
        key: Option<&CacheKey>,
        failed: Failed,
    ) -> Result<Served<Value>, Failed> {
        if !route
            .degrade
            .iter()
            .any(|step| matches!(step, DegradeStep::StaleCache))
        {
            return Err(failed);
        }
        let Some(key) = key else {
            return Err(failed);
        };
        let Some(mut served) = self
            .cache
            .get_stale(key)
            .await
            .and_then(|stale| cached(&stale, CacheStatus::Stale))
        else {
            return Err(failed);
        };
        self.events.emit(|| Event::Cache {
            route: route.name.clone(),
            status: "stale",
        });
        self.events.emit(|| Event::Degraded {
            route: route.name.clone(),
            how: "stale-cache".to_string(),
        });
        tracing::warn!(route = %route.name, "every target failed; answered with stale embeddings");
        served.attempts = failed.attempts;
        served.attempt_log = failed.attempt_log;
        served.fallback = true;
        served.degraded = Some("stale-cache".to_string());
        Ok(served)
    }

    /// Counts `request`'s input tokens on its route's Anthropic targets;
    /// with none, or when none answers, Bulwark's estimate is the answer.
    /// A request a provider refused is the client's to fix and stays an
    /// error.
    pub async fn count_tokens(
        &self,
        request: CountTokensRequest,
        options: RequestOptions,
    ) -> Result<Served<Counted>, Failed> {
        let route = self
            .table
            .resolve(&request.model)
            .map_err(Failed::before_any_attempt)?;
        let estimated = Counted {
            body: request.estimated_answer(),
            estimated: true,
        };
        let operation = Unary::CountTokens(request);
        if !engine::serves_unary(&route, &operation) {
            return Ok(estimate(estimated, 0, Vec::new()));
        }
        let deadline = Deadline::start(route.policy.timeouts.deadline, options.deadline);
        let _admitted = self.admit(&route, options.priority, deadline).await?;
        match engine::run_unary(&route, &operation, deadline, &self.events).await {
            Ok(served) => Ok(served.map(|body| Counted {
                body,
                estimated: false,
            })),
            Err(failed) if failed.error.status < 500 && failed.error.status != 429 => Err(failed),
            Err(failed) => {
                tracing::info!(route = %route.name, "no target counted the tokens; answering with an estimate: {}", failed.error.message);
                Ok(estimate(estimated, failed.attempts, failed.attempt_log))
            }
        }
    }
}

/// A cached embeddings answer, as served.
fn cached(answer: &CachedAnswer, status: CacheStatus) -> Option<Served<Value>> {
    let value = answer
        .chunks
        .first()
        .and_then(|chunk| serde_json::from_str::<Value>(&chunk.raw.data).ok())?;
    Some(Served {
        value,
        target: answer.target.clone(),
        format: answer.format,
        attempts: 0,
        fallback: false,
        cache: Some(status),
        degraded: None,
        attempt_log: Vec::new(),
        dropped: Vec::new(),
    })
}

fn estimate(
    counted: Counted,
    attempts: u32,
    attempt_log: Vec<crate::observe::record::AttemptRecord>,
) -> Served<Counted> {
    Served {
        value: counted,
        target: ESTIMATE_TARGET.to_string(),
        format: WireFormat::Anthropic,
        attempts,
        fallback: attempts > 0,
        cache: None,
        degraded: None,
        attempt_log,
        dropped: Vec::new(),
    }
}
