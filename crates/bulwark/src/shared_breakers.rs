//! Breakers shared between instances: one instance's verdict on a target
//! reaches the others, so that each does not pay its own failures before
//! it stops calling a dead provider.
//!
//! An instance whose breaker opens (or closes after a good probe) publishes
//! it on the `breakers` channel; every instance listens and opens (or
//! closes) its own breaker for that target for the time that is left. A
//! half-open breaker takes a lock in Redis before it lets a probe through,
//! so that N instances send one probe when a break ends, not N. Redis
//! being down changes nothing but that: each breaker then works alone.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::events::EventBus;
use crate::resilience::breaker::{BreakerState, Transition};
use crate::route::TargetState;
use crate::shared::{Shared, SharedError};

const CHANNEL: &str = "breakers";

/// How often a listener whose engine is gone notices it.
const CHECK_OWNER: Duration = Duration::from_secs(5);

/// What one instance tells the others about a target's breaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Message {
    label: String,
    state: String,
    #[serde(default)]
    open_for_ms: u64,
    instance: String,
}

/// The targets this process has breakers for, by label, across config
/// reloads: a reload builds a new route table but keeps the board, so the
/// listener always reaches the breakers requests use.
#[derive(Debug)]
pub struct BreakerBoard {
    shared: Shared,
    events: EventBus,
    targets: Mutex<HashMap<String, Weak<TargetState>>>,
}

impl BreakerBoard {
    /// A board, and the task that applies the other instances' messages to
    /// it for as long as the board lives.
    pub fn start(shared: Shared, events: EventBus) -> Arc<BreakerBoard> {
        let board = Arc::new(BreakerBoard {
            shared: shared.clone(),
            events,
            targets: Mutex::new(HashMap::new()),
        });
        let mut messages = shared.subscribe(CHANNEL);
        let owner = Arc::downgrade(&board);
        tokio::spawn(async move {
            loop {
                let message = tokio::time::timeout(CHECK_OWNER, messages.recv()).await;
                let Some(board) = owner.upgrade() else {
                    return;
                };
                match message {
                    Ok(Some(payload)) => board.apply(&payload),
                    Ok(None) => return,
                    Err(_) => {}
                }
            }
        });
        board
    }

    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Makes `state` reachable by the other instances' messages.
    pub fn register(&self, label: &str, state: &Arc<TargetState>) {
        let mut targets = self.targets.lock().unwrap_or_else(PoisonError::into_inner);
        if targets.len() >= 2 * crate::route::MAX_TARGET_STATES {
            targets.retain(|_, state| state.strong_count() > 0);
        }
        targets.insert(label.to_string(), Arc::downgrade(state));
    }

    fn apply(&self, payload: &[u8]) {
        let Ok(message) = serde_json::from_slice::<Message>(payload) else {
            return;
        };
        if message.instance == self.shared.instance() {
            return;
        }
        let state = self
            .targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&message.label)
            .and_then(Weak::upgrade);
        let Some(state) = state else {
            return;
        };
        let now = Instant::now();
        let transition = match message.state.as_str() {
            "open" => {
                let until = now + Duration::from_millis(message.open_for_ms);
                state.with_breaker(|b| b.force_open(now, until))
            }
            "closed" => state.with_breaker(|b| b.force_close(now)),
            _ => None,
        };
        if transition.is_some() {
            tracing::info!(target = %message.label, from = %message.instance, state = %message.state, "breaker follows another instance");
        }
        self.events.breaker(&message.label, transition);
    }
}

/// Tells the other instances of a verdict this instance reached: opened
/// (for how long) or closed after a good probe. In the background: the
/// request that caused it does not wait on Redis.
pub(crate) fn announce(shared: &Shared, label: &str, transition: Transition) {
    let (state, open_for) = match transition.to {
        BreakerState::Open => ("open", transition.open_for.unwrap_or_default()),
        BreakerState::Closed => ("closed", Duration::ZERO),
        BreakerState::HalfOpen => return,
    };
    let message = Message {
        label: label.to_string(),
        state: state.to_string(),
        open_for_ms: u64::try_from(open_for.as_millis()).unwrap_or(u64::MAX),
        instance: shared.instance().to_string(),
    };
    let Ok(payload) = serde_json::to_vec(&message) else {
        return;
    };
    let shared = shared.clone();
    tokio::spawn(async move {
        if let Err(error) = shared.publish(CHANNEL, payload).await {
            tracing::debug!("breaker change not shared: {error}");
        }
    });
}

const TAKE_PROBE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0
";

const RELEASE_PROBE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

static TAKE_PROBE_SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(TAKE_PROBE));
static RELEASE_PROBE_SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(RELEASE_PROBE));

fn probe_key(shared: &Shared, label: &str) -> String {
    shared.key(&format!("probe:{label}"))
}

/// Whether this instance may send the half-open probe for `label`: the
/// lock is its own for `ttl` (or until it reports the verdict).
pub(crate) async fn take_probe(
    shared: &Shared,
    label: &str,
    ttl: Duration,
) -> Result<bool, SharedError> {
    let script = &*TAKE_PROBE_SCRIPT;
    let key = probe_key(shared, label);
    let instance = shared.instance().to_string();
    let ttl = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
    shared
        .run(|mut c| async move {
            script
                .key(key)
                .arg(instance)
                .arg(ttl)
                .invoke_async::<i64>(&mut c)
                .await
        })
        .await
        .map(|taken| taken == 1)
}

/// Gives the probe lock back once the probe has its verdict, so the next
/// half-open round (perhaps sooner than the lock's expiry) finds it free.
pub(crate) fn release_probe(shared: &Shared, label: &str) {
    let shared = shared.clone();
    let key = probe_key(&shared, label);
    tokio::spawn(async move {
        let script = &*RELEASE_PROBE_SCRIPT;
        let instance = shared.instance().to_string();
        let _ = shared
            .run(|mut c| async move {
                script
                    .key(key)
                    .arg(instance)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await;
    });
}
