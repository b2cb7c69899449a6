//! Realistic snapshots shared by the tests: a quiet day, the middle of an
//! upstream outage, and the same page after the incident was resolved.
#![allow(
    dead_code,
    reason = "shared by several test binaries, each using part of it"
)]

use bulwark::observe::UnixMs;
use bulwark::observe::component::{ComponentKind, ComponentState};
use bulwark::observe::incident::{Impact, Incident, IncidentStatus, TimelineEntry, TimelineKind};
use bulwark::observe::snapshot::{Absorbed, ComponentStatus, DayUptime, SloStatus, StatusSnapshot};

/// 2026-11-29T00:00:00Z.
pub const DAY0: UnixMs = 1_795_910_400_000;
pub const MIN: UnixMs = 60_000;
/// 2026-11-29T09:45:01Z, when the incident starts.
pub const STARTED: UnixMs = DAY0 + 9 * 60 * MIN + 45 * MIN + 1000;

pub const TARGET_DOWN: &str = "openai/gpt-4o";
pub const ROUTE_HIT: &str = "chat";

fn date_of(days_ago: i64) -> String {
    let days = DAY0 / 86_400_000 - days_ago;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `count` days ending today; `bad` lists (days ago, uptime, worst) and
/// `gaps` days with nothing observed.
fn days(count: i64, bad: &[(i64, f64, ComponentState)], gaps: &[i64]) -> Vec<DayUptime> {
    (0..count)
        .rev()
        .map(|ago| {
            if gaps.contains(&ago) {
                return DayUptime {
                    date: date_of(ago),
                    uptime: None,
                    worst: ComponentState::Operational,
                };
            }
            match bad.iter().find(|b| b.0 == ago) {
                Some(&(_, uptime, worst)) => DayUptime {
                    date: date_of(ago),
                    uptime: Some(uptime),
                    worst,
                },
                None => DayUptime {
                    date: date_of(ago),
                    uptime: Some(1.0),
                    worst: ComponentState::Operational,
                },
            }
        })
        .collect()
}

#[expect(
    clippy::too_many_arguments,
    reason = "a fixture builder: one call per component reads as a table row"
)]
fn component(
    name: &str,
    kind: ComponentKind,
    state: ComponentState,
    reason: Option<&str>,
    uptimes: (f64, f64, f64),
    history: Vec<DayUptime>,
    p50: f64,
    p95: f64,
) -> ComponentStatus {
    ComponentStatus {
        name: name.to_string(),
        kind,
        state,
        updated_at: DAY0 - 3 * 86_400_000,
        reason: reason.map(str::to_string),
        uptime_24h: Some(uptimes.0),
        uptime_7d: Some(uptimes.1),
        uptime_30d: Some(uptimes.2),
        days: history,
        latency_p50_ms: Some(p50),
        latency_p95_ms: Some(p95),
    }
}

fn quiet_components() -> Vec<ComponentStatus> {
    use ComponentKind::{Route, Target};
    use ComponentState::*;
    vec![
        component(
            TARGET_DOWN,
            Target,
            Operational,
            None,
            (1.0, 0.9991, 0.9984),
            days(
                90,
                &[(12, 0.962, PartialOutage), (40, 0.991, DegradedPerformance)],
                &[],
            ),
            412.0,
            1180.0,
        ),
        component(
            "anthropic/claude-sonnet-4-5",
            Target,
            Operational,
            None,
            (1.0, 1.0, 0.9997),
            days(90, &[(25, 0.994, DegradedPerformance)], &[]),
            530.0,
            1420.0,
        ),
        component(
            "google/gemini-2.5-flash",
            Target,
            Operational,
            None,
            (1.0, 1.0, 1.0),
            // Added to the config 64 days ago: the chart pads the rest.
            days(64, &[], &[30, 31]),
            288.0,
            760.0,
        ),
        component(
            ROUTE_HIT,
            Route,
            Operational,
            None,
            (1.0, 0.9998, 0.9994),
            days(90, &[(12, 0.997, DegradedPerformance)], &[]),
            455.0,
            1310.0,
        ),
        component(
            "embeddings",
            Route,
            Operational,
            None,
            (1.0, 1.0, 1.0),
            days(90, &[], &[]),
            61.0,
            140.0,
        ),
        component(
            "summarise-long",
            Route,
            Operational,
            None,
            (1.0, 0.9995, 0.9990),
            days(90, &[(3, 0.9965, DegradedPerformance)], &[]),
            890.0,
            2650.0,
        ),
    ]
}

fn slos(during: bool) -> Vec<SloStatus> {
    vec![
        SloStatus {
            route: ROUTE_HIT.to_string(),
            objective: 0.999,
            window_secs: 30 * 86_400,
            availability: Some(if during { 0.99921 } else { 0.99962 }),
            total: 1_284_330,
            good: if during { 1_283_315 } else { 1_283_842 },
            budget_remaining: if during { 0.21 } else { 0.62 },
            burn_rate_1h: if during { 18.4 } else { 0.3 },
            burn_rate_6h: if during { 4.1 } else { 0.6 },
        },
        SloStatus {
            route: "embeddings".to_string(),
            objective: 0.9995,
            window_secs: 30 * 86_400,
            availability: Some(0.99998),
            total: 4_902_113,
            good: 4_902_015,
            budget_remaining: 0.96,
            burn_rate_1h: 0.0,
            burn_rate_6h: 0.1,
        },
        SloStatus {
            route: "summarise-long".to_string(),
            objective: 0.995,
            window_secs: 7 * 86_400,
            availability: Some(0.9941),
            total: 48_220,
            good: 47_935,
            budget_remaining: -0.18,
            burn_rate_1h: 0.8,
            burn_rate_6h: 1.4,
        },
    ]
}

fn entry(
    at: UnixMs,
    kind: TimelineKind,
    component: Option<&str>,
    status: IncidentStatus,
    message: &str,
) -> TimelineEntry {
    TimelineEntry {
        at,
        kind,
        component: component.map(str::to_string),
        status,
        message: message.to_string(),
    }
}

/// The five entries of the open incident.
pub fn open_timeline() -> Vec<TimelineEntry> {
    use IncidentStatus::*;
    use TimelineKind::*;
    vec![
        entry(
            STARTED,
            Detected,
            Some(TARGET_DOWN),
            Investigating,
            "Error rate on openai/gpt-4o rose to 62 % over 60 s (overloaded, HTTP 529).",
        ),
        entry(
            STARTED + 30_000,
            BreakerOpened,
            Some(TARGET_DOWN),
            Investigating,
            "Circuit breaker opened after 20 consecutive failures.",
        ),
        entry(
            STARTED + 31_000,
            FallbackEngaged,
            Some(ROUTE_HIT),
            Investigating,
            "Route chat now answers from anthropic/claude-sonnet-4-5.",
        ),
        entry(
            STARTED + 7 * MIN,
            DegradedStarted,
            Some(ROUTE_HIT),
            Identified,
            "Fallback target rate-limited; 4.1 % of chat requests get a stale cached answer or fail.",
        ),
        entry(
            STARTED + 20 * MIN,
            Note,
            None,
            Identified,
            "OpenAI confirmed elevated errors for gpt-4o. Traffic stays on the fallback until the breaker closes.",
        ),
    ]
}

pub fn open_incident() -> Incident {
    Incident {
        id: "inc-20261129-094501-3f2a".to_string(),
        title: "Elevated errors from openai/gpt-4o".to_string(),
        status: IncidentStatus::Identified,
        worst: ComponentState::MajorOutage,
        components: vec![TARGET_DOWN.to_string(), ROUTE_HIT.to_string()],
        started_at: STARTED,
        updated_at: STARTED + 20 * MIN,
        resolved_at: None,
        impact: Impact {
            affected: 18_432,
            saved_by_fallback: 16_911,
            from_cache: 402,
            degraded: 134,
            failed: 985,
        },
        timeline: open_timeline(),
    }
}

pub fn resolved_incident() -> Incident {
    use IncidentStatus::Monitoring;
    use TimelineKind::{BreakerClosed, PartialRecovery};
    let mut incident = open_incident();
    incident.timeline.extend([
        entry(
            STARTED + 56 * MIN,
            BreakerClosed,
            Some(TARGET_DOWN),
            Monitoring,
            "Circuit breaker closed after 5 successful probes.",
        ),
        entry(
            STARTED + 57 * MIN,
            PartialRecovery,
            Some(ROUTE_HIT),
            Monitoring,
            "Route chat is answering from openai/gpt-4o again.",
        ),
        entry(
            STARTED + 77 * MIN,
            TimelineKind::Resolved,
            None,
            IncidentStatus::Resolved,
            "All components operational for 20 minutes.",
        ),
    ]);
    incident.status = IncidentStatus::Resolved;
    incident.updated_at = STARTED + 77 * MIN;
    incident.resolved_at = Some(STARTED + 77 * MIN);
    incident.impact = Impact {
        affected: 31_207,
        saved_by_fallback: 28_840,
        from_cache: 611,
        degraded: 201,
        failed: 1_555,
    };
    incident
}

/// An older, small incident, so "past incidents" has more than one item.
pub fn older_incident() -> Incident {
    let start = DAY0 - 12 * 86_400_000 + 14 * 60 * MIN;
    Incident {
        id: "inc-20261117-140000-9c1e".to_string(),
        title: "Slow first tokens on chat".to_string(),
        status: IncidentStatus::Resolved,
        worst: ComponentState::DegradedPerformance,
        components: vec![ROUTE_HIT.to_string()],
        started_at: start,
        updated_at: start + 38 * MIN,
        resolved_at: Some(start + 38 * MIN),
        impact: Impact {
            affected: 5_210,
            saved_by_fallback: 0,
            from_cache: 0,
            degraded: 0,
            failed: 12,
        },
        timeline: vec![
            entry(
                start,
                TimelineKind::Detected,
                Some(ROUTE_HIT),
                IncidentStatus::Investigating,
                "p95 first-token latency above 4 s for 5 minutes.",
            ),
            entry(
                start + 38 * MIN,
                TimelineKind::Resolved,
                None,
                IncidentStatus::Resolved,
                "Latency back under 1.5 s.",
            ),
        ],
    }
}

fn base(now: UnixMs) -> StatusSnapshot {
    StatusSnapshot {
        page_name: "Bulwark".to_string(),
        page_url: Some("https://status.example.com/status".to_string()),
        generated_at: now,
        components: quiet_components(),
        slos: slos(false),
        active_incidents: Vec::new(),
        recent_incidents: Vec::new(),
        absorbed: Vec::new(),
        provider_names: Default::default(),
    }
}

pub fn operational() -> StatusSnapshot {
    let mut s = base(DAY0 + 8 * 60 * MIN);
    s.recent_incidents = vec![older_incident()];
    s
}

pub fn during_incident() -> StatusSnapshot {
    let now = STARTED + 21 * MIN;
    let mut s = base(now);
    for c in &mut s.components {
        #[expect(
            clippy::unwrap_used,
            reason = "a fixture: base() gives every component its days"
        )]
        let today = c.days.last_mut().unwrap();
        if c.name == TARGET_DOWN {
            c.state = ComponentState::MajorOutage;
            c.updated_at = STARTED;
            c.reason = Some("error rate 62 % over 60 s; circuit breaker open".to_string());
            c.uptime_24h = Some(0.9854);
            c.uptime_7d = Some(0.9970);
            c.uptime_30d = Some(0.9977);
            c.latency_p50_ms = Some(1840.0);
            c.latency_p95_ms = Some(9020.0);
            *today = DayUptime {
                date: today.date.clone(),
                uptime: Some(0.9854),
                worst: ComponentState::MajorOutage,
            };
        } else if c.name == ROUTE_HIT {
            c.state = ComponentState::PartialOutage;
            c.updated_at = STARTED + 7 * MIN;
            c.reason =
                Some("4.1 % of requests failing over 5 min (fallback rate-limited)".to_string());
            c.uptime_24h = Some(0.9931);
            c.uptime_7d = Some(0.9990);
            c.latency_p50_ms = Some(690.0);
            c.latency_p95_ms = Some(2210.0);
            *today = DayUptime {
                date: today.date.clone(),
                uptime: Some(0.9931),
                worst: ComponentState::PartialOutage,
            };
        }
    }
    s.slos = slos(true);
    s.active_incidents = vec![open_incident()];
    s.recent_incidents = vec![older_incident()];
    s
}

/// The upstream of `chat` is down and the backup answers every request:
/// the route shows fallback (degraded), the upstream its outage.
pub fn absorbed() -> StatusSnapshot {
    let mut s = during_incident();
    for c in &mut s.components {
        if c.name == ROUTE_HIT {
            c.state = ComponentState::DegradedPerformance;
            c.reason = Some("100 % of answers from a fallback target".to_string());
        }
    }
    let incident = &mut s.active_incidents[0];
    incident.impact = Impact {
        affected: 18_432,
        saved_by_fallback: 18_432,
        ..Impact::default()
    };
    s.absorbed = vec![Absorbed {
        route: ROUTE_HIT.to_string(),
        down: vec![(TARGET_DOWN.to_string(), ComponentState::MajorOutage)],
        serving: vec!["anthropic/claude-sonnet-4-5".to_string()],
        requests: 240,
        failed: 0,
    }];
    s
}

pub fn after_resolution() -> StatusSnapshot {
    let mut s = during_incident();
    s.generated_at = STARTED + 90 * MIN;
    for c in &mut s.components {
        c.state = ComponentState::Operational;
        c.reason = None;
    }
    s.active_incidents = Vec::new();
    s.recent_incidents = vec![resolved_incident(), older_incident()];
    s
}

/// Names and messages an admin could type, to check escaping everywhere.
pub const HOSTILE: &str = "<script>alert('x')</script> & \"friends\" ]]> | *bold* # [link](x)";

pub fn hostile() -> StatusSnapshot {
    let mut s = during_incident();
    s.page_name = format!("Acme {HOSTILE}");
    s.components[0].name = HOSTILE.to_string();
    // An unbroken token wider than a phone, as pasted URLs and ids are.
    s.components[0].reason = Some(format!("{HOSTILE} {}", "x".repeat(120)));
    s.slos[0].route = HOSTILE.to_string();
    let incident = &mut s.active_incidents[0];
    incident.title = HOSTILE.to_string();
    incident.components[0] = HOSTILE.to_string();
    for e in &mut incident.timeline {
        e.message = format!(
            "{} {HOSTILE} https://example.com/{}",
            e.message,
            "a".repeat(100)
        );
        if e.component.as_deref() == Some(TARGET_DOWN) {
            e.component = Some(HOSTILE.to_string());
        }
    }
    s
}
