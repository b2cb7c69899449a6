//! The engine's config: providers, routes and the resilience settings
//! every target shares.
//!
//! Loading never stops at the first problem: every issue is collected with
//! the key path it concerns, so `bulwark check` can report them all at once.
//! The gateway reads its own top-level keys from the same [`Document`].
//!
//! - `raw`: the file as written ([`Document`]) and its serde types;
//! - `env`: `${VAR}` interpolation;
//! - `validate`: raw to typed, collecting [`Issue`]s;
//! - [`duration`]: the one duration format of configs and scenarios.

mod budget;
mod cloud;
pub mod duration;
pub mod embeddings;
mod env;
mod issue;
mod raw;
pub mod shared;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::resilience::backoff::Backoff;
use crate::resilience::balance::Balance;
use crate::resilience::breaker::BreakerConfig;
use crate::resilience::budget::BudgetConfig;
use crate::resilience::concurrency::ConcurrencyConfig;

pub use cloud::{
    AwsCredentials, AzureConfig, BedrockConfig, CloudConfig, EntraConfig, ServiceAccount,
    VertexConfig,
};
pub use env::Env;
pub use issue::{ConfigError, Issue};
pub use raw::{Document, field_names};

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(300);
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(120);
pub const DEFAULT_FIRST_TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Used when a client that need not send `max_tokens` is served by Anthropic,
/// which requires it.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;
/// The most Bulwark reads from a provider for one answer, SSE framing
/// included. A streamed token costs about 150-250 bytes of framing, so
/// this is room for some 250,000 tokens, well past any model's output
/// limit; what it stops is an upstream that never ends.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    Anthropic,
    #[serde(rename = "openai")]
    OpenAi,
    Gemini,
    #[serde(rename = "openai-compatible")]
    OpenAiCompatible,
    /// OpenAI's models on Azure (`provider/cloud/azure.rs`).
    #[serde(rename = "azure-openai")]
    AzureOpenAi,
    /// Claude on Amazon Bedrock (`provider/cloud/bedrock.rs`).
    Bedrock,
    /// Claude and Gemini on Google Vertex AI (`provider/cloud/vertex.rs`).
    Vertex,
}

impl ProviderKind {
    /// The kind's name in the configuration (`kind:`).
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::OpenAi => "openai",
            ProviderKind::Gemini => "gemini",
            ProviderKind::OpenAiCompatible => "openai-compatible",
            ProviderKind::AzureOpenAi => "azure-openai",
            ProviderKind::Bedrock => "bedrock",
            ProviderKind::Vertex => "vertex",
        }
    }

    /// Whether the kind is a cloud serving another provider's API.
    pub fn is_cloud(self) -> bool {
        matches!(
            self,
            ProviderKind::AzureOpenAi | ProviderKind::Bedrock | ProviderKind::Vertex
        )
    }
}

/// A credential. Its `Debug` never shows the value, so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    pub base_url: String,
    pub api_key: Option<Secret>,
    pub connect_timeout: Duration,
    pub default_max_tokens: u32,
    /// The most read from the provider for one answer (bytes of its
    /// stream), streamed or complete; past it the attempt fails.
    pub max_response_bytes: u64,
    /// Whether the provider is asked for streams (the default) or, with
    /// `stream: false`, for complete answers.
    pub stream: bool,
    /// Extra headers sent with every request (e.g. `OpenAI-Organization`),
    /// replacing the dialect's or the client's forwarded header of the same
    /// name.
    /// Values are secret: some carry credentials.
    pub headers: BTreeMap<String, Secret>,
    /// Context window per model, in tokens; lets a too-long prompt move to
    /// a target that can take it.
    pub context_windows: BTreeMap<String, u64>,
    /// What a model can do, per model, where its name does not say it
    /// (`wire::translate::traits`).
    pub models: BTreeMap<String, ModelTraitsOverride>,
    /// Requests in flight per target: a fixed limit, or adaptive (AIMD).
    pub concurrency: ConcurrencyConfig,
    /// The provider's quotas, per target: requests and tokens per minute.
    pub limits: RateLimits,
    /// USD per million tokens, per model, for cost metrics.
    pub prices: crate::observe::config::Prices,
    /// An active health probe, when configured.
    pub probe: Option<crate::observe::config::ProbeConfig>,
    /// Where and how a cloud kind serves the API (`config/cloud.rs`);
    /// `None` for the providers' own APIs.
    pub cloud: Option<CloudConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRef {
    pub provider: String,
    pub model: String,
}

impl TargetRef {
    /// Splits `provider/model` at the first `/`; model names may hold more.
    pub fn parse(s: &str) -> Option<TargetRef> {
        let (provider, model) = s.split_once('/')?;
        (!provider.is_empty() && !model.is_empty()).then(|| TargetRef {
            provider: provider.to_string(),
            model: model.to_string(),
        })
    }
}

impl fmt::Display for TargetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

/// Time limits for a request and for each attempt on a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// The whole request, retries and fallbacks included.
    pub deadline: Duration,
    /// A non-streamed attempt must finish within this.
    pub attempt: Duration,
    /// A streamed attempt must produce its first content within this.
    pub first_token: Duration,
    /// The longest silence allowed between stream chunks.
    pub stream_idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            deadline: DEFAULT_DEADLINE,
            attempt: DEFAULT_ATTEMPT_TIMEOUT,
            first_token: DEFAULT_FIRST_TOKEN_TIMEOUT,
            stream_idle: DEFAULT_STREAM_IDLE_TIMEOUT,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteConfig {
    /// Every target, in the order written.
    pub targets: Vec<TargetRef>,
    /// Tried in order when every target failed.
    pub degrade: Vec<Degrade>,
    /// At most this many requests run at once; `queue` more wait.
    pub admission: Option<(usize, usize)>,
    /// The route's availability objective, for error budgets.
    pub slo: Option<crate::observe::config::SloConfig>,
    /// How each request on the route is served; a running
    /// [`Route`](crate::route::Route) carries it as it is.
    pub policy: RoutePolicy,
}

/// How a route serves each request: in which order its targets are tried,
/// for how long, and what happens when one fails.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutePolicy {
    /// Groups of the route's targets tried in order; within one, the load
    /// is shared.
    pub tiers: Vec<std::ops::Range<usize>>,
    /// Per target, for weighted balancing within a tier.
    pub weights: Vec<u32>,
    pub balance: Balance,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    /// Start a second attempt on the next target when the first has not
    /// produced a token after this long.
    pub hedge_after: Option<HedgeAfter>,
    pub mid_stream: MidStream,
    /// What a target that speaks another format than the client's does
    /// with fields its format cannot carry.
    pub translation: Translation,
    /// Answers are cached when set.
    pub cache: Option<RouteCache>,
}

impl RoutePolicy {
    /// The defaults, for a route of one target that a client names
    /// directly as `provider/model`.
    pub fn single_target() -> Self {
        RoutePolicy {
            tiers: std::iter::once(0..1).collect(),
            weights: vec![1],
            balance: Balance::Weighted,
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            hedge_after: None,
            mid_stream: MidStream::Error,
            translation: Translation::Lenient,
            cache: None,
        }
    }
}

/// What to do when a stream fails after part of the answer was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MidStream {
    /// End the stream with a protocol-correct error event.
    #[default]
    Error,
    /// Ask the next target that takes an assistant prefill (Anthropic) to
    /// continue the partial answer, and splice its continuation into the
    /// same stream.
    Continue,
}

/// How strictly a request is translated for a target of another format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Translation {
    /// Fields whose loss leaves the answer's meaning intact are left out
    /// and reported (`x-bulwark-dropped`); the rest make the target refuse.
    #[default]
    Lenient,
    /// Any field the target's format cannot carry makes it refuse.
    Strict,
}

/// A provider's word on what one of its models can do; what it leaves out
/// is guessed from the model's name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelTraitsOverride {
    /// The model reasons before answering (takes a thinking budget or an
    /// effort).
    pub reasoning: Option<bool>,
    /// The model reads images.
    pub vision: Option<bool>,
}

/// When to start a hedge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HedgeAfter {
    Fixed(Duration),
    /// A percentile of the primary's recent first-token times; until enough
    /// are known, the fallback delay.
    Percentile {
        percentile: f64,
        fallback: Duration,
    },
}

/// Per-minute quotas Bulwark keeps to on its own side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub input_tpm: Option<u64>,
    pub output_tpm: Option<u64>,
}

/// A fallback of last resort, when every target failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Degrade {
    /// An expired cache entry for the same request, within `max_stale`.
    StaleCache,
    /// Another target (a cheaper or local model).
    Target(TargetRef),
    /// A fixed answer.
    Static(String),
}

/// A route's response cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteCache {
    pub ttl: Duration,
    /// How long past its TTL an entry is kept for `degrade: [stale-cache]`.
    pub max_stale: Duration,
    /// Also cache requests whose answer is not deterministic (a temperature
    /// above 0, or the provider's default).
    pub nondeterministic: bool,
}

pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(3600);
pub const DEFAULT_MAX_STALE: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// Retries on the same target, before moving on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries per target (attempts on one target = 1 + this).
    pub max_retries: u32,
    pub backoff: Backoff,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            backoff: Backoff::default(),
        }
    }
}

/// What the engine needs: the providers, the routes over them, and the
/// resilience settings every target shares.
#[derive(Debug, Clone)]
pub struct Config {
    pub providers: BTreeMap<String, ProviderConfig>,
    pub routes: BTreeMap<String, RouteConfig>,
    /// Per target (provider + model).
    pub breaker: BreakerConfig,
    /// Per target (provider + model).
    pub retry_budget: BudgetConfig,
    /// The most memory cached answers may take, in bytes.
    pub cache_max_bytes: u64,
    /// `redis:`: the Redis several instances share state through; `None`
    /// keeps everything in this process.
    pub shared: Option<shared::SharedConfig>,
}

impl Config {
    /// Reads and validates a config file, interpolating `${VAR}` from the
    /// process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read_file(path)?;
        Config::from_yaml(&text, &path.display().to_string(), &|name| {
            std::env::var(name).ok()
        })
    }

    /// Parses config text; `env` supplies `${VAR}` values.
    pub fn from_yaml(text: &str, source_name: &str, env: Env<'_>) -> Result<Config, ConfigError> {
        let mut issues = Vec::new();
        let mut doc = Document::parse(text, env, &mut issues)
            .map_err(|fatal| ConfigError::new(source_name, vec![fatal]))?;
        doc.refuse_unknown(Config::keys(), &mut issues);
        match Config::read(&mut doc, &mut issues) {
            Some(config) if issues.is_empty() => Ok(config),
            _ => Err(ConfigError::new(source_name, issues)),
        }
    }

    /// The top-level keys the engine reads.
    pub fn keys() -> &'static [&'static str] {
        field_names::<raw::RawConfig>()
    }

    /// Takes the engine's keys from `doc` and validates them. `None` when
    /// they cannot be read at all; otherwise what is valid, with every
    /// problem added to `issues`.
    pub fn read(doc: &mut Document, issues: &mut Vec<Issue>) -> Option<Config> {
        let raw = doc.read_top::<raw::RawConfig>(issues)?;
        Some(validate::config(raw, doc, issues))
    }
}

/// A config file's text; a file that cannot be read is reported as a
/// config problem.
pub fn read_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            path.display().to_string(),
            vec![Issue::new("", format!("cannot read the file: {e}"))],
        )
    })
}
#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("sk-test".into()),
            "PORT" => Some("9000".into()),
            _ => None,
        }
    }

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_yaml(text, "test.yaml", &env)
    }

    #[test]
    fn loads_a_full_config() -> Result<(), ConfigError> {
        let config = load(
            "providers:\n  a: { kind: anthropic, api_key: ${KEY} }\n  local: { kind: openai-compatible, base_url: http://127.0.0.1:11434/v1/ }\nroutes:\n  smart: { targets: [a/claude-sonnet-4-5, local/meta/llama3], first_token_timeout: 2s }\n",
        )?;
        let a = &config.providers["a"];
        assert_eq!(a.base_url, "https://api.anthropic.com");
        assert_eq!(a.api_key.as_ref().map(Secret::expose), Some("sk-test"));
        assert_eq!(
            config.providers["local"].base_url,
            "http://127.0.0.1:11434/v1"
        );
        let smart = &config.routes["smart"];
        assert_eq!(smart.targets[1].model, "meta/llama3");
        assert_eq!(smart.policy.timeouts.first_token, Duration::from_secs(2));
        assert_eq!(smart.policy.timeouts.attempt, DEFAULT_ATTEMPT_TIMEOUT);
        Ok(())
    }

    #[test]
    fn stream_defaults_to_true_and_false_is_refused_for_gemini() -> Result<(), ConfigError> {
        let config = load(
            "providers:\n  a: { kind: openai-compatible, base_url: http://h/v1 }\n  b: { kind: openai-compatible, base_url: http://h/v1, stream: false }\n  c: { kind: anthropic, stream: false }\nroutes:\n  r: { targets: [a/x, b/x, c/x] }\n",
        )?;
        assert!(config.providers["a"].stream);
        assert!(!config.providers["b"].stream);
        assert!(!config.providers["c"].stream);
        let Err(error) = load(
            "providers:\n  g: { kind: gemini, stream: false }\nroutes:\n  r: { targets: [g/x] }\n",
        ) else {
            panic!("stream: false loaded for gemini");
        };
        let paths: Vec<&str> = error.issues.iter().map(|i| i.path.as_str()).collect();
        assert!(paths.contains(&"providers.g.stream"), "{paths:?}");
        Ok(())
    }

    #[test]
    fn max_response_bytes_has_a_default_and_refuses_zero() -> Result<(), ConfigError> {
        let config = load(
            "providers:\n  a: { kind: openai }\n  b: { kind: openai, max_response_bytes: 65536 }\nroutes:\n  r: { targets: [a/x, b/x] }\n",
        )?;
        assert_eq!(
            config.providers["a"].max_response_bytes,
            DEFAULT_MAX_RESPONSE_BYTES
        );
        assert_eq!(config.providers["b"].max_response_bytes, 65536);
        let Err(error) = load(
            "providers:\n  a: { kind: openai, max_response_bytes: 0 }\nroutes:\n  r: { targets: [a/x] }\n",
        ) else {
            panic!("max_response_bytes: 0 loaded");
        };
        let paths: Vec<&str> = error.issues.iter().map(|i| i.path.as_str()).collect();
        assert!(
            paths.contains(&"providers.a.max_response_bytes"),
            "{paths:?}"
        );
        Ok(())
    }

    #[test]
    fn translation_mode_and_model_traits() -> Result<(), ConfigError> {
        let config = load(
            "providers:\n  a: { kind: openai, models: { local-r1: { reasoning: true, vision: false } } }\nroutes:\n  r: { targets: [a/x] }\n  s: { targets: [a/x], translation: strict }\n",
        )?;
        assert_eq!(config.routes["r"].policy.translation, Translation::Lenient);
        assert_eq!(config.routes["s"].policy.translation, Translation::Strict);
        assert_eq!(
            config.providers["a"].models["local-r1"],
            ModelTraitsOverride {
                reasoning: Some(true),
                vision: Some(false)
            }
        );
        let Err(error) = load(
            "providers:\n  a: { kind: openai, models: { m: { reasons: yes } } }\nroutes:\n  r: { targets: [a/x], translation: loose }\n",
        ) else {
            panic!("an unknown translation mode and model trait loaded");
        };
        let paths: Vec<&str> = error.issues.iter().map(|i| i.path.as_str()).collect();
        // The target names the invalid provider, so it is reported too.
        assert_eq!(
            paths,
            [
                "providers.a.models.m.reasons",
                "routes.r.targets[0]",
                "routes.r.translation"
            ]
        );
        Ok(())
    }

    #[test]
    fn reports_every_problem_with_its_path() {
        let Err(error) = load(
            "providers:\n  a: { kind: anthropc }\n  b: { kind: openai-compatible }\n  c: { kind: openai, api_key: ${MISSING} }\n  d: { kind: openai, timeout: 3s }\nroutes:\n  r: { targets: [x/y, nomodel] }\n  s: { targets: [], attempt_timeout: soon }\n",
        ) else {
            panic!("an invalid config loaded");
        };
        let paths: Vec<&str> = error.issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "providers.c.api_key",
                "providers.a.kind",
                "providers.b.base_url",
                "providers.d.timeout",
                "routes.r.targets[0]",
                "routes.r.targets[1]",
                "routes.s.targets",
                "routes.s.attempt_timeout",
            ]
        );
        let text = error.to_string();
        assert!(
            text.contains(
                "test.yaml: providers.c.api_key: environment variable MISSING is not set"
            ),
            "{text}"
        );
        assert!(text.contains("unknown variant `anthropc`"), "{text}");
    }

    #[test]
    fn tiers_weights_and_resilience_keys() -> Result<(), ConfigError> {
        let config = load(
            "providers:\n  a: { kind: openai }\n  b: { kind: anthropic }\nroutes:\n  r:\n    targets: [[a/x, { target: b/y, weight: 3 }], a/z]\n    balance: least_latency\n    hedge_after: p90\n    max_retries: 1\n    deadline: 10s\nbreaker: { consecutive_failures: 3, base_ejection: 5s }\nretry_budget: { ratio: 0.1 }\n",
        )?;
        let r = &config.routes["r"];
        assert_eq!(r.policy.tiers, vec![0..2, 2..3]);
        assert_eq!(r.policy.weights, vec![1, 3, 1]);
        assert_eq!(r.policy.balance, Balance::LeastLatency);
        assert_eq!(r.policy.retry.max_retries, 1);
        assert_eq!(r.policy.timeouts.deadline, Duration::from_secs(10));
        assert!(
            matches!(r.policy.hedge_after, Some(HedgeAfter::Percentile { percentile, .. }) if percentile == 90.0)
        );
        assert_eq!(config.breaker.consecutive_failures, 3);
        assert_eq!(config.breaker.base_ejection, Duration::from_secs(5));
        assert_eq!(config.retry_budget.ratio, 0.1);

        let Err(error) = load(
            "providers:\n  a: { kind: openai }\nroutes:\n  r: { targets: [[], { target: a/x, weight: -1 }, 5], balance: fastest, hedge_after: p200 }\nbreaker: { failure_rate: 2, half_open_probes: 0 }\n",
        ) else {
            panic!("an invalid config loaded");
        };
        let paths: Vec<&str> = error.issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "routes.r.targets[0]",
                "routes.r.targets[1]",
                "routes.r.targets[2]",
                "routes.r.balance",
                "routes.r.hedge_after",
                "breaker.failure_rate",
                "breaker.half_open_probes",
            ]
        );
        Ok(())
    }

    #[test]
    fn degrade_steps_are_validated() -> Result<(), ConfigError> {
        let config = load(
            "providers:\n  a: { kind: openai }\nroutes:\n  r: { targets: [a/x], cache: { ttl: 10m }, degrade: [stale-cache, a/small, { static: sorry }] }\n",
        )?;
        assert_eq!(
            config.routes["r"].degrade,
            vec![
                Degrade::StaleCache,
                Degrade::Target(TargetRef {
                    provider: "a".into(),
                    model: "small".into()
                }),
                Degrade::Static("sorry".into()),
            ]
        );
        let Err(error) = load(
            "providers:\n  a: { kind: openai }\nroutes:\n  r: { targets: [a/x], degrade: [stale-cache, b/y, 7] }\n",
        ) else {
            panic!("an invalid config loaded");
        };
        let paths: Vec<&str> = error.issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "routes.r.degrade[0]",
                "routes.r.degrade[1]",
                "routes.r.degrade[2]"
            ]
        );
        Ok(())
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let secret = Secret::new("sk-live-123");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
    }

    #[test]
    fn references_work_in_flow_mappings_and_cannot_change_structure() -> Result<(), ConfigError> {
        let hostile = |name: &str| (name == "KEY").then(|| "x, kind: gemini }".to_string());
        let config = Config::from_yaml(
            "providers:\n  a: { kind: openai, api_key: ${KEY} }\nroutes: {}\n",
            "t.yaml",
            &hostile,
        )?;
        assert_eq!(config.providers["a"].kind, ProviderKind::OpenAi);
        assert_eq!(
            config.providers["a"].api_key.as_ref().map(Secret::expose),
            Some("x, kind: gemini }")
        );
        Ok(())
    }

    #[test]
    fn a_reference_in_a_number_key_reads_as_a_number() -> Result<(), ConfigError> {
        let env = |name: &str| match name {
            "RPM" => Some("600".to_string()),
            "RETRIES" => Some("1".to_string()),
            "RATIO" => Some("0.5".to_string()),
            "WEIGHT" => Some("3".to_string()),
            "KEY" => Some("1234567890".to_string()),
            _ => None,
        };
        let config = Config::from_yaml(
            "providers:\n  a: { kind: openai, api_key: ${KEY}, limits: { rpm: ${RPM} } }\nroutes:\n  r: { targets: [a/x, { target: a/y, weight: ${WEIGHT} }], max_retries: ${RETRIES} }\nretry_budget: { ratio: ${RATIO} }\n",
            "t.yaml",
            &env,
        )?;
        assert_eq!(config.providers["a"].limits.rpm, Some(600));
        // A key that wants text keeps the digits as text.
        assert_eq!(
            config.providers["a"].api_key.as_ref().map(Secret::expose),
            Some("1234567890")
        );
        assert_eq!(config.routes["r"].policy.retry.max_retries, 1);
        assert_eq!(config.routes["r"].policy.weights, [1, 3]);
        assert_eq!(config.retry_budget.ratio, 0.5);

        let Err(error) = Config::from_yaml(
            "providers:\n  a: { kind: openai, limits: { rpm: ${NAME:-many} } }\n",
            "t.yaml",
            &env,
        ) else {
            panic!("a word loaded as a number");
        };
        assert_eq!(error.issues[0].path, "providers.a.limits.rpm");
        Ok(())
    }

    #[test]
    fn durations_take_a_decimal() -> Result<(), ConfigError> {
        let config = load(
            "providers:\n  a: { kind: openai }\nroutes:\n  r: { targets: [a/x], first_token_timeout: 1.2s, hedge_after: 0.5s }\n",
        )?;
        let policy = &config.routes["r"].policy;
        assert_eq!(policy.timeouts.first_token, Duration::from_millis(1200));
        assert_eq!(
            policy.hedge_after,
            Some(HedgeAfter::Fixed(Duration::from_millis(500)))
        );
        Ok(())
    }

    #[test]
    fn unknown_top_level_keys_are_each_reported() {
        let Err(error) = load("lisen: x\nprovider: {}\nproviders:\n  a: { kind: openai }\n") else {
            panic!("unknown keys loaded");
        };
        let paths: Vec<&str> = error.issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["lisen", "provider"]);
        assert!(
            error.issues[0]
                .message
                .starts_with("unknown key; expected one of providers, routes, breaker"),
            "{}",
            error.issues[0].message
        );
    }
}
