//! Complete (JSON) answers where a stream was expected: some
//! OpenAI-compatible servers, and some models, answer `"stream": true` with
//! the whole answer as one JSON body, and a provider configured with
//! `stream: false` is asked for exactly that. The answer is decoded with
//! the dialect's complete-answer decoder and written as the stream the
//! provider would have sent, so the engine, the cache and every client see
//! an answer like any other.

use http::HeaderMap;
use serde_json::Value;

use crate::api::{ChatResponse, ContentBlock, StreamEvent, WireFormat};
use crate::error::UpstreamFailure;
use crate::sse::SseDecoder;
use crate::wire::{Chunk, StreamHead, UpstreamDialect};

/// Turns an encoded streaming request into a request for a complete answer.
pub(super) fn ask_complete(body: &mut Value) {
    if let Some(body) = body.as_object_mut() {
        body.insert("stream".into(), Value::Bool(false));
        // Only valid with `stream: true`; OpenAI refuses it otherwise.
        body.remove("stream_options");
    }
}

/// Whether a successful answer's body is JSON (`application/json`, or any
/// `+json` type) rather than a stream of server-sent events.
pub(super) fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

/// A complete answer's body as the chunks of the stream it stands for, or
/// why it cannot be: the failure and the provider's text (unredacted; the
/// caller redacts it). A body that is not JSON after all (a server that
/// labels its event stream as JSON) is decoded as the stream it is.
pub(crate) fn chunks(
    dialect: &dyn UpstreamDialect,
    body: &[u8],
) -> Result<Vec<Chunk>, (UpstreamFailure, String)> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if !matches!(first, Some(b'{' | b'[')) {
        return event_stream(dialect, body);
    }
    match dialect.decode_response(body) {
        Ok(response) => Ok(encode(dialect.format(), &response)),
        Err(reason) => Err(not_an_answer(dialect, body, &reason)),
    }
}

/// A whole event stream, decoded as `Provider::stream` decodes one as it
/// arrives.
fn event_stream(
    dialect: &dyn UpstreamDialect,
    body: &[u8],
) -> Result<Vec<Chunk>, (UpstreamFailure, String)> {
    let mut raw = Vec::new();
    SseDecoder::new()
        .try_feed(body, &mut raw)
        .map_err(|too_large| (UpstreamFailure::TooLarge, too_large.to_string()))?;
    let mut decoder = dialect.stream_decoder();
    let mut chunks = Vec::with_capacity(raw.len());
    for event in raw {
        let mut events = Vec::new();
        decoder.on_event(&event, &mut events).map_err(|fault| {
            (
                UpstreamFailure::Stream {
                    provider_code: fault.code,
                },
                fault.message,
            )
        })?;
        chunks.push(Chunk { raw: event, events });
        if decoder.is_done() {
            return Ok(chunks);
        }
    }
    Err((
        UpstreamFailure::Stream {
            provider_code: None,
        },
        "the stream ended before its terminator (the answer is truncated)".into(),
    ))
}

/// A body that is not an answer: an error object in a 200 (as some
/// compatible servers send) counts like an error event in a stream, anything
/// else as an answer that could not be understood.
fn not_an_answer(
    dialect: &dyn UpstreamDialect,
    body: &[u8],
    reason: &str,
) -> (UpstreamFailure, String) {
    let error = serde_json::from_slice::<Value>(body)
        .ok()
        .filter(|value| value.get("error").is_some());
    match error {
        Some(value) => {
            let (message, code) = dialect.decode_error(&value);
            (
                UpstreamFailure::Stream {
                    provider_code: code.clone(),
                },
                format!(
                    "error in a complete answer ({}): {}",
                    code.as_deref().unwrap_or("error"),
                    message.as_deref().unwrap_or("unknown error")
                ),
            )
        }
        None => (
            UpstreamFailure::Decode,
            format!("the provider answered with JSON that is not a complete answer: {reason}"),
        ),
    }
}

/// The neutral events of a complete answer, in stream order.
fn events(response: &ChatResponse) -> Vec<StreamEvent> {
    let mut events = vec![StreamEvent::Start {
        id: response.id.clone(),
        model: response.model.clone(),
        created: response.created,
        input_tokens: Some(response.usage.input_tokens),
    }];
    for (index, block) in response.content.iter().enumerate() {
        match block {
            ContentBlock::Text(text) => events.push(StreamEvent::TextDelta {
                index,
                text: text.clone(),
            }),
            ContentBlock::ToolUse(call) => {
                events.push(StreamEvent::ToolCallStart {
                    index,
                    id: call.id.clone(),
                    name: call.name.clone(),
                });
                events.push(StreamEvent::ToolCallDelta {
                    index,
                    partial_json: call.input.to_string(),
                });
            }
            // An answer carries neither; nothing a stream could show.
            ContentBlock::Image(_) | ContentBlock::ToolResult(_) => {}
        }
    }
    events.push(StreamEvent::Finish {
        reason: response.finish_reason.clone(),
        stop_sequence: response.stop_sequence.clone(),
    });
    events.push(StreamEvent::Usage(response.usage));
    events
}

/// The answer as the stream a provider speaking `format` would have sent,
/// terminator included.
fn encode(format: WireFormat, response: &ChatResponse) -> Vec<Chunk> {
    let head = StreamHead {
        id: response.id.clone(),
        model: response.model.clone(),
        created: response.created,
        ..StreamHead::default()
    };
    crate::wire::encode_events(format, &head, &events(response), true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::FinishReason;
    use crate::config::ProviderKind;
    use serde_json::json;

    fn headers(content_type: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        if let Ok(value) = content_type.parse() {
            map.insert(http::header::CONTENT_TYPE, value);
        }
        map
    }

    #[test]
    fn json_content_types_are_told_from_streams() {
        assert!(is_json(&headers("application/json")));
        assert!(is_json(&headers("Application/JSON; charset=utf-8")));
        assert!(is_json(&headers("application/problem+json")));
        assert!(!is_json(&headers("text/event-stream")));
        assert!(!is_json(&headers("text/event-stream; charset=utf-8")));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn asking_for_a_complete_answer_drops_stream_options() {
        let mut body =
            json!({"model": "m", "stream": true, "stream_options": {"include_usage": true}});
        ask_complete(&mut body);
        assert_eq!(body, json!({"model": "m", "stream": false}));
    }

    fn streamed_events(chunks: &[Chunk]) -> Vec<StreamEvent> {
        chunks.iter().flat_map(|c| c.events.clone()).collect()
    }

    #[test]
    fn an_openai_answer_becomes_its_stream() -> Result<(), String> {
        let dialect = crate::wire::upstream(ProviderKind::OpenAiCompatible);
        let body = json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 7, "model": "m",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Let me look.",
                "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "Read", "arguments": "{\"file_path\":\"/a\"}"}}]}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
        });
        let chunks = chunks(dialect, body.to_string().as_bytes()).map_err(|e| e.1)?;
        let events = streamed_events(&chunks);
        assert!(events.contains(&StreamEvent::TextDelta {
            index: 0,
            text: "Let me look.".into()
        }));
        assert!(events.iter().any(|e| matches!(e,
            StreamEvent::ToolCallStart { index: 1, name, .. } if name == "Read")));
        assert!(events.contains(&StreamEvent::Finish {
            reason: FinishReason::ToolUse,
            stop_sequence: None
        }));
        assert_eq!(
            events.last(),
            Some(&StreamEvent::Usage(crate::api::Usage {
                input_tokens: 3,
                output_tokens: 5
            }))
        );
        // Raw events in the provider's own format, ending as its stream ends.
        assert_eq!(chunks.last().map(|c| c.raw.data.as_str()), Some("[DONE]"));
        Ok(())
    }

    #[test]
    fn an_event_stream_labelled_as_json_is_read_as_a_stream() -> Result<(), String> {
        let dialect = crate::wire::upstream(ProviderKind::OpenAiCompatible);
        let chunk = |delta: Value, finish: Value| {
            json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        };
        let body = format!(
            "data: {}\n\ndata: {}\n\ndata: [DONE]\n\n",
            chunk(json!({"role": "assistant", "content": "Hi"}), Value::Null),
            chunk(json!({}), json!("stop"))
        );
        let chunks = chunks(dialect, body.as_bytes()).map_err(|e| e.1)?;
        let events = streamed_events(&chunks);
        assert!(events.contains(&StreamEvent::TextDelta {
            index: 0,
            text: "Hi".into()
        }));
        // Cut before its terminator, it is as truncated as any stream.
        let cut = body.replace("data: [DONE]\n\n", "");
        let Err((failure, _)) = super::chunks(dialect, cut.as_bytes()) else {
            panic!("a truncated stream was read as an answer");
        };
        assert!(
            matches!(failure, UpstreamFailure::Stream { .. }),
            "{failure:?}"
        );
        Ok(())
    }

    #[test]
    fn an_error_body_or_garbage_is_not_an_answer() {
        let dialect = crate::wire::upstream(ProviderKind::OpenAiCompatible);
        let error = json!({"error": {"message": "model overloaded", "type": "server_error"}});
        let Err((failure, message)) = chunks(dialect, error.to_string().as_bytes()) else {
            panic!("an error body was read as an answer");
        };
        assert!(
            matches!(failure, UpstreamFailure::Stream { .. }),
            "{failure:?}"
        );
        assert!(message.contains("model overloaded"), "{message}");
        let Err((failure, _)) = chunks(dialect, b"{\"unexpected\": true}") else {
            panic!("garbage was read as an answer");
        };
        assert_eq!(failure, UpstreamFailure::Decode);
    }
}
