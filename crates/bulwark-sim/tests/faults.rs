//! Fault injection: status faults with provider bodies, timing and stream faults.

mod common;

use std::time::Duration;

use bulwark_sim::{Fault, FaultRule, Format, SimConfig, StatusFault};
use common::{ANTHROPIC, post, sse, start, start_with};
use serde_json::{Value, json};
use tokio::time::Instant;

fn openai_body(stream: bool) -> Value {
    json!({"model": "gpt-4o-mini", "stream": stream,
        "messages": [{"role": "user", "content": "one two three four"}]})
}

fn anthropic_body(stream: bool) -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "stream": stream,
        "messages": [{"role": "user", "content": "one two three four"}]})
}

fn gemini_body() -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": "one two three four"}]}]})
}

struct Urls {
    openai: String,
    anthropic: String,
    gemini: String,
    gemini_stream: String,
}

fn urls(base: &str) -> Urls {
    Urls {
        openai: format!("{base}/v1/chat/completions"),
        anthropic: format!("{base}/v1/messages"),
        gemini: format!("{base}/v1beta/models/gemini-2.5-flash:generateContent"),
        gemini_stream: format!(
            "{base}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        ),
    }
}

#[tokio::test]
async fn openai_status_bodies() {
    let server = start().await;
    let u = urls(&server.url());
    let cases = [
        ("status=429", 429, "requests", Some("rate_limit_exceeded")),
        (
            "status=429;code=insufficient_quota",
            429,
            "insufficient_quota",
            Some("insufficient_quota"),
        ),
        ("status=500", 500, "server_error", None),
        ("status=503", 503, "server_error", None),
        (
            "status=401",
            401,
            "invalid_request_error",
            Some("invalid_api_key"),
        ),
        (
            "status=404",
            404,
            "invalid_request_error",
            Some("model_not_found"),
        ),
        (
            "status=400;code=context_length_exceeded",
            400,
            "invalid_request_error",
            Some("context_length_exceeded"),
        ),
    ];
    for (spec, status, ty, code) in cases {
        let r = post(&u.openai, &[("x-sim-fault", spec)], &openai_body(false)).await;
        assert_eq!(r.status, status, "{spec}");
        let e = &r.json()["error"];
        assert_eq!(e["type"], ty, "{spec}");
        assert_eq!(e["code"], json!(code), "{spec}");
        assert_eq!(e["param"], Value::Null);
        assert!(e["message"].as_str().unwrap().len() > 5);
        assert!(r.header("x-request-id").is_some());
    }
    let r = post(
        &u.openai,
        &[(
            "x-sim-fault",
            "status=429;retry_after=3;retry_after_ms=2500",
        )],
        &openai_body(false),
    )
    .await;
    assert_eq!(r.header("retry-after"), Some("3"));
    assert_eq!(r.header("retry-after-ms"), Some("2500"));
    assert_eq!(r.header("x-ratelimit-remaining-requests"), Some("0"));
    assert_eq!(r.header("x-ratelimit-reset-requests"), Some("3s"));
}

#[tokio::test]
async fn anthropic_status_table() {
    let server = start().await;
    let u = urls(&server.url());
    let table = [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "billing_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
    ];
    for (status, ty) in table {
        let spec = format!("status={status}");
        let headers = [ANTHROPIC[0], ("x-sim-fault", spec.as_str())];
        let r = post(&u.anthropic, &headers, &anthropic_body(false)).await;
        assert_eq!(r.status, status);
        let v = r.json();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], ty, "{status}");
        let rid = v["request_id"].as_str().unwrap();
        assert_eq!(r.header("request-id"), Some(rid));
    }
    let headers = [
        ANTHROPIC[0],
        ("x-sim-fault", "status=429;retry_after=7;should_retry=false"),
    ];
    let r = post(&u.anthropic, &headers, &anthropic_body(false)).await;
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.header("x-should-retry"), Some("false"));
    assert_eq!(
        r.header("anthropic-ratelimit-requests-remaining"),
        Some("0")
    );
}

#[tokio::test]
async fn gemini_status_bodies() {
    let server = start().await;
    let u = urls(&server.url());
    let table = [
        (400, "INVALID_ARGUMENT"),
        (403, "PERMISSION_DENIED"),
        (404, "NOT_FOUND"),
        (500, "INTERNAL"),
        (503, "UNAVAILABLE"),
        (504, "DEADLINE_EXCEEDED"),
    ];
    for (status, name) in table {
        let spec = format!("status={status}");
        let r = post(&u.gemini, &[("x-sim-fault", spec.as_str())], &gemini_body()).await;
        assert_eq!(r.status, status);
        let e = &r.json()["error"];
        assert_eq!(e["code"], status);
        assert_eq!(e["status"], name);
        assert!(e["message"].is_string());
    }
    let r = post(
        &u.gemini,
        &[("x-sim-fault", "status=429;retry_after=41")],
        &gemini_body(),
    )
    .await;
    let e = &r.json()["error"];
    assert_eq!(e["status"], "RESOURCE_EXHAUSTED");
    let details = e["details"].as_array().unwrap();
    let quota = details
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.QuotaFailure")
        .unwrap();
    assert!(
        quota["violations"][0]["quotaId"]
            .as_str()
            .unwrap()
            .contains("PerMinute")
    );
    let retry = details
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.RetryInfo")
        .unwrap();
    assert_eq!(retry["retryDelay"], "41s");
    assert!(r.header("retry-after").is_none());

    let spec = "status=429;quota_id=GenerateRequestsPerDayPerProjectPerModel-FreeTier";
    let r = post(&u.gemini, &[("x-sim-fault", spec)], &gemini_body()).await;
    let details = r.json()["error"]["details"].clone();
    assert!(details.to_string().contains("PerDay"));
}

#[tokio::test]
async fn retry_after_date_and_html() {
    let server = start().await;
    let u = urls(&server.url());
    let r = post(
        &u.openai,
        &[("x-sim-fault", "status=503;retry_after_date=30")],
        &openai_body(false),
    )
    .await;
    let date = httpdate::parse_http_date(r.header("retry-after").unwrap()).unwrap();
    let ahead = date.duration_since(std::time::SystemTime::now()).unwrap();
    assert!(ahead > Duration::from_secs(25) && ahead <= Duration::from_secs(31));

    let r = post(
        &u.openai,
        &[("x-sim-fault", "status=522;html")],
        &openai_body(false),
    )
    .await;
    assert_eq!(r.status, 522);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert_eq!(r.header("server"), Some("cloudflare"));
    assert!(r.text.contains("522: Connection timed out"));
}

#[tokio::test]
async fn hang_delays_headers() {
    let server = start().await;
    let u = urls(&server.url());
    let t = Instant::now();
    let r = post(
        &u.openai,
        &[("x-sim-fault", "hang=150")],
        &openai_body(false),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn stall_pauses_then_completes() {
    let server = start().await;
    let u = urls(&server.url());
    let t = Instant::now();
    let r = post(
        &u.openai,
        &[("x-sim-fault", "stall=2:150")],
        &openai_body(true),
    )
    .await;
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert_eq!(sse(&r.text).last().unwrap().data, "[DONE]");
}

#[tokio::test]
async fn cut_ends_without_terminator() {
    let server = start().await;
    let u = urls(&server.url());
    let r = post(&u.openai, &[("x-sim-fault", "cut=3")], &openai_body(true)).await;
    assert_eq!(r.status, 200);
    let events = sse(&r.text);
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| e.data != "[DONE]"));

    let headers = [ANTHROPIC[0], ("x-sim-fault", "cut=4")];
    let r = post(&u.anthropic, &headers, &anthropic_body(true)).await;
    let events = sse(&r.text);
    assert_eq!(events.len(), 4);
    assert!(
        events
            .iter()
            .all(|e| e.name.as_deref() != Some("message_stop"))
    );

    // Past the end, the cut still drops the terminator.
    let r = post(&u.openai, &[("x-sim-fault", "cut=999")], &openai_body(true)).await;
    assert!(sse(&r.text).iter().all(|e| e.data != "[DONE]"));

    // Non-streamed bodies are cut at the midpoint.
    let r = post(&u.openai, &[("x-sim-fault", "cut=1")], &openai_body(false)).await;
    assert!(serde_json::from_str::<Value>(&r.text).is_err());
}

#[tokio::test]
async fn malformed_chunk() {
    let server = start().await;
    let u = urls(&server.url());
    let r = post(
        &u.openai,
        &[("x-sim-fault", "malformed=2")],
        &openai_body(true),
    )
    .await;
    let events = sse(&r.text);
    assert!(serde_json::from_str::<Value>(&events[1].data).is_ok());
    assert!(serde_json::from_str::<Value>(&events[2].data).is_err());
    assert_eq!(events.last().unwrap().data, "[DONE]");

    let r = post(
        &u.gemini_stream,
        &[("x-sim-fault", "malformed=0")],
        &gemini_body(),
    )
    .await;
    assert!(serde_json::from_str::<Value>(&sse(&r.text)[0].data).is_err());

    let r = post(&u.gemini, &[("x-sim-fault", "malformed=0")], &gemini_body()).await;
    assert_eq!(r.status, 200);
    assert!(serde_json::from_str::<Value>(&r.text).is_err());
}

#[tokio::test]
async fn error_events_in_stream() {
    let server = start().await;
    let u = urls(&server.url());
    let r = post(
        &u.openai,
        &[("x-sim-fault", "error_event=2")],
        &openai_body(true),
    )
    .await;
    assert_eq!(r.status, 200);
    let events = sse(&r.text);
    assert_eq!(events.len(), 3);
    assert!(events[2].json()["error"]["message"].is_string());

    let headers = [ANTHROPIC[0], ("x-sim-fault", "error_event=4")];
    let r = post(&u.anthropic, &headers, &anthropic_body(true)).await;
    let events = sse(&r.text);
    let last = events.last().unwrap();
    assert_eq!(last.name.as_deref(), Some("error"));
    assert_eq!(
        last.json(),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );

    let r = post(
        &u.gemini_stream,
        &[("x-sim-fault", "error_event=1:500")],
        &gemini_body(),
    )
    .await;
    let events = sse(&r.text);
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].json()["error"]["status"], "INTERNAL");

    // Without a stream the error becomes the HTTP status.
    let headers = [ANTHROPIC[0], ("x-sim-fault", "error_event=1")];
    let r = post(&u.anthropic, &headers, &anthropic_body(false)).await;
    assert_eq!(r.status, 529);
}

#[tokio::test]
async fn connection_reset_fails_the_request() {
    let server = start().await;
    let u = urls(&server.url());
    let result = reqwest::Client::new()
        .post(&u.openai)
        .header("x-sim-fault", "connection_reset")
        .body(openai_body(false).to_string())
        .send()
        .await;
    let failed = match result {
        Err(_) => true,
        Ok(resp) => resp.text().await.is_err(),
    };
    assert!(failed);
    // The server keeps serving afterwards.
    assert_eq!(post(&u.openai, &[], &openai_body(false)).await.status, 200);
}

#[tokio::test]
async fn latency_header_paces_stream() {
    let server = start().await;
    let u = urls(&server.url());
    let t = Instant::now();
    let r = post(
        &u.openai,
        &[("x-sim-latency", "first_token_ms=60,token_interval_ms=20")],
        &openai_body(true),
    )
    .await;
    // 60 ms + 6 more words * 20 ms.
    assert!(
        t.elapsed() >= Duration::from_millis(180),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(sse(&r.text).last().unwrap().data, "[DONE]");
}

#[tokio::test]
async fn a_complete_answer_takes_as_long_as_its_stream() {
    let server = start().await;
    let u = urls(&server.url());
    let pacing = ("x-sim-latency", "first_token_ms=60,token_interval_ms=20");
    for (url, headers, body) in [
        (&u.openai, vec![pacing], openai_body(false)),
        (
            &u.anthropic,
            vec![pacing, ("anthropic-version", "2023-06-01")],
            anthropic_body(false),
        ),
    ] {
        let t = Instant::now();
        let r = post(url, &headers, &body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        // As streamed: 60 ms, then 20 ms for each of at least 6 more words.
        assert!(
            t.elapsed() >= Duration::from_millis(180),
            "{url}: {:?}",
            t.elapsed()
        );
    }
}

/// Configured latency paces the stream, not the headers. Both checks hold
/// on a busy machine: headers must arrive well before a first token that
/// is a whole minute away (once they had to beat 100 ms of real time), and
/// the body's wait is a lower bound, which slowness cannot break.
#[tokio::test]
async fn configured_latency_and_streamed_timing() {
    let first_token_after = |first_token_ms| SimConfig {
        latency: bulwark_sim::Latency {
            headers_ms: 0,
            first_token_ms,
            token_interval_ms: 0,
        },
        ..SimConfig::default()
    };
    // Headers arrive before the first-token delay has passed.
    let server = start_with(first_token_after(60_000)).await;
    let u = urls(&server.url());
    let headers = tokio::time::timeout(
        Duration::from_secs(10),
        reqwest::Client::new()
            .post(&u.openai)
            .body(openai_body(true).to_string())
            .send(),
    )
    .await
    .expect("the headers waited for the first token")
    .unwrap();
    assert_eq!(headers.status(), 200);

    // The body waits for it.
    let server = start_with(first_token_after(100)).await;
    let u = urls(&server.url());
    let t = Instant::now();
    let resp = reqwest::Client::new()
        .post(&u.openai)
        .body(openai_body(true).to_string())
        .send()
        .await
        .unwrap();
    resp.text().await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn rules_match_count_and_header_wins() {
    let server = start().await;
    let u = urls(&server.url());
    server.sim.set_faults(vec![
        FaultRule::always(Fault::status(529))
            .for_format(Format::Anthropic)
            .times(2),
        FaultRule::always(Fault::Status(StatusFault {
            retry_after: Some(1),
            ..StatusFault::new(429)
        }))
        .for_model("gpt-4o"),
        FaultRule::always(Fault::status(500)).with_probability(0.0),
    ]);
    for _ in 0..2 {
        let r = post(&u.anthropic, &ANTHROPIC, &anthropic_body(false)).await;
        assert_eq!(r.status, 529);
    }
    assert_eq!(
        post(&u.anthropic, &ANTHROPIC, &anthropic_body(false))
            .await
            .status,
        200
    );
    assert_eq!(server.sim.faults()[0].count, Some(0));

    let mut body = openai_body(false);
    assert_eq!(post(&u.openai, &[], &body).await.status, 200);
    body["model"] = json!("gpt-4o");
    let r = post(&u.openai, &[], &body).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    let r = post(&u.openai, &[("x-sim-fault", "status=503")], &body).await;
    assert_eq!(r.status, 503);

    let r = post(&u.openai, &[("x-sim-fault", "explode=1")], &body).await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("x-sim-fault")
    );
}

#[tokio::test]
async fn stream_rule_only_hits_streams() {
    let server = start().await;
    let u = urls(&server.url());
    server
        .sim
        .add_fault(FaultRule::always(Fault::cut(1)).for_stream(true));
    let r = post(&u.openai, &[], &openai_body(false)).await;
    assert!(serde_json::from_str::<Value>(&r.text).is_ok());
    let r = post(&u.openai, &[], &openai_body(true)).await;
    assert_eq!(sse(&r.text).len(), 1);
    server.sim.clear_faults();
    let r = post(&u.openai, &[], &openai_body(true)).await;
    assert_eq!(sse(&r.text).last().unwrap().data, "[DONE]");
}

#[tokio::test]
async fn api_key_enforced_per_provider() {
    let config = SimConfig {
        api_key: Some("secret".into()),
        ..SimConfig::default()
    };
    let server = start_with(config).await;
    let u = urls(&server.url());
    let r = post(
        &u.openai,
        &[("authorization", "Bearer wrong")],
        &openai_body(false),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "invalid_api_key");
    let r = post(
        &u.openai,
        &[("authorization", "Bearer secret")],
        &openai_body(false),
    )
    .await;
    assert_eq!(r.status, 200);

    let r = post(&u.anthropic, &ANTHROPIC, &anthropic_body(false)).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["type"], "authentication_error");
    let headers = [ANTHROPIC[0], ("x-api-key", "secret")];
    assert_eq!(
        post(&u.anthropic, &headers, &anthropic_body(false))
            .await
            .status,
        200
    );

    let r = post(&u.gemini, &[], &gemini_body()).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["status"], "UNAUTHENTICATED");
    let keyed = format!("{}?key=secret", u.gemini);
    assert_eq!(post(&keyed, &[], &gemini_body()).await.status, 200);
    let headers = [("x-goog-api-key", "secret")];
    assert_eq!(post(&u.gemini, &headers, &gemini_body()).await.status, 200);
}

#[tokio::test]
async fn strict_models_404_per_provider() {
    let config = SimConfig {
        strict_models: true,
        ..SimConfig::default()
    };
    let server = start_with(config).await;
    let u = urls(&server.url());
    let mut body = openai_body(false);
    body["model"] = json!("nope");
    let r = post(&u.openai, &[], &body).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "model_not_found");
    let mut body = anthropic_body(false);
    body["model"] = json!("nope");
    let r = post(&u.anthropic, &ANTHROPIC, &body).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["type"], "not_found_error");
    let url = format!("{}/v1beta/models/nope:generateContent", server.url());
    let r = post(&url, &[], &gemini_body()).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["status"], "NOT_FOUND");
    assert_eq!(post(&u.gemini, &[], &gemini_body()).await.status, 200);
}
