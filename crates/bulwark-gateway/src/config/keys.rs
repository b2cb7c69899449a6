//! Client keys and the admin key. Only their blake3 hashes are kept, so
//! neither the loaded config nor its `Debug` output gives a key away.

use std::collections::BTreeMap;
use std::fmt;

use bulwark::config::{Config, Document, Issue, RateLimits, TargetRef};
use bulwark::limit::queue::Priority;
use serde::Deserialize;
use serde_json::Value;

/// A client's key to the gateway. Only its blake3 hash is kept.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientKey {
    pub name: String,
    pub hash: [u8; 32],
    /// The routes (or `provider/model` targets) it may use; `None`: all.
    pub routes: Option<Vec<String>>,
    /// Its requests' place in admission queues.
    pub priority: Priority,
    /// Whether its requests may choose their priority (`x-bulwark-priority`).
    pub priority_header: bool,
    /// Its own per-minute quotas, across all routes.
    pub limits: RateLimits,
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey")
            .field("name", &self.name)
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

/// Client keys shorter than this are refused: they could be guessed.
const MIN_KEY_LENGTH: usize = 16;

/// The `keys:` section, in name order. Each key's `routes` must name the
/// engine's routes, or targets of its providers.
pub(crate) fn build(
    raw: BTreeMap<String, Value>,
    engine: &Config,
    doc: &Document,
    issues: &mut Vec<Issue>,
) -> Vec<ClientKey> {
    let mut keys = Vec::new();
    for (name, raw) in raw {
        let path = format!("keys.{name}");
        if let Some(raw) = doc.read::<RawKey>(raw, &path, issues)
            && let Some(key) = build_key(&name, raw, &path, engine, issues)
        {
            keys.push(key);
        }
    }
    keys
}

/// The hash of `admin_key`; an empty one leaves the admin API off.
pub(crate) fn admin(raw: Option<String>, issues: &mut Vec<Issue>) -> Option<[u8; 32]> {
    secret_hash(raw, "admin_key", issues)
}

/// The hash of `metrics_key`; without it `/metrics` is open, as
/// Prometheus endpoints usually are.
pub(crate) fn metrics(raw: Option<String>, issues: &mut Vec<Issue>) -> Option<[u8; 32]> {
    secret_hash(raw, "metrics_key", issues)
}

fn secret_hash(raw: Option<String>, path: &str, issues: &mut Vec<Issue>) -> Option<[u8; 32]> {
    match raw.filter(|k| !k.is_empty()) {
        None => None,
        Some(key) if key.len() >= MIN_KEY_LENGTH => Some(*blake3::hash(key.as_bytes()).as_bytes()),
        Some(_) => {
            issues.push(Issue {
                path: path.into(),
                message: format!("the key must be at least {MIN_KEY_LENGTH} characters long"),
            });
            None
        }
    }
}

fn build_key(
    name: &str,
    raw: RawKey,
    path: &str,
    engine: &Config,
    issues: &mut Vec<Issue>,
) -> Option<ClientKey> {
    let hash = match (raw.key, raw.key_blake3) {
        (Some(key), None) if key.len() >= MIN_KEY_LENGTH => {
            *blake3::hash(key.as_bytes()).as_bytes()
        }
        (Some(_), None) => {
            issues.push(Issue {
                path: format!("{path}.key"),
                message: format!("a client key must be at least {MIN_KEY_LENGTH} characters long"),
            });
            return None;
        }
        (None, Some(hex)) => match decode_hex32(&hex) {
            Some(hash) => hash,
            None => {
                issues.push(Issue {
                    path: format!("{path}.key_blake3"),
                    message: "must be the 64 hex digits of the key's blake3 hash".into(),
                });
                return None;
            }
        },
        _ => {
            issues.push(Issue {
                path: path.to_string(),
                message: "give exactly one of `key` (e.g. ${TEAM_KEY}) or `key_blake3`".into(),
            });
            return None;
        }
    };
    for (i, route) in raw.routes.iter().flatten().enumerate() {
        let direct =
            TargetRef::parse(route).is_some_and(|t| engine.providers.contains_key(&t.provider));
        if !engine.routes.contains_key(route) && !direct {
            issues.push(Issue {
                path: format!("{path}.routes[{i}]"),
                message: format!(
                    "`{route}` is neither a route nor a `provider/model` of a known provider"
                ),
            });
        }
    }
    let priority = match raw.priority.as_deref().map(Priority::parse) {
        None => Priority::Normal,
        Some(Some(priority)) => priority,
        Some(None) => {
            issues.push(Issue {
                path: format!("{path}.priority"),
                message: "must be high, normal or low".into(),
            });
            Priority::Normal
        }
    };
    Some(ClientKey {
        name: name.to_string(),
        hash,
        routes: raw.routes,
        priority,
        priority_header: raw.priority_header,
        limits: raw.limits.unwrap_or_default(),
    })
}

fn decode_hex32(text: &str) -> Option<[u8; 32]> {
    let bytes = text.trim().as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let digits = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(digits, 16).ok()?;
    }
    Some(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    key: Option<String>,
    key_blake3: Option<String>,
    routes: Option<Vec<String>>,
    priority: Option<String>,
    #[serde(default)]
    priority_header: bool,
    limits: Option<RateLimits>,
}
