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
            "open" => state.with_breaker(|b| {
                let until = open_until(now, message.open_for_ms, b.max_ejection())?;
                b.force_open(now, until)
            }),
            "closed" => state.with_breaker(|b| b.force_close(now)),
            _ => None,
        };
        if transition.is_some() {
            tracing::info!(target = %message.label, from = %message.instance, state = %message.state, "breaker follows another instance");
        }
        self.events.breaker(&message.label, transition);
    }
}

/// When a break another instance announced ends here: never later than
/// this breaker would open for on its own, whatever the message says (a
/// huge value from a bug or a foreign publisher must not open it for
/// centuries, nor overflow the clock).
fn open_until(now: Instant, open_for_ms: u64, max_ejection: Duration) -> Option<Instant> {
    now.checked_add(Duration::from_millis(open_for_ms).min(max_ejection))
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

const RELEASE_PROBE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

static RELEASE_PROBE_SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(RELEASE_PROBE));

fn probe_key(shared: &Shared, label: &str) -> String {
    shared.key(&format!("probe:{label}"))
}

/// How often a lock that could not be given back is tried again.
const RELEASE_RETRY: Duration = Duration::from_secs(1);

/// The probe lock of one half-open round: the value in Redis names this
/// instance and this round, so that only the round that took it gives it
/// back (a late verdict of an earlier round must not free a later one's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProbeLock {
    token: String,
    ttl: Duration,
}

impl ProbeLock {
    pub(crate) fn new(shared: &Shared, ttl: Duration) -> ProbeLock {
        ProbeLock {
            token: format!("{}:{:016x}", shared.instance(), fastrand::u64(..)),
            ttl,
        }
    }
}

/// Whether this round may send the half-open probe for `label`: the lock
/// is its own for its ttl (or until it reports the verdict). On an error
/// other than `Down`, Redis may have taken the lock all the same: the
/// caller should give it back with its verdict, like a lock it holds.
pub(crate) async fn take_probe(
    shared: &Shared,
    label: &str,
    lock: &ProbeLock,
) -> Result<bool, SharedError> {
    let key = probe_key(shared, label);
    let token = lock.token.clone();
    let ttl = u64::try_from(lock.ttl.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    shared
        .run(|mut c| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(token)
                .arg("NX")
                .arg("PX")
                .arg(ttl)
                .query_async::<Option<String>>(&mut c)
                .await
        })
        .await
        .map(|set| set.is_some())
}

/// Gives the probe lock back once the probe has its verdict, so the next
/// half-open round (perhaps sooner than the lock's expiry) finds it free.
/// While Redis cannot be asked, it tries again until the lock would have
/// expired anyway: otherwise the other instances would skip a healthy
/// target for the whole probe timeout.
pub(crate) fn release_probe(shared: &Shared, label: &str, lock: ProbeLock) {
    let shared = shared.clone();
    let key = probe_key(&shared, label);
    tokio::spawn(async move {
        let until = Instant::now() + lock.ttl;
        let script = &*RELEASE_PROBE_SCRIPT;
        loop {
            let (key, token) = (key.clone(), lock.token.clone());
            let released =
                shared
                    .run(|mut c| async move {
                        script.key(key).arg(token).invoke_async::<i64>(&mut c).await
                    })
                    .await;
            if released.is_ok() || Instant::now() + RELEASE_RETRY >= until {
                return;
            }
            tokio::time::sleep(RELEASE_RETRY).await;
        }
    });
}

#[cfg(test)]
#[path = "shared_breakers_tests.rs"]
mod tests;
