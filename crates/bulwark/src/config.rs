//! The config file: types, `${VAR}` interpolation and validation.
//!
//! Loading never stops at the first problem: every issue is collected with
//! the key path it concerns, so `bulwark check` can report them all at once.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::limit::queue::Priority;
use crate::resilience::backoff::Backoff;
use crate::resilience::balance::Balance;
use crate::resilience::breaker::BreakerConfig;
use crate::resilience::budget::BudgetConfig;
use crate::resilience::concurrency::ConcurrencyConfig;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Anthropic's own limit for a Messages request.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(300);
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(120);
pub const DEFAULT_FIRST_TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Used when a client that need not send `max_tokens` is served by Anthropic,
/// which requires it.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    Anthropic,
    #[serde(rename = "openai")]
    OpenAi,
    Gemini,
    #[serde(rename = "openai-compatible")]
    OpenAiCompatible,
}

impl ProviderKind {
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::Anthropic => Some("https://api.anthropic.com"),
            ProviderKind::OpenAi => Some("https://api.openai.com/v1"),
            ProviderKind::Gemini => Some("https://generativelanguage.googleapis.com"),
            ProviderKind::OpenAiCompatible => None,
        }
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

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    pub base_url: String,
    pub api_key: Option<Secret>,
    pub connect_timeout: Duration,
    pub default_max_tokens: u32,
    /// Extra headers sent with every request (e.g. `OpenAI-Organization`).
    /// Values are secret: some carry credentials.
    pub headers: BTreeMap<String, Secret>,
    /// Context window per model, in tokens; lets a too-long prompt move to
    /// a target that can take it.
    pub context_windows: BTreeMap<String, u64>,
    /// Requests in flight per target: a fixed limit, or adaptive (AIMD).
    pub concurrency: ConcurrencyConfig,
    /// The provider's quotas, per target: requests and tokens per minute.
    pub limits: RateLimits,
    /// USD per million tokens, per model, for cost metrics.
    pub prices: crate::observe::config::Prices,
    /// An active health probe, when configured.
    pub probe: Option<crate::observe::config::ProbeConfig>,
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

#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// Every target, in the order written.
    pub targets: Vec<TargetRef>,
    /// Groups of `targets` tried in order; within one, the load is shared.
    pub tiers: Vec<std::ops::Range<usize>>,
    /// Per target, for weighted balancing within a tier.
    pub weights: Vec<u32>,
    pub balance: Balance,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    /// Start a second attempt on the next target when the first has not
    /// produced a token after this long.
    pub hedge_after: Option<crate::route::HedgeAfter>,
    pub mid_stream: crate::route::MidStream,
    /// Answers are cached when set.
    pub cache: Option<RouteCache>,
    /// Tried in order when every target failed.
    pub degrade: Vec<Degrade>,
    /// At most this many requests run at once; `queue` more wait.
    pub admission: Option<(usize, usize)>,
    /// The route's availability objective, for error budgets.
    pub slo: Option<crate::observe::config::SloConfig>,
}

/// Per-minute quotas Bulwark keeps to on its own side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimits {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub input_tpm: Option<u64>,
    pub output_tpm: Option<u64>,
}

/// A client's key to the gateway. Only its blake3 hash is kept.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientKey {
    pub name: String,
    pub hash: [u8; 32],
    /// The routes (or `provider/model` targets) it may use; `None`: all.
    pub routes: Option<Vec<String>>,
    /// Its requests' place in admission queues.
    pub priority: Priority,
    /// Whether its requests may choose their priority (`x-bulwark-priority`).
    pub priority_header: bool,
    /// Its own per-minute quotas, across all routes.
    pub limits: RateLimits,
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey")
            .field("name", &self.name)
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

/// Client keys shorter than this are refused: they could be guessed.
const MIN_KEY_LENGTH: usize = 16;

fn build_key(
    name: &str,
    raw: RawKey,
    path: &str,
    routes: &BTreeMap<String, RouteConfig>,
    providers: &BTreeMap<String, ProviderConfig>,
    issues: &mut Vec<Issue>,
) -> Option<ClientKey> {
    let hash = match (raw.key, raw.key_blake3) {
        (Some(key), None) if key.len() >= MIN_KEY_LENGTH => {
            *blake3::hash(key.as_bytes()).as_bytes()
        }
        (Some(_), None) => {
            issues.push(Issue {
                path: format!("{path}.key"),
                message: format!("a client key must be at least {MIN_KEY_LENGTH} characters long"),
            });
            return None;
        }
        (None, Some(hex)) => match decode_hex32(&hex) {
            Some(hash) => hash,
            None => {
                issues.push(Issue {
                    path: format!("{path}.key_blake3"),
                    message: "must be the 64 hex digits of the key's blake3 hash".into(),
                });
                return None;
            }
        },
        _ => {
            issues.push(Issue {
                path: path.to_string(),
                message: "give exactly one of `key` (e.g. ${TEAM_KEY}) or `key_blake3`".into(),
            });
            return None;
        }
    };
    for (i, route) in raw.routes.iter().flatten().enumerate() {
        let direct = TargetRef::parse(route).is_some_and(|t| providers.contains_key(&t.provider));
        if !routes.contains_key(route) && !direct {
            issues.push(Issue {
                path: format!("{path}.routes[{i}]"),
                message: format!(
                    "`{route}` is neither a route nor a `provider/model` of a known provider"
                ),
            });
        }
    }
    let priority = match raw.priority.as_deref().map(Priority::parse) {
        None => Priority::Normal,
        Some(Some(priority)) => priority,
        Some(None) => {
            issues.push(Issue {
                path: format!("{path}.priority"),
                message: "must be high, normal or low".into(),
            });
            Priority::Normal
        }
    };
    Some(ClientKey {
        name: name.to_string(),
        hash,
        routes: raw.routes,
        priority,
        priority_header: raw.priority_header,
        limits: raw
            .limits
            .map_or_else(RateLimits::default, RawLimits::build),
    })
}

fn decode_hex32(text: &str) -> Option<[u8; 32]> {
    let bytes = text.trim().as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let digits = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(digits, 16).ok()?;
    }
    Some(out)
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

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub max_request_bytes: usize,
    pub providers: BTreeMap<String, ProviderConfig>,
    pub routes: BTreeMap<String, RouteConfig>,
    /// Per target (provider + model).
    pub breaker: BreakerConfig,
    /// Per target (provider + model).
    pub retry_budget: BudgetConfig,
    /// The most memory cached answers may take, in bytes.
    pub cache_max_bytes: u64,
    /// Client keys; without any, the gateway is open (on loopback only).
    pub keys: Vec<ClientKey>,
    /// The blake3 hash of the key that opens `/admin/`; without it, the
    /// admin API is off.
    pub admin_key: Option<[u8; 32]>,
    /// The request log, health, alerts and status page.
    pub observe: crate::observe::config::ObserveConfig,
    /// Where OpenTelemetry traces go; without it, none are exported.
    pub otel: Option<crate::observe::otel_config::OtelConfig>,
}

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Dotted key path, e.g. `routes.smart.targets[1]`.
    pub path: String,
    pub message: String,
}

impl Issue {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Issue {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// A file that cannot be used, with every problem found: a config here,
/// and a drill scenario in `bulwark-drill`, reported the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub source_name: String,
    pub issues: Vec<Issue>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.issues.len();
        writeln!(
            f,
            "{}: {count} problem{} found",
            self.source_name,
            if count == 1 { "" } else { "s" }
        )?;
        for issue in &self.issues {
            if issue.path.is_empty() {
                writeln!(f, "  {}: {}", self.source_name, issue.message)?;
            } else {
                writeln!(
                    f,
                    "  {}: {}: {}",
                    self.source_name, issue.path, issue.message
                )?;
            }
        }
        Ok(())
    }
}

// === The file as written ===

const TOP_LEVEL_KEYS: &[&str] = &[
    "listen",
    "max_request_bytes",
    "providers",
    "routes",
    "breaker",
    "retry_budget",
    "cache",
    "keys",
    "admin_key",
    "store",
    "retention",
    "log_bodies",
    "health",
    "alerts",
    "status_page",
    "otel",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTop {
    listen: Option<String>,
    max_request_bytes: Option<usize>,
    #[serde(default)]
    providers: BTreeMap<String, Value>,
    #[serde(default)]
    routes: BTreeMap<String, Value>,
    breaker: Option<Value>,
    retry_budget: Option<Value>,
    cache: Option<Value>,
    #[serde(default)]
    keys: BTreeMap<String, Value>,
    admin_key: Option<String>,
    store: Option<String>,
    retention: Option<String>,
    log_bodies: Option<bool>,
    health: Option<Value>,
    alerts: Option<Value>,
    status_page: Option<Value>,
    otel: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    rpm: Option<u64>,
    tpm: Option<u64>,
    input_tpm: Option<u64>,
    output_tpm: Option<u64>,
}

impl RawLimits {
    fn build(self) -> RateLimits {
        RateLimits {
            rpm: self.rpm,
            tpm: self.tpm,
            input_tpm: self.input_tpm,
            output_tpm: self.output_tpm,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    key: Option<String>,
    key_blake3: Option<String>,
    routes: Option<Vec<String>>,
    priority: Option<String>,
    #[serde(default)]
    priority_header: bool,
    limits: Option<RawLimits>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    kind: ProviderKind,
    base_url: Option<String>,
    api_key: Option<String>,
    connect_timeout: Option<String>,
    max_concurrency: Option<u32>,
    limits: Option<RawLimits>,
    default_max_tokens: Option<u32>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    context_windows: BTreeMap<String, u64>,
    #[serde(default)]
    prices: BTreeMap<String, crate::observe::config::Price>,
    probe: Option<crate::observe::config::RawProbe>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    targets: Vec<Value>,
    balance: Option<String>,
    deadline: Option<String>,
    attempt_timeout: Option<String>,
    first_token_timeout: Option<String>,
    stream_idle_timeout: Option<String>,
    max_retries: Option<u32>,
    backoff_base: Option<String>,
    backoff_cap: Option<String>,
    hedge_after: Option<String>,
    mid_stream: Option<String>,
    cache: Option<RawRouteCache>,
    #[serde(default)]
    degrade: Vec<Value>,
    admission: Option<RawAdmission>,
    slo: Option<crate::observe::config::RawSlo>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmission {
    max_concurrency: usize,
    queue: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouteCache {
    ttl: Option<String>,
    max_stale: Option<String>,
    #[serde(default)]
    nondeterministic: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCache {
    max_bytes: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBreaker {
    consecutive_failures: Option<u32>,
    failure_rate: Option<f64>,
    window: Option<String>,
    min_calls: Option<u32>,
    slow_call: Option<String>,
    base_ejection: Option<String>,
    max_ejection: Option<String>,
    half_open_probes: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    ratio: Option<f64>,
    min_per_second: Option<f64>,
    window: Option<String>,
}

impl Config {
    /// Reads and validates a config file, interpolating `${VAR}` from the
    /// process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let source_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source_name: source_name.clone(),
            issues: vec![Issue {
                path: String::new(),
                message: format!("cannot read the file: {e}"),
            }],
        })?;
        Config::from_yaml(&text, &source_name, &|name| std::env::var(name).ok())
    }

    /// Parses config text; `env` supplies `${VAR}` values.
    pub fn from_yaml(
        text: &str,
        source_name: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let fail = |issues| ConfigError {
            source_name: source_name.to_string(),
            issues,
        };
        let (text, references) = protect_references(text);
        let mut value: Value = serde_saphyr::from_str(&text).map_err(|e| {
            fail(vec![Issue {
                path: String::new(),
                message: format!("not valid YAML: {e}"),
            }])
        })?;
        if value.is_null() {
            value = Value::Object(Default::default());
        }
        let mut issues = Vec::new();
        interpolate(&mut value, "", &references, env, &mut issues);
        // Unknown top-level keys are reported one by one, so that a typo does
        // not hide the problems in the sections that follow it.
        if let Value::Object(map) = &mut value {
            map.retain(|key, _| {
                let known = TOP_LEVEL_KEYS.contains(&key.as_str());
                if !known {
                    issues.push(Issue {
                        path: key.clone(),
                        message: format!(
                            "unknown key; expected one of {} (see the config reference in README.md)",
                            TOP_LEVEL_KEYS.join(", ")
                        ),
                    });
                }
                known
            });
        }
        let Some(top) = deserialize_at::<RawTop>(value, "", &mut issues) else {
            return Err(fail(issues));
        };

        let listen_text = top.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen = match listen_text.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                issues.push(Issue {
                    path: "listen".into(),
                    message: format!("`{listen_text}` is not an address such as 127.0.0.1:8080"),
                });
                None
            }
        };
        let max_request_bytes = top.max_request_bytes.unwrap_or(DEFAULT_MAX_REQUEST_BYTES);
        if max_request_bytes == 0 {
            issues.push(Issue {
                path: "max_request_bytes".into(),
                message: "must be greater than 0".into(),
            });
        }

        let mut providers = BTreeMap::new();
        for (name, raw) in top.providers {
            let path = format!("providers.{name}");
            if name.contains('/') {
                issues.push(Issue {
                    path: path.clone(),
                    message: "a provider name cannot contain `/`, which separates provider and model in targets".into(),
                });
            }
            if let Some(raw) = deserialize_at::<RawProvider>(raw, &path, &mut issues)
                && let Some(provider) = build_provider(raw, &path, &mut issues)
            {
                providers.insert(name, provider);
            }
        }
        if providers.is_empty() && !issues.iter().any(|i| i.path.starts_with("providers.")) {
            issues.push(Issue {
                path: "providers".into(),
                message: "at least one provider is required".into(),
            });
        }

        let mut routes = BTreeMap::new();
        for (name, raw) in top.routes {
            let path = format!("routes.{name}");
            if name.contains('/') {
                issues.push(Issue {
                    path: path.clone(),
                    message:
                        "a route name cannot contain `/`; names with `/` mean `provider/model`"
                            .into(),
                });
            }
            if let Some(raw) = deserialize_at::<RawRoute>(raw, &path, &mut issues)
                && let Some(route) = build_route(raw, &path, &providers, &mut issues)
            {
                routes.insert(name, route);
            }
        }

        let breaker = match top.breaker {
            None => BreakerConfig::default(),
            Some(raw) => deserialize_at::<RawBreaker>(raw, "breaker", &mut issues)
                .map(|raw| build_breaker(raw, &mut issues))
                .unwrap_or_default(),
        };
        let retry_budget = match top.retry_budget {
            None => BudgetConfig::default(),
            Some(raw) => deserialize_at::<RawBudget>(raw, "retry_budget", &mut issues)
                .map(|raw| build_budget(raw, &mut issues))
                .unwrap_or_default(),
        };

        let mut keys = Vec::new();
        for (name, raw) in top.keys {
            let path = format!("keys.{name}");
            if let Some(raw) = deserialize_at::<RawKey>(raw, &path, &mut issues)
                && let Some(key) = build_key(&name, raw, &path, &routes, &providers, &mut issues)
            {
                keys.push(key);
            }
        }

        let admin_key = match top.admin_key.filter(|k| !k.is_empty()) {
            None => None,
            Some(key) if key.len() >= MIN_KEY_LENGTH => {
                Some(*blake3::hash(key.as_bytes()).as_bytes())
            }
            Some(_) => {
                issues.push(Issue {
                    path: "admin_key".into(),
                    message: format!(
                        "the admin key must be at least {MIN_KEY_LENGTH} characters long"
                    ),
                });
                None
            }
        };

        let cache_max_bytes = match top.cache {
            None => DEFAULT_CACHE_BYTES,
            Some(raw) => deserialize_at::<RawCache>(raw, "cache", &mut issues)
                .and_then(|c| c.max_bytes)
                .unwrap_or(DEFAULT_CACHE_BYTES),
        };

        let observe = crate::observe::config::build(
            crate::observe::config::RawObserve {
                store: top.store,
                retention: top.retention,
                log_bodies: top.log_bodies,
                health: top.health,
                alerts: top.alerts,
                status_page: top.status_page,
            },
            &mut issues,
        );
        let otel = crate::observe::otel_config::build(top.otel, &mut issues);

        match listen {
            Some(listen) if issues.is_empty() => Ok(Config {
                observe,
                otel,
                cache_max_bytes,
                keys,
                admin_key,
                listen,
                max_request_bytes,
                providers,
                routes,
                breaker,
                retry_budget,
            }),
            _ => Err(fail(issues)),
        }
    }
}

fn build_provider(raw: RawProvider, path: &str, issues: &mut Vec<Issue>) -> Option<ProviderConfig> {
    let before = issues.len();
    let probe = raw
        .probe
        .map(|probe| crate::observe::config::build_probe(probe, path, issues));
    let base_url = match raw
        .base_url
        .or_else(|| raw.kind.default_base_url().map(str::to_string))
    {
        Some(url) => {
            match reqwest::Url::parse(&url) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
                _ => issues.push(Issue {
                    path: format!("{path}.base_url"),
                    message: format!("`{url}` is not an http(s) URL"),
                }),
            }
            url.trim_end_matches('/').to_string()
        }
        None => {
            issues.push(Issue {
                path: format!("{path}.base_url"),
                message: "required for kind openai-compatible (e.g. http://127.0.0.1:11434/v1)"
                    .into(),
            });
            String::new()
        }
    };
    let connect_timeout = duration_field(
        raw.connect_timeout,
        DEFAULT_CONNECT_TIMEOUT,
        &format!("{path}.connect_timeout"),
        issues,
    );
    for name in raw.headers.keys() {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            issues.push(Issue {
                path: format!("{path}.headers.{name}"),
                message: "not a valid HTTP header name".into(),
            });
        }
    }
    (issues.len() == before).then(|| ProviderConfig {
        kind: raw.kind,
        base_url,
        api_key: raw.api_key.filter(|k| !k.is_empty()).map(Secret),
        connect_timeout,
        default_max_tokens: raw.default_max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        headers: raw
            .headers
            .into_iter()
            .map(|(k, v)| (k, Secret(v)))
            .collect(),
        context_windows: raw.context_windows,
        prices: raw.prices,
        probe,
        limits: raw
            .limits
            .map_or_else(RateLimits::default, RawLimits::build),
        concurrency: raw
            .max_concurrency
            .map_or_else(ConcurrencyConfig::default, |n| {
                ConcurrencyConfig::pinned(n.max(1))
            }),
    })
}

fn build_route(
    raw: RawRoute,
    path: &str,
    providers: &BTreeMap<String, ProviderConfig>,
    issues: &mut Vec<Issue>,
) -> Option<RouteConfig> {
    let before = issues.len();
    if raw.targets.is_empty() {
        issues.push(Issue {
            path: format!("{path}.targets"),
            message: "a route needs at least one target (`provider/model`)".into(),
        });
    }
    let mut targets = Vec::with_capacity(raw.targets.len());
    let mut weights = Vec::with_capacity(raw.targets.len());
    let mut tiers = Vec::with_capacity(raw.targets.len());
    for (i, entry) in raw.targets.iter().enumerate() {
        let entry_path = format!("{path}.targets[{i}]");
        let start = targets.len();
        match entry {
            // A nested list is one tier: its targets share the load.
            Value::Array(members) => {
                if members.is_empty() {
                    issues.push(Issue {
                        path: entry_path.clone(),
                        message: "an empty tier".into(),
                    });
                }
                for (k, member) in members.iter().enumerate() {
                    let member_path = format!("{entry_path}[{k}]");
                    if let Some((target, weight)) =
                        parse_target(member, &member_path, providers, issues)
                    {
                        targets.push(target);
                        weights.push(weight);
                    }
                }
            }
            other => {
                if let Some((target, weight)) = parse_target(other, &entry_path, providers, issues)
                {
                    targets.push(target);
                    weights.push(weight);
                }
            }
        }
        if targets.len() > start {
            tiers.push(start..targets.len());
        }
    }
    let balance = match raw.balance.as_deref() {
        None | Some("weighted") => Balance::Weighted,
        Some("least_latency") => Balance::LeastLatency,
        Some(other) => {
            issues.push(Issue {
                path: format!("{path}.balance"),
                message: format!("`{other}` is not `weighted` or `least_latency`"),
            });
            Balance::Weighted
        }
    };
    let defaults = Timeouts::default();
    let timeouts = Timeouts {
        deadline: duration_field(
            raw.deadline,
            defaults.deadline,
            &format!("{path}.deadline"),
            issues,
        ),
        attempt: duration_field(
            raw.attempt_timeout,
            defaults.attempt,
            &format!("{path}.attempt_timeout"),
            issues,
        ),
        first_token: duration_field(
            raw.first_token_timeout,
            defaults.first_token,
            &format!("{path}.first_token_timeout"),
            issues,
        ),
        stream_idle: duration_field(
            raw.stream_idle_timeout,
            defaults.stream_idle,
            &format!("{path}.stream_idle_timeout"),
            issues,
        ),
    };
    let retry_defaults = RetryPolicy::default();
    let retry = RetryPolicy {
        max_retries: raw.max_retries.unwrap_or(retry_defaults.max_retries),
        backoff: Backoff {
            base: duration_field(
                raw.backoff_base,
                retry_defaults.backoff.base,
                &format!("{path}.backoff_base"),
                issues,
            ),
            cap: duration_field(
                raw.backoff_cap,
                retry_defaults.backoff.cap,
                &format!("{path}.backoff_cap"),
                issues,
            ),
        },
    };
    let hedge_path = format!("{path}.hedge_after");
    let hedge_after =
        raw.hedge_after
            .map(|text| match text.strip_prefix('p').map(str::parse::<f64>) {
                // `p95`: the 95th percentile of the primary's recent first tokens.
                Some(Ok(percentile)) if percentile > 0.0 && percentile < 100.0 => {
                    crate::route::HedgeAfter::Percentile {
                        percentile,
                        fallback: timeouts.first_token / 2,
                    }
                }
                Some(_) => {
                    issues.push(Issue {
                        path: hedge_path.clone(),
                        message: format!("`{text}` is not a percentile such as p95"),
                    });
                    crate::route::HedgeAfter::Fixed(Duration::ZERO)
                }
                None => crate::route::HedgeAfter::Fixed(duration_field(
                    Some(text),
                    Duration::ZERO,
                    &hedge_path,
                    issues,
                )),
            });
    let mid_stream = match raw.mid_stream.as_deref() {
        None | Some("error") => crate::route::MidStream::Error,
        Some("continue") => crate::route::MidStream::Continue,
        Some(other) => {
            issues.push(Issue {
                path: format!("{path}.mid_stream"),
                message: format!("`{other}` is not `error` or `continue`"),
            });
            crate::route::MidStream::Error
        }
    };
    let cache = raw.cache.map(|raw| RouteCache {
        ttl: duration_field(
            raw.ttl,
            DEFAULT_CACHE_TTL,
            &format!("{path}.cache.ttl"),
            issues,
        ),
        max_stale: duration_field(
            raw.max_stale,
            DEFAULT_MAX_STALE,
            &format!("{path}.cache.max_stale"),
            issues,
        ),
        nondeterministic: raw.nondeterministic,
    });
    let mut degrade = Vec::new();
    for (i, step) in raw.degrade.iter().enumerate() {
        let step_path = format!("{path}.degrade[{i}]");
        match step {
            Value::String(s) if s == "stale-cache" => {
                if cache.is_none() {
                    issues.push(Issue {
                        path: step_path,
                        message: "`stale-cache` needs the route's `cache:` to be set".into(),
                    });
                } else {
                    degrade.push(Degrade::StaleCache);
                }
            }
            Value::Object(map)
                if map.len() == 1 && map.get("static").is_some_and(Value::is_string) =>
            {
                degrade.push(Degrade::Static(
                    map.get("static")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                ));
            }
            other => {
                if let Some((target, _)) = parse_target(other, &step_path, providers, issues) {
                    degrade.push(Degrade::Target(target));
                }
            }
        }
    }
    let admission = raw.admission.and_then(|a| {
        if a.max_concurrency == 0 {
            issues.push(Issue {
                path: format!("{path}.admission.max_concurrency"),
                message: "must be at least 1".into(),
            });
            return None;
        }
        Some((a.max_concurrency, a.queue.unwrap_or(a.max_concurrency * 4)))
    });
    let slo = raw
        .slo
        .and_then(|slo| crate::observe::config::build_slo(slo, path, issues));
    (issues.len() == before).then_some(RouteConfig {
        slo,
        admission,
        degrade,
        cache,
        mid_stream,
        tiers,
        weights,
        balance,
        targets,
        timeouts,
        retry,
        hedge_after,
    })
}

/// A target: `provider/model`, or `{ target: provider/model, weight: N }`.
fn parse_target(
    value: &Value,
    path: &str,
    providers: &BTreeMap<String, ProviderConfig>,
    issues: &mut Vec<Issue>,
) -> Option<(TargetRef, u32)> {
    let (text, weight) = match value {
        Value::String(text) => (text.as_str(), 1),
        Value::Object(map) => {
            let text = map.get("target").and_then(Value::as_str);
            let weight = match map.get("weight") {
                None => Some(1),
                Some(w) => w.as_u64().and_then(|w| u32::try_from(w).ok()),
            };
            let unknown: Vec<&String> = map
                .keys()
                .filter(|k| !matches!(k.as_str(), "target" | "weight"))
                .collect();
            match (text, weight) {
                (Some(text), Some(weight)) if unknown.is_empty() => (text, weight),
                _ => {
                    issues.push(Issue {
                        path: path.to_string(),
                        message: "expected `{ target: provider/model, weight: <whole number> }`"
                            .into(),
                    });
                    return None;
                }
            }
        }
        _ => {
            issues.push(Issue {
                path: path.to_string(),
                message: "expected `provider/model`, `{ target: provider/model, weight: N }`, or a list of them (a tier)".into(),
            });
            return None;
        }
    };
    match TargetRef::parse(text) {
        Some(target) if providers.contains_key(&target.provider) => Some((target, weight)),
        Some(target) => {
            issues.push(Issue {
                path: path.to_string(),
                message: format!(
                    "unknown provider `{}`; the providers are: {}",
                    target.provider,
                    providers.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            });
            None
        }
        None => {
            issues.push(Issue {
                path: path.to_string(),
                message: format!("`{text}` is not `provider/model`"),
            });
            None
        }
    }
}

fn build_breaker(raw: RawBreaker, issues: &mut Vec<Issue>) -> BreakerConfig {
    let d = BreakerConfig::default();
    let failure_rate = raw.failure_rate.unwrap_or(d.failure_rate);
    if !(failure_rate > 0.0 && failure_rate <= 1.0) {
        issues.push(Issue {
            path: "breaker.failure_rate".into(),
            message: format!("{failure_rate} is not a share between 0 (exclusive) and 1"),
        });
    }
    let half_open_probes = raw.half_open_probes.unwrap_or(d.half_open_probes);
    if half_open_probes == 0 {
        issues.push(Issue {
            path: "breaker.half_open_probes".into(),
            message: "must be at least 1, or the breaker could never close".into(),
        });
    }
    BreakerConfig {
        consecutive_failures: raw
            .consecutive_failures
            .unwrap_or(d.consecutive_failures)
            .max(1),
        failure_rate,
        window: duration_field(raw.window, d.window, "breaker.window", issues),
        min_calls: raw.min_calls.unwrap_or(d.min_calls),
        slow_call: match raw.slow_call.as_deref() {
            Some("off") => None,
            Some(_) => Some(duration_field(
                raw.slow_call,
                Duration::ZERO,
                "breaker.slow_call",
                issues,
            )),
            None => d.slow_call,
        },
        base_ejection: duration_field(
            raw.base_ejection,
            d.base_ejection,
            "breaker.base_ejection",
            issues,
        ),
        max_ejection: duration_field(
            raw.max_ejection,
            d.max_ejection,
            "breaker.max_ejection",
            issues,
        ),
        half_open_probes,
        probe_timeout: d.probe_timeout,
    }
}

fn build_budget(raw: RawBudget, issues: &mut Vec<Issue>) -> BudgetConfig {
    let d = BudgetConfig::default();
    let ratio = raw.ratio.unwrap_or(d.ratio);
    let min_per_second = raw.min_per_second.unwrap_or(d.min_per_second);
    for (key, value) in [("ratio", ratio), ("min_per_second", min_per_second)] {
        if !(value.is_finite() && value >= 0.0) {
            issues.push(Issue {
                path: format!("retry_budget.{key}"),
                message: format!("{value} must be a non-negative number"),
            });
        }
    }
    BudgetConfig {
        ratio,
        min_per_second,
        window: duration_field(raw.window, d.window, "retry_budget.window", issues),
    }
}

fn duration_field(
    text: Option<String>,
    default: Duration,
    path: &str,
    issues: &mut Vec<Issue>,
) -> Duration {
    let Some(text) = text else { return default };
    match humantime::parse_duration(&text) {
        // Beyond a day is a slip of the pen, and would overflow clock arithmetic
        // somewhere far enough out.
        Ok(d) if d > MAX_DURATION => {
            issues.push(Issue {
                path: path.to_string(),
                message: format!(
                    "`{text}` is longer than a day; no timeout or break here should be"
                ),
            });
            default
        }
        Ok(d) if !d.is_zero() => d,
        _ => {
            issues.push(Issue {
                path: path.to_string(),
                message: format!("`{text}` is not a positive duration such as 500ms, 30s or 2m"),
            });
            default
        }
    }
}

/// Deserializes one section, recording the failure with its full key path.
pub(crate) fn deserialize_at<T: DeserializeOwned>(
    value: Value,
    prefix: &str,
    issues: &mut Vec<Issue>,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Some(v),
        Err(e) => {
            let inner = e.path().to_string();
            let path = match (prefix.is_empty(), inner.as_str()) {
                (_, ".") => prefix.to_string(),
                (true, _) => inner,
                (false, _) => format!("{prefix}.{inner}"),
            };
            let mut message = e.into_inner().to_string();
            if message.starts_with("unknown field") {
                message.push_str(" (see the config reference in README.md)");
            }
            issues.push(Issue { path, message });
            None
        }
    }
}

/// Stands in for a `${...}` reference while the YAML is parsed.
const REFERENCE_TOKEN: &str = "__bulwark_env_";

/// Swaps each `${...}` for a plain token before parsing. `${VAR}` is not
/// valid YAML inside a flow mapping (`{ api_key: ${KEY} }`, braces being flow
/// syntax), yet that is the natural way to write it; and substituting values
/// before parsing would let a value change the YAML structure. Tokens are
/// replaced by their values after parsing, in `interpolate`.
fn protect_references(text: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut references = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push_str("$$");
            rest = tail;
        } else if let Some(end) = after.strip_prefix('{').and_then(|body| body.find('}')) {
            out.push_str(&format!("{REFERENCE_TOKEN}{}__", references.len()));
            references.push(after[1..end + 1].to_string());
            rest = &after[end + 2..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    (out, references)
}

/// Puts the `${...}` references back into a string and substitutes them.
fn restore_references(s: &str, references: &[String]) -> String {
    let mut out = s.to_string();
    for (i, expr) in references.iter().enumerate().rev() {
        out = out.replace(&format!("{REFERENCE_TOKEN}{i}__"), &format!("${{{expr}}}"));
    }
    out
}

/// Replaces `${VAR}` and `${VAR:-default}` in every string value. `$$`
/// writes a literal `$`.
fn interpolate(
    value: &mut Value,
    path: &str,
    references: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    issues: &mut Vec<Issue>,
) {
    match value {
        Value::String(s) if s.contains('$') || s.contains(REFERENCE_TOKEN) => {
            match substitute(&restore_references(s, references), env) {
                Ok(new) => *s = new,
                Err(message) => issues.push(Issue {
                    path: path.to_string(),
                    message,
                }),
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate(item, &format!("{path}[{i}]"), references, env, issues);
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                interpolate(item, &child, references, env, issues);
            }
        }
        _ => {}
    }
}

fn substitute(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in `{s}`"))?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (expr, None),
            };
            match (env(name).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!(
                        "environment variable {name} is not set (write ${{{name}:-default}} to make it optional)"
                    ));
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
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
            "listen: 127.0.0.1:${PORT}\nproviders:\n  a: { kind: anthropic, api_key: ${KEY} }\n  local: { kind: openai-compatible, base_url: http://127.0.0.1:11434/v1/ }\nroutes:\n  smart: { targets: [a/claude-sonnet-4-5, local/meta/llama3], first_token_timeout: 2s }\n",
        )?;
        assert_eq!(config.listen.port(), 9000);
        let a = &config.providers["a"];
        assert_eq!(a.base_url, "https://api.anthropic.com");
        assert_eq!(a.api_key.as_ref().map(Secret::expose), Some("sk-test"));
        assert_eq!(
            config.providers["local"].base_url,
            "http://127.0.0.1:11434/v1"
        );
        let smart = &config.routes["smart"];
        assert_eq!(smart.targets[1].model, "meta/llama3");
        assert_eq!(smart.timeouts.first_token, Duration::from_secs(2));
        assert_eq!(smart.timeouts.attempt, DEFAULT_ATTEMPT_TIMEOUT);
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
        assert_eq!(r.tiers, vec![0..2, 2..3]);
        assert_eq!(r.weights, vec![1, 3, 1]);
        assert_eq!(r.balance, Balance::LeastLatency);
        assert_eq!(r.retry.max_retries, 1);
        assert_eq!(r.timeouts.deadline, Duration::from_secs(10));
        assert!(
            matches!(r.hedge_after, Some(crate::route::HedgeAfter::Percentile { percentile, .. }) if percentile == 90.0)
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
    fn client_keys_are_hashed_and_validated() -> Result<(), ConfigError> {
        let config = load(
            "providers:\n  a: { kind: openai }\nroutes:\n  r: { targets: [a/x] }\nkeys:\n  team: { key: team-key-0123456789, routes: [r, a/y] }\n",
        )?;
        let key = &config.keys[0];
        assert_eq!(key.hash, *blake3::hash(b"team-key-0123456789").as_bytes());
        assert!(
            !format!("{config:?}").contains("team-key-0123456789"),
            "a key leaked into Debug output"
        );
        let Err(error) = load(
            "providers:\n  a: { kind: openai }\nroutes:\n  r: { targets: [a/x] }\nkeys:\n  short: { key: abc }\n  both: { key: team-key-0123456789, key_blake3: ab }\n  hex: { key_blake3: xyz }\n  routes: { key: team-key-0123456789, routes: [nope] }\n",
        ) else {
            panic!("an invalid config loaded");
        };
        let paths: Vec<&str> = error.issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "keys.both",
                "keys.hex.key_blake3",
                "keys.routes.routes[0]",
                "keys.short.key"
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
    fn substitution_handles_defaults_and_escapes() {
        assert_eq!(
            substitute("${NOPE:-x}-$$-${KEY}", &env),
            Ok("x-$-sk-test".to_string())
        );
        assert!(substitute("${KEY", &env).is_err());
    }
}
