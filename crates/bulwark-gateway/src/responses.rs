//! What the Responses front door (`POST /v1/responses`) does beyond the
//! other doors: it reads the body as a JSON object once, so that
//! conversation state can be put into it before it is decoded
//! (`prepare_body`), and it has one place where each finished answer's
//! Response object is known (`completed`), for storing the conversation.
//! Answers repeat the request's settings (`Echo`).

use axum::response::Response;
use bulwark::aggregate::aggregate;
use bulwark::api::ChatRequest;
use bulwark::engine::Served;
use bulwark::error::ApiError;
use bulwark::provider::{Chunk, ChunkStream};
use bulwark::wire::json as j;
use bulwark::wire::responses::{self, Echo, StreamEncoder};
use serde_json::{Map, Value};

use crate::observe::StreamEnd;
use crate::respond;

/// Decodes a request body: parsed once, prepared, then decoded; with the
/// settings its answer repeats.
pub fn decode(body: &[u8]) -> Result<(ChatRequest, Echo), ApiError> {
    let mut object = j::parse_object(body)?;
    prepare_body(&mut object)?;
    let echo = Echo::from_request(&object);
    Ok((responses::decode_object(object)?, echo))
}

/// Readies a request body before it is decoded. Conversation state is not
/// kept yet, so a request that continues a stored response is refused here
/// with an error that names the field; this is where the stored history
/// will be put in place of `previous_response_id`.
pub fn prepare_body(body: &mut Map<String, Value>) -> Result<(), ApiError> {
    match body.get("previous_response_id") {
        None | Some(Value::Null) => {
            body.remove("previous_response_id");
            Ok(())
        }
        Some(_) => Err(ApiError::invalid_param(
            "previous_response_id",
            "conversation state is not available on this gateway: `previous_response_id` cannot be continued; send the whole conversation in `input` instead",
        )),
    }
}

/// The hook for each answer that finished, with its final Response object
/// (a complete answer's body, or the `response` of a stream's
/// `response.completed` / `response.incomplete`): where the conversation
/// will be stored. Nothing is stored yet.
pub fn completed(_response: &Value) {}

/// A complete answer as a Response object.
pub fn complete(served: Served<Vec<Chunk>>, echo: &Echo) -> Response {
    let answer = aggregate(served.value.iter().flat_map(|c| &c.events));
    let body = responses::encode_response_with(&answer, echo);
    completed(&body);
    respond::json_answer(&body, &served)
}

/// A streamed answer as the typed event stream.
pub fn stream(served: Served<ChunkStream>, echo: Echo, record: Option<StreamEnd>) -> Response {
    let writer = StreamEncoder::new(echo)
        .on_completed(Box::new(completed))
        .into_writer();
    respond::stream_with(writer, served, record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_previous_response_id_is_refused_by_name_and_a_null_one_is_removed() {
        let mut body = Map::new();
        body.insert("previous_response_id".into(), json!("resp_1"));
        let error = prepare_body(&mut body).err();
        assert_eq!(
            error.as_ref().and_then(|e| e.param.as_deref()),
            Some("previous_response_id")
        );
        assert_eq!(error.map(|e| e.status), Some(400));
        body.insert("previous_response_id".into(), Value::Null);
        assert!(prepare_body(&mut body).is_ok());
        assert!(body.is_empty());
    }
}
