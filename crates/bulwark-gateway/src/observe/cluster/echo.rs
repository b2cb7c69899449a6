//! `/status/events` on an instance that does not judge: the judge's
//! changes, told as the judge's own would be, rather than this instance's
//! silent judgements, so a live page shows what its reload would.

use std::collections::HashMap;

use bulwark::observe::UnixMs;
use bulwark::observe::component::ComponentState;
use bulwark::observe::incident::IncidentStatus;

use super::Judged;
use crate::observe::Observer;

/// What the last judged status said, to tell what changed since.
#[derive(Debug, Default)]
pub(super) struct Seen {
    components: HashMap<String, ComponentState>,
    /// Status, timeline length and last entry's time: the published
    /// timeline is capped, so its length alone stops changing.
    incidents: HashMap<String, (IncidentStatus, usize, UnixMs)>,
}

/// Sends what changed between the last judged status seen and `judged`.
/// The first one seen only sets the baseline.
pub(super) fn echo(observer: &Observer, seen: &mut Seen, judged: &Judged) {
    let first = seen.components.is_empty() && seen.incidents.is_empty();
    for component in &judged.components {
        let before = seen
            .components
            .insert(component.name.clone(), component.state);
        if first || before.is_none_or(|b| b == component.state) {
            continue;
        }
        let from = before.unwrap_or(ComponentState::Operational);
        let _ = observer.updates.send(
            serde_json::json!({
                "type": "component",
                "component": component.name,
                "from": from.as_str(),
                "status": component.state.as_str(),
                "reason": component.reason,
                "at": component.updated_at,
            })
            .to_string(),
        );
    }
    for incident in &judged.incidents {
        let now = (
            incident.status,
            incident.timeline.len(),
            incident.timeline.last().map_or(0, |e| e.at),
        );
        let before = seen.incidents.insert(incident.id.clone(), now);
        if first || before == Some(now) {
            continue;
        }
        let change = match before {
            None => "opened",
            Some(_) if incident.status.is_closed() => "resolved",
            Some(_) => "updated",
        };
        let _ = observer.updates.send(
            serde_json::json!({
                "type": "incident",
                "change": change,
                "id": incident.id,
                "status": incident.status.as_str(),
                "title": incident.title,
            })
            .to_string(),
        );
    }
    // Only what the status still carries: the map stays as small as it.
    seen.components
        .retain(|name, _| judged.components.iter().any(|c| &c.name == name));
    seen.incidents
        .retain(|id, _| judged.incidents.iter().any(|i| &i.id == id));
}
