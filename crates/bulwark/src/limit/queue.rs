//! The admission queue of a route: at most `max_concurrency` requests run
//! at once; the rest wait in order of priority class, then arrival. The
//! queue is bounded, and a request is shed at once (rather than left to
//! wait in vain) when the expected wait would take it past its deadline.
//! When the queue is full, a newcomer of higher priority takes the place
//! of the lowest-priority waiter, so under overload low priority sheds first.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Priority {
    High,
    #[default]
    Normal,
    Low,
}

impl Priority {
    pub fn parse(text: &str) -> Option<Priority> {
        match text {
            "high" => Some(Priority::High),
            "normal" => Some(Priority::Normal),
            "low" => Some(Priority::Low),
            _ => None,
        }
    }
}

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shed {
    /// When it would be worth trying again.
    pub retry_after: Duration,
}

#[derive(Debug)]
struct State {
    max_concurrency: usize,
    capacity: usize,
    running: usize,
    next_seq: u64,
    /// (priority, arrival) -> the waiter's wake-up.
    waiting: BTreeMap<(Priority, u64), oneshot::Sender<Result<(), Shed>>>,
    /// Seconds per request, smoothed: what a place in the queue costs.
    service_time: f64,
}

#[derive(Debug, Clone)]
pub struct AdmissionQueue {
    state: Arc<Mutex<State>>,
}

/// A running request's place; dropping it lets the next one in.
#[derive(Debug)]
pub struct Admitted {
    state: Arc<Mutex<State>>,
    started: Instant,
}

/// Until measured, a request is assumed to take this long.
const INITIAL_SERVICE_TIME: f64 = 1.0;

impl AdmissionQueue {
    pub fn new(max_concurrency: usize, capacity: usize) -> Self {
        AdmissionQueue {
            state: Arc::new(Mutex::new(State {
                max_concurrency: max_concurrency.max(1),
                capacity,
                running: 0,
                next_seq: 0,
                waiting: BTreeMap::new(),
                service_time: INITIAL_SERVICE_TIME,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Requests running and waiting.
    pub fn depth(&self) -> (usize, usize) {
        let state = self.lock();
        (state.running, state.waiting.len())
    }

    /// Admits the request now, or queues it until it can run, or sheds it.
    pub async fn admit(&self, priority: Priority, deadline: Instant) -> Result<Admitted, Shed> {
        let (seq, receiver) = {
            let mut state = self.lock();
            if state.running < state.max_concurrency && state.waiting.is_empty() {
                state.running += 1;
                return Ok(Admitted {
                    state: Arc::clone(&self.state),
                    started: Instant::now(),
                });
            }
            // The wait ahead: everyone of this priority or higher, served
            // `max_concurrency` at a time.
            let ahead = state.waiting.range(..(priority, u64::MAX)).count() + 1;
            let expected = Duration::from_secs_f64(
                state.service_time * ahead as f64 / state.max_concurrency as f64,
            );
            let now = Instant::now();
            if now + expected > deadline {
                return Err(Shed {
                    retry_after: expected,
                });
            }
            if state.waiting.len() >= state.capacity {
                // Full: the newcomer takes the place of a lower-priority waiter.
                let lowest = state.waiting.keys().next_back().copied();
                match lowest {
                    Some(key) if key.0 > priority => {
                        if let Some(evicted) = state.waiting.remove(&key) {
                            let _ = evicted.send(Err(Shed {
                                retry_after: expected,
                            }));
                        }
                    }
                    _ => {
                        return Err(Shed {
                            retry_after: expected,
                        });
                    }
                }
            }
            let seq = state.next_seq;
            state.next_seq += 1;
            let (sender, receiver) = oneshot::channel();
            state.waiting.insert((priority, seq), sender);
            (seq, receiver)
        };
        // Leaving the queue (deadline, or the caller gave up) must free the place.
        let guard = Waiting {
            queue: self,
            key: (priority, seq),
        };
        let outcome = match tokio::time::timeout_at(deadline, receiver).await {
            Ok(Ok(Ok(()))) => Ok(Admitted {
                state: Arc::clone(&self.state),
                started: Instant::now(),
            }),
            Ok(Ok(Err(shed))) => Err(shed),
            // The sender went away without a word: only on shutdown.
            Ok(Err(_)) => Err(Shed {
                retry_after: Duration::from_secs(1),
            }),
            Err(_) => Err(Shed {
                retry_after: Duration::from_secs_f64(self.lock().service_time),
            }),
        };
        drop(guard);
        outcome
    }
}

/// Removes a waiter that stopped waiting. If it had just been let in, it
/// hands its place on.
struct Waiting<'a> {
    queue: &'a AdmissionQueue,
    key: (Priority, u64),
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut state = self.queue.lock();
        state.waiting.remove(&self.key);
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let took = self.started.elapsed().as_secs_f64();
        state.service_time = 0.8 * state.service_time + 0.2 * took;
        state.running -= 1;
        // The place goes to the first waiter still waiting.
        while let Some((_, next)) = state.waiting.pop_first() {
            if next.send(Ok(())).is_ok() {
                state.running += 1;
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    #[tokio::test(start_paused = true)]
    async fn priority_then_arrival_order() {
        let queue = AdmissionQueue::new(1, 10);
        let running = queue.admit(Priority::Normal, far()).await;
        assert!(running.is_ok());
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, priority) in [
            ("low", Priority::Low),
            ("normal-1", Priority::Normal),
            ("high", Priority::High),
            ("normal-2", Priority::Normal),
        ] {
            let queue = queue.clone();
            let order = Arc::clone(&order);
            tasks.push(tokio::spawn(async move {
                if let Ok(admitted) = queue.admit(priority, far()).await {
                    order
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(name);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    drop(admitted);
                }
            }));
            tokio::task::yield_now().await;
        }
        assert_eq!(queue.depth(), (1, 4));
        drop(running);
        for task in tasks {
            let _ = task.await;
        }
        let order = order.lock().unwrap_or_else(PoisonError::into_inner).clone();
        assert_eq!(order, ["high", "normal-1", "normal-2", "low"]);
        assert_eq!(queue.depth(), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hopeless_wait_is_shed_at_once() {
        let queue = AdmissionQueue::new(1, 10);
        let _running = queue.admit(Priority::Normal, far()).await;
        // Nothing measured yet: a place costs a second; half a second is too little.
        let started = Instant::now();
        let shed = queue
            .admit(
                Priority::Normal,
                Instant::now() + Duration::from_millis(500),
            )
            .await;
        assert_eq!(
            shed.err().map(|s| s.retry_after),
            Some(Duration::from_secs(1))
        );
        assert_eq!(started.elapsed(), Duration::ZERO, "shed without waiting");
    }

    #[tokio::test(start_paused = true)]
    async fn the_queue_is_bounded_and_low_priority_sheds_first() {
        let queue = AdmissionQueue::new(1, 2);
        let _running = queue.admit(Priority::Normal, far()).await;
        let spawn = |priority| {
            let queue = queue.clone();
            tokio::spawn(async move { queue.admit(priority, far()).await.is_ok() })
        };
        let low = spawn(Priority::Low);
        tokio::task::yield_now().await;
        let first = spawn(Priority::Normal);
        tokio::task::yield_now().await;
        assert_eq!(queue.depth(), (1, 2));
        // Full: a normal newcomer takes the low waiter's place...
        let second = spawn(Priority::Normal);
        tokio::task::yield_now().await;
        assert!(
            !low.await.unwrap_or(true),
            "the low-priority waiter should have been shed"
        );
        assert_eq!(queue.depth(), (1, 2));
        // ...but with only its equals waiting, another is turned away.
        assert!(queue.admit(Priority::Normal, far()).await.is_err());
        assert!(queue.admit(Priority::Low, far()).await.is_err());
        assert_eq!(queue.depth(), (1, 2));
        first.abort();
        second.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_that_gives_up_leaves_the_queue() {
        let queue = AdmissionQueue::new(1, 10);
        let running = queue.admit(Priority::Normal, far()).await;
        let deadline = Instant::now() + Duration::from_secs(2);
        let waiter = {
            let queue = queue.clone();
            tokio::spawn(async move { queue.admit(Priority::Normal, deadline).await.is_ok() })
        };
        tokio::task::yield_now().await;
        assert_eq!(queue.depth(), (1, 1));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(!waiter.await.unwrap_or(true));
        assert_eq!(queue.depth(), (1, 0));
        drop(running);
        assert_eq!(queue.depth(), (0, 0));
    }
}
