//! Upstreams that answer with a complete JSON body where Bulwark expects a
//! stream: an OpenAI-compatible server that ignores `"stream": true` (the
//! simulator's `*-json-stream` models), and providers configured with
//! `stream: false`. Streaming and complete clients of both formats get
//! well-formed answers, with usage, finish reason and the cache as usual.

use bulwark::sse::{SseDecoder, SseEvent};
use bulwark_sim::{Latency, SimConfig, SimServer};
use serde_json::{Value, json};

mod common;
mod sim_gateway;

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Setup {
    base: String,
    http: reqwest::Client,
    sim: SimServer,
    _gateway: common::Running,
}

async fn setup(sim_config: SimConfig) -> Result<Setup, Box<dyn std::error::Error>> {
    let (sim, gateway) = sim_gateway::start(sim_config, |url| {
        format!(
            "listen: 127.0.0.1:0
providers:
  compat: {{ kind: openai-compatible, base_url: \"{url}/v1\" }}
  complete: {{ kind: openai-compatible, base_url: \"{url}/v1\", stream: false }}
  claude: {{ kind: anthropic, base_url: \"{url}\", api_key: k, stream: false }}
  tiny: {{ kind: openai-compatible, base_url: \"{url}/v1\", max_response_bytes: 200 }}
routes:
  json: {{ targets: [compat/llama-json-stream], max_retries: 0 }}
  cached: {{ targets: [compat/llama-json-stream], cache: {{ ttl: 1h }} }}
  asked: {{ targets: [complete/llama], max_retries: 0 }}
  slow: {{ targets: [complete/llama], first_token_timeout: 100ms, attempt_timeout: 60s, max_retries: 0 }}
  claude: {{ targets: [claude/claude-sonnet-4-5], max_retries: 0 }}
  tiny: {{ targets: [tiny/llama-json-stream] }}
"
        )
    })
    .await?;
    Ok(Setup {
        base: gateway.base.clone(),
        http: reqwest::Client::new(),
        sim,
        _gateway: gateway,
    })
}

struct Reply {
    status: u16,
    attempts: Option<String>,
    cache: Option<String>,
    text: String,
}

impl Setup {
    async fn post(&self, path: &str, body: &Value) -> Result<Reply, Box<dyn std::error::Error>> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header("anthropic-version", "2023-06-01")
            .body(body.to_string())
            .send()
            .await?;
        let header = |name: &str| sim_gateway::header(&response, name);
        let (status, attempts, cache) = (
            response.status().as_u16(),
            header("x-bulwark-attempts"),
            header("x-bulwark-cache"),
        );
        Ok(Reply {
            status,
            attempts,
            cache,
            text: response.text().await?,
        })
    }
}

fn openai(model: &str, stream: bool, text: &str) -> Value {
    json!({"model": model, "stream": stream, "temperature": 0,
        "messages": [{"role": "user", "content": text}]})
}

fn anthropic(model: &str, stream: bool, text: &str) -> Value {
    json!({"model": model, "stream": stream, "max_tokens": 100,
        "messages": [{"role": "user", "content": text}]})
}

fn events(text: &str) -> Vec<SseEvent> {
    let mut raw = Vec::new();
    SseDecoder::new().feed(text.as_bytes(), &mut raw);
    raw
}

fn data(event: &SseEvent) -> Value {
    serde_json::from_str(&event.data).unwrap_or(Value::Null)
}

/// An OpenAI stream's text, finish reason and usage; fails on a stream that
/// does not end with `[DONE]`.
fn openai_stream(text: &str) -> (String, Option<String>, Value) {
    let raw = events(text);
    assert_eq!(
        raw.last().map(|e| e.data.as_str()),
        Some("[DONE]"),
        "{text}"
    );
    let chunks: Vec<Value> = raw[..raw.len() - 1].iter().map(data).collect();
    let content = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    let finish = chunks
        .iter()
        .find_map(|c| c["choices"][0]["finish_reason"].as_str())
        .map(String::from);
    let usage = chunks
        .iter()
        .rev()
        .find(|c| c["usage"].is_object())
        .map_or(Value::Null, |c| c["usage"].clone());
    (content, finish, usage)
}

#[tokio::test]
async fn json_answer_to_a_stream_request_serves_a_streaming_client() -> TestResult {
    let s = setup(SimConfig::default()).await?;
    let mut body = openai("json", true, "hello there");
    body["stream_options"] = json!({"include_usage": true});
    let reply = s.post("/v1/chat/completions", &body).await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.attempts.as_deref(), Some("1"));
    let (text, finish, usage) = openai_stream(&reply.text);
    assert_eq!(text, "Simulated answer from llama-json-stream: hello there");
    assert_eq!(finish.as_deref(), Some("stop"));
    assert_eq!(usage["prompt_tokens"], 2);
    assert_eq!(usage["completion_tokens"], 6);
    // The upstream was asked for a stream, and asked once.
    let sent = s.sim.sim.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body["stream"], true);

    // An Anthropic streaming client, translated.
    let reply = s
        .post("/v1/messages", &anthropic("json", true, "hello there"))
        .await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let raw = events(&reply.text);
    let names: Vec<&str> = raw.iter().filter_map(|e| e.event.as_deref()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    let text: String = raw
        .iter()
        .map(data)
        .filter_map(|d| d["delta"]["text"].as_str().map(String::from))
        .collect();
    assert_eq!(text, "Simulated answer from llama-json-stream: hello there");
    let delta = raw
        .iter()
        .find(|e| e.event.as_deref() == Some("message_delta"))
        .map(data)
        .unwrap_or(Value::Null);
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 6);
    Ok(())
}

#[tokio::test]
async fn json_answer_to_a_stream_request_serves_a_complete_client() -> TestResult {
    let s = setup(SimConfig::default()).await?;
    let reply = s
        .post(
            "/v1/chat/completions",
            &openai("json", false, "hello there"),
        )
        .await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.attempts.as_deref(), Some("1"));
    let v: Value = serde_json::from_str(&reply.text)?;
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Simulated answer from llama-json-stream: hello there"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["prompt_tokens"], 2);
    assert_eq!(v["usage"]["completion_tokens"], 6);

    // A tool call survives too.
    let mut body = openai("json", false, "sim:call lookup {\"q\": \"x\"}");
    body["tools"] = json!([{"type": "function", "function": {"name": "lookup",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]);
    let reply = s.post("/v1/chat/completions", &body).await?;
    let v: Value = serde_json::from_str(&reply.text)?;
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls", "{v}");
    let call = &v["choices"][0]["message"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "lookup");
    assert_eq!(
        serde_json::from_str::<Value>(call["arguments"].as_str().unwrap_or("null"))?,
        json!({"q": "x"})
    );
    Ok(())
}

#[tokio::test]
async fn json_answers_are_cached_like_streams() -> TestResult {
    let s = setup(SimConfig::default()).await?;
    let first = s
        .post("/v1/chat/completions", &openai("cached", false, "cache me"))
        .await?;
    assert_eq!(first.cache.as_deref(), Some("miss"), "{}", first.text);
    let second = s
        .post("/v1/chat/completions", &openai("cached", true, "cache me"))
        .await?;
    assert_eq!(second.cache.as_deref(), Some("hit"));
    let (text, finish, _) = openai_stream(&second.text);
    assert_eq!(text, "Simulated answer from llama-json-stream: cache me");
    assert_eq!(finish.as_deref(), Some("stop"));
    assert_eq!(s.sim.sim.request_count(), 1);
    Ok(())
}

#[tokio::test]
async fn stream_false_asks_the_upstream_for_a_complete_answer() -> TestResult {
    let s = setup(SimConfig::default()).await?;
    let mut body = openai("asked", true, "hello there");
    body["stream_options"] = json!({"include_usage": true});
    let reply = s.post("/v1/chat/completions", &body).await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let (text, finish, usage) = openai_stream(&reply.text);
    assert_eq!(text, "Simulated answer from llama: hello there");
    assert_eq!(finish.as_deref(), Some("stop"));
    assert_eq!(usage["completion_tokens"], 6);
    let sent = s.sim.sim.requests();
    assert_eq!(sent[0].body["stream"], false);
    assert!(
        sent[0].body.get("stream_options").is_none(),
        "{}",
        sent[0].body
    );
    assert!(!sent[0].stream);

    let reply = s
        .post(
            "/v1/chat/completions",
            &openai("asked", false, "hello there"),
        )
        .await?;
    let v: Value = serde_json::from_str(&reply.text)?;
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Simulated answer from llama: hello there"
    );

    // Anthropic, relayed to an Anthropic client: the body it forwards is
    // switched to a complete answer too.
    let reply = s
        .post("/v1/messages", &anthropic("claude", true, "hello there"))
        .await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let raw = events(&reply.text);
    let text: String = raw
        .iter()
        .map(data)
        .filter_map(|d| d["delta"]["text"].as_str().map(String::from))
        .collect();
    assert_eq!(text, "Simulated answer from claude-sonnet-4-5: hello there");
    assert_eq!(
        raw.last().and_then(|e| e.event.as_deref()),
        Some("message_stop")
    );
    let sent = s.sim.sim.requests();
    assert_eq!(
        sent.last().map(|r| r.body["stream"].clone()),
        Some(json!(false))
    );
    let reply = s
        .post("/v1/messages", &anthropic("claude", false, "hello there"))
        .await?;
    let v: Value = serde_json::from_str(&reply.text)?;
    assert_eq!(
        v["content"][0]["text"],
        "Simulated answer from claude-sonnet-4-5: hello there"
    );
    assert_eq!(v["stop_reason"], "end_turn");
    Ok(())
}

#[tokio::test]
async fn a_complete_answer_is_waited_for_within_the_attempt_timeout_not_the_first_token_timeout()
-> TestResult {
    // The simulator sends a complete answer once it would have streamed its
    // last token: after at least 400 ms here, past the route's 100 ms
    // first-token timeout, well within its attempt timeout.
    let s = setup(SimConfig {
        latency: Latency {
            headers_ms: 0,
            first_token_ms: 400,
            token_interval_ms: 0,
        },
        ..SimConfig::default()
    })
    .await?;
    let reply = s
        .post("/v1/chat/completions", &openai("slow", true, "hello there"))
        .await?;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let (text, _, _) = openai_stream(&reply.text);
    assert_eq!(text, "Simulated answer from llama: hello there");
    Ok(())
}

#[tokio::test]
async fn a_json_answer_is_bounded_by_max_response_bytes() -> TestResult {
    let s = setup(SimConfig::default()).await?;
    let reply = s
        .post(
            "/v1/chat/completions",
            &openai("tiny", false, "hello there"),
        )
        .await?;
    assert_ne!(reply.status, 200, "{}", reply.text);
    assert!(reply.text.contains("max_response_bytes"), "{}", reply.text);
    // Too large is not retried: asking again would read as much again.
    assert_eq!(s.sim.sim.request_count(), 1);
    Ok(())
}
