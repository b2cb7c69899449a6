//! The gateway over HTTP on 127.0.0.1, in front of simulated providers:
//! status codes, error shapes, stream framing and the served-by headers.

use bulwark_sim::{Fault, FaultRule, SimConfig, SimServer};
use serde_json::{Value, json};

mod common;

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Setup {
    base: String,
    http: reqwest::Client,
    primary: SimServer,
    _backup: SimServer,
    _gateway: common::Running,
}

async fn setup() -> Result<Setup, Box<dyn std::error::Error>> {
    let primary = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let backup = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "listen: 127.0.0.1:0\nmax_request_bytes: 4096\nproviders:\n  primary: {{ kind: gemini, base_url: \"{}\", api_key: secret-primary }}\n  backup: {{ kind: anthropic, base_url: \"{}\", api_key: secret-backup }}\nroutes:\n  main: {{ targets: [primary/gemini-2.5-flash, backup/claude-sonnet-4-5], max_retries: 1, backoff_base: 10ms }}\n",
        primary.url(),
        backup.url()
    );
    let gateway = common::start_gateway(&yaml).await?;
    Ok(Setup {
        base: gateway.base.clone(),
        http: reqwest::Client::new(),
        primary,
        _backup: backup,
        _gateway: gateway,
    })
}

impl Setup {
    async fn post(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> Result<reqwest::Response, reqwest::Error> {
        self.http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header("anthropic-version", "2023-06-01")
            .body(body)
            .send()
            .await
    }
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn json_of(response: reqwest::Response) -> Result<Value, Box<dyn std::error::Error>> {
    Ok(serde_json::from_slice(&response.bytes().await?)?)
}

fn chat(model: &str, stream: bool) -> String {
    json!({"model": model, "max_tokens": 16, "stream": stream, "messages": [{"role": "user", "content": "Hello"}]}).to_string()
}

#[tokio::test]
async fn bad_requests_get_4xx_in_the_clients_format() -> TestResult {
    let s = setup().await?;
    let cases = [
        (
            "/v1/chat/completions",
            "{oops".to_string(),
            400,
            "not valid JSON",
        ),
        ("/v1/messages", "{oops".to_string(), 400, "not valid JSON"),
        (
            "/v1/chat/completions",
            chat("nope", false),
            404,
            "not served here",
        ),
        ("/v1/messages", chat("nope", false), 404, "not served here"),
        (
            "/v1/chat/completions",
            "x".repeat(5000),
            413,
            "max_request_bytes",
        ),
        ("/v1/messages", "x".repeat(5000), 413, "max_request_bytes"),
    ];
    for (path, body, status, text) in cases {
        let response = s.post(path, body).await?;
        assert_eq!(response.status().as_u16(), status, "{path} {text}");
        let error = json_of(response).await?;
        let message = if path == "/v1/messages" {
            assert_eq!(error["type"], "error");
            error["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        } else {
            assert!(error["error"]["type"].is_string());
            error["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        assert!(message.contains(text), "{path}: {message}");
    }
    assert_eq!(
        s.primary.sim.request_count(),
        0,
        "bad input reached a provider"
    );
    Ok(())
}

#[tokio::test]
async fn fallback_is_reported_in_headers() -> TestResult {
    let s = setup().await?;
    let response = s.post("/v1/chat/completions", chat("main", false)).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-bulwark-target"),
        "primary/gemini-2.5-flash"
    );
    assert_eq!(header(&response, "x-bulwark-attempts"), "1");

    s.primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::status(503))]);
    let response = s.post("/v1/chat/completions", chat("main", false)).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-bulwark-target"),
        "backup/claude-sonnet-4-5"
    );
    // One try and one retry on the primary, then the backup.
    assert_eq!(header(&response, "x-bulwark-attempts"), "3");
    assert_eq!(header(&response, "x-bulwark-fallback"), "true");
    let body = json_of(response).await?;
    assert_eq!(body["object"], "chat.completion");
    assert!(
        body["choices"][0]["message"]["content"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    Ok(())
}

#[tokio::test]
async fn openai_streams_end_with_done_and_only_send_usage_when_asked() -> TestResult {
    let s = setup().await?;
    let response = s.post("/v1/chat/completions", chat("main", true)).await?;
    assert_eq!(header(&response, "content-type"), "text/event-stream");
    let text = response.text().await?;
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(!text.contains("\"usage\""), "usage sent unasked: {text}");

    let body = json!({"model": "main", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Hello"}]});
    let text = s
        .post("/v1/chat/completions", body.to_string())
        .await?
        .text()
        .await?;
    let chunks: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let last = chunks.last().ok_or("no chunks")?;
    assert_eq!(last["choices"], json!([]));
    assert!(
        last["usage"]["completion_tokens"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c["usage"].is_null())
    );
    Ok(())
}

#[tokio::test]
async fn anthropic_streams_follow_the_event_order() -> TestResult {
    let s = setup().await?;
    let text = s
        .post("/v1/messages", chat("main", true))
        .await?
        .text()
        .await?;
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    assert_eq!(names[names.len() - 2], "message_delta");
    assert!(names.contains(&"ping"));
    let starts = names
        .iter()
        .filter(|n| **n == "content_block_start")
        .count();
    let stops = names.iter().filter(|n| **n == "content_block_stop").count();
    assert_eq!((starts, stops), (1, 1));
    Ok(())
}

#[tokio::test]
async fn a_stream_broken_after_content_ends_with_an_error_event() -> TestResult {
    let s = setup().await?;
    s.primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::cut(3))]);
    let text = s
        .post("/v1/messages", chat("main", true))
        .await?
        .text()
        .await?;
    assert!(text.contains("event: error"), "{text}");
    assert!(
        !text.contains("message_stop"),
        "a truncated answer ended cleanly: {text}"
    );

    let text = s
        .post("/v1/chat/completions", chat("main", true))
        .await?
        .text()
        .await?;
    assert!(text.contains("data: {\"error\""), "{text}");
    assert!(
        !text.contains("[DONE]"),
        "a truncated answer ended cleanly: {text}"
    );
    Ok(())
}

#[tokio::test]
async fn all_targets_failing_is_a_5xx_that_names_each_attempt_without_keys() -> TestResult {
    let s = setup().await?;
    s.primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::status(500))]);
    s._backup
        .sim
        .set_faults(vec![FaultRule::always(Fault::status(529))]);
    let response = s.post("/v1/messages", chat("main", false)).await?;
    assert!(response.status().is_server_error());
    assert_eq!(header(&response, "x-bulwark-attempts"), "4");
    let text = response.text().await?;
    assert!(
        text.contains("primary/gemini-2.5-flash") && text.contains("backup/claude-sonnet-4-5"),
        "{text}"
    );
    assert!(!text.contains("secret-"), "a provider key leaked: {text}");
    Ok(())
}

#[tokio::test]
async fn models_lists_routes_and_targets() -> TestResult {
    let s = setup().await?;
    let body = json_of(s.http.get(format!("{}/v1/models", s.base)).send().await?).await?;
    let ids: Vec<&str> = body["data"]
        .as_array()
        .ok_or("no data")?
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(body["object"], "list");
    assert_eq!(
        ids,
        [
            "main",
            "backup/claude-sonnet-4-5",
            "primary/gemini-2.5-flash"
        ]
    );
    let response = s.http.get(format!("{}/v1/nothing", s.base)).send().await?;
    assert_eq!(response.status(), 404);
    Ok(())
}

/// `models.retrieve` in OpenAI's and Anthropic's SDKs: one route or target
/// in the client's shape, and the format's own 404 for any other id (the
/// `POST /v1/models/{*rest}` Gemini route once answered them an empty 405).
#[tokio::test]
async fn one_model_is_retrieved_in_the_clients_shape() -> TestResult {
    let s = setup().await?;
    let get = |path: &str| s.http.get(format!("{}{path}", s.base));

    let response = get("/v1/models/main").send().await?;
    assert_eq!(response.status(), 200);
    assert_eq!(
        json_of(response).await?,
        json!({"id": "main", "object": "model", "created": 0, "owned_by": "bulwark-route"})
    );
    let response = get("/v1/models/primary/gemini-2.5-flash").send().await?;
    assert_eq!(response.status(), 200);
    let body = json_of(response).await?;
    assert_eq!(body["id"], "primary/gemini-2.5-flash", "{body}");
    assert_eq!(body["owned_by"], "provider", "{body}");

    let response = get("/v1/models/gpt-nothing").send().await?;
    assert_eq!(response.status(), 404);
    let body = json_of(response).await?;
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    assert_eq!(body["error"]["code"], "model_not_found", "{body}");

    let anthropic = |path: &str| get(path).header("anthropic-version", "2023-06-01");
    let response = anthropic("/v1/models/backup/claude-sonnet-4-5")
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let body = json_of(response).await?;
    assert_eq!(body["type"], "model", "{body}");
    assert_eq!(body["id"], "backup/claude-sonnet-4-5", "{body}");
    let response = anthropic("/v1/models/claude-nothing").send().await?;
    assert_eq!(response.status(), 404);
    let body = json_of(response).await?;
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "not_found_error", "{body}");
    Ok(())
}

/// A path served by other methods answers 405 with a JSON error in the
/// client's format and the methods it takes, never an empty body.
#[tokio::test]
async fn a_wrong_method_gets_a_json_405_in_the_clients_format() -> TestResult {
    let s = setup().await?;
    let response = s
        .http
        .delete(format!("{}/v1/models/main", s.base))
        .send()
        .await?;
    assert_eq!(response.status(), 405);
    let allow = header(&response, "allow");
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let body = json_of(response).await?;
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("DELETE /v1/models/main")),
        "{body}"
    );

    let response = s
        .http
        .get(format!("{}/v1/chat/completions", s.base))
        .send()
        .await?;
    assert_eq!(response.status(), 405);
    assert_eq!(
        json_of(response).await?["error"]["type"],
        "invalid_request_error"
    );

    // Google's clients read errors only in Google's shape.
    for path in [
        "/v1beta/models/main:generateContent",
        "/v1/models/main:generateContent",
        "/v1beta/models",
    ] {
        let response = s.http.put(format!("{}{path}", s.base)).send().await?;
        assert_eq!(response.status(), 405, "{path}");
        let body = json_of(response).await?;
        assert_eq!(body["error"]["code"], 405, "{path}: {body}");
        assert_eq!(
            body["error"]["status"], "INVALID_ARGUMENT",
            "{path}: {body}"
        );
    }
    let response = s
        .http
        .get(format!("{}/v1beta/models/main:generateContent", s.base))
        .send()
        .await?;
    assert_eq!(response.status(), 405);
    assert_eq!(json_of(response).await?["error"]["code"], 405);
    Ok(())
}

/// A broken stream continued by another target reaches the client as one
/// well-formed stream in its own format, relayed or translated.
#[tokio::test]
async fn continued_streams_are_well_formed_for_both_client_formats() -> TestResult {
    use bulwark::sse::SseDecoder;
    use bulwark::wire::{anthropic, openai};
    let first_openai = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let first_anthropic = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let backup = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "listen: 127.0.0.1:0\nproviders:\n  o: {{ kind: openai, base_url: \"{}/v1\" }}\n  a: {{ kind: anthropic, base_url: \"{}\" }}\n  b: {{ kind: anthropic, base_url: \"{}\" }}\nroutes:\n  via-openai: {{ targets: [o/gpt-4o-mini, b/claude-sonnet-4-5], mid_stream: continue }}\n  via-anthropic: {{ targets: [a/claude-sonnet-4-5, b/claude-sonnet-4-5], mid_stream: continue }}\n",
        first_openai.url(),
        first_anthropic.url(),
        backup.url()
    );
    let gateway = common::start_gateway(&yaml).await?;
    let base = gateway.base.clone();
    first_openai
        .sim
        .set_faults(vec![FaultRule::always(Fault::cut(4))]);
    first_anthropic
        .sim
        .set_faults(vec![FaultRule::always(Fault::cut(6))]);
    let http = reqwest::Client::new();
    for (route, path) in [
        ("via-openai", "/v1/chat/completions"),
        ("via-anthropic", "/v1/chat/completions"),
        ("via-openai", "/v1/messages"),
        ("via-anthropic", "/v1/messages"),
    ] {
        let text = http
            .post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(chat(route, true))
            .send()
            .await?
            .text()
            .await?;
        let mut raw = Vec::new();
        SseDecoder::new().feed(text.as_bytes(), &mut raw);
        let mut events = Vec::new();
        if path == "/v1/messages" {
            let mut decoder = anthropic::StreamDecoder::new();
            for event in &raw {
                decoder.on_event(event, &mut events)?;
            }
            assert!(
                decoder.is_done(),
                "{route} {path}: no message_stop in {text}"
            );
            let message = anthropic::assemble_response(&raw);
            assert_eq!(
                message["content"].as_array().map(Vec::len),
                Some(1),
                "{route} {path}: {message}"
            );
            // Anthropic's SDKs take message_delta's input tokens over
            // message_start's: a continuation must not replace the size of
            // the prompt the client sent with its own (prompt plus prefill).
            let input_tokens = |name: &str, pointer: &str| {
                raw.iter()
                    .rev()
                    .filter(|e| e.event.as_deref() == Some(name))
                    .filter_map(|e| serde_json::from_str::<serde_json::Value>(&e.data).ok())
                    .find_map(|data| data.pointer(pointer).and_then(serde_json::Value::as_u64))
            };
            if route == "via-anthropic" {
                assert_eq!(
                    input_tokens("message_delta", "/usage/input_tokens"),
                    input_tokens("message_start", "/message/usage/input_tokens"),
                    "{route} {path}: {text}"
                );
            }
        } else {
            let mut decoder = openai::StreamDecoder::new();
            for event in &raw {
                decoder.on_event(event, &mut events)?;
            }
            assert!(decoder.is_done(), "{route} {path}: no [DONE] in {text}");
        }
        let answer = bulwark::aggregate::aggregate(&events);
        let words = answer.content.iter().map(|b| match b {
            bulwark::api::ContentBlock::Text(t) => t.split_whitespace().count(),
            _ => 0,
        });
        assert!(
            words.sum::<usize>() > 4,
            "{route} {path}: nothing was continued: {text}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_deadline_header_shortens_a_request() -> TestResult {
    let s = setup().await?;
    let response = s
        .http
        .post(format!("{}/v1/chat/completions", s.base))
        .header("x-bulwark-deadline-ms", "soon")
        .body(chat("main", false))
        .send()
        .await?;
    assert_eq!(response.status(), 400);
    s.primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::hang(20_000))]);
    s._backup
        .sim
        .set_faults(vec![FaultRule::always(Fault::hang(20_000))]);
    let started = tokio::time::Instant::now();
    let response = s
        .http
        .post(format!("{}/v1/messages", s.base))
        .header("x-bulwark-deadline-ms", "300")
        .body(chat("main", false))
        .send()
        .await?;
    assert_eq!(response.status(), 504);
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    let error = json_of(response).await?;
    assert_eq!(error["error"]["type"], "timeout_error");
    Ok(())
}

#[tokio::test]
async fn client_keys_guard_the_gateway_and_its_routes() -> TestResult {
    let sim = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "listen: 127.0.0.1:0\nproviders:\n  p: {{ kind: openai, base_url: \"{}/v1\" }}\nroutes:\n  open: {{ targets: [p/gpt-4o-mini] }}\n  secret: {{ targets: [p/gpt-4o] }}\nkeys:\n  team-a: {{ key: team-a-key-0123456789, routes: [open] }}\n  admin: {{ key_blake3: \"{}\" }}\n",
        sim.url(),
        blake3::hash(b"admin-key-0123456789").to_hex()
    );
    let gateway = common::start_gateway(&yaml).await?;
    let base = gateway.base.clone();
    let http = reqwest::Client::new();
    let call = |path: &str, model: &str, auth: Option<(&'static str, String)>| {
        let mut request = http
            .post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(chat(model, false));
        if let Some((name, value)) = auth {
            request = request.header(name, value);
        }
        request.send()
    };
    let bearer = |key: &str| Some(("authorization", format!("Bearer {key}")));
    let x_api_key = |key: &str| Some(("x-api-key", key.to_string()));

    let response = call("/v1/chat/completions", "open", None).await?;
    assert_eq!(response.status(), 401);
    assert_eq!(
        json_of(response).await?["error"]["type"],
        "authentication_error"
    );
    let response = call("/v1/messages", "open", x_api_key("wrong-key-0123456789")).await?;
    assert_eq!(response.status(), 401);
    assert_eq!(
        json_of(response).await?["error"]["type"],
        "authentication_error"
    );

    assert_eq!(
        call(
            "/v1/chat/completions",
            "open",
            bearer("team-a-key-0123456789")
        )
        .await?
        .status(),
        200
    );
    assert_eq!(
        call("/v1/messages", "open", x_api_key("team-a-key-0123456789"))
            .await?
            .status(),
        200
    );
    // A key cannot use a route it was not given, nor a target directly.
    let response = call(
        "/v1/chat/completions",
        "secret",
        bearer("team-a-key-0123456789"),
    )
    .await?;
    assert_eq!(response.status(), 403);
    assert!(
        json_of(response).await?["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("may not use `secret`"))
    );
    assert_eq!(
        call(
            "/v1/chat/completions",
            "p/gpt-4o",
            bearer("team-a-key-0123456789")
        )
        .await?
        .status(),
        403
    );
    // A key without a route list may use everything.
    assert_eq!(
        call(
            "/v1/chat/completions",
            "secret",
            bearer("admin-key-0123456789")
        )
        .await?
        .status(),
        200
    );
    assert_eq!(
        sim.sim.request_count(),
        3,
        "refused requests must not reach the provider"
    );

    // The model list shows a key only what it may use.
    let models = http
        .get(format!("{base}/v1/models"))
        .header("authorization", "Bearer team-a-key-0123456789")
        .send()
        .await?;
    let ids: Vec<String> = json_of(models).await?["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(ids, ["open"]);
    assert_eq!(
        http.get(format!("{base}/v1/models")).send().await?.status(),
        401
    );
    Ok(())
}

/// The admission queue: bounded, ordered by priority, shedding with 429 and
/// Retry-After what cannot run in time.
#[tokio::test]
async fn the_admission_queue_orders_and_sheds() -> TestResult {
    let sim = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    sim.sim.set_latency(bulwark_sim::Latency {
        headers_ms: 0,
        first_token_ms: 0,
        token_interval_ms: 40,
    });
    let yaml = format!(
        "listen: 127.0.0.1:0\nproviders:\n  p: {{ kind: openai, base_url: \"{}/v1\" }}\nroutes:\n  narrow: {{ targets: [p/gpt-4o-mini], admission: {{ max_concurrency: 1, queue: 2 }} }}\n",
        sim.url()
    );
    let gateway = common::start_gateway(&yaml).await?;
    let base = gateway.base.clone();
    let http = reqwest::Client::new();
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let send = |name: &'static str, priority: &'static str| {
        let (http, base, order) = (http.clone(), base.clone(), std::sync::Arc::clone(&order));
        tokio::spawn(async move {
            let response = http
                .post(format!("{base}/v1/chat/completions"))
                .header("content-type", "application/json")
                .header("x-bulwark-priority", priority)
                .body(chat("narrow", false))
                .send()
                .await?;
            let status = response.status().as_u16();
            let retry_after = response.headers().get("retry-after").is_some();
            response.text().await?;
            if status == 200 {
                order.lock().map(|mut o| o.push(name)).ok();
            }
            Ok::<_, reqwest::Error>((status, retry_after))
        })
    };
    let first = send("first", "normal");
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    let low = send("low", "low");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let high = send("high", "high");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    // The queue (2) is full of its betters: a low newcomer is shed at once.
    let (status, retry_after) = send("shed", "low").await??;
    assert_eq!((status, retry_after), (429, true));
    for task in [first, low, high] {
        assert_eq!(task.await??.0, 200);
    }
    let order = order.lock().map(|o| o.clone()).unwrap_or_default();
    assert_eq!(
        order,
        ["first", "high", "low"],
        "high priority runs before an earlier low one"
    );

    // A deadline the queue cannot meet is shed without waiting.
    let running = send("running", "normal");
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    let started = tokio::time::Instant::now();
    let response = http
        .post(format!("{base}/v1/messages"))
        .header("content-type", "application/json")
        .header("x-bulwark-deadline-ms", "50")
        .body(chat("narrow", false))
        .send()
        .await?;
    assert_eq!(response.status(), 429);
    assert!(started.elapsed() < std::time::Duration::from_millis(500));
    assert_eq!(
        json_of(response).await?["error"]["type"],
        "rate_limit_error"
    );
    assert_eq!(running.await??.0, 200);
    let bad = http
        .post(format!("{base}/v1/chat/completions"))
        .header("x-bulwark-priority", "urgent")
        .body(chat("narrow", false))
        .send()
        .await?;
    assert_eq!(bad.status(), 400);
    // The queue shows in the metrics: its waits and what it shed.
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains(r#"bulwark_queue_wait_seconds_count{route="narrow"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"bulwark_shed_total{route="narrow"}"#),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test]
async fn each_key_has_its_own_quota() -> TestResult {
    let sim = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "listen: 127.0.0.1:0\nproviders:\n  p: {{ kind: openai, base_url: \"{}/v1\" }}\nroutes:\n  r: {{ targets: [p/gpt-4o-mini] }}\nkeys:\n  small: {{ key: small-key-0123456789, limits: {{ rpm: 2 }} }}\n  big: {{ key: big-key-012345678901 }}\n",
        sim.url()
    );
    let gateway = common::start_gateway(&yaml).await?;
    let base = gateway.base.clone();
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for key in [
        "small-key-0123456789",
        "small-key-0123456789",
        "small-key-0123456789",
        "big-key-012345678901",
    ] {
        let response = http
            .post(format!("{base}/v1/messages"))
            .header("content-type", "application/json")
            .header("x-api-key", key)
            .body(chat("r", false))
            .send()
            .await?;
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        statuses.push((response.status().as_u16(), retry_after.is_some()));
    }
    assert_eq!(
        statuses,
        [(200, false), (200, false), (429, true), (200, false)]
    );
    assert_eq!(
        sim.sim.request_count(),
        3,
        "a request over its key's quota reached the provider"
    );
    Ok(())
}

#[tokio::test]
async fn the_admin_api_is_behind_the_admin_key() -> TestResult {
    let sim = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "listen: 127.0.0.1:0\nadmin_key: admin-secret-0123456789\nproviders:\n  p: {{ kind: openai, base_url: \"{}/v1\" }}\nroutes:\n  r: {{ targets: [p/gpt-4o-mini], max_retries: 0 }}\nbreaker: {{ consecutive_failures: 1 }}\n",
        sim.url()
    );
    let gateway = common::start_gateway(&yaml).await?;
    let base = gateway.base.clone();
    let http = reqwest::Client::new();
    sim.sim
        .set_faults(vec![FaultRule::always(Fault::status(503))]);
    let _ = http
        .post(format!("{base}/v1/chat/completions"))
        .body(chat("r", false))
        .send()
        .await?;
    assert_eq!(
        http.get(format!("{base}/admin/targets"))
            .send()
            .await?
            .status(),
        401
    );
    let wrong = http
        .get(format!("{base}/admin/targets"))
        .header("authorization", "Bearer not-the-admin-key-000")
        .send()
        .await?;
    assert_eq!(wrong.status(), 401);
    let response = http
        .get(format!("{base}/admin/targets"))
        .header("authorization", "Bearer admin-secret-0123456789")
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let body = json_of(response).await?;
    assert_eq!(body["targets"][0]["target"], "p/gpt-4o-mini");
    assert_eq!(body["targets"][0]["breaker"], "open");
    assert!(
        body["targets"][0]["open_for_ms"]
            .as_u64()
            .is_some_and(|ms| ms > 0)
    );
    Ok(())
}

#[tokio::test]
async fn metrics_are_behind_the_metrics_key_when_one_is_set() -> TestResult {
    let yaml = "listen: 127.0.0.1:0\nadmin_key: admin-secret-0123456789\nmetrics_key: scrape-secret-0123456789\nproviders:\n  p: { kind: openai, base_url: \"http://127.0.0.1:9/v1\" }\nroutes:\n  r: { targets: [p/gpt-4o-mini] }\n";
    let gateway = common::start_gateway(yaml).await?;
    let url = format!("{}/metrics", gateway.base);
    let http = reqwest::Client::new();
    // Target names are in the labels: they are not for anyone who asks.
    let anonymous = http.get(&url).send().await?;
    assert_eq!(anonymous.status(), 401);
    assert!(!anonymous.text().await?.contains("gpt-4o-mini"));
    for key in ["scrape-secret-0123456789", "admin-secret-0123456789"] {
        let scrape = http.get(&url).bearer_auth(key).send().await?;
        assert_eq!(scrape.status(), 200, "{key}");
        assert!(scrape.text().await?.contains("bulwark_"));
    }
    let wrong = http
        .get(&url)
        .bearer_auth("not-the-key-0123456789")
        .send()
        .await?;
    assert_eq!(wrong.status(), 401);

    // Without a metrics key, /metrics stays open, as Prometheus expects.
    let open = common::start_gateway(
        "listen: 127.0.0.1:0\nproviders:\n  p: { kind: openai, base_url: \"http://127.0.0.1:9/v1\" }\nroutes:\n  r: { targets: [p/gpt-4o-mini] }\n",
    )
    .await?;
    let scrape = http.get(format!("{}/metrics", open.base)).send().await?;
    assert_eq!(scrape.status(), 200);
    Ok(())
}

/// An Anthropic client's request in Claude Code's shape: cached system
/// blocks, a mid-conversation system message, adaptive thinking.
fn claude_code_like(stream: bool) -> String {
    json!({
        "model": "main", "max_tokens": 2000, "stream": stream,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Hello"}]},
            {"role": "system", "content": "Plan mode is on."},
            {"role": "user", "content": "Go on."}
        ],
        "thinking": {"type": "adaptive"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}
    })
    .to_string()
}

#[tokio::test]
async fn dropped_features_are_reported_on_answers_and_stream_heads() -> TestResult {
    let s = setup().await?;
    // The primary speaks Gemini, and gemini-2.5-flash reasons: the thinking
    // is mapped, the cache hints and context edits are left out.
    for stream in [false, true] {
        let response = s.post("/v1/messages", claude_code_like(stream)).await?;
        assert_eq!(response.status(), 200, "stream {stream}");
        assert_eq!(
            header(&response, "x-bulwark-target"),
            "primary/gemini-2.5-flash"
        );
        assert_eq!(
            header(&response, "x-bulwark-dropped"),
            "cache_control,context_management",
            "stream {stream}"
        );
    }
    // The Anthropic backup gets the client's own body: nothing is dropped.
    s.primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::status(503))]);
    let response = s.post("/v1/messages", claude_code_like(true)).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-bulwark-fallback"), "true");
    assert_eq!(header(&response, "x-bulwark-dropped"), "");
    Ok(())
}
