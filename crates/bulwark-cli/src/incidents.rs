//! `bulwark incidents`: what the store remembers of past and open
//! incidents, read straight from it (the gateway need not be running).

use std::io::Write;

use anyhow::Context;
use bulwark::observe::incident::Incident;
use bulwark_store::Store;

pub async fn list(store_url: &str, limit: usize) -> anyhow::Result<()> {
    let store = open(store_url).await?;
    let incidents = store.incidents(limit).await?;
    let mut out = std::io::stdout().lock();
    if incidents.is_empty() {
        writeln!(out, "no incidents recorded in {}", store.backend())?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<26} {:<13} {:<17} {:>9} {:>9} {:>7}  TITLE",
        "ID", "STATUS", "STARTED (UTC)", "DURATION", "AFFECTED", "FAILED"
    )?;
    for incident in &incidents {
        writeln!(
            out,
            "{:<26} {:<13} {:<17} {:>9} {:>9} {:>7}  {}",
            incident.id,
            incident.status.as_str(),
            minute(incident.started_at),
            duration(incident),
            incident.impact.affected,
            incident.impact.failed,
            incident.title
        )?;
    }
    Ok(())
}

pub async fn show(store_url: &str, id: &str, markdown: bool) -> anyhow::Result<bool> {
    let store = open(store_url).await?;
    let Some(incident) = store.incident(id).await? else {
        eprintln!("no incident `{id}` in the store; `bulwark incidents list` shows them");
        return Ok(false);
    };
    let mut out = std::io::stdout().lock();
    if markdown {
        write!(out, "{}", bulwark_status::incident_markdown(&incident))?;
    } else {
        writeln!(out, "{}", serde_json::to_string_pretty(&incident)?)?;
    }
    Ok(true)
}

async fn open(url: &str) -> anyhow::Result<Store> {
    Store::connect(url)
        .await
        .with_context(|| "cannot open the store (config key `store`)")
}

fn minute(at: i64) -> String {
    let date = bulwark_store::utc_date(at);
    let in_day = at.rem_euclid(86_400_000) / 60_000;
    format!("{date} {:02}:{:02}", in_day / 60, in_day % 60)
}

fn duration(incident: &Incident) -> String {
    let end = incident.resolved_at.unwrap_or(incident.updated_at);
    let minutes = (end - incident.started_at).max(0) / 60_000;
    if minutes >= 60 {
        format!("{}h{:02}m", minutes / 60, minutes % 60)
    } else {
        format!("{minutes}m")
    }
}
