//! The in-process `Client` against upstreams whose answers never end: an
//! endless stream of events, or one endless line. Each is cut at its cap
//! (`max_response_bytes`, the SSE decoder's event cap), the attempt fails
//! as a provider fault, and the request moves on to a healthy target. The
//! upstreams are raw HTTP on 127.0.0.1, writing until the gateway hangs up;
//! how much they managed to write shows that nothing was read past the cap.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bulwark::Client;
use bulwark::api::ChatRequest;
use bulwark::error::UpstreamFailure;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod common;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// What an endless upstream sends after its headers, again and again.
#[derive(Clone, Copy)]
enum Endless {
    /// Content events, each complete, and never a terminator.
    Events,
    /// `data: ` and then `x` without end: one line that never finishes.
    Line,
}

/// A raw HTTP/1.1 server that answers 200 with an event stream that never
/// ends, until the reader hangs up.
struct Upstream {
    addr: SocketAddr,
    /// Body bytes written to the socket, over every connection.
    written: Arc<AtomicU64>,
    /// The reader hung up on a connection.
    cut: Arc<AtomicBool>,
}

impl Upstream {
    async fn endless(kind: Endless) -> std::io::Result<Upstream> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let written = Arc::new(AtomicU64::new(0));
        let cut = Arc::new(AtomicBool::new(false));
        let (count, hung_up) = (Arc::clone(&written), Arc::clone(&cut));
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (count, hung_up) = (Arc::clone(&count), Arc::clone(&hung_up));
                tokio::spawn(async move {
                    let _ = pour(socket, kind, &count).await;
                    hung_up.store(true, Ordering::SeqCst);
                });
            }
        });
        Ok(Upstream { addr, written, cut })
    }

    fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Waits until the reader has hung up, then says how much was written.
    async fn written_when_cut(&self) -> Result<u64, Box<dyn std::error::Error>> {
        for _ in 0..500 {
            if self.cut.load(Ordering::SeqCst) {
                return Ok(self.written.load(Ordering::SeqCst));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err("the gateway never hung up on the endless upstream".into())
    }
}

/// Reads the request head (the body is not needed), then writes a 200
/// event stream without a length, piece after piece, until a write fails.
async fn pour(mut socket: TcpStream, kind: Endless, written: &AtomicU64) -> std::io::Result<()> {
    let mut read = Vec::new();
    let mut buf = [0u8; 4096];
    while !read.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        read.extend_from_slice(&buf[..n]);
    }
    socket
        .write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
        )
        .await?;
    let piece = match kind {
        Endless::Events => format!("data: {}\n\n", content_chunk()).repeat(64),
        Endless::Line => {
            socket.write_all(b"data: ").await?;
            "x".repeat(16 * 1024)
        }
    };
    loop {
        socket.write_all(piece.as_bytes()).await?;
        written.fetch_add(piece.len() as u64, Ordering::SeqCst);
    }
}

/// A healthy upstream: one short answer, then close.
async fn healthy() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let finish = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
    let body = format!(
        "data: {}\n\ndata: {finish}\n\ndata: [DONE]\n\n",
        content_chunk()
    );
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                let mut read = Vec::new();
                let mut buf = [0u8; 4096];
                while !read.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    Ok(addr)
}

fn content_chunk() -> String {
    r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}"#.to_string()
}

/// Route `main` over `p/m` (the endless upstream, with `cap` as its
/// `max_response_bytes` if given) and, if given, the healthy `b/m`. Retries
/// are allowed: an answer cut at its cap must not be retried all the same.
/// The attempt timeout is far above what reading to the cap takes, so that
/// only the cap can end the attempt in time.
fn client(
    endless: &Upstream,
    cap: Option<u64>,
    backup: Option<SocketAddr>,
) -> Result<Client, Box<dyn std::error::Error>> {
    let cap = cap.map_or(String::new(), |cap| format!(", max_response_bytes: {cap}"));
    let mut yaml = format!(
        "providers:\n  p: {{ kind: openai, base_url: \"{}\", api_key: k{cap} }}\n",
        endless.url()
    );
    let mut targets = "p/m".to_string();
    if let Some(backup) = backup {
        yaml.push_str(&format!(
            "  b: {{ kind: openai, base_url: \"http://{backup}/v1\", api_key: k }}\n"
        ));
        targets.push_str(", b/m");
    }
    yaml.push_str(&format!(
        "routes:\n  main: {{ targets: [{targets}], max_retries: 2, backoff_base: 1ms, backoff_cap: 2ms, first_token_timeout: 30s, attempt_timeout: 30s, stream_idle_timeout: 30s }}\n"
    ));
    common::client_from_yaml(&yaml)
}

fn request() -> ChatRequest {
    common::request("Hello there", 16)
}

const CAP: u64 = 64 * 1024;
/// What the kernel's socket buffers on loopback can hold on top of what the
/// gateway read: a few MiB. Without a cap, the upstream writes hundreds of
/// MiB a second until the attempt timeout.
const SLACK: u64 = 32 * 1024 * 1024;

#[tokio::test]
async fn an_endless_answer_is_cut_at_max_response_bytes_and_fails_over() -> TestResult {
    for kind in [Endless::Events, Endless::Line] {
        let endless = Upstream::endless(kind).await?;
        let backup = healthy().await?;
        let client = client(&endless, Some(CAP), Some(backup))?;
        let served = tokio::time::timeout(Duration::from_secs(10), client.chat(request()))
            .await
            .map_err(|_| "the endless answer was not cut")??;
        assert_eq!(served.target, "b/m");
        assert_eq!(served.attempts, 2, "the cut answer was retried");
        assert_eq!(
            served.attempt_log[0].error_class.as_deref(),
            Some("too_large")
        );
        assert!(format!("{:?}", served.value.content).contains("Hello"));
        let written = endless.written_when_cut().await?;
        assert!(written < CAP + SLACK, "{written} bytes were read");
    }
    Ok(())
}

#[tokio::test]
async fn an_endless_answer_fails_with_a_clear_error_when_no_target_is_left() -> TestResult {
    let endless = Upstream::endless(Endless::Events).await?;
    let client = client(&endless, Some(CAP), None)?;
    let result = tokio::time::timeout(Duration::from_secs(10), client.chat(request()))
        .await
        .map_err(|_| "the endless answer was not cut")?;
    let Err(failed) = result else {
        return Err("an endless answer was served".into());
    };
    assert_eq!(failed.attempts, 1, "the cut answer was retried");
    assert_eq!(failed.failures[0].failure, UpstreamFailure::TooLarge);
    assert!(
        failed.failures[0]
            .message
            .contains("the answer exceeded max_response_bytes (65536 bytes)"),
        "{}",
        failed.failures[0].message
    );
    assert!(
        failed.error.message.contains("max_response_bytes"),
        "{}",
        failed.error.message
    );
    assert!((500..600).contains(&failed.error.status));
    Ok(())
}

#[tokio::test]
async fn an_endless_stream_relayed_to_a_client_ends_at_the_cap() -> TestResult {
    let endless = Upstream::endless(Endless::Events).await?;
    let client = client(&endless, Some(CAP), None)?;
    let served = client.stream(request()).await?;
    let mut stream = served.value;
    // The stream is the reader's, and dropped with it, as a relay does.
    let reading = async move {
        let mut events = 0u64;
        while let Some(item) = stream.next().await {
            match item {
                Ok(_) => events += 1,
                Err(error) => return Ok((events, error)),
            }
        }
        Err("the endless stream ended cleanly")
    };
    let (events, error) = tokio::time::timeout(Duration::from_secs(10), reading)
        .await
        .map_err(|_| "the endless stream was not cut")??;
    assert!(events > 0, "the client saw the answer begin");
    assert_eq!(error.failure, UpstreamFailure::TooLarge);
    assert!(error.message.contains("max_response_bytes"), "{error}");
    let written = endless.written_when_cut().await?;
    assert!(written < CAP + SLACK, "{written} bytes were read");
    Ok(())
}

#[tokio::test]
async fn one_endless_line_is_cut_at_the_event_cap() -> TestResult {
    // The default max_response_bytes (64 MiB) is above the event cap: the
    // decoder's own cap ends it, at 8 MiB.
    let endless = Upstream::endless(Endless::Line).await?;
    let backup = healthy().await?;
    let with_backup = client(&endless, None, Some(backup))?;
    let served = tokio::time::timeout(Duration::from_secs(20), with_backup.chat(request()))
        .await
        .map_err(|_| "the endless line was not cut")??;
    assert_eq!(served.target, "b/m");
    assert_eq!(served.attempts, 2, "the cut answer was retried");
    assert_eq!(
        served.attempt_log[0].error_class.as_deref(),
        Some("too_large")
    );
    let written = endless.written_when_cut().await?;
    let event_cap = bulwark::sse::MAX_EVENT_BYTES as u64;
    assert!(
        written >= event_cap,
        "cut at {written} bytes, before the cap"
    );
    assert!(written < event_cap + SLACK, "{written} bytes were read");

    // Alone on its route, its failure says which cap cut it.
    let alone = client(&endless, None, None)?;
    let Err(failed) = alone.chat(request()).await else {
        return Err("an endless line was served".into());
    };
    assert!(
        failed.failures[0]
            .message
            .contains("exceeded 8388608 bytes before it ended"),
        "{}",
        failed.failures[0].message
    );
    Ok(())
}
