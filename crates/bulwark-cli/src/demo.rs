//! `bulwark demo`: three simulated providers, the gateway in front of them,
//! a little traffic, then the primary knocked out and the fallback shown.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use bulwark::Config;
use bulwark::events::Event;
use bulwark_sim::{Fault, FaultRule, Latency, SimConfig, SimServer};
use serde_json::{Value, json};
use tokio::net::TcpListener;

const DEMO_CONFIG: &str = include_str!("demo.yaml");

pub async fn run(listen: &str, no_wait: bool) -> anyhow::Result<()> {
    let sim_config = SimConfig {
        latency: Latency {
            headers_ms: 20,
            first_token_ms: 40,
            token_interval_ms: 15,
        },
        ..SimConfig::default()
    };
    let anthropic = SimServer::start("127.0.0.1:0", sim_config.clone()).await?;
    let openai = SimServer::start("127.0.0.1:0", sim_config.clone()).await?;
    let gemini = SimServer::start("127.0.0.1:0", sim_config).await?;
    let urls = [
        ("SIM_ANTHROPIC", anthropic.url()),
        ("SIM_OPENAI", openai.url()),
        ("SIM_GEMINI", gemini.url()),
        ("DEMO_LISTEN", listen.to_string()),
    ];
    let env = |name: &str| {
        urls.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    };
    let config = Config::from_yaml(DEMO_CONFIG, "embedded demo config", &env)?;

    let gateway = bulwark_gateway::Gateway::start(&config).await?;
    narrate_breakers(gateway.subscribe());
    let listener = TcpListener::bind(config.listen).await.with_context(|| {
        format!(
            "cannot listen on {} (pass --listen 127.0.0.1:0 for any free port)",
            config.listen
        )
    })?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bulwark_gateway::serve(listener, gateway, async {
        let _ = stop_rx.await;
    }));

    say(&format!(
        "Bulwark demo: gateway on {base}, route `smart` = anthropic -> openai -> gemini (all simulated)\n"
    ));
    let http = reqwest::Client::new();
    let mut sent = 0;

    say("1. All providers healthy:");
    for (i, client_format) in ["openai", "anthropic", "openai"].into_iter().enumerate() {
        send(&http, &base, client_format, i % 2 == 0).await;
        sent += 1;
    }

    say("\n2. The primary provider (anthropic) goes down: every call now gets 529 overloaded.");
    say(
        "   Bulwark retries once, moves on to openai, and after 3 failures in a row stops calling anthropic.",
    );
    anthropic
        .sim
        .set_faults(vec![FaultRule::always(Fault::status(529))]);
    for (i, client_format) in ["openai", "anthropic", "openai", "anthropic"]
        .into_iter()
        .enumerate()
    {
        send(&http, &base, client_format, i % 2 == 1).await;
        sent += 1;
    }

    say(
        "\n3. The second provider (openai) starts hanging: after 3 s without a first token, gemini answers.",
    );
    openai
        .sim
        .set_faults(vec![FaultRule::always(Fault::hang(60_000))]);
    send(&http, &base, "anthropic", true).await;
    sent += 1;
    openai.sim.clear_faults();

    say("\n4. Anthropic recovers. Once its 5 s break is over, one probe call closes the breaker:");
    anthropic.sim.clear_faults();
    tokio::time::sleep(Duration::from_secs(5)).await;
    for client_format in ["openai", "anthropic"] {
        send(&http, &base, client_format, false).await;
        sent += 1;
    }

    let upstream =
        anthropic.sim.request_count() + openai.sim.request_count() + gemini.sim.request_count();
    say(&format!(
        "\n{upstream} upstream attempts served {sent} client requests; every client request got an answer."
    ));
    if no_wait {
        let _ = stop_tx.send(());
        server.await??;
        return Ok(());
    }
    say(&format!(
        "\nThe gateway keeps running on {base}. Try:\n  curl {base}/v1/chat/completions -H 'content-type: application/json' \\\n    -d '{{\"model\":\"smart\",\"messages\":[{{\"role\":\"user\",\"content\":\"Hello\"}}]}}'\nPress Ctrl-C to stop."
    ));
    let _ = tokio::signal::ctrl_c().await;
    let _ = stop_tx.send(());
    server.await??;
    Ok(())
}

/// Prints the circuit breakers' state changes as they happen.
fn narrate_breakers(mut events: tokio::sync::broadcast::Receiver<Event>) {
    tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            if let Event::Breaker {
                target,
                to,
                open_for,
                ..
            } = event
            {
                let detail = open_for
                    .map(|d| format!(" for {} s", d.as_secs()))
                    .unwrap_or_default();
                say(&format!(
                    "   ! circuit breaker of {target} is now {}{detail}",
                    to.as_str().replace('_', "-")
                ));
            }
        }
    });
}

fn say(line: &str) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

/// Sends one request in the given client format and prints who served it.
async fn send(http: &reqwest::Client, base: &str, client_format: &str, stream: bool) {
    let messages = json!([{"role": "user", "content": "What keeps an app up when its LLM provider goes down?"}]);
    let (path, body) = match client_format {
        "anthropic" => (
            "/v1/messages",
            json!({"model": "smart", "max_tokens": 64, "messages": messages, "stream": stream}),
        ),
        _ => (
            "/v1/chat/completions",
            json!({"model": "smart", "max_tokens": 64, "messages": messages, "stream": stream}),
        ),
    };
    let started = Instant::now();
    let mut request = http
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .timeout(Duration::from_secs(30));
    if client_format == "anthropic" {
        request = request.header("anthropic-version", "2023-06-01");
    }
    let kind = if stream { "stream" } else { "call" };
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_string()
            };
            let (target, attempts) = (header("x-bulwark-target"), header("x-bulwark-attempts"));
            let text = response.text().await.unwrap_or_default();
            let answer = if stream {
                streamed_text(&text)
            } else {
                complete_text(&text)
            };
            let mark = if status.is_success() { "ok " } else { "ERR" };
            say(&format!(
                "   [{mark}] {client_format:<9} {kind:<6} -> {target:<28} attempts={attempts}  {:>5} ms  {}",
                started.elapsed().as_millis(),
                shorten(&answer)
            ));
        }
        Err(e) => say(&format!("   [ERR] {client_format} {kind}: {e}")),
    }
}

fn complete_text(body: &str) -> String {
    let value: Value = serde_json::from_str(body).unwrap_or_default();
    if let Some(text) = value
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
    {
        return text.to_string();
    }
    if let Some(text) = value.pointer("/content/0/text").and_then(Value::as_str) {
        return text.to_string();
    }
    body.to_string()
}

/// Reassembles the text of an SSE answer in either client format.
fn streamed_text(body: &str) -> String {
    let mut text = String::new();
    for line in body.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let Ok(value) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        if let Some(t) = value
            .pointer("/choices/0/delta/content")
            .and_then(Value::as_str)
        {
            text.push_str(t);
        }
        if let Some(t) = value.pointer("/delta/text").and_then(Value::as_str) {
            text.push_str(t);
        }
    }
    text
}

fn shorten(text: &str) -> String {
    let mut short: String = text.chars().take(48).collect();
    if text.chars().count() > 48 {
        short.push_str("...");
    }
    format!("\"{short}\"")
}
