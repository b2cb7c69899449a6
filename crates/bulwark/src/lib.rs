//! Bulwark: a resilient gateway for LLM APIs, as an embeddable library.
//!
//! Build a [`Client`] from a [`config::Config`] and call [`Client::chat`] or
//! [`Client::stream`] with provider-neutral [`api::ChatRequest`]s; the
//! `bulwark-gateway` crate serves the same engine over HTTP.

pub mod aggregate;
pub mod api;
pub mod cache;
pub mod client;
pub mod config;
mod continuation;
pub mod deadline;
mod degrade;
pub mod engine;
pub mod error;
pub mod events;
#[doc(hidden)]
pub mod fuzzing;
pub mod limit;
pub mod observe;
pub mod provider;
pub mod reload;
pub mod resilience;
pub mod route;
pub mod shared;
pub mod shared_breakers;
pub mod sse;
pub mod timefmt;
pub mod unary;
pub mod wire;

pub use client::{Client, RequestOptions};
pub use config::Config;
pub use engine::{Failed, Served};
pub use error::{ApiError, ErrorKind};
