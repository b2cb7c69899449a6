//! `bulwark-sim`: a simulated LLM provider for tests, demos and drills.
//!
//! One axum server speaks three wire formats at their real paths:
//!
//! - OpenAI Chat Completions: `POST /v1/chat/completions` (`Authorization: Bearer`),
//!   embeddings: `POST /v1/embeddings` (float or base64), and the Responses
//!   API: `POST /v1/responses` (typed events with `sequence_number`; its
//!   faults, auth and errors are OpenAI's, matched as format `openai`).
//! - Anthropic Messages: `POST /v1/messages` and `POST /v1/messages/count_tokens`
//!   (`x-api-key`; `anthropic-version` required).
//! - Gemini: `POST /v1beta/models/{model}:generateContent`,
//!   `:streamGenerateContent?alt=sse` (or a JSON array without `alt=sse`),
//!   `:countTokens`, `:embedContent` and `:batchEmbedContents` (at most 100
//!   a batch) (`x-goog-api-key` or `?key=`).
//! - Google Vertex AI (`cloud::vertex`): Claude at
//!   `/v1/projects/{p}/locations/{r}/publishers/anthropic/models/{model}:rawPredict`
//!   and `:streamRawPredict` (Anthropic's body without `model`, with
//!   `anthropic_version: vertex-2023-10-16`), Gemini at
//!   `.../publishers/google/models/{model}:generateContent` and
//!   `:streamGenerateContent`; with [`SimConfig::vertex`] set, a bearer token
//!   from Google's token endpoint `POST /token` (a JWT-bearer grant signed
//!   with the key in [`Sim::service_account_json`]) and the configured
//!   project and region are required. `GET /_sim/tokens` counts grants.
//! - Embedding vectors are unit vectors derived from the model and the text
//!   alone, the same in every format (`embed.rs`).
//! - Amazon Bedrock, Claude: `POST /model/{modelId}/invoke` and
//!   `/invoke-with-response-stream` (SigV4 or a Bedrock API key when
//!   [`SimConfig::bedrock`] is set; binary event-stream answers;
//!   Bedrock-shaped errors), through the Anthropic pipeline.
//! - Azure OpenAI (`cloud::azure`): `POST /openai/deployments/{deployment}/chat/completions`
//!   and `/embeddings` (`?api-version=` required), `/openai/v1/chat/completions`,
//!   `/embeddings` and `/responses`; `api-key` or an Entra bearer token from
//!   `POST /{tenant}/oauth2/v2.0/token` (client credentials); answers carry
//!   Azure's content-filter annotations.
//! - Model lists: `GET /v1/models` (Anthropic's shape when `anthropic-version`
//!   is sent), `GET /v1beta/models`, `GET /v1beta/models/{model}`.
//! - Control API: `/_sim/faults` (GET, PUT = replace, POST = append one,
//!   DELETE = clear), `/_sim/requests` (GET, DELETE), `/_sim/stats` (GET),
//!   `/_sim/latency` (PUT), `/_sim/phase` (GET, PUT: latency, latency
//!   distribution, rules and quota replaced atomically). The same controls
//!   are methods on [`Sim`].
//!
//! It works on raw JSON on purpose: it is an independent check of the
//! gateway's own translators, so it shares no types with them.
//!
//! # Deterministic answers
//!
//! A token is a whitespace-separated word. Prompt tokens count the words of
//! the system prompt, message text, tool results and earlier tool-call
//! arguments (minimum 1); completion tokens count the answer's words (a tool
//! call counts 1 plus 1 per argument). The answer is
//! `Simulated answer from <model>: <first 12 words of the last user text>`
//! plus `(N image[s])`, or `... the tool returned <result>` after tool
//! results. Stop sequences cut before the match; max tokens truncate to that
//! many words. Streams send one word per chunk.
//!
//! Tools are called on demand: with tool choice auto, only when the last
//! user text holds `sim:call <ToolName>` (optionally followed on the same
//! line by a JSON object of arguments; else arguments are built from the
//! schema, every string "sim"). Tool choice required calls the `sim:call`
//! tool or the first declared; a named choice calls that tool. Requests
//! that ask for thinking get deterministic thinking first, and models named
//! `*-json-stream` answer stream requests with a complete JSON body. A
//! request for structured output (a JSON schema, or JSON mode) is answered
//! with a JSON document that satisfies it. The
//! exact rules are in the README and the `answer` module.
//!
//! # Faults
//!
//! Rules ([`FaultRule`]) come from the config, the Rust handle or the control
//! API. A request can also pick its own with `x-sim-fault`, which wins:
//!
//! | header value | fault |
//! |---|---|
//! | `status=529` | provider-shaped error body and headers |
//! | `status=429;retry_after=3;retry_after_ms=250;retry_after_date=30` | retry hints (`retry_after_date`: seconds from now as an HTTP date, may be negative) |
//! | `status=429;code=insufficient_quota` / `error_type=..` / `message=..` / `quota_id=..` | body overrides |
//! | `status=503;should_retry=false` | adds `x-should-retry` |
//! | `status=522;html` | Cloudflare-style HTML page |
//! | `hang=2000` | wait 2000 ms before headers |
//! | `stall=3:5000` | after 3 chunks pause 5000 ms, then continue |
//! | `cut=3` | after 3 chunks end cleanly without the terminator |
//! | `malformed=2` | the chunk after 2 chunks carries broken JSON |
//! | `error_event=2` / `error_event=2:500` | after 2 chunks an in-stream error, then end |
//! | `connection_reset` / `reset` | close the connection with no response |
//! | `content_filter` / `content_filter=stream` | Azure's content filter: the prompt refused (400), or the answer cut short (`finish_reason: content_filter`) |
//!
//! `x-sim-latency: first_token_ms=50,token_interval_ms=10,headers_ms=0`
//! overrides pacing for one request.
//!
//! # Drills
//!
//! [`LatencyDist`] samples each request's pacing from a log-normal fitted to
//! a p50 and p95; [`mix_rules`] turns unconditional fault shares into the
//! conditional probabilities first-match rules need; [`SimConfig::speed`]
//! compresses time (waits, the rate-limit window and retry hints); and
//! [`Sim::apply_phase`] switches all of an incident phase's settings at once.

mod answer;
mod anthropic;
mod clock;
mod cloud;
mod config;
mod control;
mod dist;
mod embed;
mod error;
mod fault;
mod format;
mod gemini;
mod handler;
mod headers;
mod mix;
mod openai;
mod phase;
pub mod proxy;
pub mod redis_server;
mod responses;
mod schema;
mod server;
mod speed;
mod state;
mod stream;
mod wire;

pub use cloud::Cloud;
pub use cloud::azure::AzureSimConfig;
pub use cloud::bedrock::BedrockSimConfig;
pub use cloud::vertex::VertexSimConfig;
pub use config::{Latency, SimConfig, load_scenario};
pub use dist::{Distribution, LatencyDist};
pub use error::SimError;
pub use fault::{
    Fault, FaultMatch, FaultRule, StatusFault, parse_fault_header, parse_latency_header,
};
pub use format::Format;
pub use mix::mix_rules;
pub use phase::SimPhase;
pub use proxy::TcpProxy;
pub use redis_server::PrivateRedis;
pub use server::{SimServer, run};
pub use state::{RecordedRequest, Sim, SimStats};
