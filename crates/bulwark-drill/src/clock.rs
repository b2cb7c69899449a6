//! Scenario time against wall time. A drill replays hours of incident in
//! minutes; every conversion goes through these two functions so that the
//! timeline, the simulators and the report agree on what "90 minutes in"
//! means.

use std::time::Duration;

/// A time-compression factor: scenario seconds per wall second. Always
/// finite and positive.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Speed(f64);

/// A speed that would stop time or run it backwards.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("speed must be a number above 0, got {0}")]
pub struct InvalidSpeed(pub f64);

impl Speed {
    /// Real time.
    pub const REAL_TIME: Speed = Speed(1.0);

    pub fn new(factor: f64) -> Result<Self, InvalidSpeed> {
        if factor.is_finite() && factor > 0.0 {
            Ok(Speed(factor))
        } else {
            Err(InvalidSpeed(factor))
        }
    }

    pub fn factor(self) -> f64 {
        self.0
    }
}

impl Default for Speed {
    fn default() -> Self {
        Speed::REAL_TIME
    }
}

/// How long `scenario` takes on the wall clock at `speed`.
pub fn scenario_to_wall(scenario: Duration, speed: Speed) -> Duration {
    scenario.div_f64(speed.0)
}

/// How much scenario time `wall` covers at `speed`.
pub fn wall_to_scenario(wall: Duration, speed: Speed) -> Duration {
    wall.mul_f64(speed.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_trip() {
        let Ok(speed) = Speed::new(60.0) else {
            panic!("60 is a valid speed")
        };
        let hour = Duration::from_secs(3600);
        assert_eq!(scenario_to_wall(hour, speed), Duration::from_secs(60));
        assert_eq!(wall_to_scenario(Duration::from_secs(60), speed), hour);
        assert_eq!(
            scenario_to_wall(Duration::from_secs(47), speed).as_millis(),
            783
        );
        assert!(Speed::new(0.0).is_err());
        assert!(Speed::new(f64::NAN).is_err());
        assert!(Speed::new(-2.0).is_err());
    }
}
