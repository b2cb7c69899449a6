//! Where a component stands on the Statuspage ladder, and the hysteresis
//! that keeps it from flapping there.

use bulwark::observe::component::ComponentState;
use bulwark::resilience::breaker::BreakerState;

use crate::settings::HealthSettings;
use crate::window::{RouteStats, TargetStats};

/// A state and the reason for it, in words for the status page.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub state: ComponentState,
    pub reason: Option<String>,
}

impl Judgement {
    fn operational() -> Judgement {
        Judgement {
            state: ComponentState::Operational,
            reason: None,
        }
    }

    /// Keeps the worse of the two.
    fn worsen(&mut self, state: ComponentState, reason: String) {
        if state > self.state {
            self.state = state;
            self.reason = Some(reason);
        }
    }
}

/// Error-rate thresholds live with the ladder (`for_failure_rate`), so an
/// incident's impact is judged like a route.
const DEGRADED_ERROR_RATE: f64 = 0.05;
/// Half the calls turned away with 429/529 is a provider out of capacity.
const THROTTLED_SHARE: f64 = 0.5;

/// A target from its window and breaker. An open breaker is a major outage
/// whatever the window says: the breaker has its own evidence and its own
/// hysteresis, and no traffic reaches the target while it is open.
pub fn judge_target(
    stats: &TargetStats,
    breaker: BreakerState,
    baseline_first_token_ms: Option<f64>,
    settings: &HealthSettings,
) -> Judgement {
    let mut judgement = Judgement::operational();
    match breaker {
        BreakerState::Open => {
            judgement.worsen(ComponentState::MajorOutage, "circuit breaker open".into())
        }
        BreakerState::HalfOpen => judgement.worsen(
            ComponentState::PartialOutage,
            "circuit breaker probing recovery".into(),
        ),
        BreakerState::Closed => {}
    }
    if stats.attempts >= settings.min_volume {
        let rate = stats.error_rate();
        judgement.worsen(
            ComponentState::for_failure_rate(rate),
            format!(
                "error rate {:.0} % over the last {} calls",
                rate * 100.0,
                stats.attempts
            ),
        );
        if stats.throttled_share() >= THROTTLED_SHARE {
            judgement.worsen(
                ComponentState::DegradedPerformance,
                format!(
                    "{:.0} % of calls rate-limited or overloaded",
                    stats.throttled_share() * 100.0
                ),
            );
        }
        if let (Some(p50), Some(baseline)) = (stats.first_token_p50_ms, baseline_first_token_ms)
            && p50 > baseline * settings.slow_factor
        {
            judgement.worsen(
                ComponentState::DegradedPerformance,
                format!("first token in {:.0} ms, usually {:.0} ms", p50, baseline),
            );
        }
    }
    judgement
}

/// A route as its clients see it: errors they got, and how many answers
/// were not the ones they asked for.
pub fn judge_route(stats: &RouteStats, settings: &HealthSettings) -> Judgement {
    let mut judgement = Judgement::operational();
    if stats.requests < settings.min_volume {
        return judgement;
    }
    let rate = stats.bad_rate();
    judgement.worsen(
        ComponentState::for_failure_rate(rate),
        format!("{:.0} % of requests failed", rate * 100.0),
    );
    if stats.degraded_share() >= DEGRADED_ERROR_RATE {
        judgement.worsen(
            ComponentState::DegradedPerformance,
            format!(
                "{:.0} % of answers degraded or stale",
                stats.degraded_share() * 100.0
            ),
        );
    }
    // Mostly answered by a fallback is degraded, not an outage: every
    // request was served, but by another model than the one asked for,
    // usually slower or different, which clients may notice. Degraded
    // counts as up in uptime, as on Statuspage, so a route carried by
    // fallback for a day keeps 100 %.
    if stats.fallback_share() >= THROTTLED_SHARE {
        judgement.worsen(
            ComponentState::DegradedPerformance,
            format!(
                "{:.0} % of answers from a fallback target",
                stats.fallback_share() * 100.0
            ),
        );
    }
    judgement
}

/// Shows a new state only once it has persisted: worse states after
/// `raise_after` evaluations, better ones after `recover_after`.
#[derive(Debug, Clone)]
pub struct Hysteresis {
    shown: ComponentState,
    /// The state pressing to be shown, and for how many evaluations.
    pending: Option<(ComponentState, u32)>,
}

impl Default for Hysteresis {
    fn default() -> Self {
        Hysteresis {
            shown: ComponentState::Operational,
            pending: None,
        }
    }
}

impl Hysteresis {
    pub fn shown(&self) -> ComponentState {
        self.shown
    }

    /// Feeds one evaluation's state; returns the state to show.
    pub fn feed(&mut self, candidate: ComponentState, settings: &HealthSettings) -> ComponentState {
        if candidate == self.shown {
            self.pending = None;
            return self.shown;
        }
        let worse = candidate > self.shown;
        // A candidate on the same side as the pending one keeps the streak,
        // so a worsening that wavers between partial and major still shows.
        let streak = match self.pending {
            Some((pending, n)) if (pending > self.shown) == worse => n + 1,
            _ => 1,
        };
        let needed = if worse {
            settings.raise_after
        } else {
            settings.recover_after
        };
        if streak >= needed.max(1) {
            self.shown = candidate;
            self.pending = None;
        } else {
            self.pending = Some((candidate, streak));
        }
        self.shown
    }

    /// Skips the wait: for an admin's maintenance setting, and for an open
    /// breaker, which has already waited on its own evidence.
    pub fn force(&mut self, state: ComponentState) {
        self.shown = state;
        self.pending = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ComponentState::*;

    fn settings() -> HealthSettings {
        HealthSettings {
            raise_after: 2,
            recover_after: 3,
            ..HealthSettings::default()
        }
    }

    #[test]
    fn one_bad_evaluation_does_not_show() {
        let mut h = Hysteresis::default();
        let s = settings();
        assert_eq!(h.feed(MajorOutage, &s), Operational);
        assert_eq!(h.feed(Operational, &s), Operational);
        assert_eq!(h.feed(MajorOutage, &s), Operational);
        assert_eq!(h.feed(PartialOutage, &s), PartialOutage);
    }

    #[test]
    fn recovery_waits_longer_than_raising() {
        let mut h = Hysteresis::default();
        let s = settings();
        h.feed(MajorOutage, &s);
        h.feed(MajorOutage, &s);
        assert_eq!(h.shown(), MajorOutage);
        assert_eq!(h.feed(Operational, &s), MajorOutage);
        assert_eq!(h.feed(Operational, &s), MajorOutage);
        // A relapse restarts the recovery count.
        assert_eq!(h.feed(MajorOutage, &s), MajorOutage);
        assert_eq!(h.feed(Operational, &s), MajorOutage);
        assert_eq!(h.feed(Operational, &s), MajorOutage);
        assert_eq!(h.feed(Operational, &s), Operational);
    }

    #[test]
    fn flapping_every_evaluation_never_shows_as_recovered() {
        let mut h = Hysteresis::default();
        let s = settings();
        h.feed(MajorOutage, &s);
        h.feed(MajorOutage, &s);
        for _ in 0..20 {
            h.feed(Operational, &s);
            assert_eq!(h.feed(MajorOutage, &s), MajorOutage);
        }
    }

    fn stats(attempts: u32, failures: u32, throttled: u32) -> TargetStats {
        TargetStats {
            attempts,
            failures,
            throttled,
            first_token_p50_ms: Some(100.0),
            first_token_p95_ms: Some(200.0),
        }
    }

    #[test]
    fn target_thresholds() {
        let s = HealthSettings::default();
        let closed = BreakerState::Closed;
        assert_eq!(
            judge_target(&stats(100, 1, 0), closed, None, &s).state,
            Operational
        );
        assert_eq!(
            judge_target(&stats(100, 5, 0), closed, None, &s).state,
            DegradedPerformance
        );
        assert_eq!(
            judge_target(&stats(100, 30, 0), closed, None, &s).state,
            PartialOutage
        );
        assert_eq!(
            judge_target(&stats(100, 80, 80), closed, None, &s).state,
            MajorOutage
        );
        // Too few calls to say anything about the rate.
        assert_eq!(
            judge_target(&stats(2, 2, 0), closed, None, &s).state,
            Operational
        );
        assert_eq!(
            judge_target(&stats(0, 0, 0), BreakerState::Open, None, &s).state,
            MajorOutage
        );
        let slow = judge_target(&stats(100, 0, 0), closed, Some(20.0), &s);
        assert_eq!(slow.state, DegradedPerformance);
        assert!(slow.reason.unwrap_or_default().contains("usually 20 ms"));
    }
}
