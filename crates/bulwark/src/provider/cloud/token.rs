//! A bearer token kept for a cloud's requests (Vertex's service-account
//! tokens, Azure's Entra ID tokens) and renewed before it expires.
//!
//! Renewal starts while the token is still good (`MARGIN` before expiry,
//! or half its life when that is shorter), in a background task, one at a
//! time; every request goes on with the token it has, so a busy gateway
//! neither waits for the token endpoint nor calls it once per request.
//! Only when there is no valid token at all do requests wait, for one
//! fetch between them; a fetch that failed is the answer for the next
//! `RETRY_AFTER_FAILURE`, so a refused credential costs one call.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use super::CloudAuthError;
use crate::config::Secret;

/// How long before expiry renewal starts, at most.
const MARGIN: Duration = Duration::from_secs(300);
/// The longest a token fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed renewal, how long the still-valid token is used before
/// the endpoint is asked again: a failing endpoint is not hammered by
/// every request.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);

/// A token and how long it lives, as a token endpoint gives it.
pub(crate) struct Token {
    pub value: Secret,
    pub expires_in: Duration,
}

/// Where tokens come from: a signed JWT exchanged at Google's token URI,
/// Entra ID's client-credentials grant.
pub(crate) trait TokenSource: Send + Sync + Debug {
    fn fetch<'a>(
        &'a self,
        http: &'a reqwest::Client,
    ) -> BoxFuture<'a, Result<Token, CloudAuthError>>;
}

#[derive(Clone)]
struct Cached {
    value: Secret,
    expires_at: Instant,
    /// When renewal starts.
    renew_at: Instant,
}

/// Shared with the renewals it spawns.
#[derive(Debug)]
struct Inner {
    source: Box<dyn TokenSource>,
    http: reqwest::Client,
    current: Mutex<Option<Cached>>,
    /// The last failed fetch, given to requests without a token until
    /// `RETRY_AFTER_FAILURE` has passed, so that a refused credential or a
    /// failing endpoint costs one call, not one per request.
    failure: Mutex<Option<(Instant, CloudAuthError)>>,
    /// Held by the one fetch under way.
    fetching: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Debug)]
pub(crate) struct TokenCache {
    inner: Arc<Inner>,
}

impl Debug for Cached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    pub(crate) fn new(source: Box<dyn TokenSource>, http: reqwest::Client) -> Self {
        TokenCache {
            inner: Arc::new(Inner {
                source,
                http,
                current: Mutex::new(None),
                failure: Mutex::new(None),
                fetching: Arc::new(tokio::sync::Mutex::new(())),
            }),
        }
    }

    /// A token valid now.
    pub(crate) async fn bearer(&self) -> Result<Secret, CloudAuthError> {
        let inner = &self.inner;
        let now = Instant::now();
        match inner.cached() {
            Some(token) if now < token.renew_at => Ok(token.value),
            Some(token) if now < token.expires_at => {
                // Due for renewal but still good: renewed in the
                // background, by one task; every request goes on with it.
                if let Ok(fetching) = Arc::clone(&inner.fetching).try_lock_owned() {
                    let renewing = Arc::clone(inner);
                    tokio::spawn(async move {
                        let _fetching = fetching;
                        if let Err(error) = renewing.fetch().await {
                            tracing::warn!(%error, "renewing a cloud token failed; the current one is used until it expires");
                            renewing.postpone_renewal(token.expires_at);
                        }
                    });
                }
                Ok(token.value)
            }
            _ => {
                if let Some(error) = inner.recent_failure() {
                    return Err(error);
                }
                let _fetching = inner.fetching.lock().await;
                // The fetch this one waited for may have got a token, or
                // failed just now.
                if let Some(token) = inner.cached().filter(|t| Instant::now() < t.renew_at) {
                    return Ok(token.value);
                }
                if let Some(error) = inner.recent_failure() {
                    return Err(error);
                }
                inner.fetch().await
            }
        }
    }
}

impl TokenCache {
    /// Drops the current token: the cloud refused it.
    pub(crate) fn forget(&self) {
        *self
            .inner
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

impl Inner {
    fn cached(&self) -> Option<Cached> {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn recent_failure(&self) -> Option<CloudAuthError> {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .filter(|(at, _)| Instant::now() < *at + RETRY_AFTER_FAILURE)
            .map(|(_, error)| error.clone())
    }

    /// Fetches and keeps a token, or remembers why not; called with
    /// `fetching` held.
    async fn fetch(&self) -> Result<Secret, CloudAuthError> {
        let fetched = match tokio::time::timeout(FETCH_TIMEOUT, self.source.fetch(&self.http)).await
        {
            Ok(fetched) => fetched,
            Err(_) => Err(CloudAuthError::Unavailable(format!(
                "the token endpoint did not answer within {FETCH_TIMEOUT:?}"
            ))),
        };
        let token = match fetched {
            Ok(token) => token,
            Err(error) => {
                *self
                    .failure
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some((Instant::now(), error.clone()));
                return Err(error);
            }
        };
        let now = Instant::now();
        let life = token.expires_in;
        let cached = Cached {
            value: token.value.clone(),
            expires_at: now + life,
            renew_at: now + life.saturating_sub(MARGIN.min(life / 2)),
        };
        *self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(cached);
        Ok(token.value)
    }

    fn postpone_renewal(&self, expires_at: Instant) {
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(token) = current.as_mut() {
            token.renew_at = (Instant::now() + RETRY_AFTER_FAILURE).min(expires_at);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Hands out `token-N` for N fetches, living `life`; fails while `fail` is set.
    #[derive(Debug)]
    struct Counting {
        attempts: Arc<AtomicUsize>,
        fetches: Arc<AtomicUsize>,
        fail: Arc<std::sync::atomic::AtomicBool>,
        life: Duration,
        delay: Duration,
    }

    impl TokenSource for Counting {
        fn fetch<'a>(
            &'a self,
            _http: &'a reqwest::Client,
        ) -> BoxFuture<'a, Result<Token, CloudAuthError>> {
            Box::pin(async move {
                self.attempts.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(self.delay).await;
                if self.fail.load(Ordering::SeqCst) {
                    return Err(CloudAuthError::Unavailable("down".into()));
                }
                let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(Token {
                    value: Secret::new(format!("token-{n}")),
                    expires_in: self.life,
                })
            })
        }
    }

    struct Probe {
        cache: Arc<TokenCache>,
        fetches: Arc<AtomicUsize>,
        attempts: Arc<AtomicUsize>,
        fail: Arc<std::sync::atomic::AtomicBool>,
    }

    fn cache(life: Duration) -> Probe {
        let fetches = Arc::new(AtomicUsize::new(0));
        let attempts = Arc::new(AtomicUsize::new(0));
        let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let source = Counting {
            attempts: Arc::clone(&attempts),
            fetches: Arc::clone(&fetches),
            fail: Arc::clone(&fail),
            life,
            delay: Duration::from_millis(100),
        };
        Probe {
            cache: Arc::new(TokenCache::new(Box::new(source), reqwest::Client::new())),
            fetches,
            attempts,
            fail,
        }
    }

    async fn many(cache: &Arc<TokenCache>, n: usize) -> Vec<Result<Secret, CloudAuthError>> {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let cache = Arc::clone(cache);
                tokio::spawn(async move { cache.bearer().await })
            })
            .collect();
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await.unwrap_or_else(|e| panic!("{e}")));
        }
        out
    }

    fn value(token: &Result<Secret, CloudAuthError>) -> Option<&str> {
        token.as_ref().ok().map(Secret::expose)
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_requests_share_one_fetch_and_renew_before_expiry() {
        let Probe { cache, fetches, .. } = cache(Duration::from_secs(3600));
        let first = many(&cache, 20).await;
        assert!(first.iter().all(|t| value(t) == Some("token-1")));
        assert_eq!(fetches.load(Ordering::SeqCst), 1);

        // Inside the renewal window: every request gets the valid token at
        // once, and one background task renews it.
        tokio::time::advance(Duration::from_secs(3600 - 200)).await;
        let during = many(&cache, 20).await;
        assert!(during.iter().all(|t| value(t) == Some("token-1")));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        assert_eq!(value(&cache.bearer().await), Some("token-2"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_the_cloud_refused_is_not_used_again() {
        let Probe { cache, fetches, .. } = cache(Duration::from_secs(3600));
        assert_eq!(value(&cache.bearer().await), Some("token-1"));
        cache.forget();
        assert_eq!(value(&cache.bearer().await), Some("token-2"));
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_renewal_keeps_the_valid_token_and_a_failure_costs_one_call() {
        let Probe {
            cache,
            fetches,
            attempts,
            fail,
        } = cache(Duration::from_secs(60));
        assert!(cache.bearer().await.is_ok());
        tokio::time::advance(Duration::from_secs(40)).await;
        fail.store(true, Ordering::SeqCst);
        let during = many(&cache, 10).await;
        assert!(during.iter().all(|t| value(t) == Some("token-1")));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 1);

        // Past expiry with the endpoint still down, the failure reaches the
        // callers: from one fetch, however many are waiting.
        tokio::time::advance(Duration::from_secs(30)).await;
        let before = attempts.load(Ordering::SeqCst);
        let after = many(&cache, 10).await;
        assert!(
            after
                .iter()
                .all(|t| matches!(t, Err(CloudAuthError::Unavailable(_))))
        );
        assert_eq!(attempts.load(Ordering::SeqCst), before + 1);

        // The failure is remembered for a while, then the endpoint is asked again.
        fail.store(false, Ordering::SeqCst);
        assert!(cache.bearer().await.is_err());
        tokio::time::advance(RETRY_AFTER_FAILURE).await;
        assert_eq!(value(&cache.bearer().await), Some("token-2"));
    }
}
