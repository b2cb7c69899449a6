//! Conversation state for the OpenAI Responses API: `previous_response_id`,
//! `store`, and `GET`/`DELETE /v1/responses/{id}` with its input items.
//!
//! The state lives in Bulwark's own store, never at a provider: a request
//! continuing a conversation is rewritten ([`Conversations::expand`]) to
//! carry its whole history before it is decoded, so whichever target
//! answers, on whichever provider, sees every turn. Provider-side state
//! would go down with its provider, which is when a fallback is needed.
//!
//! Everything works on the raw JSON of Responses requests and Response
//! objects. A tenant is a client key's name (`None` on a gateway without
//! keys); another tenant's response reads as missing.

mod http;
mod items;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bulwark::error::{ApiError, ErrorKind};
use bulwark::observe::{UnixMs, unix_ms_now};
use bulwark_store::{PutOutcome, ResponseLimits, Store, StoreError, StoredResponse};
use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::config::ConversationsConfig;

pub use http::{delete_response, get_response, list_input_items};

/// How often expired responses are purged (as the request log is).
const EXPIRY_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Responses waiting to be written at once. A slow store must not pile up
/// tasks holding whole conversations: past this a response is not stored,
/// and counted, as the request log drops rather than waits.
const MAX_PENDING_WRITES: usize = 64;

/// What happened to responses offered for storage, since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConversationStats {
    pub stored: u64,
    /// Over `conversations.max_bytes`.
    pub too_large: u64,
    /// The store failed, or the id was another tenant's.
    pub failed: u64,
    /// Too many writes were already waiting.
    pub dropped: u64,
    /// Over `conversations.max_bytes_per_key` for its client key.
    pub over_budget: u64,
}

#[derive(Debug, Default)]
struct Counters {
    stored: AtomicU64,
    too_large: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    over_budget: AtomicU64,
}

#[derive(Debug)]
pub struct Conversations {
    store: Store,
    config: ConversationsConfig,
    counters: Counters,
    pending: Arc<Semaphore>,
}

/// OpenAI's answer for an id it does not have (or that is another
/// tenant's): 404, `invalid_request_error`.
pub(crate) fn not_found(id: &str, param: Option<&str>) -> ApiError {
    let mut error = ApiError::new(
        ErrorKind::NotFound,
        format!("Response with id '{id}' not found."),
    );
    error.param = param.map(str::to_string);
    error
}

/// A store failure as the client sees it: Bulwark's own trouble, a 500
/// the SDKs retry, with the details only in the log.
pub(crate) fn store_failed(error: &StoreError, doing: &str) -> ApiError {
    tracing::warn!(%error, "conversation store failed while {doing}");
    ApiError::new(
        ErrorKind::Api,
        format!("Bulwark could not reach its conversation store while {doing}; try again"),
    )
}

impl Conversations {
    pub fn new(store: Store, config: ConversationsConfig) -> Conversations {
        Conversations {
            store,
            config,
            counters: Counters::default(),
            pending: Arc::new(Semaphore::new(MAX_PENDING_WRITES)),
        }
    }

    /// Purges expired responses every hour until the handle is aborted.
    pub fn spawn_expiry(&self) -> JoinHandle<()> {
        bulwark_store::spawn_response_expiry(self.store.clone(), self.config.ttl, EXPIRY_EVERY)
    }

    /// Responses stored before this have expired.
    fn not_before(&self) -> UnixMs {
        let ttl = i64::try_from(self.config.ttl.as_millis()).unwrap_or(i64::MAX);
        unix_ms_now().saturating_sub(ttl)
    }

    pub fn stats(&self) -> ConversationStats {
        let c = &self.counters;
        ConversationStats {
            stored: c.stored.load(Ordering::Relaxed),
            too_large: c.too_large.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            over_budget: c.over_budget.load(Ordering::Relaxed),
        }
    }

    /// The tenant's stored response `id`, unexpired.
    pub(crate) async fn load(
        &self,
        id: &str,
        tenant: Option<&str>,
    ) -> Result<Option<StoredResponse>, StoreError> {
        self.store.response(id, tenant, self.not_before()).await
    }

    pub(crate) async fn load_input_items(
        &self,
        id: &str,
        tenant: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        self.store
            .response_input_items(id, tenant, self.not_before())
            .await
    }

    pub(crate) async fn delete(&self, id: &str, tenant: Option<&str>) -> Result<bool, StoreError> {
        self.store
            .delete_response(id, tenant, self.not_before())
            .await
    }

    /// Before a Responses request is decoded: when it names a
    /// `previous_response_id`, its `input` becomes that conversation's
    /// whole history followed by the new input, and the id is removed, so
    /// any target can answer it. An id this tenant does not have is 404,
    /// as OpenAI answers.
    pub async fn expand(
        &self,
        tenant: Option<&str>,
        body: &mut Map<String, Value>,
    ) -> Result<(), ApiError> {
        let id = match body.get("previous_response_id") {
            None | Some(Value::Null) => {
                body.remove("previous_response_id");
                return Ok(());
            }
            Some(Value::String(id)) => id.clone(),
            Some(_) => {
                return Err(ApiError::invalid_param(
                    "previous_response_id",
                    "`previous_response_id` must be the id of an earlier response, a string",
                ));
            }
        };
        let stored = self
            .load(&id, tenant)
            .await
            .map_err(|e| store_failed(&e, "reading the previous response"))?
            .ok_or_else(|| not_found(&id, Some("previous_response_id")))?;
        let (input, response) = parse_stored(&stored)
            .map_err(|what| corrupt(&id, what, "reading the previous response"))?;
        items::rewrite(body, input, &response)
    }

    /// After the answer: stores `response` with the request's input items,
    /// unless the request said `store: false` or the response
    /// did not finish (`completed` or `incomplete`). `request` must be the
    /// body as [`Conversations::expand`] left it, so that the stored input
    /// holds the whole history and the next turn is one read. Never fails
    /// the client: a problem is logged and counted.
    pub async fn remember(
        &self,
        tenant: Option<&str>,
        request: &Map<String, Value>,
        response: &Value,
    ) {
        let Some(stored) = self.to_store(tenant, request, response) else {
            return;
        };
        self.put(stored).await;
    }

    /// [`Conversations::remember`] on its own task, so the answer never
    /// waits for the store; with too many writes already waiting, the
    /// response is not stored and the drop is counted.
    pub fn remember_later(
        self: &Arc<Self>,
        tenant: Option<String>,
        request: &Map<String, Value>,
        response: &Value,
    ) {
        let Some(stored) = self.to_store(tenant.as_deref(), request, response) else {
            return;
        };
        let Ok(permit) = Arc::clone(&self.pending).try_acquire_owned() else {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                id = %stored.id,
                "response not stored: {MAX_PENDING_WRITES} writes already wait on the conversation store"
            );
            return;
        };
        let this = Arc::clone(self);
        tokio::spawn(async move {
            this.put(stored).await;
            drop(permit);
        });
    }

    /// What to store for this exchange, or `None` when nothing should be.
    fn to_store(
        &self,
        tenant: Option<&str>,
        request: &Map<String, Value>,
        response: &Value,
    ) -> Option<StoredResponse> {
        // `store` defaults to true in the Responses API.
        if request.get("store") == Some(&Value::Bool(false)) {
            return None;
        }
        let status = response.get("status").and_then(Value::as_str);
        if !matches!(status, Some("completed" | "incomplete")) {
            return None;
        }
        let id = response
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())?;
        let input = match items::input_items(request.get("input")) {
            Ok(input) => input,
            Err(error) => {
                tracing::debug!(%error, "response not stored: its request's input is not a list");
                return None;
            }
        };
        let stored = StoredResponse {
            id: id.to_string(),
            tenant: tenant.map(str::to_string),
            created_ms: unix_ms_now(),
            input_items: Value::Array(input).to_string(),
            response: response.to_string(),
        };
        // Refused here, before it waits in the queue holding its copy.
        if stored.size() > self.config.max_bytes {
            self.counters.too_large.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                id = %stored.id,
                bytes = stored.size(),
                max_bytes = self.config.max_bytes,
                "conversation too large to store (config key `conversations.max_bytes`)"
            );
            return None;
        }
        Some(stored)
    }

    async fn put(&self, stored: StoredResponse) {
        match self
            .store
            .put_response(
                &stored,
                ResponseLimits {
                    max_bytes: self.config.max_bytes,
                    max_tenant_bytes: self.config.max_bytes_per_key,
                },
            )
            .await
        {
            Ok(PutOutcome::Stored) => {
                self.counters.stored.fetch_add(1, Ordering::Relaxed);
            }
            Ok(PutOutcome::IdTaken) => {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    id = %stored.id,
                    "response not stored: another client key already has a response with this id"
                );
            }
            Err(error @ StoreError::ResponseTooLarge { .. }) => {
                self.counters.too_large.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, "conversation too large to store");
            }
            Err(error @ StoreError::KeyBudgetExceeded { .. }) => {
                self.counters.over_budget.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, "client key's stored conversations are at their limit");
            }
            Err(error) => {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, id = %stored.id, "response not stored");
            }
        }
    }
}

/// The stored input items and Response object, parsed.
fn parse_stored(stored: &StoredResponse) -> Result<(Vec<Value>, Value), &'static str> {
    let input =
        serde_json::from_str::<Vec<Value>>(&stored.input_items).map_err(|_| "input items")?;
    let response = serde_json::from_str::<Value>(&stored.response).map_err(|_| "response")?;
    Ok((input, response))
}

/// A stored row that is not the JSON Bulwark wrote: a 500, logged.
pub(crate) fn corrupt(id: &str, what: &str, doing: &str) -> ApiError {
    tracing::warn!(id, "the stored {what} of a response are not valid JSON");
    ApiError::new(
        ErrorKind::Api,
        format!("Bulwark's stored copy of response '{id}' is damaged ({what}) while {doing}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn conversations(max_bytes: usize) -> Arc<Conversations> {
        with_budget(max_bytes, u64::MAX).await
    }

    async fn with_budget(max_bytes: usize, max_bytes_per_key: u64) -> Arc<Conversations> {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        Arc::new(Conversations::new(
            store,
            ConversationsConfig {
                ttl: std::time::Duration::from_secs(86_400),
                max_bytes,
                max_bytes_per_key,
            },
        ))
    }

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn answer(id: &str, text: &str) -> Value {
        json!({"id": id, "object": "response", "status": "completed",
            "output": [{"type": "message", "id": format!("msg_{id}"), "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}]}]})
    }

    #[tokio::test]
    async fn a_conversation_carries_every_turn_forward() {
        let c = conversations(1 << 20).await;
        let first = map(json!({"model": "m", "input": "hi", "instructions": "old"}));
        c.remember(Some("a"), &first, &answer("resp_1", "hello"))
            .await;

        let mut second = map(json!({"model": "m", "previous_response_id": "resp_1",
            "input": [{"role": "user", "content": "again"}]}));
        c.expand(Some("a"), &mut second).await.unwrap();
        assert!(!second.contains_key("previous_response_id"));
        assert!(
            !second.contains_key("instructions"),
            "old instructions stay behind"
        );
        c.remember(Some("a"), &second, &answer("resp_2", "hello again"))
            .await;

        let mut third = map(json!({"model": "m", "previous_response_id": "resp_2",
            "input": "bye"}));
        c.expand(Some("a"), &mut third).await.unwrap();
        let texts: Vec<String> = third["input"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| match &item["content"] {
                Value::String(s) => format!("{}:{s}", item["role"].as_str().unwrap()),
                parts => format!(
                    "{}:{}",
                    item["role"].as_str().unwrap(),
                    parts[0]["text"].as_str().unwrap()
                ),
            })
            .collect();
        assert_eq!(
            texts,
            [
                "user:hi",
                "assistant:hello",
                "user:again",
                "assistant:hello again",
                "user:bye"
            ]
        );
        assert_eq!(c.stats().stored, 2);
    }

    #[tokio::test]
    async fn a_function_call_chain_keeps_calls_and_results_in_order() {
        let c = conversations(1 << 20).await;
        let call = json!({"id": "resp_c", "status": "completed", "output": [
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "weather",
                "arguments": "{\"city\":\"Oslo\"}", "status": "completed"}]});
        c.remember(
            None,
            &map(json!({"input": "weather in Oslo?", "tools": []})),
            &call,
        )
        .await;
        let mut next = map(json!({"previous_response_id": "resp_c", "input": [
            {"type": "function_call_output", "call_id": "call_1", "output": "rain"}]}));
        c.expand(None, &mut next).await.unwrap();
        let input = next["input"].as_array().unwrap();
        assert_eq!(input.len(), 3);
        assert_eq!(input[1], call["output"][0]);
        assert_eq!(input[2]["type"], "function_call_output");
        assert_eq!(input[2]["call_id"], input[1]["call_id"]);
    }

    #[tokio::test]
    async fn another_tenants_or_an_unknown_id_is_openai_s_404() {
        let c = conversations(1 << 20).await;
        c.remember(
            Some("a"),
            &map(json!({"input": "x"})),
            &answer("resp_a", "y"),
        )
        .await;
        for tenant in [Some("b"), None] {
            let mut body = map(json!({"previous_response_id": "resp_a", "input": "z"}));
            let error = c.expand(tenant, &mut body).await.unwrap_err();
            assert_eq!(error.status, 404);
            assert_eq!(error.message, "Response with id 'resp_a' not found.");
            assert_eq!(error.param.as_deref(), Some("previous_response_id"));
            assert_eq!(body["input"], "z", "the body is left alone");
        }
        let mut body = map(json!({"previous_response_id": "resp_nope"}));
        let error = c.expand(Some("a"), &mut body).await.unwrap_err();
        assert_eq!(error.message, "Response with id 'resp_nope' not found.");
        let encoded = crate::ClientFormat::OpenAi.dialect().encode_error(&error);
        assert_eq!(
            encoded,
            json!({"error": {"message": "Response with id 'resp_nope' not found.",
                "type": "invalid_request_error", "param": "previous_response_id", "code": null}})
        );
        let mut body = map(json!({"previous_response_id": 5}));
        assert_eq!(c.expand(None, &mut body).await.unwrap_err().status, 400);
        // No id: nothing to do, and a null id is dropped.
        let mut body = map(json!({"input": "q", "previous_response_id": null}));
        c.expand(None, &mut body).await.unwrap();
        assert_eq!(Value::Object(body), json!({"input": "q"}));
    }

    #[tokio::test]
    async fn only_finished_stored_responses_are_kept() {
        let c = conversations(1 << 20).await;
        let request = map(json!({"input": "x", "store": false}));
        c.remember(None, &request, &answer("resp_nostore", "y"))
            .await;
        let mut failed = answer("resp_failed", "y");
        failed["status"] = json!("failed");
        c.remember(None, &map(json!({"input": "x"})), &failed).await;
        let mut incomplete = answer("resp_incomplete", "y");
        incomplete["status"] = json!("incomplete");
        c.remember(None, &map(json!({"input": "x"})), &incomplete)
            .await;
        c.remember(
            None,
            &map(json!({"input": "x", "store": true})),
            &answer("resp_ok", "y"),
        )
        .await;
        for (id, kept) in [
            ("resp_nostore", false),
            ("resp_failed", false),
            ("resp_incomplete", true),
            ("resp_ok", true),
        ] {
            assert_eq!(c.load(id, None).await.unwrap().is_some(), kept, "{id}");
        }
        assert_eq!(c.stats().stored, 2);
    }

    #[tokio::test]
    async fn an_oversized_conversation_is_refused_and_counted_not_raised() {
        let c = conversations(400).await;
        c.remember(
            None,
            &map(json!({"input": "x".repeat(500)})),
            &answer("resp_big", "y"),
        )
        .await;
        assert_eq!(c.load("resp_big", None).await.unwrap(), None);
        assert_eq!(
            c.stats(),
            ConversationStats {
                too_large: 1,
                ..ConversationStats::default()
            }
        );
    }

    /// Each turn stores the whole history again: a key continuing one
    /// conversation over and over stops being stored at its budget, and is
    /// told so by the count, never by an error.
    #[tokio::test]
    async fn a_key_over_its_budget_is_counted_not_raised() {
        let c = with_budget(1 << 20, 1_500).await;
        let request = map(json!({"input": "x".repeat(600)}));
        c.remember(Some("team"), &request, &answer("resp_1", "y"))
            .await;
        c.remember(Some("team"), &request, &answer("resp_2", "y"))
            .await;
        assert!(c.load("resp_1", Some("team")).await.unwrap().is_some());
        assert_eq!(c.load("resp_2", Some("team")).await.unwrap(), None);
        c.remember(Some("other"), &request, &answer("resp_3", "y"))
            .await;
        assert_eq!(
            c.stats(),
            ConversationStats {
                stored: 2,
                over_budget: 1,
                ..ConversationStats::default()
            }
        );
    }

    #[tokio::test]
    async fn a_failing_store_is_counted_and_the_answer_goes_on() {
        let c = conversations(1 << 20).await;
        // A closed pool fails every query, as a dead database would.
        c.store.close().await;
        c.remember_later(None, &map(json!({"input": "x"})), &answer("resp_lost", "y"));
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while c.stats().failed == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the write never ran"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let mut body = map(json!({"previous_response_id": "resp_lost"}));
        let error = c.expand(None, &mut body).await.unwrap_err();
        assert_eq!(error.status, 500);
        assert!(!error.message.contains("sqlite"), "{}", error.message);
    }

    #[tokio::test]
    async fn with_too_many_writes_waiting_a_response_is_dropped_and_counted() {
        let c = conversations(1 << 20).await;
        let held = Arc::clone(&c.pending)
            .try_acquire_many_owned(MAX_PENDING_WRITES as u32)
            .unwrap();
        c.remember_later(None, &map(json!({"input": "x"})), &answer("resp_wait", "y"));
        assert_eq!(c.stats().dropped, 1);
        drop(held);
        c.remember_later(None, &map(json!({"input": "x"})), &answer("resp_go", "y"));
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while c.stats().stored == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the write never ran"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(c.load("resp_go", None).await.unwrap().is_some());
        assert_eq!(c.load("resp_wait", None).await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_expired_response_is_gone() {
        let c = conversations(1 << 20).await;
        let old = StoredResponse {
            id: "resp_old".into(),
            tenant: None,
            created_ms: unix_ms_now() - 2 * 86_400_000,
            input_items: "[]".into(),
            response: answer("resp_old", "y").to_string(),
        };
        c.store
            .put_response(
                &old,
                ResponseLimits {
                    max_bytes: 1 << 20,
                    max_tenant_bytes: u64::MAX,
                },
            )
            .await
            .unwrap();
        let mut body = map(json!({"previous_response_id": "resp_old"}));
        assert_eq!(c.expand(None, &mut body).await.unwrap_err().status, 404);
    }
}
