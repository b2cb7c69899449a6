//! `--instances N`: the drill's gateway as N instances sharing one Redis,
//! as a deployment behind a load balancer runs it. The load is spread
//! round-robin over them (what a load balancer does), and what the report
//! counts (incidents, alerts) is counted for the deployment, so an outage
//! that the instances judged as one shows once.

use bulwark::observe::incident::Incident;
use bulwark_gateway::{Gateway, GatewayConfig};
use tokio::sync::oneshot;

use crate::run::DrillError;

/// The gateways, serving, until this is dropped.
pub(crate) struct Instances {
    pub gateways: Vec<Gateway>,
    /// Each gateway's `http://addr`, in the same order.
    pub bases: Vec<String>,
    _stops: Vec<oneshot::Sender<()>>,
}

/// Points the config's `redis:` at keys of this drill alone, so that a
/// drill never mixes its state with a deployment's (or another drill's)
/// on the same Redis. More than one instance needs `redis:`: without it
/// there is nothing that makes them one gateway.
pub(crate) fn isolate(config: &mut GatewayConfig, count: usize) -> Result<(), DrillError> {
    match config.engine.shared.as_mut() {
        Some(shared) => {
            shared.key_prefix = format!("{}drill-{:08x}:", shared.key_prefix, fastrand::u32(..));
            Ok(())
        }
        None if count > 1 => Err(DrillError::NeedsRedis(count)),
        None => Ok(()),
    }
}

/// Starts `count` gateways with the same config; the first listens on
/// `listen`, the others on free ports.
pub(crate) async fn start(
    config: &GatewayConfig,
    count: usize,
    listen: &str,
) -> Result<Instances, DrillError> {
    let mut instances = Instances {
        gateways: Vec::with_capacity(count),
        bases: Vec::with_capacity(count),
        _stops: Vec::with_capacity(count),
    };
    for index in 0..count.max(1) {
        let gateway = Gateway::start(config).await?;
        let addr = if index == 0 { listen } else { "127.0.0.1:0" };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| DrillError::Listen {
                addr: addr.to_string(),
                source,
            })?;
        instances
            .bases
            .push(format!("http://{}", listener.local_addr()?));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(bulwark_gateway::serve(listener, gateway.clone(), async {
            let _ = stopped.await;
        }));
        instances.gateways.push(gateway);
        instances._stops.push(stop);
    }
    Ok(instances)
}

impl Instances {
    /// Judges health once more on every instance (only the one holding the
    /// lease acts on it) and writes out what is pending.
    pub async fn settle(&self) {
        for gateway in &self.gateways {
            gateway.evaluate_health().await;
        }
        for gateway in &self.gateways {
            gateway.observer().flush().await;
            gateway.observer().flush_alerts().await;
        }
    }

    /// The deployment's incidents: each instance's, one copy of each.
    pub fn incidents(&self) -> Vec<Incident> {
        let mut incidents: Vec<Incident> = Vec::new();
        for gateway in &self.gateways {
            for incident in gateway.observer().recent_incidents() {
                match incidents.iter_mut().find(|i| i.id == incident.id) {
                    // The latest copy: another instance may have resolved it.
                    Some(known) if incident.updated_at > known.updated_at => *known = incident,
                    Some(_) => {}
                    None => incidents.push(incident),
                }
            }
        }
        incidents.sort_by_key(|i| i.started_at);
        incidents
    }
}

/// Names the config in the report with how it ran.
pub(crate) fn describe(config_name: String, count: usize) -> String {
    match count {
        0 | 1 => config_name,
        n => format!("{config_name}, {n} instances sharing Redis"),
    }
}
