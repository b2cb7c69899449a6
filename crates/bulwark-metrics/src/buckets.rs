//! Histogram bucket bounds, one set per kind of wait.

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

/// Whole-request latency: a cached answer takes milliseconds, a long
/// completion with retries and fallbacks can take minutes.
pub const REQUEST_BUCKETS: [f64; 16] = [
    0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 20.0, 30.0, 60.0, 120.0,
];

/// Time to first token: what users feel, usually well under a few seconds,
/// with a long tail when providers queue.
pub const FIRST_TOKEN_BUCKETS: [f64; 15] = [
    0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0,
];

/// Admission-queue wait: zero when not overloaded; anything past the
/// route's queue timeout is shed, so seconds are enough at the top.
pub const QUEUE_WAIT_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub(crate) type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

pub(crate) fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_BUCKETS)
}

pub(crate) fn first_token_histogram() -> Histogram {
    Histogram::new(FIRST_TOKEN_BUCKETS)
}

pub(crate) fn queue_wait_histogram() -> Histogram {
    Histogram::new(QUEUE_WAIT_BUCKETS)
}
