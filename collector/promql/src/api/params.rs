//! Request parameters as Prometheus's API parses them: times, durations, range checks.

use super::ErrorType;

/// Largest number of points a range query may return per series.
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// Parses a time parameter: Unix seconds (float) or RFC 3339; milliseconds since the epoch.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(t) = s.parse::<f64>()
        && t.is_finite()
    {
        let secs = t.trunc();
        let frac = ((t - secs) * 1000.0).round();
        return Ok(secs as i64 * 1000 + frac as i64);
    }
    parse_rfc3339(s).ok_or_else(|| format!("cannot parse {s:?} to a valid timestamp"))
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2006-01-02T15:04:05.999999999Z07:00`
#[allow(clippy::many_single_char_names)]
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes().all(|c| c.is_ascii_digit()).then(|| t.parse().ok())?
    };
    let (y, mo, d, h, mi, sec) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let st = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == st {
            return None;
        }
        let frac = &s[st..i];
        let padded: String = frac.chars().chain(std::iter::repeat('0')).take(3).collect();
        ms = padded.parse().ok()?;
    }
    let offset_min = match s.get(i..)? {
        "Z" | "z" => 0,
        tz if tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-')) && tz.as_bytes()[3] == b':' => {
            let oh: i64 = tz[1..3].parse().ok()?;
            let om: i64 = tz[4..6].parse().ok()?;
            let v = oh * 60 + om;
            if tz.starts_with('-') { -v } else { v }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60) * 1000) + ms)
}

/// Parses a duration parameter (`step`, `timeout`): float seconds or a Prometheus duration; ms.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if let Ok(d) = s.parse::<f64>() {
        let ms = d * 1000.0;
        if !ms.is_finite() || ms.abs() > 9.2e15 {
            return Err(format!("cannot parse {s:?} to a valid duration. It overflows int64"));
        }
        return Ok(ms.round() as i64);
    }
    parse_prom_duration(s).ok_or_else(|| format!("cannot parse {s:?} to a valid duration"))
}

fn parse_prom_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let b = s.as_bytes();
    let (mut i, mut total) = (0, 0i64);
    if b.is_empty() {
        return None;
    }
    while i < b.len() {
        let st = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let n: i64 = s.get(st..i)?.parse().ok()?;
        let us = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let mult = match &s[us..i] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(mult)?)?;
    }
    Some(total)
}

/// Checks `query_range`'s `start`/`end`/`step` as Prometheus does; the error is `bad_data`.
pub fn check_range(start: i64, end: i64, step: i64) -> Result<(), (ErrorType, String)> {
    if end < start {
        return Err((
            ErrorType::BadData,
            "invalid parameter \"end\": end timestamp must not be before start time".into(),
        ));
    }
    if step <= 0 {
        return Err((
            ErrorType::BadData,
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer"
                .into(),
        ));
    }
    if (end - start) / step > MAX_POINTS_PER_SERIES {
        return Err((
            ErrorType::BadData,
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_unix_seconds_or_rfc3339() {
        assert_eq!(parse_time("1435781451.781"), Ok(1_435_781_451_781));
        assert_eq!(parse_time("2015-07-01T20:10:51.781Z"), Ok(1_435_781_451_781));
        assert_eq!(parse_time("2015-07-01T22:10:51+02:00"), Ok(1_435_781_451_000));
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_time("yesterday").unwrap_err(), "cannot parse \"yesterday\" to a valid timestamp");
    }

    #[test]
    fn durations_parse_as_seconds_or_prometheus_units() {
        assert_eq!(parse_duration("15"), Ok(15_000));
        assert_eq!(parse_duration("0.5"), Ok(500));
        assert_eq!(parse_duration("1m30s"), Ok(90_000));
        assert!(parse_duration("abc").is_err());
    }

    #[test]
    fn range_checks_use_prometheus_texts() {
        assert!(check_range(0, 100, 1).is_ok());
        assert!(check_range(10, 0, 1).unwrap_err().1.contains("end timestamp must not be before start time"));
        assert!(check_range(0, 10, 0).unwrap_err().1.contains("zero or negative query resolution"));
        assert!(check_range(0, 11_001, 1).unwrap_err().1.starts_with("exceeded maximum resolution of 11,000 points"));
    }
}
