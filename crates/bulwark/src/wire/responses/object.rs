//! The Response object and its output items, shared by a complete answer
//! and the stream's first and last events, so the two never differ.

use serde_json::{Map, Value, json};

use super::echo::Echo;
use crate::api::{FinishReason, Usage};

/// A fresh id with the prefix OpenAI gives that kind of object. Each answer
/// gets its own, even one replayed from the cache, since clients (and
/// stored conversations) tell responses apart by id.
pub(super) fn new_id(prefix: &str) -> String {
    format!(
        "{prefix}{:016x}{:016x}",
        fastrand::u64(..),
        fastrand::u64(..)
    )
}

/// What a Response object says about the answer besides its output.
#[derive(Debug, Clone)]
pub(super) struct Head {
    pub id: String,
    pub created: u64,
    pub model: String,
}

/// Where the answer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    InProgress,
    Completed,
    /// Cut short; the reason as OpenAI names it.
    Incomplete(&'static str),
    Failed,
}

impl Status {
    /// The status a finished answer has, from why the model stopped.
    pub fn finished(reason: &FinishReason) -> Status {
        match reason {
            FinishReason::Length => Status::Incomplete("max_output_tokens"),
            FinishReason::ContentFilter => Status::Incomplete("content_filter"),
            FinishReason::Stop | FinishReason::StopSequence | FinishReason::ToolUse => {
                Status::Completed
            }
        }
    }

    fn name(self) -> &'static str {
        match self {
            Status::InProgress => "in_progress",
            Status::Completed => "completed",
            Status::Incomplete(_) => "incomplete",
            Status::Failed => "failed",
        }
    }

    /// The status of the answer's items once it ends.
    pub fn item_status(self) -> &'static str {
        match self {
            Status::Incomplete(_) => "incomplete",
            _ => "completed",
        }
    }
}

pub(super) fn usage_json(usage: &Usage) -> Value {
    json!({
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    })
}

/// The Response object. `output_text` is left out: it is the SDKs' own
/// convenience, computed from `output`, and not part of the API's object.
pub(super) fn response(
    head: &Head,
    status: Status,
    output: Vec<Value>,
    usage: Option<&Usage>,
    error: Option<Value>,
    echo: &Echo,
) -> Value {
    let mut object = Map::new();
    object.insert("id".into(), json!(head.id));
    object.insert("object".into(), json!("response"));
    object.insert("created_at".into(), json!(head.created));
    object.insert("status".into(), json!(status.name()));
    object.insert("error".into(), error.unwrap_or(Value::Null));
    object.insert(
        "incomplete_details".into(),
        match status {
            Status::Incomplete(reason) => json!({"reason": reason}),
            _ => Value::Null,
        },
    );
    object.insert("model".into(), json!(head.model));
    object.insert("output".into(), Value::Array(output));
    object.insert("usage".into(), usage.map_or(Value::Null, usage_json));
    echo.write_into(&mut object);
    Value::Object(object)
}

pub(super) fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

pub(super) fn message_item(id: &str, status: &str, parts: Vec<Value>) -> Value {
    json!({"id": id, "type": "message", "status": status, "role": "assistant", "content": parts})
}

pub(super) fn function_call_item(
    id: &str,
    status: &str,
    call_id: &str,
    name: &str,
    arguments: &str,
) -> Value {
    json!({"id": id, "type": "function_call", "status": status, "arguments": arguments,
           "call_id": call_id, "name": name})
}
