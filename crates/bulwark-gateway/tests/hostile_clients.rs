//! Clients that try to hold the gateway's sockets, memory or attention:
//! slowloris headers, idle keep-alive connections, more connections than
//! allowed, unauthenticated uploads and trickled bodies (`server:` config).

mod common;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::{Running, start_gateway};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Generous: the server's own timeouts in these tests are sub-second, and
/// this only has to tell "closed" or "answered" from "held forever" on a
/// busy machine.
const PATIENCE: Duration = Duration::from_secs(10);

/// A provider nobody reaches: these tests stop before the engine.
const PROVIDERS: &str = "providers:\n  p: { kind: openai, base_url: \"http://127.0.0.1:9/v1\" }\nroutes:\n  r: { targets: [p/gpt-4o-mini] }\n";

async fn gateway(extra: &str) -> Result<Running, Box<dyn std::error::Error>> {
    start_gateway(&format!("listen: 127.0.0.1:0\n{PROVIDERS}{extra}")).await
}

fn address(running: &Running) -> String {
    running.base.trim_start_matches("http://").to_string()
}

/// Reads until the connection closes; `None` if it is still open after
/// `within`. A reset counts as closed.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut read = Vec::new();
    let until_closed = async {
        let mut buffer = [0_u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => read.extend_from_slice(&buffer[..n]),
            }
        }
    };
    tokio::time::timeout(within, until_closed).await.ok()?;
    Some(read)
}

/// The status line and headers of the next response; `None` if none came
/// within `within` (or the connection closed first).
async fn response_head(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut read = Vec::new();
    let head = async {
        let mut buffer = [0_u8; 4096];
        loop {
            if let Some(end) = read.windows(4).position(|w| w == b"\r\n\r\n") {
                return Some(String::from_utf8_lossy(&read[..end]).into_owned());
            }
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => read.extend_from_slice(&buffer[..n]),
            }
        }
    };
    tokio::time::timeout(within, head).await.ok().flatten()
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: bulwark\r\n\r\n";

#[tokio::test]
async fn slowloris_connections_are_closed_after_the_header_timeout() -> TestResult {
    let running = gateway("server: { header_timeout: 200ms }\n").await?;
    let address = address(&running);
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut stream = TcpStream::connect(&address).await?;
        stream
            .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: bulwark\r\nx-slow: ")
            .await?;
        slow.push(stream);
    }
    // Meanwhile normal clients are served, each on a fresh connection: a
    // probe, and a chat request the engine answers (its provider is down).
    let http = reqwest::Client::new();
    for i in 0..5 {
        let started = tokio::time::Instant::now();
        let probe = tokio::time::timeout(
            PATIENCE,
            http.get(format!("{}/healthz", running.base)).send(),
        )
        .await??;
        assert_eq!(probe.status(), 200);
        let chat = tokio::time::timeout(
            PATIENCE,
            http.post(format!("{}/v1/chat/completions", running.base))
                .header("content-type", "application/json")
                .body(r#"{"model":"r","messages":[{"role":"user","content":"hi"}]}"#)
                .send(),
        )
        .await??;
        assert!(chat.status().is_server_error(), "{}", chat.status());
        // Printed, not asserted: a busy CI machine decides the figure.
        println!(
            "normal client {i} beside 200 slowloris connections: answered in {:?}",
            started.elapsed()
        );
    }
    for (i, stream) in slow.iter_mut().enumerate() {
        assert!(
            closed_within(stream, PATIENCE).await.is_some(),
            "slowloris connection {i} is still open"
        );
    }
    Ok(())
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() -> TestResult {
    // The header timeout stays at its 10 s default: what closes the
    // connection here is the idle timeout.
    let running = gateway("server: { idle_timeout: 300ms }\n").await?;
    let mut stream = TcpStream::connect(address(&running)).await?;
    stream.write_all(HEALTHZ).await?;
    let head = response_head(&mut stream, PATIENCE).await;
    assert!(
        head.as_deref()
            .is_some_and(|h| h.starts_with("HTTP/1.1 200")),
        "{head:?}"
    );
    // Kept alive after its answer, then closed once idle.
    assert!(
        closed_within(&mut stream, Duration::from_secs(5))
            .await
            .is_some(),
        "the idle connection is still open"
    );
    Ok(())
}

#[tokio::test]
async fn past_max_connections_a_newcomer_waits_until_one_closes() -> TestResult {
    let running = gateway("server: { max_connections: 5 }\n").await?;
    let address = address(&running);
    let mut held = Vec::new();
    for i in 0..5 {
        let mut stream = TcpStream::connect(&address).await?;
        stream.write_all(HEALTHZ).await?;
        let head = response_head(&mut stream, PATIENCE).await;
        assert!(
            head.as_deref()
                .is_some_and(|h| h.starts_with("HTTP/1.1 200")),
            "connection {i}: {head:?}"
        );
        held.push(stream);
    }
    // The sixth reaches the kernel's backlog but is not served...
    let mut sixth = TcpStream::connect(&address).await?;
    sixth.write_all(HEALTHZ).await?;
    let early = response_head(&mut sixth, Duration::from_millis(500)).await;
    assert_eq!(early, None, "the sixth connection was served");
    // ...until one of the five closes.
    drop(held.pop());
    let head = response_head(&mut sixth, PATIENCE).await;
    assert!(
        head.as_deref()
            .is_some_and(|h| h.starts_with("HTTP/1.1 200")),
        "{head:?}"
    );
    Ok(())
}

/// The head of the answer to a keyless POST to `path` that declares 30
/// MiB and sends only `start`: the refusal must not wait for the rest.
async fn answer_to_a_keyless_upload(
    running: &Running,
    path: &str,
    start: &str,
) -> Result<Option<String>, Box<dyn std::error::Error>> {
    let mut stream = TcpStream::connect(address(running)).await?;
    stream
        .write_all(
            format!(
                "POST {path} HTTP/1.1\r\nhost: bulwark\r\ncontent-type: application/json\r\ncontent-length: 31457280\r\n\r\n{start}"
            )
            .as_bytes(),
        )
        .await?;
    Ok(response_head(&mut stream, PATIENCE).await)
}

#[tokio::test]
async fn an_unauthenticated_upload_is_refused_before_its_body_is_read() -> TestResult {
    let running = gateway("keys:\n  team: { key: team-key-0123456789 }\n").await?;
    let head = answer_to_a_keyless_upload(&running, "/v1/chat/completions", "{\"model\":").await?;
    assert!(
        head.as_deref()
            .is_some_and(|h| h.starts_with("HTTP/1.1 401")),
        "{head:?}"
    );
    Ok(())
}

const ADMIN_KEY: &str = "admin-secret-0123456789";

#[tokio::test]
async fn an_unauthenticated_admin_upload_is_refused_before_its_body_is_read() -> TestResult {
    let running = gateway(&format!("admin_key: {ADMIN_KEY}\n")).await?;
    // The admin API once parsed the body before it checked the key.
    let head =
        answer_to_a_keyless_upload(&running, "/admin/incidents/current/updates", "{\"status\":")
            .await?;
    assert!(
        head.as_deref()
            .is_some_and(|h| h.starts_with("HTTP/1.1 401")),
        "{head:?}"
    );
    Ok(())
}

#[tokio::test]
async fn an_admin_annotation_is_bounded() -> TestResult {
    let running = gateway(&format!("admin_key: {ADMIN_KEY}\n")).await?;
    let http = reqwest::Client::new();
    let url = format!("{}/admin/incidents/current/updates", running.base);
    let huge = format!(r#"{{"message": "{}"}}"#, "x".repeat(1024 * 1024));
    let answer = http
        .post(&url)
        .bearer_auth(ADMIN_KEY)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await?;
    assert_eq!(answer.status(), 413);
    let answer = http
        .post(&url)
        .bearer_auth(ADMIN_KEY)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await?;
    assert_eq!(answer.status(), 400);
    assert!(answer.text().await?.contains("expected a JSON body like"));
    // A well-formed annotation with nothing open is told so.
    let answer = http
        .post(&url)
        .bearer_auth(ADMIN_KEY)
        .header("content-type", "application/json")
        .body(r#"{"status": "identified", "message": "looking"}"#)
        .send()
        .await?;
    assert_eq!(answer.status(), 404);
    Ok(())
}

#[tokio::test]
async fn a_trickled_body_is_cut_with_408_after_the_body_timeout() -> TestResult {
    let running = gateway("server: { body_timeout: 300ms }\n").await?;
    let mut stream = TcpStream::connect(address(&running)).await?;
    stream
        .write_all(
            b"POST /v1/messages HTTP/1.1\r\nhost: bulwark\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{",
        )
        .await?;
    let (mut reading, mut writing) = stream.into_split();
    // A byte every 50 ms: never idle for long, never done.
    let trickle = tokio::spawn(async move {
        for _ in 0..999 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if writing.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
    let mut read = Vec::new();
    let head = tokio::time::timeout(PATIENCE, async {
        let mut buffer = [0_u8; 4096];
        loop {
            if read.windows(4).any(|w| w == b"\r\n\r\n") {
                return String::from_utf8_lossy(&read).into_owned();
            }
            match reading.read(&mut buffer).await {
                Ok(0) | Err(_) => return String::from_utf8_lossy(&read).into_owned(),
                Ok(n) => read.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    trickle.abort();
    let head = head.map_err(|_| "no answer while the body trickled in")?;
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    Ok(())
}

#[tokio::test]
async fn http2_is_still_served_with_its_limits_set() -> TestResult {
    let running = gateway("server: { http2_max_streams: 2, idle_timeout: 300ms }\n").await?;
    let http = reqwest::Client::builder().http2_prior_knowledge().build()?;
    // More requests at once than streams allowed: the client queues them.
    let answers = futures_util::future::join_all(
        (0..5).map(|_| http.get(format!("{}/healthz", running.base)).send()),
    )
    .await;
    for answer in answers {
        let answer = answer?;
        assert_eq!(answer.version(), reqwest::Version::HTTP_2);
        assert_eq!(answer.status(), 200);
    }
    Ok(())
}

/// A sample from the gateway's `/metrics`, or 0 when it is absent.
async fn metric(running: &Running, name: &str) -> Result<u64, Box<dyn std::error::Error>> {
    let page = reqwest::get(format!("{}/metrics", running.base))
        .await?
        .text()
        .await?;
    Ok(page
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0))
}

/// Opens a request that declares `length` bytes and sends one: the gateway
/// reserves the whole body's reading before it reads on.
async fn hold(running: &Running, length: u64) -> Result<TcpStream, Box<dyn std::error::Error>> {
    let mut holder = TcpStream::connect(address(running)).await?;
    holder
        .write_all(
            format!(
                "POST /v1/chat/completions HTTP/1.1\r\nhost: bulwark\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n{{"
            )
            .as_bytes(),
        )
        .await?;
    Ok(holder)
}

#[tokio::test]
async fn past_the_memory_budget_a_request_is_shed_with_503_until_room_returns() -> TestResult {
    // Room for two bodies at the limit being read, or one being decoded,
    // but not for both.
    let max: u64 = 1024 * 1024;
    let budget = 8 * max;
    assert!(2 * max * bulwark_gateway::READ_FACTOR <= budget);
    assert!((bulwark_gateway::BODY_FACTOR + 2 * bulwark_gateway::READ_FACTOR) * max > budget);
    assert!(bulwark_gateway::BODY_FACTOR * max < budget);
    let running = gateway(&format!(
        "max_request_bytes: {max}\nserver: {{ max_inflight_request_bytes: {budget}, body_timeout: 30s }}\n"
    ))
    .await?;
    let holders = [hold(&running, max).await?, hold(&running, max).await?];
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while metric(&running, "bulwark_request_memory_reserved_bytes").await?
        < 2 * max * bulwark_gateway::READ_FACTOR
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing was reserved"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A third body at the limit does not fit beside them.
    let padding = "x".repeat(usize::try_from(max)? - 100);
    let large = format!(r#"{{"model":"r","messages":[{{"role":"user","content":"{padding}"}}]}}"#);
    let http = reqwest::Client::new();
    let shed = http
        .post(format!("{}/v1/chat/completions", running.base))
        .header("content-type", "application/json")
        .body(large.clone())
        .send()
        .await?;
    assert_eq!(shed.status(), 503);
    assert_eq!(
        shed.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: serde_json::Value = serde_json::from_str(&shed.text().await?)?;
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("server.max_inflight_request_bytes"),
        "{body}"
    );
    // Anthropic's clients are told in their own shape.
    let shed = http
        .post(format!("{}/v1/messages", running.base))
        .header("content-type", "application/json")
        .body(large.clone())
        .send()
        .await?;
    let status = shed.status().as_u16();
    let body: serde_json::Value = serde_json::from_str(&shed.text().await?)?;
    assert!(matches!(status, 503 | 529), "{status} {body}");
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(
        metric(&running, "bulwark_requests_shed_memory_total").await?,
        2
    );
    // The holders leave: their reservations return, and the body is
    // decoded and sent on (to a provider that is down).
    drop(holders);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let answer = http
            .post(format!("{}/v1/chat/completions", running.base))
            .header("content-type", "application/json")
            .body(large.clone())
            .send()
            .await?
            .text()
            .await?;
        if !answer.contains("max_inflight_request_bytes") {
            assert!(answer.contains("every target"), "{answer}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still shed: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while metric(&running, "bulwark_request_memory_reserved_bytes").await? > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a reservation was never returned"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// A body of a few bytes per object would cost more to decode than the
/// whole budget: 413, not a 503 that retrying cannot cure.
#[tokio::test]
async fn a_body_costlier_than_the_whole_budget_is_413() -> TestResult {
    let running =
        gateway("max_request_bytes: 1048576\nserver: { max_inflight_request_bytes: 8388608 }\n")
            .await?;
    let objects = vec!["{}"; 100_000].join(",");
    let body = format!(
        r#"{{"model":"r","messages":[{{"role":"user","content":"x"}}],"metadata":[{objects}]}}"#
    );
    let answer = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", running.base))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    assert_eq!(answer.status(), 413);
    assert!(
        answer
            .text()
            .await?
            .contains("server.max_inflight_request_bytes")
    );
    Ok(())
}
