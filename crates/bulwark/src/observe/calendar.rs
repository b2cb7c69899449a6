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

/// The inverse of [`civil_from_days`]: days since 1970-01-01 of a date
/// (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
