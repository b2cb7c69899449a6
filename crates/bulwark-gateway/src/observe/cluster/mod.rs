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
//! and speaks for itself, as without `redis:` — but only once the lease it
//! last saw can no longer be live (`standing.rs`): a blip of one slow call
//! must not make a second judge.

mod echo;
mod judged;
mod lease;
mod observed;
mod split;
mod standing;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use bulwark::observe::UnixMs;
use bulwark::observe::component::{ComponentKind, ComponentState};
use bulwark::observe::incident::Incident;
use bulwark::observe::record::RequestRecord;
use bulwark::observe::unix_ms_now;
use bulwark::resilience::breaker::BreakerState;
use bulwark::shared::Shared;
use bulwark_alerts::Alert;
use bulwark_health::{ComponentView, IncidentUpdate};
use standing::Standing;
use tokio::time::Instant;

pub(crate) use judged::Judged;
use judged::{JudgedBurn, JudgedComponent, finite};
pub(crate) use observed::AdminWord;
use observed::Flip;

use super::Observer;

/// A lease outlives this many evaluations its holder misses.
const LEASE_EVALUATIONS: u32 = 3;

/// Redis as the status page and the admin API show it.
pub(crate) const REDIS_COMPONENT: &str = "Shared state (Redis)";

/// Incidents the judge publishes, the open one first: the status read
/// back is ignored above a size, so what is written must stay below it.
const INCIDENTS_SHOWN: usize = 20;

/// Timeline entries published per incident, the latest.
const TIMELINE_SHOWN: usize = 50;

/// Observations and admin words not yet sent.
type Waiting = (Vec<RequestRecord>, Vec<Flip>, Vec<AdminWord>);

#[derive(Debug)]
pub(crate) struct Cluster {
    shared: Option<Shared>,
    lease_ttl: Duration,
    evaluate_every: Duration,
    standing: Standing,
    /// Whether this instance held the lease at the last round.
    led: AtomicBool,
    /// Whether this instance spoke for itself or for all last round.
    judging: AtomicBool,
    waiting: Mutex<Waiting>,
    /// Whether Redis was up at the last round, and since when.
    link_up: AtomicBool,
    link_since: AtomicI64,
    seen: Mutex<echo::Seen>,
    /// Observations not shared: over the waiting cap, or too large.
    dropped: AtomicU64,
    /// Whether the last published status cut an incident's timeline.
    trimmed: AtomicBool,
    /// The judge's open incident this instance last followed: told by the
    /// judge, so never announced again by this one.
    followed: Mutex<Option<String>>,
    /// The last judged status read for the status surfaces, and when: a
    /// flood of page views reads Redis once a second, one read at a time.
    judged_cache: tokio::sync::Mutex<Option<(Instant, Option<Judged>)>>,
}

/// How long the status surfaces reuse a judged status read at most; never
/// more than a quarter of the judge's beat, so that instances rarely show
/// two different versions of it.
const JUDGED_CACHED: Duration = Duration::from_secs(1);

impl Cluster {
    pub(crate) fn new(shared: Option<Shared>, evaluate_every: Duration) -> Cluster {
        let lease_ttl = (evaluate_every * LEASE_EVALUATIONS).max(Duration::from_millis(300));
        Cluster {
            shared,
            lease_ttl,
            evaluate_every,
            standing: Standing::new(lease_ttl),
            led: AtomicBool::new(false),
            judging: AtomicBool::new(true),
            waiting: Mutex::default(),
            link_up: AtomicBool::new(false),
            link_since: AtomicI64::new(unix_ms_now()),
            seen: Mutex::default(),
            dropped: AtomicU64::new(0),
            trimmed: AtomicBool::new(false),
            followed: Mutex::default(),
            judged_cache: tokio::sync::Mutex::new(None),
        }
    }

    pub(crate) fn shared(&self) -> Option<&Shared> {
        self.shared.as_ref()
    }

    /// Whether this instance holds the lease, by its own deadline: a
    /// holder cut off from Redis stops acting before its key expires.
    pub(crate) fn is_leader(&self) -> bool {
        self.standing.is_leader()
    }

    /// Whether this instance's judgements go out (alerts, incidents,
    /// uptime): it holds the lease, or there is no one to share with — no
    /// `redis:`, or no lease it saw can still be live.
    pub(crate) fn is_judge(&self) -> bool {
        match &self.shared {
            None => true,
            // Alone only while Redis is down here: an instance that was
            // frozen past the lease and thaws with Redis up asks the lease
            // first, instead of judging a round beside the holder.
            Some(shared) => self.is_leader() || (!shared.is_up() && self.standing.alone()),
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
        self.enqueue(|w| &mut w.0, || observed::compact(record));
    }

    /// A breaker flip, for the other instances' incident timelines.
    pub(crate) fn note_breaker(
        &self,
        at: UnixMs,
        target: &str,
        from: BreakerState,
        to: BreakerState,
    ) {
        self.enqueue(
            |w| &mut w.1,
            || Flip {
                at,
                target: target.to_string(),
                from: from.as_str().to_string(),
                to: to.as_str().to_string(),
            },
        );
    }

    /// An admin's word, for the other instances (see [`AdminWord`]).
    pub(crate) fn note_admin(&self, word: AdminWord) {
        self.enqueue(|w| &mut w.2, || word);
    }

    /// Queues what `item` makes for the next batch, in the list `queue`
    /// picks; over that list's cap it is counted as dropped, and not made
    /// at all (a request's record is not compacted for nothing). Nothing
    /// is queued without `redis:`.
    fn enqueue<T>(
        &self,
        queue: impl FnOnce(&mut Waiting) -> &mut Vec<T>,
        item: impl FnOnce() -> T,
    ) {
        if self.shared.is_none() {
            return;
        }
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let list = queue(&mut waiting);
        if list.len() < observed::MAX_WAITING {
            list.push(item());
        } else {
            self.count_dropped(1);
        }
    }

    /// Counts `n` observations not shared; the total so far.
    fn count_dropped(&self, n: u64) -> u64 {
        self.dropped.fetch_add(n, Ordering::Relaxed) + n
    }

    fn take_waiting(&self) -> Waiting {
        std::mem::take(&mut *self.waiting.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The judge's status when Redis answers and it is recent; otherwise
    /// the caller shows its own.
    pub(crate) async fn fresh_judged(&self) -> Option<Judged> {
        let shared = self.shared.as_ref()?;
        let mut cache = self.judged_cache.lock().await;
        if let Some((read_at, judged)) = cache.as_ref()
            && read_at.elapsed() < JUDGED_CACHED.min(self.evaluate_every / 4)
        {
            return judged.clone();
        }
        let judged = judged::read(shared).await.ok().flatten().filter(|judged| {
            self.standing
                .fresh(judged.generated_at, self.lease_ttl + self.evaluate_every)
        });
        *cache = Some((Instant::now(), judged.clone()));
        judged
    }

    /// Whether to carry `judged`'s incident on: a follower follows only
    /// the current holder's live word; a new holder takes over its
    /// predecessor's if it was written within the lease that lapsed. An
    /// hour-old status is no one's word, and following it would drop
    /// incidents or open duplicates.
    fn followable(&self, judged: &Judged, leader: bool) -> bool {
        if leader {
            return self.standing.fresh(
                judged.generated_at,
                self.lease_ttl * 2 + self.evaluate_every,
            );
        }
        self.standing.holder().as_deref() == Some(judged.leader.as_str())
            && self
                .standing
                .fresh(judged.generated_at, self.lease_ttl + self.evaluate_every)
    }
}

/// Starts sending and receiving observations, and holding the lease.
pub(crate) fn spawn(observer: &Arc<Observer>) {
    observed::spawn(observer);
    if observer.cluster.shared().is_some() {
        tokio::spawn(hold_forever(Arc::downgrade(observer)));
    }
}

/// Holds or seeks the lease on its own beat, so a round stalled on the
/// store cannot let it lapse while its holder still acts.
async fn hold_forever(observer: Weak<Observer>) {
    let every = match observer.upgrade() {
        Some(observer) => observer.cluster.lease_ttl / LEASE_EVALUATIONS,
        None => return,
    };
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(observer) = observer.upgrade() else {
            return;
        };
        let cluster = &observer.cluster;
        let Some(shared) = cluster.shared() else {
            return;
        };
        let asked_at = Instant::now();
        // Unanswered: the deadline and the last contact stand, and run out.
        if let Ok(holder) = lease::hold(shared, cluster.lease_ttl).await {
            cluster
                .standing
                .answered(asked_at, holder, shared.instance());
        }
    }
}

/// Before a round: notes a change of lease, and follows the judge's
/// incident, or adopts it on taking over.
pub(crate) async fn before_evaluation(observer: &Observer, now: UnixMs) {
    let cluster = &observer.cluster;
    if let Some(shared) = cluster.shared() {
        let leader = cluster.is_leader();
        let was_leader = cluster.led.swap(leader, Ordering::AcqRel);
        if leader != was_leader {
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
            && cluster.followable(&judged, leader)
        {
            let followed_before = std::mem::replace(
                &mut *cluster
                    .followed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
                judged.open_incident().map(|i| i.id.clone()),
            );
            let replaced = observer
                .health()
                .follow(now, judged.open_incident().cloned());
            // The judge's own incident, which this instance only followed,
            // is the judge's to resolve and tell: not this instance's.
            if let Some(replaced) = replaced
                && followed_before.as_deref() != Some(replaced.id.as_str())
            {
                close_replaced(observer, replaced);
            }
            if !leader {
                let mut seen = cluster.seen.lock().unwrap_or_else(PoisonError::into_inner);
                echo::echo(observer, &mut seen, &judged);
            }
        }
    }
    let judge = cluster.is_judge();
    // Set once the store was read, so a failed read is tried again next
    // round rather than skipped for good.
    if judge && !cluster.judging.load(Ordering::Acquire) {
        // The incidents others wrote while this instance was silent.
        // Bounded: a silent database must not hold up the round.
        match tokio::time::timeout(Duration::from_secs(1), observer.store.incidents(50))
            .await
            .map_err(|_| "no answer within 1s".to_string())
            .and_then(|read| read.map_err(|error| error.to_string()))
        {
            Ok(stored) => {
                cluster.judging.store(true, Ordering::Release);
                let open = stored.iter().find(|i| !i.status.is_closed()).cloned();
                let mut health = observer.health();
                // Opened while this instance was silent (waiting out the
                // lease it last saw) and told nowhere: told now.
                let followed = cluster
                    .followed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                let recent_ids: Vec<String> = observer
                    .recent
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .iter()
                    .map(|i| i.id.clone())
                    .collect();
                // Told already if stored, or announced with its write still
                // waiting to be retried (it is in `recent` then).
                let untold = health
                    .open_incident()
                    .filter(|own| {
                        !stored.iter().any(|i| i.id == own.id)
                            && !recent_ids.contains(&own.id)
                            && followed.as_deref() != Some(own.id.as_str())
                    })
                    .cloned();
                *observer
                    .recent
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = stored;
                // The stored copy is whole; the judged status carried only
                // the last entries of its timeline, and saving that copy
                // would shorten the stored history.
                if let Some(open) = open
                    && health.open_incident().is_none_or(|own| own.id == open.id)
                {
                    health.resume(open);
                }
                drop(health);
                if let Some(untold) = untold {
                    super::watch::incident_update(observer, IncidentUpdate::Opened(untold));
                }
            }
            Err(error) => tracing::warn!("cannot read incidents from the store: {error}"),
        }
    } else if !judge {
        cluster.judging.store(false, Ordering::Release);
    }
}

/// This instance's own incident, which the judge's replaced: if it was told
/// (while this instance judged alone), it is resolved where it was told,
/// not left open forever.
fn close_replaced(observer: &Observer, replaced: Incident) {
    let told = observer
        .recent
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .any(|i| i.id == replaced.id);
    if !told {
        return;
    }
    tracing::info!(id = %replaced.id, "own incident closed: the instance judging for all carries the story");
    observer
        .alerts
        .send(Alert::IncidentResolved(replaced.clone()));
    observer.save_incident(replaced);
}

/// After a round: the link's metrics, and the judge's status for all.
pub(crate) async fn after_evaluation(observer: &Observer, now: UnixMs) {
    let cluster = &observer.cluster;
    let Some(shared) = cluster.shared() else {
        return;
    };
    let stats = shared.stats();
    observer.metrics.set_shared_stats(
        stats.up,
        stats.instances,
        stats.fallbacks,
        stats.outages,
        stats.dropped,
    );
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
        let (incidents, trimmed) = published_incidents(
            health.open_incident(),
            &observer
                .recent
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        // Told once each time it starts, not every round.
        if trimmed && !cluster.trimmed.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "an incident's timeline is longer than {TIMELINE_SHOWN} entries: the shared status shows the latest {TIMELINE_SHOWN}; the stored incident keeps them all"
            );
        } else if !trimmed {
            cluster.trimmed.store(false, Ordering::Relaxed);
        }
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
            incidents,
        }
    };
    if let Err(error) = judged::publish(shared, &judged).await {
        tracing::debug!("health status not shared: {error}");
    }
}

/// What the judge publishes: the open incident as its tracker has it (one
/// it took over may not be among those it stored), then the recent ones,
/// bounded so the status stays readable.
fn published_incidents(open: Option<&Incident>, recent: &[Incident]) -> (Vec<Incident>, bool) {
    let mut incidents: Vec<Incident> = open.cloned().into_iter().collect();
    incidents.extend(
        recent
            .iter()
            .filter(|i| open.is_none_or(|o| o.id != i.id))
            .cloned(),
    );
    // Older ones are on the history pages; only the latest are shown.
    incidents.truncate(INCIDENTS_SHOWN);
    let mut trimmed = false;
    for incident in &mut incidents {
        let over = incident.timeline.len().saturating_sub(TIMELINE_SHOWN);
        if over > 0 {
            trimmed = true;
            incident.timeline.drain(..over);
        }
    }
    (incidents, trimmed)
}

#[cfg(test)]
mod tests;
