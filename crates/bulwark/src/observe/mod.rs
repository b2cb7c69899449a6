//! The vocabulary of observability, shared by the engine, the store, the
//! health tracker, alerts and the status page: what one request did
//! ([`record`]), how healthy a component is ([`component`]), what an
//! incident holds ([`incident`]) and what the status page shows
//! ([`snapshot`]). Plain data only; the logic lives with each consumer.

pub mod burn;
pub mod calendar;
pub mod component;
pub mod config;
pub mod incident;
pub mod percentile;
pub mod propagate;
pub mod record;
pub mod snapshot;
pub mod xml;

/// Milliseconds since the Unix epoch: the one timestamp type of the store
/// and the status page, portable across SQLite and PostgreSQL.
pub type UnixMs = i64;

/// A duration as the fractional milliseconds records keep.
pub fn millis(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

pub fn unix_ms_now() -> UnixMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
