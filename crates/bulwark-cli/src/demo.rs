//! `bulwark demo`: the outage drill as a showcase. It replays
//! `scenarios/provider-outage.yaml` (Anthropic down for three hours)
//! compressed to two minutes against the demo config, prints the report,
//! and leaves the gateway and its status page running.

use std::path::Path;

use bulwark_drill::run::DrillOptions;
use bulwark_drill::{Scenario, Speed};

use crate::drill::{load_config, problems, run_drill, write_report};

const OUTAGE: &str = include_str!("../../../scenarios/provider-outage.yaml");

pub async fn run(listen: &str, speed: f64, no_wait: bool, out: &Path) -> anyhow::Result<()> {
    let scenario = Scenario::parse(OUTAGE, "scenarios/provider-outage.yaml").map_err(problems)?;
    let (config, config_name) = load_config(None)?;
    println!(
        "Bulwark demo: Anthropic's API fails for three hours (most calls 529/5xx, some hanging 47 s), replayed at {speed}x."
    );
    println!(
        "The app calls route `smart` (anthropic -> openai -> gemini) through Bulwark, and the same"
    );
    println!("requests go straight to Anthropic, as they would without Bulwark.");
    if !listen.ends_with(":0") {
        println!("Watch it live on the status page: http://{listen}/status");
    }
    println!();
    let run = run_drill(DrillOptions {
        scenario,
        config,
        config_name,
        route: Some("smart".into()),
        speed: Speed::new(speed).map_err(|e| anyhow::anyhow!("--speed: {e}"))?,
        rps: None,
        duration: None,
        store: None,
        listen: listen.to_string(),
        seed: fastrand::u64(..),
        instances: 1,
    })
    .await?;
    write_report(&run, out)?;
    let base = &run.base;
    println!(
        "\nStatus page: {base}/status   (JSON: {base}/api/v2/summary.json, metrics: {base}/metrics)"
    );
    if no_wait {
        return Ok(());
    }
    println!(
        "The gateway keeps running (the providers in their last phase). Try:\n  curl {base}/v1/chat/completions -H 'content-type: application/json' \\\n    -d '{{\"model\":\"smart\",\"messages\":[{{\"role\":\"user\",\"content\":\"Hello\"}}]}}'\nPress Ctrl-C to stop."
    );
    let _ = tokio::signal::ctrl_c().await;
    drop(run);
    Ok(())
}
