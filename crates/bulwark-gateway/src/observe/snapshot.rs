//! Gathers what the status page shows: live states from the tracker,
//! history from the store.

use bulwark::observe::calendar::{DAY_MS, day_start};
use bulwark::observe::component::{ComponentState, uptime_of};
use bulwark::observe::snapshot::{
    ComponentStatus, DayUptime, SloStatus, StatusSnapshot, client_overall,
};
use bulwark::observe::{UnixMs, unix_ms_now};
use bulwark_health::{ComponentView, budget_remaining};
use bulwark_store::UptimeDay;

use std::time::Duration;

use tokio::time::{Instant, timeout_at};

use super::Observer;

const DAYS_SHOWN: i64 = 90;

/// All the history reads of one page together: a silent database makes
/// the page show empty history rather than hang.
const HISTORY_BUDGET: Duration = Duration::from_millis(400);

impl Observer {
    /// What the status page, its JSON and its feed show: the public view
    /// (`status_page.show_targets`) is applied here, the one way to get a
    /// snapshot, so no surface can show more than it may.
    pub async fn snapshot(&self) -> StatusSnapshot {
        let gathered = self.gather().await;
        self.public().snapshot(gathered)
    }

    /// The page's overall state among the components the public sees:
    /// what clients get (`client_overall`), as the snapshot's.
    pub(crate) fn public_overall(&self) -> ComponentState {
        let public = self.public();
        client_overall(
            self.health()
                .components()
                .iter()
                .filter(|c| public.shows(c.kind, &c.name))
                .map(|c| (c.kind, c.state)),
        )
    }

    /// Everything the public view may keep, for it to trim.
    async fn gather(&self) -> StatusSnapshot {
        // With `redis:`, what the judge published, so every instance shows
        // the same; its time is `now`, so the history read below is the
        // same from every instance too.
        let judged = self.cluster.fresh_judged().await;
        let now = judged.as_ref().map_or_else(unix_ms_now, |j| j.generated_at);
        let mut components = match &judged {
            Some(judged) => judged
                .components
                .iter()
                .cloned()
                .map(ComponentView::from)
                .collect(),
            None => {
                let mut local = self.health().components();
                local.extend(self.cluster.component());
                local
            }
        };
        // The view drops hidden components anyway: no need to read their
        // 90 days of history first.
        let public = self.public();
        components.retain(|c| public.shows(c.kind, &c.name));
        let today = day_start(now);
        let from = today - (DAYS_SHOWN - 1) * DAY_MS;
        let deadline = Instant::now() + HISTORY_BUDGET;
        let mut statuses = Vec::with_capacity(components.len());
        for component in components {
            let read = timeout_at(deadline, self.store.uptime_days(&component.name, from, now));
            let days = match read.await {
                Ok(Ok(days)) => days,
                Ok(Err(error)) => {
                    tracing::warn!("cannot read uptime history: {error}");
                    Vec::new()
                }
                Err(_) => {
                    tracing::debug!("uptime history not read within {HISTORY_BUDGET:?}");
                    Vec::new()
                }
            };
            statuses.push(ComponentStatus {
                uptime_24h: uptime_since(&days, now - DAY_MS),
                uptime_7d: uptime_since(&days, now - 7 * DAY_MS),
                uptime_30d: uptime_since(&days, now - 30 * DAY_MS),
                days: bars(&days, from),
                name: component.name,
                kind: component.kind,
                state: component.state,
                updated_at: component.updated_at,
                reason: component.reason,
                latency_p50_ms: component.first_token_p50_ms,
                latency_p95_ms: component.first_token_p95_ms,
            });
        }
        let mut slos = Vec::new();
        let mut routes: Vec<_> = self.slos().into_iter().collect();
        routes.sort_by(|a, b| a.0.cmp(&b.0));
        for (route, slo) in routes {
            let since = now - slo.window.as_millis() as i64;
            let (total, good) = timeout_at(deadline, self.store.route_counts(&route, since, now))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or((0, 0));
            let (burn_1h, burn_6h) = match &judged {
                Some(judged) => judged.burn(&route),
                None => {
                    let health = self.health();
                    (
                        health.slo().burn_rate(&route, now, 60),
                        health.slo().burn_rate(&route, now, 360),
                    )
                }
            };
            slos.push(SloStatus {
                route,
                objective: slo.objective,
                window_secs: slo.window.as_secs(),
                availability: (total > 0).then(|| good as f64 / total as f64),
                total,
                good,
                budget_remaining: budget_remaining(total, good, slo.objective),
                burn_rate_1h: burn_1h,
                burn_rate_6h: burn_6h,
            });
        }
        let (incidents, absorbed) = match judged {
            Some(judged) => (judged.incidents, judged.absorbed),
            None => (
                self.recent.lock().map(|r| r.clone()).unwrap_or_default(),
                self.health().absorbed(now),
            ),
        };
        let (active, recent): (Vec<_>, Vec<_>) =
            incidents.into_iter().partition(|i| !i.status.is_closed());
        StatusSnapshot {
            page_name: self.page_title.clone(),
            page_url: self.page_url.clone(),
            generated_at: now,
            components: statuses,
            slos,
            active_incidents: active,
            recent_incidents: recent.into_iter().take(10).collect(),
            absorbed,
            // The public view fills them in where names may be shown.
            provider_names: Default::default(),
        }
    }
}

/// Uptime over the days overlapping `since`, weighed as Statuspage does
/// (`uptime_of`). History is kept per day, so "24 h" covers today and
/// yesterday in full: close enough for a status page, and it survives
/// restarts.
fn uptime_since(days: &[UptimeDay], since: UnixMs) -> Option<f64> {
    let first_day = day_start(since);
    let mut seconds = [0.0; 5];
    for day in days.iter().filter(|d| d.day_start >= first_day) {
        for (total, secs) in seconds.iter_mut().zip(day.seconds) {
            *total += secs;
        }
    }
    uptime_of(&seconds)
}

/// One bar per day from `from` to today, grey (no data) where nothing was seen.
fn bars(days: &[UptimeDay], from: UnixMs) -> Vec<DayUptime> {
    (0..DAYS_SHOWN)
        .map(|i| {
            let start = from + i * DAY_MS;
            match days.iter().find(|d| d.day_start == start) {
                Some(day) => DayUptime {
                    date: day.date.clone(),
                    uptime: day.uptime(),
                    worst: day.worst(),
                },
                None => DayUptime {
                    date: bulwark_store::utc_date(start),
                    uptime: None,
                    worst: ComponentState::Operational,
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(index: i64, seconds: [f64; 5]) -> UptimeDay {
        UptimeDay {
            day_start: index * DAY_MS,
            date: bulwark_store::utc_date(index * DAY_MS),
            seconds,
        }
    }

    #[test]
    fn uptime_counts_degraded_up_and_partial_thirty_percent_down() {
        let days = [
            // A day of fallback: degraded, every request served.
            day(10, [0.0, 0.0, 86_400.0, 0.0, 0.0]),
            // Half a day partly out.
            day(11, [43_200.0, 0.0, 0.0, 43_200.0, 0.0]),
            // A quarter of a day fully out.
            day(12, [64_800.0, 0.0, 0.0, 0.0, 21_600.0]),
        ];
        assert_eq!(uptime_since(&days[..1], 10 * DAY_MS), Some(1.0));
        let partial = uptime_since(&days[1..2], 0);
        assert!(
            partial.is_some_and(|u| (u - 0.85).abs() < 1e-9),
            "{partial:?}"
        );
        // 0.3 * 43 200 + 21 600 s down of three days.
        let all = uptime_since(&days, 0);
        let expected = 1.0 - (0.3 * 43_200.0 + 21_600.0) / (3.0 * 86_400.0);
        assert!(all.is_some_and(|u| (u - expected).abs() < 1e-9), "{all:?}");
        // Days before `since` are left out.
        assert_eq!(uptime_since(&days, 13 * DAY_MS), None);
        let bars = bars(&days, 10 * DAY_MS);
        assert_eq!(bars[0].uptime, Some(1.0));
        assert_eq!(bars[0].worst, ComponentState::DegradedPerformance);
    }
}
