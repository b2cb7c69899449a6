//! The route table: which targets, in which order, serve a requested model,
//! and the health state each target carries between requests.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::time::Instant;

use crate::config::{Config, RateLimits, RoutePolicy};
use crate::error::{ApiError, ErrorKind};
use crate::limit::book::{Grant, QuotaBook};
pub use crate::limit::quota::Tokens;
use crate::limit::window::Refusal;
use crate::provider::{Provider, ProviderBuildError};
use crate::resilience::balance::Balance;
use crate::resilience::breaker::{Breaker, BreakerConfig};
use crate::resilience::budget::{BudgetConfig, RetryBudget};
use crate::resilience::concurrency::{Aimd, ConcurrencyConfig, Signal};
use crate::resilience::ewma::PeakEwma;
use crate::shared::Shared;
use crate::shared_breakers::BreakerBoard;
use std::collections::VecDeque;
use std::time::Duration;

/// Target states kept for `provider/model` names clients choose themselves.
pub(crate) const MAX_TARGET_STATES: usize = 4096;

/// How fast a target's latency estimate forgets a slow spell.
const EWMA_DECAY: Duration = Duration::from_secs(10);
use tokio::sync::Notify;

mod ticket;
pub use ticket::Ticket;

/// What one target (provider + model) remembers between requests. Shared by
/// every route that uses the target.
#[derive(Debug)]
pub struct TargetState {
    pub breaker: Mutex<Breaker>,
    pub budget: Mutex<RetryBudget>,
    concurrency: Mutex<Aimd>,
    /// Wakes a request waiting for a concurrency slot.
    slot_freed: Notify,
    /// Recent first-token times, for least-latency balancing and hedging.
    first_tokens: Mutex<FirstTokens>,
    /// The provider's per-minute quotas for this target, shared with the
    /// other instances when `redis:` is set.
    quotas: QuotaBook,
    /// Whether `quotas` holds any, known without taking its lock.
    has_quotas: bool,
    /// Until when the provider said its quota is used up.
    quota_paused_until: Mutex<Option<Instant>>,
    /// The other instances, told when this target's breaker opens or closes.
    shared: Option<Shared>,
}

/// How long a target takes to its first token: a peak-EWMA for balancing,
/// and the last samples for percentile-based hedging.
#[derive(Debug)]
pub struct FirstTokens {
    pub ewma: PeakEwma,
    recent: VecDeque<Duration>,
}

/// Enough samples for a percentile to mean something, few enough to follow
/// a change within a minute or so of traffic.
const RECENT_SAMPLES: usize = 200;
const MIN_SAMPLES_FOR_PERCENTILE: usize = 20;

impl FirstTokens {
    fn observe(&mut self, sample: Duration, now: Instant) {
        self.ewma.observe(sample, now);
        if self.recent.len() == RECENT_SAMPLES {
            self.recent.pop_front();
        }
        self.recent.push_back(sample);
    }

    /// The `p`-th percentile (0-100) of recent samples, once there are enough.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        if self.recent.len() < MIN_SAMPLES_FOR_PERCENTILE {
            return None;
        }
        let mut sorted: Vec<Duration> = self.recent.iter().copied().collect();
        sorted.sort_unstable();
        crate::observe::percentile::nearest_rank(&sorted, p)
    }
}

impl TargetState {
    fn new(
        breaker: BreakerConfig,
        budget: BudgetConfig,
        concurrency: ConcurrencyConfig,
        limits: RateLimits,
        shared: Option<(&Shared, &str)>,
    ) -> Self {
        let quotas = QuotaBook::new(
            limits,
            shared.map(|(s, _)| s),
            &format!("quota:target:{}", shared.map_or("", |(_, label)| label)),
        );
        TargetState {
            breaker: Mutex::new(Breaker::new(breaker, Instant::now())),
            budget: Mutex::new(RetryBudget::new(budget)),
            concurrency: Mutex::new(Aimd::new(concurrency)),
            slot_freed: Notify::new(),
            first_tokens: Mutex::new(FirstTokens {
                ewma: PeakEwma::new(EWMA_DECAY, Instant::now()),
                recent: VecDeque::with_capacity(RECENT_SAMPLES),
            }),
            has_quotas: !quotas.is_empty(),
            quotas,
            quota_paused_until: Mutex::new(None),
            shared: shared.map(|(s, _)| s.clone()),
        }
    }

    /// Whether any per-minute quota applies to this target.
    pub fn has_quotas(&self) -> bool {
        self.has_quotas
    }

    /// Holds requests to this target until the provider's quota resets.
    pub fn pause_quota(&self, reset: Duration) {
        let until = Instant::now() + reset;
        let mut paused = self
            .quota_paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *paused = Some(paused.map_or(until, |p| p.max(until)));
    }

    /// Takes one request and `tokens` from the target's quotas, if both
    /// fit now; otherwise says how long until they would.
    pub async fn take_quota(&self, tokens: Tokens) -> Result<Option<Grant>, Refusal> {
        let now = Instant::now();
        if let Some(until) = *self
            .quota_paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            && until > now
        {
            return Err(Refusal::Wait(until - now));
        }
        if !self.has_quotas {
            return Ok(None);
        }
        self.quotas.take(tokens).await.map(Some)
    }

    /// Replaces a grant's token estimate by the answer's real usage.
    pub fn correct_tokens(&self, grant: &Grant, estimated: Tokens, actual: Tokens) {
        self.quotas.correct(grant, estimated, actual);
    }

    pub fn observe_first_token(&self, sample: Duration) {
        let now = Instant::now();
        self.first_tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .observe(sample, now);
    }

    /// A hang, for balancing only: it must not stretch the hedging delay.
    pub fn observe_timeout(&self, waited: Duration) {
        let now = Instant::now();
        self.first_tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .ewma
            .observe(waited, now);
    }

    pub fn with_first_tokens<T>(&self, f: impl FnOnce(&FirstTokens) -> T) -> T {
        f(&self
            .first_tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner))
    }

    fn with_concurrency<T>(&self, f: impl FnOnce(&mut Aimd) -> T) -> T {
        f(&mut self
            .concurrency
            .lock()
            .unwrap_or_else(PoisonError::into_inner))
    }

    /// A concurrency slot if one is free now.
    pub fn try_permit(self: &Arc<Self>) -> Option<Permit> {
        self.with_concurrency(Aimd::try_acquire).then(|| Permit {
            state: Arc::clone(self),
            signal: Signal::Ignore,
        })
    }

    /// A concurrency slot, waiting for one until `deadline`.
    pub async fn permit_by(self: &Arc<Self>, deadline: Instant) -> Option<Permit> {
        loop {
            // Register before checking, so a release in between still wakes us.
            let freed = self.slot_freed.notified();
            if let Some(permit) = self.try_permit() {
                return Some(permit);
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return None;
            }
        }
    }

    /// The current concurrency limit and requests in flight.
    pub fn concurrency(&self) -> (u32, u32) {
        self.with_concurrency(|c| (c.limit(), c.in_flight()))
    }

    /// Runs `f` on the breaker. The lock is never held across an await, and
    /// a panic elsewhere cannot leave the state half-written, so a poisoned
    /// lock is still safe to use.
    pub fn with_breaker<T>(&self, f: impl FnOnce(&mut Breaker) -> T) -> T {
        f(&mut self.breaker.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn with_budget<T>(&self, f: impl FnOnce(&mut RetryBudget) -> T) -> T {
        f(&mut self.budget.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// A concurrency slot on a target, returned when dropped. Whoever holds it
/// sets `signal` to how the call went, which adjusts the limit.
#[derive(Debug)]
pub struct Permit {
    state: Arc<TargetState>,
    pub signal: Signal,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let signal = self.signal;
        self.state.with_concurrency(|c| c.release(signal));
        self.state.slot_freed.notify_one();
    }
}

/// One provider model a route can send a request to.
#[derive(Debug, Clone)]
pub struct Target {
    pub provider: Arc<Provider>,
    pub model: String,
    /// `provider/model`, as written in the config and reported to clients.
    pub label: String,
    pub state: Arc<TargetState>,
    /// The model's context window in tokens, when configured.
    pub context_window: Option<u64>,
    /// Whether the model reasons and reads images.
    pub traits: crate::wire::translate::ModelTraits,
}

pub use crate::config::{HedgeAfter, MidStream};

/// A route ready to serve: its targets resolved to providers and their
/// shared state, its policy as the config gave it.
#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    /// Tried in order: the first is the primary, the rest are fallbacks.
    pub targets: Vec<Target>,
    /// Tried in order when every target failed.
    pub degrade: Vec<DegradeStep>,
    pub admission: Option<crate::limit::queue::AdmissionQueue>,
    pub policy: RoutePolicy,
}

/// A fallback of last resort, resolved.
#[derive(Debug, Clone)]
pub enum DegradeStep {
    StaleCache,
    Target(Target),
    Static(String),
}

impl Route {
    /// This route with `target` as its only one, for a degrade step: no
    /// hedge (there is nothing to hedge to) and no further degrading.
    pub fn narrowed_to(&self, target: Target) -> Route {
        Route {
            name: self.name.clone(),
            targets: vec![target],
            degrade: Vec::new(),
            admission: self.admission.clone(),
            policy: RoutePolicy {
                tiers: std::iter::once(0..1).collect(),
                weights: vec![1],
                hedge_after: None,
                ..self.policy.clone()
            },
        }
    }

    /// The order this request tries the targets in.
    pub fn plan(&self) -> Vec<usize> {
        let costs: Vec<Option<f64>> = match self.policy.balance {
            Balance::Weighted => vec![None; self.targets.len()],
            Balance::LeastLatency => self
                .targets
                .iter()
                .map(|t| t.state.with_first_tokens(|f| f.ewma.estimate()))
                .collect(),
        };
        let mut rng = fastrand::Rng::new();
        let policy = &self.policy;
        crate::resilience::balance::plan(
            &policy.tiers,
            &policy.weights,
            &costs,
            policy.balance,
            &mut rng,
        )
    }

    /// How long to wait before hedging an attempt on `target`.
    pub fn hedge_delay(&self, target: &Target) -> Option<Duration> {
        match self.policy.hedge_after? {
            HedgeAfter::Fixed(delay) => Some(delay),
            HedgeAfter::Percentile {
                percentile,
                fallback,
            } => Some(
                target
                    .state
                    .with_first_tokens(|f| f.percentile(percentile))
                    .unwrap_or(fallback),
            ),
        }
    }
}

/// The longest `model` a request may name. Far above any provider's model
/// ids (a Bedrock inference-profile ARN is about 100 bytes), and a bound on
/// what a client can make Bulwark keep: every direct `provider/model` target
/// a client names gets a state of its own, and its name reaches logs, spans
/// and headers.
pub const MAX_MODEL_NAME: usize = 512;

#[derive(Debug)]
pub struct RouteTable {
    providers: BTreeMap<String, Arc<Provider>>,
    routes: BTreeMap<String, Arc<Route>>,
    /// Target states by `provider/model`, including targets named directly
    /// by clients, which are added on first use.
    states: Mutex<HashMap<String, Arc<TargetState>>>,
    /// What each provider says its models can do (`models:`).
    models: BTreeMap<String, BTreeMap<String, crate::config::ModelTraitsOverride>>,
    breaker: BreakerConfig,
    budget: BudgetConfig,
    /// Redis and the breakers other instances' messages reach, when
    /// `redis:` is set; kept by a reload.
    board: Option<Arc<BreakerBoard>>,
    /// What the table was built from, to tell on a reload which targets
    /// and routes changed.
    config: Config,
}

impl RouteTable {
    pub fn from_config(config: &Config) -> Result<RouteTable, ProviderBuildError> {
        RouteTable::build(config, None, None)
    }

    /// A table whose quotas and breakers are shared with the other
    /// instances through `board`'s Redis.
    pub fn shared_from_config(
        config: &Config,
        board: Option<Arc<BreakerBoard>>,
    ) -> Result<RouteTable, ProviderBuildError> {
        RouteTable::build(config, None, board)
    }

    /// A table for `config` that carries over what `self` learnt: every
    /// target whose settings are the same keeps its state (breaker, retry
    /// budget, concurrency, first-token times, quotas), an unchanged
    /// provider keeps its connection pool, and a route whose admission
    /// settings are the same keeps its queue. The rest starts fresh.
    pub fn reloaded(
        &self,
        config: &Config,
    ) -> Result<(RouteTable, crate::reload::TableDiff), ProviderBuildError> {
        let table = RouteTable::build(config, Some(self), self.board.clone())?;
        let diff = crate::reload::TableDiff::between(&self.config, config);
        Ok((table, diff))
    }

    fn build(
        config: &Config,
        previous: Option<&RouteTable>,
        board: Option<Arc<BreakerBoard>>,
    ) -> Result<RouteTable, ProviderBuildError> {
        let mut providers = BTreeMap::new();
        for (name, provider) in &config.providers {
            let kept = previous
                .filter(|p| p.config.providers.get(name) == Some(provider))
                .and_then(|p| p.providers.get(name));
            let provider = match kept {
                Some(kept) => Arc::clone(kept),
                None => Arc::new(Provider::new(name, provider.clone())?),
            };
            providers.insert(name.clone(), provider);
        }
        let states = previous
            .map(|p| crate::reload::kept_states(&p.config, config, &p.target_states()))
            .unwrap_or_default();
        let mut table = RouteTable {
            providers,
            config: config.clone(),
            routes: BTreeMap::new(),
            states: Mutex::new(states),
            models: config
                .providers
                .iter()
                .map(|(name, provider)| (name.clone(), provider.models.clone()))
                .collect(),
            breaker: config.breaker,
            budget: config.retry_budget,
            board,
        };
        for (name, route) in &config.routes {
            // Validation guarantees every target's provider exists.
            let targets = route
                .targets
                .iter()
                .filter_map(|t| table.target(&t.provider, &t.model))
                .collect();
            let route = Route {
                name: name.clone(),
                targets,
                policy: route.policy.clone(),
                admission: route.admission.map(|(running, waiting)| {
                    // Requests waiting in the old queue keep their places.
                    let kept = previous
                        .filter(|p| {
                            p.config
                                .routes
                                .get(name)
                                .is_some_and(|old| old.admission == route.admission)
                        })
                        .and_then(|p| p.routes.get(name)?.admission.clone());
                    kept.unwrap_or_else(|| {
                        crate::limit::queue::AdmissionQueue::new(running, waiting)
                    })
                }),
                degrade: route
                    .degrade
                    .iter()
                    .filter_map(|step| match step {
                        crate::config::Degrade::StaleCache => Some(DegradeStep::StaleCache),
                        crate::config::Degrade::Static(text) => {
                            Some(DegradeStep::Static(text.clone()))
                        }
                        crate::config::Degrade::Target(t) => {
                            table.target(&t.provider, &t.model).map(DegradeStep::Target)
                        }
                    })
                    .collect(),
            };
            table.routes.insert(name.clone(), Arc::new(route));
        }
        Ok(table)
    }

    fn target(&self, provider_name: &str, model: &str) -> Option<Target> {
        let provider = self.providers.get(provider_name)?;
        let label = format!("{provider_name}/{model}");
        let state = {
            let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
            let shared = self.board.as_ref().map(|b| (b.shared(), label.as_str()));
            let fresh = || {
                Arc::new(TargetState::new(
                    self.breaker,
                    self.budget,
                    provider.concurrency(),
                    provider.limits(),
                    shared,
                ))
            };
            match states.get(&label) {
                Some(state) => Arc::clone(state),
                // Clients can name any model: past a bound, a direct target
                // gets a state of its own for the request, not a lasting one.
                None if states.len() >= MAX_TARGET_STATES => fresh(),
                None => {
                    let state = fresh();
                    if let Some(board) = &self.board {
                        board.register(&label, &state);
                    }
                    states.insert(label.clone(), Arc::clone(&state));
                    state
                }
            }
        };
        Some(Target {
            provider: Arc::clone(provider),
            model: model.to_string(),
            context_window: provider.context_window(model),
            traits: crate::wire::translate::traits(
                model,
                self.models.get(provider_name).and_then(|m| m.get(model)),
            ),
            label,
            state,
        })
    }

    /// A route by name, or a one-target route for `provider/model`.
    pub fn resolve(&self, model: &str) -> Result<Arc<Route>, ApiError> {
        if model.len() > MAX_MODEL_NAME {
            return Err(ApiError::invalid_param(
                "model",
                format!(
                    "the model is named in {} bytes; route and model names are at most {MAX_MODEL_NAME}",
                    model.len()
                ),
            ));
        }
        if let Some(route) = self.routes.get(model) {
            return Ok(Arc::clone(route));
        }
        if let Some((provider_name, provider_model)) = model.split_once('/')
            && !provider_model.is_empty()
            && let Some(target) = self.target(provider_name, provider_model)
        {
            return Ok(Arc::new(Route {
                name: model.to_string(),
                targets: vec![target],
                policy: RoutePolicy::single_target(),
                admission: None,
                degrade: Vec::new(),
            }));
        }
        let routes: Vec<&str> = self.routes.keys().map(String::as_str).collect();
        let providers: Vec<&str> = self.providers.keys().map(String::as_str).collect();
        Err(ApiError::new(
            ErrorKind::NotFound,
            format!(
                "model `{model}` is not served here: name a route ({}) or `<provider>/<model>` with a provider of {}",
                if routes.is_empty() { "none configured".to_string() } else { routes.join(", ") },
                providers.join(", ")
            ),
        )
        .with_code("model_not_found"))
    }

    /// Every target's state, by `provider/model`.
    pub fn target_states(&self) -> Vec<(String, Arc<TargetState>)> {
        let states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<_> = states
            .iter()
            .map(|(label, state)| (label.clone(), Arc::clone(state)))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.values().map(|r| r.as_ref())
    }
}
