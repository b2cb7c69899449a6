//! Durations as operators write them, in the config and in drill
//! scenarios alike: humantime (`30m`, `3h30m`, `1h 5m`) plus a decimal in
//! one unit (`1.2s`, `0.5h`), which humantime rejects but latency
//! percentiles are naturally quoted in.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

use super::Issue;

/// Beyond a day is a slip of the pen for a timeout or a break, and would
/// overflow clock arithmetic somewhere far enough out.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Parse a duration; the message says what was expected.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(d) = humantime::parse_duration(text) {
        return Ok(d);
    }
    decimal(text)
        .ok_or_else(|| format!("`{text}` is not a duration such as 400ms, 1.2s, 30m or 3h30m"))
}

fn decimal(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.trim().parse().ok()?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "s" | "sec" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

/// A timeout or break setting: positive and at most a day. A problem is
/// recorded at `path` and the default used, so that validation goes on.
pub fn timeout(
    text: Option<String>,
    default: Duration,
    path: &str,
    issues: &mut Vec<Issue>,
) -> Duration {
    let Some(text) = text else { return default };
    match parse(&text) {
        Ok(d) if d > MAX_TIMEOUT => {
            issues.push(Issue::new(
                path,
                format!("`{text}` is longer than a day; no timeout or break here should be"),
            ));
            default
        }
        Ok(d) if !d.is_zero() => d,
        _ => {
            issues.push(Issue::new(
                path,
                format!("`{text}` is not a positive duration such as 500ms, 30s or 2m"),
            ));
            default
        }
    }
}

/// A setting that may run to days or months (`30d`), unlike a timeout.
pub fn long(
    text: Option<String>,
    default: Duration,
    path: &str,
    issues: &mut Vec<Issue>,
) -> Duration {
    let Some(text) = text else { return default };
    match parse(&text) {
        Ok(d) if !d.is_zero() => d,
        _ => {
            issues.push(Issue::new(
                path,
                format!("`{text}` is not a positive duration such as 30s, 5m or 30d"),
            ));
            default
        }
    }
}

/// `1h30m` style, for messages and chart labels.
pub fn format(d: Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as 400ms, 1.2s, 30m or 3h30m")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse(v).map_err(E::custom)
    }

    // A bare number has no unit, and guessing one is how 30 ms becomes 30 s.
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "`{v}` has no unit; write e.g. {v}s or {v}ms"
        )))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "`{v}` has no unit; write e.g. {v}s or {v}ms"
        )))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        Err(E::custom(format!("`{v}` has no unit; write e.g. {v}s")))
    }
}

/// `deserialize_with` for a required duration.
pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor)
}

/// `deserialize_with` for an optional duration (use with `#[serde(default)]`).
pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    d.deserialize_any(DurationVisitor).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humantime_and_decimals() {
        assert_eq!(parse("3h30m").unwrap(), Duration::from_secs(12_600));
        assert_eq!(parse("1.2s").unwrap(), Duration::from_millis(1200));
        assert_eq!(parse("0.5h").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse("400ms").unwrap(), Duration::from_millis(400));
        assert!(parse("soon").unwrap_err().contains("`soon`"));
        assert!(parse("1.5 fortnights").is_err());
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
    }
}
