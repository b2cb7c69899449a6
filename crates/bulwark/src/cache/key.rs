//! The cache key: a blake3 hash over every field of a request that can
//! change the answer, scoped to the tenant and the route.
//!
//! The request is destructured field by field, so that a field added to
//! `ChatRequest` later does not compile until someone decides whether it
//! belongs in the key. Each value is written with its length and a field
//! tag, so that no two different requests can produce the same byte stream.

use crate::api::{
    ChatRequest, ContentBlock, ImageSource, Message, OutputFormat, Role, SourceBody, Tool,
    ToolChoice,
};
use crate::unary::EmbeddingsRequest;

pub type CacheKey = [u8; 32];

/// Fields of the client's own body that the neutral fields already cover, or
/// that do not change the answer.
const COVERED: &[&str] = &["model", "messages", "stream", "stream_options", "system"];

pub fn cache_key(tenant: &str, route: &str, request: &ChatRequest) -> CacheKey {
    let ChatRequest {
        // The route is keyed instead: a request names it, or a target.
        model: _,
        messages,
        max_tokens,
        temperature,
        top_p,
        top_k,
        stop,
        tools,
        tool_choice,
        // A streamed and a complete answer are the same answer.
        stream: _,
        include_usage: _,
        reasoning,
        // Who asks is keyed as the tenant; it does not change the answer.
        user: _,
        parallel_tool_calls,
        output_format,
        source,
        // Their values are in `source`.
        unmapped: _,
    } = request;
    let mut key = Key(blake3::Hasher::new());
    key.text(b"tenant", tenant);
    key.text(b"route", route);
    for message in messages {
        key.message(message);
    }
    key.number(b"max_tokens", max_tokens.map(u64::from));
    key.float(b"temperature", *temperature);
    key.float(b"top_p", *top_p);
    key.number(b"top_k", top_k.map(u64::from));
    for s in stop {
        key.text(b"stop", s);
    }
    for tool in tools {
        key.tool(tool);
    }
    match tool_choice {
        None => key.text(b"tool_choice", ""),
        Some(ToolChoice::Auto) => key.text(b"tool_choice", "auto"),
        Some(ToolChoice::None) => key.text(b"tool_choice", "none"),
        Some(ToolChoice::Required) => key.text(b"tool_choice", "required"),
        Some(ToolChoice::Tool(name)) => key.text(b"tool_choice.tool", name),
    }
    key.text(b"reasoning", &format!("{reasoning:?}"));
    key.text(b"parallel_tool_calls", &format!("{parallel_tool_calls:?}"));
    match output_format {
        None => key.text(b"output_format", ""),
        Some(OutputFormat::JsonObject) => key.text(b"output_format", "json_object"),
        Some(OutputFormat::JsonSchema {
            name,
            schema,
            strict,
        }) => {
            key.text(b"output_format.name", name.as_deref().unwrap_or_default());
            key.text(b"output_format.schema", &schema.to_string());
            key.text(b"output_format.strict", &format!("{strict:?}"));
        }
    }
    // Everything else the client sent (a seed, a response format...): a JSON
    // object's keys are sorted, so field order in the body does not matter.
    if let Some(SourceBody {
        format,
        body,
        query,
        headers,
    }) = source
    {
        key.text(b"format", format.as_str());
        // It parsed at the front door, so it parses again; were it not to,
        // its bytes would stand in, which only makes the key stricter.
        let body = body.object().unwrap_or_default();
        for (name, value) in body.iter() {
            if !COVERED.contains(&name.as_str()) {
                key.text(b"field", name);
                key.text(b"value", &value.to_string());
            }
        }
        // A same-format target is sent both: a beta header or query turns
        // features on, and the version header chooses the API's behaviour.
        key.number(b"query", query.as_ref().map(|_| 1));
        key.text(b"query.text", query.as_deref().unwrap_or_default());
        for (name, value) in headers {
            key.text(b"header", name.as_str());
            key.bytes(b"header.value", value.as_bytes());
        }
    }
    *key.0.finalize().as_bytes()
}

/// The key of an embeddings request: its whole body but the model (the
/// route is keyed instead) and `user` (who asks is keyed as the tenant),
/// field by field in name order, so that the order the client wrote them in
/// does not matter. The operation is keyed too: a chat request's key can
/// never collide with it. So are the route's `targets` (`provider/model`):
/// vectors of one model are no answer once the route names another, and
/// a changed config must not serve them, fresh or stale.
pub fn embeddings_key(
    tenant: &str,
    route: &str,
    targets: &[&str],
    request: &EmbeddingsRequest,
) -> CacheKey {
    let mut key = Key(blake3::Hasher::new());
    key.text(b"operation", "embeddings");
    key.text(b"tenant", tenant);
    key.text(b"route", route);
    for target in targets {
        key.text(b"target", target);
    }
    let mut fields: Vec<(&String, &serde_json::Value)> = request
        .body
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "model" | "user"))
        .collect();
    fields.sort_by(|a, b| a.0.cmp(b.0));
    for (name, value) in fields {
        key.text(b"field", name);
        key.text(b"value", &value.to_string());
    }
    *key.0.finalize().as_bytes()
}

struct Key(blake3::Hasher);

impl Key {
    fn text(&mut self, tag: &[u8], value: &str) {
        self.bytes(tag, value.as_bytes());
    }

    fn bytes(&mut self, tag: &[u8], value: &[u8]) {
        self.0.update(tag);
        self.0.update(&(value.len() as u64).to_le_bytes());
        self.0.update(value);
    }

    fn number(&mut self, tag: &[u8], value: Option<u64>) {
        self.0.update(tag);
        match value {
            Some(v) => self.0.update(&[1]).update(&v.to_le_bytes()),
            None => self.0.update(&[0]),
        };
    }

    fn float(&mut self, tag: &[u8], value: Option<f64>) {
        self.number(tag, value.map(f64::to_bits));
    }

    fn message(&mut self, message: &Message) {
        let role = match message.role {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        self.text(b"message", role);
        for block in &message.content {
            self.block(block);
        }
    }

    fn block(&mut self, block: &ContentBlock) {
        match block {
            ContentBlock::Text(text) => self.text(b"text", text),
            ContentBlock::Image(ImageSource::Base64 { media_type, data }) => {
                self.text(b"image.media_type", media_type);
                self.text(b"image.data", data);
            }
            ContentBlock::Image(ImageSource::Url(url)) => self.text(b"image.url", url),
            ContentBlock::ToolUse(call) => {
                self.text(b"tool_use.id", &call.id);
                self.text(b"tool_use.name", &call.name);
                self.text(b"tool_use.input", &call.input.to_string());
            }
            ContentBlock::ToolResult(result) => {
                self.text(b"tool_result.id", &result.tool_use_id);
                self.number(b"tool_result.is_error", Some(u64::from(result.is_error)));
                for part in &result.content {
                    self.block(part);
                }
                self.text(b"tool_result.end", "");
            }
        }
    }

    fn tool(&mut self, tool: &Tool) {
        self.text(b"tool.name", &tool.name);
        self.text(
            b"tool.description",
            tool.description.as_deref().unwrap_or_default(),
        );
        self.text(b"tool.parameters", &tool.parameters.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::openai;

    fn key_of(body: &str) -> CacheKey {
        match openai::decode_request(body.as_bytes()) {
            Ok(request) => cache_key("tenant", "route", &request),
            Err(e) => panic!("{e}"),
        }
    }

    fn embeddings_key_of(body: serde_json::Value) -> CacheKey {
        match EmbeddingsRequest::decode(body.to_string().as_bytes()) {
            Ok(request) => embeddings_key("tenant", "route", &["o/e-1"], &request),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn an_embeddings_key_follows_the_inputs_and_encoding_not_the_model_or_user() {
        let base = embeddings_key_of(serde_json::json!({"model": "a", "input": ["x", "y"]}));
        let same =
            embeddings_key_of(serde_json::json!({"user": "u", "input": ["x", "y"], "model": "b"}));
        assert_eq!(base, same);
        for other in [
            serde_json::json!({"model": "a", "input": ["y", "x"]}),
            serde_json::json!({"model": "a", "input": ["x", "y"], "encoding_format": "base64"}),
            serde_json::json!({"model": "a", "input": ["x", "y"], "dimensions": 8}),
        ] {
            assert_ne!(base, embeddings_key_of(other.clone()), "{other}");
        }
    }

    #[test]
    fn an_embeddings_key_follows_the_route_s_target_models() {
        let request = EmbeddingsRequest::decode(br#"{"model": "r", "input": "x"}"#);
        let Ok(request) = request else {
            panic!("refused");
        };
        let key = |targets: &[&str]| embeddings_key("t", "r", targets, &request);
        assert_eq!(key(&["o/e-1"]), key(&["o/e-1"]));
        assert_ne!(key(&["o/e-1"]), key(&["o/e-2"]));
        assert_ne!(key(&["o/e-1"]), key(&["o/e-1", "g/e-1"]));
        // Tagged and length-prefixed: a split moves the key.
        assert_ne!(key(&["o/e-1", "g"]), key(&["o/e-1g"]));
    }

    #[test]
    fn field_order_and_streaming_do_not_change_the_key() {
        let a = key_of(
            r#"{"model":"m","temperature":0,"seed":7,"messages":[{"role":"user","content":"hi"}]}"#,
        );
        let b = key_of(
            r#"{"seed":7,"messages":[{"content":"hi","role":"user"}],"temperature":0,"model":"m","stream":true}"#,
        );
        assert_eq!(a, b);
    }

    #[test]
    fn anything_that_changes_the_answer_changes_the_key() {
        let base =
            key_of(r#"{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}]}"#);
        for other in [
            r#"{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi!"}]}"#,
            r#"{"model":"m","temperature":0.1,"messages":[{"role":"user","content":"hi"}]}"#,
            r#"{"model":"m","temperature":0,"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#,
            r#"{"model":"m","temperature":0,"seed":1,"messages":[{"role":"user","content":"hi"}]}"#,
            r#"{"model":"m","temperature":0,"messages":[{"role":"system","content":"hi"}]}"#,
            r#"{"model":"m","temperature":0,"stop":["x"],"messages":[{"role":"user","content":"hi"}]}"#,
            r#"{"model":"m","temperature":0,"response_format":{"type":"json_object"},"messages":[{"role":"user","content":"hi"}]}"#,
        ] {
            assert_ne!(base, key_of(other), "{other}");
        }
        let request =
            openai::decode_request(br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#)
                .ok();
        // What a same-format target is sent besides the body turns features
        // on (a beta) or chooses the API's behaviour (a version).
        let with = |query: Option<&str>, headers: &[(&'static str, &'static str)]| {
            request.clone().map(|mut r| {
                if let Some(source) = r.source.as_mut() {
                    source.query = query.map(str::to_string);
                    source.headers = headers
                        .iter()
                        .map(|(name, value)| {
                            (
                                http::HeaderName::from_static(name),
                                http::HeaderValue::from_static(value),
                            )
                        })
                        .collect();
                }
                cache_key("a", "route", &r)
            })
        };
        let plain = with(None, &[]);
        for other in [
            with(Some("beta=true"), &[]),
            with(Some(""), &[]),
            with(None, &[("openai-beta", "assistants=v2")]),
            with(None, &[("anthropic-version", "2023-06-01")]),
            with(None, &[("anthropic-beta", "2023-06-01")]),
        ] {
            assert!(plain.is_some() && other.is_some() && plain != other);
        }
        let keys = request.map(|r| {
            (
                cache_key("a", "route", &r),
                cache_key("b", "route", &r),
                cache_key("a", "other", &r),
            )
        });
        assert!(
            keys.is_some_and(|(a, b, c)| a != b && a != c),
            "tenant and route must scope the key"
        );
    }
}
