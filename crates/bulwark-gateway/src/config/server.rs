//! The `server:` key: how long the gateway waits for a client, and how many
//! it holds at once. Without these a slow or idle client keeps a socket and
//! a file descriptor for as long as it likes.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use bulwark::config::{Document, Issue};

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
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            http2_max_streams: DEFAULT_HTTP2_MAX_STREAMS,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    header_timeout: Option<String>,
    body_timeout: Option<String>,
    idle_timeout: Option<String>,
    max_connections: Option<usize>,
    http2_max_streams: Option<u32>,
}

/// The defaults when the key is absent; problems go to `issues`, which
/// then keep the config from loading.
pub(crate) fn build(raw: Option<Value>, doc: &Document, issues: &mut Vec<Issue>) -> ServerConfig {
    let defaults = ServerConfig::default();
    let Some(raw) = raw else { return defaults };
    let Some(raw) = doc.read::<RawServer>(raw, "server", issues) else {
        return defaults;
    };
    let timeout = |text, default, path, issues: &mut Vec<Issue>| {
        bulwark::config::duration::timeout(text, default, path, issues)
    };
    let header_timeout = timeout(
        raw.header_timeout,
        defaults.header_timeout,
        "server.header_timeout",
        issues,
    );
    let body_timeout = timeout(
        raw.body_timeout,
        defaults.body_timeout,
        "server.body_timeout",
        issues,
    );
    let idle_timeout = timeout(
        raw.idle_timeout,
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
    ServerConfig {
        header_timeout,
        body_timeout,
        idle_timeout,
        max_connections,
        http2_max_streams,
    }
}
