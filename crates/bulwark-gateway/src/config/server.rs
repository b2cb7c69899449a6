//! The `server:` key: how long the gateway waits for a client, and how many
//! it holds at once. Without these a slow or idle client keeps a socket and
//! a file descriptor for as long as it likes.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use bulwark::config::{Document, Issue};
use bulwark::wire::limits::{DEFAULT_MAX_JSON_DEPTH, ParseLimits};

use crate::budget::BODY_FACTOR;

/// Time to send a request's line and headers (nginx: 60 s; a client on a
/// working network needs well under a second).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to send a whole request body, from the handler's first read: room
/// for the 32 MiB limit at about 4.5 Mbit/s.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a connection with no request in flight stays open (nginx's
/// `keepalive_timeout` is 75 s).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Each connection holds a file descriptor, and each request in flight a
/// second one upstream; see the README on `ulimit -n`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Streams at once on one HTTP/2 connection (nginx: 128).
pub const DEFAULT_HTTP2_MAX_STREAMS: u32 = 100;
/// The memory budget for requests in flight, unless the body limit needs
/// more: 1 GiB is a small share of any machine that serves LLM traffic and
/// holds hundreds of ordinary (tens of KB) requests' bodies and trees at
/// once, while a burst of maximal bodies is shed instead of growing the
/// process until the kernel kills it.
pub const DEFAULT_MAX_INFLIGHT_REQUEST_BYTES: u64 = 1 << 30;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// A request line and headers not read in full by then close the
    /// connection; an HTTP/1 connection waiting for its next request is
    /// held to it too (hyper's timer runs from the first read).
    pub header_timeout: Duration,
    /// A request body not read in full by then is answered 408.
    pub body_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// Connections held at once; past it the gateway stops accepting until
    /// one closes.
    pub max_connections: usize,
    /// Concurrent streams per HTTP/2 connection.
    pub http2_max_streams: u32,
    /// Bounds on a request body's messages, parts, tools and nesting,
    /// checked before it is decoded.
    pub limits: ParseLimits,
    /// Memory that request bodies and their decoding may hold at once;
    /// past it requests are shed with 503.
    pub max_inflight_request_bytes: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            http2_max_streams: DEFAULT_HTTP2_MAX_STREAMS,
            limits: ParseLimits::default(),
            max_inflight_request_bytes: DEFAULT_MAX_INFLIGHT_REQUEST_BYTES,
        }
    }
}

/// The budget when none is set: the default, or room for two maximal
/// bodies of ordinary shape when `max_request_bytes` is raised past what
/// 1 GiB holds.
fn default_budget(max_request_bytes: usize) -> u64 {
    let two_bodies = u64::try_from(max_request_bytes)
        .unwrap_or(u64::MAX)
        .saturating_mul(2 * BODY_FACTOR);
    DEFAULT_MAX_INFLIGHT_REQUEST_BYTES.max(two_bodies)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    header_timeout: Option<String>,
    body_timeout: Option<String>,
    idle_timeout: Option<String>,
    max_connections: Option<usize>,
    http2_max_streams: Option<u32>,
    max_messages: Option<usize>,
    max_content_parts: Option<usize>,
    max_tools: Option<usize>,
    max_json_depth: Option<usize>,
    max_inflight_request_bytes: Option<u64>,
}

/// The defaults when the key is absent; problems go to `issues`, which
/// then keep the config from loading.
pub(crate) fn build(
    raw: Option<Value>,
    max_request_bytes: usize,
    doc: &Document,
    issues: &mut Vec<Issue>,
) -> ServerConfig {
    let defaults = ServerConfig {
        max_inflight_request_bytes: default_budget(max_request_bytes),
        ..ServerConfig::default()
    };
    let Some(raw) = raw else { return defaults };
    let Some(mut raw) = doc.read::<RawServer>(raw, "server", issues) else {
        return defaults;
    };
    let timeout = |text, default, path, issues: &mut Vec<Issue>| {
        bulwark::config::duration::timeout(text, default, path, issues)
    };
    let header_timeout = timeout(
        raw.header_timeout.take(),
        defaults.header_timeout,
        "server.header_timeout",
        issues,
    );
    let body_timeout = timeout(
        raw.body_timeout.take(),
        defaults.body_timeout,
        "server.body_timeout",
        issues,
    );
    let idle_timeout = timeout(
        raw.idle_timeout.take(),
        defaults.idle_timeout,
        "server.idle_timeout",
        issues,
    );
    let max_connections = raw.max_connections.unwrap_or(defaults.max_connections);
    if max_connections == 0 {
        issues.push(Issue::new(
            "server.max_connections",
            "must be greater than 0",
        ));
    }
    let http2_max_streams = raw.http2_max_streams.unwrap_or(defaults.http2_max_streams);
    if http2_max_streams == 0 {
        issues.push(Issue::new(
            "server.http2_max_streams",
            "must be greater than 0",
        ));
    }
    let limits = limits(&raw, issues);
    let max_inflight_request_bytes = match raw.max_inflight_request_bytes {
        None => defaults.max_inflight_request_bytes,
        Some(budget) => {
            let needed = u64::try_from(max_request_bytes)
                .unwrap_or(u64::MAX)
                .saturating_mul(BODY_FACTOR);
            if budget < needed {
                issues.push(Issue::new(
                    "server.max_inflight_request_bytes",
                    format!(
                        "must be at least max_request_bytes x {BODY_FACTOR} (what decoding one body of ordinary shape costs) = {needed}, or a body near the limit is always refused; raise it or lower max_request_bytes"
                    ),
                ));
            }
            budget
        }
    };
    ServerConfig {
        header_timeout,
        body_timeout,
        idle_timeout,
        max_connections,
        http2_max_streams,
        limits,
        max_inflight_request_bytes,
    }
}

/// The parse limits, each at least 1; the depth at most what `serde_json`
/// itself allows.
fn limits(raw: &RawServer, issues: &mut Vec<Issue>) -> ParseLimits {
    let defaults = ParseLimits::default();
    let mut at_least_one = |value: Option<usize>, default: usize, path: &str| {
        let value = value.unwrap_or(default);
        if value == 0 {
            issues.push(Issue::new(path, "must be greater than 0"));
        }
        value
    };
    let limits = ParseLimits {
        max_messages: at_least_one(
            raw.max_messages,
            defaults.max_messages,
            "server.max_messages",
        ),
        max_content_parts: at_least_one(
            raw.max_content_parts,
            defaults.max_content_parts,
            "server.max_content_parts",
        ),
        max_tools: at_least_one(raw.max_tools, defaults.max_tools, "server.max_tools"),
        max_json_depth: at_least_one(
            raw.max_json_depth,
            defaults.max_json_depth,
            "server.max_json_depth",
        ),
    };
    if limits.max_json_depth > DEFAULT_MAX_JSON_DEPTH {
        issues.push(Issue::new(
            "server.max_json_depth",
            format!(
                "must be at most {DEFAULT_MAX_JSON_DEPTH}: the JSON parser stops there in any case"
            ),
        ));
    }
    limits
}
