//! `POST /v1/messages/count_tokens` in Anthropic's shape. An Anthropic
//! target counts; for any other, or when none answers, Bulwark estimates
//! from the same request its Messages front door reads.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::wire::ClientDialect;

#[derive(Debug, Clone, PartialEq)]
pub struct CountTokensRequest {
    /// The route or `provider/model` the client named.
    pub model: String,
    /// The client's body, passed to an Anthropic target with its model.
    pub body: Arc<Map<String, Value>>,
    /// The client's headers an Anthropic target is sent
    /// (`ClientDialect::forwarded_headers`, e.g. `anthropic-beta`).
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Bulwark's own estimate of the input tokens, made as the body is read.
    pub estimate: u64,
}

impl CountTokensRequest {
    /// Reads a client's body as the Messages front door reads a request,
    /// less `max_tokens`, which a count does not take.
    pub fn decode(body: &[u8]) -> Result<CountTokensRequest, ApiError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::invalid(format!("invalid request: {e}")))?;
        let Value::Object(map) = value else {
            return Err(ApiError::invalid("the request body must be a JSON object"));
        };
        let mut as_message = map.clone();
        as_message
            .entry("max_tokens")
            .or_insert_with(|| Value::from(1));
        let bytes = serde_json::to_vec(&Value::Object(as_message))
            .map_err(|e| ApiError::invalid(format!("invalid request: {e}")))?;
        let request = crate::wire::anthropic::FrontDoor.decode_request(&bytes)?;
        Ok(CountTokensRequest {
            model: request.model.clone(),
            estimate: crate::limit::estimate::input_tokens(&request),
            body: Arc::new(map),
            headers: Vec::new(),
        })
    }

    /// The answer Bulwark gives when it counts itself.
    pub fn estimated_answer(&self) -> Value {
        json!({"input_tokens": self.estimate})
    }
}

/// An Anthropic count's check: it carries `input_tokens`.
pub fn check_answer(answer: Value) -> Result<Value, String> {
    match answer.get("input_tokens") {
        Some(n) if n.is_u64() => Ok(answer),
        _ => Err("the token count answer has no `input_tokens`".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_is_read_without_max_tokens_and_estimated() {
        let body = json!({
            "model": "claude",
            "system": "be brief",
            "messages": [{"role": "user", "content": "a sentence of some forty characters long"}],
        });
        let request = CountTokensRequest::decode(body.to_string().as_bytes());
        let Ok(request) = request else {
            panic!("refused");
        };
        assert_eq!(request.model, "claude");
        assert!(request.estimate >= 10, "{}", request.estimate);
        assert!(!request.body.contains_key("max_tokens"));
        assert_eq!(
            request.estimated_answer(),
            json!({"input_tokens": request.estimate})
        );
    }

    #[test]
    fn a_body_without_messages_is_refused() {
        let error = CountTokensRequest::decode(br#"{"model": "claude"}"#).err();
        assert_eq!(error.map(|e| e.status), Some(400));
    }
}
