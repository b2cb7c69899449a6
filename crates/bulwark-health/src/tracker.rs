//! The health tracker: windows, states and incidents for every target and
//! route of one gateway.

use std::collections::HashMap;

use bulwark::observe::UnixMs;
use bulwark::observe::component::{ComponentKind, ComponentState};
use bulwark::observe::incident::{Incident, IncidentStatus};
use bulwark::observe::record::RequestRecord;
use bulwark::resilience::breaker::BreakerState;

use bulwark::observe::snapshot::Absorbed;

use crate::absorbed::absorbed;
use crate::incident::{IncidentBook, IncidentUpdate};
use crate::ladder::{Hysteresis, Judgement, judge_route, judge_target};
use crate::settings::{HealthSettings, SloSettings};
use crate::slo::{BurnAlert, SloTracker};
use crate::window::{RouteWindow, TargetWindow};

/// The routes and the targets each one uses, in config order.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    pub routes: Vec<(String, Vec<String>)>,
}

impl Topology {
    fn targets(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        for (_, targets) in &self.routes {
            for target in targets {
                if !all.contains(target) {
                    all.push(target.clone());
                }
            }
        }
        all
    }
}

/// The routes' names; a route named like a target is a target (`new`).
fn routes_of(topology: &Topology) -> Vec<String> {
    let targets = topology.targets();
    topology
        .routes
        .iter()
        .map(|(route, _)| route.clone())
        .filter(|route| !targets.contains(route))
        .collect()
}

/// A component whose shown state changed.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentChange {
    pub name: String,
    pub kind: ComponentKind,
    pub from: ComponentState,
    pub to: ComponentState,
    pub reason: Option<String>,
    pub at: UnixMs,
}

/// What one evaluation found.
#[derive(Debug, Default)]
pub struct Evaluation {
    pub changes: Vec<ComponentChange>,
    pub incidents: Vec<IncidentUpdate>,
    pub burn_alerts: Vec<BurnAlert>,
    /// Time observed since the previous evaluation, per component, in the
    /// state it was shown in: the uptime roll-up's input.
    pub uptime: Vec<(String, ComponentKind, f64, ComponentState)>,
    /// The open incident, when its impact counts changed.
    pub incident_to_store: Option<Incident>,
}

/// A component as the status page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentView {
    pub name: String,
    pub kind: ComponentKind,
    pub state: ComponentState,
    pub reason: Option<String>,
    pub updated_at: UnixMs,
    pub first_token_p50_ms: Option<f64>,
    pub first_token_p95_ms: Option<f64>,
}

#[derive(Debug)]
struct Component {
    kind: ComponentKind,
    hysteresis: Hysteresis,
    reason: Option<String>,
    updated_at: UnixMs,
    maintenance: bool,
    targets: TargetWindow,
    requests: RouteWindow,
    /// The first-token median when healthy: what "slow" is measured against.
    baseline_ms: Option<f64>,
    p50_ms: Option<f64>,
    p95_ms: Option<f64>,
}

impl Component {
    fn new(kind: ComponentKind, now: UnixMs) -> Component {
        Component {
            kind,
            hysteresis: Hysteresis::default(),
            reason: None,
            updated_at: now,
            maintenance: false,
            targets: TargetWindow::default(),
            requests: RouteWindow::default(),
            baseline_ms: None,
            p50_ms: None,
            p95_ms: None,
        }
    }
}

#[derive(Debug)]
pub struct HealthTracker {
    settings: HealthSettings,
    topology: Topology,
    /// Targets first, then routes, in config order.
    order: Vec<String>,
    components: HashMap<String, Component>,
    book: IncidentBook,
    slo: SloTracker,
    last_evaluation: Option<UnixMs>,
}

impl HealthTracker {
    pub fn new(
        settings: HealthSettings,
        topology: Topology,
        slos: HashMap<String, SloSettings>,
        now: UnixMs,
    ) -> HealthTracker {
        let mut order = Vec::new();
        let mut components = HashMap::new();
        for target in topology.targets() {
            components.insert(target.clone(), Component::new(ComponentKind::Target, now));
            order.push(target);
        }
        for (route, _) in &topology.routes {
            // A route named like a target keeps the target's entry.
            if !components.contains_key(route) {
                components.insert(route.clone(), Component::new(ComponentKind::Route, now));
                order.push(route.clone());
            }
        }
        let mut book = IncidentBook::default();
        book.set_routes(routes_of(&topology));
        HealthTracker {
            settings,
            topology,
            order,
            components,
            book,
            slo: SloTracker::new(slos),
            last_evaluation: None,
        }
    }

    /// The routes and targets of a reloaded config. A component in both
    /// keeps its windows, state and history; a new one starts operational;
    /// a removed one is no longer shown. The open incident carries on.
    pub fn set_topology(
        &mut self,
        topology: Topology,
        slos: HashMap<String, SloSettings>,
        now: UnixMs,
    ) {
        let mut order = Vec::new();
        let mut components = HashMap::new();
        let mut place = |name: &String, kind: ComponentKind| {
            if components.contains_key(name) {
                return;
            }
            let component = match self.components.remove(name) {
                Some(kept) if kept.kind == kind => kept,
                _ => Component::new(kind, now),
            };
            components.insert(name.clone(), component);
            order.push(name.clone());
        };
        for target in topology.targets() {
            place(&target, ComponentKind::Target);
        }
        for (route, _) in &topology.routes {
            place(route, ComponentKind::Route);
        }
        self.order = order;
        self.components = components;
        self.book.set_routes(routes_of(&topology));
        self.topology = topology;
        self.slo.set_objectives(slos);
    }

    pub fn settings(&self) -> &HealthSettings {
        &self.settings
    }

    pub fn slo(&self) -> &SloTracker {
        &self.slo
    }

    pub fn open_incident(&self) -> Option<&Incident> {
        self.book.open_incident()
    }

    pub fn resume(&mut self, incident: Incident) {
        self.book.resume(incident);
    }

    /// The open incident as the instance that judges for all sees it (see
    /// [`IncidentBook::follow`]).
    pub fn follow(&mut self, now: UnixMs, incident: Option<Incident>) -> Option<Incident> {
        self.book.follow(now, incident)
    }

    /// Takes one finished request into every window it concerns.
    pub fn observe(&mut self, record: &RequestRecord) -> Option<IncidentUpdate> {
        for attempt in &record.attempts {
            if let Some(component) = self.components.get_mut(&attempt.target)
                && component.kind == ComponentKind::Target
            {
                component.targets.push(attempt);
            }
        }
        if let Some(component) = self.components.get_mut(&record.route)
            && component.kind == ComponentKind::Route
        {
            component.requests.push(record);
        }
        self.slo.observe(record);
        let affected = self.affected(record);
        self.book.observe(record, affected)
    }

    /// A breaker changed state.
    /// A failed half-open probe reopening the breaker is not news: the
    /// target was out and stays out. Only leaving and returning to closed
    /// go in the timeline.
    pub fn on_breaker(
        &mut self,
        now: UnixMs,
        target: &str,
        from: BreakerState,
        to: BreakerState,
    ) -> Option<IncidentUpdate> {
        match (from, to) {
            (BreakerState::Closed, BreakerState::Open) => self.book.breaker(now, target, true),
            (_, BreakerState::Closed) => self.book.breaker(now, target, false),
            _ => None,
        }
    }

    /// An admin put a component under maintenance, or took it out.
    pub fn set_maintenance(
        &mut self,
        now: UnixMs,
        name: &str,
        on: bool,
    ) -> Option<ComponentChange> {
        let component = self.components.get_mut(name)?;
        component.maintenance = on;
        let from = component.hysteresis.shown();
        let to = if on {
            ComponentState::UnderMaintenance
        } else {
            ComponentState::Operational
        };
        component.hysteresis.force(to);
        component.updated_at = now;
        component.reason = on.then(|| "set by an admin".to_string());
        let change = ComponentChange {
            name: name.to_string(),
            kind: component.kind,
            from,
            to,
            reason: component.reason.clone(),
            at: now,
        };
        self.book.component_changed(now, name, from, to, None);
        Some(change)
    }

    /// An admin's note or status change on the open incident.
    pub fn annotate(
        &mut self,
        now: UnixMs,
        status: Option<IncidentStatus>,
        note: Option<String>,
    ) -> Option<IncidentUpdate> {
        self.book.annotate(now, status, note)
    }

    /// Judges every component and moves incidents along. `breakers` holds
    /// each target's breaker state now.
    pub fn evaluate(
        &mut self,
        now: UnixMs,
        breakers: &HashMap<String, BreakerState>,
    ) -> Evaluation {
        let mut evaluation = Evaluation::default();
        let since = now - self.settings.window.as_millis() as i64;
        let elapsed = self
            .last_evaluation
            .map_or(0.0, |last| (now - last).max(0) as f64 / 1000.0);
        self.last_evaluation = Some(now);
        for name in &self.order {
            let Some(component) = self.components.get_mut(name) else {
                continue;
            };
            let from = component.hysteresis.shown();
            if elapsed > 0.0 {
                evaluation
                    .uptime
                    .push((name.clone(), component.kind, elapsed, from));
            }
            if component.maintenance {
                continue;
            }
            let breaker = breakers.get(name).copied().unwrap_or(BreakerState::Closed);
            let judgement = match component.kind {
                ComponentKind::Target => {
                    let stats = component.targets.stats(since);
                    component.p50_ms = stats.first_token_p50_ms;
                    component.p95_ms = stats.first_token_p95_ms;
                    let judgement =
                        judge_target(&stats, breaker, component.baseline_ms, &self.settings);
                    if judgement.state == ComponentState::Operational
                        && stats.attempts >= self.settings.min_volume
                        && let Some(p50) = stats.first_token_p50_ms
                    {
                        component.baseline_ms =
                            Some(component.baseline_ms.map_or(p50, |b| 0.8 * b + 0.2 * p50));
                    }
                    judgement
                }
                ComponentKind::Route => {
                    let stats = component.requests.stats(since);
                    component.p50_ms = stats.first_token_p50_ms;
                    component.p95_ms = stats.first_token_p95_ms;
                    judge_route(&stats, &self.settings)
                }
                // The gateway reports its dependencies itself; the
                // tracker only holds targets and routes.
                ComponentKind::Dependency => continue,
            };
            let Judgement { state, reason } = judgement;
            let to = if breaker == BreakerState::Open {
                component.hysteresis.force(state);
                state
            } else {
                component.hysteresis.feed(state, &self.settings)
            };
            if state == to {
                component.reason = reason;
            }
            if to != from {
                component.updated_at = now;
                if to == ComponentState::Operational {
                    component.reason = None;
                }
                evaluation.changes.push(ComponentChange {
                    name: name.clone(),
                    kind: component.kind,
                    from,
                    to,
                    reason: component.reason.clone(),
                    at: now,
                });
            }
        }
        for change in &evaluation.changes {
            tracing::info!(component = %change.name, from = change.from.as_str(), to = change.to.as_str(), reason = change.reason.as_deref().unwrap_or(""), "component state changed");
            let updates = self.book.component_changed(
                now,
                &change.name,
                change.from,
                change.to,
                change.reason.as_deref(),
            );
            evaluation.incidents.extend(updates);
        }
        let states: Vec<(String, ComponentState, Option<String>)> = self
            .order
            .iter()
            .filter_map(|name| {
                let c = self.components.get(name)?;
                Some((name.clone(), c.hysteresis.shown(), c.reason.clone()))
            })
            .collect();
        evaluation
            .incidents
            .extend(self.book.tick(now, &states, &self.settings));
        evaluation.incident_to_store = self.book.take_dirty();
        evaluation.burn_alerts = self.slo.alerts(now);
        evaluation
    }

    /// Every component, targets first, in config order.
    pub fn components(&self) -> Vec<ComponentView> {
        self.order
            .iter()
            .filter_map(|name| {
                let c = self.components.get(name)?;
                Some(ComponentView {
                    name: name.clone(),
                    kind: c.kind,
                    state: c.hysteresis.shown(),
                    reason: c.reason.clone(),
                    updated_at: c.updated_at,
                    first_token_p50_ms: c.p50_ms,
                    first_token_p95_ms: c.p95_ms,
                })
            })
            .collect()
    }

    /// Routes whose requests other upstreams are answering while upstreams
    /// they use are out, judged over the health window ending `now`.
    pub fn absorbed(&self, now: UnixMs) -> Vec<Absorbed> {
        let since = now - self.settings.window.as_millis() as i64;
        let state = |name: &str| {
            self.components
                .get(name)
                .filter(|c| c.kind == ComponentKind::Target)
                .map(|c| c.hysteresis.shown())
        };
        self.topology
            .routes
            .iter()
            .filter_map(|(route, targets)| {
                let component = self.components.get(route)?;
                if component.kind != ComponentKind::Route {
                    return None;
                }
                let targets: Vec<(String, ComponentState)> = targets
                    .iter()
                    .filter_map(|t| Some((t.clone(), state(t)?)))
                    .collect();
                absorbed(route, &targets, &component.requests.served(since))
            })
            .collect()
    }

    /// Whether a request touched a component of the open incident.
    fn affected(&self, record: &RequestRecord) -> bool {
        let Some(incident) = self.book.open_incident() else {
            return false;
        };
        let hit = |name: &str| incident.components.iter().any(|c| c == name);
        hit(&record.route)
            || record.attempts.iter().any(|a| hit(&a.target))
            || self
                .topology
                .routes
                .iter()
                .any(|(route, targets)| route == &record.route && targets.iter().any(|t| hit(t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology(routes: &[(&str, &[&str])]) -> Topology {
        Topology {
            routes: routes
                .iter()
                .map(|(route, targets)| {
                    let targets = targets.iter().map(ToString::to_string).collect();
                    (route.to_string(), targets)
                })
                .collect(),
        }
    }

    fn shown(tracker: &HealthTracker) -> Vec<(String, ComponentState)> {
        tracker
            .components()
            .into_iter()
            .map(|c| (c.name, c.state))
            .collect()
    }

    #[test]
    fn a_new_topology_keeps_what_stays_adds_what_is_new_and_drops_the_rest() {
        let mut tracker = HealthTracker::new(
            HealthSettings::default(),
            topology(&[("chat", &["a/x", "b/y"])]),
            HashMap::new(),
            0,
        );
        tracker.set_maintenance(0, "a/x", true);
        tracker.set_topology(
            topology(&[("chat", &["a/x"]), ("new", &["c/z"])]),
            HashMap::new(),
            1,
        );
        assert_eq!(
            shown(&tracker),
            [
                ("a/x".to_string(), ComponentState::UnderMaintenance),
                ("c/z".to_string(), ComponentState::Operational),
                ("chat".to_string(), ComponentState::Operational),
                ("new".to_string(), ComponentState::Operational),
            ]
        );
    }
}
