//! What the gateway's HTTP tests share: a gateway from YAML on 127.0.0.1.

pub mod answers;

use bulwark_gateway::{Gateway, GatewayConfig};
use bulwark_sim::{SimConfig, SimServer};
use tokio::net::TcpListener;

/// A running gateway; it stops when this is dropped.
pub struct Running {
    pub base: String,
    /// The instance itself, for its observer and health evaluations.
    #[allow(
        dead_code,
        reason = "only some of the test binaries sharing this read it"
    )]
    pub gateway: Gateway,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Starts a gateway; its request log is an in-memory SQLite database unless
/// the YAML names a store.
pub async fn start_gateway(yaml: &str) -> Result<Running, Box<dyn std::error::Error>> {
    let yaml = if yaml.lines().any(|l| l.starts_with("store:")) {
        yaml.to_string()
    } else {
        format!("store: \"sqlite::memory:\"\n{yaml}")
    };
    let config = GatewayConfig::from_yaml(&yaml, "test", &|_| None)?;
    let listener = TcpListener::bind(config.listen).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let gateway = Gateway::start(&config).await?;
    tokio::spawn(bulwark_gateway::serve(listener, gateway.clone(), async {
        let _ = stopped.await;
    }));
    Ok(Running {
        base,
        gateway,
        _stop: stop,
    })
}

/// A simulated Anthropic provider `p` and a gateway whose route `chat`
/// goes to `p/claude-sonnet-4-5`. The simulator stops when dropped.
#[allow(
    dead_code,
    reason = "only some of the test binaries sharing this use it"
)]
pub async fn gateway_to_one_sim() -> Result<(SimServer, Running), Box<dyn std::error::Error>> {
    let sim = SimServer::start("127.0.0.1:0", SimConfig::default()).await?;
    let yaml = format!(
        "listen: 127.0.0.1:0\nproviders:\n  p: {{ kind: anthropic, base_url: \"{}\", api_key: k }}\nroutes:\n  chat: {{ targets: [p/claude-sonnet-4-5] }}\n",
        sim.url()
    );
    let running = start_gateway(&yaml).await?;
    Ok((sim, running))
}

/// A one-turn OpenAI chat request to the route `chat`.
#[allow(
    dead_code,
    reason = "only some of the test binaries sharing this use it"
)]
#[expect(
    clippy::unwrap_used,
    reason = "test helper: a failed request fails the test"
)]
pub async fn chat(http: &reqwest::Client, base: &str) -> reqwest::Response {
    http.post(format!("{base}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(
            serde_json::json!({"model": "chat", "messages": [{"role": "user", "content": "hello"}]})
                .to_string(),
        )
        .send()
        .await
        .unwrap()
}
