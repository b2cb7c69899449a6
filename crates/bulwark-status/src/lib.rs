//! Bulwark's public status page and its machine-readable forms.
//!
//! Every output is a pure function of a [`StatusSnapshot`], so the gateway
//! can render from whatever it has in memory, tests need no server, and a
//! page rendered during an outage depends on nothing else being up: the
//! HTML carries its own CSS and SVG and loads nothing from anywhere.

mod atom;
mod format;
mod html;
mod notice;
mod public;
mod review;
mod statuspage;

use bulwark::observe::component::{ComponentKind, ComponentState};
use bulwark::observe::incident::Incident;
use bulwark::observe::snapshot::StatusSnapshot;

pub use atom::atom_feed;
pub use html::render_html;
pub use notice::{display_names, notices};
pub use public::{PublicView, UPSTREAM};
pub use review::incident_markdown;
pub use statuspage::{components_json, incidents_json, status_json, summary_json};

/// The kind of a component an incident or timeline entry names. Names
/// that are no longer on the page are guessed from their shape, since
/// targets are always `provider/model`.
pub(crate) fn component_kind(snapshot: &StatusSnapshot, name: &str) -> ComponentKind {
    snapshot
        .components
        .iter()
        .find(|c| c.name == name)
        .map_or_else(
            || {
                if name.contains('/') {
                    ComponentKind::Target
                } else {
                    ComponentKind::Route
                }
            },
            |c| c.kind,
        )
}

/// What clients got from an incident (`Incident::felt`): while it is
/// open, the page's routes it names say it before any request is counted.
pub(crate) fn felt(snapshot: &StatusSnapshot, incident: &Incident) -> ComponentState {
    let has_routes = snapshot
        .components
        .iter()
        .any(|c| c.kind == ComponentKind::Route);
    let routes = (has_routes && !incident.status.is_closed()).then(|| {
        snapshot
            .components
            .iter()
            .filter(|c| c.kind == ComponentKind::Route && incident.components.contains(&c.name))
            .map(|c| c.state)
            .max()
            .unwrap_or(ComponentState::Operational)
    });
    incident.felt(routes)
}

/// Section titles, shared by the HTML page and the JSON groups so both
/// name them alike.
pub fn group_title(kind: ComponentKind) -> &'static str {
    match kind {
        ComponentKind::Route => "Routes",
        ComponentKind::Target => "Upstream providers",
        ComponentKind::Dependency => "Gateway",
    }
}

/// A link to the page (or something under it). Without a configured
/// public URL it is the path the gateway serves the page on, which still
/// works from a browser that loaded the page.
pub(crate) fn page_link(snapshot: &StatusSnapshot, suffix: &str) -> String {
    let base = snapshot
        .page_url
        .as_deref()
        .map(|u| u.trim_end_matches('/'))
        .filter(|u| !u.is_empty())
        .unwrap_or("/status");
    format!("{base}{suffix}")
}
