//! The route table: which targets, in which order, serve a requested model.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{Config, Timeouts};
use crate::error::{ApiError, ErrorKind};
use crate::provider::{Provider, ProviderBuildError};

/// One provider model a route can send a request to.
#[derive(Debug, Clone)]
pub struct Target {
    pub provider: Arc<Provider>,
    pub model: String,
    /// `provider/model`, as written in the config and reported to clients.
    pub label: String,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    /// Tried in order: the first is the primary, the rest are fallbacks.
    pub targets: Vec<Target>,
    pub timeouts: Timeouts,
}

#[derive(Debug)]
pub struct RouteTable {
    providers: BTreeMap<String, Arc<Provider>>,
    routes: BTreeMap<String, Arc<Route>>,
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
        let mut routes = BTreeMap::new();
        for (name, route) in &config.routes {
            // Validation guarantees every target's provider exists.
            let targets = route
                .targets
                .iter()
                .filter_map(|t| {
                    providers.get(&t.provider).map(|p| Target {
                        provider: Arc::clone(p),
                        model: t.model.clone(),
                        label: t.to_string(),
                    })
                })
                .collect();
            routes.insert(
                name.clone(),
                Arc::new(Route {
                    name: name.clone(),
                    targets,
                    timeouts: route.timeouts,
                }),
            );
        }
        Ok(RouteTable { providers, routes })
    }

    /// A route by name, or a one-target route for `provider/model`.
    pub fn resolve(&self, model: &str) -> Result<Arc<Route>, ApiError> {
        if let Some(route) = self.routes.get(model) {
            return Ok(Arc::clone(route));
        }
        if let Some((provider_name, provider_model)) = model.split_once('/')
            && let Some(provider) = self.providers.get(provider_name)
            && !provider_model.is_empty()
        {
            return Ok(Arc::new(Route {
                name: model.to_string(),
                targets: vec![Target {
                    provider: Arc::clone(provider),
                    model: provider_model.to_string(),
                    label: model.to_string(),
                }],
                timeouts: Timeouts::default(),
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
