//! Field readers for decoding client JSON with errors that name the field.
//!
//! Each reader removes the field it reads, so whatever is left in the object
//! afterwards is, by construction, a field the decoder did not understand.

use serde_json::{Map, Value};

use crate::api::{Unmapped, WireFormat};
use crate::error::ApiError;

pub type Object = Map<String, Value>;

/// Parses a request body that must be a JSON object.
pub fn parse_object(body: &[u8]) -> Result<Object, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ApiError::invalid(format!(
            "the request body must be a JSON object, not {}",
            type_name(&other)
        ))),
        Err(e) => Err(ApiError::invalid(format!(
            "the request body is not valid JSON: {e}"
        ))),
    }
}

pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub fn wrong_type(path: &str, expected: &str, found: &Value) -> ApiError {
    ApiError::invalid_param(
        path,
        format!(
            "`{path}` must be {expected}, but it is {}",
            type_name(found)
        ),
    )
}

pub fn missing(path: &str) -> ApiError {
    ApiError::invalid_param(path, format!("`{path}` is required"))
}

/// Removes `key`; an explicit `null` counts as absent, as the providers treat it.
pub fn take(obj: &mut Object, key: &str) -> Option<Value> {
    match obj.remove(key) {
        Some(Value::Null) | None => None,
        Some(value) => Some(value),
    }
}

pub fn take_string(obj: &mut Object, key: &str, path: &str) -> Result<Option<String>, ApiError> {
    match take(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(path, "a string", &other)),
    }
}

pub fn require_string(obj: &mut Object, key: &str, path: &str) -> Result<String, ApiError> {
    take_string(obj, key, path)?.ok_or_else(|| missing(path))
}

pub fn take_f64(obj: &mut Object, key: &str, path: &str) -> Result<Option<f64>, ApiError> {
    match take(obj, key) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| wrong_type(path, "a number", &Value::Number(n))),
        Some(other) => Err(wrong_type(path, "a number", &other)),
    }
}

pub fn take_u32(obj: &mut Object, key: &str, path: &str) -> Result<Option<u32>, ApiError> {
    match take(obj, key) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_u64().and_then(|v| u32::try_from(v).ok()) {
            Some(v) => Ok(Some(v)),
            None => Err(ApiError::invalid_param(
                path,
                format!("`{path}` must be a non-negative integer, but it is {n}"),
            )),
        },
        Some(other) => Err(wrong_type(path, "a non-negative integer", &other)),
    }
}

pub fn take_bool(obj: &mut Object, key: &str, path: &str) -> Result<Option<bool>, ApiError> {
    match take(obj, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(other) => Err(wrong_type(path, "a boolean", &other)),
    }
}

pub fn take_array(obj: &mut Object, key: &str, path: &str) -> Result<Option<Vec<Value>>, ApiError> {
    match take(obj, key) {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(other) => Err(wrong_type(path, "an array", &other)),
    }
}

pub fn take_object(obj: &mut Object, key: &str, path: &str) -> Result<Option<Object>, ApiError> {
    match take(obj, key) {
        None => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => Err(wrong_type(path, "an object", &other)),
    }
}

pub fn into_object(value: Value, path: &str) -> Result<Object, ApiError> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(wrong_type(path, "an object", &other)),
    }
}

/// A string or an array of strings (OpenAI's `stop`).
pub fn take_string_list(obj: &mut Object, key: &str, path: &str) -> Result<Vec<String>, ApiError> {
    match take(obj, key) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s]),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s),
                other => Err(wrong_type(&format!("{path}[{i}]"), "a string", &other)),
            })
            .collect(),
        Some(other) => Err(wrong_type(path, "a string or an array of strings", &other)),
    }
}

/// Records the fields nobody read as unknown, with their paths: a client
/// may send fields newer than Bulwark, which its own format's provider
/// takes (the body goes there as it came) and no other format can carry.
pub fn leftovers(obj: &Object, path: &str, client: WireFormat, out: &mut Vec<Unmapped>) {
    for key in obj.keys() {
        let field = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        crate::wire::translate::unmapped(client, field, "unknown_field", out);
    }
}

/// Reads a field from a provider's response object without consuming it.
pub fn get_str<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

pub fn get_u64(value: &Value, key: &str) -> u64 {
    value.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// A `data:` URL split into media type and base64 payload.
pub fn split_data_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some((media_type.to_string(), data.to_string()))
}

/// Parses tool-call arguments, which OpenAI carries as a JSON string.
pub fn parse_arguments(arguments: &str, path: &str) -> Result<Value, ApiError> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_str(arguments).map_err(|e| {
        ApiError::invalid_param(path, format!("`{path}` must be a JSON-encoded object: {e}"))
    })
}

/// How far past the items so far a stream event's `index` may point. The
/// formats count blocks, choices and tool calls up from 0, so a real index
/// is at most the next one; a little slack keeps an out-of-order stream's
/// items. Past that the event is not followed: padding the list up to an
/// index the upstream chose (`"index": 4000000000`) would allocate without
/// end.
const INDEX_SLACK: usize = 16;
/// Indexes a list may always be padded to, whatever its length: OpenAI's
/// `n` goes to 128, and a compatible server may start choice 30 first.
const INDEX_ALWAYS: usize = 255;

/// A stream event's `index` field (0 when absent), when it is one a list
/// of `len` items may be padded to.
pub fn stream_index(event: &Value, len: usize) -> Option<usize> {
    let index = event.get("index").and_then(Value::as_u64).unwrap_or(0);
    usize::try_from(index)
        .ok()
        .filter(|&index| index <= len.saturating_add(INDEX_SLACK).max(INDEX_ALWAYS))
}
