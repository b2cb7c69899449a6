//! A bearer token kept for a cloud's requests (Vertex's service-account
//! tokens, Azure's Entra ID tokens) and renewed before it expires.
//!
//! Renewal starts while the token is still good (`MARGIN` before expiry,
//! or half its life when that is shorter), by one request at a time; the
//! others go on with the token they have, so a busy gateway neither waits
//! for the token endpoint nor calls it once per request. Only when there
//! is no valid token at all do requests wait, for one fetch between them.

use std::fmt::Debug;
use std::sync::Mutex;
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

#[derive(Debug)]
pub(crate) struct TokenCache {
    source: Box<dyn TokenSource>,
    http: reqwest::Client,
    current: Mutex<Option<Cached>>,
    /// Held by the one request fetching a token.
    fetching: tokio::sync::Mutex<()>,
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
            source,
            http,
            current: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// A token valid now.
    pub(crate) async fn bearer(&self) -> Result<Secret, CloudAuthError> {
        let now = Instant::now();
        match self.cached() {
            Some(token) if now < token.renew_at => Ok(token.value),
            Some(token) if now < token.expires_at => {
                // Due for renewal but still good: one request renews, the
                // others use it meanwhile.
                let Ok(_fetching) = self.fetching.try_lock() else {
                    return Ok(token.value);
                };
                if let Some(renewed) = self.cached().filter(|t| now < t.renew_at) {
                    return Ok(renewed.value);
                }
                match self.fetch().await {
                    Ok(value) => Ok(value),
                    Err(error) => {
                        tracing::warn!(%error, "renewing a cloud token failed; the current one is used until it expires");
                        self.postpone_renewal(token.expires_at);
                        Ok(token.value)
                    }
                }
            }
            _ => {
                let _fetching = self.fetching.lock().await;
                // Another request may have fetched one while this waited.
                if let Some(token) = self.cached().filter(|t| Instant::now() < t.renew_at) {
                    return Ok(token.value);
                }
                self.fetch().await
            }
        }
    }

    fn cached(&self) -> Option<Cached> {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Fetches and keeps a token; called with `fetching` held.
    async fn fetch(&self) -> Result<Secret, CloudAuthError> {
        let token = tokio::time::timeout(FETCH_TIMEOUT, self.source.fetch(&self.http))
            .await
            .map_err(|_| {
                CloudAuthError::Unavailable(format!(
                    "the token endpoint did not answer within {FETCH_TIMEOUT:?}"
                ))
            })??;
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

    fn cache(
        life: Duration,
    ) -> (
        Arc<TokenCache>,
        Arc<AtomicUsize>,
        Arc<std::sync::atomic::AtomicBool>,
    ) {
        let fetches = Arc::new(AtomicUsize::new(0));
        let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let source = Counting {
            fetches: Arc::clone(&fetches),
            fail: Arc::clone(&fail),
            life,
            delay: Duration::from_millis(100),
        };
        (
            Arc::new(TokenCache::new(Box::new(source), reqwest::Client::new())),
            fetches,
            fail,
        )
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

    #[tokio::test(start_paused = true)]
    async fn concurrent_requests_share_one_fetch_and_renew_before_expiry() {
        let (cache, fetches, _) = cache(Duration::from_secs(3600));
        let first = many(&cache, 20).await;
        assert!(
            first
                .iter()
                .all(|t| t.as_ref().map(Secret::expose) == Ok("token-1"))
        );
        assert_eq!(fetches.load(Ordering::SeqCst), 1);

        // Inside the renewal window: one request renews, the others keep
        // the valid token and do not wait.
        tokio::time::advance(Duration::from_secs(3600 - 200)).await;
        let during = many(&cache, 20).await;
        assert!(during.iter().all(Result::is_ok));
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        assert_eq!(
            cache.bearer().await.map(|t| t.expose().to_string()),
            Ok("token-2".into())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_renewal_keeps_the_valid_token_and_waits_before_asking_again() {
        let (cache, fetches, fail) = cache(Duration::from_secs(60));
        assert!(cache.bearer().await.is_ok());
        tokio::time::advance(Duration::from_secs(40)).await;
        fail.store(true, Ordering::SeqCst);
        let during = many(&cache, 10).await;
        assert!(
            during
                .iter()
                .all(|t| t.as_ref().map(Secret::expose) == Ok("token-1"))
        );
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // Past expiry with the endpoint still down, the failure reaches the caller.
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(matches!(
            cache.bearer().await,
            Err(CloudAuthError::Unavailable(_))
        ));
        fail.store(false, Ordering::SeqCst);
        assert_eq!(
            cache.bearer().await.map(|t| t.expose().to_string()),
            Ok("token-2".into())
        );
    }
}
