//! Reading an upstream's bytes within Bulwark's bounds: a body chunk by
//! chunk under the idle timeout and `max_response_bytes`, an error body up
//! to `MAX_ERROR_BODY`, and a transport error in words safe to show.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;

use super::MAX_ERROR_BODY;
use crate::error::UpstreamFailure;

/// An upstream body read chunk by chunk, each within the idle timeout, and
/// all of it within `max_response_bytes`: what a stream and a complete
/// answer are both read with.
pub(super) struct BoundedBody<S> {
    bytes: S,
    idle_timeout: Duration,
    max_bytes: u64,
    /// Bytes read so far: a counter, the chunks are not copied for it.
    pub(super) read: u64,
    /// What the body is ("stream", "answer"), for the messages.
    what: &'static str,
}

impl<S: futures_util::Stream<Item = reqwest::Result<Bytes>> + Unpin> BoundedBody<S> {
    pub(super) fn new(
        bytes: S,
        idle_timeout: Duration,
        max_bytes: u64,
        what: &'static str,
    ) -> Self {
        BoundedBody {
            bytes,
            idle_timeout,
            max_bytes,
            read: 0,
            what,
        }
    }

    /// The next chunk, `None` at the end, or why the body failed. The cap
    /// is checked before a chunk goes further: at most one chunk past it
    /// is ever held.
    pub(super) async fn next(&mut self) -> Result<Option<Bytes>, (UpstreamFailure, String)> {
        let what = self.what;
        let chunk = match tokio::time::timeout(self.idle_timeout, self.bytes.next()).await {
            Err(_) => {
                return Err((
                    UpstreamFailure::Timeout,
                    format!("the {what} stalled for more than {:?}", self.idle_timeout),
                ));
            }
            Ok(None) => return Ok(None),
            Ok(Some(Err(e))) => {
                return Err((
                    UpstreamFailure::Stream {
                        provider_code: None,
                    },
                    format!("the {what} broke: {}", describe_transport(&e)),
                ));
            }
            Ok(Some(Ok(chunk))) => chunk,
        };
        self.read = self.read.saturating_add(chunk.len() as u64);
        if self.read > self.max_bytes {
            return Err((
                UpstreamFailure::TooLarge,
                format!(
                    "the answer exceeded max_response_bytes ({} bytes)",
                    self.max_bytes
                ),
            ));
        }
        Ok(Some(chunk))
    }
}

/// A transport error's chain of causes, without the URL (which is ours, not
/// the client's business) and never with credentials (sent only in headers).
pub(super) fn describe_transport(error: &reqwest::Error) -> String {
    let mut text = if error.is_connect() {
        "connection failed".to_string()
    } else if error.is_timeout() {
        "timed out".to_string()
    } else {
        "transport error".to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub(super) async fn read_capped(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_ERROR_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    body
}
