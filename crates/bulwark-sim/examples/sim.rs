//! Run the simulator: `cargo run -p bulwark-sim --example sim -- [ADDR] [SCENARIO.yaml]`.

use std::path::Path;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8089".to_string());
    let config = match args.next() {
        Some(path) => bulwark_sim::load_scenario(Path::new(&path))?,
        None => bulwark_sim::SimConfig::default(),
    };
    bulwark_sim::run(&addr, config).await?;
    Ok(())
}
