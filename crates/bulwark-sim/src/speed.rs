//! Time compression. A drill replays a four-hour incident in minutes, so at
//! `speed` 60 every duration the simulator waits *or advertises* is divided
//! by 60: latencies, hangs, stalls, the rate-limit window, and retry hints.
//!
//! Retry hints are compressed too (rather than left in real seconds) so that
//! a client honouring `retry-after` waits the same share of the scenario as
//! it would in the real incident. Whole-second hints are rounded *up* (a
//! positive hint never becomes 0, which clients read as "retry now"); so at
//! high speeds `retry-after: 1` is the floor and `retry-after-ms` carries
//! the precise value.

use std::time::Duration;

use crate::fault::{Fault, StatusFault};

/// The speed actually used: anything not finite and positive means 1.
pub(crate) fn effective(speed: f64) -> f64 {
    if speed.is_finite() && speed > 0.0 {
        speed
    } else {
        1.0
    }
}

/// A wait of `ms` scenario milliseconds, in wall time.
pub(crate) fn wait(ms: u64, speed: f64) -> Duration {
    let speed = effective(speed);
    if speed == 1.0 {
        return Duration::from_millis(ms);
    }
    Duration::from_secs_f64(ms as f64 / 1000.0 / speed)
}

/// A whole number of scenario units (seconds, milliseconds) in wall units,
/// rounded up.
fn hint(n: u64, speed: f64) -> u64 {
    (n as f64 / effective(speed)).ceil() as u64
}

/// A retry hint as the client should see it at this speed.
pub(crate) fn status_fault(mut f: StatusFault, speed: f64) -> StatusFault {
    if effective(speed) == 1.0 {
        return f;
    }
    f.retry_after = f.retry_after.map(|s| hint(s, speed));
    f.retry_after_ms = f.retry_after_ms.map(|ms| hint(ms, speed));
    f.retry_after_date = f.retry_after_date.map(|s| {
        let scaled = i64::try_from(hint(s.unsigned_abs(), speed)).unwrap_or(i64::MAX);
        if s < 0 { -scaled } else { scaled }
    });
    f
}

/// Only status faults carry advertised durations; waits are scaled where
/// they are slept, via [`wait`].
pub(crate) fn fault(f: Fault, speed: f64) -> Fault {
    match f {
        Fault::Status(s) => Fault::Status(status_fault(s, speed)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_and_hints_compress() {
        assert_eq!(wait(47_000, 60.0).as_millis(), 783);
        assert_eq!(wait(250, 1.0), Duration::from_millis(250));
        assert_eq!(wait(250, 0.0), Duration::from_millis(250));
        let f = status_fault(
            StatusFault {
                retry_after: Some(30),
                retry_after_ms: Some(1500),
                retry_after_date: Some(-90),
                ..StatusFault::new(429)
            },
            60.0,
        );
        assert_eq!(f.retry_after, Some(1));
        assert_eq!(f.retry_after_ms, Some(25));
        assert_eq!(f.retry_after_date, Some(-2));
        let zero = status_fault(
            StatusFault {
                retry_after: Some(0),
                ..StatusFault::new(429)
            },
            60.0,
        );
        assert_eq!(zero.retry_after, Some(0));
    }
}
