//! `bulwark-sim`: a simulated LLM provider for tests, demos and drills.
//!
//! One axum server speaks the OpenAI Chat Completions
//! (`POST /v1/chat/completions`), Anthropic Messages (`POST /v1/messages`)
//! and Gemini (`POST /v1beta/models/{model}:generateContent` /
//! `:streamGenerateContent?alt=sse` / `:countTokens`) wire formats, lists
//! models (`GET /v1/models`, `GET /v1beta/models`), answers
//! deterministically (see [`answer`](crate::answer) rules in the module docs),
//! paces streams, and injects faults from rules or the `x-sim-fault` header.
//! A JSON control API lives under `/_sim` (faults, requests, stats, latency).
//!
//! It works on raw JSON on purpose: it is an independent check of the
//! gateway's own translators, so it shares no types with them.

mod anthropic;
mod answer;
mod clock;
mod config;
mod control;
mod error;
mod fault;
mod format;
mod gemini;
mod handler;
mod headers;
mod openai;
mod server;
mod state;
mod stream;
mod wire;

pub use config::{Latency, SimConfig, load_scenario};
pub use error::SimError;
pub use fault::{Fault, FaultMatch, FaultRule, StatusFault, parse_fault_header, parse_latency_header};
pub use format::Format;
pub use server::{SimServer, run};
pub use state::{RecordedRequest, Sim, SimStats};
