//! The shared simulator state behind [`Sim`]: live config and fault rules,
//! the request log and counters.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Serialize;
use serde_json::Value;

use crate::config::{Latency, SimConfig};
use crate::dist::LatencyDist;
use crate::fault::{self, Fault, FaultRule};
use crate::format::Format;
use crate::phase::SimPhase;

/// How many requests the log keeps.
const LOG_CAPACITY: usize = 200;

/// A request received on a provider path, as kept in the log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedRequest {
    /// Unix milliseconds when the request arrived.
    pub time_ms: u64,
    pub method: String,
    /// The path with its query string (Gemini's `?key=` value redacted).
    pub path: String,
    pub format: Format,
    pub model: Option<String>,
    pub stream: bool,
    /// Every header as received, lower-cased names; the values of
    /// credential headers (`authorization`, `x-api-key`, `x-goog-api-key`,
    /// `api-key`, `cookie`, `proxy-authorization`, `x-amz-security-token`)
    /// replaced by `<redacted>`.
    pub headers: BTreeMap<String, String>,
    /// Whether any credential header or `?key=` was present (never its value).
    pub auth_present: bool,
    /// `ok`, `error_<status>` or `fault_<label>`.
    pub outcome: String,
    /// The JSON body (`null` when it was not JSON).
    pub body: Value,
}

/// Request counters by format, model and outcome.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SimStats {
    pub total: u64,
    pub by_format: BTreeMap<String, u64>,
    pub by_model: BTreeMap<String, u64>,
    pub by_outcome: BTreeMap<String, u64>,
}

/// What one request needs from the live config, read together with its
/// fault under a single lock (see [`Sim::pick`]).
#[derive(Debug, Clone)]
pub(crate) struct Picked {
    /// From the rules; `None` when the request brought its own fault.
    pub fault: Option<Fault>,
    pub latency: Latency,
    pub latency_dist: Option<LatencyDist>,
    pub speed: f64,
    pub rate_limit_rpm: Option<u64>,
}

#[derive(Default)]
struct Log {
    requests: VecDeque<RecordedRequest>,
    stats: SimStats,
}

struct Inner {
    config: Mutex<SimConfig>,
    log: Mutex<Log>,
    seq: AtomicU64,
    /// When each request of the last minute was let through (rate-limiting mode).
    quota: Mutex<std::collections::VecDeque<tokio::time::Instant>>,
    /// Google access tokens issued by `POST /token` (Vertex).
    google_tokens: crate::cloud::google_token::Tokens,
    /// Tokens issued by the simulated Entra ID (Azure).
    entra: crate::cloud::entra::Tokens,
}

/// Handle on a running simulator; cheap to clone, shared with the router.
#[derive(Clone)]
pub struct Sim {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave these plain collections in
    // a state worse than stale, so keep serving.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Sim {
    /// A simulator with the given config.
    pub fn new(config: SimConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config: Mutex::new(config),
                log: Mutex::new(Log::default()),
                seq: AtomicU64::new(1),
                quota: Mutex::new(std::collections::VecDeque::new()),
                google_tokens: Default::default(),
                entra: crate::cloud::entra::Tokens::default(),
            }),
        }
    }

    /// The axum router serving the provider paths and the `/_sim` control API.
    pub fn router(&self) -> axum::Router {
        crate::server::router(self.clone())
    }

    /// Replace all fault rules.
    pub fn set_faults(&self, rules: Vec<FaultRule>) {
        lock(&self.inner.config).faults = rules;
    }

    /// Append one fault rule.
    pub fn add_fault(&self, rule: FaultRule) {
        lock(&self.inner.config).faults.push(rule);
    }

    /// Remove all fault rules.
    pub fn clear_faults(&self) {
        lock(&self.inner.config).faults.clear();
    }

    /// Current fault rules (with `count` showing what is left).
    pub fn faults(&self) -> Vec<FaultRule> {
        lock(&self.inner.config).faults.clone()
    }

    /// Change the default pacing.
    pub fn set_latency(&self, latency: Latency) {
        lock(&self.inner.config).latency = latency;
    }

    /// Sample pacing per request (`None`: back to the fixed `latency`).
    pub fn set_latency_dist(&self, dist: Option<LatencyDist>) {
        lock(&self.inner.config).latency_dist = dist;
    }

    /// Change the time compression factor (see [`SimConfig::speed`]).
    pub fn set_speed(&self, speed: f64) {
        lock(&self.inner.config).speed = speed;
    }

    /// Change the request quota (`None`: unlimited). Requests already
    /// counted stay in the window, as they would at a real provider.
    pub fn set_rate_limit_rpm(&self, rpm: Option<u64>) {
        lock(&self.inner.config).rate_limit_rpm = rpm;
    }

    /// Replace latency, latency distribution, fault rules and quota at once.
    pub fn apply_phase(&self, phase: SimPhase) {
        phase.apply_to(&mut lock(&self.inner.config));
    }

    /// Change several settings atomically: requests see the config before
    /// or after `change`, never in between.
    pub fn update(&self, change: impl FnOnce(&mut SimConfig)) {
        change(&mut lock(&self.inner.config));
    }

    /// A snapshot of the current config.
    pub fn config(&self) -> SimConfig {
        lock(&self.inner.config).clone()
    }

    /// The last 200 requests, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.inner.log).requests.iter().cloned().collect()
    }

    /// Clear the request log and the counters.
    pub fn clear_requests(&self) {
        let mut log = lock(&self.inner.log);
        log.requests.clear();
        log.stats = SimStats::default();
    }

    /// Requests received on the provider paths since start or the last
    /// [`Sim::clear_requests`].
    pub fn request_count(&self) -> usize {
        usize::try_from(lock(&self.inner.log).stats.total).unwrap_or(usize::MAX)
    }

    /// Counters by format, model and outcome.
    pub fn stats(&self) -> SimStats {
        lock(&self.inner.log).stats.clone()
    }

    pub(crate) fn google_tokens(&self) -> &crate::cloud::google_token::Tokens {
        &self.inner.google_tokens
    }

    /// Successful grants at the simulated Entra token endpoint.
    pub fn entra_grants(&self) -> u64 {
        self.inner.entra.grants()
    }

    pub(crate) fn entra(&self) -> &crate::cloud::entra::Tokens {
        &self.inner.entra
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.inner.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// The fault from the rules (if `use_rules`) and the phase settings
    /// that go with it, under one lock so a phase switch cannot fall between.
    pub(crate) fn pick(
        &self,
        format: Format,
        model: &str,
        stream: bool,
        use_rules: bool,
    ) -> Picked {
        let mut config = lock(&self.inner.config);
        let fault = if use_rules {
            fault::select(&mut config.faults, format, model, stream)
        } else {
            None
        };
        Picked {
            fault,
            latency: config.latency,
            latency_dist: config.latency_dist,
            speed: config.speed,
            rate_limit_rpm: config.rate_limit_rpm,
        }
    }

    /// Counts a request against a quota per `minute` (a scenario minute in
    /// wall time): `Ok((remaining, reset))` if it fits, `Err(wait)` until
    /// one does.
    pub(crate) fn take_quota(
        &self,
        rpm: u64,
        minute: std::time::Duration,
    ) -> Result<(u64, std::time::Duration), std::time::Duration> {
        let now = tokio::time::Instant::now();
        let mut quota = lock(&self.inner.quota);
        while quota
            .front()
            .is_some_and(|at| now.duration_since(*at) >= minute)
        {
            quota.pop_front();
        }
        let reset = |quota: &std::collections::VecDeque<tokio::time::Instant>| {
            quota.front().map_or(minute, |oldest| {
                minute.saturating_sub(now.duration_since(*oldest))
            })
        };
        if (quota.len() as u64) < rpm {
            quota.push_back(now);
            Ok((rpm - quota.len() as u64, reset(&quota)))
        } else {
            Err(reset(&quota))
        }
    }

    pub(crate) fn record(&self, req: RecordedRequest) {
        let mut log = lock(&self.inner.log);
        let stats = &mut log.stats;
        stats.total += 1;
        *stats.by_format.entry(req.format.to_string()).or_default() += 1;
        if let Some(model) = &req.model {
            *stats.by_model.entry(model.clone()).or_default() += 1;
        }
        *stats.by_outcome.entry(req.outcome.clone()).or_default() += 1;
        if log.requests.len() == LOG_CAPACITY {
            log.requests.pop_front();
        }
        log.requests.push_back(req);
    }
}
