//! The response cache over HTTP: hits and misses, replay as a stream in the
//! client's format, `Cache-Control`, nondeterministic requests, TTLs, and no
//! partial entries from a broken stream.

use bulwark::sse::SseDecoder;
use bulwark::wire::{anthropic, openai};
use bulwark_sim::{Fault, FaultRule, SimConfig, SimServer};
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

async fn setup() -> Result<Setup, Box<dyn std::error::Error>> {
    let (sim, gateway) = sim_gateway::start(SimConfig::default(), |url| format!(
        "listen: 127.0.0.1:0\nproviders:\n  p: {{ kind: openai, base_url: \"{url}/v1\" }}\nroutes:\n  cached: {{ targets: [p/gpt-4o-mini], cache: {{ ttl: 1h }} }}\n  any: {{ targets: [p/gpt-4o-mini], cache: {{ ttl: 1h, nondeterministic: true }} }}\n  brief: {{ targets: [p/gpt-4o-mini], cache: {{ ttl: 300ms }} }}\n  plain: {{ targets: [p/gpt-4o-mini] }}\n"
    ))
    .await?;
    Ok(Setup {
        base: gateway.base.clone(),
        http: reqwest::Client::new(),
        sim,
        _gateway: gateway,
    })
}

impl Setup {
    /// Sends `body` and returns (x-bulwark-cache header, body text).
    async fn send(
        &self,
        path: &str,
        body: &str,
        cache_control: Option<&str>,
    ) -> Result<(String, String), reqwest::Error> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header("anthropic-version", "2023-06-01")
            .body(body.to_string());
        if let Some(value) = cache_control {
            request = request.header("cache-control", value);
        }
        let response = request.send().await?;
        let cache = sim_gateway::header(&response, "x-bulwark-cache").unwrap_or_else(|| "-".into());
        Ok((cache, response.text().await?))
    }
}

fn answer_text(body: &str) -> String {
    let value: Value = serde_json::from_str(body).unwrap_or_default();
    value
        .pointer("/choices/0/message/content")
        .or_else(|| value.pointer("/content/0/text"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn identical_requests_hit_and_replay_in_any_shape() -> TestResult {
    let s = setup().await?;
    let first = r#"{"model":"cached","temperature":0,"messages":[{"role":"user","content":"What is a bulwark?"}]}"#;
    let (status, miss) = s.send("/v1/chat/completions", first, None).await?;
    assert_eq!(status, "miss");
    assert_eq!(s.sim.sim.request_count(), 1);

    // The same request with its keys in another order is the same request.
    let reordered = r#"{"messages":[{"content":"What is a bulwark?","role":"user"}],"temperature":0,"model":"cached"}"#;
    let (status, hit) = s.send("/v1/chat/completions", reordered, None).await?;
    assert_eq!(status, "hit");
    assert_eq!(answer_text(&hit), answer_text(&miss));
    assert_eq!(
        s.sim.sim.request_count(),
        1,
        "a hit must not reach the provider"
    );

    // Asked as a stream, the cached answer is replayed as a proper stream.
    let streamed = r#"{"model":"cached","temperature":0,"stream":true,"messages":[{"role":"user","content":"What is a bulwark?"}]}"#;
    let (status, text) = s.send("/v1/chat/completions", streamed, None).await?;
    assert_eq!(status, "hit");
    let mut raw = Vec::new();
    SseDecoder::new().feed(text.as_bytes(), &mut raw);
    let mut decoder = openai::StreamDecoder::new();
    let mut events = Vec::new();
    for event in &raw {
        decoder.on_event(event, &mut events)?;
    }
    assert!(decoder.is_done(), "{text}");
    let replayed = bulwark::aggregate::aggregate(&events);
    assert_eq!(
        replayed.content,
        vec![bulwark::api::ContentBlock::Text(answer_text(&miss))]
    );
    assert_eq!(s.sim.sim.request_count(), 1);

    // An Anthropic client's request is its own entry, replayed in its format.
    let anthropic_body = r#"{"model":"cached","max_tokens":64,"temperature":0,"stream":true,"messages":[{"role":"user","content":"What is a bulwark?"}]}"#;
    assert_eq!(
        s.send("/v1/messages", anthropic_body, None).await?.0,
        "miss"
    );
    let (status, text) = s.send("/v1/messages", anthropic_body, None).await?;
    assert_eq!(status, "hit");
    let mut raw = Vec::new();
    SseDecoder::new().feed(text.as_bytes(), &mut raw);
    let mut decoder = anthropic::StreamDecoder::new();
    let mut events = Vec::new();
    for event in &raw {
        decoder.on_event(event, &mut events)?;
    }
    assert!(decoder.is_done(), "{text}");
    assert_eq!(s.sim.sim.request_count(), 2);

    // A different question misses.
    let other = r#"{"model":"cached","temperature":0,"messages":[{"role":"user","content":"And a rampart?"}]}"#;
    assert_eq!(s.send("/v1/chat/completions", other, None).await?.0, "miss");
    Ok(())
}

#[tokio::test]
async fn sampling_cache_control_and_ttl_are_respected() -> TestResult {
    let s = setup().await?;
    // No temperature: the provider samples, so the answer is not cached...
    let sampled = r#"{"model":"cached","messages":[{"role":"user","content":"hi"}]}"#;
    assert_eq!(s.send("/v1/chat/completions", sampled, None).await?.0, "-");
    assert_eq!(s.send("/v1/chat/completions", sampled, None).await?.0, "-");
    // ...unless the route says so.
    let any = r#"{"model":"any","messages":[{"role":"user","content":"hi"}]}"#;
    assert_eq!(s.send("/v1/chat/completions", any, None).await?.0, "miss");
    assert_eq!(s.send("/v1/chat/completions", any, None).await?.0, "hit");

    let body = r#"{"model":"cached","temperature":0,"messages":[{"role":"user","content":"cache control"}]}"#;
    // no-store: neither read nor written.
    assert_eq!(
        s.send("/v1/chat/completions", body, Some("no-store"))
            .await?
            .0,
        "-"
    );
    assert_eq!(s.send("/v1/chat/completions", body, None).await?.0, "miss");
    // no-cache: not answered from the cache, but refreshed in it.
    let before = s.sim.sim.request_count();
    assert_eq!(
        s.send("/v1/chat/completions", body, Some("no-cache"))
            .await?
            .0,
        "miss"
    );
    assert_eq!(s.sim.sim.request_count(), before + 1);
    assert_eq!(s.send("/v1/chat/completions", body, None).await?.0, "hit");

    // Entries expire with their route's TTL.
    let brief =
        r#"{"model":"brief","temperature":0,"messages":[{"role":"user","content":"soon gone"}]}"#;
    assert_eq!(s.send("/v1/chat/completions", brief, None).await?.0, "miss");
    assert_eq!(s.send("/v1/chat/completions", brief, None).await?.0, "hit");
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(s.send("/v1/chat/completions", brief, None).await?.0, "miss");

    // Routes without a cache say nothing about it.
    let plain = r#"{"model":"plain","temperature":0,"messages":[{"role":"user","content":"hi"}]}"#;
    assert_eq!(s.send("/v1/chat/completions", plain, None).await?.0, "-");
    Ok(())
}

#[tokio::test]
async fn a_broken_stream_leaves_no_entry() -> TestResult {
    let s = setup().await?;
    let body = json!({"model": "cached", "temperature": 0, "stream": true,
        "messages": [{"role": "user", "content": "this answer will break"}]})
    .to_string();
    s.sim
        .sim
        .set_faults(vec![FaultRule::always(Fault::cut(4)).times(1)]);
    let (status, text) = s.send("/v1/chat/completions", &body, None).await?;
    assert_eq!(status, "miss");
    assert!(
        text.contains("\"error\""),
        "the cut stream should end with an error: {text}"
    );
    // The next identical request is a miss: nothing partial was stored.
    let (status, text) = s.send("/v1/chat/completions", &body, None).await?;
    assert_eq!(status, "miss");
    assert!(text.ends_with("data: [DONE]\n\n"));
    assert_eq!(s.send("/v1/chat/completions", &body, None).await?.0, "hit");
    Ok(())
}

/// Every target down: the route's degrade steps answer, each saying so.
#[tokio::test]
async fn degraded_answers_say_how_they_were_made() -> TestResult {
    let primary = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let local = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "listen: 127.0.0.1:0\nproviders:\n  p: {{ kind: anthropic, base_url: \"{}\" }}\n  local: {{ kind: openai-compatible, base_url: \"{}/v1\" }}\nroutes:\n  stale: {{ targets: [p/claude-sonnet-4-5], max_retries: 0, cache: {{ ttl: 200ms, max_stale: 1h }}, degrade: [stale-cache, {{ static: \"The assistant is temporarily unavailable.\" }}] }}\n  cheaper: {{ targets: [p/claude-sonnet-4-5], max_retries: 0, degrade: [local/llama3.2] }}\n  nothing: {{ targets: [p/claude-sonnet-4-5], max_retries: 0 }}\n",
        primary.url(),
        local.url()
    );
    let gateway = common::start_gateway(&yaml).await?;
    let base = gateway.base.clone();
    let http = reqwest::Client::new();
    let send = |path: &'static str, body: String| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            let response = http
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await?;
            let header =
                |name: &str| sim_gateway::header(&response, name).unwrap_or_else(|| "-".into());
            let (status, cache, degraded) = (
                response.status().as_u16(),
                header("x-bulwark-cache"),
                header("x-bulwark-degraded"),
            );
            Ok::<_, reqwest::Error>((status, cache, degraded, response.text().await?))
        }
    };
    let question = |model: &str| {
        json!({"model": model, "temperature": 0, "max_tokens": 64, "messages": [{"role": "user", "content": "Status?"}]}).to_string()
    };

    // A fresh answer is cached, then expires; the provider then goes down.
    let (_, cache, _, fresh) = send("/v1/chat/completions", question("stale")).await?;
    assert_eq!(cache, "miss");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::status(529))]);
    let (status, cache, degraded, stale) = send("/v1/chat/completions", question("stale")).await?;
    assert_eq!(
        (status, cache.as_str(), degraded.as_str()),
        (200, "stale", "stale-cache")
    );
    assert_eq!(answer_text(&stale), answer_text(&fresh));

    // No stale entry for this question: the static answer, in either format.
    let other = json!({"model": "stale", "temperature": 0, "max_tokens": 64, "stream": true,
        "messages": [{"role": "user", "content": "Anything new?"}]})
    .to_string();
    let (status, _, degraded, text) = send("/v1/messages", other).await?;
    assert_eq!((status, degraded.as_str()), (200, "static"));
    assert!(
        text.contains("The assistant is temporarily unavailable.") && text.contains("message_stop"),
        "{text}"
    );
    let (_, _, degraded, text) = send(
        "/v1/chat/completions",
        question("stale").replace("Status?", "Other?"),
    )
    .await?;
    assert_eq!(degraded, "static");
    assert_eq!(
        answer_text(&text),
        "The assistant is temporarily unavailable."
    );

    // A cheaper, local model steps in.
    let (status, _, degraded, text) = send("/v1/chat/completions", question("cheaper")).await?;
    assert_eq!((status, degraded.as_str()), (200, "local/llama3.2"));
    assert!(answer_text(&text).contains("llama3.2"), "{text}");

    // Nothing configured: a clear error in the client's format.
    let (status, _, degraded, text) = send("/v1/messages", question("nothing")).await?;
    assert!(status >= 500 && degraded == "-", "{status} {text}");
    assert!(text.contains("\"type\":\"error\""), "{text}");
    Ok(())
}

#[tokio::test]
async fn cached_answers_are_not_shared_across_client_keys() -> TestResult {
    let sim = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "listen: 127.0.0.1:0\nproviders:\n  p: {{ kind: openai, base_url: \"{}/v1\" }}\nroutes:\n  cached: {{ targets: [p/gpt-4o-mini], cache: {{ ttl: 1h }} }}\nkeys:\n  a: {{ key: tenant-a-key-0123456789 }}\n  b: {{ key: tenant-b-key-0123456789 }}\n",
        sim.url()
    );
    let gateway = common::start_gateway(&yaml).await?;
    let base = gateway.base.clone();
    let http = reqwest::Client::new();
    let body =
        r#"{"model":"cached","temperature":0,"messages":[{"role":"user","content":"private"}]}"#;
    let mut seen = Vec::new();
    for key in [
        "tenant-a-key-0123456789",
        "tenant-a-key-0123456789",
        "tenant-b-key-0123456789",
    ] {
        let response = http
            .post(format!("{base}/v1/chat/completions"))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {key}"))
            .body(body)
            .send()
            .await?;
        seen.push(
            response
                .headers()
                .get("x-bulwark-cache")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_string(),
        );
    }
    assert_eq!(seen, ["miss", "hit", "miss"]);
    Ok(())
}
