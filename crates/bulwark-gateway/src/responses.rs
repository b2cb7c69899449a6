//! What the Responses front door (`POST /v1/responses`) does beyond the
//! other doors: it reads the body as a JSON object once, so that a
//! `previous_response_id` can be replaced by the stored conversation before
//! it is decoded (`decode`), and it stores each finished answer's Response
//! object with its conversation (`Remember`). Answers repeat the request's
//! settings (`Echo`).

use std::sync::Arc;

use axum::response::Response;
use bulwark::aggregate::aggregate;
use bulwark::api::ChatRequest;
use bulwark::engine::Served;
use bulwark::error::ApiError;
use bulwark::provider::{Chunk, ChunkStream};
use bulwark::wire::json as j;
use bulwark::wire::responses::{self, Echo, StreamEncoder};
use serde_json::{Map, Value};

use crate::conversations::Conversations;
use crate::observe::StreamEnd;
use crate::respond;

/// What a Responses answer needs from its request: the settings it
/// repeats, and where its conversation is stored once it finishes.
pub struct Door {
    pub echo: Echo,
    remember: Remember,
}

/// Stores a finished answer's conversation: the request's body as
/// `Conversations::expand` left it (so the stored input holds the whole
/// history), for the tenant that asked.
struct Remember {
    conversations: Arc<Conversations>,
    tenant: Option<String>,
    body: Arc<Map<String, Value>>,
}

impl Remember {
    /// Off the answer's path: a slow or failing store never holds or fails
    /// the client.
    fn completed(&self, response: &Value) {
        self.conversations
            .remember_later(self.tenant.clone(), &self.body, response);
    }
}

/// Decodes a request body: parsed once; a `previous_response_id` replaced
/// by the stored conversation it continues, so that any target (of any
/// provider) receives the whole history; then decoded.
pub async fn decode(
    conversations: &Arc<Conversations>,
    tenant: Option<&str>,
    body: &[u8],
) -> Result<(ChatRequest, Door), ApiError> {
    let mut object = j::parse_object(body)?;
    // Taken before the history replaces `previous_response_id`: the answer
    // names the response it continues, as OpenAI's does.
    let echo = Echo::from_request(&object);
    conversations.expand(tenant, &mut object).await?;
    let request = responses::decode_object(object)?;
    let body = request
        .source
        .as_ref()
        .map(|source| Arc::clone(&source.body))
        .unwrap_or_default();
    let remember = Remember {
        conversations: Arc::clone(conversations),
        tenant: tenant.map(str::to_string),
        body,
    };
    Ok((request, Door { echo, remember }))
}

/// A complete answer as a Response object.
pub fn complete(served: Served<Vec<Chunk>>, door: &Door) -> Response {
    let answer = aggregate(served.value.iter().flat_map(|c| &c.events));
    let body = responses::encode_response_with(&answer, &door.echo);
    door.remember.completed(&body);
    respond::json_answer(&body, &served)
}

/// A streamed answer as the typed event stream; its conversation is stored
/// when the stream completes (not when it breaks).
pub fn stream(served: Served<ChunkStream>, door: Door, record: Option<StreamEnd>) -> Response {
    let Door { echo, remember } = door;
    let writer = StreamEncoder::new(echo)
        .on_completed(Box::new(move |response: &Value| {
            remember.completed(response)
        }))
        .into_writer();
    respond::stream_with(writer, served, record)
}
