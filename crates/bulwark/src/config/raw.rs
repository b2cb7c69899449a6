//! The file as written: YAML parsed and interpolated into a [`Document`],
//! and the serde types its sections are read into before validation.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::{self, DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::env::{self, Env};
use super::issue::join_path;
use super::{Issue, ProviderKind};

/// A config file parsed and interpolated, its sections not yet read. The
/// engine and the gateway each read their own top-level keys from it, so
/// one file reports the problems of both at once.
pub struct Document {
    top: Map<String, Value>,
    /// Key paths whose value came from a `${...}` reference.
    substituted: BTreeSet<String>,
    /// The environment variables a cloud's credential chain reads
    /// (`super::cloud::AMBIENT`), taken when the file is read, so that a
    /// config is resolved from one environment, as its `${VAR}`s are.
    pub(crate) ambient: BTreeMap<&'static str, String>,
}

/// Only the key names: the values hold interpolated secrets (provider keys,
/// client keys, the admin key), which must never reach a log.
impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Document")
            .field("keys", &self.top.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Document {
    /// Parses YAML and substitutes `${VAR}` from `env`. `Err` when the text
    /// is not YAML at all: nothing else can then be said about it.
    pub fn parse(text: &str, env: Env<'_>, issues: &mut Vec<Issue>) -> Result<Document, Issue> {
        let (text, references) = env::protect_references(text);
        let mut value = super::budget::parse(&text).map_err(|e| match e {
            Some(message) => Issue::new("", format!("not valid YAML: {message}")),
            None => Issue::new(
                "",
                format!(
                    "the file's aliases (`*name`) expand it past {} bytes; write the repeated parts out, or alias less",
                    super::budget::for_text(text.len())
                ),
            ),
        })?;
        let substituted = env::interpolate(&mut value, &references, env, issues);
        let top = match value {
            Value::Null => Map::new(),
            Value::Object(top) => top,
            other => {
                return Err(Issue::new(
                    "",
                    format!("expected keys such as `providers:` and `routes:`, found {other}"),
                ));
            }
        };
        let ambient = super::cloud::AMBIENT
            .iter()
            .filter_map(|name| Some((*name, env(name)?)))
            .collect();
        Ok(Document {
            top,
            substituted,
            ambient,
        })
    }

    /// Reports each top-level key that is not in `known` and drops it, so
    /// that a typo does not hide the problems in the sections after it.
    pub fn refuse_unknown(&mut self, known: &[&str], issues: &mut Vec<Issue>) {
        self.top.retain(|key, _| {
            let is_known = known.contains(&key.as_str());
            if !is_known {
                issues.push(Issue {
                    path: key.clone(),
                    message: format!(
                        "unknown key; expected one of {} (see the config reference in README.md)",
                        known.join(", ")
                    ),
                });
            }
            is_known
        });
    }

    /// Takes the top-level keys `T` has fields for and reads them into it.
    pub fn read_top<T: DeserializeOwned>(&mut self, issues: &mut Vec<Issue>) -> Option<T> {
        let fields = field_names::<T>();
        let mut part = Map::new();
        for key in fields {
            if let Some((key, value)) = self.top.remove_entry(*key) {
                part.insert(key, value);
            }
        }
        self.read(Value::Object(part), "", issues)
    }

    /// Deserializes one section, recording a failure with its full key path.
    /// A number or boolean key given as `${VAR}` arrives as a string; it is
    /// read as the scalar the variable spells.
    pub fn read<T: DeserializeOwned>(
        &self,
        mut value: Value,
        prefix: &str,
        issues: &mut Vec<Issue>,
    ) -> Option<T> {
        let mut retyped = BTreeSet::new();
        loop {
            let error = match serde_path_to_error::deserialize::<_, T>(&value) {
                Ok(v) => return Some(v),
                Err(error) => error,
            };
            let path = join_path(prefix, &error.path().to_string());
            if self.substituted.contains(&path)
                && !retyped.contains(&path)
                && let Some(slot) = value_at(&mut value, error.path())
                && let Some(scalar) = slot.as_str().and_then(env::as_scalar)
            {
                *slot = scalar;
                retyped.insert(path);
                continue;
            }
            let mut message = without_values(&error.into_inner().to_string());
            if self.substituted.contains(&path) {
                // A `${VAR}` value in the wrong place may be a secret: say
                // what was expected, never what was found.
                let expected = message
                    .split_once(", expected ")
                    .map_or(String::new(), |(_, expected)| {
                        format!(": expected {expected}")
                    });
                message = format!("the value put here by ${{...}} does not fit{expected}");
            }
            if message.starts_with("unknown field") {
                message.push_str(" (see the config reference in README.md)");
            }
            issues.push(Issue { path, message });
            return None;
        }
    }
}

/// A serde message with every quoted string value (`string "sk-..."`)
/// replaced by `a string`: such a value may be a key, and the message goes
/// to logs, `bulwark check` and a reload's answer. Field and variant names
/// (in backticks) stay: they are the schema's, not the user's secrets.
fn without_values(message: &str) -> String {
    const QUOTED: &str = "string \"";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(QUOTED) {
        out.push_str(&rest[..start]);
        out.push_str("a string");
        let after = &rest[start + QUOTED.len()..];
        // The value is Debug-escaped: a quote inside it is `\"`.
        let mut escaped = false;
        let end = after.char_indices().find_map(|(i, c)| match (escaped, c) {
            (true, _) => {
                escaped = false;
                None
            }
            (false, '\\') => {
                escaped = true;
                None
            }
            (false, '"') => Some(i + 1),
            (false, _) => None,
        });
        rest = end.map_or("", |end| &after[end..]);
    }
    out.push_str(rest);
    out
}

fn value_at<'v>(value: &'v mut Value, path: &serde_path_to_error::Path) -> Option<&'v mut Value> {
    use serde_path_to_error::Segment;
    path.iter().try_fold(value, |value, segment| match segment {
        Segment::Seq { index } => value.get_mut(*index),
        Segment::Map { key } => value.get_mut(key.as_str()),
        Segment::Enum { .. } | Segment::Unknown => None,
    })
}

/// The field names of a struct that derives `Deserialize`, as serde knows
/// them: lists of known keys then cannot drift from the type.
pub fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut names = FieldNames(&[]);
    // The capture always "fails": it stops serde once the names are known.
    let _ = T::deserialize(&mut names);
    names.0
}

struct FieldNames(&'static [&'static str]);

impl<'de> Deserializer<'de> for &mut FieldNames {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0 = fields;
        Err(de::Error::custom("field names captured"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// The engine's top-level keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub providers: BTreeMap<String, Value>,
    #[serde(default)]
    pub routes: BTreeMap<String, Value>,
    pub breaker: Option<Value>,
    pub retry_budget: Option<Value>,
    pub cache: Option<Value>,
    pub redis: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProvider {
    pub kind: ProviderKind,
    pub base_url: Option<String>,
    pub api_key: Option<String>,
    pub connect_timeout: Option<String>,
    pub max_concurrency: Option<u32>,
    pub limits: Option<super::RateLimits>,
    pub default_max_tokens: Option<u32>,
    pub max_response_bytes: Option<u64>,
    pub stream: Option<bool>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub context_windows: BTreeMap<String, u64>,
    /// What each model can do, where its name does not say it.
    #[serde(default)]
    pub models: BTreeMap<String, super::ModelTraitsOverride>,
    #[serde(default)]
    pub prices: BTreeMap<String, crate::observe::config::Price>,
    pub probe: Option<crate::observe::config::RawProbe>,
    // The cloud kinds' settings, read by `super::cloud`.
    /// Azure OpenAI: the API version of the deployment paths.
    pub api_version: Option<String>,
    /// Azure OpenAI: a Microsoft Entra ID app's client credentials.
    pub entra: Option<super::cloud::RawEntra>,
    /// Bedrock and Vertex: the cloud region.
    pub region: Option<String>,
    /// Bedrock: AWS credentials, or where to find them.
    pub aws: Option<super::cloud::RawAws>,
    /// Vertex: the Google Cloud project.
    pub project: Option<String>,
    /// Vertex: a service account's JSON key file.
    pub credentials_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub targets: Vec<Value>,
    pub balance: Option<String>,
    pub deadline: Option<String>,
    pub attempt_timeout: Option<String>,
    pub first_token_timeout: Option<String>,
    pub stream_idle_timeout: Option<String>,
    pub max_retries: Option<u32>,
    pub backoff_base: Option<String>,
    pub backoff_cap: Option<String>,
    pub hedge_after: Option<String>,
    pub mid_stream: Option<String>,
    pub translation: Option<String>,
    pub cache: Option<RawRouteCache>,
    #[serde(default)]
    pub degrade: Vec<Value>,
    pub admission: Option<RawAdmission>,
    pub slo: Option<crate::observe::config::RawSlo>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmission {
    pub max_concurrency: usize,
    pub queue: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRouteCache {
    pub ttl: Option<String>,
    pub max_stale: Option<String>,
    #[serde(default)]
    pub nondeterministic: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCache {
    pub max_bytes: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBreaker {
    pub consecutive_failures: Option<u32>,
    pub failure_rate: Option<f64>,
    pub window: Option<String>,
    pub min_calls: Option<u32>,
    pub slow_call: Option<String>,
    pub base_ejection: Option<String>,
    pub max_ejection: Option<String>,
    pub half_open_probes: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBudget {
    pub ratio: Option<f64>,
    pub min_per_second: Option<f64>,
    pub window: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_come_from_the_type() {
        assert_eq!(
            field_names::<RawConfig>(),
            [
                "providers",
                "routes",
                "breaker",
                "retry_budget",
                "cache",
                "redis"
            ]
        );
    }

    #[test]
    fn quoted_values_are_left_out_of_messages() {
        assert_eq!(
            without_values(r#"invalid type: string "sk-live-SECRET", expected struct RawProvider"#),
            "invalid type: a string, expected struct RawProvider"
        );
        assert_eq!(
            without_values(
                r#"invalid value: string "a \"quoted\" sk-1", expected x; string "two""#
            ),
            "invalid value: a string, expected x; a string"
        );
        assert_eq!(
            without_values("unknown field `retries`, expected one of `targets`"),
            "unknown field `retries`, expected one of `targets`"
        );
        assert_eq!(
            without_values(r#"cut string "sk-unterminated"#),
            "cut a string"
        );
    }

    /// A provider, header or client key from `${VAR}` in the wrong shape
    /// used to be quoted whole in the message (and so in logs and in a
    /// reload's 422 answer).
    #[test]
    fn a_secret_in_the_wrong_place_is_never_quoted() {
        let env = |name: &str| (name == "SECRET").then(|| "sk-live-SECRET-0123456789".to_string());
        for yaml in [
            "providers:\n  a: ${SECRET}\nroutes:\n  r: { targets: [a/m] }\n",
            "providers:\n  a: { kind: openai, api_key: k, headers: ${SECRET} }\nroutes:\n  r: { targets: [a/m] }\n",
            "providers:\n  a: { kind: openai, api_key: k }\nroutes:\n  r: { targets: [a/m] }\n  bad: { targets: sk-live-SECRET-0123456789 }\n",
            "providers:\n  a: { kind: openai, api_key: k }\n  \"sk-live-SECRET-0123456789: [\nroutes: {}\n",
        ] {
            let Err(error) = crate::config::Config::from_yaml(yaml, "test.yaml", &env) else {
                panic!("accepted: {yaml}");
            };
            let text = error.to_string();
            assert!(!text.contains("SECRET"), "{text}");
            assert!(!text.contains("0123456789"), "{text}");
        }
    }
}
