//! One owner's quotas, decided in Redis when it is shared and locally when
//! it is not (or while Redis cannot answer).
//!
//! Grants made in Redis are also written into the local windows, so that
//! when Redis goes away the local fallback already knows what this instance
//! spent this minute and does not start from an empty window.

use std::sync::{Mutex, PoisonError};

use tokio::time::Instant;

use super::quota::{Quotas, Tokens};
use super::shared_quota::{SharedQuotas, WINDOW};
use super::window::Refusal;
use crate::config::RateLimits;
use crate::shared::Shared;

#[derive(Debug)]
pub struct QuotaBook {
    local: Mutex<Quotas>,
    shared: Option<SharedQuotas>,
}

/// A grant, as needed to correct its token estimate later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub at: Instant,
    /// Its name in Redis, when Redis made it.
    shared: Option<String>,
}

impl QuotaBook {
    /// `name` is the owner's key name in Redis (`quota:target:<label>`).
    pub fn new(limits: RateLimits, shared: Option<&Shared>, name: &str) -> QuotaBook {
        QuotaBook {
            local: Mutex::new(Quotas::per_minute(limits)),
            shared: shared.and_then(|s| SharedQuotas::new(s, name, limits)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.with_local(|q| q.is_empty())
    }

    /// Takes one request and `tokens` if every quota has room. Redis
    /// decides when it answers; otherwise at once the local windows do,
    /// each limit divided among the instances last seen.
    ///
    /// For a window after Redis comes back from an outage, a grant also
    /// needs room in this instance's local share: what each instance spent
    /// locally meanwhile is not in Redis, which would otherwise grant the
    /// whole limit again on top of it (up to twice the limit that minute).
    pub async fn take(&self, tokens: Tokens) -> Result<Grant, Refusal> {
        let mut share = 1;
        if let Some(shared) = &self.shared {
            if shared.rejoined_within(WINDOW) {
                let (at, share) = (Instant::now(), shared.instances());
                self.with_local(|q| q.check_share(tokens, at, share))?;
            }
            let id = shared.grant_id();
            match shared.take(&id, tokens).await {
                Ok(Ok(())) => {
                    let at = Instant::now();
                    self.with_local(|q| q.record(tokens, at));
                    return Ok(Grant {
                        at,
                        shared: Some(id),
                    });
                }
                Ok(Err(refusal)) => return Err(refusal),
                Err(error) => {
                    tracing::debug!("quota decided locally: {error}");
                    share = shared.instances();
                }
            }
        }
        let at = Instant::now();
        self.with_local(|q| q.take_share(tokens, at, share))?;
        Ok(Grant { at, shared: None })
    }

    /// Replaces a grant's token estimate by the answer's real usage, here
    /// and, in the background (nobody waits on it), in Redis.
    pub fn correct(&self, grant: &Grant, estimated: Tokens, actual: Tokens) {
        self.with_local(|q| q.correct_tokens(grant.at, estimated, actual));
        if let (Some(shared), Some(id)) = (&self.shared, &grant.shared) {
            let (shared, id) = (shared.clone(), id.clone());
            tokio::spawn(async move {
                if let Err(error) = shared.correct(&id, estimated, actual).await {
                    tracing::debug!("quota correction stays local: {error}");
                }
            });
        }
    }

    fn with_local<T>(&self, f: impl FnOnce(&mut Quotas) -> T) -> T {
        f(&mut self.local.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[cfg(test)]
#[path = "book_tests.rs"]
mod tests;
