//! Prometheus durations (`1y2w3d4h5m6s7ms`, `0`): parsing and formatting are shared with the
//! rest of Osprey in [`agent_core::duration`]; this module adds the serde wrapper.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use agent_core::duration::{format_duration, parse_duration};

/// A duration read and written in Prometheus's notation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PromDuration(pub Duration);

impl PromDuration {
    /// From whole seconds.
    pub const fn from_secs(s: u64) -> Self {
        Self(Duration::from_secs(s))
    }
}

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl std::str::FromStr for PromDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_duration(s).map(Self)
    }
}

impl Serialize for PromDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_forms() {
        for (s, ms) in [
            ("0", 0),
            ("15s", 15_000),
            ("1m30s", 90_000),
            ("100ms", 100),
            ("1h", 3_600_000),
            ("2d", 172_800_000),
            ("1w", 604_800_000),
            ("1y", 31_536_000_000),
            ("1y2w3d4h5m6s7ms", 31_536_000_000 + 1_209_600_000 + 259_200_000 + 14_400_000 + 300_000 + 6000 + 7),
            ("0s", 0),
        ] {
            assert_eq!(parse_duration(s), Ok(Duration::from_millis(ms)), "{s}");
        }
    }

    #[test]
    fn rejects_what_prometheus_rejects() {
        for s in ["", "1", "s", "1.5s", "1s1m", "1m1m", "-1s", "1S", "1 s", "1sec", "99999999999999999999y"] {
            assert!(parse_duration(s).is_err(), "{s} accepted");
        }
    }

    proptest::proptest! {
        #[test]
        fn format_then_parse_is_identity(ms in 0u64..=(i64::MAX as u64 / 1_000_000)) {
            // Up to Go's largest time.Duration, the range Prometheus accepts.
            let d = Duration::from_millis(ms);
            proptest::prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }

        #[test]
        fn parse_never_panics(s in "[0-9a-z]{0,12}") {
            let _ = parse_duration(&s);
        }
    }

    #[test]
    fn formats_like_prometheus() {
        for (ms, s) in [
            (0, "0s"),
            (15_000, "15s"),
            (90_000, "1m30s"),
            (3_600_000, "1h"),
            (1500, "1s500ms"),
            (7_776_000_000, "90d"),
            (604_800_000, "1w"),
            (31_536_000_000, "1y"),
            (86_400_000 + 1000, "1d1s"),
        ] {
            assert_eq!(format_duration(Duration::from_millis(ms)), s);
        }
    }
}
