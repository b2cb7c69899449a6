//! Turns a list of pre-rendered frames into a paced response body with an
//! optional mid-stream fault. Sleeping inside the body stream (rather than
//! before returning it) means a client disconnect drops the stream and stops
//! the work.

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;

/// One unit written to the body (an SSE event, or a slice of JSON).
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub bytes: Bytes,
    /// Content frames wait `first_token` / `token_interval` before they go out;
    /// framing events (starts, stops, terminators) go out immediately.
    pub paced: bool,
}

impl Frame {
    pub(crate) fn paced(s: impl Into<String>) -> Self {
        Self {
            bytes: Bytes::from(s.into()),
            paced: true,
        }
    }

    pub(crate) fn immediate(s: impl Into<String>) -> Self {
        Self {
            bytes: Bytes::from(s.into()),
            paced: false,
        }
    }
}

/// A fault applied while writing the body; `after` counts frames already sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum StreamFault {
    Stall { after: usize, duration: Duration },
    Cut { after: usize },
    Malformed { after: usize },
    ErrorEvent { after: usize },
}

impl StreamFault {
    fn after(self) -> usize {
        match self {
            StreamFault::Stall { after, .. }
            | StreamFault::Cut { after }
            | StreamFault::Malformed { after }
            | StreamFault::ErrorEvent { after } => after,
        }
    }
}

/// Everything needed to write one streamed body.
#[derive(Debug, Clone)]
pub(crate) struct StreamPlan {
    pub frames: Vec<Frame>,
    pub first_token: Duration,
    pub interval: Duration,
    pub fault: Option<StreamFault>,
    /// Sent by `ErrorEvent`, in the provider's in-stream error shape.
    pub error_frame: Bytes,
}

/// Build the body. A fault position past the end is clamped to the last
/// frame so the fault always fires (and the terminator is never sent by `cut`).
pub(crate) fn body(plan: StreamPlan) -> Body {
    let StreamPlan {
        frames,
        first_token,
        interval,
        fault,
        error_frame,
    } = plan;
    let last = frames.len().saturating_sub(1);
    let fault_at = fault.map(|f| f.after().min(last));
    let stream = async_stream::stream! {
        let mut first = true;
        // Pacing is kept on an absolute schedule: the timer wakes on whole
        // milliseconds, so sleeping each sub-millisecond interval (a
        // compressed drill's per-token delay) would stretch every token
        // to a millisecond. Late tokens catch up instead.
        let mut due = tokio::time::Instant::now();
        for (i, frame) in frames.into_iter().enumerate() {
            let mut bytes = frame.bytes;
            if fault_at == Some(i) {
                match fault {
                    Some(StreamFault::Stall { duration, .. }) => {
                        tokio::time::sleep(duration).await;
                        due = tokio::time::Instant::now();
                    }
                    Some(StreamFault::Cut { .. }) => return,
                    Some(StreamFault::Malformed { .. }) => bytes = break_frame(&bytes),
                    Some(StreamFault::ErrorEvent { .. }) => {
                        yield Ok::<Bytes, std::io::Error>(error_frame);
                        return;
                    }
                    None => {}
                }
            }
            if frame.paced {
                let wait = if first { first_token } else { interval };
                first = false;
                due += wait;
                if !wait.is_zero() && due > tokio::time::Instant::now() {
                    tokio::time::sleep_until(due).await;
                }
            }
            yield Ok(bytes);
        }
    };
    Body::from_stream(stream)
}

/// A body that fails before producing any bytes, which makes hyper abort the
/// connection instead of completing the response.
pub(crate) fn reset_body() -> Body {
    let stream = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated connection reset",
        ))
    });
    Body::from_stream(stream)
}

/// Corrupt a frame's JSON by cutting it in half while keeping its SSE
/// framing, so the event boundary still parses but the payload does not.
pub(crate) fn break_frame(bytes: &[u8]) -> Bytes {
    let text = String::from_utf8_lossy(bytes);
    let (Some(start), Some(end)) = (text.find('{'), text.rfind('}')) else {
        // No JSON object here (e.g. `data: [DONE]`): emit an unterminated one.
        return Bytes::from("data: {\"choices\": [{\"delta\":\n\n");
    };
    let mut mid = start + (end - start) / 2;
    while !text.is_char_boundary(mid) {
        mid -= 1;
    }
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..mid]);
    out.push_str(&text[end + 1..]);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_frame_keeps_framing() {
        let b = break_frame(b"event: x\ndata: {\"a\":\"bcdef\"}\n\n");
        let s = String::from_utf8_lossy(&b);
        assert!(s.starts_with("event: x\ndata: {"));
        assert!(s.ends_with("\n\n"));
        let json = s.trim_start_matches("event: x\ndata: ").trim();
        assert!(serde_json::from_str::<serde_json::Value>(json).is_err());
    }
}
