//! The route table: which targets, in which order, serve a requested model,
//! and the health state each target carries between requests.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::time::Instant;

use crate::config::{Config, RetryPolicy, Timeouts};
use crate::error::{ApiError, ErrorKind};
use crate::provider::{Provider, ProviderBuildError};
use crate::resilience::breaker::{Breaker, BreakerConfig};
use crate::resilience::budget::{BudgetConfig, RetryBudget};

/// What one target (provider + model) remembers between requests. Shared by
/// every route that uses the target.
#[derive(Debug)]
pub struct TargetState {
    pub breaker: Mutex<Breaker>,
    pub budget: Mutex<RetryBudget>,
}

impl TargetState {
    fn new(breaker: BreakerConfig, budget: BudgetConfig) -> Self {
        TargetState {
            breaker: Mutex::new(Breaker::new(breaker, Instant::now())),
            budget: Mutex::new(RetryBudget::new(budget)),
        }
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
}

#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    /// Tried in order: the first is the primary, the rest are fallbacks.
    pub targets: Vec<Target>,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    pub hedge_after: Option<std::time::Duration>,
}

#[derive(Debug)]
pub struct RouteTable {
    providers: BTreeMap<String, Arc<Provider>>,
    routes: BTreeMap<String, Arc<Route>>,
    /// Target states by `provider/model`, including targets named directly
    /// by clients, which are added on first use.
    states: Mutex<HashMap<String, Arc<TargetState>>>,
    breaker: BreakerConfig,
    budget: BudgetConfig,
}

impl RouteTable {
    pub fn from_config(config: &Config) -> Result<RouteTable, ProviderBuildError> {
        let mut providers = BTreeMap::new();
        for (name, provider) in &config.providers {
            providers.insert(
                name.clone(),
                Arc::new(Provider::new(name, provider.clone())?),
            );
        }
        let mut table = RouteTable {
            providers,
            routes: BTreeMap::new(),
            states: Mutex::new(HashMap::new()),
            breaker: config.breaker,
            budget: config.retry_budget,
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
                timeouts: route.timeouts,
                retry: route.retry,
                hedge_after: route.hedge_after,
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
            Arc::clone(
                states
                    .entry(label.clone())
                    .or_insert_with(|| Arc::new(TargetState::new(self.breaker, self.budget))),
            )
        };
        Some(Target {
            provider: Arc::clone(provider),
            model: model.to_string(),
            context_window: provider.context_window(model),
            label,
            state,
        })
    }

    /// A route by name, or a one-target route for `provider/model`.
    pub fn resolve(&self, model: &str) -> Result<Arc<Route>, ApiError> {
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
                timeouts: Timeouts::default(),
                retry: RetryPolicy::default(),
                hedge_after: None,
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

    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.values().map(|r| r.as_ref())
    }
}
