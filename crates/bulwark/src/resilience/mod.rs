//! The resilience state machines. Each is a plain struct over
//! `tokio::time::Instant`, so tests drive them under paused time.

pub mod backoff;
pub mod balance;
pub mod breaker;
pub mod budget;
pub mod classify;
pub mod concurrency;
pub mod ewma;
