//! The in-process `Client` against upstreams that misbehave on purpose:
//! ones that quote the gateway's key back inside a 200 stream, and ones
//! that redirect elsewhere. Each upstream is a few lines of raw HTTP on
//! 127.0.0.1, so that it can answer what no real provider (nor the
//! simulator) would.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bulwark::Client;
use bulwark::api::ChatRequest;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

mod common;
mod raw_http;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const KEY: &str = "sk-live-SECRETabcdef0123456789";

/// Every way the tests have a provider quote `KEY`.
const QUOTES: [&str; 5] = [
    KEY,
    "sk-live-SECR...6789",
    "sk-live-SECR…6789",
    "sk-live-SE********************6789",
    "sk-l...",
];

/// A raw HTTP/1.1 server that answers every request with `response`, and
/// records each request it read.
struct Upstream {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    connections: Arc<AtomicUsize>,
}

impl Upstream {
    async fn start(response: String) -> std::io::Result<Upstream> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (seen, count) = (Arc::clone(&requests), Arc::clone(&connections));
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let (seen, response) = (Arc::clone(&seen), response.clone());
                tokio::spawn(async move {
                    let _ = answer(socket, &response, &seen).await;
                });
            }
        });
        Ok(Upstream {
            addr,
            requests,
            connections,
        })
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Reads one request (head and `content-length` body), records it, writes
/// `response` and closes.
async fn answer(
    mut socket: TcpStream,
    response: &str,
    seen: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let Some(read) = raw_http::read_request(&mut socket).await? else {
        return Ok(());
    };
    seen.lock()
        .await
        .push(String::from_utf8_lossy(&read).into_owned());
    socket.write_all(response.as_bytes()).await?;
    socket.shutdown().await
}

/// A 200 event stream with `events` (each an SSE `data:` payload).
fn sse(events: &[String]) -> String {
    let mut body = String::new();
    for event in events {
        body.push_str(&format!("data: {event}\n\n"));
    }
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn content_chunk() -> String {
    r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}"#.to_string()
}

/// An OpenAI-style error event quoting the key as `quote`.
fn error_event(quote: &str) -> String {
    serde_json::json!({"error": {
        "message": format!("Incorrect API key provided: {quote}. You can find your API key at https://example.invalid."),
        "type": "invalid_request_error",
        "code": "invalid_api_key",
    }})
    .to_string()
}

/// One OpenAI-format provider at `url` holding `KEY`, behind route `main`
/// with no retries.
fn client(kind: &str, url: &str) -> Result<Client, Box<dyn std::error::Error>> {
    let yaml = format!(
        "providers:\n  p: {{ kind: {kind}, base_url: \"{url}\", api_key: {KEY} }}\nroutes:\n  main: {{ targets: [p/m], max_retries: 0, first_token_timeout: 5s, attempt_timeout: 5s, stream_idle_timeout: 5s }}\n"
    );
    common::client_from_yaml(&yaml)
}

fn request() -> ChatRequest {
    common::request("Hello there", 16)
}

/// Whether `text` holds the key or any of the ways the tests quote it (not
/// merely "6789", which a timestamp may hold).
fn leaks(text: &str) -> bool {
    ["SECR", "sk-l", ".6789", "…6789", "*6789"]
        .iter()
        .any(|part| text.contains(part))
}

#[tokio::test]
async fn a_key_quoted_in_an_error_event_before_any_content_reaches_nobody() -> TestResult {
    for quote in QUOTES {
        let upstream = Upstream::start(sse(&[error_event(quote)])).await?;
        let client = client("openai", &format!("{}/v1", upstream.url()))?;
        let Err(failed) = client.chat(request()).await else {
            return Err("an error event was served as an answer".into());
        };
        // The error, every failure, the attempt log: all of it.
        let everything = format!("{failed:?} {}", failed.error.message);
        assert!(!leaks(&everything), "{quote}: {everything}");
        assert!(
            failed.failures[0]
                .message
                .contains("Incorrect API key provided: [redacted]"),
            "{quote}: the rest of the message is kept: {}",
            failed.failures[0].message
        );
        // The upstream did get the key: it is the one quoting it.
        assert!(
            upstream
                .requests
                .lock()
                .await
                .first()
                .is_some_and(|r| r.contains(KEY))
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_key_quoted_in_an_error_event_after_content_reaches_nobody() -> TestResult {
    for quote in QUOTES {
        let upstream = Upstream::start(sse(&[content_chunk(), error_event(quote)])).await?;
        let client = client("openai", &format!("{}/v1", upstream.url()))?;
        let served = client.stream(request()).await?;
        let mut stream = served.value;
        let mut shown = String::new();
        let mut ended_with_error = false;
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => shown.push_str(&format!("{event:?}")),
                Err(error) => {
                    ended_with_error = true;
                    shown.push_str(&format!("{error:?} {error} {:?}", error.to_api_error()));
                }
            }
        }
        assert!(ended_with_error, "{quote}: the stream ended cleanly");
        assert!(shown.contains("Hello"), "{shown}");
        assert!(!leaks(&shown), "{quote}: {shown}");
    }
    Ok(())
}

#[tokio::test]
async fn a_key_quoted_by_a_garbled_chunk_or_an_error_status_reaches_nobody() -> TestResult {
    // The decoder's own error quotes the string it could not read.
    let garbled = sse(&[format!(r#"{{"choices":"{KEY}"}}"#)]);
    // Only the whole key used to be redacted from an error status.
    let body = error_event("sk-live-SECR...6789");
    let status = format!(
        "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    for response in [garbled, status] {
        let upstream = Upstream::start(response).await?;
        let client = client("openai", &format!("{}/v1", upstream.url()))?;
        let Err(failed) = client.chat(request()).await else {
            return Err("a failure was served as an answer".into());
        };
        let everything = format!("{failed:?} {}", failed.error.message);
        assert!(!leaks(&everything), "{everything}");
        assert!(everything.contains("[redacted]"), "{everything}");
    }
    Ok(())
}

#[tokio::test]
async fn redirects_are_not_followed_and_the_key_stays_home() -> TestResult {
    for kind in ["anthropic", "gemini", "openai"] {
        let elsewhere = Upstream::start(sse(&[content_chunk(), "[DONE]".to_string()])).await?;
        let redirect = format!(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: {}/v1/chat/completions\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            elsewhere.url()
        );
        let upstream = Upstream::start(redirect).await?;
        let base = match kind {
            "openai" => format!("{}/v1", upstream.url()),
            _ => upstream.url(),
        };
        // Retries allowed: a redirect must not be retried all the same.
        let yaml = format!(
            "providers:\n  p: {{ kind: {kind}, base_url: \"{base}\", api_key: {KEY} }}\nroutes:\n  main: {{ targets: [p/m], max_retries: 2, backoff_base: 1ms, backoff_cap: 2ms }}\n"
        );
        let client = common::client_from_yaml(&yaml)?;
        let Err(failed) = client.chat(request()).await else {
            return Err(format!("{kind}: a redirect was followed to an answer").into());
        };
        assert_eq!(
            elsewhere.connections.load(Ordering::SeqCst),
            0,
            "{kind}: the redirect was followed"
        );
        assert!(elsewhere.requests.lock().await.is_empty());
        assert_eq!(
            upstream.requests.lock().await.len(),
            1,
            "{kind}: one attempt, no retry"
        );
        assert!(
            (500..600).contains(&failed.error.status),
            "{kind}: {}",
            failed.error.status
        );
        assert!(
            failed.error.message.contains("p/m")
                && failed
                    .error
                    .message
                    .contains("redirected to another location"),
            "{kind}: {}",
            failed.error.message
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_redirect_fails_over_to_the_next_target() -> TestResult {
    let finish = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
    let backup = Upstream::start(sse(&[
        content_chunk(),
        finish.to_string(),
        "[DONE]".to_string(),
    ]))
    .await?;
    let redirect = format!(
        "HTTP/1.1 308 Permanent Redirect\r\nlocation: {}/v1/chat/completions\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        backup.url()
    );
    let primary = Upstream::start(redirect).await?;
    let yaml = format!(
        "providers:\n  p: {{ kind: openai, base_url: \"{}/v1\", api_key: {KEY} }}\n  b: {{ kind: openai, base_url: \"{}/v1\", api_key: other-key }}\nroutes:\n  main: {{ targets: [p/m, b/m], max_retries: 2, backoff_base: 1ms, backoff_cap: 2ms }}\n",
        primary.url(),
        backup.url()
    );
    let client = common::client_from_yaml(&yaml)?;
    let served = client.chat(request()).await?;
    assert_eq!(served.target, "b/m");
    assert_eq!(served.attempts, 2, "the redirect was not retried");
    let to_backup = backup.requests.lock().await;
    assert_eq!(to_backup.len(), 1, "only the backup's own attempt");
    assert!(!to_backup.iter().any(|r| r.contains(KEY)));
    Ok(())
}
