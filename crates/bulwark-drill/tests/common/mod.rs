//! What the drill tests share: the demo config and the shipped scenarios.
#![allow(
    dead_code,
    reason = "shared by several test binaries, each using part of it"
)]
#![expect(
    clippy::unwrap_used,
    reason = "test fixtures: a broken fixture fails the test"
)]

use std::path::Path;

use bulwark_drill::Scenario;
use bulwark_gateway::GatewayConfig;

/// The CLI's demo config, with placeholder addresses (a drill points every
/// provider at its simulator).
pub fn demo_config() -> GatewayConfig {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../bulwark-cli/src/demo.yaml"),
    )
    .unwrap();
    GatewayConfig::from_yaml(&text, "demo.yaml", &|name| {
        Some(if name == "DEMO_LISTEN" {
            "127.0.0.1:0".into()
        } else {
            "http://127.0.0.1:9".into()
        })
    })
    .unwrap()
}

/// A scenario from `scenarios/`.
pub fn shipped(name: &str) -> Scenario {
    Scenario::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../scenarios")
            .join(name),
    )
    .unwrap()
}
