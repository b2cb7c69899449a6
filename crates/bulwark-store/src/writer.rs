//! The request log's writer: the only way request records reach the
//! database from the request path.
//!
//! A request must never wait on, or fail because of, the log. So `send`
//! only tries to enqueue (a full queue drops the record and counts it), and
//! one task writes batches in single transactions, which is also what
//! SQLite's single writer wants. Store errors are logged and counted and
//! the task carries on; the counters are there for metrics and `/admin`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bulwark::observe::record::RequestRecord;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::Store;

/// A hung database (a network black hole) must not hold the writer
/// forever: after this the batch counts as failed and the next one starts.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// Records that may wait in the queue; beyond it they are dropped.
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
    /// Records refused because the queue was full (or the writer gone).
    pub dropped: u64,
    /// Transactions that failed.
    pub failed_batches: u64,
    /// Records lost in those failed transactions.
    pub failed_rows: u64,
    /// Records accepted and not yet written or lost.
    pub pending: u64,
}

#[derive(Debug, Default)]
struct Shared {
    written: AtomicU64,
    dropped: AtomicU64,
    failed_batches: AtomicU64,
    failed_rows: AtomicU64,
    pending: AtomicU64,
    last_error: Mutex<Option<String>>,
}

enum Message {
    Record(Box<RequestRecord>),
    /// Answered once everything queued before it has been written or lost.
    Flush(oneshot::Sender<()>),
}

/// The sending half, cheap to clone into every request handler. When the
/// last clone drops, the writer writes what is left and ends.
#[derive(Debug, Clone)]
pub struct LogSender {
    tx: mpsc::Sender<Message>,
    shared: Arc<Shared>,
}

impl LogSender {
    /// Queues the record without waiting; returns false if it was dropped
    /// because the queue is full.
    pub fn send(&self, record: RequestRecord) -> bool {
        // Counted before sending so the writer never sees pending go below
        // zero when it is faster than us.
        self.shared.pending.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(Message::Record(Box::new(record))) {
            Ok(()) => true,
            Err(_) => {
                self.shared.pending.fetch_sub(1, Ordering::Relaxed);
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Waits until everything sent before this call is written (or has
    /// failed): for tests and for shutdown. Unlike `send`, this waits for
    /// room in the queue.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    pub fn stats(&self) -> WriterStats {
        let s = &self.shared;
        WriterStats {
            written: s.written.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            failed_batches: s.failed_batches.load(Ordering::Relaxed),
            failed_rows: s.failed_rows.load(Ordering::Relaxed),
            pending: s.pending.load(Ordering::Relaxed),
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
        let (tx, rx) = mpsc::channel(options.capacity.max(1));
        let shared = Arc::new(Shared::default());
        let task = Task {
            store,
            rx,
            shared: shared.clone(),
            max_batch: options.max_batch.max(1),
            flush_every: options.flush_every.max(Duration::from_millis(1)),
        };
        (LogSender { tx, shared }, tokio::spawn(task.run()))
    }
}

struct Task {
    store: Store,
    rx: mpsc::Receiver<Message>,
    shared: Arc<Shared>,
    max_batch: usize,
    flush_every: Duration,
}

impl Task {
    async fn run(mut self) {
        let mut batch: Vec<RequestRecord> = Vec::with_capacity(self.max_batch);
        let mut ticker = tokio::time::interval(self.flush_every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                message = self.rx.recv() => match message {
                    Some(Message::Record(record)) => {
                        batch.push(*record);
                        if batch.len() >= self.max_batch {
                            self.write(&mut batch).await;
                        }
                    }
                    Some(Message::Flush(done)) => {
                        self.write(&mut batch).await;
                        let _ = done.send(());
                    }
                    None => {
                        self.write(&mut batch).await;
                        return;
                    }
                },
                _ = ticker.tick() => self.write(&mut batch).await,
            }
        }
    }

    async fn write(&self, batch: &mut Vec<RequestRecord>) {
        if batch.is_empty() {
            return;
        }
        let rows = batch.len() as u64;
        let result =
            tokio::time::timeout(WRITE_TIMEOUT, self.store.insert_requests(batch.as_slice())).await;
        batch.clear();
        let error = match result {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(error.to_string()),
            Err(_) => Some(format!(
                "writing the request log took longer than {}s; the database is hung or \
                 overloaded",
                WRITE_TIMEOUT.as_secs()
            )),
        };
        let s = &self.shared;
        match error {
            None => {
                s.written.fetch_add(rows, Ordering::Relaxed);
            }
            Some(error) => {
                tracing::warn!(%error, rows, "request log batch lost");
                s.failed_batches.fetch_add(1, Ordering::Relaxed);
                s.failed_rows.fetch_add(rows, Ordering::Relaxed);
                *s.last_error
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(error);
            }
        }
        s.pending.fetch_sub(rows, Ordering::Relaxed);
    }
}
