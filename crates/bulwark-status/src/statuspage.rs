//! The machine-readable page, in Atlassian Statuspage's public v2 shapes.
//!
//! Statuspage is what status pollers, chat integrations and dashboards
//! already speak, so copying its field names and value spellings lets them
//! watch Bulwark without any new client code. Fields Bulwark has no notion
//! of (tweets, scheduled maintenances) are present with empty values
//! because strict clients fail on missing keys but not on nulls.

use bulwark::observe::component::{ComponentKind, ComponentState};
use bulwark::observe::incident::{Incident, IncidentStatus};
use bulwark::observe::snapshot::{ComponentStatus, StatusSnapshot};
use serde_json::{Map, Value, json};

use crate::format::{component_id, iso_ms, page_id, stable_id};
use crate::{component_kind, group_title, page_link};

/// Statuspage's wording for each indicator, so a poller that shows the
/// description verbatim reads the same as for any other vendor.
pub(crate) fn description(state: ComponentState) -> &'static str {
    match state {
        ComponentState::Operational => "All Systems Operational",
        ComponentState::UnderMaintenance => "Service Under Maintenance",
        ComponentState::DegradedPerformance => "Minor Service Outage",
        ComponentState::PartialOutage => "Partial System Outage",
        ComponentState::MajorOutage => "Major System Outage",
    }
}

fn page(snapshot: &StatusSnapshot) -> Value {
    json!({
        "id": page_id(&snapshot.page_name),
        "name": snapshot.page_name,
        "url": page_link(snapshot, ""),
        "time_zone": "Etc/UTC",
        "updated_at": iso_ms(snapshot.generated_at),
    })
}

fn status(snapshot: &StatusSnapshot) -> Value {
    let overall = snapshot.overall();
    json!({
        "indicator": overall.indicator(),
        "description": description(overall),
    })
}

/// When Bulwark first saw the component: the oldest day on its chart, as
/// the snapshot keeps no creation time.
fn first_seen(component: &ComponentStatus) -> (Option<String>, i64) {
    let first_day = component
        .days
        .iter()
        .find_map(|d| crate::format::parse_date(&d.date));
    match first_day {
        Some(days) => (
            Some(crate::format::date_from_days(days)),
            (days * 86_400_000).min(component.updated_at),
        ),
        None => (None, component.updated_at),
    }
}

fn group_id(kind: ComponentKind) -> String {
    stable_id(&format!("group:{}", kind.as_str()))
}

fn component(
    snapshot: &StatusSnapshot,
    c: &ComponentStatus,
    position: usize,
    in_group: bool,
) -> Value {
    let (start_date, created_at) = first_seen(c);
    json!({
        "id": component_id(c.kind, &c.name),
        "name": c.name,
        "status": c.state.as_str(),
        "created_at": iso_ms(created_at),
        "updated_at": iso_ms(c.updated_at),
        "position": position,
        "description": c.reason,
        "showcase": true,
        "start_date": start_date,
        "group_id": if in_group { Value::from(group_id(c.kind)) } else { Value::Null },
        "page_id": page_id(&snapshot.page_name),
        "group": false,
        "only_show_if_degraded": false,
    })
}

/// All components in page order: a group per kind (as Statuspage models
/// sections: the group with `group: true` and its members' ids in
/// `components`, each member pointing back with `group_id`), each followed
/// by its members. Routes come first, the upstream providers behind them
/// second, as on the page. Positions count from 1.
fn components(snapshot: &StatusSnapshot) -> Vec<Value> {
    let mut out = Vec::with_capacity(snapshot.components.len() + 3);
    for kind in [
        ComponentKind::Route,
        ComponentKind::Target,
        ComponentKind::Dependency,
    ] {
        let members: Vec<&ComponentStatus> = snapshot
            .components
            .iter()
            .filter(|c| c.kind == kind)
            .collect();
        let Some(updated_at) = members.iter().map(|c| c.updated_at).max() else {
            continue;
        };
        let created_at = members
            .iter()
            .map(|c| first_seen(c).1)
            .min()
            .unwrap_or(updated_at);
        let worst = members
            .iter()
            .map(|c| c.state)
            .max()
            .unwrap_or(ComponentState::Operational);
        let member_ids: Vec<String> = members
            .iter()
            .map(|c| component_id(c.kind, &c.name))
            .collect();
        out.push(json!({
            "id": group_id(kind),
            "name": group_title(kind),
            "status": worst.as_str(),
            "created_at": iso_ms(created_at),
            "updated_at": iso_ms(updated_at),
            "position": out.len() + 1,
            "description": Value::Null,
            "showcase": false,
            "start_date": Value::Null,
            "group_id": Value::Null,
            "page_id": page_id(&snapshot.page_name),
            "group": true,
            "only_show_if_degraded": false,
            "components": member_ids,
        }));
        for c in members {
            let position = out.len() + 1;
            out.push(component(snapshot, c, position, true));
        }
    }
    out
}

/// An incident names its components; find them on the page, or describe a
/// component that has since left the config from what the incident knows.
fn incident_components(snapshot: &StatusSnapshot, incident: &Incident) -> Vec<Value> {
    incident
        .components
        .iter()
        .enumerate()
        .map(
            |(i, name)| match snapshot.components.iter().find(|c| &c.name == name) {
                Some(c) => component(snapshot, c, i + 1, true),
                None => {
                    let kind = component_kind(snapshot, name);
                    let state = if incident.status.is_closed() {
                        ComponentState::Operational
                    } else {
                        incident.worst
                    };
                    json!({
                        "id": component_id(kind, name),
                        "name": name,
                        "status": state.as_str(),
                        "created_at": iso_ms(incident.started_at),
                        "updated_at": iso_ms(incident.updated_at),
                        "position": i + 1,
                        "description": Value::Null,
                        "showcase": false,
                        "start_date": Value::Null,
                        "group_id": Value::Null,
                        "page_id": page_id(&snapshot.page_name),
                        "group": false,
                        "only_show_if_degraded": false,
                    })
                }
            },
        )
        .collect()
}

/// Update ids count from the start of the timeline, which only grows, so
/// an update keeps its id as later ones arrive.
pub(crate) fn update_id(incident: &Incident, index: usize) -> String {
    format!("{}-u{}", incident.id, index + 1)
}

fn incident(snapshot: &StatusSnapshot, incident: &Incident) -> Value {
    let updates: Vec<Value> = incident
        .timeline
        .iter()
        .enumerate()
        .rev() // Statuspage lists the newest update first.
        .map(|(i, entry)| {
            let affected = entry.component.as_ref().map(|name| {
                json!([{
                    "code": component_id(component_kind(snapshot, name), name),
                    "name": name,
                }])
            });
            json!({
                "id": update_id(incident, i),
                "status": entry.status.as_str(),
                "body": entry.message,
                "incident_id": incident.id,
                "created_at": iso_ms(entry.at),
                "updated_at": iso_ms(entry.at),
                "display_at": iso_ms(entry.at),
                "affected_components": affected,
                "deliver_notifications": true,
                "custom_tweet": Value::Null,
                "tweet_id": Value::Null,
            })
        })
        .collect();
    let monitoring_at = incident
        .timeline
        .iter()
        .find(|e| e.status == IncidentStatus::Monitoring)
        .map(|e| iso_ms(e.at));
    json!({
        "id": incident.id,
        "name": incident.title,
        "status": incident.status.as_str(),
        "created_at": iso_ms(incident.started_at),
        "updated_at": iso_ms(incident.updated_at),
        "monitoring_at": monitoring_at,
        "resolved_at": incident.resolved_at.map(iso_ms),
        "impact": crate::felt(snapshot, incident).indicator(),
        "shortlink": page_link(snapshot, &format!("#{}", incident.id)),
        "started_at": iso_ms(incident.started_at),
        "page_id": page_id(&snapshot.page_name),
        "incident_updates": updates,
        "components": incident_components(snapshot, incident),
    })
}

fn with_page(snapshot: &StatusSnapshot, rest: Value) -> Value {
    let mut map = Map::new();
    map.insert("page".to_string(), page(snapshot));
    if let Value::Object(rest) = rest {
        map.extend(rest);
    }
    Value::Object(map)
}

/// `GET /api/v2/summary.json`: everything a poller needs in one call.
/// Like Statuspage, only unresolved incidents are listed here.
pub fn summary_json(snapshot: &StatusSnapshot) -> Value {
    let incidents: Vec<Value> = snapshot
        .active_incidents
        .iter()
        .map(|i| incident(snapshot, i))
        .collect();
    with_page(
        snapshot,
        json!({
            "components": components(snapshot),
            "incidents": incidents,
            "scheduled_maintenances": [],
            "status": status(snapshot),
            // Not Statuspage's: outages fallback absorbed, in words. An
            // extra key is safe, as strict clients only fail on missing ones.
            "notices": crate::notices(&snapshot.absorbed, &snapshot.provider_names),
        }),
    )
}

/// `GET /api/v2/status.json`: the one-line answer, for cheap polling.
pub fn status_json(snapshot: &StatusSnapshot) -> Value {
    with_page(snapshot, json!({ "status": status(snapshot) }))
}

/// `GET /api/v2/incidents.json`: unresolved incidents, then recent
/// resolved ones, each newest first.
pub fn incidents_json(snapshot: &StatusSnapshot) -> Value {
    let incidents: Vec<Value> = snapshot
        .active_incidents
        .iter()
        .chain(&snapshot.recent_incidents)
        .map(|i| incident(snapshot, i))
        .collect();
    with_page(snapshot, json!({ "incidents": incidents }))
}

/// `GET /api/v2/components.json`.
pub fn components_json(snapshot: &StatusSnapshot) -> Value {
    with_page(snapshot, json!({ "components": components(snapshot) }))
}
