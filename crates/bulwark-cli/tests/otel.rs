//! `bulwark serve` with `otel:` sends a trace per request to an OTLP/HTTP
//! collector: a `bulwark.request` span with the outcome, and a
//! `bulwark.attempt` child per upstream call, fallbacks included.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failed setup fails the test"
)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Spans received, with their resource's `service.name`.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

/// Kills the child when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `bulwark args...` and returns it with the address it announces on
/// its first line. The rest of stdout is drained, so that the process never
/// writes to a closed pipe.
fn spawn(args: &[&str], prefix: &str, log: &std::path::Path) -> (Running, String) {
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_bulwark"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    );
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    std::thread::spawn(move || {
        let mut rest = Vec::new();
        let _ = stdout.read_to_end(&mut rest);
    });
    let address = line
        .trim()
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_string();
    (child, address)
}

async fn collect(State(received): State<Received>, body: Bytes) -> &'static str {
    let request = ExportTraceServiceRequest::decode(body).unwrap();
    let mut received = received.lock().unwrap();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref()?.value.clone());
        let service = match service {
            Some(Value::StringValue(name)) => name,
            _ => String::new(),
        };
        for scope in resource.scope_spans {
            for span in scope.spans {
                received.push((service.clone(), span));
            }
        }
    }
    // An empty ExportTraceServiceResponse encodes to no bytes.
    ""
}

const CLIENT_TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const CLIENT_SPAN_ID: &str = "b7ad6b7169203331";
const CLIENT_TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.clone())
}

fn text(span: &Span, key: &str) -> Option<String> {
    match attribute(span, key)? {
        Value::StringValue(s) => Some(s),
        other => panic!("{key} is not a string: {other:?}"),
    }
}

fn int(span: &Span, key: &str) -> Option<i64> {
    match attribute(span, key)? {
        Value::IntValue(i) => Some(i),
        other => panic!("{key} is not an integer: {other:?}"),
    }
}

fn boolean(span: &Span, key: &str) -> Option<bool> {
    match attribute(span, key)? {
        Value::BoolValue(b) => Some(b),
        other => panic!("{key} is not a boolean: {other:?}"),
    }
}

#[test]
fn serve_exports_a_request_span_with_an_attempt_span_per_call() -> TestResult {
    let dir = std::env::temp_dir().join(format!("bulwark-otel-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    let received = Received::default();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let collector = format!("http://{}", listener.local_addr()?);
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(collect))
        .with_state(Arc::clone(&received));
    runtime.spawn(async move { axum::serve(listener, app).await });

    // One simulated provider whose `broken-model` always answers 503.
    let scenario = dir.join("sim.yaml");
    std::fs::write(
        &scenario,
        "faults:\n  - match: { model: broken-model }\n    fault: { status: 503 }\n",
    )?;
    let (_sim, sim_url) = spawn(
        &[
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--scenario",
            scenario.to_str().ok_or("path")?,
        ],
        "bulwark-sim listening on ",
        &dir.join("sim.log"),
    );
    let config = dir.join("bulwark.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:0\nstore: \"sqlite://{}\"\nproviders:\n  sim: {{ kind: openai-compatible, base_url: \"{sim_url}/v1\" }}\nroutes:\n  flaky: {{ targets: [sim/broken-model, sim/gpt-4o-mini], max_retries: 0 }}\n  plain: {{ targets: [sim/gpt-4o-mini] }}\notel:\n  endpoint: \"{collector}\"\n  service_name: bulwark-test\n",
            dir.join("bulwark.db").display()
        ),
    )?;
    let gateway_log = dir.join("gateway.log");
    let (mut gateway, url) = spawn(
        &["serve", "--config", config.to_str().ok_or("path")?],
        "bulwark listening on ",
        &gateway_log,
    );

    let statuses = runtime.block_on(async {
        let client = reqwest::Client::new();
        let mut statuses = Vec::new();
        for (body, id) in [
            (
                r#"{"model":"flaky","messages":[{"role":"user","content":"Hi"}]}"#,
                Some("otel-request-1"),
            ),
            (
                r#"{"model":"plain","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#,
                None,
            ),
        ] {
            let request = client
                .post(format!("{url}/v1/chat/completions"))
                .header("content-type", "application/json")
                .body(body);
            // The first request continues a client's trace.
            let request = match id {
                Some(id) => request
                    .header("x-request-id", id)
                    .header("traceparent", CLIENT_TRACEPARENT),
                None => request,
            };
            let response = request.send().await?;
            let status = response.status().as_u16();
            response.bytes().await?;
            statuses.push(status);
        }
        Ok::<_, reqwest::Error>(statuses)
    })?;
    assert_eq!(statuses, [200, 200]);
    let upstream = runtime.block_on(async {
        reqwest::get(format!("{sim_url}/_sim/requests"))
            .await?
            .bytes()
            .await
    })?;
    let upstream: Vec<serde_json::Value> = serde_json::from_slice(&upstream)?;

    // Ctrl-C: the gateway drains, then flushes its spans before exiting.
    let pid = gateway.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()?
            .success()
    );
    #[expect(
        clippy::disallowed_types,
        reason = "a blocking wait on a child process in a plain #[test], outside any runtime"
    )]
    let waiting = std::time::Instant::now();
    let exit = loop {
        if let Some(status) = gateway.0.try_wait()? {
            break status;
        }
        assert!(
            waiting.elapsed() < Duration::from_secs(20),
            "the gateway did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = std::fs::read_to_string(&gateway_log)?;
    assert!(exit.success(), "gateway exited with {exit}:\n{log}");

    let spans = received.lock().unwrap().clone();
    assert!(
        spans.iter().all(|(service, _)| service == "bulwark-test"),
        "{spans:#?}"
    );
    let spans: Vec<Span> = spans.into_iter().map(|(_, span)| span).collect();
    let requests: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name == "bulwark.request")
        .collect();
    assert_eq!(
        requests.len(),
        2,
        "spans received:\n{spans:#?}\nlog:\n{log}"
    );
    let request_for = |route: &str| {
        *requests
            .iter()
            .find(|s| text(s, "gen_ai.request.model").as_deref() == Some(route))
            .unwrap_or_else(|| panic!("no request span for {route}: {requests:#?}"))
    };
    let attempts_of = |request: &Span| -> Vec<&Span> {
        spans
            .iter()
            .filter(|s| s.name == "bulwark.attempt" && s.parent_span_id == request.span_id)
            .inspect(|s| assert_eq!(s.trace_id, request.trace_id))
            .collect()
    };

    let flaky = request_for("flaky");
    assert_eq!(flaky.kind, SpanKind::Server as i32);
    // The client's traceparent is the request span's parent.
    assert_eq!(hex(&flaky.trace_id), CLIENT_TRACE_ID);
    assert_eq!(hex(&flaky.parent_span_id), CLIENT_SPAN_ID);
    let plain = request_for("plain");
    assert!(
        plain.parent_span_id.is_empty(),
        "without a traceparent a request span is a root"
    );
    assert_eq!(int(flaky, "http.response.status_code"), Some(200));
    assert_eq!(text(flaky, "bulwark.outcome").as_deref(), Some("fallback"));
    assert_eq!(boolean(flaky, "bulwark.fallback"), Some(true));
    assert_eq!(int(flaky, "bulwark.attempts"), Some(2));
    assert_eq!(
        text(flaky, "bulwark.target").as_deref(),
        Some("sim/gpt-4o-mini")
    );
    assert_eq!(
        text(flaky, "bulwark.client_format").as_deref(),
        Some("openai")
    );
    assert_eq!(text(flaky, "error.type"), None);
    // The request id is on the span: the client's, or the one made for it.
    assert_eq!(
        text(flaky, "bulwark.request_id").as_deref(),
        Some("otel-request-1")
    );
    assert!(
        text(request_for("plain"), "bulwark.request_id").is_some_and(|id| id.starts_with("req_")),
        "{:#?}",
        request_for("plain")
    );
    let mut attempts = attempts_of(flaky);
    attempts.sort_by_key(|s| s.start_time_unix_nano);
    assert_eq!(attempts.len(), 2, "{spans:#?}");
    let (failed, answered) = (attempts[0], attempts[1]);
    assert_eq!(failed.kind, SpanKind::Client as i32);
    assert_eq!(
        text(failed, "gen_ai.request.model").as_deref(),
        Some("broken-model")
    );
    assert_eq!(int(failed, "http.response.status_code"), Some(503));
    assert!(text(failed, "error.type").is_some(), "{failed:#?}");
    assert_eq!(boolean(failed, "bulwark.hedge"), Some(false));
    assert_eq!(
        text(answered, "bulwark.target").as_deref(),
        Some("sim/gpt-4o-mini")
    );
    assert_eq!(int(answered, "http.response.status_code"), Some(200));
    assert_eq!(text(answered, "error.type"), None);
    assert!(attribute(answered, "bulwark.first_token_ms").is_some());
    // Each upstream call names its attempt's span as its parent.
    let sent_traceparents: Vec<&str> = upstream
        .iter()
        .filter_map(|r| r["headers"]["traceparent"].as_str())
        .collect();
    for attempt in [failed, answered] {
        let expected = format!("00-{}-{}-01", hex(&attempt.trace_id), hex(&attempt.span_id));
        assert!(
            sent_traceparents.contains(&expected.as_str()),
            "{expected} not among {sent_traceparents:?}"
        );
    }
    assert_eq!(
        sent_traceparents.len(),
        upstream.len(),
        "every upstream call carries a traceparent: {upstream:#?}"
    );
    // The request lasts from before the first attempt to after the last.
    assert!(flaky.start_time_unix_nano <= failed.start_time_unix_nano);
    assert!(flaky.end_time_unix_nano >= answered.end_time_unix_nano);

    let plain = request_for("plain");
    assert_ne!(plain.trace_id, flaky.trace_id);
    assert_eq!(text(plain, "bulwark.outcome").as_deref(), Some("ok"));
    assert_eq!(boolean(plain, "bulwark.stream"), Some(true));
    assert_eq!(boolean(plain, "bulwark.fallback"), Some(false));
    assert_eq!(int(plain, "bulwark.attempts"), Some(1));
    let attempts = attempts_of(plain);
    assert_eq!(attempts.len(), 1, "{spans:#?}");
    assert_eq!(int(attempts[0], "http.response.status_code"), Some(200));
    // A stream's span ends when the stream does, after its attempt.
    assert!(plain.end_time_unix_nano >= attempts[0].end_time_unix_nano);

    assert_eq!(
        spans.len(),
        5,
        "nothing but request and attempt spans: {spans:#?}"
    );
    Ok(())
}
