//! The gateway's config loader (the engine's keys and its own) on any
//! text, every `${VAR}` set.
#![no_main]

use bulwark_gateway::config::GatewayConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = GatewayConfig::from_yaml(text, "fuzz.yaml", &|_| Some("x".to_string()));
    }
});
