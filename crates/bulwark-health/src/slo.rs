//! Error budgets and multi-window burn-rate alerts, as in the Google SRE
//! workbook (chapter 5, "Alerting on SLOs"): page when the budget burns
//! 14.4× too fast over both 1 h and 5 min, or 6× over 6 h and 30 min;
//! open a ticket at 1× over 3 days and 6 h. The short window makes the
//! alert stop soon after the burning does.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bulwark::observe::UnixMs;
use bulwark::observe::record::RequestRecord;

use crate::settings::SloSettings;

const MINUTE_MS: i64 = 60_000;
/// The longest alert window is 3 days.
const KEPT_MINUTES: usize = 3 * 24 * 60;

pub use bulwark::observe::burn::BurnSeverity;

/// A route's error budget burning too fast.
#[derive(Debug, Clone, PartialEq)]
pub struct BurnAlert {
    pub route: String,
    pub severity: BurnSeverity,
    /// The burn rate over the long window.
    pub burn_rate: f64,
    pub long_window: Duration,
    pub short_window: Duration,
}

/// The workbook's rules: (severity, long window, short window, burn rate).
const RULES: [(BurnSeverity, u64, u64, f64); 3] = [
    (BurnSeverity::Page, 60, 5, 14.4),
    (BurnSeverity::Page, 6 * 60, 30, 6.0),
    (BurnSeverity::Ticket, 3 * 24 * 60, 6 * 60, 1.0),
];

#[derive(Debug, Default)]
struct RouteMinutes {
    /// (minute index, total, good), oldest first.
    minutes: VecDeque<(i64, u64, u64)>,
}

impl RouteMinutes {
    fn add(&mut self, at: UnixMs, good: bool) {
        let minute = at.div_euclid(MINUTE_MS);
        // Records arrive in finishing order, so one may belong to a minute
        // already begun; it is counted there if that minute is kept.
        if let Some((_, total, ok)) = self.minutes.iter_mut().rev().find(|(m, _, _)| *m == minute) {
            *total += 1;
            *ok += u64::from(good);
            return;
        }
        let position = self.minutes.partition_point(|(m, _, _)| *m < minute);
        self.minutes.insert(position, (minute, 1, u64::from(good)));
        while self.minutes.len() > KEPT_MINUTES {
            self.minutes.pop_front();
        }
    }

    /// (total, good) over the last `minutes` minutes up to `now`.
    fn counts(&self, now: UnixMs, minutes: u64) -> (u64, u64) {
        let from = now.div_euclid(MINUTE_MS) - minutes as i64 + 1;
        self.minutes
            .iter()
            .rev()
            .take_while(|(m, _, _)| *m >= from)
            .fold((0, 0), |(t, g), (_, total, good)| (t + total, g + good))
    }
}

#[derive(Debug, Default)]
pub struct SloTracker {
    objectives: HashMap<String, SloSettings>,
    routes: HashMap<String, RouteMinutes>,
    /// Each route's alert level now, so each rise alerts once.
    firing: HashMap<String, Option<BurnSeverity>>,
}

impl SloTracker {
    pub fn new(objectives: HashMap<String, SloSettings>) -> SloTracker {
        SloTracker {
            objectives,
            ..SloTracker::default()
        }
    }

    /// The objectives of a reloaded config: a route that keeps its
    /// objective keeps its minutes and its alert level; the rest start
    /// afresh.
    pub fn set_objectives(&mut self, objectives: HashMap<String, SloSettings>) {
        let same = |route: &String| self.objectives.get(route) == objectives.get(route);
        let keep: Vec<String> = self
            .objectives
            .keys()
            .filter(|r| same(r))
            .cloned()
            .collect();
        self.routes.retain(|route, _| keep.contains(route));
        self.firing.retain(|route, _| keep.contains(route));
        self.objectives = objectives;
    }

    pub fn objective(&self, route: &str) -> Option<SloSettings> {
        self.objectives.get(route).copied()
    }

    pub fn routes(&self) -> impl Iterator<Item = (&String, &SloSettings)> {
        self.objectives.iter()
    }

    pub fn observe(&mut self, record: &RequestRecord) {
        if record.is_client_error() || !self.objectives.contains_key(&record.route) {
            return;
        }
        self.routes
            .entry(record.route.clone())
            .or_default()
            .add(record.at, record.is_good());
    }

    /// How many times faster than sustainable the budget burned over the
    /// last `minutes`: 1.0 spends exactly the budget over the SLO window.
    pub fn burn_rate(&self, route: &str, now: UnixMs, minutes: u64) -> f64 {
        let (Some(slo), Some(history)) = (self.objectives.get(route), self.routes.get(route))
        else {
            return 0.0;
        };
        let (total, good) = history.counts(now, minutes);
        burn(total, good, slo.objective)
    }

    /// Routes whose alert level rose since the last call: one alert per
    /// rise, the most severe rule firing, so a fast burn pages once instead
    /// of paging twice and opening a ticket too.
    pub fn alerts(&mut self, now: UnixMs) -> Vec<BurnAlert> {
        let mut alerts = Vec::new();
        let routes: Vec<String> = self.objectives.keys().cloned().collect();
        for route in routes {
            let firing = RULES.iter().find(|(_, long, short, threshold)| {
                self.burn_rate(&route, now, *long) >= *threshold
                    && self.burn_rate(&route, now, *short) >= *threshold
            });
            let level = firing.map(|(severity, ..)| *severity);
            let was = self.firing.insert(route.clone(), level).flatten();
            let rose = match (was, level) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(before), Some(now)) => {
                    before == BurnSeverity::Ticket && now == BurnSeverity::Page
                }
            };
            if let (true, Some((severity, long, short, _))) = (rose, firing) {
                alerts.push(BurnAlert {
                    route: route.clone(),
                    severity: *severity,
                    burn_rate: self.burn_rate(&route, now, *long),
                    long_window: Duration::from_secs(long * 60),
                    short_window: Duration::from_secs(short * 60),
                });
            }
        }
        alerts
    }
}

/// Bad share over the allowed bad share.
fn burn(total: u64, good: u64, objective: f64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    let bad_share = (total - good.min(total)) as f64 / total as f64;
    bad_share / (1.0 - objective).max(f64::EPSILON)
}

/// Share of the error budget left over a window with these counts: 1.0 is
/// untouched, 0 spent, negative overspent.
pub fn budget_remaining(total: u64, good: u64, objective: f64) -> f64 {
    1.0 - burn(total, good, objective)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(at: UnixMs, good: bool) -> RequestRecord {
        RequestRecord {
            at,
            route: "chat".into(),
            client_format: "openai".into(),
            status: if good { 200 } else { 503 },
            error_class: (!good).then(|| "overloaded".into()),
            latency_ms: 1.0,
            ..RequestRecord::default()
        }
    }

    fn tracker() -> SloTracker {
        let slo = SloSettings {
            objective: 0.999,
            window: Duration::from_secs(30 * 86_400),
        };
        SloTracker::new(HashMap::from([("chat".to_string(), slo)]))
    }

    #[test]
    fn budget_math() {
        assert!((budget_remaining(1000, 1000, 0.999) - 1.0).abs() < 1e-9);
        assert!((budget_remaining(1000, 999, 0.999)).abs() < 1e-9);
        assert!((budget_remaining(1000, 998, 0.999) + 1.0).abs() < 1e-9);
        assert_eq!(budget_remaining(0, 0, 0.999), 1.0);
    }

    #[test]
    fn a_fast_burn_pages_once_and_stops_after_the_short_window() {
        let mut slo = tracker();
        let start = 1_000 * MINUTE_MS;
        // An hour of healthy traffic, then 10 minutes of 50 % errors.
        for minute in 0..60 {
            for i in 0..100 {
                slo.observe(&record(start + minute * MINUTE_MS + i, true));
            }
        }
        assert!(slo.alerts(start + 60 * MINUTE_MS).is_empty());
        let bad_start = start + 60 * MINUTE_MS;
        for minute in 0..10 {
            for i in 0..100 {
                slo.observe(&record(bad_start + minute * MINUTE_MS + i, i % 2 == 0));
            }
        }
        let now = bad_start + 9 * MINUTE_MS;
        let alerts = slo.alerts(now);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].severity, BurnSeverity::Page);
        assert_eq!(alerts[0].long_window, Duration::from_secs(3600));
        // Still firing: no second alert.
        assert!(slo.alerts(now).is_empty());
        // 31 clean minutes: both page rules' short windows clear, while the
        // 6 h ticket rule still sees the burn. Lowering never alerts.
        for minute in 10..41 {
            for i in 0..100 {
                slo.observe(&record(bad_start + minute * MINUTE_MS + i, true));
            }
        }
        let later = bad_start + 40 * MINUTE_MS;
        assert!(slo.burn_rate("chat", later, 5) < 1.0);
        assert!(slo.burn_rate("chat", later, 30) < 1.0);
        assert!(slo.alerts(later).is_empty());
        assert_eq!(slo.firing.get("chat"), Some(&Some(BurnSeverity::Ticket)));
    }

    #[test]
    fn client_errors_do_not_burn_the_budget() {
        let mut slo = tracker();
        let mut bad_input = record(0, false);
        bad_input.status = 400;
        bad_input.error_class = Some("invalid_request".into());
        for _ in 0..100 {
            slo.observe(&bad_input);
        }
        assert_eq!(slo.burn_rate("chat", 0, 60), 0.0);
    }
}
