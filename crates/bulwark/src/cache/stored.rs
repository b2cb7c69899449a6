//! A cached answer as bytes, for the Redis tier: a small versioned format
//! of its own rather than serde derives on the engine's types, so that a
//! change to `StreamEvent` cannot silently change what other instances
//! (perhaps of another version) read. JSON, compressed with LZ4.
//!
//! Whatever is in Redis under our key may be foreign (another version, a
//! person's `SET`, a truncated write): reading is bounded before anything
//! is allocated, and anything unexpected is `None`, a miss, never a panic.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::api::{FinishReason, StreamEvent, Usage, WireFormat};
use crate::provider::Chunk;
use crate::sse::SseEvent;
use crate::wire::translate::FATES;

/// The first bytes of every entry: the format and its version. An entry
/// written by a later format is a miss here, not a misreading.
const MAGIC: &[u8; 4] = b"BWC1";

/// Largest entry as stored in Redis (compressed). 1 MiB rather than more:
/// Redis is single-threaded, so copying a large value holds up every
/// instance's quota scripts meanwhile, and a read must fit the request's
/// timeout (50 ms) or it is a wasted miss. Compressed streams of JSON
/// chunks shrink several times, so this still shares answers of megabytes;
/// a larger one stays in the memory tier only.
pub(crate) const MAX_ENTRY_BYTES: usize = 1 << 20;

/// Largest entry decompressed. Checked before decompressing, so that a
/// small entry claiming a huge size (a decompression bomb) costs nothing.
const MAX_JSON_BYTES: usize = 4 << 20;

/// What the Redis tier stores and reads back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub chunks: Vec<Chunk>,
    pub format: WireFormat,
    pub target: String,
    pub dropped: Vec<&'static str>,
    /// Wall-clock ends, as instances share no monotonic clock.
    pub fresh_until: SystemTime,
    pub keep_until: SystemTime,
}

impl Entry {
    /// How long from `now` the entry is fresh, and how long it is kept.
    pub fn remaining(&self, now: SystemTime) -> (Duration, Duration) {
        let left = |until: SystemTime| until.duration_since(now).unwrap_or_default();
        (left(self.fresh_until), left(self.keep_until))
    }
}

#[derive(Serialize, Deserialize)]
struct Stored {
    format: String,
    target: String,
    dropped: Vec<String>,
    fresh_until_ms: u64,
    keep_until_ms: u64,
    chunks: Vec<StoredChunk>,
}

#[derive(Serialize, Deserialize)]
struct StoredChunk {
    event: Option<String>,
    data: String,
    events: Vec<StoredEvent>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
enum StoredEvent {
    Start {
        id: String,
        model: String,
        created: u64,
        input_tokens: Option<u64>,
    },
    TextDelta {
        index: usize,
        text: String,
    },
    ToolCallStart {
        index: usize,
        id: String,
        name: String,
    },
    ToolCallDelta {
        index: usize,
        partial_json: String,
    },
    Thinking {
        index: usize,
        text: String,
    },
    Finish {
        reason: String,
        stop_sequence: Option<String>,
    },
    Usage {
        input_tokens: u64,
        output_tokens: u64,
    },
}

/// The entry as bytes, or `None` when it is too large to share.
pub(crate) fn encode(entry: &Entry) -> Option<Vec<u8>> {
    let stored = Stored {
        format: entry.format.as_str().to_string(),
        target: entry.target.clone(),
        dropped: entry.dropped.iter().map(|d| (*d).to_string()).collect(),
        fresh_until_ms: unix_ms(entry.fresh_until),
        keep_until_ms: unix_ms(entry.keep_until),
        chunks: entry.chunks.iter().map(stored_chunk).collect(),
    };
    let json = serde_json::to_vec(&stored).ok()?;
    if json.len() > MAX_JSON_BYTES {
        return None;
    }
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&lz4_flex::block::compress_prepend_size(&json));
    (bytes.len() <= MAX_ENTRY_BYTES).then_some(bytes)
}

/// The entry in `bytes`, or `None` for anything not written by `encode`
/// (or too large to have been).
pub(crate) fn decode(bytes: &[u8]) -> Option<Entry> {
    if bytes.len() > MAX_ENTRY_BYTES {
        return None;
    }
    let compressed = bytes.strip_prefix(MAGIC)?;
    let size: [u8; 4] = compressed.get(..4)?.try_into().ok()?;
    let size = usize::try_from(u32::from_le_bytes(size)).ok()?;
    if size > MAX_JSON_BYTES {
        return None;
    }
    let json = lz4_flex::block::decompress_size_prepended(compressed).ok()?;
    let stored: Stored = serde_json::from_slice(&json).ok()?;
    Some(Entry {
        format: wire_format(&stored.format)?,
        target: stored.target,
        dropped: stored
            .dropped
            .iter()
            .map(|d| feature(d))
            .collect::<Option<_>>()?,
        fresh_until: UNIX_EPOCH + Duration::from_millis(stored.fresh_until_ms),
        keep_until: UNIX_EPOCH + Duration::from_millis(stored.keep_until_ms),
        chunks: stored
            .chunks
            .into_iter()
            .map(chunk)
            .collect::<Option<_>>()?,
    })
}

pub(crate) fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn stored_chunk(chunk: &Chunk) -> StoredChunk {
    StoredChunk {
        event: chunk.raw.event.clone(),
        data: chunk.raw.data.clone(),
        events: chunk.events.iter().map(stored_event).collect(),
    }
}

fn stored_event(event: &StreamEvent) -> StoredEvent {
    match event.clone() {
        StreamEvent::Start {
            id,
            model,
            created,
            input_tokens,
        } => StoredEvent::Start {
            id,
            model,
            created,
            input_tokens,
        },
        StreamEvent::TextDelta { index, text } => StoredEvent::TextDelta { index, text },
        StreamEvent::ToolCallStart { index, id, name } => {
            StoredEvent::ToolCallStart { index, id, name }
        }
        StreamEvent::ToolCallDelta {
            index,
            partial_json,
        } => StoredEvent::ToolCallDelta {
            index,
            partial_json,
        },
        StreamEvent::Thinking { index, text } => StoredEvent::Thinking { index, text },
        StreamEvent::Finish {
            reason,
            stop_sequence,
        } => StoredEvent::Finish {
            reason: finish_name(&reason).to_string(),
            stop_sequence,
        },
        StreamEvent::Usage(Usage {
            input_tokens,
            output_tokens,
        }) => StoredEvent::Usage {
            input_tokens,
            output_tokens,
        },
    }
}

fn chunk(stored: StoredChunk) -> Option<Chunk> {
    Some(Chunk {
        raw: SseEvent {
            event: stored.event,
            data: stored.data,
        },
        events: stored
            .events
            .into_iter()
            .map(event)
            .collect::<Option<_>>()?,
    })
}

fn event(stored: StoredEvent) -> Option<StreamEvent> {
    Some(match stored {
        StoredEvent::Start {
            id,
            model,
            created,
            input_tokens,
        } => StreamEvent::Start {
            id,
            model,
            created,
            input_tokens,
        },
        StoredEvent::TextDelta { index, text } => StreamEvent::TextDelta { index, text },
        StoredEvent::ToolCallStart { index, id, name } => {
            StreamEvent::ToolCallStart { index, id, name }
        }
        StoredEvent::ToolCallDelta {
            index,
            partial_json,
        } => StreamEvent::ToolCallDelta {
            index,
            partial_json,
        },
        StoredEvent::Thinking { index, text } => StreamEvent::Thinking { index, text },
        StoredEvent::Finish {
            reason,
            stop_sequence,
        } => StreamEvent::Finish {
            reason: finish_reason(&reason)?,
            stop_sequence,
        },
        StoredEvent::Usage {
            input_tokens,
            output_tokens,
        } => StreamEvent::Usage(Usage {
            input_tokens,
            output_tokens,
        }),
    })
}

/// Names of this format's own, independent of any wire format's.
const FINISH_REASONS: &[(FinishReason, &str)] = &[
    (FinishReason::Stop, "stop"),
    (FinishReason::StopSequence, "stop_sequence"),
    (FinishReason::Length, "length"),
    (FinishReason::ToolUse, "tool_use"),
    (FinishReason::ContentFilter, "content_filter"),
];

fn finish_name(reason: &FinishReason) -> &'static str {
    FINISH_REASONS
        .iter()
        .find(|(r, _)| r == reason)
        .map_or("stop", |(_, name)| name)
}

fn finish_reason(name: &str) -> Option<FinishReason> {
    FINISH_REASONS
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(r, _)| r.clone())
}

const WIRE_FORMATS: &[WireFormat] = &[
    WireFormat::OpenAi,
    WireFormat::Anthropic,
    WireFormat::Gemini,
    WireFormat::Responses,
    WireFormat::Converse,
];

fn wire_format(name: &str) -> Option<WireFormat> {
    WIRE_FORMATS.iter().copied().find(|f| f.as_str() == name)
}

/// A dropped feature is one of the translation table's: a name it does not
/// know is from another version, and the entry is not ours to serve.
fn feature(name: &str) -> Option<&'static str> {
    FATES.iter().map(|r| r.feature).find(|f| *f == name)
}

#[cfg(test)]
#[path = "stored_tests.rs"]
mod tests;
