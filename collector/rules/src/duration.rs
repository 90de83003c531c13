//! Prometheus durations (`model.Duration`): `1y2w3d4h5m6s7ms`, units in decreasing order.

use std::time::Duration;

const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3600 * 1000),
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
];

/// Parses a Prometheus duration string such as `5m` or `1h30m`; `0` is allowed.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration string".into());
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total: u64 = 0;
    let mut last_unit = usize::MAX;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(format!("not a valid duration string: {s:?}"));
        }
        let n: u64 = s[start..i].parse().map_err(|_| format!("not a valid duration string: {s:?}"))?;
        let ustart = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[ustart..i];
        let Some(idx) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(format!("not a valid duration string: {s:?}"));
        };
        if last_unit != usize::MAX && idx <= last_unit {
            return Err(format!("not a valid duration string: {s:?}"));
        }
        last_unit = idx;
        total = n
            .checked_mul(UNITS[idx].1)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration out of range: {s:?}"))?;
    }
    Ok(Duration::from_millis(total))
}

/// Formats a duration as Prometheus does (`1h30m`, `0s`).
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in UNITS {
        if ms >= size {
            out.push_str(&(ms / size).to_string());
            out.push_str(unit);
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
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
