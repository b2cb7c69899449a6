//! Shared helpers for the integration tests.
#![allow(
    dead_code,
    reason = "each test binary uses its own subset of these helpers"
)]
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failed setup fails the test"
)]

use bulwark_sim::{SimConfig, SimServer};
use serde_json::Value;

pub async fn start() -> SimServer {
    start_with(SimConfig::default()).await
}

pub async fn start_with(config: SimConfig) -> SimServer {
    SimServer::start("127.0.0.1:0", config).await.unwrap()
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub async fn post(url: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    Reply {
        status,
        headers,
        text,
    }
}

pub async fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = reqwest::Client::new().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    Reply {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        text: resp.text().await.unwrap(),
    }
}

/// One SSE event: optional `event:` name and its `data:` payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: Option<String>,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {}", self.data))
    }
}

/// Parse an SSE body (LF or CRLF framing).
pub fn sse(text: &str) -> Vec<Event> {
    let normalised = text.replace("\r\n", "\n");
    normalised
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut name = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push(d);
                }
            }
            Event {
                name,
                data: data.join("\n"),
            }
        })
        .collect()
}

pub const ANTHROPIC: [(&str, &str); 1] = [("anthropic-version", "2023-06-01")];

/// `base` with the fields of `extra` set on it.
pub fn merged(mut base: Value, extra: Value) -> Value {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    base
}
