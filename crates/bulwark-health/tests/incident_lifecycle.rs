//! A scripted outage, driven through the tracker second by second: the
//! exact evaluations at which states change, the incident opens and
//! resolves, and what its impact counts say.

use std::collections::HashMap;
use std::time::Duration;

use bulwark::observe::UnixMs;
use bulwark::observe::component::ComponentState::{self, *};
use bulwark::observe::incident::{Impact, IncidentStatus, TimelineKind};
use bulwark::observe::record::{AttemptRecord, RequestRecord};
use bulwark::resilience::breaker::BreakerState;
use bulwark_health::{HealthSettings, HealthTracker, IncidentUpdate, Topology};

const PRIMARY: &str = "a/m1";
const BACKUP: &str = "b/m2";

fn settings() -> HealthSettings {
    HealthSettings {
        window: Duration::from_secs(60),
        evaluate_every: Duration::from_secs(5),
        min_volume: 5,
        raise_after: 2,
        recover_after: 6,
        incident_after: Duration::from_secs(30),
        resolve_after: Duration::from_secs(120),
        slow_factor: 3.0,
    }
}

fn attempt(target: &str, at: UnixMs, ok: bool) -> AttemptRecord {
    AttemptRecord {
        target: target.into(),
        at,
        latency_ms: 100.0,
        first_token_ms: ok.then_some(100.0),
        status: Some(if ok { 200 } else { 529 }),
        error_class: (!ok).then(|| "overloaded".into()),
        hedge: false,
    }
}

/// A request at `at` ms: the primary answers, or fails and the backup does.
fn request(at: UnixMs, primary_up: bool) -> RequestRecord {
    let attempts = if primary_up {
        vec![attempt(PRIMARY, at, true)]
    } else {
        vec![attempt(PRIMARY, at, false), attempt(BACKUP, at + 100, true)]
    };
    RequestRecord {
        id: format!("r{at}"),
        at,
        route: "chat".into(),
        client_format: "openai".into(),
        stream: false,
        status: 200,
        error_class: None,
        target: Some(if primary_up { PRIMARY } else { BACKUP }.into()),
        fallback: !primary_up,
        cache: None,
        degraded: None,
        dropped: Vec::new(),
        latency_ms: 200.0,
        first_token_ms: Some(150.0),
        input_tokens: Some(10),
        output_tokens: Some(5),
        key_id: None,
        request_body: None,
        client_request_id: None,
        attempts,
    }
}

struct Run {
    tracker: HealthTracker,
    /// (second, component, to)
    changes: Vec<(i64, String, ComponentState)>,
    updates: Vec<(i64, IncidentUpdate)>,
    /// (second, impact) of each incident handed over for storing without a
    /// timeline update.
    stored: Vec<(i64, Impact)>,
}

/// Two requests a second; the primary is down from 60 s to 180 s.
fn run(until_s: i64) -> Run {
    let topology = Topology {
        routes: vec![("chat".into(), vec![PRIMARY.into(), BACKUP.into()])],
    };
    let mut run = Run {
        tracker: HealthTracker::new(settings(), topology, HashMap::new(), 0),
        changes: Vec::new(),
        updates: Vec::new(),
        stored: Vec::new(),
    };
    let breakers = HashMap::from([(PRIMARY.to_string(), BreakerState::Closed)]);
    for half_second in 0..until_s * 2 {
        let at = half_second * 500;
        let down = (60_000..180_000).contains(&at);
        if let Some(update) = run.tracker.observe(&request(at, !down)) {
            run.updates.push((at / 1000, update));
        }
        let next = at + 500;
        if next % 5_000 == 0 {
            let evaluation = run.tracker.evaluate(next, &breakers);
            for change in evaluation.changes {
                run.changes.push((next / 1000, change.name, change.to));
            }
            for update in evaluation.incidents {
                run.updates.push((next / 1000, update));
            }
            if let Some(incident) = evaluation.incident_to_store {
                run.stored.push((next / 1000, incident.impact));
            }
        }
    }
    run
}

#[test]
fn the_primary_climbs_the_ladder_and_recovers_slowly() {
    let run = run(400);
    let primary: Vec<_> = run
        .changes
        .iter()
        .filter(|(_, name, _)| name == PRIMARY)
        .map(|(s, _, to)| (*s, *to))
        .collect();
    // Error rate over the 60 s window: 10/120 at 65 s (one tick is not
    // enough), 20/120 at 70 s; 40/120 at 80 s; 90/120 at 105 s, shown at
    // 110 s. Recovery needs six better ticks in a row: from 200 s (80/120
    // failed) to 225 s (30/120, partial), then 230..255 s down to 0.
    assert_eq!(
        primary,
        vec![
            (70, DegradedPerformance),
            (80, PartialOutage),
            (110, MajorOutage),
            (225, PartialOutage),
            (255, Operational),
        ]
    );
    let backup_changes = run
        .changes
        .iter()
        .filter(|(_, name, _)| name == BACKUP)
        .count();
    assert_eq!(backup_changes, 0, "the backup never failed");
}

#[test]
fn one_incident_opens_gathers_the_route_and_resolves_with_its_impact() {
    let run = run(400);
    let opened: Vec<_> = run
        .updates
        .iter()
        .filter_map(|(s, u)| matches!(u, IncidentUpdate::Opened(_)).then_some(*s))
        .collect();
    // Degraded since 70 s; incident_after is 30 s.
    assert_eq!(opened, vec![100]);
    let resolved: Vec<_> = run
        .updates
        .iter()
        .filter_map(|(s, u)| match u {
            IncidentUpdate::Resolved(incident) => Some((*s, incident.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(resolved.len(), 1);
    let (at, incident) = &resolved[0];
    // Every component operational from 255 s, for resolve_after (120 s).
    assert_eq!(*at, 375);
    assert_eq!(incident.status, IncidentStatus::Resolved);
    assert_eq!(incident.started_at, 100_000);
    assert_eq!(incident.resolved_at, Some(375_000));
    assert_eq!(incident.worst, MajorOutage);
    // The route showed degraded performance (half its answers from the
    // backup) from 95 s, so it joins at the start.
    assert_eq!(
        incident.components,
        vec![PRIMARY.to_string(), "chat".to_string()]
    );
    // Requests from 100 s to 375 s, two a second: 550, of which those
    // before 180 s (160) were saved by the backup. None failed.
    assert_eq!(incident.impact.affected, 550);
    assert_eq!(incident.impact.saved_by_fallback, 160);
    assert_eq!(incident.impact.failed, 0);
    let kinds: Vec<_> = incident.timeline.iter().map(|e| e.kind).collect();
    assert_eq!(kinds.first(), Some(&TimelineKind::Detected));
    assert_eq!(kinds.last(), Some(&TimelineKind::Resolved));
    for expected in [
        TimelineKind::FallbackEngaged,
        TimelineKind::StateChanged,
        TimelineKind::PartialRecovery,
    ] {
        assert!(
            kinds.contains(&expected),
            "{expected:?} missing from {kinds:?}"
        );
    }
    // Monitoring before resolving.
    assert!(
        incident
            .timeline
            .iter()
            .any(|e| e.status == IncidentStatus::Monitoring)
    );
    assert!(run.tracker.open_incident().is_none());
}

#[test]
fn an_open_breaker_is_a_major_outage_at_once_and_an_admin_can_close_the_incident() {
    let topology = Topology {
        routes: vec![("chat".into(), vec![PRIMARY.into(), BACKUP.into()])],
    };
    let mut tracker = HealthTracker::new(settings(), topology, HashMap::new(), 0);
    let open = HashMap::from([(PRIMARY.to_string(), BreakerState::Open)]);
    let evaluation = tracker.evaluate(5_000, &open);
    assert_eq!(evaluation.changes.len(), 1);
    assert_eq!(evaluation.changes[0].to, MajorOutage);
    let mut opened = None;
    for t in 2..=8 {
        let evaluation = tracker.evaluate(t * 5_000, &open);
        if let Some(IncidentUpdate::Opened(incident)) = evaluation.incidents.first() {
            opened = Some((t * 5, incident.clone()));
        }
    }
    let (at, incident) = opened.expect("an incident opened");
    assert_eq!(at, 35);
    assert!(incident.title.contains(PRIMARY), "{}", incident.title);
    // A failed probe reopening the breaker is not news; leaving closed is.
    assert!(
        tracker
            .on_breaker(35_500, PRIMARY, BreakerState::HalfOpen, BreakerState::Open)
            .is_none()
    );
    assert!(
        tracker
            .on_breaker(35_600, PRIMARY, BreakerState::Closed, BreakerState::Open)
            .is_some()
    );
    // The same break heard from two more instances sharing it: one line.
    for at in [35_601, 35_602] {
        assert!(
            tracker
                .on_breaker(at, PRIMARY, BreakerState::Closed, BreakerState::Open)
                .is_none()
        );
    }
    let closed_once = (35_700..35_703)
        .filter_map(|at| {
            tracker.on_breaker(at, PRIMARY, BreakerState::HalfOpen, BreakerState::Closed)
        })
        .count();
    assert_eq!(closed_once, 1);
    assert!(
        tracker
            .on_breaker(35_800, PRIMARY, BreakerState::Closed, BreakerState::Open)
            .is_some(),
        "a new break after the close is news again"
    );
    let note = tracker
        .annotate(
            36_000,
            Some(IncidentStatus::Identified),
            Some("provider confirmed".into()),
        )
        .expect("the incident is open");
    assert_eq!(note.incident().status, IncidentStatus::Identified);
    let closed = tracker
        .annotate(37_000, Some(IncidentStatus::Resolved), None)
        .expect("closed");
    assert_eq!(closed.incident().resolved_at, Some(37_000));
    assert!(tracker.open_incident().is_none());
}

#[test]
fn maintenance_shows_at_once_and_does_not_open_an_incident() {
    let topology = Topology {
        routes: vec![("chat".into(), vec![PRIMARY.into()])],
    };
    let mut tracker = HealthTracker::new(settings(), topology, HashMap::new(), 0);
    let change = tracker
        .set_maintenance(1_000, PRIMARY, true)
        .expect("known component");
    assert_eq!(change.to, UnderMaintenance);
    for t in 1..30 {
        let evaluation = tracker.evaluate(t * 5_000, &HashMap::new());
        assert!(evaluation.incidents.is_empty());
        assert!(evaluation.changes.is_empty());
    }
    assert!(tracker.set_maintenance(2_000, "nope", true).is_none());
}

#[test]
fn impact_counts_reach_the_store_between_timeline_updates() {
    let run = run(400);
    // Open from 100 s to 375 s, two affected requests a second. Every
    // evaluation hands the counts over, except those whose timeline update
    // carries the incident itself (opened at 100 s, monitoring at 255 s).
    let expected: Vec<(i64, u64)> = (105..375)
        .step_by(5)
        .filter(|&s| s != 255)
        .map(|s| (s, (s as u64 - 100) * 2))
        .collect();
    let affected: Vec<(i64, u64)> = run.stored.iter().map(|(s, i)| (*s, i.affected)).collect();
    assert_eq!(affected, expected);
}

#[test]
fn impact_counts_each_answer_by_how_it_was_given() {
    let mut run = run(150);
    let before = run.stored.last().unwrap().1;
    let at = 150_100;
    let answered = |change: fn(&mut RequestRecord)| {
        let mut record = request(at, false);
        change(&mut record);
        record
    };
    for record in [
        answered(|_| {}),
        answered(|r| r.cache = Some("hit".into())),
        answered(|r| r.cache = Some("stale".into())),
        answered(|r| r.degraded = Some("stale-cache".into())),
        answered(|r| r.degraded = Some("openai/gpt-4o-mini".into())),
        // A static apology is no answer.
        answered(|r| r.degraded = Some("static".into())),
        answered(|r| {
            r.status = 503;
            r.error_class = Some("overloaded".into());
        }),
    ] {
        run.tracker.observe(&record);
    }
    let breakers = HashMap::from([(PRIMARY.to_string(), BreakerState::Closed)]);
    let after = run
        .tracker
        .evaluate(155_000, &breakers)
        .incident_to_store
        .unwrap()
        .impact;
    assert_eq!(
        after,
        Impact {
            affected: before.affected + 7,
            saved_by_fallback: before.saved_by_fallback + 1,
            from_cache: before.from_cache + 3,
            degraded: before.degraded + 1,
            failed: before.failed + 2,
        }
    );
}

/// The same scripted traffic from `from_s` to `until_s`; the incident
/// updates it gave.
fn drive(tracker: &mut HealthTracker, from_s: i64, until_s: i64) -> Vec<IncidentUpdate> {
    let breakers = HashMap::from([(PRIMARY.to_string(), BreakerState::Closed)]);
    let mut updates = Vec::new();
    for half_second in from_s * 2..until_s * 2 {
        let at = half_second * 500;
        let down = (60_000..180_000).contains(&at);
        updates.extend(tracker.observe(&request(at, !down)));
        let next = at + 500;
        if next % 5_000 == 0 {
            updates.extend(tracker.evaluate(next, &breakers).incidents);
        }
    }
    updates
}

#[test]
fn a_follower_carries_the_judges_incident_on_instead_of_its_own() {
    let mut run = run(150);
    let Some(mut judged) = run.tracker.open_incident().cloned() else {
        panic!("the outage opened an incident by 150 s");
    };
    let own = judged.id.clone();
    judged.id = "inc-judge".into();
    // Its own, replaced, comes back resolved as merged, not dropped.
    let Some(replaced) = run.tracker.follow(150_000, Some(judged.clone())) else {
        panic!("its own incident was replaced silently");
    };
    assert_eq!(replaced.id, own);
    assert!(replaced.status.is_closed());
    assert_eq!(replaced.resolved_at, Some(150_000));
    assert!(
        replaced
            .timeline
            .last()
            .is_some_and(|e| e.message.contains("merged into inc-judge")),
        "{:?}",
        replaced.timeline.last()
    );
    // Following the same one again replaces nothing.
    assert!(run.tracker.follow(150_000, Some(judged)).is_none());
    let updates = drive(&mut run.tracker, 150, 400);
    assert!(
        !updates
            .iter()
            .any(|u| matches!(u, IncidentUpdate::Opened(_))),
        "no incident of its own"
    );
    let resolved: Vec<_> = updates
        .iter()
        .filter_map(|u| match u {
            IncidentUpdate::Resolved(i) => Some(i.id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(resolved, ["inc-judge"]);
}

#[test]
fn following_no_incident_resolves_the_followers_own() {
    let mut run = run(150);
    let Some(own) = run.tracker.open_incident().map(|i| i.id.clone()) else {
        panic!("the outage opened an incident by 150 s");
    };
    let replaced = run.tracker.follow(150_000, None);
    assert!(run.tracker.open_incident().is_none());
    assert!(
        replaced
            .as_ref()
            .is_some_and(|i| i.id == own && i.status.is_closed() && i.resolved_at.is_some()),
        "{replaced:?}"
    );
    // Still down: as judge it would open one again, a new one.
    let updates = drive(&mut run.tracker, 150, 156);
    let opened: Vec<_> = updates
        .iter()
        .filter_map(|u| match u {
            IncidentUpdate::Opened(i) => Some(i.id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(opened.len(), 1);
    assert_ne!(opened[0], own);
}

#[test]
fn an_outage_fallback_absorbs_reads_as_absorbed_not_as_a_major_outage() {
    // Mid-outage: the primary fails every call, the backup answers all.
    let run = run(120);
    let states: HashMap<String, ComponentState> = run
        .tracker
        .components()
        .into_iter()
        .map(|c| (c.name, c.state))
        .collect();
    assert_eq!(states.get(PRIMARY), Some(&MajorOutage));
    // Every request served: clients see fallback, not an outage.
    assert_eq!(states.get("chat"), Some(&DegradedPerformance));
    let absorbed = run.tracker.absorbed(120_000);
    let [entry] = absorbed.as_slice() else {
        panic!("one route absorbing, got {absorbed:?}");
    };
    assert_eq!(entry.route, "chat");
    assert_eq!(entry.down, [(PRIMARY.to_string(), MajorOutage)]);
    assert_eq!(entry.serving, [BACKUP.to_string()]);
    assert_eq!((entry.requests, entry.failed), (120, 0));
    let Some(incident) = run.tracker.open_incident() else {
        panic!("the outage opened an incident");
    };
    assert_eq!(incident.worst, MajorOutage);
    assert_eq!(incident.impact.failed, 0);
    assert_eq!(incident.impact_level(), "minor");
    assert!(
        incident.title.starts_with("Degraded performance of "),
        "{}",
        incident.title
    );
    // Before the outage nothing is absorbed.
    assert!(self::run(50).tracker.absorbed(50_000).is_empty());
}
