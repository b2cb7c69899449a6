//! The request's settings a Response object repeats (`instructions`,
//! `tools`, `text`...): SDKs read them from the answer, and OpenAI always
//! sends them, with its defaults where the request set none.

use serde_json::{Map, Value, json};

/// The echoed settings of one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Echo(Map<String, Value>);

/// Each echoed field with OpenAI's value when the request leaves it out.
fn defaults() -> [(&'static str, Value); 16] {
    [
        ("background", json!(false)),
        ("instructions", Value::Null),
        ("max_output_tokens", Value::Null),
        ("max_tool_calls", Value::Null),
        ("metadata", json!({})),
        ("parallel_tool_calls", json!(true)),
        ("previous_response_id", Value::Null),
        ("reasoning", json!({"effort": null, "summary": null})),
        ("service_tier", json!("default")),
        ("store", json!(true)),
        ("temperature", json!(1.0)),
        ("text", json!({"format": {"type": "text"}})),
        ("tool_choice", json!("auto")),
        ("tools", json!([])),
        ("top_p", json!(1.0)),
        ("truncation", json!("disabled")),
    ]
}

/// Echoed as sent, and absent when not sent.
const OPTIONAL: [&str; 4] = [
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "top_logprobs",
];

impl Echo {
    /// The settings of a request body, as the client sent them.
    pub fn from_request(body: &Map<String, Value>) -> Self {
        let mut echo = Map::new();
        for (key, _) in defaults() {
            if let Some(value) = body.get(key).filter(|v| !v.is_null()) {
                echo.insert(key.to_string(), value.clone());
            }
        }
        for key in OPTIONAL {
            if let Some(value) = body.get(key).filter(|v| !v.is_null()) {
                echo.insert(key.to_string(), value.clone());
            }
        }
        // A Responses request's `service_tier: auto` is answered with the
        // tier that served it, which is OpenAI's default one.
        if echo.get("service_tier") == Some(&json!("auto")) {
            echo.remove("service_tier");
        }
        Echo(echo)
    }

    /// Writes the echoed fields into a Response object.
    pub(super) fn write_into(&self, response: &mut Map<String, Value>) {
        for (key, default) in defaults() {
            let value = self.0.get(key).cloned().unwrap_or(default);
            response.insert(key.to_string(), value);
        }
        for key in OPTIONAL {
            if let Some(value) = self.0.get(key) {
                response.insert(key.to_string(), value.clone());
            }
        }
        response.entry("user").or_insert(Value::Null);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_settings_are_echoed_and_missing_ones_get_defaults() {
        let body = json!({"model": "m", "input": "x", "instructions": "Be brief.",
            "tools": [{"type": "function", "name": "f"}], "temperature": null, "user": "u"});
        let Value::Object(body) = body else {
            unreachable!()
        };
        let mut out = Map::new();
        Echo::from_request(&body).write_into(&mut out);
        assert_eq!(out["instructions"], json!("Be brief."));
        assert_eq!(out["tools"], json!([{"type": "function", "name": "f"}]));
        assert_eq!(out["temperature"], json!(1.0));
        assert_eq!(out["user"], json!("u"));
        assert_eq!(out["text"], json!({"format": {"type": "text"}}));
        assert!(!out.contains_key("input") && !out.contains_key("model"));
    }
}
