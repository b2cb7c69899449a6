//! Requests grouped into time buckets for the chart. A bucket is one wall
//! second (`speed` scenario seconds): the finest grain at which a
//! per-second load gives a rate worth plotting. Long drills merge buckets
//! so a line never has more points than the chart has pixels to show.

use std::time::Duration;

use bulwark::observe::percentile::nearest_rank;

use crate::outcome::{DrillData, Path};

/// Most buckets a chart line gets; about one per two pixels.
const MAX_BUCKETS: u64 = 600;
/// Fewest buckets: below this a short drill is cut finer than a second,
/// or its lines would be a handful of points.
const MIN_BUCKETS: u64 = 30;

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Bucket {
    pub sent: u64,
    pub ok: u64,
    /// Over all requests sent in the bucket, failed included.
    pub p50: Option<Duration>,
    pub p95: Option<Duration>,
}

impl Bucket {
    /// `None` for an empty bucket: no requests is not a 0 % success rate.
    pub fn success(&self) -> Option<f64> {
        (self.sent > 0).then(|| self.ok as f64 / self.sent as f64)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Buckets {
    /// Each bucket's width in wall time.
    pub width: Duration,
    pub bulwark: Vec<Bucket>,
    pub direct: Vec<Bucket>,
}

/// The wall time the chart covers: the run, or the last request sent if a
/// request was (oddly) sent after the recorded end.
pub(crate) fn wall_span(data: &DrillData) -> Duration {
    let last = data.sent.iter().map(|s| s.at).max().unwrap_or_default();
    data.wall_duration.max(last)
}

pub(crate) fn buckets(data: &DrillData) -> Buckets {
    let span = wall_span(data);
    let seconds = span.as_secs_f64().ceil().max(1.0) as u64;
    let width = if seconds < MIN_BUCKETS {
        (span / MIN_BUCKETS as u32).max(Duration::from_millis(1))
    } else {
        Duration::from_secs(seconds.div_ceil(MAX_BUCKETS))
    };
    let count = (span.as_secs_f64() / width.as_secs_f64()).ceil().max(1.0) as usize;
    let path = |path: Path| -> Vec<Bucket> {
        let mut latencies: Vec<Vec<Duration>> = vec![Vec::new(); count];
        let mut ok = vec![0u64; count];
        for s in data.sent.iter().filter(|s| s.path == path) {
            let i = ((s.at.as_secs_f64() / width.as_secs_f64()) as usize).min(count - 1);
            if let Some(l) = latencies.get_mut(i) {
                l.push(s.latency);
            }
            if s.ok
                && let Some(n) = ok.get_mut(i)
            {
                *n += 1;
            }
        }
        latencies
            .into_iter()
            .zip(ok)
            .map(|(mut l, ok)| {
                l.sort_unstable();
                Bucket {
                    sent: l.len() as u64,
                    ok,
                    p50: nearest_rank(&l, 50.0),
                    p95: nearest_rank(&l, 95.0),
                }
            })
            .collect()
    };
    Buckets {
        width,
        bulwark: path(Path::Bulwark),
        direct: path(Path::Direct),
    }
}
