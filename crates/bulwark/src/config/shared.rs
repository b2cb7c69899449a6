//! `redis:`: the Redis through which several Bulwark instances act as one.
//!
//! ```yaml
//! redis: redis://127.0.0.1:6379/0
//! # or, with the optional settings:
//! redis:
//!   url: rediss://:${REDIS_PASSWORD}@redis.internal:6380/0
//!   timeout: 50ms        # the most any Redis call may add to a request
//!   key_prefix: bulwark: # keys and channels of this deployment
//! ```

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::raw::Document;
use super::{Issue, Secret};

/// A Redis that answers slower than this is treated as down for the
/// request: local state answers instead.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);

/// Longer than this and Redis would be slower than the provider it guards.
const MAX_TIMEOUT: Duration = Duration::from_secs(5);

const DEFAULT_PREFIX: &str = "bulwark:";

#[derive(Clone, PartialEq, Eq)]
pub struct SharedConfig {
    /// May carry a password, so it is a secret; [`SharedConfig::address`]
    /// is what logs and `bulwark check` show.
    pub url: Secret,
    pub timeout: Duration,
    pub key_prefix: String,
}

impl SharedConfig {
    /// A URL given alone (`bulwark drill --redis`), with the defaults.
    pub fn from_url(url: &str) -> Result<SharedConfig, String> {
        let url = url.trim();
        if !valid_url(url) {
            return Err(BAD_URL.into());
        }
        Ok(SharedConfig {
            url: Secret::new(url),
            timeout: DEFAULT_TIMEOUT,
            key_prefix: DEFAULT_PREFIX.into(),
        })
    }

    /// The URL without its credentials: `rediss://redis.internal:6380/0`.
    pub fn address(&self) -> String {
        let url = self.url.expose();
        let Some((scheme, rest)) = url.split_once("://") else {
            return "redis".into();
        };
        let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        let rest = rest.split_once('?').map_or(rest, |(host, _)| host);
        format!("{scheme}://{rest}")
    }
}

impl fmt::Debug for SharedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedConfig")
            .field("address", &self.address())
            .field("timeout", &self.timeout)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShared {
    url: String,
    timeout: Option<String>,
    key_prefix: Option<String>,
}

const BAD_URL: &str = "not a Redis URL; write redis://HOST:PORT/DB or rediss://HOST:PORT/DB \
     (Redis Cluster and Sentinel URLs are not supported)";

fn valid_url(url: &str) -> bool {
    (url.starts_with("redis://") || url.starts_with("rediss://"))
        && redis::Client::open(url).is_ok()
}

pub(crate) fn build(raw: Value, doc: &Document, issues: &mut Vec<Issue>) -> Option<SharedConfig> {
    let raw = match raw {
        Value::String(url) => RawShared {
            url,
            timeout: None,
            key_prefix: None,
        },
        Value::Null => return None,
        other => doc.read::<RawShared>(other, "redis", issues)?,
    };
    let before = issues.len();
    let url = raw.url.trim().to_string();
    if !valid_url(&url) {
        // Never quote the URL: it may hold a password.
        issues.push(Issue::new("redis.url", BAD_URL));
    }
    let timeout = super::duration::timeout(raw.timeout, DEFAULT_TIMEOUT, "redis.timeout", issues);
    if timeout > MAX_TIMEOUT {
        issues.push(Issue::new(
            "redis.timeout",
            "at most 5s: every request may wait this long when Redis hangs",
        ));
    }
    let key_prefix = raw.key_prefix.unwrap_or_else(|| DEFAULT_PREFIX.into());
    if key_prefix.is_empty() || key_prefix.len() > 64 || key_prefix.chars().any(char::is_whitespace)
    {
        issues.push(Issue::new(
            "redis.key_prefix",
            "1 to 64 characters without spaces, such as `bulwark:`",
        ));
    }
    (issues.len() == before).then(|| SharedConfig {
        url: Secret::new(url),
        timeout,
        key_prefix,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};

    fn load(redis: &str) -> Result<Config, ConfigError> {
        Config::from_yaml(
            &format!(
                "redis: {redis}\nproviders:\n  a: {{ kind: openai, api_key: k }}\nroutes:\n  r: {{ targets: [a/m] }}\n"
            ),
            "test.yaml",
            &|_| None,
        )
    }

    #[test]
    fn a_url_alone_takes_the_defaults() -> Result<(), ConfigError> {
        let config = load("redis://127.0.0.1:6379/2")?;
        let shared = config
            .shared
            .as_ref()
            .map(|s| (s.timeout, s.key_prefix.as_str()));
        assert_eq!(shared, Some((super::DEFAULT_TIMEOUT, "bulwark:")));
        Ok(())
    }

    #[test]
    fn the_long_form_sets_timeout_and_prefix() -> Result<(), ConfigError> {
        let config = load(
            "{ url: 'rediss://:hunter2@redis.internal:6380/0', timeout: 20ms, key_prefix: 'team-a:' }",
        )?;
        let Some(shared) = config.shared else {
            panic!("no shared config");
        };
        assert_eq!(shared.timeout, std::time::Duration::from_millis(20));
        assert_eq!(shared.key_prefix, "team-a:");
        assert_eq!(shared.address(), "rediss://redis.internal:6380/0");
        assert!(!format!("{shared:?}").contains("hunter2"));
        Ok(())
    }

    #[test]
    fn a_bad_url_is_refused_without_being_quoted() {
        for bad in [
            "http://:hunter2@host:6379",
            "'redis://:hunter2@host:notaport'",
        ] {
            let Err(error) = load(bad) else {
                panic!("{bad} loaded");
            };
            let text = error.to_string();
            assert!(text.contains("redis.url"), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
    }

    #[test]
    fn bad_settings_are_refused_at_their_paths() {
        let Err(error) = load("{ url: 'redis://h:6379', timeout: 30s, key_prefix: '' }") else {
            panic!("loaded");
        };
        let paths: Vec<&str> = error.issues.iter().map(|i| i.path.as_str()).collect();
        assert!(paths.contains(&"redis.timeout"), "{paths:?}");
        assert!(paths.contains(&"redis.key_prefix"), "{paths:?}");
    }
}
