//! The `conversations:` key: how long stored Responses API responses
//! (`previous_response_id`, `GET /v1/responses/{id}`) are kept, and how
//! large one conversation may grow before Bulwark stops storing it.

use std::time::Duration;

use bulwark::config::{Document, Issue, duration};
use serde::Deserialize;
use serde_json::Value;

/// OpenAI keeps stored responses for 30 days.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 86_400);
/// Each stored response holds its whole conversation so far (input items
/// and the response): past this it is not stored, and the client starts
/// a new conversation or sends the history itself.
pub const DEFAULT_MAX_BYTES: usize = 16 * 1024 * 1024;
/// Every turn stores its whole history again: this bounds what one client
/// key (or a keyless gateway) can make the store hold.
pub const DEFAULT_MAX_BYTES_PER_KEY: u64 = 1024 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationsConfig {
    /// Stored responses older than this read as missing and are purged.
    pub ttl: Duration,
    /// The cap on one stored response's JSON, history included.
    pub max_bytes: usize,
    /// The cap on all of one client key's stored responses together.
    pub max_bytes_per_key: u64,
}

impl Default for ConversationsConfig {
    fn default() -> Self {
        ConversationsConfig {
            ttl: DEFAULT_TTL,
            max_bytes: DEFAULT_MAX_BYTES,
            max_bytes_per_key: DEFAULT_MAX_BYTES_PER_KEY,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConversations {
    ttl: Option<String>,
    max_bytes: Option<usize>,
    max_bytes_per_key: Option<u64>,
}

/// The defaults when the key is absent; problems go to `issues`.
pub(crate) fn build(
    raw: Option<Value>,
    doc: &Document,
    issues: &mut Vec<Issue>,
) -> ConversationsConfig {
    let defaults = ConversationsConfig::default();
    let Some(raw) = raw else { return defaults };
    let Some(raw) = doc.read::<RawConversations>(raw, "conversations", issues) else {
        return defaults;
    };
    let ttl = duration::long(raw.ttl, defaults.ttl, "conversations.ttl", issues);
    let max_bytes = raw.max_bytes.unwrap_or(defaults.max_bytes);
    if max_bytes == 0 {
        issues.push(Issue::new(
            "conversations.max_bytes",
            "must be greater than 0: it is the most bytes one stored conversation may hold",
        ));
    }
    let max_bytes_per_key = raw.max_bytes_per_key.unwrap_or(defaults.max_bytes_per_key);
    if max_bytes_per_key == 0 {
        issues.push(Issue::new(
            "conversations.max_bytes_per_key",
            "must be greater than 0: it is the most bytes one client key's stored conversations may hold together",
        ));
    }
    ConversationsConfig {
        ttl,
        max_bytes,
        max_bytes_per_key,
    }
}
