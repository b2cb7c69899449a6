//! The `amazon-bedrock-invocationMetrics` that Bedrock adds to the
//! `message_stop` chunk of InvokeModelWithResponseStream: token counts read
//! from the stream's own `message_start`/`message_delta` usage, and
//! latencies measured on tokio's clock from when the request arrived.

use serde_json::{Value, json};
use tokio::time::Instant;

/// What a stream has told so far, to be reported at its end.
#[derive(Debug)]
pub(crate) struct InvocationMetrics {
    started: Instant,
    first_byte: Option<Instant>,
    input_tokens: u64,
    output_tokens: u64,
}

impl InvocationMetrics {
    pub(crate) fn new(started: Instant) -> Self {
        Self {
            started,
            first_byte: None,
            input_tokens: 0,
            output_tokens: 0,
        }
    }

    /// Notes an Anthropic stream event sent at `now`; for `message_stop`
    /// returns the event with the metrics added. Anything else (and a
    /// `malformed` fault's broken JSON) goes out untouched: `None`.
    pub(crate) fn observe(&mut self, data: &str, now: Instant) -> Option<String> {
        self.first_byte.get_or_insert(now);
        let Ok(mut event) = serde_json::from_str::<Value>(data) else {
            return None;
        };
        let count = |v: &Value, pointer: &str| v.pointer(pointer).and_then(Value::as_u64);
        match event.get("type").and_then(Value::as_str) {
            Some("message_start") => {
                self.input_tokens = count(&event, "/message/usage/input_tokens").unwrap_or(0);
                self.output_tokens = count(&event, "/message/usage/output_tokens").unwrap_or(0);
                None
            }
            // Anthropic's `output_tokens` in a delta is the running total.
            Some("message_delta") => {
                if let Some(n) = count(&event, "/usage/output_tokens") {
                    self.output_tokens = n;
                }
                if let Some(n) = count(&event, "/usage/input_tokens") {
                    self.input_tokens = n;
                }
                None
            }
            Some("message_stop") => {
                let first_byte = self.first_byte.unwrap_or(now);
                let object = event.as_object_mut()?;
                object.insert(
                    "amazon-bedrock-invocationMetrics".into(),
                    json!({
                        "inputTokenCount": self.input_tokens,
                        "outputTokenCount": self.output_tokens,
                        "invocationLatency": millis(now - self.started),
                        "firstByteLatency": millis(first_byte - self.started),
                    }),
                );
                Some(event.to_string())
            }
            _ => None,
        }
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn message_stop_carries_counts_and_latencies() {
        let t0 = Instant::now();
        let mut metrics = InvocationMetrics::new(t0);
        let start = json!({"type":"message_start","message":{"usage":{"input_tokens":17,"output_tokens":1}}});
        let delta = json!({"type":"message_delta","delta":{},"usage":{"output_tokens":42}});
        assert_eq!(
            metrics.observe(&start.to_string(), t0 + Duration::from_millis(120)),
            None
        );
        assert_eq!(
            metrics.observe(&delta.to_string(), t0 + Duration::from_millis(300)),
            None
        );
        let stop = metrics
            .observe(
                r#"{"type":"message_stop"}"#,
                t0 + Duration::from_millis(450),
            )
            .unwrap();
        let stop: Value = serde_json::from_str(&stop).unwrap();
        assert_eq!(stop["type"], "message_stop");
        assert_eq!(
            stop["amazon-bedrock-invocationMetrics"],
            json!({
                "inputTokenCount": 17,
                "outputTokenCount": 42,
                "invocationLatency": 450,
                "firstByteLatency": 120,
            })
        );
    }

    #[test]
    fn other_events_and_broken_json_pass_untouched() {
        let t0 = Instant::now();
        let mut metrics = InvocationMetrics::new(t0);
        assert_eq!(metrics.observe(r#"{"type":"ping"}"#, t0), None);
        assert_eq!(metrics.observe(r#"{"type":"message_st"#, t0), None);
    }
}
