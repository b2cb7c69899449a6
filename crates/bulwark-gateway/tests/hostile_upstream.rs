//! The gateway over HTTP in front of an upstream that misbehaves on purpose:
//! it quotes the gateway's key inside a 200 stream, or redirects elsewhere.
//! Whatever the front door and mode, the client sees neither the key nor a
//! fragment of it, and never a 3xx.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

mod common;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const KEY: &str = "sk-ant-api03-SECRETabcdef0123456789";

/// Serves `app` on 127.0.0.1; returns its base URL.
async fn serve(app: Router) -> Result<String, Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(base)
}

/// An Anthropic stream: its start, optionally a word, then an error event
/// quoting the key as `quote`.
fn anthropic_stream(with_content: bool, quote: &str) -> String {
    let mut events = vec![(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [], "stop_reason": null, "usage": {"input_tokens": 3, "output_tokens": 0}}}),
    )];
    if with_content {
        events.push((
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ));
        events.push((
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
        ));
    }
    events.push((
        "error",
        json!({"type": "error", "error": {"type": "authentication_error", "message": format!("invalid x-api-key {quote} for this organization")}}),
    ));
    events
        .iter()
        .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
        .collect()
}

/// Whether `text` holds the key or any of the ways the tests quote it (not
/// merely "6789", which an id or a timestamp may hold).
fn leaks(text: &str) -> bool {
    ["SECR", "sk-ant-api03", "sk-ant…", ".6789", "…6789"]
        .iter()
        .any(|part| text.contains(part))
}

#[tokio::test]
async fn a_key_quoted_in_a_200_stream_reaches_no_client() -> TestResult {
    let http = reqwest::Client::new();
    for quote in [KEY, "sk-ant-api03-SECR...6789", "sk-ant…6789"] {
        for with_content in [false, true] {
            let body = anthropic_stream(with_content, quote);
            let upstream = serve(Router::new().fallback(move || {
                let body = body.clone();
                async move { ([(header::CONTENT_TYPE, "text/event-stream")], body) }
            }))
            .await?;
            let gateway = common::start_gateway(&format!(
                "listen: 127.0.0.1:0\nproviders:\n  p: {{ kind: anthropic, base_url: \"{upstream}\", api_key: {KEY} }}\nroutes:\n  main: {{ targets: [p/m], max_retries: 0 }}\n"
            ))
            .await?;
            for (path, stream) in [
                ("/v1/messages", true),
                ("/v1/messages", false),
                ("/v1/chat/completions", true),
                ("/v1/chat/completions", false),
            ] {
                let request = json!({
                    "model": "main",
                    "max_tokens": 16,
                    "stream": stream,
                    "messages": [{"role": "user", "content": "Hello there"}],
                });
                let response = http
                    .post(format!("{}{path}", gateway.base))
                    .header("anthropic-version", "2023-06-01")
                    .header("content-type", "application/json")
                    .body(request.to_string())
                    .send()
                    .await?;
                let status = response.status();
                let headers = format!("{:?}", response.headers());
                let text = response.text().await?;
                let case = format!("{quote} content={with_content} {path} stream={stream}");
                assert!(!leaks(&text), "{case}: {status} {text}");
                assert!(!leaks(&headers), "{case}: {headers}");
                // The client does learn that the upstream failed.
                assert!(
                    !status.is_success() || text.contains("[redacted]"),
                    "{case}: {status} {text}"
                );
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_redirecting_upstream_is_a_5xx_and_its_target_is_never_called() -> TestResult {
    let called = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&called);
    let elsewhere = serve(Router::new().fallback(move |headers: HeaderMap| {
        let seen = Arc::clone(&seen);
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            // Whatever it is sent, the key above all, would be recorded here.
            let _ = headers;
            StatusCode::OK
        }
    }))
    .await?;
    let location = format!("{elsewhere}/v1/messages");
    let upstream = serve(Router::new().fallback(move || {
        let location = location.clone();
        async move {
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, location)],
            )
                .into_response()
        }
    }))
    .await?;
    let gateway = common::start_gateway(&format!(
        "listen: 127.0.0.1:0\nproviders:\n  p: {{ kind: anthropic, base_url: \"{upstream}\", api_key: {KEY} }}\nroutes:\n  main: {{ targets: [p/m], max_retries: 1, backoff_base: 1ms }}\n"
    ))
    .await?;
    // The test's own client must not follow anything either.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let response = http
        .post(format!("{}/v1/messages", gateway.base))
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(json!({"model": "main", "max_tokens": 16, "messages": [{"role": "user", "content": "Hello"}]}).to_string())
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    assert!(status.is_server_error(), "{status} {text}");
    assert!(
        text.contains("p/m") && text.contains("redirected to another location"),
        "{text}"
    );
    assert_eq!(
        called.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
    Ok(())
}
