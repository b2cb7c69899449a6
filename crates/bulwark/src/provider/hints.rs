//! What a provider's headers say about when to try again: the wait hints
//! the official SDKs honour, and the rate-limit headers that say when an
//! exhausted limit resets.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

pub(super) fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// The server's wait hint, in the order the official SDKs read it:
/// `retry-after-ms`, then `retry-after` as seconds, then as an HTTP date.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| header_text(headers, name);
    // `try_from_secs_f64` refuses negative, infinite and absurd values.
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Duration::try_from_secs_f64(ms / 1000.0).ok();
    }
    let value = text("retry-after")?;
    if let Ok(seconds) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).ok();
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// When an exhausted rate limit resets, from the providers' own headers:
/// OpenAI's `x-ratelimit-remaining-*` with `x-ratelimit-reset-*` (Go-style
/// durations such as `6m0s`), Anthropic's `anthropic-ratelimit-*-remaining`
/// with `-reset` (RFC 3339 times). Only limits at zero count; the latest
/// reset among them is when a retry can succeed.
pub fn rate_limit_reset(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| header_text(headers, name);
    let exhausted = |name: &str| text(name).and_then(|v| v.parse::<f64>().ok()) == Some(0.0);
    let mut latest: Option<Duration> = None;
    for limit in ["requests", "tokens"] {
        if exhausted(&format!("x-ratelimit-remaining-{limit}"))
            && let Some(reset) = text(&format!("x-ratelimit-reset-{limit}"))
                .and_then(crate::timefmt::parse_go_duration)
        {
            latest = latest.max(Some(reset));
        }
    }
    for limit in ["requests", "tokens", "input-tokens", "output-tokens"] {
        if exhausted(&format!("anthropic-ratelimit-{limit}-remaining"))
            && let Some(at) = text(&format!("anthropic-ratelimit-{limit}-reset"))
                .and_then(crate::timefmt::parse_rfc3339)
        {
            latest = latest.max(Some(at.duration_since(now).unwrap_or(Duration::ZERO)));
        }
    }
    latest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            if let Ok(value) = value.parse() {
                map.insert(*name, value);
            }
        }
        map
    }

    #[test]
    fn retry_after_prefers_milliseconds_then_seconds_then_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(
            retry_after(
                &headers(&[("retry-after-ms", "250"), ("retry-after", "3")]),
                now
            ),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "3")]), now),
            Some(Duration::from_secs(3))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &date)]), now),
            Some(Duration::from_secs(7))
        );
        // A date in the past means "now", not a negative wait.
        let past = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &past)]), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
        // Absurd hints are ignored, never a panic.
        assert_eq!(retry_after(&headers(&[("retry-after", "1e30")]), now), None);
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "1e300")]), now),
            None
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "-5")]), now), None);
    }

    #[test]
    fn rate_limit_resets_count_only_exhausted_limits() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let openai = headers(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "1.5s"),
            ("x-ratelimit-remaining-tokens", "100"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ]);
        assert_eq!(
            rate_limit_reset(&openai, now),
            Some(Duration::from_millis(1500))
        );
        // 2023-11-14T22:13:20Z is the epoch second 1_700_000_000.
        let anthropic = headers(&[
            ("anthropic-ratelimit-tokens-remaining", "0"),
            ("anthropic-ratelimit-tokens-reset", "2023-11-14T22:13:32Z"),
        ]);
        assert_eq!(
            rate_limit_reset(&anthropic, now),
            Some(Duration::from_secs(12))
        );
        assert_eq!(
            rate_limit_reset(&headers(&[("x-ratelimit-reset-requests", "1s")]), now),
            None
        );
    }
}
