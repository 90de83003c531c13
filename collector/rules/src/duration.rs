//! Prometheus durations (`model.Duration`): `1y2w3d4h5m6s7ms`, units in decreasing order.

pub use agent_core::duration::{format_duration, parse_duration};

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn parses_and_formats_round_trip() {
        for (s, ms) in [("5m", 300_000), ("1h30m", 5_400_000), ("0", 0), ("1d", 86_400_000), ("1s500ms", 1500)] {
            assert_eq!(parse_duration(s).unwrap().as_millis() as u64, ms, "{s}");
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_secs(7 * 86400)), "1w");
    }

    #[test]
    fn rejects_bad_units_and_order() {
        for s in ["", "5", "5x", "1m1h", "m", "1.5m", "-1m"] {
            assert!(parse_duration(s).is_err(), "{s}");
        }
    }
}
