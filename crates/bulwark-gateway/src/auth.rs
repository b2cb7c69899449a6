//! Client keys: who may use the gateway, and which routes.
//!
//! Keys are kept only as blake3 hashes; a presented key is hashed and
//! compared in constant time (`blake3::Hash`'s equality is), so neither the
//! config nor a timing side channel gives a key away. Clients send their key
//! as the official SDKs do: `Authorization: Bearer` (OpenAI), `x-api-key`
//! (Anthropic) or `x-goog-api-key` (Google's), and at the Gemini front door
//! also as Google's `?key=` query parameter.

use std::sync::Arc;

use crate::config::ClientKey;
use axum::http::HeaderMap;
use bulwark::config::RateLimits;
use bulwark::error::{ApiError, ErrorKind};
use bulwark::limit::book::QuotaBook;
use bulwark::limit::quota::Tokens;
use bulwark::limit::window::Refusal;
use bulwark::shared::Shared;

#[derive(Debug, Default)]
pub struct Auth {
    keys: Vec<ClientKey>,
    /// Per key (same order as `keys`): its requests and tokens this minute,
    /// in Redis too when `redis:` is set, so a key's quota holds across
    /// every instance. Shared with the `Auth` of the config before a
    /// reload, for keys that did not change.
    quotas: Vec<Arc<QuotaBook>>,
    shared: Option<Shared>,
}

impl Auth {
    pub fn new(keys: Vec<ClientKey>, shared: Option<&Shared>) -> Self {
        let quotas = keys
            .iter()
            .map(|k| {
                // A key's quotas count requests and all tokens; the input
                // and output split is a provider's concern.
                let limits = RateLimits {
                    rpm: k.limits.rpm,
                    tpm: k.limits.tpm,
                    ..RateLimits::default()
                };
                let name = quota_name(&k.name, &limits);
                Arc::new(QuotaBook::new(limits, shared, &name))
            })
            .collect();
        Auth {
            keys,
            quotas,
            shared: shared.cloned(),
        }
    }

    /// The client keys of a reloaded config: a key that did not change
    /// (same hash, name, models and limits) keeps what it used of its
    /// quotas this minute, so a reload is no way around them. A key whose
    /// limits changed starts counting afresh, here and in Redis (its Redis
    /// quota is named by its limits too, see [`quota_name`]); one whose
    /// secret or routes changed but not its limits starts afresh here and
    /// keeps its count in Redis, where the other instances share it.
    pub fn reloaded(&self, keys: Vec<ClientKey>) -> Self {
        let mut fresh = Auth::new(keys, self.shared.as_ref());
        for (key, quota) in fresh.keys.iter().zip(fresh.quotas.iter_mut()) {
            if let Some(index) = self.keys.iter().position(|old| old == key)
                && let Some(old) = self.quotas.get(index)
            {
                *quota = Arc::clone(old);
            }
        }
        fresh
    }

    /// Counts a request against its key's own quotas; over them, 429 with
    /// the time until there is room.
    pub async fn take_quota(&self, key: Option<&ClientKey>, tokens: u64) -> Result<(), ApiError> {
        let Some(index) = key.and_then(|k| {
            self.keys
                .iter()
                .position(|candidate| std::ptr::eq(candidate, k))
        }) else {
            return Ok(());
        };
        let Some(quota) = self.quotas.get(index) else {
            return Ok(());
        };
        let taken = quota
            .take(Tokens {
                input: tokens,
                output: 0,
            })
            .await;
        let name = key.map(|k| k.name.as_str()).unwrap_or_default();
        match taken {
            Ok(_) => Ok(()),
            Err(Refusal::Wait(wait)) => {
                let mut error = ApiError::new(
                    ErrorKind::RateLimit,
                    format!(
                        "the key `{name}` is over its per-minute quota; retry after {} s",
                        wait.as_secs().max(1)
                    ),
                );
                error.retry_after = Some(wait.as_secs().max(1));
                Err(error)
            }
            Err(Refusal::TooLarge) => Err(ApiError::new(
                ErrorKind::RateLimit,
                format!(
                    "this request (about {tokens} tokens with its max_tokens) is larger than the key `{name}`'s tokens-per-minute quota"
                ),
            )),
        }
    }

    /// Whether anyone may call without a key.
    pub fn is_open(&self) -> bool {
        self.keys.is_empty()
    }

    /// The caller's key; `Ok(None)` when the gateway has no keys at all.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Option<&ClientKey>, ApiError> {
        self.authenticate_with_query(headers, None)
    }

    /// The caller's key from its headers or, when `query` is given (the
    /// Gemini front door's), its `key=` parameter, as Google's clients may
    /// send it. A header wins over the query.
    pub fn authenticate_with_query(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<Option<&ClientKey>, ApiError> {
        if self.is_open() {
            return Ok(None);
        }
        let from_query =
            crate::front_door::query_values(query, "key").find(|k| !k.trim().is_empty());
        let presented = headers
            .get("x-api-key")
            .or_else(|| headers.get("x-goog-api-key"))
            .and_then(|v| v.to_str().ok())
            .or_else(|| {
                headers
                    .get(axum::http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            })
            .or(from_query.as_deref())
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    ErrorKind::Authentication,
                    "this gateway needs an API key: send the key you were given as `Authorization: Bearer <key>`, `x-api-key: <key>` or `x-goog-api-key: <key>`",
                )
            })?;
        let hash = blake3::hash(presented.as_bytes());
        // Every key is compared, so the time taken says nothing about which.
        let mut found = None;
        for key in &self.keys {
            if blake3::Hash::from(key.hash) == hash {
                found = Some(key);
            }
        }
        found.map(Some).ok_or_else(|| {
            ApiError::new(
                ErrorKind::Authentication,
                "the API key is not valid for this gateway; check the key you were given",
            )
        })
    }

    /// Whether `key` may use the route or target a request names.
    pub fn allows(key: Option<&ClientKey>, model: &str) -> Result<(), ApiError> {
        match key.and_then(|k| k.routes.as_ref().map(|routes| (k, routes))) {
            Some((key, routes)) if !routes.iter().any(|r| r == model) => Err(ApiError::new(
                ErrorKind::Permission,
                format!(
                    "the key `{}` may not use `{model}`; it may use: {}",
                    key.name,
                    routes.join(", ")
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// The name of a key's quota in Redis: its name, never the key itself, and
/// a short hash of its limits, so that new limits start a new count rather
/// than inherit the old one's (a count of 50 left over from 100 rpm would
/// refuse everything under a new 40 rpm until the window slides by). While
/// a reload reaches the instances one by one, those on the old limits and
/// those on the new count apart, for at most a window.
fn quota_name(key: &str, limits: &RateLimits) -> String {
    let limits = format!("rpm={:?};tpm={:?}", limits.rpm, limits.tpm);
    let digest = blake3::hash(limits.as_bytes()).to_hex();
    let short = digest.as_str().get(..8).unwrap_or_default();
    format!("quota:key:{key}:{short}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, rpm: u64) -> ClientKey {
        ClientKey {
            name: name.into(),
            hash: *blake3::hash(name.as_bytes()).as_bytes(),
            routes: None,
            priority: Default::default(),
            priority_header: false,
            limits: RateLimits {
                rpm: Some(rpm),
                ..RateLimits::default()
            },
        }
    }

    async fn take(auth: &Auth, name: &str) -> Result<(), ApiError> {
        let key = auth.keys.iter().find(|k| k.name == name);
        auth.take_quota(key, 1).await
    }

    #[tokio::test]
    async fn a_reload_keeps_an_unchanged_keys_quota_and_resets_a_changed_one() {
        let auth = Auth::new(vec![key("same", 1), key("changed", 1)], None);
        assert!(take(&auth, "same").await.is_ok());
        assert!(take(&auth, "changed").await.is_ok());
        let reloaded = auth.reloaded(vec![key("same", 1), key("changed", 2)]);
        // The minute's one request is spent: a reload is no way around it.
        assert!(take(&reloaded, "same").await.is_err());
        assert!(take(&reloaded, "changed").await.is_ok());
    }

    #[test]
    fn a_keys_quota_name_follows_its_limits() {
        let limits = |rpm| key("team", rpm).limits;
        assert_eq!(
            quota_name("team", &limits(5)),
            quota_name("team", &limits(5))
        );
        assert_ne!(
            quota_name("team", &limits(5)),
            quota_name("team", &limits(6))
        );
        assert_ne!(
            quota_name("team", &limits(5)),
            quota_name("other", &limits(5))
        );
        assert!(quota_name("team", &limits(5)).starts_with("quota:key:team:"));
    }

    /// Shared state on the machine's Redis, under a prefix of its own,
    /// once Redis answers.
    async fn shared_on_redis(prefix: &str) -> Shared {
        let config = bulwark::config::shared::SharedConfig {
            url: bulwark::config::Secret::new("redis://127.0.0.1:6379/0"),
            // Generous: a call timed out on a busy machine would be
            // decided locally, which is not these tests' subject.
            timeout: std::time::Duration::from_secs(1),
            key_prefix: prefix.into(),
        };
        let Ok(shared) = Shared::start(config) else {
            panic!("cannot start");
        };
        for _ in 0..250 {
            if shared.is_up() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(shared.is_up());
        shared
    }

    /// With Redis, a key whose limit was raised from 1 to 2 rpm gets two
    /// requests after the reload, not one: the request made under the old
    /// limit does not count against the new one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reload_with_new_limits_starts_a_new_count_in_redis() {
        let prefix = format!("test:keyreload:{:08x}:", fastrand::u32(..));
        let shared = shared_on_redis(&prefix).await;
        let auth = Auth::new(vec![key("team", 1)], Some(&shared));
        assert!(take(&auth, "team").await.is_ok());
        assert!(take(&auth, "team").await.is_err());
        let reloaded = auth.reloaded(vec![key("team", 2)]);
        assert!(take(&reloaded, "team").await.is_ok());
        assert!(take(&reloaded, "team").await.is_ok());
        assert!(take(&reloaded, "team").await.is_err());
        // Unchanged limits on another instance: the same count.
        let other = Auth::new(vec![key("team", 2)], Some(&shared));
        assert!(take(&other, "team").await.is_err());
    }

    /// Three instances of one deployment, each with the key's 30 rpm, on
    /// the machine's Redis: 90 requests spread over them get 30 through,
    /// not 90; the key's name, never the key, names its quota in Redis.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_keys_quota_holds_across_instances() {
        let prefix = format!("test:keyquota:{:08x}:", fastrand::u32(..));
        let config = bulwark::config::shared::SharedConfig {
            url: bulwark::config::Secret::new("redis://127.0.0.1:6379/0"),
            // Generous: a call timed out on a busy machine would be
            // decided locally, which is not this test's subject.
            timeout: std::time::Duration::from_secs(1),
            key_prefix: prefix.clone(),
        };
        let mut instances = Vec::new();
        for _ in 0..3 {
            let Ok(shared) = Shared::start(config.clone()) else {
                panic!("cannot start");
            };
            instances.push(shared);
        }
        for _ in 0..250 {
            if instances.iter().all(|s| s.is_up() && s.instances() == 3) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(instances.iter().all(|s| s.is_up() && s.instances() == 3));
        let auths: Vec<Auth> = instances
            .iter()
            .map(|s| Auth::new(vec![key("team", 30)], Some(s)))
            .collect();
        let mut granted = 0;
        for round in 0..90 {
            if take(&auths[round % 3], "team").await.is_ok() {
                granted += 1;
            }
        }
        assert_eq!(granted, 30);
        let Ok(client) = redis::Client::open("redis://127.0.0.1:6379/0") else {
            panic!("no Redis");
        };
        let Ok(mut connection) = client.get_multiplexed_async_connection().await else {
            panic!("no Redis");
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("*{prefix}quota:*"))
            .query_async(&mut connection)
            .await
            .unwrap_or_default();
        assert!(!keys.is_empty());
        assert!(
            keys.iter().all(|k| k.contains("quota:key:team")),
            "{keys:?}"
        );
    }
}
