//! Bounds on a request body's shape, checked before it is decoded.
//!
//! Decoding builds a tree of `serde_json::Value`s, which costs many times
//! the body's size when the body holds many small items (a message of 30
//! bytes becomes a map of several hundred). So the counts that drive that
//! cost (messages, content parts, tools, nesting) are checked first by a
//! pass that allocates nothing but the model's name, and a body over them
//! is refused before any tree is built. The pass also reads the model, so
//! that a key's routes can be checked before the body is decoded.
//!
//! The defaults are never stricter than a provider: Anthropic, the
//! strictest that documents it, accepts 100,000 messages.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::ApiError;

/// Messages per request (Anthropic's own limit).
pub const DEFAULT_MAX_MESSAGES: usize = 100_000;
/// Content parts in one message: far more than any provider takes images
/// or documents, and more than any client splits text into.
pub const DEFAULT_MAX_CONTENT_PARTS: usize = 10_000;
/// Tools per request (OpenAI takes 128, Gemini 512 function declarations).
pub const DEFAULT_MAX_TOOLS: usize = 4_096;
/// JSON nesting: `serde_json` stops at 128 in any case, so this is also the
/// highest value the setting takes.
pub const DEFAULT_MAX_JSON_DEPTH: usize = 128;

/// The configured bounds; `Default` gives the defaults above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    pub max_messages: usize,
    pub max_content_parts: usize,
    pub max_tools: usize,
    pub max_json_depth: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_messages: DEFAULT_MAX_MESSAGES,
            max_content_parts: DEFAULT_MAX_CONTENT_PARTS,
            max_tools: DEFAULT_MAX_TOOLS,
            max_json_depth: DEFAULT_MAX_JSON_DEPTH,
        }
    }
}

/// Where a format keeps what the limits count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// The top-level array of messages (`messages`, `contents`, `input`).
    pub messages: &'static str,
    /// The array of parts inside one message (`content`, `parts`).
    pub parts: &'static str,
    /// Top-level arrays of parts outside the messages (Anthropic's `system`).
    pub top_parts: &'static [&'static str],
    /// The top-level field naming the model, when the body has one.
    pub model: Option<&'static str>,
}

/// What the check read on its way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scanned {
    /// The body's model, when it is a string.
    pub model: Option<String>,
    /// Arrays and objects in the body: each costs a node of its own once
    /// parsed, whatever its size in the body.
    pub containers: u64,
    /// Commas and colons outside strings: about one per value parsed.
    pub separators: u64,
}

/// The config keys the refusals name.
pub const MESSAGES_KEY: &str = "server.max_messages";
pub const PARTS_KEY: &str = "server.max_content_parts";
pub const TOOLS_KEY: &str = "server.max_tools";
pub const DEPTH_KEY: &str = "server.max_json_depth";

#[derive(Debug, Clone, Copy)]
enum Exceeded {
    Messages,
    Parts { message: Option<usize> },
    TopParts(&'static str),
    Tools,
}

/// Checks `body` against `limits`. A body that is not JSON, or not of the
/// expected shape, passes: the decoder says what is wrong with it, and it
/// stops at the same place this pass did, so it builds no more than that.
pub fn check(body: &[u8], shape: &Shape, limits: &ParseLimits) -> Result<Scanned, ApiError> {
    let Some(structure) = structure(body, limits.max_json_depth) else {
        return Err(ApiError::invalid(format!(
            "the request body nests JSON deeper than {} levels, the most this gateway accepts (config key `{DEPTH_KEY}`)",
            limits.max_json_depth
        )));
    };
    let scan = Scan {
        shape,
        limits,
        exceeded: Cell::new(None),
    };
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let model = match (&scan).deserialize(&mut deserializer) {
        Ok(scanned) => scanned.model,
        Err(_) => match scan.exceeded.get() {
            Some(exceeded) => return Err(refusal(exceeded, shape, limits)),
            None => None,
        },
    };
    Ok(Scanned { model, ..structure })
}

fn refusal(exceeded: Exceeded, shape: &Shape, limits: &ParseLimits) -> ApiError {
    let (param, what, max, key) = match exceeded {
        Exceeded::Messages => (
            shape.messages.to_string(),
            format!(
                "`{}` has more than {} items",
                shape.messages, limits.max_messages
            ),
            limits.max_messages,
            MESSAGES_KEY,
        ),
        Exceeded::Parts { message } => {
            let param = match message {
                Some(i) => format!("{}[{i}].{}", shape.messages, shape.parts),
                None => shape.parts.to_string(),
            };
            (
                param.clone(),
                format!(
                    "`{param}` has more than {} content parts",
                    limits.max_content_parts
                ),
                limits.max_content_parts,
                PARTS_KEY,
            )
        }
        Exceeded::TopParts(name) => (
            name.to_string(),
            format!(
                "`{name}` has more than {} content parts",
                limits.max_content_parts
            ),
            limits.max_content_parts,
            PARTS_KEY,
        ),
        Exceeded::Tools => (
            "tools".to_string(),
            format!("`tools` has more than {} tools", limits.max_tools),
            limits.max_tools,
            TOOLS_KEY,
        ),
    };
    ApiError::invalid_param(
        param,
        format!("{what}; {max} is the most this gateway accepts (config key `{key}`)"),
    )
}

/// The body's containers and separators, by a byte scan that skips
/// strings (a `{` inside a string is text); `None` when arrays and objects
/// nest deeper than `max`.
fn structure(body: &[u8], max: usize) -> Option<Scanned> {
    let mut scanned = Scanned::default();
    let mut depth = 0_usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return None;
                }
                scanned.containers += 1;
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' | b':' => scanned.separators += 1,
            _ => {}
        }
    }
    Some(scanned)
}

struct Scan<'a> {
    shape: &'a Shape,
    limits: &'a ParseLimits,
    exceeded: Cell<Option<Exceeded>>,
}

impl Scan<'_> {
    fn exceed<E: de::Error>(&self, exceeded: Exceeded) -> E {
        self.exceeded.set(Some(exceeded));
        E::custom("over a limit")
    }
}

/// A top-level key, told apart without allocating.
enum Key {
    Model,
    Messages,
    Tools,
    TopParts(&'static str),
    Parts,
    Other,
}

struct KeySeed<'a> {
    shape: &'a Shape,
    /// Whether this is a key inside a message rather than at the top.
    in_message: bool,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        let shape = self.shape;
        Ok(if self.in_message {
            if key == shape.parts {
                Key::Parts
            } else {
                Key::Other
            }
        } else if Some(key) == shape.model {
            Key::Model
        } else if key == shape.messages {
            Key::Messages
        } else if key == "tools" {
            Key::Tools
        } else if let Some(name) = shape.top_parts.iter().find(|name| **name == key) {
            Key::TopParts(name)
        } else {
            Key::Other
        })
    }
}

/// Implements every `visit_*` of a scalar as "ignore it": a value of an
/// unexpected type is the decoder's to refuse.
macro_rules! ignore_scalars {
    ($value:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

impl<'de> DeserializeSeed<'de> for &Scan<'_> {
    type Value = Scanned;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Scanned, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for &Scan<'_> {
    type Value = Scanned;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    ignore_scalars!(Scanned::default());
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Scanned, E> {
        Ok(Scanned::default())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scanned, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scanned::default())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scanned, A::Error> {
        let mut scanned = Scanned::default();
        let shape = self.shape;
        while let Some(key) = map.next_key_seed(KeySeed {
            shape,
            in_message: false,
        })? {
            match key {
                Key::Model => scanned.model = map.next_value_seed(ModelSeed)?,
                Key::Messages => map.next_value_seed(Count {
                    scan: self,
                    max: self.limits.max_messages,
                    exceeded: Exceeded::Messages,
                    messages: true,
                })?,
                Key::Tools => map.next_value_seed(Count {
                    scan: self,
                    max: self.limits.max_tools,
                    exceeded: Exceeded::Tools,
                    messages: false,
                })?,
                Key::TopParts(name) => map.next_value_seed(Count {
                    scan: self,
                    max: self.limits.max_content_parts,
                    exceeded: Exceeded::TopParts(name),
                    messages: false,
                })?,
                Key::Parts | Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(scanned)
    }
}

/// The model's name when it is a string; the only allocation of the pass.
struct ModelSeed;

impl<'de> DeserializeSeed<'de> for ModelSeed {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ModelSeed {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a model name")
    }
    ignore_scalars!(None);
    fn visit_str<E: de::Error>(self, model: &str) -> Result<Self::Value, E> {
        Ok(Some(model.to_string()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

/// Counts an array's items against `max`; with `messages`, each item's
/// parts too.
struct Count<'s, 'a> {
    scan: &'s Scan<'a>,
    max: usize,
    exceeded: Exceeded,
    messages: bool,
}

impl<'de> DeserializeSeed<'de> for Count<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Count<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }
    ignore_scalars!(());
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut count = 0_usize;
        loop {
            let more = if self.messages {
                seq.next_element_seed(MessageSeed {
                    scan: self.scan,
                    index: count,
                })?
                .is_some()
            } else {
                seq.next_element::<IgnoredAny>()?.is_some()
            };
            if !more {
                return Ok(());
            }
            count += 1;
            if count > self.max {
                return Err(self.scan.exceed(self.exceeded));
            }
        }
    }
}

/// One message: its parts are counted, the rest skipped.
struct MessageSeed<'s, 'a> {
    scan: &'s Scan<'a>,
    index: usize,
}

impl<'de> DeserializeSeed<'de> for MessageSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MessageSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a message")
    }
    ignore_scalars!(());
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed {
            shape: self.scan.shape,
            in_message: true,
        })? {
            match key {
                Key::Parts => map.next_value_seed(Count {
                    scan: self.scan,
                    max: self.scan.limits.max_content_parts,
                    exceeded: Exceeded::Parts {
                        message: Some(self.index),
                    },
                    messages: false,
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// One check per dialect of how its own fields are counted (each
/// `inbound.rs` has a `limit_tests` module naming its shapes).
#[cfg(test)]
pub(crate) mod dialect_cases {
    use super::{MESSAGES_KEY, PARTS_KEY, ParseLimits, Shape, check as scan};

    /// A dialect's bodies: `%s` in each template is replaced by its item,
    /// repeated.
    pub(crate) struct Case<'a> {
        pub shape: &'a Shape,
        pub decode: &'a dyn Fn(&[u8]) -> bool,
        pub model: Option<&'a str>,
        pub messages: (&'a str, &'a str),
        pub parts: (&'a str, &'a str),
        pub parts_param: &'a str,
    }

    fn repeated((template, item): (&str, &str), n: usize) -> String {
        template.replace("%s", &vec![item; n].join(","))
    }

    /// Three messages and two parts pass (and decode); one more of either
    /// is refused, naming its setting.
    pub(crate) fn check(case: Case<'_>) {
        let limits = ParseLimits {
            max_messages: 3,
            max_content_parts: 2,
            ..ParseLimits::default()
        };
        for body in [repeated(case.messages, 3), repeated(case.parts, 2)] {
            let scanned = scan(body.as_bytes(), case.shape, &limits).unwrap();
            assert_eq!(scanned.model.as_deref(), case.model, "{body}");
            assert!((case.decode)(body.as_bytes()), "{body}");
        }
        let error = scan(repeated(case.messages, 4).as_bytes(), case.shape, &limits).unwrap_err();
        assert_eq!(error.status, 400);
        assert!(error.message.contains(MESSAGES_KEY), "{error:?}");
        let error = scan(repeated(case.parts, 3).as_bytes(), case.shape, &limits).unwrap_err();
        assert_eq!(error.param.as_deref(), Some(case.parts_param));
        assert!(error.message.contains(PARTS_KEY), "{error:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: Shape = Shape {
        messages: "messages",
        parts: "content",
        top_parts: &["system"],
        model: Some("model"),
    };

    fn limits() -> ParseLimits {
        ParseLimits {
            max_messages: 3,
            max_content_parts: 2,
            max_tools: 1,
            max_json_depth: 5,
        }
    }

    #[test]
    fn a_body_within_the_limits_passes_and_gives_its_model() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"{[["}]}],"tools":[{}]}"#;
        let scanned = check(body, &SHAPE, &limits()).unwrap();
        assert_eq!(scanned.model.as_deref(), Some("m"));
        // The braces inside the string are text.
        assert_eq!(scanned.containers, 7);
        assert_eq!(scanned.separators, 11);
    }

    #[test]
    fn each_limit_is_refused_with_its_setting() {
        let cases: [(&[u8], &str, &str); 5] = [
            (br#"{"messages":[{},{},{},{}]}"#, MESSAGES_KEY, "messages"),
            (
                br#"{"messages":[{},{"content":[1,2,3]}]}"#,
                PARTS_KEY,
                "messages[1].content",
            ),
            (br#"{"system":[1,2,3]}"#, PARTS_KEY, "system"),
            (br#"{"tools":[{},{}]}"#, TOOLS_KEY, "tools"),
            (br#"{"a":[[[[[[]]]]]]}"#, DEPTH_KEY, ""),
        ];
        for (body, key, param) in cases {
            let error = check(body, &SHAPE, &limits()).unwrap_err();
            assert_eq!(error.status, 400, "{error:?}");
            assert!(error.message.contains(key), "{error:?}");
            if !param.is_empty() {
                assert_eq!(error.param.as_deref(), Some(param));
            }
        }
    }

    #[test]
    fn a_body_of_another_shape_or_not_json_is_left_to_the_decoder() {
        for body in [
            &b"not json"[..],
            b"[1,2]",
            br#"{"messages":"hi","model":7}"#,
        ] {
            assert_eq!(check(body, &SHAPE, &limits()).unwrap().model, None);
        }
    }
}
