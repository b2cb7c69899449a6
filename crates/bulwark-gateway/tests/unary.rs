//! `POST /v1/embeddings` and `POST /v1/messages/count_tokens` through the
//! gateway to bulwark-sim: OpenAI and Gemini targets, float and base64,
//! fallback after an overload, the cache, a count passed through to an
//! Anthropic target or estimated, and errors in the client's format.

use base64::Engine;
use bulwark_sim::{Fault, FaultRule, Format, SimConfig, SimServer};
use serde_json::{Value, json};

mod common;
mod sim_gateway;

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Setup {
    base: String,
    http: reqwest::Client,
    sim: SimServer,
    gateway: common::Running,
}

async fn setup() -> Result<Setup, Box<dyn std::error::Error>> {
    let (sim, gateway) = sim_gateway::start(SimConfig::default(), |url| {
        format!(
            "listen: 127.0.0.1:0\nproviders:\n  o: {{ kind: openai, base_url: \"{url}/v1\" }}\n  g: {{ kind: gemini, base_url: \"{url}\" }}\n  a: {{ kind: anthropic, base_url: \"{url}\" }}\n  gs: {{ kind: gemini, base_url: \"{url}\", max_response_bytes: 20000 }}\nroutes:\n  emb: {{ targets: [o/text-embedding-3-small], cache: {{ ttl: 1h }} }}\n  stale: {{ targets: [o/text-embedding-3-small], cache: {{ ttl: 200ms, max_stale: 1h }}, degrade: [stale-cache], max_retries: 0 }}\n  gem: {{ targets: [g/text-embedding-004] }}\n  failover: {{ targets: [o/text-embedding-004, g/text-embedding-004], max_retries: 1, backoff_base: 10ms }}\n  claude: {{ targets: [a/claude-sonnet-4-5] }}\n  claude-or-gpt: {{ targets: [a/claude-sonnet-4-5, o/gpt-4o-mini], max_retries: 0 }}\n  gpt: {{ targets: [o/gpt-4o-mini] }}\n  slow: {{ targets: [o/text-embedding-004, g/text-embedding-004], attempt_timeout: 200ms, max_retries: 0 }}\n  small: {{ targets: [gs/text-embedding-004], max_retries: 0 }}\n  badgem: {{ targets: [\"g/bad@model\", \"o/bad@model\"], max_retries: 0 }}\n  onlybad: {{ targets: [\"g/bad@model\"] }}\n"
        )
    })
    .await?;
    Ok(Setup {
        base: gateway.base.clone(),
        http: reqwest::Client::new(),
        sim,
        gateway,
    })
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every vector of an OpenAI embeddings answer, decoding base64 ones.
    fn vectors(&self) -> Vec<Vec<f32>> {
        let Some(data) = self.body["data"].as_array() else {
            return Vec::new();
        };
        data.iter()
            .map(|item| match &item["embedding"] {
                Value::String(b64) => base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap_or_default()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
                Value::Array(values) => values
                    .iter()
                    .filter_map(Value::as_f64)
                    .map(|f| f as f32)
                    .collect(),
                _ => Vec::new(),
            })
            .collect()
    }
}

impl Setup {
    async fn post(&self, path: &str, body: Value) -> Result<Answer, reqwest::Error> {
        self.post_with(path, body, &[]).await
    }

    async fn post_with(
        &self,
        path: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> Result<Answer, reqwest::Error> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    fn paths(&self) -> Vec<String> {
        self.sim
            .sim
            .requests()
            .into_iter()
            .map(|r| r.path)
            .collect()
    }
}

#[tokio::test]
async fn embeddings_on_an_openai_target_in_float_and_base64() -> TestResult {
    let s = setup().await?;
    let float = s
        .post(
            "/v1/embeddings",
            json!({"model": "emb", "input": ["a bulwark", "a wall"], "user": "u1"}),
        )
        .await?;
    assert_eq!(float.status, 200, "{}", float.body);
    assert_eq!(
        float.header("x-bulwark-target"),
        Some("o/text-embedding-3-small")
    );
    assert!(float.header("x-request-id").is_some());
    assert_eq!(float.body["object"], json!("list"));
    assert_eq!(float.body["model"], json!("text-embedding-3-small"));
    let vectors = float.vectors();
    assert_eq!(vectors.len(), 2);
    assert_eq!(vectors[0].len(), 16);
    assert_ne!(vectors[0], vectors[1]);
    // The body went through as the client wrote it, with the target's model.
    let sent = s.sim.sim.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/v1/embeddings");
    assert_eq!(sent[0].body["model"], json!("text-embedding-3-small"));
    assert_eq!(sent[0].body["user"], json!("u1"));

    let base64 = s
        .post(
            "/v1/embeddings",
            json!({"model": "emb", "input": ["a bulwark", "a wall"], "encoding_format": "base64"}),
        )
        .await?;
    assert_eq!(base64.status, 200, "{}", base64.body);
    assert!(base64.body["data"][0]["embedding"].is_string());
    assert_eq!(base64.vectors(), vectors);
    Ok(())
}

#[tokio::test]
async fn embeddings_on_a_gemini_target_come_back_in_openai_shape() -> TestResult {
    let s = setup().await?;
    let one = s
        .post(
            "/v1/embeddings",
            json!({"model": "gem", "input": "a bulwark", "dimensions": 8}),
        )
        .await?;
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.header("x-bulwark-target"), Some("g/text-embedding-004"));
    assert_eq!(one.body["data"][0]["object"], json!("embedding"));
    assert_eq!(one.vectors()[0].len(), 8);
    let many = s
        .post(
            "/v1/embeddings",
            json!({"model": "gem", "input": ["a bulwark", "a wall"], "encoding_format": "base64"}),
        )
        .await?;
    assert_eq!(many.status, 200, "{}", many.body);
    assert_eq!(many.vectors().len(), 2);
    assert_eq!(
        s.paths(),
        [
            "/v1beta/models/text-embedding-004:embedContent",
            "/v1beta/models/text-embedding-004:batchEmbedContents"
        ]
    );
    let sent = s.sim.sim.requests();
    assert_eq!(sent[0].body["outputDimensionality"], json!(8));
    // The same model at an OpenAI server gives the same vectors.
    let openai = s
        .post(
            "/v1/embeddings",
            json!({"model": "o/text-embedding-004", "input": ["a bulwark", "a wall"]}),
        )
        .await?;
    assert_eq!(openai.vectors(), many.vectors());
    Ok(())
}

#[tokio::test]
async fn more_than_100_inputs_reach_gemini_as_several_batches() -> TestResult {
    let s = setup().await?;
    let texts: Vec<String> = (0..250).map(|i| format!("text {i}")).collect();
    let answer = s
        .post("/v1/embeddings", json!({"model": "gem", "input": texts}))
        .await?;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.vectors().len(), 250);
    assert_eq!(answer.body["data"][249]["index"], json!(249));
    let batches: Vec<usize> = s
        .sim
        .sim
        .requests()
        .iter()
        .map(|r| r.body["requests"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(batches, [100, 100, 50]);
    // The same vectors as one OpenAI request for all of them.
    let openai = s
        .post(
            "/v1/embeddings",
            json!({"model": "o/text-embedding-004", "input": texts}),
        )
        .await?;
    assert_eq!(openai.vectors(), answer.vectors());
    Ok(())
}

#[tokio::test]
async fn embeddings_fall_back_to_the_same_model_after_a_503() -> TestResult {
    let s = setup().await?;
    let expected = s
        .post(
            "/v1/embeddings",
            json!({"model": "g/text-embedding-004", "input": ["x", "y"]}),
        )
        .await?
        .vectors();
    s.sim
        .sim
        .add_fault(FaultRule::always(Fault::status(503)).for_format(Format::OpenAi));
    let answer = s
        .post(
            "/v1/embeddings",
            json!({"model": "failover", "input": ["x", "y"]}),
        )
        .await?;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("x-bulwark-fallback"), Some("true"));
    assert_eq!(
        answer.header("x-bulwark-target"),
        Some("g/text-embedding-004")
    );
    // The first target was retried once, then the second answered.
    assert_eq!(answer.header("x-bulwark-attempts"), Some("3"));
    assert_eq!(answer.vectors(), expected);

    // Every target down: an OpenAI error with an upstream status, never a 4xx.
    s.sim.sim.add_fault(FaultRule::always(Fault::status(503)));
    let failed = s
        .post("/v1/embeddings", json!({"model": "failover", "input": "x"}))
        .await?;
    assert!(failed.status >= 500, "{}", failed.status);
    assert!(
        failed.body["error"]["message"].is_string(),
        "{}",
        failed.body
    );
    Ok(())
}

#[tokio::test]
async fn a_hung_embeddings_target_times_out_and_the_next_answers() -> TestResult {
    let s = setup().await?;
    s.sim
        .sim
        .add_fault(FaultRule::always(Fault::Hang { duration_ms: 5000 }).for_format(Format::OpenAi));
    let started = tokio::time::Instant::now();
    let answer = s
        .post("/v1/embeddings", json!({"model": "slow", "input": "x"}))
        .await?;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.header("x-bulwark-target"),
        Some("g/text-embedding-004")
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(3));

    // The caller's own deadline bounds the whole request.
    let started = tokio::time::Instant::now();
    let cut = s
        .post_with(
            "/v1/embeddings",
            json!({"model": "emb", "input": "x"}),
            &[
                ("x-bulwark-deadline-ms", "300"),
                ("cache-control", "no-store"),
            ],
        )
        .await?;
    assert!(cut.status >= 500, "{} {}", cut.status, cut.body);
    assert!(cut.body["error"]["message"].is_string(), "{}", cut.body);
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    Ok(())
}

#[tokio::test]
async fn the_same_embeddings_request_is_a_cache_hit() -> TestResult {
    let s = setup().await?;
    let body = json!({"model": "emb", "input": ["cached"], "encoding_format": "base64"});
    let first = s.post("/v1/embeddings", body.clone()).await?;
    assert_eq!(first.header("x-bulwark-cache"), Some("miss"));
    let second = s.post("/v1/embeddings", body).await?;
    assert_eq!(second.header("x-bulwark-cache"), Some("hit"));
    assert_eq!(second.body, first.body);
    assert_eq!(s.sim.sim.request_count(), 1);
    // Another encoding is another answer.
    let float = s
        .post(
            "/v1/embeddings",
            json!({"model": "emb", "input": ["cached"]}),
        )
        .await?;
    assert_eq!(float.header("x-bulwark-cache"), Some("miss"));
    assert_eq!(float.vectors(), first.vectors());
    assert_eq!(s.sim.sim.request_count(), 2);
    Ok(())
}

#[tokio::test]
async fn an_outage_is_answered_with_stale_embeddings_when_the_route_says_so() -> TestResult {
    let s = setup().await?;
    let body = json!({"model": "stale", "input": ["kept"]});
    let fresh = s.post("/v1/embeddings", body.clone()).await?;
    assert_eq!(fresh.header("x-bulwark-cache"), Some("miss"));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    s.sim.sim.add_fault(FaultRule::always(Fault::status(503)));
    let stale = s.post("/v1/embeddings", body).await?;
    assert_eq!(stale.status, 200, "{}", stale.body);
    assert_eq!(stale.header("x-bulwark-cache"), Some("stale"));
    assert_eq!(stale.header("x-bulwark-degraded"), Some("stale-cache"));
    assert_eq!(stale.header("x-bulwark-attempts"), Some("1"));
    assert_eq!(stale.body, fresh.body);
    // Nothing kept for another request: the outage is the client's answer.
    let other = s
        .post(
            "/v1/embeddings",
            json!({"model": "stale", "input": ["new"]}),
        )
        .await?;
    assert!(other.status >= 500, "{}", other.status);
    Ok(())
}

#[tokio::test]
async fn embeddings_errors_are_openai_errors() -> TestResult {
    let s = setup().await?;
    let missing = s.post("/v1/embeddings", json!({"model": "emb"})).await?;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.body["error"]["param"], json!("input"));
    let chat_only = s
        .post("/v1/embeddings", json!({"model": "claude", "input": "x"}))
        .await?;
    assert_eq!(chat_only.status, 400, "{}", chat_only.body);
    let message = chat_only.body["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("no target that serves embeddings"),
        "{message}"
    );
    assert_eq!(s.sim.sim.request_count(), 0);
    Ok(())
}

#[tokio::test]
async fn more_than_2048_inputs_are_refused_before_any_call() -> TestResult {
    let s = setup().await?;
    let texts = vec![""; 2049];
    let refused = s
        .post("/v1/embeddings", json!({"model": "gem", "input": texts}))
        .await?;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.body["error"]["param"], json!("input"));
    assert_eq!(
        refused.body["error"]["type"],
        json!("invalid_request_error")
    );
    assert_eq!(s.sim.sim.request_count(), 0);
    Ok(())
}

#[tokio::test]
async fn max_response_bytes_bounds_all_the_batches_of_one_call_together() -> TestResult {
    let s = setup().await?;
    // 100 small vectors (one batch) fit in `gs`'s 20000 bytes...
    let texts: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
    let one_batch = s
        .post(
            "/v1/embeddings",
            json!({"model": "small", "input": texts, "dimensions": 8}),
        )
        .await?;
    assert_eq!(one_batch.status, 200, "{}", one_batch.body);
    assert_eq!(one_batch.vectors().len(), 100);
    // ...and so does each of three such batches, but not all three.
    let texts: Vec<String> = (0..250).map(|i| format!("t{i}")).collect();
    let three = s
        .post(
            "/v1/embeddings",
            json!({"model": "small", "input": texts, "dimensions": 8}),
        )
        .await?;
    assert!(three.status >= 500, "{} {}", three.status, three.body);
    let message = three.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("max_response_bytes"), "{message}");
    Ok(())
}

#[tokio::test]
async fn a_target_that_cannot_be_called_is_passed_over_never_a_4xx() -> TestResult {
    let s = setup().await?;
    let served = s
        .post("/v1/embeddings", json!({"model": "badgem", "input": "x"}))
        .await?;
    assert_eq!(served.status, 200, "{}", served.body);
    assert_eq!(served.header("x-bulwark-target"), Some("o/bad@model"));
    // No attempt was spent on it.
    assert_eq!(served.header("x-bulwark-attempts"), Some("1"));
    let only = s
        .post("/v1/embeddings", json!({"model": "onlybad", "input": "x"}))
        .await?;
    assert!(only.status >= 500, "{} {}", only.status, only.body);
    assert_eq!(s.paths(), ["/v1/embeddings"]);
    Ok(())
}

const ANTHROPIC: [(&str, &str); 2] = [
    ("anthropic-version", "2023-06-01"),
    ("anthropic-beta", "token-counting-2024-11-01"),
];

fn count_body(model: &str) -> Value {
    json!({
        "model": model,
        "system": "You are brief.",
        "messages": [{"role": "user", "content": "How many tokens is this sentence?"}],
    })
}

#[tokio::test]
async fn count_tokens_is_passed_to_an_anthropic_target() -> TestResult {
    let s = setup().await?;
    let answer = s
        .post_with(
            "/v1/messages/count_tokens",
            count_body("claude"),
            &ANTHROPIC,
        )
        .await?;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("x-bulwark-estimated"), None);
    assert_eq!(
        answer.header("x-bulwark-target"),
        Some("a/claude-sonnet-4-5")
    );
    // The simulator counts words: 3 + 6.
    assert_eq!(answer.body, json!({"input_tokens": 9}));
    let sent = s.sim.sim.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/v1/messages/count_tokens");
    assert_eq!(sent[0].body["model"], json!("claude-sonnet-4-5"));
    assert_eq!(sent[0].body.get("max_tokens"), None);
    assert_eq!(
        sent[0].headers.get("anthropic-beta").map(String::as_str),
        Some("token-counting-2024-11-01")
    );
    Ok(())
}

#[tokio::test]
async fn count_tokens_is_estimated_without_an_anthropic_target() -> TestResult {
    let s = setup().await?;
    let answer = s
        .post_with("/v1/messages/count_tokens", count_body("gpt"), &ANTHROPIC)
        .await?;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("x-bulwark-estimated"), Some("true"));
    let tokens = answer.body["input_tokens"].as_u64().unwrap_or_default();
    assert!((5..100).contains(&tokens), "{tokens}");
    assert_eq!(s.sim.sim.request_count(), 0);
    Ok(())
}

#[tokio::test]
async fn count_tokens_is_estimated_when_the_anthropic_target_is_overloaded() -> TestResult {
    let s = setup().await?;
    s.sim
        .sim
        .add_fault(FaultRule::always(Fault::status(529)).for_format(Format::Anthropic));
    let answer = s
        .post_with(
            "/v1/messages/count_tokens",
            count_body("claude-or-gpt"),
            &ANTHROPIC,
        )
        .await?;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("x-bulwark-estimated"), Some("true"));
    assert_eq!(answer.header("x-bulwark-attempts"), Some("1"));
    assert!(answer.body["input_tokens"].as_u64().is_some());
    Ok(())
}

#[tokio::test]
async fn count_tokens_errors_are_anthropic_errors() -> TestResult {
    let s = setup().await?;
    let answer = s
        .post_with(
            "/v1/messages/count_tokens",
            json!({"model": "claude"}),
            &ANTHROPIC,
        )
        .await?;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["type"], json!("error"));
    assert_eq!(answer.body["error"]["type"], json!("invalid_request_error"));
    assert_eq!(s.sim.sim.request_count(), 0);
    Ok(())
}

#[tokio::test]
async fn unary_requests_are_logged_with_their_request_id_and_metrics() -> TestResult {
    let s = setup().await?;
    let response = s
        .http
        .post(format!("{}/v1/embeddings", s.base))
        .header("content-type", "application/json")
        .header("x-request-id", "emb-1")
        .body(json!({"model": "emb", "input": "logged"}).to_string())
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    assert_eq!(
        sim_gateway::header(&response, "x-request-id").as_deref(),
        Some("emb-1")
    );
    let counted = s
        .post_with("/v1/messages/count_tokens", count_body("gpt"), &ANTHROPIC)
        .await?;
    assert_eq!(counted.status, 200);
    let observer = s.gateway.gateway.observer();
    observer.flush().await;
    let records = observer.store().requests_between(0, i64::MAX, None).await?;
    let embedded = records
        .iter()
        .find(|r| r.client_request_id.as_deref() == Some("emb-1"))
        .ok_or("no record of the embeddings request")?;
    assert_eq!(embedded.route, "emb");
    assert_eq!(embedded.status, 200);
    assert_eq!(embedded.client_format, "openai");
    assert_eq!(embedded.target.as_deref(), Some("o/text-embedding-3-small"));
    assert_eq!(embedded.attempts.len(), 1);
    assert_eq!(embedded.input_tokens, Some(1));
    let count = records
        .iter()
        .find(|r| r.route == "gpt")
        .ok_or("no record of the count")?;
    assert_eq!(count.client_format, "anthropic");
    assert_eq!(count.target.as_deref(), Some("bulwark/estimate"));
    let metrics = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("route=\"emb\"") && l.starts_with("bulwark_requests_total")),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test]
async fn a_route_mixing_embedding_models_is_refused_at_start() {
    let yaml = "listen: 127.0.0.1:0\nproviders:\n  o: { kind: openai }\n  g: { kind: gemini, api_key: k }\nroutes:\n  e: { targets: [o/text-embedding-3-small, g/text-embedding-004] }\n";
    let error = bulwark_gateway::GatewayConfig::from_yaml(yaml, "test", &|_| None)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        error.contains("routes.e.targets: an embeddings route must name one embedding model"),
        "{error}"
    );
}

#[tokio::test]
async fn failed_embeddings_open_the_breaker_and_the_target_is_skipped() -> TestResult {
    let (sim, gateway) = sim_gateway::start(SimConfig::default(), |url| {
        format!(
            "listen: 127.0.0.1:0\nbreaker: {{ consecutive_failures: 2 }}\nproviders:\n  o: {{ kind: openai, base_url: \"{url}/v1\" }}\n  g: {{ kind: gemini, base_url: \"{url}\" }}\nroutes:\n  e: {{ targets: [o/text-embedding-004, g/text-embedding-004], max_retries: 0 }}\n"
        )
    })
    .await?;
    sim.sim
        .add_fault(FaultRule::always(Fault::status(500)).for_format(Format::OpenAi));
    let http = reqwest::Client::new();
    let send = || {
        http.post(format!("{}/v1/embeddings", gateway.base))
            .header("content-type", "application/json")
            .body(json!({"model": "e", "input": "x"}).to_string())
            .send()
    };
    for _ in 0..2 {
        assert_eq!(send().await?.status(), 200);
    }
    let openai_calls = |sim: &SimServer| {
        sim.sim
            .requests()
            .iter()
            .filter(|r| r.path == "/v1/embeddings")
            .count()
    };
    assert_eq!(openai_calls(&sim), 2);
    // Open now: the third request goes straight to Gemini.
    let third = send().await?;
    assert_eq!(third.status(), 200);
    assert_eq!(
        sim_gateway::header(&third, "x-bulwark-target").as_deref(),
        Some("g/text-embedding-004")
    );
    assert_eq!(openai_calls(&sim), 2);
    Ok(())
}
