//! The incident book: opens an incident when a component stays out of
//! `operational`, writes its timeline as things happen, counts its impact,
//! and resolves it once everything has been back for a while.
//!
//! One incident is open at a time and gathers every component that goes
//! down meanwhile: an outage of one provider usually shows on its targets
//! and on the routes that use them, and readers want one story, not five.

use std::collections::HashMap;

use bulwark::observe::UnixMs;
use bulwark::observe::component::ComponentState;
use bulwark::observe::incident::{Impact, Incident, IncidentStatus, TimelineEntry, TimelineKind};
use bulwark::observe::record::RequestRecord;

use crate::settings::HealthSettings;

/// What happened to the open incident, for the store, alerts and the page.
#[derive(Debug, Clone, PartialEq)]
pub enum IncidentUpdate {
    Opened(Incident),
    /// A timeline entry was added.
    Updated {
        incident: Incident,
        entry: TimelineEntry,
    },
    Resolved(Incident),
}

impl IncidentUpdate {
    pub fn incident(&self) -> &Incident {
        match self {
            IncidentUpdate::Opened(incident)
            | IncidentUpdate::Updated { incident, .. }
            | IncidentUpdate::Resolved(incident) => incident,
        }
    }
}

/// `"<state> of <components>"` with the state replaced.
fn retitle(title: &str, worst: ComponentState) -> String {
    match title.split_once(" of ") {
        Some((_, rest)) => format!("{} of {rest}", worst.label()),
        None => title.to_string(),
    }
}

#[derive(Debug, Default)]
pub struct IncidentBook {
    open: Option<Incident>,
    /// Since when each component has been out of `operational`.
    out_since: HashMap<String, UnixMs>,
    /// Since when every affected component has been back.
    clear_since: Option<UnixMs>,
    fallback_noted: bool,
    degraded_noted: bool,
    /// Impact changed since the incident was last handed out.
    dirty: bool,
    /// Which components are routes: what clients call, for the title.
    routes: Vec<String>,
}

impl IncidentBook {
    /// The components clients call, so the title says what they got.
    pub fn set_routes(&mut self, routes: Vec<String>) {
        self.routes = routes;
    }

    /// The worst state, among `states`, of the incident's routes; `None`
    /// without routes, where the targets are what clients call.
    fn routes_worst(
        &self,
        incident: &Incident,
        states: &[(String, ComponentState, Option<String>)],
    ) -> Option<ComponentState> {
        if self.routes.is_empty() {
            return None;
        }
        states
            .iter()
            .filter(|(name, _, _)| self.routes.contains(name) && incident.components.contains(name))
            .map(|(_, state, _)| *state)
            .max()
            .or(Some(ComponentState::Operational))
    }

    pub fn open_incident(&self) -> Option<&Incident> {
        self.open.as_ref()
    }

    /// Resumes an incident that was open when the gateway last stopped.
    pub fn resume(&mut self, incident: Incident) {
        if !incident.status.is_closed() {
            self.fallback_noted = incident
                .timeline
                .iter()
                .any(|e| e.kind == TimelineKind::FallbackEngaged);
            self.degraded_noted = incident
                .timeline
                .iter()
                .any(|e| e.kind == TimelineKind::DegradedStarted);
            self.open = Some(incident);
        }
    }

    /// Takes another instance's judgement of the open incident as its own,
    /// or none. An instance that does not judge still keeps a book, so that
    /// it is warm when it takes over; following the judge's incident keeps
    /// it from carrying one of its own that the judge never opened.
    ///
    /// An open incident of its own that the judge's replaces comes back
    /// resolved, noting what replaced it: it may have been told and stored
    /// while this instance judged alone, and dropping it silently would
    /// leave it open in the store forever.
    pub fn follow(&mut self, now: UnixMs, incident: Option<Incident>) -> Option<Incident> {
        let replaced = self
            .open
            .take()
            .filter(|own| incident.as_ref().is_none_or(|judged| judged.id != own.id))
            .map(|mut own| {
                let message = match &incident {
                    Some(judged) => {
                        format!("merged into {}: one incident for all instances", judged.id)
                    }
                    None => "resolved: the instance judging for all sees no incident".to_string(),
                };
                own.status = IncidentStatus::Resolved;
                own.resolved_at = Some(now);
                Self::add(&mut own, now, TimelineKind::Resolved, None, message);
                own
            });
        match incident {
            Some(incident) => self.resume(incident),
            None => {
                self.open = None;
                self.clear_since = None;
                self.fallback_noted = false;
                self.degraded_noted = false;
            }
        }
        self.dirty = false;
        replaced
    }

    /// A component's shown state changed.
    pub fn component_changed(
        &mut self,
        now: UnixMs,
        name: &str,
        from: ComponentState,
        to: ComponentState,
        reason: Option<&str>,
    ) -> Vec<IncidentUpdate> {
        if to == ComponentState::Operational || to == ComponentState::UnderMaintenance {
            self.out_since.remove(name);
        } else {
            self.out_since.entry(name.to_string()).or_insert(now);
        }
        let Some(incident) = &mut self.open else {
            return Vec::new();
        };
        let because = reason.map(|r| format!(" ({r})")).unwrap_or_default();
        let (kind, message) = if to > from && to != ComponentState::UnderMaintenance {
            if !incident.components.iter().any(|c| c == name) {
                incident.components.push(name.to_string());
            }
            // The title follows what clients got (`tick`, `observe`).
            incident.worst = incident.worst.max(to);
            (
                TimelineKind::StateChanged,
                format!("{name}: now {}{because}", to.label().to_lowercase()),
            )
        } else if to == ComponentState::Operational {
            (
                TimelineKind::PartialRecovery,
                format!("{name} has recovered"),
            )
        } else if incident.components.iter().any(|c| c == name) {
            (
                TimelineKind::PartialRecovery,
                format!(
                    "{name} is recovering: now {}{because}",
                    to.label().to_lowercase()
                ),
            )
        } else {
            return Vec::new();
        };
        vec![Self::add(incident, now, kind, Some(name), message)]
    }

    /// A breaker opened or closed: worth a line in an open incident. With
    /// `redis:` every instance's breaker for a target follows the first one
    /// to flip, and each reports it; the timeline says it once.
    pub fn breaker(&mut self, now: UnixMs, target: &str, opened: bool) -> Option<IncidentUpdate> {
        let incident = self.open.as_mut()?;
        let kind = match opened {
            true => TimelineKind::BreakerOpened,
            false => TimelineKind::BreakerClosed,
        };
        let last = incident.timeline.iter().rev().find(|e| {
            e.component.as_deref() == Some(target)
                && matches!(
                    e.kind,
                    TimelineKind::BreakerOpened | TimelineKind::BreakerClosed
                )
        });
        if last.is_some_and(|e| e.kind == kind) {
            return None;
        }
        let (kind, message) = if opened {
            (
                TimelineKind::BreakerOpened,
                format!("circuit breaker for {target} opened: traffic moved to the next target"),
            )
        } else {
            (
                TimelineKind::BreakerClosed,
                format!("circuit breaker for {target} closed: traffic is back"),
            )
        };
        Some(Self::add(incident, now, kind, Some(target), message))
    }

    /// Counts a request in the open incident's impact, if it was affected,
    /// and notes the first fallback and first degraded answer.
    pub fn observe(&mut self, record: &RequestRecord, affected: bool) -> Option<IncidentUpdate> {
        let incident = self.open.as_mut()?;
        if !affected || record.is_client_error() || record.at < incident.started_at {
            return None;
        }
        let impact = &mut incident.impact;
        impact.affected += 1;
        let stale = record.cache.as_deref() == Some("stale")
            || record.degraded.as_deref() == Some("stale-cache");
        let mut note = None;
        // By the same outcome the metrics count, so the two never disagree.
        match record.outcome() {
            "error" => impact.failed += 1,
            "stale" | "cache" => impact.from_cache += 1,
            "degraded" => impact.degraded += 1,
            "fallback" => impact.saved_by_fallback += 1,
            _ => {}
        }
        if record.is_good() && record.fallback && record.degraded.is_none() && !self.fallback_noted
        {
            self.fallback_noted = true;
            let by = record.target.clone().unwrap_or_default();
            note = Some((
                TimelineKind::FallbackEngaged,
                format!(
                    "fallback engaged: requests on {} answered by {by}",
                    record.route
                ),
            ));
        } else if (record.degraded.is_some() || stale) && !self.degraded_noted {
            self.degraded_noted = true;
            let how = record
                .degraded
                .clone()
                .unwrap_or_else(|| "stale-cache".into());
            note = Some((
                TimelineKind::DegradedStarted,
                format!("degraded answers started on {} ({how})", record.route),
            ));
        }
        // An upstream's outage that fallback absorbs is no "Major outage"
        // for clients: the title follows what they got, and may rise
        // again if requests start failing.
        incident.title = retitle(&incident.title, incident.felt(None));
        self.dirty = true;
        let (kind, message) = note?;
        let route = record.route.clone();
        Some(Self::add(incident, record.at, kind, Some(&route), message))
    }

    /// Opens, moves to monitoring, or resolves, by how long components
    /// have been out or back. `states` is every component's shown state.
    pub fn tick(
        &mut self,
        now: UnixMs,
        states: &[(String, ComponentState, Option<String>)],
        settings: &HealthSettings,
    ) -> Vec<IncidentUpdate> {
        let open_after = settings.incident_after.as_millis() as i64;
        let resolve_after = settings.resolve_after.as_millis() as i64;
        let routes_worst = self
            .open
            .as_ref()
            .and_then(|incident| self.routes_worst(incident, states));
        let Some(incident) = &mut self.open else {
            let due = states.iter().any(|(name, _, _)| {
                self.out_since
                    .get(name)
                    .is_some_and(|since| now - since >= open_after)
            });
            if !due {
                return Vec::new();
            }
            // Everything down now belongs to the story, not only what was
            // down long enough to start it.
            let down: Vec<_> = states
                .iter()
                .filter(|(name, _, _)| self.out_since.contains_key(name))
                .collect();
            let mut opened = self.start(now, &down);
            if let IncidentUpdate::Opened(incident) = &mut opened {
                let felt = incident.felt(self.routes_worst(incident, states));
                incident.title = retitle(&incident.title, felt);
                self.open = Some(incident.clone());
            }
            return vec![opened];
        };
        // The title says what clients got, as the routes show it now
        // (the counts take over once requests were counted).
        let title = retitle(&incident.title, incident.felt(routes_worst));
        if title != incident.title {
            incident.title = title;
            self.dirty = true;
        }
        let back = incident.components.iter().all(|name| {
            states
                .iter()
                .find(|(n, _, _)| n == name)
                .is_none_or(|(_, state, _)| *state == ComponentState::Operational)
        });
        let mut updates = Vec::new();
        if !back {
            self.clear_since = None;
            if incident.status == IncidentStatus::Monitoring {
                let entry = Self::set_status(
                    incident,
                    now,
                    IncidentStatus::Investigating,
                    "the problem is back".into(),
                );
                updates.push(entry);
            }
        } else {
            let since = *self.clear_since.get_or_insert(now);
            if now - since >= resolve_after {
                let mut incident = incident.clone();
                incident.status = IncidentStatus::Resolved;
                incident.resolved_at = Some(now);
                let message = format!(
                    "resolved: every affected component has stayed operational for {:?}",
                    settings.resolve_after
                );
                let update = Self::add(&mut incident, now, TimelineKind::Resolved, None, message);
                let IncidentUpdate::Updated { incident, .. } = update else {
                    return updates;
                };
                self.open = None;
                self.clear_since = None;
                self.fallback_noted = false;
                self.degraded_noted = false;
                updates.push(IncidentUpdate::Resolved(incident));
                return updates;
            }
            if incident.status == IncidentStatus::Investigating
                || incident.status == IncidentStatus::Identified
            {
                let entry = Self::set_status(
                    incident,
                    now,
                    IncidentStatus::Monitoring,
                    "every affected component is operational again; monitoring before resolving"
                        .into(),
                );
                updates.push(entry);
            }
        }
        if updates.is_empty() {
            if self.dirty {
                // Only the counts changed: `take_dirty` hands the incident
                // over for storing.
                incident.updated_at = now;
            }
        } else {
            // Each update carries the incident, and is stored with it.
            self.dirty = false;
        }
        updates
    }

    /// An admin's note and/or status change.
    pub fn annotate(
        &mut self,
        now: UnixMs,
        status: Option<IncidentStatus>,
        note: Option<String>,
    ) -> Option<IncidentUpdate> {
        let incident = self.open.as_mut()?;
        let status = status.unwrap_or(incident.status);
        let message = note.unwrap_or_else(|| format!("status set to {}", status.as_str()));
        let update = Self::set_status(incident, now, status, message);
        if status.is_closed() {
            let IncidentUpdate::Updated {
                mut incident,
                entry,
            } = update
            else {
                return None;
            };
            incident.resolved_at = Some(now);
            self.open = None;
            return Some(IncidentUpdate::Updated { incident, entry });
        }
        Some(update)
    }

    /// Takes the impact counts changed since the last call, for storing.
    pub fn take_dirty(&mut self) -> Option<Incident> {
        if std::mem::take(&mut self.dirty) {
            self.open.clone()
        } else {
            None
        }
    }

    fn start(
        &mut self,
        now: UnixMs,
        down: &[&(String, ComponentState, Option<String>)],
    ) -> IncidentUpdate {
        let worst = down
            .iter()
            .map(|(_, s, _)| *s)
            .max()
            .unwrap_or(ComponentState::DegradedPerformance);
        let names: Vec<String> = down.iter().map(|(n, _, _)| n.clone()).collect();
        let title = format!("{} of {}", worst.label(), names.join(", "));
        let mut incident = Incident {
            id: format!("inc-{}-{:04x}", now / 1000, fastrand::u16(..)),
            title,
            status: IncidentStatus::Investigating,
            worst,
            components: names,
            started_at: now,
            updated_at: now,
            resolved_at: None,
            impact: Impact::default(),
            timeline: Vec::new(),
        };
        for (name, state, reason) in down {
            let since = self.out_since.get(name).copied().unwrap_or(now);
            let because = reason
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            incident.timeline.push(TimelineEntry {
                at: since.min(now),
                kind: TimelineKind::Detected,
                component: Some(name.clone()),
                status: IncidentStatus::Investigating,
                message: format!(
                    "detected: {name}: {}{because}",
                    state.label().to_lowercase()
                ),
            });
        }
        self.clear_since = None;
        self.open = Some(incident.clone());
        IncidentUpdate::Opened(incident)
    }

    fn add(
        incident: &mut Incident,
        at: UnixMs,
        kind: TimelineKind,
        component: Option<&str>,
        message: String,
    ) -> IncidentUpdate {
        let entry = TimelineEntry {
            at,
            kind,
            component: component.map(str::to_string),
            status: incident.status,
            message,
        };
        incident.timeline.push(entry.clone());
        incident.updated_at = incident.updated_at.max(at);
        IncidentUpdate::Updated {
            incident: incident.clone(),
            entry,
        }
    }

    fn set_status(
        incident: &mut Incident,
        now: UnixMs,
        status: IncidentStatus,
        message: String,
    ) -> IncidentUpdate {
        incident.status = status;
        Self::add(incident, now, TimelineKind::Note, None, message)
    }
}
