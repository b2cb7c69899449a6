//! The background side: engine events into metrics and incident timelines,
//! and a timer that judges health, rolls up uptime, raises alerts and
//! pushes live updates. Each loop holds only weak references, so it ends
//! when its gateway is dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bulwark::Client;
use bulwark::events::Event;
use bulwark::observe::incident::{Incident, TimelineKind};
use bulwark::observe::unix_ms_now;
use bulwark_alerts::Alert;
use bulwark_health::{BurnAlert, IncidentUpdate, budget_remaining};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::Observer;

/// How long a round waits on the store for one call: a silent database
/// must not hold up judging, publishing and alerting.
const STORE_CALL: Duration = Duration::from_secs(1);

/// `call` bounded by [`STORE_CALL`]; a timeout reads as a failure.
async fn bounded<T, E: std::fmt::Display>(
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(STORE_CALL, call).await {
        Ok(result) => result.map_err(|error| error.to_string()),
        Err(_) => Err(format!("no answer within {STORE_CALL:?}")),
    }
}

/// Starts the loops for `observer`, watching `client`.
pub(crate) fn spawn(
    observer: &Arc<Observer>,
    client: &Arc<Client>,
    incidents: mpsc::UnboundedReceiver<Incident>,
) {
    let events = client.subscribe();
    tokio::spawn(watch_events(Arc::downgrade(observer), events));
    tokio::spawn(evaluate_forever(Arc::downgrade(observer)));
    tokio::spawn(store_incidents(Arc::downgrade(observer), incidents));
}

async fn watch_events(
    observer: Weak<Observer>,
    mut events: tokio::sync::broadcast::Receiver<Event>,
) {
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            // Metrics miss a few events; nothing waits on them.
            Err(RecvError::Lagged(missed)) => {
                tracing::debug!(missed, "observer fell behind the engine's events");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let Some(observer) = observer.upgrade() else {
            return;
        };
        observer.metrics.on_event(&event);
        if let Event::Breaker {
            target, from, to, ..
        } = &event
        {
            let now = unix_ms_now();
            observer.cluster.note_breaker(now, target, *from, *to);
            let update = observer.health().on_breaker(now, target, *from, *to);
            if let Some(update) = update {
                incident_update(&observer, update);
            }
        }
    }
}

async fn evaluate_forever(observer: Weak<Observer>) {
    let every = match observer.upgrade() {
        Some(observer) => observer.health().settings().evaluate_every,
        None => return,
    };
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        // The engine of the current config: a reload swaps it.
        let Some(observer) = observer.upgrade() else {
            return;
        };
        let Some(client) = observer.client() else {
            return;
        };
        evaluate(&observer, &client).await;
    }
}

/// One round: judge, publish, roll up, alert.
pub(crate) async fn evaluate(observer: &Observer, client: &Client) {
    let now = unix_ms_now();
    let mut breakers = HashMap::new();
    for (label, state) in client.target_states() {
        let breaker = state.with_breaker(|b| b.state());
        let (limit, in_flight) = state.concurrency();
        observer.metrics.set_breaker_state(&label, breaker);
        observer
            .metrics
            .set_concurrency(&label, limit as u64, in_flight as u64);
        breakers.insert(label, breaker);
    }
    for route in client.routes() {
        if let Some(queue) = &route.admission {
            let (_running, waiting) = queue.depth();
            observer.metrics.set_queue(&route.name, waiting as u64);
        }
    }
    super::cluster::before_evaluation(observer, now).await;
    // Every instance judges, to stay warm; only the judge's findings go
    // out (see `cluster`).
    let judge = observer.cluster.is_judge();
    let evaluation = observer.health().evaluate(now, &breakers);
    for change in &evaluation.changes {
        observer
            .metrics
            .set_component_state(&change.name, change.kind, change.to);
        if !judge {
            // The judge's changes are told instead (`cluster::echo`).
            continue;
        }
        let _ = observer.updates.send(
            serde_json::json!({
                "type": "component",
                "component": change.name,
                "from": change.from.as_str(),
                "status": change.to.as_str(),
                "reason": change.reason,
                "at": change.at,
            })
            .to_string(),
        );
    }
    for update in evaluation.incidents {
        incident_update(observer, update);
    }
    if judge {
        if let Some(incident) = evaluation.incident_to_store {
            observer.save_incident(incident);
        }
        for alert in evaluation.burn_alerts {
            burn_alert(observer, alert, now).await;
        }
    }
    let uptime = if judge { evaluation.uptime } else { Vec::new() };
    for (component, kind, seconds, state) in uptime {
        if let Err(error) = bounded(
            observer
                .store
                .add_uptime(&component, kind, now, seconds, state),
        )
        .await
        {
            tracing::warn!("cannot record uptime: {error}");
            break;
        }
    }
    let log = observer.log_stats();
    let store_up = bounded(observer.store.ping()).await.is_ok();
    observer.metrics.set_store_stats(
        log.written,
        log.dropped + log.failed_rows,
        log.failed_batches,
        log.pending,
        store_up,
    );
    let alerts = observer.alerts.stats();
    observer
        .metrics
        .set_alert_stats(alerts.delivered, alerts.failed, alerts.retried);
    super::cluster::after_evaluation(observer, now).await;
}

async fn burn_alert(observer: &Observer, alert: BurnAlert, now: i64) {
    let Some(slo) = observer.slos().get(&alert.route).copied() else {
        return;
    };
    let from = now - slo.window.as_millis() as i64;
    let remaining = match bounded(observer.store.route_counts(&alert.route, from, now)).await {
        Ok((total, good)) => budget_remaining(total, good, slo.objective),
        Err(_) => f64::NAN,
    };
    tracing::warn!(route = %alert.route, severity = alert.severity.as_str(), burn_rate = alert.burn_rate, "error budget burning");
    observer.alerts.send(Alert::BudgetBurn {
        route: alert.route,
        severity: alert.severity,
        burn_rate: alert.burn_rate,
        long_window: alert.long_window,
        short_window: alert.short_window,
        budget_remaining: remaining,
    });
}

/// Stores, alerts on and publishes an incident's change.
pub(crate) fn incident_update(observer: &Observer, update: IncidentUpdate) {
    if !observer.cluster.is_judge() {
        // Another instance tells this story; this one only keeps up.
        return;
    }
    let incident = update.incident().clone();
    let (kind, alert) = match update {
        IncidentUpdate::Opened(incident) => {
            tracing::warn!(id = %incident.id, "incident opened: {}", incident.title);
            ("opened", Some(Alert::IncidentOpened(incident)))
        }
        IncidentUpdate::Resolved(incident) => {
            tracing::info!(id = %incident.id, "incident resolved: {}", incident.title);
            ("resolved", Some(Alert::IncidentResolved(incident)))
        }
        IncidentUpdate::Updated { incident, entry } => {
            // Breakers flap during an outage; the timeline keeps every
            // swing, but the team is told only what changes the story.
            let worth_telling = !matches!(
                entry.kind,
                TimelineKind::BreakerOpened | TimelineKind::BreakerClosed
            );
            (
                "updated",
                worth_telling.then_some(Alert::IncidentUpdated {
                    incident,
                    update: entry,
                }),
            )
        }
    };
    if let Some(alert) = alert {
        observer.alerts.send(alert);
    }
    let _ = observer.updates.send(
        serde_json::json!({
            "type": "incident",
            "change": kind,
            "id": incident.id,
            "status": incident.status.as_str(),
            "title": incident.title,
        })
        .to_string(),
    );
    observer.save_incident(incident);
}

/// Incident versions waiting to be written, at most: one per incident, so
/// this only bounds a flood of distinct incidents during a long outage.
const MAX_UNSTORED: usize = 100;

/// The longest wait between two attempts to write.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Writes incidents in the order they changed, so an older copy never
/// overwrites a newer one, retrying until the store takes them: while it
/// is down, only the latest version of each incident waits.
async fn store_incidents(
    observer: Weak<Observer>,
    mut incidents: mpsc::UnboundedReceiver<Incident>,
) {
    let mut unstored: VecDeque<Incident> = VecDeque::new();
    let mut backoff = Duration::from_millis(200);
    loop {
        if unstored.is_empty() {
            match incidents.recv().await {
                Some(incident) => coalesce(&mut unstored, incident),
                None => return,
            }
        }
        while let Ok(incident) = incidents.try_recv() {
            coalesce(&mut unstored, incident);
        }
        let Some(incident) = unstored.front() else {
            continue;
        };
        let Some(observer) = observer.upgrade() else {
            return;
        };
        match bounded(observer.store.save_incident(incident)).await {
            Ok(()) => {
                unstored.pop_front();
                backoff = Duration::from_millis(200);
                continue;
            }
            Err(error) => {
                tracing::warn!(id = %incident.id, waiting = unstored.len(), "cannot store incident, retrying in {backoff:?}: {error}");
            }
        }
        // Not held while waiting: a dropped gateway ends this loop.
        drop(observer);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Queues `incident`'s latest version in place of any older one, at the
/// back (it changed last). Beyond [`MAX_UNSTORED`] the oldest change goes.
fn coalesce(unstored: &mut VecDeque<Incident>, incident: Incident) {
    unstored.retain(|waiting| waiting.id != incident.id);
    unstored.push_back(incident);
    if unstored.len() > MAX_UNSTORED
        && let Some(dropped) = unstored.pop_front()
    {
        tracing::error!(id = %dropped.id, "incident not stored: too many incidents waiting for the store");
    }
}

#[cfg(test)]
mod tests {
    use bulwark::observe::component::ComponentState;
    use bulwark::observe::incident::{Impact, IncidentStatus};

    use super::*;

    fn incident(id: &str, updated_at: i64) -> Incident {
        Incident {
            id: id.into(),
            title: id.into(),
            status: IncidentStatus::Investigating,
            worst: ComponentState::MajorOutage,
            components: Vec::new(),
            started_at: 0,
            updated_at,
            resolved_at: None,
            impact: Impact::default(),
            timeline: Vec::new(),
        }
    }

    #[test]
    fn only_the_latest_version_of_each_incident_waits_in_change_order() {
        let mut unstored = VecDeque::new();
        coalesce(&mut unstored, incident("a", 1));
        coalesce(&mut unstored, incident("b", 2));
        coalesce(&mut unstored, incident("a", 3));
        let waiting: Vec<_> = unstored
            .iter()
            .map(|i| (i.id.as_str(), i.updated_at))
            .collect();
        assert_eq!(waiting, [("b", 2), ("a", 3)]);
        for n in 0..MAX_UNSTORED + 5 {
            coalesce(&mut unstored, incident(&format!("n{n}"), 10));
        }
        assert_eq!(unstored.len(), MAX_UNSTORED);
        assert_eq!(
            unstored.back().map(|i| i.id.clone()),
            Some(format!("n{}", MAX_UNSTORED + 4))
        );
    }
}
