//! What the Responses front door (`POST /v1/responses`) does beyond the
//! other doors: it reads the body as a JSON object once, so that a
//! `previous_response_id` can be replaced by the stored conversation before
//! it is decoded (`decode`), and it stores each finished answer's Response
//! object with its conversation (`Remember`). Translated answers repeat the
//! request's settings (`Echo`); an answer from a target that speaks the
//! Responses API itself is relayed as it sent it, and its own Response
//! object is what is stored.

use std::sync::Arc;

use axum::response::Response;
use bulwark::aggregate::aggregate;
use bulwark::api::{ChatRequest, SourceJson, WireFormat};
use bulwark::engine::Served;
use bulwark::error::ApiError;
use bulwark::provider::{Chunk, ChunkStream};
use bulwark::sse::SseEvent;
use bulwark::wire::json as j;
use bulwark::wire::responses::{self, Echo, StreamEncoder};
use bulwark::wire::{ClientDialect, SseSink, StreamWriter};
use serde_json::{Map, Value};

use crate::conversations::Conversations;
use crate::observe::StreamEnd;
use crate::respond;

/// What a Responses answer needs from its request: the settings it
/// repeats, and where its conversation is stored once it finishes.
pub struct Door {
    pub echo: Echo,
    remember: Remember,
    /// The response this request continues, as the client named it: a
    /// relayed target was sent the history instead, so its answer names
    /// none, and is given this one.
    previous: Option<Value>,
}

/// Stores a finished answer's conversation: the request's body as
/// `Conversations::expand` left it (so the stored input holds the whole
/// history), for the tenant that asked.
struct Remember {
    conversations: Arc<Conversations>,
    tenant: Option<String>,
    body: SourceJson,
}

impl Remember {
    /// Off the answer's path: a slow or failing store never holds or fails
    /// the client.
    fn completed(&self, response: &Value) {
        // The body parsed when it arrived, so it parses now.
        if let Ok(body) = self.body.object() {
            self.conversations
                .remember_later(self.tenant.clone(), &body, response);
        }
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
    let previous = object
        .get("previous_response_id")
        .filter(|id| id.is_string())
        .cloned();
    conversations.expand(tenant, &mut object).await?;
    let request = responses::decode_object(object)?;
    let body = request
        .source
        .as_ref()
        .map(|source| source.body.clone())
        .unwrap_or_else(|| SourceJson::from_object(&Map::new()));
    let remember = Remember {
        conversations: Arc::clone(conversations),
        tenant: tenant.map(str::to_string),
        body,
    };
    Ok((
        request,
        Door {
            echo,
            remember,
            previous,
        },
    ))
}

/// A complete answer as a Response object: the target's own when it speaks
/// the Responses API, else built from the neutral answer.
pub fn complete(served: Served<Vec<Chunk>>, door: &Door) -> Response {
    let body = if served.format == WireFormat::Responses {
        let mut body =
            responses::FrontDoor.assemble_relayed(&mut served.value.iter().map(|c| &c.raw));
        name_previous(&mut body, door.previous.as_ref());
        body
    } else {
        let answer = aggregate(served.value.iter().flat_map(|c| &c.events));
        responses::encode_response_with(&answer, &door.echo)
    };
    if body.is_object() {
        door.remember.completed(&body);
    }
    respond::json_answer(&body, &served)
}

/// A streamed answer as the typed event stream; its conversation is stored
/// when the stream completes (not when it breaks).
pub fn stream(served: Served<ChunkStream>, door: Door, record: Option<StreamEnd>) -> Response {
    let Door {
        echo,
        remember,
        previous,
    } = door;
    let writer: Box<dyn StreamWriter> = if served.format == WireFormat::Responses {
        Box::new(Relayed {
            relay: responses::FrontDoor.relay_writer(true),
            remember,
            previous,
        })
    } else {
        StreamEncoder::new(echo)
            .on_completed(Box::new(move |response: &Value| {
                remember.completed(response)
            }))
            .into_writer()
    };
    respond::stream_with(writer, served, record)
}

/// Relays a Responses target's own events, storing the conversation from
/// its `response.completed` event, whose `response` is the whole answer.
struct Relayed {
    relay: Box<dyn StreamWriter>,
    remember: Remember,
    previous: Option<Value>,
}

impl StreamWriter for Relayed {
    fn write(&mut self, chunk: &Chunk, out: &mut dyn SseSink) {
        let named = self
            .previous
            .as_ref()
            .and_then(|previous| with_previous(&chunk.raw, previous))
            .map(|raw| Chunk {
                raw,
                events: chunk.events.clone(),
            });
        let chunk = named.as_ref().unwrap_or(chunk);
        if let Some(response) = completed_response(&chunk.raw) {
            self.remember.completed(&response);
        }
        self.relay.write(chunk, out);
    }

    fn finish(&mut self, out: &mut dyn SseSink) {
        self.relay.finish(out);
    }

    fn error(&mut self, error: &ApiError, out: &mut dyn SseSink) {
        self.relay.error(error, out);
    }
}

/// Names the continued response in a Response object.
fn name_previous(response: &mut Value, previous: Option<&Value>) {
    if let (Some(object), Some(previous)) = (response.as_object_mut(), previous) {
        object.insert("previous_response_id".into(), previous.clone());
    }
}

/// An event that carries the Response object (`response.created`,
/// `response.completed`...) with the continued response named in it;
/// `None` for every other event, passed on as it is.
fn with_previous(raw: &SseEvent, previous: &Value) -> Option<SseEvent> {
    if !raw.data.contains("\"response\"") {
        return None;
    }
    let mut data: Value = serde_json::from_str(&raw.data).ok()?;
    name_previous(data.get_mut("response")?, Some(previous));
    Some(SseEvent {
        event: raw.event.clone(),
        data: data.to_string(),
    })
}

/// The events that end a finished answer and carry its whole Response
/// object: stored, as the conversation goes on from either.
const FINISHED: [&str; 2] = ["response.completed", "response.incomplete"];

/// The Response object a `response.completed` or `response.incomplete`
/// event carries. Only those events are parsed: the many deltas before
/// them are passed over by a cheap look at their name.
fn completed_response(raw: &SseEvent) -> Option<Value> {
    let named = match raw.event.as_deref() {
        Some(event) => FINISHED.contains(&event),
        None => FINISHED
            .iter()
            .any(|name| raw.data.contains(&format!("\"{name}\""))),
    };
    if !named {
        return None;
    }
    let mut data: Value = serde_json::from_str(&raw.data).ok()?;
    if !j::get_str(&data, "type").is_some_and(|kind| FINISHED.contains(&kind)) {
        return None;
    }
    data.get_mut("response")
        .map(Value::take)
        .filter(Value::is_object)
}
