//! Types shared by the three format modules.

use serde_json::Value;

/// Per-response identity: ids, timestamps, the model echoed back.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    /// Sequence number, used to derive deterministic ids.
    pub seq: u64,
    pub created: u64,
    pub model: String,
    /// The request id sent in headers (and Anthropic error bodies).
    pub request_id: String,
    /// OpenAI `stream_options.include_usage`.
    pub include_usage: bool,
}

impl Ctx {
    /// A hex id that is unique per response and stable across runs.
    pub(crate) fn hex_id(&self, salt: u64) -> String {
        format!(
            "{:016x}{:08x}",
            self.seq.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            salt
        )
    }
}

/// A request the format module rejected (rendered as a 400).
#[derive(Debug, Clone)]
pub(crate) struct Invalid {
    pub message: String,
    pub param: Option<String>,
}

impl Invalid {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            param: None,
        }
    }

    pub(crate) fn param(message: impl Into<String>, param: &str) -> Self {
        Self {
            message: message.into(),
            param: Some(param.to_string()),
        }
    }
}

/// What an error body should say; unset fields take the provider's defaults
/// for the status.
#[derive(Debug, Clone, Default)]
pub(crate) struct ErrorSpec {
    pub status: u16,
    pub error_type: Option<String>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub param: Option<String>,
    pub quota_id: Option<String>,
    pub retry_delay_secs: Option<u64>,
    pub model: String,
    pub request_id: String,
}

/// A named SSE event (Anthropic style).
pub(crate) fn sse_event(name: &str, data: &Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// A data-only SSE event (OpenAI style).
pub(crate) fn sse_data(data: &Value) -> String {
    format!("data: {data}\n\n")
}

/// Text of a string or of the `text` fields in an array of parts.
pub(crate) fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// A non-negative integer field, if present.
pub(crate) fn u64_field(v: &Value, key: &str) -> Result<Option<u64>, Invalid> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(n) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| Invalid::param(format!("{key} must be a non-negative integer"), key)),
    }
}

/// `stop`-style field: a string or an array of strings.
pub(crate) fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    }
}
