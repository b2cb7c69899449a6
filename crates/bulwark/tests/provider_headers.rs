//! A provider's configured `headers:` against the dialect's own headers and
//! the client's forwarded ones: the operator's value is the one sent.

use bulwark::wire::anthropic;
use bulwark::{Client, Config};
use bulwark_sim::{SimConfig, SimServer};
use serde_json::json;

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::test(start_paused = true)]
async fn an_operators_header_replaces_the_dialects_and_the_clients() -> TestResult {
    let sim = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "providers:
  claude: {{ kind: anthropic, base_url: \"{}\", api_key: k, headers: {{ anthropic-version: \"2023-01-01\", x-team: blue }} }}
routes:
  main: {{ targets: [claude/claude-sonnet-4-5] }}
",
        sim.url()
    );
    let client = Client::from_config(&Config::from_yaml(&yaml, "test", &|_| None)?)?;
    let body = json!({"model": "main", "max_tokens": 100,
        "messages": [{"role": "user", "content": "Hello there"}]});
    let plain = anthropic::decode_request(body.to_string().as_bytes())?;
    let mut forwarding = plain.clone();
    let source = forwarding.source.as_mut().ok_or("no source body")?;
    source.headers = vec![
        (
            http::HeaderName::from_static("anthropic-version"),
            http::HeaderValue::from_static("2024-10-22"),
        ),
        (
            http::HeaderName::from_static("anthropic-beta"),
            http::HeaderValue::from_static("some-beta"),
        ),
    ];
    client.chat(plain).await?;
    client.chat(forwarding).await?;
    let sent = sim.sim.requests();
    assert_eq!(sent.len(), 2);
    for request in &sent {
        // One value, the operator's: not the dialect's or the client's
        // beside it.
        assert_eq!(
            request.headers.get("anthropic-version").map(String::as_str),
            Some("2023-01-01"),
            "{:?}",
            request.headers
        );
        assert_eq!(
            request.headers.get("x-team").map(String::as_str),
            Some("blue")
        );
    }
    // The client's other headers still go through.
    assert_eq!(
        sent[1].headers.get("anthropic-beta").map(String::as_str),
        Some("some-beta")
    );
    Ok(())
}
