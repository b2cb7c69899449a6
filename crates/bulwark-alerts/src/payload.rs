//! Webhook bodies. Kept pure so the shapes can be tested without a server.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bulwark::observe::UnixMs;
use bulwark::observe::incident::{Incident, TimelineEntry};
use serde_json::{Value, json};

use crate::{Alert, WebhookFormat};

/// The body for `alert` in `format`; `dedup_key` goes into generic bodies
/// so receivers that see a retried post can drop it themselves.
pub fn body(alert: &Alert, format: WebhookFormat, dedup_key: &str) -> Value {
    match format {
        WebhookFormat::Generic => generic(alert, dedup_key),
        WebhookFormat::Slack => slack(alert),
    }
}

fn generic(alert: &Alert, dedup_key: &str) -> Value {
    let text = summary(alert);
    match alert {
        Alert::IncidentOpened(incident) | Alert::IncidentResolved(incident) => json!({
            "kind": alert.kind(),
            "dedup_key": dedup_key,
            "incident": incident,
            "update": incident.timeline.last(),
            "text": text,
        }),
        Alert::IncidentUpdated { incident, update } => json!({
            "kind": alert.kind(),
            "dedup_key": dedup_key,
            "incident": incident,
            "update": update,
            "text": text,
        }),
        Alert::BudgetBurn {
            route,
            severity,
            burn_rate,
            long_window,
            short_window,
            budget_remaining,
        } => json!({
            "kind": alert.kind(),
            "dedup_key": dedup_key,
            "route": route,
            "severity": severity.as_str(),
            "burn_rate": burn_rate,
            "long_window_secs": long_window.as_secs(),
            "short_window_secs": short_window.as_secs(),
            "budget_remaining": budget_remaining,
            "text": text,
        }),
    }
}

/// One line for people, used as the generic `text` and Slack's fallback
/// (notifications and clients without blocks).
pub fn summary(alert: &Alert) -> String {
    match alert {
        Alert::IncidentOpened(i) => format!(
            "Incident opened: {} ({} affecting {})",
            i.title,
            i.worst.label(),
            components(i)
        ),
        Alert::IncidentUpdated { incident, update } => format!(
            "Incident updated: {} ({}): {}",
            incident.title,
            update.status.as_str(),
            update.message
        ),
        Alert::IncidentResolved(i) => match i.resolved_at {
            Some(end) => format!(
                "Incident resolved: {} after {}",
                i.title,
                duration_words(end - i.started_at)
            ),
            None => format!("Incident resolved: {}", i.title),
        },
        Alert::BudgetBurn {
            route,
            severity,
            burn_rate,
            long_window,
            short_window,
            budget_remaining,
        } => format!(
            "Error budget burn on route {route} ({}): {burn_rate:.1}x over the last {} and {}, {:.1}% of the budget left",
            severity.as_str(),
            window_words(*long_window),
            window_words(*short_window),
            budget_remaining * 100.0
        ),
    }
}

fn slack(alert: &Alert) -> Value {
    let text = summary(alert);
    let blocks = match alert {
        Alert::IncidentOpened(i) => incident_blocks("Incident opened", i, i.timeline.last()),
        Alert::IncidentUpdated { incident, update } => {
            incident_blocks("Incident updated", incident, Some(update))
        }
        Alert::IncidentResolved(i) => incident_blocks("Incident resolved", i, i.timeline.last()),
        Alert::BudgetBurn {
            route,
            severity,
            burn_rate,
            long_window,
            short_window,
            budget_remaining,
        } => vec![
            mrkdwn_section(&format!(
                "*Error budget burn ({}): route {}*",
                severity.as_str(),
                escape(route)
            )),
            json!({
                "type": "section",
                "fields": [
                    mrkdwn(&format!("*Burn rate*\n{burn_rate:.1}x")),
                    mrkdwn(&format!(
                        "*Windows*\n{} and {}",
                        window_words(*long_window),
                        window_words(*short_window)
                    )),
                    mrkdwn(&format!(
                        "*Budget left*\n{:.1}%",
                        budget_remaining * 100.0
                    )),
                ],
            }),
        ],
    };
    json!({ "text": text, "blocks": blocks })
}

fn incident_blocks(what: &str, i: &Incident, latest: Option<&TimelineEntry>) -> Vec<Value> {
    let impact = &i.impact;
    let mut blocks = vec![
        mrkdwn_section(&format!(
            "*{what}: {}*\nStatus: {}. Worst state: {}.",
            escape(&i.title),
            i.status.as_str(),
            i.worst.label()
        )),
        json!({
            "type": "section",
            "fields": [
                mrkdwn(&format!("*Components*\n{}", escape(&components(i)))),
                mrkdwn(&format!(
                    "*Impact* ({})\n{} requests affected, {} failed, {} saved by fallback, {} from cache, {} degraded",
                    i.impact_level(),
                    impact.affected,
                    impact.failed,
                    impact.saved_by_fallback,
                    impact.from_cache,
                    impact.degraded
                )),
            ],
        }),
    ];
    if let Some(update) = latest {
        blocks.push(mrkdwn_section(&format!(
            "*Latest update* ({}, {}): {}",
            update.status.as_str(),
            slack_date(update.at),
            escape(&update.message)
        )));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [mrkdwn(&format!(
            "{} · started {}",
            escape(&i.id),
            slack_date(i.started_at)
        ))],
    }));
    blocks
}

fn mrkdwn(text: &str) -> Value {
    json!({ "type": "mrkdwn", "text": text })
}

fn mrkdwn_section(text: &str) -> Value {
    json!({ "type": "section", "text": mrkdwn(text) })
}

fn components(i: &Incident) -> String {
    if i.components.is_empty() {
        "no listed components".to_string()
    } else {
        i.components.join(", ")
    }
}

/// Slack reads `&`, `<` and `>` as markup (links, mentions); names and
/// admin notes must not be able to ping a channel.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Slack shows this in each reader's own time zone; the fallback is for
/// clients that cannot.
fn slack_date(at: UnixMs) -> String {
    let secs = at.div_euclid(1000);
    let fallback = u64::try_from(secs)
        .ok()
        .map(|s| httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(s)))
        .unwrap_or_else(|| httpdate::fmt_http_date(SystemTime::UNIX_EPOCH));
    format!("<!date^{secs}^{{date_short_pretty}} {{time}}|{fallback}>")
}

fn duration_words(ms: i64) -> String {
    let minutes = ms.max(0) / 60_000;
    if minutes < 1 {
        "less than a minute".to_string()
    } else if minutes < 120 {
        format!("{minutes} min")
    } else {
        format!("{} h {} min", minutes / 60, minutes % 60)
    }
}

fn window_words(window: Duration) -> String {
    let secs = window.as_secs();
    if secs >= 86_400 && secs.is_multiple_of(86_400) {
        format!("{} d", secs / 86_400)
    } else if secs >= 3600 && secs.is_multiple_of(3600) {
        format!("{} h", secs / 3600)
    } else if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}
