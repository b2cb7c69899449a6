//! The engine in-process: no HTTP gateway, the same routes and fallback.
//!
//! Runs against two simulated providers, so it needs no API keys:
//! `cargo run -p bulwark --example in_process`

use bulwark::api::{ChatRequest, ContentBlock, Message, Role, StreamEvent};
use bulwark::{Client, Config};
use bulwark_sim::{Fault, FaultRule, SimConfig, SimServer};
use futures_util::StreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let primary = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let backup = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let urls = [("PRIMARY_URL", primary.url()), ("BACKUP_URL", backup.url())];
    let env = |name: &str| {
        urls.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    };
    let config = Config::from_yaml(
        r#"
providers:
  anthropic: { kind: anthropic, base_url: "${PRIMARY_URL}", api_key: example }
  openai:    { kind: openai, base_url: "${BACKUP_URL}/v1", api_key: example }
routes:
  smart: { targets: [anthropic/claude-sonnet-4-5, openai/gpt-4o-mini] }
"#,
        "example config",
        &env,
    )?;
    let client = Client::from_config(&config)?;

    let mut request = ChatRequest::new(
        "smart",
        vec![
            Message::text(Role::System, "Be terse."),
            Message::text(Role::User, "Why use a gateway?"),
        ],
    );
    request.max_tokens = Some(64);

    let served = client.chat(request.clone()).await?;
    let text: String = served
        .value
        .content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    println!(
        "chat   via {} ({} attempt): {text}",
        served.target, served.attempts
    );

    // Knock the primary out: the same call now falls back.
    primary
        .sim
        .set_faults(vec![FaultRule::always(Fault::status(529))]);
    let served = client.stream(request).await?;
    print!(
        "stream via {} ({} attempts): ",
        served.target, served.attempts
    );
    let mut events = served.value;
    while let Some(event) = events.next().await {
        if let StreamEvent::TextDelta { text, .. } = event? {
            print!("{text}");
        }
    }
    println!();
    Ok(())
}
