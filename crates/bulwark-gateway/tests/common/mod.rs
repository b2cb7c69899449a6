//! What the gateway's HTTP tests share: a gateway from YAML on 127.0.0.1.

use bulwark_gateway::{Gateway, GatewayConfig};
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
