//! AWS's binary event stream (`application/vnd.amazon.eventstream`), as
//! Bedrock answers: `InvokeModelWithResponseStream`'s `chunk` frames, whose
//! payload `{"bytes": "<base64 of one Anthropic stream event>"}` becomes
//! the `SseEvent` the Anthropic API would have sent, so the Anthropic
//! dialect reads it as it reads its own API's stream; and
//! `ConverseStream`'s frames, whose JSON payload becomes an `SseEvent`
//! named by the frame's `:event-type` (`messageStart`...), for the
//! Converse dialect.
//!
//! Frames are cut by their length prefix here, before the decoder sees
//! them, so that a frame announcing more than [`MAX_EVENT_BYTES`] is
//! refused before any of it is held, as an SSE event over the cap is.

use std::borrow::Cow;

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::{HeaderValue, Message};
use base64::Engine;
use bytes::{Buf, BytesMut};

/// The field Bedrock adds to a stream's `message_stop`.
const INVOCATION_METRICS: &str = "amazon-bedrock-invocationMetrics";
use serde::Deserialize;
use serde_json::Value;

/// An event's `type`, read without the rest of it.
#[derive(Deserialize)]
struct Named<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
}

use super::{FrameDecoder, FrameError};
use crate::sse::{MAX_EVENT_BYTES, SseEvent};
use crate::wire::StreamFault;

/// The prelude's total-length field.
const LENGTH_BYTES: usize = 4;

/// `ConverseStream`'s events, each a frame of its own type.
const CONVERSE_EVENTS: [&str; 6] = [
    "messageStart",
    "contentBlockStart",
    "contentBlockDelta",
    "contentBlockStop",
    "messageStop",
    "metadata",
];

#[derive(Debug)]
pub(crate) struct EventStreamDecoder {
    buffer: BytesMut,
    max_frame_bytes: usize,
}

impl Default for EventStreamDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl EventStreamDecoder {
    pub(crate) fn new() -> Self {
        Self::with_max_frame_bytes(MAX_EVENT_BYTES)
    }

    pub(crate) fn with_max_frame_bytes(max_frame_bytes: usize) -> Self {
        EventStreamDecoder {
            buffer: BytesMut::new(),
            max_frame_bytes,
        }
    }

    /// The next whole frame in the buffer, if one has arrived.
    fn next_frame(&mut self) -> Result<Option<BytesMut>, FrameError> {
        let Some(prefix) = self.buffer.get(..LENGTH_BYTES) else {
            return Ok(None);
        };
        let mut length = [0u8; LENGTH_BYTES];
        length.copy_from_slice(prefix);
        let length = usize::try_from(u32::from_be_bytes(length)).unwrap_or(usize::MAX);
        if length > self.max_frame_bytes {
            return Err(FrameError::TooLarge(format!(
                "an event-stream frame of {length} bytes is over the {} byte cap on one event",
                self.max_frame_bytes
            )));
        }
        if self.buffer.len() < length {
            return Ok(None);
        }
        Ok(Some(self.buffer.split_to(length)))
    }
}

fn broken(message: impl Into<String>) -> FrameError {
    FrameError::Fault(StreamFault {
        message: message.into(),
        code: None,
    })
}

fn header<'m>(message: &'m Message, name: &str) -> Option<&'m str> {
    message
        .headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .and_then(|h| match h.value() {
            HeaderValue::String(s) => Some(s.as_str()),
            _ => None,
        })
}

/// One decoded message: an event for the dialect, nothing (events Bedrock
/// may add that carry no model output), or the stream's end in an error.
fn event_of(message: &Message) -> Result<Option<SseEvent>, FrameError> {
    match header(message, ":message-type") {
        Some("event") => {}
        Some("exception") => {
            let payload: Value = serde_json::from_slice(message.payload()).unwrap_or(Value::Null);
            let code = header(message, ":exception-type").unwrap_or("exception");
            let text = payload
                .get("message")
                .or_else(|| payload.get("Message"))
                .and_then(Value::as_str)
                .unwrap_or("no message");
            return Err(FrameError::Fault(StreamFault {
                message: format!("{code} in the stream: {text}"),
                code: Some(code.to_string()),
            }));
        }
        Some("error") => {
            let code = header(message, ":error-code").unwrap_or("error");
            let text = header(message, ":error-message").unwrap_or("no message");
            return Err(FrameError::Fault(StreamFault {
                message: format!("{code} in the stream: {text}"),
                code: Some(code.to_string()),
            }));
        }
        other => {
            return Err(broken(format!(
                "an event-stream frame with message type {other:?}"
            )));
        }
    }
    match header(message, ":event-type") {
        Some("chunk") => {}
        Some(name) if CONVERSE_EVENTS.contains(&name) => {
            let data = std::str::from_utf8(message.payload())
                .map_err(|_| broken(format!("a `{name}` event's payload is not UTF-8")))?;
            // Broken JSON is left to the dialect to find, as in a chunk.
            return Ok(Some(SseEvent {
                event: Some(name.to_string()),
                data: data.to_string(),
            }));
        }
        _ => return Ok(None),
    }
    let payload: Value = serde_json::from_slice(message.payload())
        .map_err(|e| FrameError::Fault(StreamFault::malformed(e)))?;
    let encoded = payload
        .get("bytes")
        .and_then(Value::as_str)
        .ok_or_else(|| broken("an event-stream chunk without `bytes`"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| {
            broken(format!(
                "an event-stream chunk's `bytes` is not base64: {e}"
            ))
        })?;
    let mut data = String::from_utf8(bytes)
        .map_err(|_| broken("an event-stream chunk's `bytes` is not UTF-8"))?;
    // Named as Anthropic's SSE names its events; a chunk that is not JSON
    // goes on unnamed, for the dialect to find malformed. Only the name is
    // read: the dialect parses the event itself, so no tree is built here.
    let event = serde_json::from_str::<Named<'_>>(&data)
        .ok()
        .and_then(|named| named.kind)
        .map(Cow::into_owned);
    // Bedrock's own figures on the last event are the cloud's, not
    // Claude's: a client relayed the stream gets the events Anthropic's
    // API would have sent.
    if data.contains(INVOCATION_METRICS)
        && let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(&data)
        && object.remove(INVOCATION_METRICS).is_some()
    {
        data = Value::Object(object).to_string();
    }
    Ok(Some(SseEvent { event, data }))
}

impl FrameDecoder for EventStreamDecoder {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), FrameError> {
        self.buffer.extend_from_slice(bytes);
        while let Some(mut frame) = self.next_frame()? {
            let mut decoder = MessageFrameDecoder::new();
            let message = match decoder.decode_frame(&mut frame) {
                Ok(DecodedFrame::Complete(message)) if !frame.has_remaining() => message,
                Ok(_) => return Err(broken("an event-stream frame's lengths disagree")),
                Err(e) => return Err(broken(format!("a broken event-stream frame: {e}"))),
            };
            if let Some(event) = event_of(&message)? {
                out.push(event);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aws_smithy_eventstream::frame::write_message_to;
    use aws_smithy_types::event_stream::Header;
    use bytes::Bytes;

    use super::*;

    fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
        let mut message = Message::new(Bytes::copy_from_slice(payload));
        for (name, value) in headers {
            message = message.add_header(Header::new(
                name.to_string(),
                HeaderValue::String(value.to_string().into()),
            ));
        }
        let mut out = Vec::new();
        write_message_to(&message, &mut out).unwrap();
        out
    }

    fn chunk(event: &str) -> Vec<u8> {
        let encoded = base64::engine::general_purpose::STANDARD.encode(event);
        frame(
            &[
                (":event-type", "chunk"),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            serde_json::json!({"bytes": encoded}).to_string().as_bytes(),
        )
    }

    #[test]
    fn chunks_become_anthropic_events_whatever_the_pieces() {
        let first = r#"{"type":"message_start","message":{}}"#;
        let second = r#"{"type":"message_stop"}"#;
        let mut bytes = chunk(first);
        bytes.extend(chunk(second));
        for piece in [1, 3, 7, bytes.len()] {
            let mut decoder = EventStreamDecoder::new();
            let mut out = Vec::new();
            for part in bytes.chunks(piece) {
                decoder.feed(part, &mut out).unwrap();
            }
            assert_eq!(
                out,
                vec![
                    SseEvent {
                        event: Some("message_start".into()),
                        data: first.into()
                    },
                    SseEvent {
                        event: Some("message_stop".into()),
                        data: second.into()
                    },
                ],
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn bedrocks_invocation_metrics_are_not_relayed() {
        let stop = r#"{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":15,"outputTokenCount":13,"invocationLatency":9,"firstByteLatency":9}}"#;
        let mut decoder = EventStreamDecoder::new();
        let mut out = Vec::new();
        decoder.feed(&chunk(stop), &mut out).unwrap();
        assert_eq!(
            out,
            vec![SseEvent {
                event: Some("message_stop".into()),
                data: r#"{"type":"message_stop"}"#.into()
            }]
        );
    }

    #[test]
    fn converse_events_keep_their_type_and_payload() {
        let event = |name: &str, payload: &str| {
            frame(
                &[
                    (":event-type", name),
                    (":content-type", "application/json"),
                    (":message-type", "event"),
                ],
                payload.as_bytes(),
            )
        };
        let mut bytes = event("messageStart", r#"{"role":"assistant"}"#);
        bytes.extend(event(
            "contentBlockDelta",
            r#"{"delta":{"text":"Hi"},"contentBlockIndex":0}"#,
        ));
        // An event type it does not know carries no model output.
        bytes.extend(event("somethingNew", "{}"));
        bytes.extend(event("metadata", r#"{"usage":{"inputTokens":1}}"#));
        let mut out = Vec::new();
        let mut decoder = EventStreamDecoder::new();
        for part in bytes.chunks(5) {
            decoder.feed(part, &mut out).unwrap();
        }
        let names: Vec<Option<&str>> = out.iter().map(|e| e.event.as_deref()).collect();
        assert_eq!(
            names,
            [
                Some("messageStart"),
                Some("contentBlockDelta"),
                Some("metadata")
            ]
        );
        assert_eq!(
            out[1].data,
            r#"{"delta":{"text":"Hi"},"contentBlockIndex":0}"#
        );
    }

    #[test]
    fn exceptions_end_the_stream_with_their_type_as_code() {
        let mut decoder = EventStreamDecoder::new();
        let mut out = Vec::new();
        let mut bytes = chunk(r#"{"type":"ping"}"#);
        bytes.extend(frame(
            &[
                (":exception-type", "throttlingException"),
                (":content-type", "application/json"),
                (":message-type", "exception"),
            ],
            br#"{"message":"Too many requests"}"#,
        ));
        let Err(FrameError::Fault(fault)) = decoder.feed(&bytes, &mut out) else {
            panic!("an exception is a fault");
        };
        assert_eq!(fault.code.as_deref(), Some("throttlingException"));
        assert!(
            fault.message.contains("Too many requests"),
            "{}",
            fault.message
        );
        assert_eq!(out.len(), 1, "the events before it are kept");
    }

    proptest::proptest! {
        /// Whatever an upstream sends, in whatever pieces, decoding ends
        /// in events or an error, never a panic or a hang.
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
            piece in 1usize..64,
        ) {
            let mut decoder = EventStreamDecoder::with_max_frame_bytes(1 << 12);
            let mut out = Vec::new();
            for part in bytes.chunks(piece) {
                if decoder.feed(part, &mut out).is_err() {
                    break;
                }
            }
        }
    }

    #[test]
    fn oversized_and_corrupt_frames_are_refused() {
        let bytes = chunk(r#"{"type":"ping"}"#);
        let mut small = EventStreamDecoder::with_max_frame_bytes(bytes.len() - 1);
        assert!(matches!(
            small.feed(&bytes[..4], &mut Vec::new()),
            Err(FrameError::TooLarge(_))
        ));
        let mut corrupt = bytes.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xff;
        assert!(matches!(
            EventStreamDecoder::new().feed(&corrupt, &mut Vec::new()),
            Err(FrameError::Fault(StreamFault { code: None, .. }))
        ));
        // Broken JSON inside `bytes` is left to the dialect to find.
        let mut out = Vec::new();
        EventStreamDecoder::new()
            .feed(&chunk(r#"{"type":"content_bl"#), &mut out)
            .unwrap();
        assert_eq!(out[0].event, None);
    }
}
