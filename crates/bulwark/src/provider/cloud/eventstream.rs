//! AWS's binary event stream (`application/vnd.amazon.eventstream`), as
//! Bedrock's `InvokeModelWithResponseStream` answers: each frame's payload
//! `{"bytes": "<base64 of one Anthropic stream event>"}` becomes the
//! `SseEvent` the Anthropic API would have sent.

use super::{FrameDecoder, FrameError};
use crate::sse::SseEvent;
use crate::wire::StreamFault;

/// Written in full by the Bedrock work (`aws-smithy-eventstream`).
#[derive(Debug, Default)]
pub(crate) struct EventStreamDecoder;

impl EventStreamDecoder {
    pub(crate) fn new() -> Self {
        EventStreamDecoder
    }
}

impl FrameDecoder for EventStreamDecoder {
    fn feed(&mut self, _bytes: &[u8], _out: &mut Vec<SseEvent>) -> Result<(), FrameError> {
        Err(FrameError::Fault(StreamFault {
            message: "AWS event streams are not decoded yet".into(),
            code: None,
        }))
    }
}
