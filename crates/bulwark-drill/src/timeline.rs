//! Replays a scenario against running simulators: each provider's phase is
//! switched at its (compressed) start, atomically, and the timeline ends
//! when the scenario does. The drill runner reads the current phase for
//! its live view and the phase spans for its report.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bulwark_sim::{Sim, SimPhase};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::clock::{Speed, scenario_to_wall, wall_to_scenario};
use crate::compile::sim_phase;
use crate::scenario::Scenario;
use crate::schedule::{PhaseSpan, Segment, phase_spans, segments};

/// Why a timeline could not start or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    #[error("no simulator was given for provider `{0}`")]
    MissingSim(String),
    #[error("a timeline needs a Tokio runtime")]
    NoRuntime,
    #[error("the timeline task stopped early: {0}")]
    Stopped(#[from] tokio::task::JoinError),
}

/// One provider's simulator and its compiled phases.
struct Track {
    name: String,
    sim: Sim,
    names: Vec<String>,
    up: Vec<SimPhase>,
    down: Vec<Option<SimPhase>>,
    current: AtomicUsize,
    is_down: AtomicBool,
}

impl Track {
    /// Switch the simulator first, then publish: whoever reads the new
    /// phase name can rely on the simulator already being in it.
    fn enter(&self, segment: &Segment) {
        let phase = match (segment.down, self.down.get(segment.phase)) {
            (true, Some(Some(down))) => down.clone(),
            _ => self.up.get(segment.phase).cloned().unwrap_or_default(),
        };
        self.sim.apply_phase(phase);
        self.is_down.store(segment.down, Ordering::SeqCst);
        self.current.store(segment.phase, Ordering::SeqCst);
        tracing::debug!(
            provider = %self.name,
            phase = self.names.get(segment.phase).map_or("", String::as_str),
            down = segment.down,
            "drill phase switch"
        );
    }
}

struct Shared {
    tracks: Vec<Track>,
    spans: Vec<PhaseSpan>,
    segments: Vec<Segment>,
    duration: Duration,
    speed: Speed,
    started: Instant,
    finished: AtomicBool,
}

/// Starts timelines; see [`Timeline::start`].
pub struct Timeline;

impl Timeline {
    /// Put every provider's simulator in its first phase (before returning,
    /// so traffic sent right after sees it), then switch phases in the
    /// background at `speed`. `sims` maps provider names to their
    /// simulators; their speed is set to `speed`.
    pub fn start(
        scenario: &Scenario,
        speed: Speed,
        sims: HashMap<String, Sim>,
    ) -> Result<TimelineHandle, TimelineError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| TimelineError::NoRuntime)?;
        let mut tracks = Vec::new();
        for (name, provider) in &scenario.providers {
            let sim = sims
                .get(name)
                .cloned()
                .ok_or_else(|| TimelineError::MissingSim(name.clone()))?;
            sim.set_speed(speed.factor());
            let latency = provider.latency.as_ref();
            tracks.push(Track {
                name: name.clone(),
                sim,
                names: provider.phases.iter().map(|p| p.name.clone()).collect(),
                up: provider
                    .phases
                    .iter()
                    .map(|p| sim_phase(&p.conditions(), latency))
                    .collect(),
                down: provider
                    .phases
                    .iter()
                    .map(|p| p.flap.as_ref().map(|f| sim_phase(&f.down, latency)))
                    .collect(),
                current: AtomicUsize::new(0),
                is_down: AtomicBool::new(false),
            });
        }
        let segments = segments(scenario);
        let shared = Arc::new(Shared {
            tracks,
            spans: phase_spans(scenario),
            segments,
            duration: scenario.duration,
            speed,
            started: Instant::now(),
            finished: AtomicBool::new(false),
        });
        let mut pending = 0;
        for segment in shared.segments.iter().take_while(|s| s.start.is_zero()) {
            if let Some(track) = shared.tracks.get(segment.provider) {
                track.enter(segment);
            }
            pending += 1;
        }
        let task = runtime.spawn(run(Arc::clone(&shared), pending));
        Ok(TimelineHandle {
            shared,
            task: Some(task),
        })
    }
}

async fn run(shared: Arc<Shared>, first: usize) {
    for segment in shared.segments.iter().skip(first) {
        tokio::time::sleep_until(shared.started + scenario_to_wall(segment.start, shared.speed))
            .await;
        if let Some(track) = shared.tracks.get(segment.provider) {
            track.enter(segment);
        }
    }
    tokio::time::sleep_until(shared.started + scenario_to_wall(shared.duration, shared.speed))
        .await;
    shared.finished.store(true, Ordering::SeqCst);
}

/// A running timeline. Dropping it stops the phase switches (simulators
/// stay in whatever phase they were in).
pub struct TimelineHandle {
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl TimelineHandle {
    /// The name of the phase `provider` is in now.
    pub fn current_phase(&self, provider: &str) -> Option<&str> {
        let track = self.track(provider)?;
        track
            .names
            .get(track.current.load(Ordering::SeqCst))
            .map(String::as_str)
    }

    /// Whether `provider` is in the down half of a flapping phase.
    pub fn is_down(&self, provider: &str) -> Option<bool> {
        Some(self.track(provider)?.is_down.load(Ordering::SeqCst))
    }

    /// Every provider's named phases with start and end in scenario time.
    pub fn phases(&self) -> &[PhaseSpan] {
        &self.shared.spans
    }

    /// Every switch, flap halves included, in scenario time.
    pub fn segments(&self) -> &[Segment] {
        &self.shared.segments
    }

    pub fn speed(&self) -> Speed {
        self.shared.speed
    }

    /// Scenario length.
    pub fn duration(&self) -> Duration {
        self.shared.duration
    }

    /// Scenario time since the start, capped at the scenario's end.
    pub fn elapsed(&self) -> Duration {
        wall_to_scenario(self.shared.started.elapsed(), self.shared.speed).min(self.shared.duration)
    }

    /// When the scenario started, on Tokio's clock.
    pub fn started(&self) -> Instant {
        self.shared.started
    }

    pub fn is_finished(&self) -> bool {
        self.shared.finished.load(Ordering::SeqCst)
    }

    /// Wait for the scenario's end.
    pub async fn finished(&mut self) -> Result<(), TimelineError> {
        match self.task.take() {
            Some(task) => task.await.map_err(TimelineError::from),
            None => Ok(()),
        }
    }

    /// Stop switching phases now.
    pub fn stop(mut self) {
        self.abort();
    }

    fn abort(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    fn track(&self, provider: &str) -> Option<&Track> {
        self.shared.tracks.iter().find(|t| t.name == provider)
    }
}

impl Drop for TimelineHandle {
    fn drop(&mut self) {
        self.abort();
    }
}
