//! Health as one across instances (`redis:`). Every instance feeds its
//! observations to every other (`observed.rs`), so each tracker sees all
//! traffic; one instance at a time, the holder of a lease in Redis
//! (`lease.rs`), speaks: it alone opens incidents, sends alerts, writes
//! incidents and uptime, and publishes what it judged (`judged.rs`), which
//! every instance's status surfaces show. The others judge too, silently,
//! following the holder's incident, so that one of them can take over
//! within a lease's time without opening a second incident.
//!
//! While Redis is down nobody can be heard, so each instance judges alone
//! and speaks for itself, as without `redis:`.

mod echo;
mod judged;
mod lease;
mod observed;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bulwark::observe::UnixMs;
use bulwark::observe::component::{ComponentKind, ComponentState};
use bulwark::observe::record::RequestRecord;
use bulwark::observe::unix_ms_now;
use bulwark::resilience::breaker::BreakerState;
use bulwark::shared::Shared;
use bulwark_health::ComponentView;

pub(crate) use judged::Judged;
use judged::{JudgedBurn, JudgedComponent, finite};
pub(crate) use observed::AdminWord;
use observed::Flip;

use super::Observer;

/// A lease outlives this many evaluations its holder misses.
const LEASE_EVALUATIONS: u32 = 3;

/// Redis as the status page and the admin API show it.
pub(crate) const REDIS_COMPONENT: &str = "Shared state (Redis)";

/// Resolved incidents the judge publishes besides the open one.
const INCIDENTS_SHOWN: usize = 20;

/// Observations and admin words not yet sent.
type Waiting = (Vec<RequestRecord>, Vec<Flip>, Vec<AdminWord>);

#[derive(Debug)]
pub(crate) struct Cluster {
    shared: Option<Shared>,
    lease_ttl: Duration,
    evaluate_every: Duration,
    leader: AtomicBool,
    /// Whether this instance spoke for itself or for all last round.
    judging: AtomicBool,
    waiting: Mutex<Waiting>,
    /// Whether Redis was up at the last round, and since when.
    link_up: AtomicBool,
    link_since: AtomicI64,
    seen: Mutex<echo::Seen>,
}

impl Cluster {
    pub(crate) fn new(shared: Option<Shared>, evaluate_every: Duration) -> Cluster {
        Cluster {
            shared,
            lease_ttl: (evaluate_every * LEASE_EVALUATIONS).max(Duration::from_millis(300)),
            evaluate_every,
            leader: AtomicBool::new(false),
            judging: AtomicBool::new(true),
            waiting: Mutex::default(),
            link_up: AtomicBool::new(false),
            link_since: AtomicI64::new(unix_ms_now()),
            seen: Mutex::default(),
        }
    }

    pub(crate) fn shared(&self) -> Option<&Shared> {
        self.shared.as_ref()
    }

    pub(crate) fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
    }

    /// Whether this instance's judgements go out (alerts, incidents,
    /// uptime): it holds the lease, or there is no one to share with.
    pub(crate) fn is_judge(&self) -> bool {
        match &self.shared {
            None => true,
            Some(shared) => !shared.is_up() || self.is_leader(),
        }
    }

    /// Redis as a component: degraded while it is down, since each
    /// instance then falls back to its own state. None without `redis:`.
    pub(crate) fn component(&self) -> Option<ComponentView> {
        let up = self.shared.as_ref()?.is_up();
        Some(ComponentView {
            name: REDIS_COMPONENT.to_string(),
            kind: ComponentKind::Dependency,
            state: if up {
                ComponentState::Operational
            } else {
                ComponentState::DegradedPerformance
            },
            reason: (!up).then(|| {
                "Redis unreachable: each instance judges health and limits on its own until it is back"
                    .to_string()
            }),
            updated_at: self.link_since.load(Ordering::Relaxed),
            first_token_p50_ms: None,
            first_token_p95_ms: None,
        })
    }

    /// A finished request, for the other instances' trackers.
    pub(crate) fn note_record(&self, record: &RequestRecord) {
        if self.shared.is_none() {
            return;
        }
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        if waiting.0.len() < observed::MAX_WAITING {
            waiting.0.push(observed::compact(record));
        }
    }

    /// A breaker flip, for the other instances' incident timelines.
    pub(crate) fn note_breaker(
        &self,
        at: UnixMs,
        target: &str,
        from: BreakerState,
        to: BreakerState,
    ) {
        if self.shared.is_none() {
            return;
        }
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        if waiting.1.len() < observed::MAX_WAITING {
            waiting.1.push(Flip {
                at,
                target: target.to_string(),
                from: from.as_str().to_string(),
                to: to.as_str().to_string(),
            });
        }
    }

    /// An admin's word, for the other instances (see [`AdminWord`]).
    pub(crate) fn note_admin(&self, word: AdminWord) {
        if self.shared.is_none() {
            return;
        }
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        if waiting.2.len() < observed::MAX_WAITING {
            waiting.2.push(word);
        }
    }

    fn take_waiting(&self) -> Waiting {
        std::mem::take(&mut *self.waiting.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The judge's status when Redis answers and it is recent; otherwise
    /// the caller shows its own.
    pub(crate) async fn fresh_judged(&self) -> Option<Judged> {
        let shared = self.shared.as_ref()?;
        let judged = judged::read(shared).await.ok()??;
        let oldest = unix_ms_now() - (self.lease_ttl + self.evaluate_every).as_millis() as i64;
        (judged.generated_at >= oldest).then_some(judged)
    }
}

/// Starts sending and receiving observations.
pub(crate) fn spawn(observer: &Arc<Observer>) {
    observed::spawn(observer);
}

/// Before a round: holds or seeks the lease, and follows the judge's
/// incident, or adopts it on taking over.
pub(crate) async fn before_evaluation(observer: &Observer) {
    let cluster = &observer.cluster;
    if let Some(shared) = cluster.shared() {
        let was_leader = cluster.is_leader();
        let leader = lease::hold(shared, was_leader, cluster.lease_ttl)
            .await
            .unwrap_or(false);
        if leader != was_leader {
            cluster.leader.store(leader, Ordering::Release);
            if leader {
                tracing::info!(instance = %shared.instance(), "health lease taken: this instance now judges health, opens incidents and sends alerts for all");
            } else {
                tracing::info!(instance = %shared.instance(), "health lease lost: another instance judges health");
            }
        }
        // The follower keeps the judge's incident; a new judge starts from
        // it, so a takeover carries the incident on instead of opening a
        // second one.
        if (!leader || !was_leader)
            && let Ok(Some(judged)) = judged::read(shared).await
            && judged.leader != shared.instance()
        {
            observer.health().follow(judged.open_incident().cloned());
            if !leader {
                let mut seen = cluster.seen.lock().unwrap_or_else(PoisonError::into_inner);
                echo::echo(observer, &mut seen, &judged);
            }
        }
    }
    let judge = cluster.is_judge();
    if judge && !cluster.judging.swap(true, Ordering::AcqRel) {
        // The incidents others wrote while this instance was silent.
        match observer.store.incidents(50).await {
            Ok(stored) => {
                let open = stored.iter().find(|i| !i.status.is_closed()).cloned();
                *observer
                    .recent
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = stored;
                let mut health = observer.health();
                if health.open_incident().is_none()
                    && let Some(open) = open
                {
                    health.resume(open);
                }
            }
            Err(error) => tracing::warn!("cannot read incidents from the store: {error}"),
        }
    } else if !judge {
        cluster.judging.store(false, Ordering::Release);
    }
}

/// After a round: the link's metrics, and the judge's status for all.
pub(crate) async fn after_evaluation(observer: &Observer, now: UnixMs) {
    let cluster = &observer.cluster;
    let Some(shared) = cluster.shared() else {
        return;
    };
    let stats = shared.stats();
    observer
        .metrics
        .set_shared_stats(stats.up, stats.instances, stats.fallbacks, stats.outages);
    observer.metrics.set_health_leader(cluster.is_leader());
    if cluster.link_up.swap(stats.up, Ordering::AcqRel) != stats.up {
        cluster.link_since.store(now, Ordering::Relaxed);
        let (from, to) = if stats.up {
            (
                ComponentState::DegradedPerformance,
                ComponentState::Operational,
            )
        } else {
            (
                ComponentState::Operational,
                ComponentState::DegradedPerformance,
            )
        };
        observer
            .metrics
            .set_component_state(REDIS_COMPONENT, ComponentKind::Dependency, to);
        let _ = observer.updates.send(
            serde_json::json!({
                "type": "component",
                "component": REDIS_COMPONENT,
                "from": from.as_str(),
                "status": to.as_str(),
                "reason": cluster.component().and_then(|c| c.reason),
                "at": now,
            })
            .to_string(),
        );
    }
    if !cluster.is_leader() || !stats.up {
        return;
    }
    let judged = {
        let health = observer.health();
        let mut routes: Vec<_> = observer.slos().into_keys().collect();
        routes.sort();
        Judged {
            leader: shared.instance().to_string(),
            generated_at: now,
            absorbed: health.absorbed(now),
            components: health
                .components()
                .into_iter()
                .chain(cluster.component())
                .map(JudgedComponent::from)
                .collect(),
            burn: routes
                .into_iter()
                .map(|route| JudgedBurn {
                    rate_1h: finite(health.slo().burn_rate(&route, now, 60)),
                    rate_6h: finite(health.slo().burn_rate(&route, now, 360)),
                    route,
                })
                .collect(),
            incidents: observer
                .recent
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .take(INCIDENTS_SHOWN)
                .cloned()
                .collect(),
        }
    };
    if let Err(error) = judged::publish(shared, &judged).await {
        tracing::debug!("health status not shared: {error}");
    }
}
