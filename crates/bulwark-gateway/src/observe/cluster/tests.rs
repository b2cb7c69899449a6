use bulwark::observe::component::ComponentState;
use bulwark::observe::incident::{Impact, Incident, IncidentStatus, TimelineEntry, TimelineKind};

use super::{INCIDENTS_SHOWN, TIMELINE_SHOWN, published_incidents};

fn incident(id: &str, status: IncidentStatus, entries: usize) -> Incident {
    Incident {
        id: id.into(),
        title: id.into(),
        status,
        worst: ComponentState::MajorOutage,
        components: vec!["p/gpt".into()],
        started_at: 0,
        updated_at: 0,
        resolved_at: None,
        impact: Impact::default(),
        timeline: (0..entries)
            .map(|at| TimelineEntry {
                at: at as i64,
                kind: TimelineKind::BreakerOpened,
                component: None,
                status,
                message: format!("entry {at}"),
            })
            .collect(),
    }
}

#[test]
fn the_open_incident_comes_from_the_tracker_even_when_never_stored() {
    let recent: Vec<Incident> = (0..30)
        .map(|i| incident(&format!("old-{i}"), IncidentStatus::Resolved, 1))
        .collect();
    let open = incident("taken-over", IncidentStatus::Investigating, 3);
    let (published, trimmed) = published_incidents(Some(&open), &recent);
    assert!(!trimmed);
    assert_eq!(published.len(), INCIDENTS_SHOWN);
    assert_eq!(published[0].id, "taken-over");
    assert_eq!(published[1].id, "old-0");
}

#[test]
fn the_tracker_copy_replaces_a_stored_one_and_timelines_are_bounded() {
    let stored = incident("inc", IncidentStatus::Investigating, 2);
    let open = incident("inc", IncidentStatus::Monitoring, TIMELINE_SHOWN + 30);
    let (published, trimmed) = published_incidents(Some(&open), &[stored]);
    assert!(trimmed);
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].status, IncidentStatus::Monitoring);
    assert_eq!(published[0].timeline.len(), TIMELINE_SHOWN);
    // The latest entries stay.
    assert_eq!(
        published[0].timeline.last().map(|e| e.at),
        Some((TIMELINE_SHOWN + 29) as i64)
    );
}
