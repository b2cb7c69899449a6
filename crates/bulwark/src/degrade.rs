//! Graceful degradation: when every target of a route failed, its degrade
//! steps are tried in order, within what is left of the deadline: a stale
//! cached answer, a last-resort target, or a fixed answer. Each degraded
//! answer says how it was made.

use std::sync::Arc;

use crate::api::{ChatRequest, FinishReason, StreamEvent, Usage, WireFormat};
use crate::cache::{CacheKey, CacheStatus, ResponseCache};
use crate::deadline::Deadline;
use crate::engine::{self, Answer, Failed, Mode, Served};
use crate::events::{Event, EventBus};
use crate::provider::Chunk;
use crate::route::{DegradeStep, Route};
use crate::wire::{self, StreamHead};

/// Everything a degrade step may use.
pub(crate) struct Degrade<'a> {
    pub route: &'a Arc<Route>,
    pub request: &'a ChatRequest,
    /// Where a stale answer would be, when the route caches this request.
    pub cache_key: Option<&'a CacheKey>,
    pub cache: &'a ResponseCache,
    pub deadline: Deadline,
    pub mode: Mode,
    pub events: &'a EventBus,
}

impl Degrade<'_> {
    /// The first degrade step that yields an answer, or the route's failure.
    pub(crate) async fn answer(self, failed: Failed) -> Result<Served<Answer>, Failed> {
        let route = self.route;
        for step in &route.degrade {
            let (served, how) = match step {
                DegradeStep::StaleCache => {
                    let Some(key) = self.cache_key else { continue };
                    let Some(stale) = self.cache.get_stale(key).await else {
                        continue;
                    };
                    self.events.emit(|| Event::Cache {
                        route: route.name.clone(),
                        status: "stale",
                    });
                    let mut served = crate::client::from_cache(&stale, CacheStatus::Stale);
                    served.attempts = failed.attempts;
                    (served.map(Answer::Complete), "stale-cache".to_string())
                }
                DegradeStep::Target(target) => {
                    if self.deadline.passed() {
                        continue;
                    }
                    let single = Arc::new(route.narrowed_to(target.clone()));
                    match engine::run(&single, self.request, self.deadline, self.mode, self.events)
                        .await
                    {
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
}

/// A fixed answer, written as an OpenAI-format stream (clients of other
/// formats get it translated like any answer).
fn static_answer(text: &str) -> Served<Vec<Chunk>> {
    const ID: &str = "chatcmpl-bulwark-static";
    const MODEL: &str = "bulwark-static";
    let created = crate::api::unix_now();
    let head = StreamHead {
        id: ID.into(),
        model: MODEL.into(),
        created,
        ..StreamHead::default()
    };
    let events = [
        StreamEvent::Start {
            id: ID.into(),
            model: MODEL.into(),
            created,
            input_tokens: Some(0),
        },
        StreamEvent::TextDelta {
            index: 0,
            text: text.to_string(),
        },
        StreamEvent::Finish {
            reason: FinishReason::Stop,
            stop_sequence: None,
        },
        StreamEvent::Usage(Usage::default()),
    ];
    let chunks = wire::openai::encode_events(&head, &events, true);
    Served {
        value: chunks,
        target: "static".into(),
        format: WireFormat::OpenAi,
        attempts: 0,
        fallback: true,
        cache: None,
        degraded: None,
        attempt_log: Vec::new(),
        dropped: Vec::new(),
    }
}
