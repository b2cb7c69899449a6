//! A model that is thinking is alive (issue 12): the in-process `Client`
//! against scripted upstreams that think for longer than the first-token
//! timeout, that send only keep-alives, or that break while thinking.
//!
//! Each upstream is a few lines of raw HTTP on 127.0.0.1 that writes its
//! server-sent events one by one, each after a scripted pause. Every test
//! runs on tokio's paused clock, which the upstreams' pauses read too: a
//! twelve-second thinking phase costs no real time, and no timeout can be
//! crossed because the machine is busy.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bulwark::Client;
use bulwark::api::{ChatRequest, ContentBlock, SourceBody, StreamEvent, WireFormat};
use bulwark::events::Event;
use bulwark::resilience::breaker::BreakerState;
use futures_util::StreamExt;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

mod common;
mod raw_http;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// One server-sent event, written after a pause.
#[derive(Clone)]
struct Step {
    pause: Duration,
    event: String,
}

/// A raw HTTP/1.1 server that answers every request with a 200 event stream
/// written step by step, then closes the connection.
struct Upstream {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl Upstream {
    async fn start(script: Vec<Step>) -> std::io::Result<Upstream> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let connections = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let script = script.clone();
                tokio::spawn(async move {
                    let _ = answer(socket, &script).await;
                });
            }
        });
        Ok(Upstream { addr, connections })
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn calls(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Reads one request (head and `content-length` body), then writes the
/// script's events, each after its pause, and closes.
async fn answer(mut socket: TcpStream, script: &[Step]) -> std::io::Result<()> {
    if raw_http::read_request(&mut socket).await?.is_none() {
        return Ok(());
    }
    socket
        .write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
        )
        .await?;
    for step in script {
        tokio::time::sleep(step.pause).await;
        socket.write_all(step.event.as_bytes()).await?;
        socket.flush().await?;
    }
    socket.shutdown().await
}

/// An Anthropic stream event, after `pause_ms`.
fn event(pause_ms: u64, data: serde_json::Value) -> Step {
    let name = data["type"].as_str().unwrap_or("message").to_string();
    Step {
        pause: Duration::from_millis(pause_ms),
        event: format!("event: {name}\ndata: {data}\n\n"),
    }
}

fn message_start() -> Step {
    event(
        0,
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-sonnet-4-5", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 5, "output_tokens": 0}}}),
    )
}

/// A thinking block at index 0 that opens after `first_ms` and then thinks
/// `deltas` times, one every `every_ms`.
fn thinking(first_ms: u64, deltas: usize, every_ms: u64) -> Vec<Step> {
    let mut steps = vec![event(
        first_ms,
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
    )];
    for i in 0..deltas {
        steps.push(event(
            every_ms,
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": format!("step {i}. ")}}),
        ));
    }
    steps.push(event(
        0,
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQB"}}),
    ));
    steps.push(event(0, json!({"type": "content_block_stop", "index": 0})));
    steps
}

/// The answer `text` in a text block at `index`, and the message's end.
fn answer_text(index: usize, text: &str) -> Vec<Step> {
    vec![
        event(
            0,
            json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
        ),
        event(
            0,
            json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}),
        ),
        event(0, json!({"type": "content_block_stop", "index": index})),
        event(
            0,
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 9}}),
        ),
        event(0, json!({"type": "message_stop"})),
    ]
}

/// A primary that thinks for 12 s, a delta every 2 s, then answers.
fn thinks_for_12_seconds() -> Vec<Step> {
    let mut script = vec![message_start()];
    script.extend(thinking(500, 6, 2_000));
    script.extend(answer_text(1, "Thought it through."));
    script
}

/// A backup that answers at once.
fn answers_at_once() -> Vec<Step> {
    let mut script = vec![message_start()];
    script.extend(answer_text(0, "Backup here."));
    script
}

/// Starts `primary` and a backup that answers at once, and a client whose
/// route `main` = [primary, backup] (both Anthropic), with a 5 s first-token
/// timeout, the route options given, and a breaker that opens at the first
/// failure it counts, so that a counted failure shows. Returns the client
/// and the backup, whose calls the tests count.
async fn client(
    primary: Vec<Step>,
    route_options: &str,
) -> Result<(Client, Upstream), Box<dyn std::error::Error>> {
    let primary = Upstream::start(primary).await?;
    let backup = Upstream::start(answers_at_once()).await?;
    let yaml = format!(
        "providers:\n  primary: {{ kind: anthropic, base_url: \"{}\" }}\n  backup: {{ kind: anthropic, base_url: \"{}\" }}\nroutes:\n  main: {{ targets: [primary/claude-sonnet-4-5, backup/claude-sonnet-4-5], max_retries: 0, first_token_timeout: 5s, deadline: 120s{route_options} }}\nbreaker: {{ consecutive_failures: 1 }}\n",
        primary.url(),
        backup.url()
    );
    Ok((common::client_from_yaml(&yaml)?, backup))
}

fn request() -> ChatRequest {
    common::request("Hello", 64)
}

/// The request as an Anthropic client's front door gives it: an Anthropic
/// target is sent its body and its events are relayed to the client.
fn anthropic_client_request() -> ChatRequest {
    let mut request = request();
    let body = json!({"model": "main", "max_tokens": 64, "messages": [{"role": "user", "content": "Hello"}], "thinking": {"type": "adaptive"}});
    request.source = Some(SourceBody {
        format: WireFormat::Anthropic,
        body: bulwark::api::SourceJson::from_object(&body.as_object().cloned().unwrap_or_default()),
        query: None,
        headers: Vec::new(),
    });
    request
}

fn breaker_state(client: &Client, label: &str) -> Option<BreakerState> {
    client
        .target_states()
        .into_iter()
        .find(|(name, _)| name == label)
        .map(|(_, state)| state.with_breaker(|b| b.state()))
}

fn no_attempt_failed(events: &mut tokio::sync::broadcast::Receiver<Event>) -> bool {
    let mut failed = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let Event::AttemptFailed { target, class, .. } = event {
            failed.push(format!("{target}: {class}"));
        }
    }
    if !failed.is_empty() {
        eprintln!("attempts failed: {failed:?}");
    }
    failed.is_empty()
}

/// The backup was never called, no attempt failed, and the primary's
/// breaker is still closed.
#[track_caller]
fn assert_served_by_a_healthy_primary(
    client: &Client,
    backup: &Upstream,
    events: &mut tokio::sync::broadcast::Receiver<Event>,
) {
    assert_eq!(backup.calls(), 0, "the backup was called");
    assert!(no_attempt_failed(events));
    assert_eq!(
        breaker_state(client, "primary/claude-sonnet-4-5"),
        Some(BreakerState::Closed)
    );
}

/// A model that thinks for 12 s (a delta every 2 s) against a 5 s
/// first-token timeout answers the complete request itself: thinking is
/// its first token. No failure is counted against its breaker, and the
/// backup is never called.
#[tokio::test(start_paused = true)]
async fn a_long_thinking_phase_is_served_not_failed_over() -> TestResult {
    let (client, backup) = client(thinks_for_12_seconds(), "").await?;
    let mut events = client.subscribe();
    let started = Instant::now();
    let served = client.chat(request()).await?;
    assert_eq!(served.target, "primary/claude-sonnet-4-5");
    assert!(started.elapsed() >= Duration::from_secs(12));
    assert_eq!(
        served.value.content,
        vec![ContentBlock::Text("Thought it through.".into())]
    );
    assert_served_by_a_healthy_primary(&client, &backup, &mut events);
    Ok(())
}

/// The same as a stream to a client of another format (the neutral events):
/// it is handed over at its first text, its thinking before it, and the
/// breaker hears of a success.
#[tokio::test(start_paused = true)]
async fn a_long_thinking_phase_is_streamed_not_failed_over() -> TestResult {
    let (client, backup) = client(thinks_for_12_seconds(), "").await?;
    let mut events = client.subscribe();
    let served = client.stream(request()).await?;
    assert_eq!(served.target, "primary/claude-sonnet-4-5");
    let streamed: Vec<StreamEvent> = served
        .value
        .filter_map(|e| async { e.ok() })
        .collect()
        .await;
    let thought = streamed
        .iter()
        .filter(|e| matches!(e, StreamEvent::Thinking { .. }))
        .count();
    assert_eq!(thought, 8, "start, six deltas, signature: {streamed:?}");
    assert!(streamed.contains(&StreamEvent::TextDelta {
        index: 1,
        text: "Thought it through.".into()
    }));
    assert_served_by_a_healthy_primary(&client, &backup, &mut events);
    Ok(())
}

/// A hung provider that only keeps its connection alive with `ping`s still
/// times out after the first-token timeout and is failed over: a ping is no
/// sign of life.
#[tokio::test(start_paused = true)]
async fn an_upstream_that_only_pings_times_out() -> TestResult {
    let mut script = vec![message_start()];
    for _ in 0..30 {
        script.push(event(2_000, json!({"type": "ping"})));
    }
    let (client, _backup) = client(script, "").await?;
    let started = Instant::now();
    let served = client.chat(request()).await?;
    assert_eq!(served.target, "backup/claude-sonnet-4-5");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(6),
        "{took:?}"
    );
    assert_eq!(
        breaker_state(&client, "primary/claude-sonnet-4-5"),
        Some(BreakerState::Open),
        "the timeout is counted"
    );
    Ok(())
}

/// With `hedge_after: 1s`, a primary that began thinking at 0.5 s gets no
/// hedge, although its first text comes 12 s later: it is answering.
#[tokio::test(start_paused = true)]
async fn no_hedge_is_sent_while_the_primary_thinks() -> TestResult {
    let (client, backup) = client(thinks_for_12_seconds(), ", hedge_after: 1s").await?;
    let mut events = client.subscribe();
    for served in [
        client.chat(request()).await?.target,
        client.stream(request()).await?.target,
    ] {
        assert_eq!(served, "primary/claude-sonnet-4-5");
    }
    assert_eq!(backup.calls(), 0, "a hedge was sent");
    let mut hedged = false;
    while let Ok(event) = events.try_recv() {
        hedged |= matches!(event, Event::Hedged { .. });
    }
    assert!(!hedged);
    Ok(())
}

/// The hedge still goes out when the primary is silent at `hedge_after`.
#[tokio::test(start_paused = true)]
async fn a_silent_primary_is_still_hedged() -> TestResult {
    let mut script = vec![message_start()];
    script.extend(thinking(3_000, 1, 100));
    script.extend(answer_text(1, "Late."));
    let (client, backup) = client(script, ", hedge_after: 1s").await?;
    let served = client.chat(request()).await?;
    assert_eq!(served.target, "backup/claude-sonnet-4-5");
    assert_eq!(backup.calls(), 1);
    Ok(())
}

/// A primary that thinks, then breaks before any text.
fn thinks_then_breaks() -> Vec<Step> {
    let mut script = vec![message_start()];
    script.extend(thinking(500, 2, 1_000));
    script
}

/// A client of another format is not shown thinking: a stream that breaks
/// while the model thinks is replaced by the backup unseen.
#[tokio::test(start_paused = true)]
async fn a_break_while_thinking_is_replaced_unseen_for_a_translated_client() -> TestResult {
    let (client, _backup) = client(thinks_then_breaks(), "").await?;
    let served = client.stream(request()).await?;
    assert_eq!(served.target, "backup/claude-sonnet-4-5");
    let streamed: Vec<_> = served.value.collect().await;
    assert!(streamed.iter().all(Result::is_ok), "{streamed:?}");
    assert!(streamed.iter().any(|e| matches!(
        e,
        Ok(StreamEvent::TextDelta { text, .. }) if text == "Backup here."
    )));
    Ok(())
}

/// A client relayed the provider's own events sees the thinking as it
/// comes: the stream is handed over at the first thinking, so a break after
/// it reaches the client as an error, never as another target's answer
/// spliced after thinking it was shown.
#[tokio::test(start_paused = true)]
async fn a_relayed_client_is_shown_thinking_as_it_comes() -> TestResult {
    let (client, backup) = client(thinks_then_breaks(), "").await?;
    let started = Instant::now();
    let served = client
        .stream_chunks(anthropic_client_request(), Default::default())
        .await?;
    assert_eq!(served.target, "primary/claude-sonnet-4-5");
    // The first thinking delta comes at 1.5 s, the stream's break at 2.5 s.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_millis(1_500),
        "not handed over at the first thinking: {took:?}"
    );
    let chunks: Vec<_> = served.value.collect().await;
    let raw: BTreeMap<usize, String> = chunks
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.as_ref().ok().map(|c| (i, c.raw.data.clone())))
        .collect();
    assert!(
        raw.values().any(|data| data.contains("thinking_delta")),
        "{raw:?}"
    );
    assert!(
        matches!(chunks.last(), Some(Err(_))),
        "the break is reported"
    );
    assert_eq!(backup.calls(), 0);
    Ok(())
}
