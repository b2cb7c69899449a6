//! Formatting shared by every rendering: times, percentages, durations,
//! stable ids and escaping for the non-HTML outputs.
//!
//! Times are computed by hand (civil-from-days) rather than through a date
//! crate because everything here is UTC and the arithmetic is a dozen lines;
//! a time-zone database would add weight for nothing.

use bulwark::observe::UnixMs;
use bulwark::observe::component::ComponentKind;

/// Calendar date and time of day, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
}

use bulwark::observe::calendar::{DAY_MS, civil_from_days, days_from_civil, utc_date};

pub(crate) fn civil(at: UnixMs) -> Civil {
    let days = at.div_euclid(DAY_MS);
    let in_day = at.rem_euclid(DAY_MS);
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month,
        day,
        hour: (in_day / 3_600_000) as u32,
        minute: (in_day / 60_000 % 60) as u32,
        second: (in_day / 1000 % 60) as u32,
        millis: (in_day % 1000) as u32,
    }
}

/// For people: `2026-11-29 09:45 UTC`. Minutes are enough on a status page
/// and keep timeline rows short on a phone.
pub fn human_time(at: UnixMs) -> String {
    let c = civil(at);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        c.year, c.month, c.day, c.hour, c.minute
    )
}

/// For machines, the way Statuspage writes it: `2026-11-29T09:45:01.000Z`.
pub fn iso_ms(at: UnixMs) -> String {
    let c = civil(at);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.millis
    )
}

/// RFC 3339 without fractions, which every Atom reader accepts.
pub fn rfc3339(at: UnixMs) -> String {
    let c = civil(at);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// Parses the `YYYY-MM-DD` of [`bulwark::observe::snapshot::DayUptime`]
/// into days since the epoch, so missing days before the first one can be
/// named on the chart.
pub fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

pub fn date_from_days(days: i64) -> String {
    utc_date(days.saturating_mul(DAY_MS))
}

/// A fraction 0..=1 as a percentage with enough digits to tell 99.9 % from
/// 99.99 % (the difference that matters for uptime), without noise for
/// low values.
pub fn percent(fraction: f64) -> String {
    if !fraction.is_finite() {
        return "–".to_string();
    }
    let p = fraction * 100.0;
    if (99.0..100.0).contains(&p) {
        // Never round 99.996 up to a misleading 100.00.
        let floored = (p * 100.0).floor() / 100.0;
        format!("{floored:.2} %")
    } else if p == 100.0 {
        "100 %".to_string()
    } else {
        format!("{p:.1} %")
    }
}

/// Objectives are exact numbers someone chose (99.9 %, 99.95 %), so they
/// are shown as written, without padding or flooring.
pub fn objective(fraction: f64) -> String {
    let text = format!("{:.4}", fraction * 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} %")
}

pub fn percent_opt(fraction: Option<f64>) -> String {
    fraction.map_or_else(|| "–".to_string(), percent)
}

/// Latencies as people read them: `420 ms`, `1.25 s`.
pub fn latency(ms: Option<f64>) -> String {
    match ms {
        Some(v) if v.is_finite() && v >= 1000.0 => format!("{:.2} s", v / 1000.0),
        Some(v) if v.is_finite() => format!("{v:.0} ms"),
        _ => "–".to_string(),
    }
}

/// `1 h 23 min`, `45 min`, `30 s`: a reader wants the order of magnitude.
pub fn duration(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 && h > 0 {
        format!("{d} d {h} h")
    } else if d > 0 {
        format!("{d} d")
    } else if h > 0 && m > 0 {
        format!("{h} h {m} min")
    } else if h > 0 {
        format!("{h} h")
    } else if m > 0 {
        format!("{m} min")
    } else {
        format!("{s} s")
    }
}

/// Group separators make request counts readable: `12 345`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(ch);
    }
    out
}

/// FNV-1a: tiny, and fixed forever, which is what an id needs (std's
/// hasher may change between Rust releases and would break pollers).
fn fnv1a(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// A 12-character lowercase id like Statuspage's, derived from a stable
/// key so a component keeps its id across restarts and config reloads
/// (pollers key their state on it).
pub fn stable_id(key: &str) -> String {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut value = fnv1a(key);
    let mut out = [b'0'; 12];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value % 36) as usize];
        value /= 36;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

/// The kind is part of the key because a route may be named like a target.
pub fn component_id(kind: ComponentKind, name: &str) -> String {
    stable_id(&format!("{}:{name}", kind.as_str()))
}

pub fn page_id(page_name: &str) -> String {
    stable_id(&format!("page:{page_name}"))
}

/// Escapes text for Markdown so that names and messages stay literal:
/// no accidental emphasis, links, table breaks or raw HTML (many renderers
/// pass HTML through, so `<` becomes an entity).
pub fn md_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' | '!' => {
                out.push('\\');
                out.push(ch);
            }
            '\n' | '\r' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-29T09:45:01.250Z
    const AT: UnixMs = 1_795_945_501_250;

    #[test]
    fn times_are_utc_iso() {
        assert_eq!(human_time(AT), "2026-11-29 09:45 UTC");
        assert_eq!(iso_ms(AT), "2026-11-29T09:45:01.250Z");
        assert_eq!(rfc3339(AT), "2026-11-29T09:45:01Z");
        assert_eq!(iso_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_ms(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn dates_round_trip() {
        for days in [-1, 0, 59, 60, 11_016, 20_421, 400_000] {
            assert_eq!(parse_date(&date_from_days(days)), Some(days));
        }
        assert_eq!(parse_date("2026-13-01"), None);
        assert_eq!(parse_date("yesterday"), None);
    }

    #[test]
    fn percentages_never_round_up_to_perfect() {
        assert_eq!(percent(0.99996), "99.99 %");
        assert_eq!(percent(1.0), "100 %");
        assert_eq!(percent(0.5), "50.0 %");
        assert_eq!(percent_opt(None), "–");
        assert_eq!(objective(0.999), "99.9 %");
        assert_eq!(objective(0.9995), "99.95 %");
        assert_eq!(objective(1.0), "100 %");
        assert_eq!(percent(f64::NAN), "–");
    }

    #[test]
    fn durations_and_latencies_read_well() {
        assert_eq!(duration(83 * 60_000), "1 h 23 min");
        assert_eq!(duration(45 * 60_000 + 10), "45 min");
        assert_eq!(duration(30_000), "30 s");
        assert_eq!(duration(30 * 86_400_000), "30 d");
        assert_eq!(duration(2 * 3_600_000), "2 h");
        assert_eq!(duration(-5), "0 s");
        assert_eq!(latency(Some(420.4)), "420 ms");
        assert_eq!(latency(Some(1250.0)), "1.25 s");
        assert_eq!(latency(None), "–");
        assert_eq!(count(1_234_567), "1\u{202f}234\u{202f}567");
        assert_eq!(count(12), "12");
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = component_id(ComponentKind::Target, "openai/gpt-4o");
        assert_eq!(a.len(), 12);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(a, component_id(ComponentKind::Target, "openai/gpt-4o"));
        assert_ne!(a, component_id(ComponentKind::Route, "openai/gpt-4o"));
        // Pinned: changing the algorithm would re-key every poller.
        assert_eq!(stable_id(""), stable_id(""));
        assert_eq!(stable_id("page:Bulwark"), "howz1hv0hkck");
    }

    #[test]
    fn md_escape_keeps_text_literal() {
        assert_eq!(
            md_escape("a|b *c* <script>\nd"),
            "a\\|b \\*c\\* &lt;script&gt; d"
        );
    }
}
