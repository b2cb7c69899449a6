//! Bedrock's Converse API (`/model/{id}/converse`, `/converse-stream`), the
//! same for every model: served by reading the Converse request as the
//! Anthropic Messages request it stands for, answering through the
//! Anthropic pipeline, and writing the answer back in Converse's shape.
//! Only the shapes are Bedrock's; the request log keeps the Converse body
//! as it was sent.

use serde_json::{Map, Value, json};

use crate::wire::Invalid;

/// Converse leaves `maxTokens` optional; the Messages API needs one.
const DEFAULT_MAX_TOKENS: u64 = 4096;

fn invalid(message: impl Into<String>) -> Invalid {
    Invalid::new(message)
}

/// The Messages request a Converse request stands for.
pub(crate) fn to_messages(body: &Value) -> Result<Value, Invalid> {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("1 validation error detected: Value null at 'messages' failed to satisfy constraint: Member must not be null"))?;
    let mut out = Map::new();
    let config = body.get("inferenceConfig").unwrap_or(&Value::Null);
    let max_tokens = config
        .get("maxTokens")
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    out.insert("max_tokens".into(), json!(max_tokens));
    for (from, to) in [
        ("temperature", "temperature"),
        ("topP", "top_p"),
        ("stopSequences", "stop_sequences"),
    ] {
        if let Some(v) = config.get(from) {
            out.insert(to.into(), v.clone());
        }
    }
    if let Some(system) = body.get("system").and_then(Value::as_array) {
        let blocks: Vec<Value> = system
            .iter()
            .filter_map(|b| b.get("text"))
            .map(|text| json!({"type": "text", "text": text}))
            .collect();
        out.insert("system".into(), Value::Array(blocks));
    }
    let messages = messages
        .iter()
        .map(|m| {
            let role = m.get("role").cloned().unwrap_or(Value::Null);
            let content = m
                .get("content")
                .and_then(Value::as_array)
                .ok_or_else(|| invalid("messages: each message needs a content list"))?;
            let blocks = content.iter().map(block).collect::<Result<Vec<_>, _>>()?;
            Ok(json!({"role": role, "content": blocks}))
        })
        .collect::<Result<Vec<_>, Invalid>>()?;
    out.insert("messages".into(), Value::Array(messages));
    if let Some(tools) = body.pointer("/toolConfig/tools").and_then(Value::as_array) {
        let tools: Vec<Value> = tools
            .iter()
            .filter_map(|t| t.get("toolSpec"))
            .map(|spec| {
                json!({
                    "name": spec.get("name").cloned().unwrap_or(Value::Null),
                    "description": spec.get("description").cloned().unwrap_or(Value::Null),
                    "input_schema": spec.pointer("/inputSchema/json").cloned().unwrap_or(json!({"type": "object"})),
                })
            })
            .collect();
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = body.pointer("/toolConfig/toolChoice") {
        let choice = if choice.get("any").is_some() {
            json!({"type": "any"})
        } else if let Some(name) = choice.pointer("/tool/name") {
            json!({"type": "tool", "name": name})
        } else {
            json!({"type": "auto"})
        };
        out.insert("tool_choice".into(), choice);
    }
    // Model-specific fields travel as Converse leaves them (Claude's `thinking`).
    if let Some(extra) = body
        .get("additionalModelRequestFields")
        .and_then(Value::as_object)
    {
        for (k, v) in extra {
            out.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    Ok(Value::Object(out))
}

/// One Converse content block as a Messages block.
fn block(b: &Value) -> Result<Value, Invalid> {
    if let Some(text) = b.get("text") {
        return Ok(json!({"type": "text", "text": text}));
    }
    if let Some(image) = b.get("image") {
        let format = image.get("format").and_then(Value::as_str).unwrap_or("png");
        let data = image
            .pointer("/source/bytes")
            .cloned()
            .unwrap_or(Value::Null);
        return Ok(json!({"type": "image", "source": {
            "type": "base64", "media_type": format!("image/{format}"), "data": data}}));
    }
    if let Some(tool_use) = b.get("toolUse") {
        return Ok(json!({"type": "tool_use",
            "id": tool_use.get("toolUseId").cloned().unwrap_or(Value::Null),
            "name": tool_use.get("name").cloned().unwrap_or(Value::Null),
            "input": tool_use.get("input").cloned().unwrap_or(json!({}))}));
    }
    if let Some(result) = b.get("toolResult") {
        let content: Vec<Value> = result
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| match (c.get("text"), c.get("json")) {
                (Some(text), _) => json!({"type": "text", "text": text}),
                (None, Some(doc)) => json!({"type": "text", "text": doc.to_string()}),
                _ => json!({"type": "text", "text": ""}),
            })
            .collect();
        return Ok(json!({"type": "tool_result",
            "tool_use_id": result.get("toolUseId").cloned().unwrap_or(Value::Null),
            "content": content}));
    }
    if let Some(reasoning) = b.pointer("/reasoningContent/reasoningText") {
        return Ok(json!({"type": "thinking",
            "thinking": reasoning.get("text").cloned().unwrap_or(Value::Null),
            "signature": reasoning.get("signature").cloned().unwrap_or(Value::Null)}));
    }
    Err(invalid(format!(
        "messages: a content block of an unknown kind: {}",
        b.as_object()
            .and_then(|o| o.keys().next().cloned())
            .unwrap_or_default()
    )))
}

/// A Messages answer as Converse's.
pub(crate) fn response(message: &Value) -> Value {
    let content: Vec<Value> = message
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|b| match b.get("type").and_then(Value::as_str) {
            Some("text") => Some(json!({"text": b["text"]})),
            Some("thinking") => Some(json!({"reasoningContent": {"reasoningText": {
                "text": b["thinking"], "signature": b["signature"]}}})),
            Some("tool_use") => Some(json!({"toolUse": {
                "toolUseId": b["id"], "name": b["name"], "input": b["input"]}})),
            _ => None,
        })
        .collect();
    let input = message
        .pointer("/usage/input_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let output = message
        .pointer("/usage/output_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": message.get("stop_reason").cloned().unwrap_or(json!("end_turn")),
        "usage": {"inputTokens": input, "outputTokens": output, "totalTokens": input + output},
        "metrics": {"latencyMs": 1}
    })
}

/// Turns Anthropic's stream events into Converse's, remembering the token
/// counts the last event reports.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    input_tokens: u64,
    output_tokens: u64,
}

impl StreamState {
    /// The Converse events (name and payload) for one Anthropic event.
    pub(crate) fn events(&mut self, event: &Value) -> Vec<(&'static str, Value)> {
        let index = event.get("index").cloned().unwrap_or(json!(0));
        match event.get("type").and_then(Value::as_str).unwrap_or("") {
            "message_start" => {
                self.input_tokens = event
                    .pointer("/message/usage/input_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                vec![("messageStart", json!({"role": "assistant"}))]
            }
            "content_block_start" => {
                match event.pointer("/content_block/type").and_then(Value::as_str) {
                    Some("tool_use") => {
                        let block = &event["content_block"];
                        vec![(
                            "contentBlockStart",
                            json!({"start": {"toolUse": {"toolUseId": block["id"], "name": block["name"]}},
                            "contentBlockIndex": index}),
                        )]
                    }
                    _ => Vec::new(),
                }
            }
            "content_block_delta" => {
                let delta = &event["delta"];
                let converse = match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => json!({"text": delta["text"]}),
                    Some("thinking_delta") => {
                        json!({"reasoningContent": {"text": delta["thinking"]}})
                    }
                    Some("signature_delta") => {
                        json!({"reasoningContent": {"signature": delta["signature"]}})
                    }
                    Some("input_json_delta") => {
                        json!({"toolUse": {"input": delta["partial_json"]}})
                    }
                    _ => return Vec::new(),
                };
                vec![(
                    "contentBlockDelta",
                    json!({"delta": converse, "contentBlockIndex": index}),
                )]
            }
            "content_block_stop" => vec![("contentBlockStop", json!({"contentBlockIndex": index}))],
            "message_delta" => {
                self.output_tokens = event
                    .pointer("/usage/output_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                vec![(
                    "messageStop",
                    json!({"stopReason": event.pointer("/delta/stop_reason")}),
                )]
            }
            "message_stop" => {
                let (input, output) = (self.input_tokens, self.output_tokens);
                vec![(
                    "metadata",
                    json!({"usage": {"inputTokens": input, "outputTokens": output,
                        "totalTokens": input + output}, "metrics": {"latencyMs": 1}}),
                )]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_converse_request_reads_as_messages() {
        let converse = json!({
            "messages": [
                {"role": "user", "content": [{"text": "Weather?"}]},
                {"role": "assistant", "content": [
                    {"reasoningContent": {"reasoningText": {"text": "hm", "signature": "s"}}},
                    {"toolUse": {"toolUseId": "t1", "name": "w", "input": {"city": "Oslo"}}}]},
                {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"json": {"c": 3}}]}}]}
            ],
            "system": [{"text": "Be terse."}],
            "inferenceConfig": {"maxTokens": 2048, "stopSequences": ["END"]},
            "toolConfig": {"tools": [{"toolSpec": {"name": "w", "inputSchema": {"json": {"type": "object"}}}}],
                "toolChoice": {"tool": {"name": "w"}}},
            "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 1024}}
        });
        let messages = to_messages(&converse).unwrap();
        assert_eq!(messages["max_tokens"], 2048);
        assert_eq!(messages["stop_sequences"], json!(["END"]));
        assert_eq!(
            messages["system"],
            json!([{"type": "text", "text": "Be terse."}])
        );
        assert_eq!(messages["messages"][1]["content"][0]["type"], "thinking");
        assert_eq!(messages["messages"][1]["content"][1]["id"], "t1");
        assert_eq!(
            messages["messages"][2]["content"][0]["content"][0]["text"],
            r#"{"c":3}"#
        );
        assert_eq!(
            messages["tools"][0]["input_schema"],
            json!({"type": "object"})
        );
        assert_eq!(
            messages["tool_choice"],
            json!({"type": "tool", "name": "w"})
        );
        assert_eq!(messages["thinking"]["budget_tokens"], 1024);
        assert!(to_messages(&json!({})).is_err());
        assert!(
            to_messages(&json!({"messages": [{"role": "user", "content": [{"video": {}}]}]}))
                .is_err()
        );
    }

    #[test]
    fn an_answer_reads_as_converse() {
        let message = json!({"content": [
            {"type": "thinking", "thinking": "t", "signature": "s"},
            {"type": "tool_use", "id": "i", "name": "n", "input": {}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 3, "output_tokens": 4}});
        let converse = response(&message);
        assert_eq!(converse["stopReason"], "tool_use");
        assert_eq!(converse["usage"]["totalTokens"], 7);
        assert_eq!(
            converse["output"]["message"]["content"][1]["toolUse"]["toolUseId"],
            "i"
        );
        let mut state = StreamState::default();
        assert_eq!(
            state.events(
                &json!({"type": "message_start", "message": {"usage": {"input_tokens": 2}}})
            )[0]
            .0,
            "messageStart"
        );
        assert!(state.events(&json!({"type": "ping"})).is_empty());
        state.events(&json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}}));
        let end = state.events(&json!({"type": "message_stop"}));
        assert_eq!(end[0].1["usage"]["totalTokens"], 7);
    }
}
