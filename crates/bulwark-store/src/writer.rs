//! The request log's writer: the only way request records reach the
//! database from the request path.
//!
//! A request must never wait on, or fail because of, the log. So `send`
//! only appends to a bounded buffer in memory; when it is full the OLDEST
//! record is dropped and counted, as the newest say most about what is
//! happening now. One task writes batches in single transactions, which is
//! also what SQLite's single writer wants. While the database cannot be
//! reached (down, frozen, connections cut) a batch is retried with backoff
//! and the buffer holds what arrives meanwhile, so the log catches up once
//! the database is back; a database that answers with an error (a missing
//! table) loses the batch, counted, and the task carries on. Retries are
//! harmless: a request id already stored is skipped. The counters are there
//! for metrics and `/admin`: `written + dropped + failed_rows + pending`
//! is every record sent.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bulwark::observe::record::RequestRecord;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use crate::{Store, StoreError};

/// A hung database (a network black hole) must not hold the writer
/// forever: after this the batch counts as unreachable and is retried.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Retries of a batch the database could not be reached for start here
/// and double up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// Records that may wait in the buffer; beyond it the oldest are dropped.
    pub capacity: usize,
    /// Most records written per transaction.
    pub max_batch: usize,
    /// Longest a record waits for its batch to fill before it is written.
    pub flush_every: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            capacity: 10_000,
            max_batch: 500,
            flush_every: Duration::from_secs(1),
        }
    }
}

/// Counters since the writer started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Records committed to the store.
    pub written: u64,
    /// Records dropped from a full buffer (the oldest first), or sent
    /// after the writer ended.
    pub dropped: u64,
    /// Transactions that failed.
    pub failed_batches: u64,
    /// Records lost in failed transactions: the database answered with an
    /// error, or was still unreachable when the writer ended.
    pub failed_rows: u64,
    /// Records accepted and not yet written or lost.
    pub pending: u64,
    /// Batches tried again because the database could not be reached.
    pub retries: u64,
}

#[derive(Debug, Default)]
struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
    failed_batches: AtomicU64,
    failed_rows: AtomicU64,
    pending: AtomicU64,
    retries: AtomicU64,
}

#[derive(Debug, Default)]
struct Queue {
    records: VecDeque<RequestRecord>,
    /// Each waits for one attempt at everything sent before it.
    flushes: Vec<oneshot::Sender<()>>,
    /// The last sender is gone: write what is left and end.
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    counters: Counters,
    queue: Mutex<Queue>,
    wake: Notify,
    capacity: usize,
    max_batch: usize,
    last_error: Mutex<Option<String>>,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding the lock leaves the queue consistent: every
        // change to it is a single push or pop.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Drops the oldest records beyond the capacity.
    fn trim(&self, queue: &mut Queue) {
        let excess = queue.records.len().saturating_sub(self.capacity);
        if excess > 0 {
            queue.records.drain(..excess);
            let c = &self.counters;
            c.dropped.fetch_add(excess as u64, Ordering::Relaxed);
            c.pending.fetch_sub(excess as u64, Ordering::Relaxed);
        }
    }
}

/// Closes the queue when the last `LogSender` goes.
#[derive(Debug)]
struct Closer(Arc<Shared>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.queue().closed = true;
        self.0.wake.notify_one();
    }
}

/// The sending half, cheap to clone into every request handler. When the
/// last clone drops, the writer writes what is left and ends.
#[derive(Debug, Clone)]
pub struct LogSender {
    shared: Arc<Shared>,
    _closer: Arc<Closer>,
}

impl LogSender {
    /// Buffers the record without waiting. Returns false if a record was
    /// dropped to make room (the oldest one, not this one), or this one
    /// because the writer has ended.
    pub fn send(&self, record: RequestRecord) -> bool {
        let c = &self.shared.counters;
        let mut queue = self.shared.queue();
        if queue.closed {
            c.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        queue.records.push_back(record);
        c.pending.fetch_add(1, Ordering::Relaxed);
        let full = queue.records.len() > self.shared.capacity;
        self.shared.trim(&mut queue);
        let batch_ready = queue.records.len() >= self.shared.max_batch;
        drop(queue);
        if batch_ready {
            self.shared.wake.notify_one();
        }
        !full
    }

    /// Waits until everything sent before this call has been tried once:
    /// written, lost, or back in the buffer because the database cannot be
    /// reached (`pending` then says how many wait for it). For tests and
    /// for shutdown, which must not hang on a dead database.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        self.shared.queue().flushes.push(done);
        self.shared.wake.notify_one();
        let _ = wait.await;
    }

    pub fn stats(&self) -> WriterStats {
        let c = &self.shared.counters;
        WriterStats {
            written: c.written.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failed_batches: c.failed_batches.load(Ordering::Relaxed),
            failed_rows: c.failed_rows.load(Ordering::Relaxed),
            pending: c.pending.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
        }
    }

    /// The most recent store error, for an admin page.
    pub fn last_error(&self) -> Option<String> {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

pub struct LogWriter;

impl LogWriter {
    /// Starts the writer task. The handle finishes after the last
    /// `LogSender` is dropped and the remaining records are written.
    pub fn spawn(store: Store, options: WriterOptions) -> (LogSender, JoinHandle<()>) {
        let shared = Arc::new(Shared {
            counters: Counters::default(),
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            capacity: options.capacity.max(1),
            max_batch: options.max_batch.max(1),
            last_error: Mutex::new(None),
        });
        let task = Task {
            store,
            shared: shared.clone(),
            flush_every: options.flush_every.max(Duration::from_millis(1)),
        };
        let sender = LogSender {
            _closer: Arc::new(Closer(shared.clone())),
            shared,
        };
        (sender, tokio::spawn(task.run()))
    }
}

struct Task {
    store: Store,
    shared: Arc<Shared>,
    flush_every: Duration,
}

/// How a batch went.
enum Written {
    Done,
    Lost,
    /// The database could not be reached: the batch is back in the buffer.
    Unreachable,
}

impl Task {
    async fn run(self) {
        // While the database is unreachable: when to try again, and the
        // wait after that.
        let mut retry: Option<(tokio::time::Instant, Duration)> = None;
        loop {
            let wait = match retry {
                Some((at, _)) => at.saturating_duration_since(tokio::time::Instant::now()),
                None => self.flush_every,
            };
            tokio::select! {
                () = self.shared.wake.notified() => {
                    // A full batch does not cut a backoff short; a flush or
                    // the end does.
                    let queue = self.shared.queue();
                    let urgent = !queue.flushes.is_empty() || queue.closed;
                    drop(queue);
                    if retry.is_some_and(|(at, _)| tokio::time::Instant::now() < at) && !urgent {
                        continue;
                    }
                }
                () = tokio::time::sleep(wait) => {}
            }
            let unreachable = self.drain().await;
            retry = match (unreachable, retry) {
                (false, _) => None,
                (true, None) => Some((tokio::time::Instant::now() + FIRST_BACKOFF, FIRST_BACKOFF)),
                (true, Some((_, backoff))) => {
                    let backoff = (backoff * 2).min(MAX_BACKOFF);
                    Some((tokio::time::Instant::now() + backoff, backoff))
                }
            };
            let (flushes, closed) = {
                let mut queue = self.shared.queue();
                (std::mem::take(&mut queue.flushes), queue.closed)
            };
            if closed {
                // Records sent after the drain above, just before the last
                // sender went, get their attempt too; then nothing more can
                // arrive, and whatever the database refused to take is lost.
                if unreachable || self.drain().await {
                    self.give_up();
                }
            }
            for done in flushes {
                let _ = done.send(());
            }
            if closed {
                return;
            }
        }
    }

    /// Writes everything buffered, a batch at a time, until the buffer is
    /// empty or the database cannot be reached (true).
    async fn drain(&self) -> bool {
        loop {
            let batch: Vec<RequestRecord> = {
                let mut queue = self.shared.queue();
                let n = queue.records.len().min(self.shared.max_batch);
                queue.records.drain(..n).collect()
            };
            if batch.is_empty() {
                return false;
            }
            if let Written::Unreachable = self.write(batch).await {
                return true;
            }
        }
    }

    /// The writer ends with the database still unreachable: what is left
    /// is lost, and counted.
    fn give_up(&self) {
        let left = std::mem::take(&mut self.shared.queue().records).len() as u64;
        if left > 0 {
            let c = &self.shared.counters;
            tracing::warn!(
                rows = left,
                "request log rows lost: the database is unreachable and the writer is ending"
            );
            c.failed_rows.fetch_add(left, Ordering::Relaxed);
            c.pending.fetch_sub(left, Ordering::Relaxed);
        }
    }

    async fn write(&self, batch: Vec<RequestRecord>) -> Written {
        let rows = batch.len() as u64;
        let result =
            tokio::time::timeout(WRITE_TIMEOUT, self.store.insert_requests(batch.as_slice())).await;
        let (outcome, error) = match result {
            Ok(Ok(())) => (Written::Done, None),
            Ok(Err(error)) if error.is_unreachable() => (Written::Unreachable, Some(error)),
            Ok(Err(error)) => (Written::Lost, Some(error)),
            Err(_) => (Written::Unreachable, None),
        };
        let c = &self.shared.counters;
        match outcome {
            Written::Done => {
                c.written.fetch_add(rows, Ordering::Relaxed);
                c.pending.fetch_sub(rows, Ordering::Relaxed);
            }
            Written::Lost => {
                let error = error.map(|e| e.to_string()).unwrap_or_default();
                tracing::warn!(%error, rows, "request log batch lost");
                c.failed_batches.fetch_add(1, Ordering::Relaxed);
                c.failed_rows.fetch_add(rows, Ordering::Relaxed);
                c.pending.fetch_sub(rows, Ordering::Relaxed);
                self.set_error(error);
            }
            Written::Unreachable => {
                let error = error.as_ref().map_or_else(
                    || {
                        format!(
                            "writing the request log took longer than {}s; the database is \
                             hung or overloaded",
                            WRITE_TIMEOUT.as_secs()
                        )
                    },
                    StoreError::to_string,
                );
                tracing::warn!(%error, rows, "request log batch kept for a retry");
                c.retries.fetch_add(1, Ordering::Relaxed);
                self.set_error(error);
                // Back at the front, in order; newer records past the
                // capacity push the oldest out.
                let mut queue = self.shared.queue();
                for record in batch.into_iter().rev() {
                    queue.records.push_front(record);
                }
                self.shared.trim(&mut queue);
            }
        }
        outcome
    }

    fn set_error(&self, error: String) {
        *self
            .shared
            .last_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(error);
    }
}
