//! Answering a client of the Chat Completions front door: complete answers,
//! errors, the relay of an OpenAI-format provider's own stream, and the
//! front door's dialect.

use serde_json::{Map, Value, json};

use super::encode_stream::StreamEncoder;
use crate::api::{ChatRequest, ChatResponse, ContentBlock, Usage, WireFormat};
use crate::error::{ApiError, ErrorKind};
use crate::sse::SseEvent;
use crate::wire::dialect::{Chunk, ClientDialect, EventEncoder, SseSink, StreamHead, StreamWriter};
use crate::wire::json as j;

pub fn encode_response(response: &ChatResponse) -> Value {
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in &response.content {
        match block {
            ContentBlock::Text(t) => text.push_str(t),
            ContentBlock::ToolUse(call) => calls.push(json!({
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": crate::wire::arguments_text(&call.input)},
            })),
            _ => {}
        }
    }
    let mut message = json!({
        "role": "assistant",
        "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) },
        "refusal": null,
    });
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    json!({
        "id": crate::wire::prefixed_id("chatcmpl-", &response.id),
        "object": "chat.completion",
        "created": response.created,
        "model": response.model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": response.finish_reason.name(WireFormat::OpenAi),
        }],
        "usage": usage_json(&response.usage),
        "system_fingerprint": null,
    })
}

pub(super) fn usage_json(usage: &Usage) -> Value {
    json!({
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    })
}

pub fn encode_error(error: &ApiError) -> Value {
    let kind = match error.kind {
        ErrorKind::InvalidRequest | ErrorKind::NotFound | ErrorKind::RequestTooLarge => {
            "invalid_request_error"
        }
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::Permission => "permission_error",
        ErrorKind::Billing => "insufficient_quota",
        ErrorKind::RateLimit => "rate_limit_error",
        ErrorKind::Timeout => "timeout_error",
        ErrorKind::Overloaded => "overloaded_error",
        ErrorKind::Api => "server_error",
    };
    json!({"error": {
        "message": error.message,
        "type": kind,
        "param": error.param,
        "code": error.code,
    }})
}

/// Whether a chunk is the usage-only chunk that `include_usage` adds.
pub fn is_usage_chunk(data: &str) -> bool {
    serde_json::from_str::<Value>(data).is_ok_and(|chunk| {
        chunk
            .get("choices")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
            && chunk.get("usage").is_some_and(Value::is_object)
    })
}

/// Rebuilds the complete `chat.completion` object from a provider's stream
/// chunks, keeping every field the provider sent (all choices, refusals,
/// logprobs, usage details), as the OpenAI SDK's stream accumulator does.
pub fn assemble_response<'a>(chunks: impl IntoIterator<Item = &'a SseEvent>) -> Value {
    let mut response = Map::new();
    response.insert("object".into(), json!("chat.completion"));
    let mut choices: Vec<Value> = Vec::new();
    for event in chunks {
        if event.data == "[DONE]" {
            continue;
        }
        let Ok(Value::Object(chunk)) = serde_json::from_str::<Value>(&event.data) else {
            continue;
        };
        for (key, value) in &chunk {
            match key.as_str() {
                "object" | "choices" | "obfuscation" => {}
                "usage" if value.is_null() => {}
                _ => {
                    response.insert(key.clone(), value.clone());
                }
            }
        }
        for choice in chunk
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(index) = j::stream_index(choice, choices.len()) else {
                continue;
            };
            while choices.len() <= index {
                choices.push(json!({
                    "index": choices.len(),
                    "message": {"role": "assistant", "content": null, "refusal": null},
                    "logprobs": null,
                    "finish_reason": null,
                }));
            }
            merge_choice(&mut choices[index], choice);
        }
    }
    response.insert("choices".into(), Value::Array(choices));
    response.entry("usage").or_insert(Value::Null);
    Value::Object(response)
}

fn merge_choice(target: &mut Value, chunk: &Value) {
    if let Some(reason) = chunk.get("finish_reason").filter(|r| !r.is_null()) {
        target["finish_reason"] = reason.clone();
    }
    if let Some(logprobs) = chunk.get("logprobs").and_then(Value::as_object) {
        if !target["logprobs"].is_object() {
            target["logprobs"] = json!({});
        }
        for (key, items) in logprobs {
            if let Some(items) = items.as_array() {
                let slot = &mut target["logprobs"][key];
                if !slot.is_array() {
                    *slot = json!([]);
                }
                if let Some(list) = slot.as_array_mut() {
                    list.extend(items.iter().cloned());
                }
            }
        }
    }
    let Some(delta) = chunk.get("delta").and_then(Value::as_object) else {
        return;
    };
    let message = &mut target["message"];
    for (key, value) in delta {
        match (key.as_str(), value) {
            ("tool_calls", Value::Array(calls)) => {
                if !message["tool_calls"].is_array() {
                    message["tool_calls"] = json!([]);
                }
                for call in calls {
                    merge_tool_call(&mut message["tool_calls"], call);
                }
            }
            _ => accumulate(&mut message[key.as_str()], key, value),
        }
    }
}

/// Adds one delta field to what earlier chunks gave, as the OpenAI SDK's
/// accumulator does, so that fields Bulwark does not know arrive whole:
/// text arrives in pieces (`content`, `refusal`, compatible servers'
/// `reasoning_content`), lists in batches (`annotations`), objects field by
/// field. Discriminators are replaced, not joined: some servers repeat the
/// `role` in every chunk.
fn accumulate(slot: &mut Value, key: &str, delta: &Value) {
    match (&mut *slot, delta) {
        (_, Value::Null) => {}
        (_, _) if matches!(key, "role" | "type" | "index") => *slot = delta.clone(),
        (Value::String(so_far), Value::String(part)) => so_far.push_str(part),
        (Value::Array(so_far), Value::Array(more)) => so_far.extend(more.iter().cloned()),
        (Value::Object(so_far), Value::Object(fields)) => {
            for (name, value) in fields {
                accumulate(
                    so_far.entry(name.clone()).or_insert(Value::Null),
                    name,
                    value,
                );
            }
        }
        _ => *slot = delta.clone(),
    }
}

fn merge_tool_call(calls: &mut Value, delta: &Value) {
    let Some(list) = calls.as_array_mut() else {
        return;
    };
    let Some(index) = j::stream_index(delta, list.len()) else {
        return;
    };
    while list.len() <= index {
        list.push(json!({"id": "", "type": "function", "function": {"name": "", "arguments": ""}}));
    }
    let call = &mut list[index];
    for key in ["id", "type"] {
        if let Some(value) = delta.get(key).filter(|v| v.is_string()) {
            call[key] = value.clone();
        }
    }
    if let Some(function) = delta.get("function") {
        for key in ["name", "arguments"] {
            if let Some(part) = j::get_str(function, key) {
                let joined = format!(
                    "{}{part}",
                    call["function"][key].as_str().unwrap_or_default()
                );
                call["function"][key] = json!(joined);
            }
        }
    }
}

/// What an OpenAI client sends besides its body that an OpenAI-format target
/// must see: the beta features it opts into. `openai-organization` and
/// `openai-project` choose whose account pays, which belongs with the
/// target's key, not the client's; `x-stainless-*` is SDK telemetry.
pub const FORWARDED_HEADERS: &[&str] = &["openai-beta"];

/// The `/v1/chat/completions` front door's dialect.
#[derive(Debug, Clone, Copy)]
pub struct FrontDoor;

impl ClientDialect for FrontDoor {
    fn format(&self) -> WireFormat {
        WireFormat::OpenAi
    }

    fn decode_request(&self, body: &[u8]) -> Result<ChatRequest, ApiError> {
        super::decode_request(body)
    }

    fn request_shape(&self) -> &'static crate::wire::limits::Shape {
        &super::inbound::SHAPE
    }

    fn forwarded_headers(&self) -> &'static [&'static str] {
        FORWARDED_HEADERS
    }

    fn assemble_relayed(&self, events: &mut dyn Iterator<Item = &SseEvent>) -> Value {
        assemble_response(events)
    }

    fn encode_response(&self, response: &ChatResponse) -> Value {
        encode_response(response)
    }

    fn event_encoder(
        &self,
        include_usage: bool,
        resume: Option<&StreamHead>,
    ) -> Box<dyn EventEncoder> {
        Box::new(match resume {
            Some(head) => StreamEncoder::resume(head, include_usage),
            None => StreamEncoder::new(include_usage),
        })
    }

    fn relay_writer(&self, include_usage: bool) -> Box<dyn StreamWriter> {
        Box::new(Relay { include_usage })
    }

    fn encode_error(&self, error: &ApiError) -> Value {
        encode_error(error)
    }

    fn error_event(&self, error: &ApiError, out: &mut dyn SseSink) {
        out.push_event(None, &encode_error(error).to_string());
    }

    /// OpenAI's SDKs have no exception for 402: a used-up balance is raised
    /// as the rate-limit error OpenAI itself sends for it.
    fn status_for(&self, error: &ApiError) -> u16 {
        match error.kind {
            ErrorKind::Billing if error.status == 402 => 429,
            _ => error.status,
        }
    }
}

/// Relays an OpenAI-format provider's chunks as they are.
struct Relay {
    include_usage: bool,
}

impl StreamWriter for Relay {
    fn write(&mut self, chunk: &Chunk, out: &mut dyn SseSink) {
        // Bulwark always asks for usage; pass it on only if the client did.
        if self.include_usage || !is_usage_chunk(&chunk.raw.data) {
            out.push_event(None, &chunk.raw.data);
        }
    }

    fn finish(&mut self, _out: &mut dyn SseSink) {}

    fn error(&mut self, error: &ApiError, out: &mut dyn SseSink) {
        FrontDoor.error_event(error, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(data: &[&str]) -> Vec<SseEvent> {
        data.iter()
            .map(|data| SseEvent {
                event: None,
                data: data.to_string(),
            })
            .collect()
    }

    /// Padding the choices or tool calls up to an index the upstream chose
    /// (`"index": 4000000000`) would allocate without end.
    #[test]
    fn an_index_far_past_the_list_is_not_padded_to() {
        let answer = assemble_response(&events(&[
            r#"{"choices":[{"index":100000,"delta":{"content":"x"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":100000,"id":"c"},{"index":0,"id":"d"}]}}]}"#,
        ]));
        let choices = answer["choices"].as_array().map_or(0, Vec::len);
        assert_eq!(choices, 1, "{answer}");
        let calls = &answer["choices"][0]["message"]["tool_calls"];
        assert_eq!(calls.as_array().map_or(0, Vec::len), 1, "{calls}");
        assert_eq!(calls[0]["id"], "d");
    }
}
