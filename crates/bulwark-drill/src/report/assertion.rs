//! `--assert availability>=99.9 --assert p99<=10s`: thresholds a team's CI
//! holds the drill to. A check that cannot be evaluated (an incident that
//! was never opened, so there is no time to detect) fails: CI must not
//! pass because the thing it guards did not happen.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::{PathFigures, Report, text};

/// The metrics `--assert` knows, with their unit and meaning. Path metrics
/// are Bulwark's; prefix them with `direct.` to check the baseline.
pub const METRICS: &[(&str, &str)] = &[
    (
        "availability",
        "percent of requests answered successfully, e.g. availability>=99.9",
    ),
    ("p50", "median latency, all requests (duration: p50<=2s)"),
    ("p95", "95th percentile latency, all requests"),
    ("p99", "99th percentile latency, all requests"),
    ("slowest", "the slowest request"),
    ("first_token_p50", "median time to first token"),
    ("first_token_p95", "95th percentile time to first token"),
    ("sent", "requests sent"),
    ("ok", "requests answered successfully"),
    ("failed", "requests that got an error"),
    ("fallback", "answers served by a fallback target"),
    (
        "from_cache",
        "answers served from the cache, fresh or stale",
    ),
    ("degraded", "answers served degraded"),
    (
        "dropped",
        "answers that left out fields the client sent (a translation)",
    ),
    (
        "over_deadline",
        "Bulwark requests slower than the route's deadline",
    ),
    (
        "amplification",
        "upstream calls per Bulwark request (number: amplification<=1.5)",
    ),
    (
        "upstream_calls",
        "calls the providers received from the gateway",
    ),
    (
        "time_to_detect",
        "outage start to first incident opened, scenario time",
    ),
    (
        "time_to_first_alert",
        "outage start to first alert delivered, scenario time",
    ),
    (
        "time_to_fail_over",
        "outage start to first request answered by a fallback, scenario time",
    ),
    (
        "time_to_recover",
        "recovery start to first incident resolved, scenario time",
    ),
    (
        "incidents",
        "incidents the gateway opened (all instances together: one outage, one incident)",
    ),
    (
        "incident_alerts",
        "`incident_opened` alerts the drill's webhook received",
    ),
];

const PATH_METRICS: &[&str] = &[
    "availability",
    "p50",
    "p95",
    "p99",
    "slowest",
    "first_token_p50",
    "first_token_p95",
    "sent",
    "ok",
    "failed",
    "fallback",
    "from_cache",
    "degraded",
    "dropped",
];

const DURATION_METRICS: &[&str] = &[
    "p50",
    "p95",
    "p99",
    "slowest",
    "first_token_p50",
    "first_token_p95",
    "time_to_detect",
    "time_to_first_alert",
    "time_to_fail_over",
    "time_to_recover",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    AtLeast,
    AtMost,
    Above,
    Below,
    Equal,
}

impl Comparison {
    fn symbol(self) -> &'static str {
        match self {
            Comparison::AtLeast => ">=",
            Comparison::AtMost => "<=",
            Comparison::Above => ">",
            Comparison::Below => "<",
            Comparison::Equal => "==",
        }
    }

    fn holds<T: PartialOrd>(self, actual: T, threshold: T) -> bool {
        match self {
            Comparison::AtLeast => actual >= threshold,
            Comparison::AtMost => actual <= threshold,
            Comparison::Above => actual > threshold,
            Comparison::Below => actual < threshold,
            Comparison::Equal => actual == threshold,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Threshold {
    /// A percentage, 0 to 100.
    Percent(f64),
    Duration(Duration),
    Count(u64),
    Number(f64),
}

/// One `--assert` threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Assertion {
    metric: String,
    direct: bool,
    comparison: Comparison,
    threshold: Threshold,
    /// The threshold as the operator wrote it, for messages they recognise.
    written: String,
}

/// Why an `--assert` could not be read; the message is for the operator
/// who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AssertionError(pub String);

impl Assertion {
    /// The metric as written, with its `direct.` prefix if any.
    pub fn metric(&self) -> String {
        if self.direct {
            format!("direct.{}", self.metric)
        } else {
            self.metric.clone()
        }
    }

    pub fn comparison(&self) -> Comparison {
        self.comparison
    }

    /// `Ok` with a line saying it passed, or `Err` with a line giving the
    /// actual value, ready to print.
    pub fn check(&self, report: &Report) -> Result<String, String> {
        let actual = self.actual(report);
        let passed = match (actual, self.threshold) {
            (Some(Actual::Percent { ok, sent }), Threshold::Percent(t)) => {
                // ok × 100 / sent is correctly rounded, like the parsed
                // threshold, so 999 of 1000 meets exactly 99.9.
                let p = if sent == 0 {
                    0.0
                } else {
                    ok as f64 * 100.0 / sent as f64
                };
                self.comparison.holds(p, t)
            }
            (Some(Actual::Duration(a)), Threshold::Duration(t)) => self.comparison.holds(a, t),
            (Some(Actual::Count(a)), Threshold::Count(t)) => self.comparison.holds(a, t),
            (Some(Actual::Number(a)), Threshold::Number(t)) => self.comparison.holds(a, t),
            _ => false,
        };
        let shown = match actual {
            Some(a) => a.to_string(),
            None => "never happened".to_string(),
        };
        if passed {
            Ok(format!("PASS {self} (actual {shown})"))
        } else {
            Err(format!("FAIL {self} (actual {shown})"))
        }
    }

    fn actual(&self, r: &Report) -> Option<Actual> {
        let f: &PathFigures = if self.direct { &r.direct } else { &r.bulwark };
        Some(match self.metric.as_str() {
            "availability" => Actual::Percent {
                ok: f.ok,
                sent: f.sent,
            },
            "p50" => Actual::Duration(f.p50),
            "p95" => Actual::Duration(f.p95),
            "p99" => Actual::Duration(f.p99),
            "slowest" => Actual::Duration(f.slowest),
            "first_token_p50" => Actual::Duration(f.first_token_p50?),
            "first_token_p95" => Actual::Duration(f.first_token_p95?),
            "sent" => Actual::Count(f.sent),
            "ok" => Actual::Count(f.ok),
            "failed" => Actual::Count(f.failed),
            "fallback" => Actual::Count(f.fallback),
            "from_cache" => Actual::Count(f.from_cache),
            "degraded" => Actual::Count(f.degraded),
            "dropped" => Actual::Count(f.dropped),
            "over_deadline" => Actual::Count(r.over_deadline),
            "amplification" => Actual::Number(r.amplification),
            "upstream_calls" => Actual::Count(r.upstream_calls),
            "time_to_detect" => Actual::Duration(r.time_to_detect?),
            "time_to_first_alert" => Actual::Duration(r.time_to_first_alert?),
            "time_to_fail_over" => Actual::Duration(r.time_to_fail_over?),
            "time_to_recover" => Actual::Duration(r.time_to_recover?),
            "incidents" => Actual::Count(r.incidents.len() as u64),
            "incident_alerts" => Actual::Count(r.incident_alerts),
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum Actual {
    Percent { ok: u64, sent: u64 },
    Duration(Duration),
    Count(u64),
    Number(f64),
}

impl fmt::Display for Actual {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Actual::Percent { ok, sent } => {
                let fraction = if sent == 0 {
                    0.0
                } else {
                    ok as f64 / sent as f64
                };
                write!(f, "{}", text::percent(fraction))
            }
            Actual::Duration(d) => write!(f, "{}", text::duration(d)),
            Actual::Count(n) => write!(f, "{n}"),
            Actual::Number(x) => write!(f, "{x:.3}"),
        }
    }
}

impl fmt::Display for Assertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let threshold = match self.threshold {
            Threshold::Percent(p) => format!("{p} %"),
            _ => self.written.clone(),
        };
        write!(
            f,
            "{} {} {threshold}",
            self.metric(),
            self.comparison.symbol()
        )
    }
}

impl FromStr for Assertion {
    type Err = AssertionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |why: String| AssertionError(format!("--assert `{text}`: {why}"));
        // Two-character operators first, so `>=` is not read as `>`.
        let operators = [
            (">=", Comparison::AtLeast),
            ("<=", Comparison::AtMost),
            ("==", Comparison::Equal),
            (">", Comparison::Above),
            ("<", Comparison::Below),
            ("=", Comparison::Equal),
        ];
        let Some((at, op, comparison)) = operators
            .iter()
            .filter_map(|&(op, c)| text.find(op).map(|at| (at, op, c)))
            .min_by_key(|&(at, op, _)| (at, std::cmp::Reverse(op.len())))
        else {
            return Err(err(
                "no comparison; write METRIC OPERATOR VALUE, e.g. availability>=99.9 or p99<=10s \
                 (operators: >=, <=, >, <, ==)"
                    .to_string(),
            ));
        };
        let name = text[..at].trim().to_ascii_lowercase();
        let value = text[at + op.len()..].trim();
        let (direct, metric) = match name.strip_prefix("direct.") {
            Some(rest) => (true, rest.to_string()),
            None => (
                false,
                name.strip_prefix("bulwark.").unwrap_or(&name).to_string(),
            ),
        };
        let known: Vec<&str> = METRICS.iter().map(|(n, _)| *n).collect();
        if !known.contains(&metric.as_str()) {
            return Err(err(format!(
                "unknown metric `{name}`; known metrics: {} (prefix a per-path metric with \
                 `direct.` to check the baseline)",
                known.join(", ")
            )));
        }
        if direct && !PATH_METRICS.contains(&metric.as_str()) {
            return Err(err(format!(
                "`{metric}` is not measured per path, so `direct.` does not apply; per-path \
                 metrics: {}",
                PATH_METRICS.join(", ")
            )));
        }
        if value.is_empty() {
            return Err(err(format!("no value after `{op}`")));
        }
        let threshold = threshold(&metric, value).map_err(err)?;
        Ok(Assertion {
            metric,
            direct,
            comparison,
            threshold,
            written: value.to_string(),
        })
    }
}

fn threshold(metric: &str, value: &str) -> Result<Threshold, String> {
    match metric {
        "availability" => {
            let number = value.trim_end_matches('%').trim();
            match number.parse::<f64>() {
                Ok(p) if (0.0..=100.0).contains(&p) => Ok(Threshold::Percent(p)),
                _ => Err(format!(
                    "availability is a percentage between 0 and 100, e.g. 99.9; got `{value}`"
                )),
            }
        }
        "amplification" => match value.parse::<f64>() {
            Ok(x) if x.is_finite() && x >= 0.0 => Ok(Threshold::Number(x)),
            _ => Err(format!(
                "amplification is a number of upstream calls per request, e.g. 1.5; got `{value}`"
            )),
        },
        m if DURATION_METRICS.contains(&m) => bulwark::config::duration::parse(value)
            .map(Threshold::Duration)
            .map_err(|e| format!("{m} is a duration with a unit, e.g. 10s or 400ms: {e}")),
        m => value.parse::<u64>().map(Threshold::Count).map_err(|_| {
            format!("{m} is a count of requests, a whole number such as 0 or 12; got `{value}`")
        }),
    }
}
