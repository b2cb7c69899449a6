//! Every instance's observations for every other: what the health tracker
//! needs of each finished request, and breaker flips, sent in batches on a
//! channel so that each tracker sees all the traffic. That keeps the judge
//! right whichever instance the requests hit, and a new judge warm.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bulwark::observe::UnixMs;
use bulwark::observe::incident::IncidentStatus;
use bulwark::observe::record::RequestRecord;
use bulwark::resilience::breaker::BreakerState;
use serde::{Deserialize, Serialize};

use super::super::{Observer, watch};

pub(super) const CHANNEL: &str = "health:observed";

/// How often the batch goes out: well under an evaluation interval.
const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// Records waiting beyond this are dropped: under a flood the others'
/// trackers see a sample, which judges health just as well.
pub(super) const MAX_WAITING: usize = 4096;

#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Batch {
    pub from: String,
    #[serde(default)]
    pub records: Vec<RequestRecord>,
    #[serde(default)]
    pub breakers: Vec<Flip>,
    #[serde(default)]
    pub admin: Vec<AdminWord>,
}

/// What an admin said through one instance's API, for all of them: the
/// judge writes an annotation into the incident, and every tracker takes a
/// maintenance switch, so that it shows whichever instance judges.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub(crate) enum AdminWord {
    Annotation {
        at: UnixMs,
        status: Option<IncidentStatus>,
        message: Option<String>,
    },
    Maintenance {
        at: UnixMs,
        component: String,
        on: bool,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Flip {
    pub at: UnixMs,
    pub target: String,
    pub from: String,
    pub to: String,
}

/// Only what the tracker reads: the client's texts and the body stay home
/// (and are not even copied, since this runs as each request finishes).
pub(super) fn compact(record: &RequestRecord) -> RequestRecord {
    RequestRecord {
        id: String::new(),
        client_request_id: None,
        at: record.at,
        route: record.route.clone(),
        client_format: String::new(),
        stream: record.stream,
        status: record.status,
        error_class: record.error_class.clone(),
        target: record.target.clone(),
        fallback: record.fallback,
        cache: record.cache.clone(),
        degraded: record.degraded.clone(),
        dropped: Vec::new(),
        latency_ms: record.latency_ms,
        first_token_ms: record.first_token_ms,
        input_tokens: record.input_tokens,
        output_tokens: record.output_tokens,
        key_id: None,
        request_body: None,
        attempts: record.attempts.clone(),
    }
}

fn breaker_state(text: &str) -> Option<BreakerState> {
    [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
    ]
    .into_iter()
    .find(|s| s.as_str() == text)
}

pub(super) fn spawn(observer: &Arc<Observer>) {
    let Some(shared) = observer.cluster.shared().cloned() else {
        return;
    };
    let messages = shared.subscribe(CHANNEL);
    tokio::spawn(send_forever(Arc::downgrade(observer)));
    tokio::spawn(receive_forever(
        Arc::downgrade(observer),
        shared.instance().to_string(),
        messages,
    ));
}

async fn send_forever(observer: Weak<Observer>) {
    let mut ticks = tokio::time::interval(FLUSH_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Drops told so far: told as they grow, not every flush.
    let mut logged = 0;
    loop {
        ticks.tick().await;
        let Some(observer) = observer.upgrade() else {
            return;
        };
        let Some(shared) = observer.cluster.shared().cloned() else {
            return;
        };
        let (records, breakers, admin) = observer.cluster.take_waiting();
        if records.is_empty() && breakers.is_empty() && admin.is_empty() {
            continue;
        }
        if !shared.is_up() {
            // Nobody could hear them; they would only be stale later.
            continue;
        }
        let (messages, dropped) =
            super::split::messages(shared.instance(), records, breakers, admin);
        let total = observer.cluster.count_dropped(dropped);
        if total > logged {
            tracing::warn!(
                dropped = total - logged,
                total,
                "health observations not shared (too many waiting, or too large for a message)"
            );
            logged = total;
        }
        for payload in messages {
            if shared.publish(CHANNEL, payload).await.is_err() {
                break;
            }
        }
    }
}

async fn receive_forever(
    observer: Weak<Observer>,
    me: String,
    mut messages: tokio::sync::mpsc::Receiver<Vec<u8>>,
) {
    while let Some(message) = messages.recv().await {
        let Some(observer) = observer.upgrade() else {
            return;
        };
        let Ok(batch) = serde_json::from_slice::<Batch>(&message) else {
            tracing::debug!("a health batch that is not one: ignored");
            continue;
        };
        if batch.from == me {
            continue;
        }
        let mut updates = Vec::new();
        {
            let mut health = observer.health();
            for record in &batch.records {
                updates.extend(health.observe(record));
            }
            for flip in &batch.breakers {
                let (Some(from), Some(to)) = (breaker_state(&flip.from), breaker_state(&flip.to))
                else {
                    continue;
                };
                updates.extend(health.on_breaker(flip.at, &flip.target, from, to));
            }
            for word in batch.admin {
                match word {
                    AdminWord::Annotation {
                        at,
                        status,
                        message,
                    } => {
                        if observer.cluster.is_judge() {
                            updates.extend(health.annotate(at, status, message));
                        }
                    }
                    AdminWord::Maintenance { at, component, on } => {
                        if let Some(change) = health.set_maintenance(at, &component, on) {
                            observer.metrics.set_component_state(
                                &change.name,
                                change.kind,
                                change.to,
                            );
                        }
                    }
                }
            }
        }
        for update in updates {
            watch::incident_update(&observer, update);
        }
    }
}

#[cfg(test)]
mod tests {
    use bulwark::observe::record::AttemptRecord;

    use super::*;

    #[test]
    fn a_compact_record_keeps_what_health_reads_and_nothing_of_the_client() {
        let record = RequestRecord {
            id: "req-1".into(),
            client_request_id: Some("mine".into()),
            at: 1_000,
            route: "chat".into(),
            client_format: "openai".into(),
            status: 200,
            target: Some("b/m".into()),
            fallback: true,
            degraded: Some("stale-cache".into()),
            dropped: vec!["logprobs".into()],
            first_token_ms: Some(120.0),
            key_id: Some("team-a".into()),
            request_body: Some("{\"secret\": true}".into()),
            attempts: vec![AttemptRecord {
                target: "a/m".into(),
                at: 1_000,
                status: Some(503),
                error_class: Some("server".into()),
                ..AttemptRecord::default()
            }],
            ..RequestRecord::default()
        };
        let compact = compact(&record);
        assert_eq!(compact.outcome(), record.outcome());
        assert_eq!(compact.is_good(), record.is_good());
        assert_eq!(compact.attempts, record.attempts);
        assert_eq!((compact.at, &compact.route), (1_000, &record.route));
        assert_eq!(compact.request_body, None);
        assert_eq!(compact.key_id, None);
        assert_eq!(compact.client_request_id, None);
        assert!(compact.id.is_empty() && compact.dropped.is_empty());
        let Ok(text) = serde_json::to_string(&Batch {
            from: "x".into(),
            records: vec![compact],
            ..Batch::default()
        }) else {
            panic!("a batch serializes");
        };
        assert!(!text.contains("secret") && !text.contains("team-a"));
    }
}
