//! `Client`: the engine in-process. The HTTP gateway is a thin layer over it,
//! so both behave identically.

use crate::api::{ChatRequest, ChatResponse};
use crate::config::Config;
use crate::engine::{self, Failed, Served};
use crate::provider::{EventStream, ProviderBuildError};
use crate::route::{Route, RouteTable};

#[derive(Debug)]
pub struct Client {
    table: RouteTable,
}

impl Client {
    pub fn from_config(config: &Config) -> Result<Client, ProviderBuildError> {
        Ok(Client {
            table: RouteTable::from_config(config)?,
        })
    }

    /// Answers a request in one piece. `request.model` names a route or
    /// `provider/model`.
    pub async fn chat(&self, request: ChatRequest) -> Result<Served<ChatResponse>, Failed> {
        let route = self
            .table
            .resolve(&request.model)
            .map_err(Failed::before_any_attempt)?;
        let mut request = request;
        request.stream = false;
        engine::chat(&route, &request).await
    }

    /// Answers a request as a stream of events. Returns once the first
    /// content has arrived from some target; an `Err` item ends the stream
    /// if that target fails later.
    pub async fn stream(&self, request: ChatRequest) -> Result<Served<EventStream>, Failed> {
        let route = self
            .table
            .resolve(&request.model)
            .map_err(Failed::before_any_attempt)?;
        let mut request = request;
        request.stream = true;
        engine::stream(&route, &request).await
    }

    /// The configured routes, for model listings.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.table.routes()
    }
}
