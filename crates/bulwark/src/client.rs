//! `Client`: the engine in-process. The HTTP gateway is a thin layer over it,
//! so both behave identically.

use futures_util::StreamExt;
use tokio::sync::broadcast;

use crate::aggregate::aggregate;
use crate::api::{ChatRequest, ChatResponse};
use crate::config::Config;
use crate::engine::{self, Answer, Failed, Mode, RequestOptions, Served};
use crate::events::{Event, EventBus};
use crate::provider::{ChunkStream, EventStream, ProviderBuildError};
use crate::route::{Route, RouteTable};

#[derive(Debug)]
pub struct Client {
    table: RouteTable,
    events: EventBus,
}

impl Client {
    pub fn from_config(config: &Config) -> Result<Client, ProviderBuildError> {
        Ok(Client {
            table: RouteTable::from_config(config)?,
            events: EventBus::default(),
        })
    }

    /// Every decision the engine makes, as it makes it.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Answers a request in one piece. `request.model` names a route or
    /// `provider/model`.
    pub async fn chat(&self, request: ChatRequest) -> Result<Served<ChatResponse>, Failed> {
        self.chat_with(request, RequestOptions::default()).await
    }

    pub async fn chat_with(
        &self,
        request: ChatRequest,
        options: RequestOptions,
    ) -> Result<Served<ChatResponse>, Failed> {
        let served = self.complete_chunks(request, options).await?;
        Ok(served.map(|chunks| aggregate(chunks.iter().flat_map(|c| &c.events))))
    }

    /// Answers a request as a stream of events. Returns once the first
    /// content has arrived from some target; an `Err` item ends the stream
    /// if that target fails later.
    pub async fn stream(&self, request: ChatRequest) -> Result<Served<EventStream>, Failed> {
        self.stream_with(request, RequestOptions::default()).await
    }

    pub async fn stream_with(
        &self,
        request: ChatRequest,
        options: RequestOptions,
    ) -> Result<Served<EventStream>, Failed> {
        let served = self.stream_chunks(request, options).await?;
        Ok(served.map(|chunks| -> EventStream {
            Box::pin(chunks.flat_map(|item| {
                let events: Vec<_> = match item {
                    Ok(chunk) => chunk.events.into_iter().map(Ok).collect(),
                    Err(error) => vec![Err(error)],
                };
                futures_util::stream::iter(events)
            }))
        }))
    }

    /// The streamed answer as the provider's chunks, raw and decoded.
    pub async fn stream_chunks(
        &self,
        request: ChatRequest,
        options: RequestOptions,
    ) -> Result<Served<ChunkStream>, Failed> {
        let served = self.run(request, options, Mode::Stream).await?;
        Ok(served.map(|answer| match answer {
            Answer::Stream(stream) => stream,
            Answer::Complete(chunks) => {
                Box::pin(futures_util::stream::iter(chunks.into_iter().map(Ok)))
            }
        }))
    }

    /// The complete answer as the provider's chunks, raw and decoded.
    pub async fn complete_chunks(
        &self,
        request: ChatRequest,
        options: RequestOptions,
    ) -> Result<Served<Vec<crate::provider::Chunk>>, Failed> {
        let served = self.run(request, options, Mode::Complete).await?;
        let mut chunks = Vec::new();
        let mut served = served;
        let answer = std::mem::replace(&mut served.value, Answer::Complete(Vec::new()));
        match answer {
            Answer::Complete(all) => chunks = all,
            Answer::Stream(mut stream) => {
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(chunk) => chunks.push(chunk),
                        Err(error) => {
                            return Err(Failed {
                                error: error.to_api_error(),
                                attempts: served.attempts,
                                failures: vec![error],
                            });
                        }
                    }
                }
            }
        }
        Ok(served.map(|_| chunks))
    }

    async fn run(
        &self,
        request: ChatRequest,
        options: RequestOptions,
        mode: Mode,
    ) -> Result<Served<Answer>, Failed> {
        let route = self
            .table
            .resolve(&request.model)
            .map_err(Failed::before_any_attempt)?;
        let mut request = request;
        request.stream = mode == Mode::Stream;
        engine::run(&route, &request, options, mode, &self.events).await
    }

    /// The configured routes, for model listings.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.table.routes()
    }
}
