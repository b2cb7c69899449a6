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
        // Leaving the queue (deadline, or the caller gave up) must free the
        // place, and hand on a slot that was granted but never taken. The
        // guard owns the receiver so that it can still look for that grant.
        let mut guard = Waiting {
            queue: self,
            key: (priority, seq),
            receiver,
        };
        let outcome = match tokio::time::timeout_at(deadline, &mut guard.receiver).await {
            // Taken: the receiver is spent, so the guard finds no grant left.
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

/// Removes a waiter that stopped waiting: it gave up, its deadline passed,
/// or its future was dropped (the client went away). If it had been let in
/// but never took its place, the place is handed on, or the route would
/// run one short for good.
struct Waiting<'a> {
    queue: &'a AdmissionQueue,
    key: (Priority, u64),
    receiver: oneshot::Receiver<Result<(), Shed>>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut state = self.queue.lock();
        if state.waiting.remove(&self.key).is_some() {
            // Still queued: nothing was granted, and now nothing can be.
            return;
        }
        // Out of the queue: it was let in or shed. Both answers are sent
        // under the lock held here, so whichever it was is in the channel
        // (unless the waiter already took it, which leaves it empty).
        if let Ok(Ok(())) = self.receiver.try_recv() {
            state.hand_on();
        }
    }
}

impl State {
    /// A running place is free: it goes to the first waiter still waiting,
    /// or back to the pool.
    fn hand_on(&mut self) {
        self.running -= 1;
        while let Some((_, next)) = self.waiting.pop_first() {
            if next.send(Ok(())).is_ok() {
                self.running += 1;
                break;
            }
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let took = self.started.elapsed().as_secs_f64();
        state.service_time = 0.8 * state.service_time + 0.2 * took;
        state.hand_on();
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

    /// Polls a future once, as the runtime would after a wake-up.
    async fn poll_once<F: Future + Unpin>(future: &mut F) -> std::task::Poll<F::Output> {
        std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut *future).poll(cx)))
            .await
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_handed_to_a_waiter_that_is_gone_is_handed_on() {
        let queue = AdmissionQueue::new(1, 10);
        let running = queue.admit(Priority::Normal, far()).await;
        assert!(running.is_ok());
        let mut waiter = Box::pin(queue.admit(Priority::Normal, far()));
        assert!(poll_once(&mut waiter).await.is_pending());
        let mut next = Box::pin(queue.admit(Priority::Normal, far()));
        assert!(poll_once(&mut next).await.is_pending());
        assert_eq!(queue.depth(), (1, 2));
        // The slot goes to the first waiter, whose client leaves before
        // its future is polled again...
        drop(running);
        assert_eq!(queue.depth(), (1, 1));
        drop(waiter);
        // ...so it goes on to the next one.
        assert_eq!(queue.depth(), (1, 0));
        match poll_once(&mut next).await {
            std::task::Poll::Ready(Ok(admitted)) => drop(admitted),
            other => panic!("the next waiter should be in: {other:?}"),
        }
        assert_eq!(queue.depth(), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_task_does_not_keep_its_slot() {
        let queue = AdmissionQueue::new(1, 10);
        let running = queue.admit(Priority::Normal, far()).await;
        let waiter = {
            let queue = queue.clone();
            tokio::spawn(async move { queue.admit(Priority::Normal, far()).await.is_ok() })
        };
        tokio::task::yield_now().await;
        assert_eq!(queue.depth(), (1, 1));
        // Handed over, then aborted before the task runs again.
        drop(running);
        waiter.abort();
        assert!(
            waiter.await.is_err(),
            "the waiter should have been cancelled"
        );
        assert_eq!(queue.depth(), (0, 0));
        // The slot is back: a newcomer is in at once, even with no time to wait.
        let started = Instant::now();
        let admitted = queue.admit(Priority::Normal, Instant::now()).await;
        assert!(admitted.is_ok());
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert_eq!(queue.depth(), (1, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_then_freed_the_slot_goes_back_to_the_pool() {
        let queue = AdmissionQueue::new(1, 10);
        let running = queue.admit(Priority::Normal, far()).await;
        let mut waiter = Box::pin(queue.admit(Priority::Normal, far()));
        assert!(poll_once(&mut waiter).await.is_pending());
        drop(waiter);
        assert_eq!(queue.depth(), (1, 0));
        drop(running);
        assert_eq!(queue.depth(), (0, 0));
        assert!(queue.admit(Priority::Normal, Instant::now()).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_displaced_waiter_that_is_gone_holds_nothing() {
        let queue = AdmissionQueue::new(1, 1);
        let running = queue.admit(Priority::Normal, far()).await;
        let mut low = Box::pin(queue.admit(Priority::Low, far()));
        assert!(poll_once(&mut low).await.is_pending());
        // A high newcomer takes the low waiter's place; the low one's
        // client leaves before hearing it was shed.
        let mut high = Box::pin(queue.admit(Priority::High, far()));
        assert!(poll_once(&mut high).await.is_pending());
        drop(low);
        assert_eq!(queue.depth(), (1, 1));
        drop(running);
        match poll_once(&mut high).await {
            std::task::Poll::Ready(Ok(admitted)) => drop(admitted),
            other => panic!("the high waiter should be in: {other:?}"),
        }
        assert_eq!(queue.depth(), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_past_its_deadline_hands_on_a_late_grant() {
        let queue = AdmissionQueue::new(1, 10);
        let running = queue.admit(Priority::Normal, far()).await;
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut waiter = Box::pin(queue.admit(Priority::Normal, deadline));
        assert!(poll_once(&mut waiter).await.is_pending());
        tokio::time::advance(Duration::from_secs(3)).await;
        // The slot is granted after the deadline passed but before the
        // waiter noticed; whichever way it ends, the slot is not lost.
        drop(running);
        if let std::task::Poll::Ready(Ok(admitted)) = poll_once(&mut waiter).await {
            drop(admitted);
        }
        drop(waiter);
        assert_eq!(queue.depth(), (0, 0));
    }

    mod property {
        use super::super::*;
        use proptest::prelude::*;
        use std::future::Future;
        use std::pin::Pin;
        use std::task::Poll;

        type Waiter = Pin<Box<dyn Future<Output = Result<Admitted, Shed>>>>;

        #[derive(Debug, Clone)]
        enum Op {
            /// A request arrives, with this priority and this many
            /// milliseconds to its deadline.
            Admit(Priority, u64),
            /// A running request finishes (index into those running).
            Finish(usize),
            /// A waiting request's client leaves (index into those waiting).
            Cancel(usize),
            /// Time passes, without polling the waiters first.
            Advance(u64),
            /// A running request finishes and a waiter's client leaves, with
            /// nothing polled in between: the grant may go to the one leaving.
            FinishThenCancel(usize, usize),
        }

        fn priority() -> impl Strategy<Value = Priority> {
            prop_oneof![
                Just(Priority::High),
                Just(Priority::Normal),
                Just(Priority::Low)
            ]
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (priority(), 0u64..5_000).prop_map(|(p, ms)| Op::Admit(p, ms)),
                3 => any::<usize>().prop_map(Op::Finish),
                3 => any::<usize>().prop_map(Op::Cancel),
                1 => (0u64..3_000).prop_map(Op::Advance),
                2 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::FinishThenCancel(a, b)),
            ]
        }

        /// Polls every waiter until none moves: those let in join `running`,
        /// those shed leave.
        async fn settle(waiting: &mut Vec<Waiter>, running: &mut Vec<Admitted>) {
            loop {
                let mut moved = false;
                let mut index = 0;
                while index < waiting.len() {
                    let polled =
                        std::future::poll_fn(|cx| Poll::Ready(waiting[index].as_mut().poll(cx)))
                            .await;
                    match polled {
                        Poll::Pending => index += 1,
                        Poll::Ready(outcome) => {
                            drop(waiting.remove(index));
                            if let Ok(admitted) = outcome {
                                running.push(admitted);
                            }
                            moved = true;
                        }
                    }
                }
                if !moved {
                    return;
                }
            }
        }

        fn pick<T>(items: &mut Vec<T>, index: usize) -> Option<T> {
            if items.is_empty() {
                None
            } else {
                let at = index % items.len();
                Some(items.remove(at))
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]
            #[test]
            fn no_slot_is_ever_lost(
                max in 1usize..4,
                capacity in 0usize..5,
                ops in proptest::collection::vec(op(), 1..60),
            ) {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .start_paused(true)
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let queue = AdmissionQueue::new(max, capacity);
                    let mut waiting: Vec<Waiter> = Vec::new();
                    let mut running: Vec<Admitted> = Vec::new();
                    for op in ops {
                        match op {
                            Op::Admit(priority, ms) => {
                                let queue = queue.clone();
                                let deadline = Instant::now() + Duration::from_millis(ms);
                                waiting.push(Box::pin(async move {
                                    queue.admit(priority, deadline).await
                                }));
                            }
                            Op::Finish(index) => drop(pick(&mut running, index)),
                            Op::Cancel(index) => drop(pick(&mut waiting, index)),
                            Op::Advance(ms) => {
                                tokio::time::advance(Duration::from_millis(ms)).await;
                            }
                            Op::FinishThenCancel(finish, cancel) => {
                                drop(pick(&mut running, finish));
                                drop(pick(&mut waiting, cancel));
                            }
                        }
                        let (counted, _) = queue.depth();
                        assert!(counted <= max, "{counted} running, at most {max}");
                        settle(&mut waiting, &mut running).await;
                        let (counted, queued) = queue.depth();
                        assert!(counted <= max, "{counted} running, at most {max}");
                        assert_eq!(counted, running.len(), "every counted slot is held");
                        assert!(
                            queued == 0 || counted == max,
                            "{queued} waiting while only {counted} of {max} run",
                        );
                    }
                    drop(waiting);
                    assert_eq!(queue.depth().1, 0);
                    drop(running);
                    assert_eq!(queue.depth(), (0, 0));
                });
            }
        }
    }
}
