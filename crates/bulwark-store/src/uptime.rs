//! Uptime per component per UTC day: seconds observed in each state. The
//! status page's 90-day bars and uptime percentages are ratios of these,
//! so storing seconds (not samples) keeps them exact whatever the
//! health tracker's tick rate.

use bulwark::observe::UnixMs;
use bulwark::observe::calendar::DAY_MS;
use bulwark::observe::component::{ComponentKind, ComponentState, uptime_of};
use sqlx::Row;

use crate::{Store, StoreError};

/// A longer span is a caller bug (a clock jump, seconds passed as ms), and
/// splitting it would write a row per day.
const MAX_SPAN_SECONDS: f64 = 366.0 * 86_400.0;

/// Observed time for one component on one UTC day.
#[derive(Debug, Clone, PartialEq)]
pub struct UptimeDay {
    /// Midnight UTC starting the day.
    pub day_start: UnixMs,
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Seconds spent in each state, indexed by `ComponentState as usize`.
    pub seconds: [f64; 5],
}

impl UptimeDay {
    pub fn observed(&self) -> f64 {
        self.seconds.iter().sum()
    }

    /// Share of observed time that was up, weighed as Statuspage does
    /// (degraded counts up, partial outage 30 % down); `None` if nothing
    /// was observed.
    pub fn uptime(&self) -> Option<f64> {
        uptime_of(&self.seconds)
    }

    /// The worst state with any time that day.
    pub fn worst(&self) -> ComponentState {
        ComponentState::ALL
            .into_iter()
            .filter(|s| self.seconds[*s as usize] > 0.0)
            .max()
            .unwrap_or(ComponentState::Operational)
    }
}

pub use bulwark::observe::calendar::{day_start, utc_date};

/// Splits the span of `seconds` ending at `at` into `(day_start, seconds)`
/// pieces, one per UTC day it touches, oldest first. The pieces add up to
/// exactly `seconds`, so nothing is lost to rounding at midnight.
pub(crate) fn split_by_day(at: UnixMs, seconds: f64) -> Vec<(UnixMs, f64)> {
    let end = at as f64;
    let start = end - seconds * 1000.0;
    let mut out = Vec::new();
    let mut assigned = 0.0;
    let mut day = day_start(start.floor() as i64);
    while (day as f64) < end {
        let next = day + DAY_MS;
        if next as f64 >= end {
            let rest = seconds - assigned;
            if rest > 0.0 {
                out.push((day, rest));
            }
            break;
        }
        let piece = (next as f64 - start.max(day as f64)) / 1000.0;
        if piece > 0.0 {
            out.push((day, piece));
            assigned += piece;
        }
        day = next;
    }
    out
}

impl Store {
    /// Adds `seconds` spent in `state` to the component's days. The span
    /// ends at `at` (the health tracker reports time as it passes, at the
    /// end of each observation), and is split at UTC midnight.
    pub async fn add_uptime(
        &self,
        component: &str,
        kind: ComponentKind,
        at: UnixMs,
        seconds: f64,
        state: ComponentState,
    ) -> Result<(), StoreError> {
        if !(seconds.is_finite() && (0.0..=MAX_SPAN_SECONDS).contains(&seconds)) {
            return Err(StoreError::InvalidSeconds { seconds });
        }
        let pieces = split_by_day(at, seconds);
        if pieces.is_empty() {
            return Ok(());
        }
        let op = "recording uptime";
        let mut tx = self.pool.begin().await.map_err(self.err(op))?;
        // At most a few rows (a span rarely crosses more than one midnight),
        // so one statement each.
        for (day, secs) in pieces {
            let mut by_state = [0.0_f64; 5];
            by_state[state as usize] = secs;
            sqlx::query(
                "INSERT INTO uptime_daily (component, kind, day_start_ms, operational_s, \
                     under_maintenance_s, degraded_performance_s, partial_outage_s, \
                     major_outage_s) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (component, day_start_ms) DO UPDATE SET kind = excluded.kind, \
                     operational_s = uptime_daily.operational_s + excluded.operational_s, \
                     under_maintenance_s = uptime_daily.under_maintenance_s \
                     + excluded.under_maintenance_s, \
                     degraded_performance_s = uptime_daily.degraded_performance_s \
                     + excluded.degraded_performance_s, \
                     partial_outage_s = uptime_daily.partial_outage_s + excluded.partial_outage_s, \
                     major_outage_s = uptime_daily.major_outage_s + excluded.major_outage_s",
            )
            .bind(component.to_string())
            .bind(kind.as_str())
            .bind(day)
            .bind(by_state[0])
            .bind(by_state[1])
            .bind(by_state[2])
            .bind(by_state[3])
            .bind(by_state[4])
            .execute(&mut *tx)
            .await
            .map_err(self.err(op))?;
        }
        tx.commit().await.map_err(self.err(op))?;
        Ok(())
    }

    /// The component's days overlapping `[from, to)`, oldest first; days
    /// with nothing observed have no row and are not returned.
    pub async fn uptime_days(
        &self,
        component: &str,
        from: UnixMs,
        to: UnixMs,
    ) -> Result<Vec<UptimeDay>, StoreError> {
        let op = "reading uptime";
        let rows = sqlx::query(
            "SELECT day_start_ms, operational_s, under_maintenance_s, degraded_performance_s, \
             partial_outage_s, major_outage_s FROM uptime_daily \
             WHERE component = $1 AND day_start_ms >= $2 AND day_start_ms < $3 \
             ORDER BY day_start_ms",
        )
        .bind(component.to_string())
        .bind(day_start(from))
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(self.err(op))?;
        rows.iter()
            .map(|row| {
                let day: i64 = row.try_get("day_start_ms")?;
                let mut seconds = [0.0; 5];
                for (i, slot) in seconds.iter_mut().enumerate() {
                    *slot = row.try_get(i + 1)?;
                }
                Ok(UptimeDay {
                    day_start: day,
                    date: utc_date(day),
                    seconds,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(self.err(op))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_days() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(DAY_MS - 1), "1970-01-01");
        assert_eq!(utc_date(-1), "1969-12-31");
        // 2024-02-29 12:00:00 UTC, a leap day.
        assert_eq!(utc_date(1_709_208_000_000), "2024-02-29");
        // 2000-03-01, after a 400-year leap day.
        assert_eq!(utc_date(951_868_800_000), "2000-03-01");
        assert_eq!(utc_date(1_798_675_200_000), "2026-12-31");
    }

    #[test]
    fn a_span_within_a_day_stays_whole() {
        assert_eq!(split_by_day(DAY_MS + 60_000, 30.0), vec![(DAY_MS, 30.0)]);
    }

    #[test]
    fn a_span_across_midnight_splits_exactly() {
        // 90 s ending 30 s after midnight: 60 s before, 30 s after.
        let pieces = split_by_day(DAY_MS + 30_000, 90.0);
        assert_eq!(pieces, vec![(0, 60.0), (DAY_MS, 30.0)]);
        let total: f64 = split_by_day(5 * DAY_MS + 1234, 3.5 * 86_400.0)
            .iter()
            .map(|p| p.1)
            .sum();
        assert!((total - 3.5 * 86_400.0).abs() < 1e-6);
    }

    #[test]
    fn a_span_ending_at_midnight_belongs_to_the_day_before() {
        assert_eq!(split_by_day(DAY_MS, 10.0), vec![(0, 10.0)]);
        assert!(split_by_day(DAY_MS, 0.0).is_empty());
    }

    #[test]
    fn worst_and_uptime_read_the_seconds() {
        let day = UptimeDay {
            day_start: 0,
            date: utc_date(0),
            seconds: [90.0, 0.0, 10.0, 0.0, 0.0],
        };
        assert_eq!(day.worst(), ComponentState::DegradedPerformance);
        // Degraded performance is still up, as on Statuspage.
        assert_eq!(day.uptime(), Some(1.0));
        let rough = UptimeDay {
            seconds: [60.0, 0.0, 20.0, 10.0, 10.0],
            ..day
        };
        assert_eq!(rough.worst(), ComponentState::MajorOutage);
        // 10 s major fully down, 10 s partial 30 % down: 13 of 100.
        let uptime = rough.uptime();
        assert!(
            uptime.is_some_and(|u| (u - 0.87).abs() < 1e-9),
            "{uptime:?}"
        );
    }
}
