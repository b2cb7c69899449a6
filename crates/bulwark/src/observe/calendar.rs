//! UTC days without a date crate: the store rolls uptime up per day and
//! the status page labels its bars with dates.

use super::UnixMs;

pub const DAY_MS: i64 = 86_400_000;

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's
/// `civil_from_days`, valid over the whole proleptic Gregorian calendar.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Midnight UTC starting the day holding `at`.
pub fn day_start(at: UnixMs) -> UnixMs {
    at.div_euclid(DAY_MS) * DAY_MS
}

/// `YYYY-MM-DD` of the UTC day holding `at`.
pub fn utc_date(at: UnixMs) -> String {
    let (year, month, day) = civil_from_days(at.div_euclid(DAY_MS));
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400_000), "2000-02-29");
        assert_eq!(utc_date(-1), "1969-12-31");
        assert_eq!(day_start(86_400_000 + 5), 86_400_000);
    }
}
