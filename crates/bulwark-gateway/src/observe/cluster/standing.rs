//! Where this instance stands among the others: whether it may act as the
//! lease holder, who holds the lease, whether it must judge alone, and
//! whether the judged status it reads is still being written.
//!
//! All of it is measured on this instance's own clock: the lease deadline
//! from before the call that extended it, and the judged status's
//! freshness from when this instance saw it change, so clock skew between
//! instances cannot make a stale judge look alive or a live one dead.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bulwark::observe::{UnixMs, unix_ms_now};
use tokio::time::Instant;

/// The least time without a lease answer before judging alone: one slow
/// call marks Redis down until the link's next heartbeat (every second),
/// which with a short evaluation interval outlasts a lease.
const ALONE_AFTER_AT_LEAST: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub(super) struct Standing {
    ttl: Duration,
    alone_after: Duration,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Until when this instance may act as the holder. Counted from before
    /// the extending call, less a margin, so it ends before the key does
    /// in Redis even if the call's answer came late.
    lease_until: Option<Instant>,
    /// Who held the lease at the last answer.
    holder: Option<String>,
    /// When a lease call that got answered was sent; since then, no lease
    /// this instance saw can outlive `ttl`.
    last_contact: Instant,
    /// The judged status's `generated_at` last seen, and when this
    /// instance first saw it.
    judged_seen: Option<(UnixMs, Instant)>,
    /// When this instance last read the judged status.
    judged_looked: Option<Instant>,
}

impl Standing {
    /// A fresh instance counts as in contact: it waits out one lease before
    /// judging alone, since another may hold one it has not seen yet.
    pub(super) fn new(ttl: Duration) -> Standing {
        Standing {
            ttl,
            alone_after: ttl.max(ALONE_AFTER_AT_LEAST),
            inner: Mutex::new(Inner {
                lease_until: None,
                holder: None,
                last_contact: Instant::now(),
                judged_seen: None,
                judged_looked: None,
            }),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Redis answered a lease call sent at `asked_at`: `holder` holds it.
    pub(super) fn answered(&self, asked_at: Instant, holder: String, me: &str) {
        let margin = self.ttl / 5;
        let mut inner = self.inner();
        inner.lease_until = (holder == me).then(|| asked_at + (self.ttl - margin));
        inner.holder = Some(holder);
        inner.last_contact = inner.last_contact.max(asked_at);
    }

    pub(super) fn is_leader(&self) -> bool {
        self.inner()
            .lease_until
            .is_some_and(|until| Instant::now() < until)
    }

    /// Whether no lease this instance saw can still be live: only then may
    /// it speak for itself. One slow call must not make a second judge.
    pub(super) fn alone(&self) -> bool {
        self.inner().last_contact.elapsed() > self.alone_after
    }

    /// The holder at the last answer, while that answer can still be true.
    pub(super) fn holder(&self) -> Option<String> {
        let inner = self.inner();
        if inner.last_contact.elapsed() > self.ttl {
            return None;
        }
        inner.holder.clone()
    }

    /// Whether a judged status generated at `generated_at` (the judge's
    /// clock) was written within `window`, as far as this instance can
    /// tell: since it saw that value appear, by its own clock. A change
    /// is news only if this instance looked within the window; after a gap
    /// (Redis was down) the new value may be old, and like a value seen
    /// for the first time it can only be judged by comparing clocks.
    pub(super) fn fresh(&self, generated_at: UnixMs, window: Duration) -> bool {
        let now = Instant::now();
        let mut inner = self.inner();
        let looked = inner.judged_looked.replace(now);
        if let Some((seen, since)) = inner.judged_seen
            && seen == generated_at
        {
            return now.duration_since(since) <= window;
        }
        let fresh = looked.is_some_and(|looked| now.duration_since(looked) <= window)
            || generated_at >= unix_ms_now() - window.as_millis() as i64;
        // A stale value stays stale however often it is read again.
        let since = if fresh {
            now
        } else {
            now.checked_sub(window * 2).unwrap_or(now)
        };
        inner.judged_seen = Some((generated_at, since));
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_millis(600);

    #[tokio::test(start_paused = true)]
    async fn the_holder_stops_acting_before_its_key_expires() {
        let standing = Standing::new(TTL);
        assert!(!standing.is_leader());
        let asked = Instant::now();
        tokio::time::sleep(Duration::from_millis(100)).await;
        standing.answered(asked, "me".into(), "me");
        assert!(standing.is_leader());
        // The deadline counts from the call, not the late answer.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!standing.is_leader(), "acting past ttl - margin");
        // Someone else named: not the holder, at once.
        standing.answered(Instant::now(), "me".into(), "me");
        assert!(standing.is_leader());
        standing.answered(Instant::now(), "other".into(), "me");
        assert!(!standing.is_leader());
        assert_eq!(standing.holder().as_deref(), Some("other"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_follower_judges_alone_only_once_the_lease_it_saw_can_be_over() {
        let standing = Standing::new(TTL);
        // Just started: someone may hold a lease not seen yet.
        assert!(!standing.alone());
        standing.answered(Instant::now(), "other".into(), "me");
        // A blip: calls fail for less than a ttl; still a follower.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!standing.alone());
        assert_eq!(standing.holder().as_deref(), Some("other"));
        // Past the lease, the holder it saw is no longer known...
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(standing.holder(), None);
        // ...but a blip keeps Redis marked down until the next heartbeat:
        // alone only once that is over too.
        assert!(!standing.alone());
        tokio::time::sleep(ALONE_AFTER_AT_LEAST).await;
        assert!(standing.alone());
        // Back: contact again.
        standing.answered(Instant::now(), "other".into(), "me");
        assert!(!standing.alone());
    }

    #[tokio::test(start_paused = true)]
    async fn judged_freshness_follows_this_instances_clock() {
        let standing = Standing::new(TTL);
        let window = Duration::from_millis(800);
        // First sight of an hour-old status: stale by the clocks.
        let old = unix_ms_now() - 3_600_000;
        assert!(!standing.fresh(old, window));
        // It changes: whatever the judge's clock says, it was just written.
        assert!(standing.fresh(old + 200, window));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(standing.fresh(old + 200, window));
        // No longer written: stale after the window.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!standing.fresh(old + 200, window));
        // Not looked at for a while (Redis down): a value new to this
        // instance is not news, it may have been written long ago.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!standing.fresh(old + 400, window));
        assert!(!standing.fresh(old + 400, window));
        // Looking again, the next change is news.
        assert!(standing.fresh(old + 600, window));
    }
}
