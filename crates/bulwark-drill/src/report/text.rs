//! Number and text formatting shared by the table, the Markdown and the
//! chart, so a figure reads the same everywhere.

use std::time::Duration;

/// A latency or reaction time, with as much precision as is meaningful
/// at its size: `840 ms`, `3.42 s`, `47.1 s`, `2m 05s`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if d.is_zero() {
        "0 s".to_string()
    } else if ms < 1000.0 {
        format!("{} ms", ms.round() as u64)
    } else if ms < 10_000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms < 60_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        let s = d.as_secs_f64().round() as u64;
        if s.is_multiple_of(60) && s < 3600 {
            format!("{}m", s / 60)
        } else if s < 3600 {
            format!("{}m {:02}s", s / 60, s % 60)
        } else {
            format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
        }
    }
}

/// Scenario time, rounded to the second: `6m`, `1h30m`, `0s`.
pub fn scenario(d: Duration) -> String {
    bulwark::config::duration::format(Duration::from_secs(d.as_secs_f64().round() as u64))
}

/// A fraction as a percentage with two decimals, never rounded up to
/// 100 % or down to 0 % when it is not exactly that: "99.999 % became
/// 100.00 %" would hide the one failure the reader is looking for.
pub fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    let shown = format!("{p:.2}");
    if shown == "100.00" && fraction < 1.0 {
        "99.99 %".to_string()
    } else if shown == "0.00" && fraction > 0.0 {
        "0.01 %".to_string()
    } else {
        format!("{shown} %")
    }
}

/// `1,200`: counts are read at a glance.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A count with its share of a total: `12 (2.0 %)`.
pub fn count_share(n: u64, of: u64) -> String {
    if of == 0 {
        thousands(n)
    } else {
        format!("{} ({:.1} %)", thousands(n), n as f64 * 100.0 / of as f64)
    }
}

/// Sequence numbers for an error message: the first few, then how many.
pub fn list(values: &[u64]) -> String {
    const SHOWN: usize = 10;
    let head: Vec<String> = values.iter().take(SHOWN).map(u64::to_string).collect();
    if values.len() > SHOWN {
        format!("{}, ... ({} in all)", head.join(", "), values.len())
    } else {
        head.join(", ")
    }
}

/// Text inside a Markdown table cell: a pipe would end the cell and a
/// newline the row.
pub fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(duration(Duration::from_millis(840)), "840 ms");
        assert_eq!(duration(Duration::from_millis(3420)), "3.42 s");
        assert_eq!(duration(Duration::from_millis(47_130)), "47.1 s");
        assert_eq!(duration(Duration::from_secs(125)), "2m 05s");
        assert_eq!(duration(Duration::from_secs(60)), "1m");
        assert_eq!(scenario(Duration::from_secs(5400)), "1h30m");
        assert_eq!(scenario(Duration::from_secs(360)), "6m");
        assert_eq!(scenario(Duration::from_millis(200)), "0s");
        assert_eq!(scenario(Duration::from_secs(90)), "1m30s");
        assert_eq!(percent(0.99999), "99.99 %");
        assert_eq!(percent(1.0), "100.00 %");
        assert_eq!(percent(0.413), "41.30 %");
        assert_eq!(thousands(1_200), "1,200");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
