//! The gateway's config: the engine's [`Config`] and the gateway's own
//! settings (where it listens, who may call it, observability, tracing),
//! read from one file in one pass, so a file with problems in both parts
//! lists them all.

pub mod conversations;
pub mod keys;
pub mod observe;
pub mod otel;
pub mod server;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bulwark::config::{Config, ConfigError, Document, Env, Issue, field_names};
use serde::Deserialize;
use serde_json::Value;

pub use conversations::ConversationsConfig;
pub use keys::ClientKey;
pub use observe::ObserveConfig;
pub use otel::OtelConfig;
pub use server::ServerConfig;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Anthropic's own limit for a Messages request.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;
/// How long requests and streams in flight may take to finish once a
/// shutdown starts (Kubernetes' default termination grace period).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Providers, routes and resilience: what the engine serves with.
    pub engine: Config,
    pub listen: SocketAddr,
    pub max_request_bytes: usize,
    /// Client keys; without any, the gateway is open (on loopback only).
    pub keys: Vec<ClientKey>,
    /// The blake3 hash of the key that opens `/admin/`; without it, the
    /// admin API is off.
    pub admin_key: Option<[u8; 32]>,
    /// The blake3 hash of the key Prometheus presents to `/metrics` (the
    /// admin key opens it too); without it, `/metrics` is open.
    pub metrics_key: Option<[u8; 32]>,
    /// The request log, health, alerts and status page.
    pub observe: ObserveConfig,
    /// Where OpenTelemetry traces go; without it, none are exported.
    pub otel: Option<OtelConfig>,
    /// How long requests in flight may take to finish after SIGTERM or
    /// Ctrl-C; past it they are cut.
    pub shutdown_grace: Duration,
    /// Timeouts and limits on client connections.
    pub server: ServerConfig,
    /// How long stored Responses API conversations are kept, and how large
    /// one may grow.
    pub conversations: ConversationsConfig,
}

/// The gateway's own top-level keys; the engine reads the rest.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    listen: Option<String>,
    max_request_bytes: Option<usize>,
    #[serde(default)]
    keys: BTreeMap<String, Value>,
    admin_key: Option<String>,
    metrics_key: Option<String>,
    store: Option<String>,
    retention: Option<String>,
    log_bodies: Option<bool>,
    health: Option<Value>,
    alerts: Option<Value>,
    status_page: Option<Value>,
    otel: Option<Value>,
    shutdown_grace: Option<String>,
    server: Option<Value>,
    conversations: Option<Value>,
}

impl GatewayConfig {
    /// Reads and validates a config file, interpolating `${VAR}` from the
    /// process environment.
    pub fn load(path: &Path) -> Result<GatewayConfig, ConfigError> {
        let text = bulwark::config::read_file(path)?;
        GatewayConfig::from_yaml(&text, &path.display().to_string(), &|name| {
            std::env::var(name).ok()
        })
    }

    /// Parses config text; `env` supplies `${VAR}` values.
    pub fn from_yaml(
        text: &str,
        source_name: &str,
        env: Env<'_>,
    ) -> Result<GatewayConfig, ConfigError> {
        let mut issues = Vec::new();
        let mut doc = Document::parse(text, env, &mut issues)
            .map_err(|fatal| ConfigError::new(source_name, vec![fatal]))?;
        let known: Vec<&str> = Config::keys()
            .iter()
            .chain(field_names::<RawGateway>())
            .copied()
            .collect();
        doc.refuse_unknown(&known, &mut issues);
        let raw = doc.read_top::<RawGateway>(&mut issues);
        let engine = Config::read(&mut doc, &mut issues);
        let config = match (raw, engine) {
            (Some(raw), Some(engine)) => build(raw, engine, &doc, &mut issues),
            _ => None,
        };
        match config {
            Some(config) if issues.is_empty() => Ok(config),
            _ => Err(ConfigError::new(source_name, issues)),
        }
    }
}

fn build(
    raw: RawGateway,
    engine: Config,
    doc: &Document,
    issues: &mut Vec<Issue>,
) -> Option<GatewayConfig> {
    let listen_text = raw.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let listen = match listen_text.parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            issues.push(Issue::new(
                "listen",
                format!("`{listen_text}` is not an address such as 127.0.0.1:8080"),
            ));
            None
        }
    };
    let max_request_bytes = raw.max_request_bytes.unwrap_or(DEFAULT_MAX_REQUEST_BYTES);
    if max_request_bytes == 0 {
        issues.push(Issue::new("max_request_bytes", "must be greater than 0"));
    }
    let keys = keys::build(raw.keys, &engine, doc, issues);
    let admin_key = keys::admin(raw.admin_key, issues);
    let metrics_key = keys::metrics(raw.metrics_key, issues);
    let observe = observe::build(
        observe::RawObserve {
            store: raw.store,
            retention: raw.retention,
            log_bodies: raw.log_bodies,
            health: raw.health,
            alerts: raw.alerts,
            status_page: raw.status_page,
        },
        doc,
        issues,
    );
    let otel = otel::build(raw.otel, doc, issues);
    let shutdown_grace = bulwark::config::duration::timeout(
        raw.shutdown_grace,
        DEFAULT_SHUTDOWN_GRACE,
        "shutdown_grace",
        issues,
    );
    let server = server::build(raw.server, max_request_bytes, doc, issues);
    let conversations = conversations::build(raw.conversations, doc, issues);
    Some(GatewayConfig {
        engine,
        listen: listen?,
        max_request_bytes,
        keys,
        admin_key,
        metrics_key,
        observe,
        otel,
        shutdown_grace,
        server,
        conversations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PORT" => Some("9000".into()),
            "MAX" => Some("4096".into()),
            _ => None,
        }
    }

    fn load(text: &str) -> Result<GatewayConfig, ConfigError> {
        GatewayConfig::from_yaml(text, "test.yaml", &env)
    }

    #[test]
    fn reads_the_engine_and_the_gateway_from_one_file() -> Result<(), ConfigError> {
        let config = load(
            "listen: 127.0.0.1:${PORT}\nmax_request_bytes: ${MAX}\nproviders:\n  a: { kind: openai }\nroutes:\n  r: { targets: [a/x] }\nhealth: { window: 1.5m }\n",
        )?;
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.max_request_bytes, 4096);
        assert!(config.engine.routes.contains_key("r"));
        assert_eq!(
            config.observe.health.window,
            std::time::Duration::from_secs(90)
        );
        Ok(())
    }

    #[test]
    fn a_metrics_key_is_kept_only_as_a_hash_and_must_be_long() {
        let base = "providers:\n  a: { kind: openai }\nroutes:\n  r: { targets: [a/x] }\n";
        let config = load(&format!("{base}metrics_key: scrape-secret-0123456789\n")).unwrap();
        assert_eq!(
            config.metrics_key,
            Some(*blake3::hash(b"scrape-secret-0123456789").as_bytes())
        );
        assert!(!format!("{config:?}").contains("scrape-secret"));
        let Err(error) = load(&format!("{base}metrics_key: short\n")) else {
            panic!("a guessable metrics key loaded");
        };
        assert_eq!(error.issues[0].path, "metrics_key");
    }

    #[test]
    fn problems_in_both_parts_are_listed_together() {
        let Err(error) = load(
            "listen: nowhere\nlisen: x\nproviders:\n  a: { kind: anthropc }\nroutes:\n  r: { targets: [x/y] }\nkeys:\n  k: { key: short }\notel: { sample_ratio: 2 }\n",
        ) else {
            panic!("an invalid config loaded");
        };
        let paths: Vec<&str> = error.issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "lisen",
                "providers.a.kind",
                "routes.r.targets[0]",
                "listen",
                "keys.k.key",
                "otel.sample_ratio"
            ]
        );
        assert!(
            error.issues[0]
                .message
                .contains("listen, max_request_bytes")
                && error.issues[0].message.contains("providers, routes"),
            "{}",
            error.issues[0].message
        );
    }

    #[test]
    fn client_keys_are_hashed_and_validated() -> Result<(), ConfigError> {
        let config = load(
            "providers:\n  a: { kind: openai }\nroutes:\n  r: { targets: [a/x] }\nkeys:\n  team: { key: team-key-0123456789, routes: [r, a/y] }\n",
        )?;
        let key = &config.keys[0];
        assert_eq!(key.hash, *blake3::hash(b"team-key-0123456789").as_bytes());
        assert!(
            !format!("{config:?}").contains("team-key-0123456789"),
            "a key leaked into Debug output"
        );
        let Err(error) = load(
            "providers:\n  a: { kind: openai }\nroutes:\n  r: { targets: [a/x] }\nkeys:\n  short: { key: abc }\n  both: { key: team-key-0123456789, key_blake3: ab }\n  hex: { key_blake3: xyz }\n  routes: { key: team-key-0123456789, routes: [nope] }\n",
        ) else {
            panic!("an invalid config loaded");
        };
        let paths: Vec<&str> = error.issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "keys.both",
                "keys.hex.key_blake3",
                "keys.routes.routes[0]",
                "keys.short.key"
            ]
        );
        Ok(())
    }

    #[test]
    fn the_server_section_has_defaults_and_reports_each_problem_by_path() -> Result<(), ConfigError>
    {
        let base = "providers:\n  a: { kind: openai }\nroutes:\n  r: { targets: [a/x] }\n";
        assert_eq!(load(base)?.server, ServerConfig::default());
        let config = load(&format!(
            "{base}server: {{ header_timeout: 2s, body_timeout: 1m, idle_timeout: 500ms, max_connections: 7, http2_max_streams: 8, max_messages: 9, max_content_parts: 10, max_tools: 11, max_json_depth: 12, max_inflight_request_bytes: 2147483648 }}\n"
        ))?;
        assert_eq!(
            config.server,
            ServerConfig {
                header_timeout: Duration::from_secs(2),
                body_timeout: Duration::from_secs(60),
                idle_timeout: Duration::from_millis(500),
                max_connections: 7,
                http2_max_streams: 8,
                limits: bulwark::wire::limits::ParseLimits {
                    max_messages: 9,
                    max_content_parts: 10,
                    max_tools: 11,
                    max_json_depth: 12,
                },
                max_inflight_request_bytes: 2 << 30,
            }
        );
        let Err(error) = load(&format!(
            "{base}server: {{ header_timeout: soon, body_timeout: 0s, idle_timeout: 2d, max_connections: 0, http2_max_streams: 0, max_messages: 0, max_json_depth: 129, max_inflight_request_bytes: 1000 }}\n"
        )) else {
            panic!("an invalid server section loaded");
        };
        let paths: Vec<&str> = error.issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "server.header_timeout",
                "server.body_timeout",
                "server.idle_timeout",
                "server.max_connections",
                "server.http2_max_streams",
                "server.max_messages",
                "server.max_json_depth",
                "server.max_inflight_request_bytes"
            ]
        );
        let Err(error) = load(&format!("{base}server: {{ header_timout: 1s }}\n")) else {
            panic!("an unknown server key loaded");
        };
        assert!(
            error.issues.iter().any(|i| i.path.starts_with("server")),
            "{error:?}"
        );
        Ok(())
    }

    #[test]
    fn conversations_default_to_openai_s_30_days_and_report_problems_by_path()
    -> Result<(), ConfigError> {
        let base = "providers:\n  a: { kind: openai }\nroutes:\n  r: { targets: [a/x] }\n";
        assert_eq!(load(base)?.conversations, ConversationsConfig::default());
        assert_eq!(
            ConversationsConfig::default().ttl,
            Duration::from_secs(30 * 86_400)
        );
        let config = load(&format!(
            "{base}conversations: {{ ttl: 7d, max_bytes: 1000, max_bytes_per_key: 50000 }}\n"
        ))?;
        assert_eq!(
            config.conversations,
            ConversationsConfig {
                ttl: Duration::from_secs(7 * 86_400),
                max_bytes: 1000,
                max_bytes_per_key: 50_000,
            }
        );
        let Err(error) = load(&format!(
            "{base}conversations: {{ ttl: forever, max_bytes: 0, max_bytes_per_key: 0 }}\n"
        )) else {
            panic!("an invalid conversations section loaded");
        };
        let paths: Vec<&str> = error.issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "conversations.ttl",
                "conversations.max_bytes",
                "conversations.max_bytes_per_key"
            ]
        );
        let Err(error) = load(&format!("{base}conversations: {{ tll: 1d }}\n")) else {
            panic!("an unknown conversations key loaded");
        };
        assert!(
            error
                .issues
                .iter()
                .any(|i| i.path.starts_with("conversations")),
            "{error:?}"
        );
        Ok(())
    }
}
