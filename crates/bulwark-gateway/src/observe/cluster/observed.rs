//! Every instance's observations for every other: what the health tracker
//! needs of each finished request, and breaker flips, sent in batches on a
//! channel so that each tracker sees all the traffic. That keeps the judge
//! right whichever instance the requests hit, and a new judge warm.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bulwark::observe::UnixMs;
use bulwark::observe::record::RequestRecord;
use bulwark::resilience::breaker::BreakerState;
use serde::{Deserialize, Serialize};

use super::super::{Observer, watch};

pub(super) const CHANNEL: &str = "health:observed";

/// How often the batch goes out: well under an evaluation interval.
const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// Records per message, keeping each well under the subscriber's cap.
const CHUNK: usize = 100;

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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Flip {
    pub at: UnixMs,
    pub target: String,
    pub from: String,
    pub to: String,
}

/// Only what the tracker reads: the client's texts and the body stay home.
pub(super) fn compact(record: &RequestRecord) -> RequestRecord {
    RequestRecord {
        id: String::new(),
        client_request_id: None,
        client_format: String::new(),
        dropped: Vec::new(),
        key_id: None,
        request_body: None,
        ..record.clone()
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
    loop {
        ticks.tick().await;
        let Some(observer) = observer.upgrade() else {
            return;
        };
        let Some(shared) = observer.cluster.shared().cloned() else {
            return;
        };
        let (records, breakers) = observer.cluster.take_waiting();
        if records.is_empty() && breakers.is_empty() {
            continue;
        }
        if !shared.is_up() {
            // Nobody could hear them; they would only be stale later.
            continue;
        }
        let mut chunks: Vec<Vec<RequestRecord>> =
            records.chunks(CHUNK).map(<[_]>::to_vec).collect();
        if chunks.is_empty() {
            chunks.push(Vec::new());
        }
        let mut breakers = Some(breakers);
        for records in chunks {
            let batch = Batch {
                from: shared.instance().to_string(),
                records,
                breakers: breakers.take().unwrap_or_default(),
            };
            let Ok(payload) = serde_json::to_vec(&batch) else {
                continue;
            };
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
        }
        for update in updates {
            watch::incident_update(&observer, update);
        }
    }
}
