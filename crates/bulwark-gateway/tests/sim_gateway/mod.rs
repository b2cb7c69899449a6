//! What the tests that run a gateway in front of one simulator share (those
//! that include this module also include `common`): starting the pair, and
//! reading a response header.

use bulwark_sim::{SimConfig, SimServer};

use crate::common;

/// Starts a simulator with `config`, then a gateway from the YAML that `yaml`
/// writes given the simulator's URL. Both stop when dropped.
pub async fn start(
    config: SimConfig,
    yaml: impl FnOnce(&str) -> String,
) -> Result<(SimServer, common::Running), Box<dyn std::error::Error>> {
    let sim = SimServer::start("127.0.0.1:0", config).await?;
    let gateway = common::start_gateway(&yaml(&sim.url())).await?;
    Ok((sim, gateway))
}

/// The response header `name`, if it is there and is text.
pub fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}
