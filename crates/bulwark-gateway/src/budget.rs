//! The memory budget for requests in flight (`server.max_inflight_request_bytes`).
//!
//! A request's body, and the trees decoding builds from it, cost a
//! multiple of its size that depends on its shape: a 30-byte message
//! becomes a map of about a kilobyte. Each request reserves what its body
//! costs to read before reading it (from its declared length, then as it
//! arrives), then what it costs to decode, estimated from its counts
//! (`wire::limits::Scanned`) before it is decoded, then what the decoded
//! request keeps until its answer is sent. When the budget is spent the
//! request is shed with 503 and `Retry-After` rather than queued, so that a
//! burst of large uploads cannot grow the process without bound. A
//! reservation is returned when it is dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bulwark::error::{ApiError, ErrorKind};
use bulwark::wire::limits::Scanned;

/// Bytes held per byte of body while it is read: the buffer grows by
/// doubling.
pub const READ_FACTOR: u64 = 2;

/// The cost model of decoding, measured with `bulwark serve` (VmHWM in
/// `/proc/<pid>/status`, mimalloc): per byte of body (its text, held in
/// the tree, the neutral request and the bytes kept for a same-format
/// target), per array or object (a map node of about 640 bytes and its
/// keys' strings), and per value (its slot and a small string). A body of
/// 100,000 tiny messages (3 MB) peaked 121 to 152 MB over the process's
/// start (more when the test machine was busy), one of 100,000 messages of
/// 300 bytes (31 MB) 256 MB; this model reserves 197 MB and 365 MB.
pub const BODY_FACTOR: u64 = 6;
pub const CONTAINER_BYTES: u64 = 1536;
pub const VALUE_BYTES: u64 = 64;

/// What a decoded request keeps until its answer is sent: its body's
/// bytes (for a same-format target) and the neutral request, whose each
/// message or part is a few hundred bytes. A stream holds this for its
/// whole life, so it is kept near what is really held, not at the peak.
const RETAINED_FACTOR: u64 = 2;
const RETAINED_CONTAINER_BYTES: u64 = 256;

/// What a shed client is told to wait: reservations are held for one
/// request's decoding and answer, so room comes back within seconds.
const RETRY_AFTER_SECONDS: u64 = 1;

/// The memory decoding a body of `len` bytes with these counts may take.
pub fn decode_cost(len: usize, scanned: &Scanned) -> u64 {
    bytes(len)
        .saturating_mul(BODY_FACTOR)
        .saturating_add(scanned.containers.saturating_mul(CONTAINER_BYTES))
        .saturating_add(scanned.separators.saturating_mul(VALUE_BYTES))
}

fn retained_cost(len: usize, scanned: &Scanned) -> u64 {
    bytes(len)
        .saturating_mul(RETAINED_FACTOR)
        .saturating_add(scanned.containers.saturating_mul(RETAINED_CONTAINER_BYTES))
}

fn bytes(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

#[derive(Debug)]
pub struct MemoryBudget {
    capacity: u64,
    reserved: AtomicU64,
    shed: AtomicU64,
}

impl MemoryBudget {
    pub fn new(capacity: u64) -> Arc<Self> {
        Arc::new(MemoryBudget {
            capacity,
            reserved: AtomicU64::new(0),
            shed: AtomicU64::new(0),
        })
    }

    /// An empty reservation, grown as the request goes.
    pub fn reservation(self: &Arc<Self>) -> Reservation {
        Reservation {
            budget: Arc::clone(self),
            bytes: 0,
        }
    }

    /// Bytes reserved now.
    pub fn reserved(&self) -> u64 {
        self.reserved.load(Ordering::Relaxed)
    }

    /// Requests shed since start.
    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    fn take(&self, bytes: u64) -> bool {
        self.reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |reserved| {
                reserved
                    .checked_add(bytes)
                    .filter(|total| *total <= self.capacity)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: u64) {
        self.reserved.fetch_sub(bytes, Ordering::AcqRel);
    }

    fn refusal(&self, wanted: u64) -> ApiError {
        // More than the whole budget never fits: retrying cannot help.
        if wanted > self.capacity {
            return ApiError::new(
                ErrorKind::RequestTooLarge,
                format!(
                    "decoding this request body would take about {wanted} bytes of memory, more than this gateway's whole budget of {} bytes (config key `server.max_inflight_request_bytes`); send fewer, larger items",
                    self.capacity
                ),
            );
        }
        self.shed.fetch_add(1, Ordering::Relaxed);
        let mut error = ApiError::new(
            ErrorKind::Overloaded,
            format!(
                "the gateway is holding as many request bodies as its memory budget allows ({} bytes, config key `server.max_inflight_request_bytes`); retry shortly",
                self.capacity
            ),
        );
        error.retry_after = Some(RETRY_AFTER_SECONDS);
        error
    }
}

/// Memory held against the budget for one request; returned on drop.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: u64,
}

impl Reservation {
    /// Covers reading a body of `len` bytes.
    pub fn cover_read(&mut self, len: usize) -> Result<(), ApiError> {
        self.grow_to(bytes(len).saturating_mul(READ_FACTOR))
    }

    /// Covers decoding a body of `len` bytes with these counts.
    pub fn cover_decode(&mut self, len: usize, scanned: &Scanned) -> Result<(), ApiError> {
        self.grow_to(decode_cost(len, scanned))
    }

    /// Returns what decoding needed beyond what the request keeps.
    pub fn settle(&mut self, len: usize, scanned: &Scanned) {
        let kept = retained_cost(len, scanned);
        if kept < self.bytes {
            self.budget.give_back(self.bytes - kept);
            self.bytes = kept;
        }
    }

    /// Grows the reservation to `wanted`; over the budget, the answer to
    /// give (what is already held stays held until the reservation drops).
    fn grow_to(&mut self, wanted: u64) -> Result<(), ApiError> {
        if wanted <= self.bytes {
            return Ok(());
        }
        if self.budget.take(wanted - self.bytes) {
            self.bytes = wanted;
            Ok(())
        } else {
            Err(self.budget.refusal(wanted))
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(containers: u64, separators: u64) -> Scanned {
        Scanned {
            model: None,
            containers,
            separators,
        }
    }

    #[test]
    fn reservations_are_shed_past_the_capacity_and_returned_on_drop() {
        let budget = MemoryBudget::new(100 * READ_FACTOR);
        let mut first = budget.reservation();
        first.cover_read(60).unwrap();
        // Growing to what is already covered takes nothing more.
        first.cover_read(40).unwrap();
        assert_eq!(budget.reserved(), 60 * READ_FACTOR);
        let mut second = budget.reservation();
        let error = second.cover_read(41).unwrap_err();
        assert_eq!(error.status, 503);
        assert_eq!(error.retry_after, Some(1));
        assert!(error.message.contains("server.max_inflight_request_bytes"));
        assert_eq!(budget.shed(), 1);
        second.cover_read(40).unwrap();
        drop(first);
        drop(second);
        assert_eq!(budget.reserved(), 0);
    }

    #[test]
    fn decoding_is_costed_by_shape_and_settles_to_what_is_kept() {
        let budget = MemoryBudget::new(1 << 30);
        let mut reservation = budget.reservation();
        reservation.cover_read(1000).unwrap();
        // A thousand bytes of two tiny objects, or of a thousand.
        let few = counts(2, 4);
        let many = counts(1000, 2000);
        assert!(decode_cost(1000, &many) > 100 * decode_cost(1000, &few));
        reservation.cover_decode(1000, &many).unwrap();
        assert_eq!(budget.reserved(), decode_cost(1000, &many));
        reservation.settle(1000, &many);
        assert_eq!(budget.reserved(), retained_cost(1000, &many));
        drop(reservation);
        assert_eq!(budget.reserved(), 0);
    }

    #[test]
    fn a_body_that_could_never_fit_is_413_not_503() {
        let budget = MemoryBudget::new(10_000);
        let error = budget
            .reservation()
            .cover_decode(100, &counts(1000, 0))
            .unwrap_err();
        assert_eq!(error.status, 413);
        assert_eq!(budget.shed(), 0);
        assert_eq!(budget.reserved(), 0);
    }
}
