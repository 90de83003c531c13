//! Exposition encoder: Prometheus text format 0.0.4 and OpenMetrics 1.0.0.
//!
//! Output matches client_golang byte for byte: Go's shortest `%g` float formatting, the same
//! escaping, and (after [`crate::model::normalize`]) the same order. The encoder writes into
//! one caller-owned `Vec<u8>` and allocates nothing per sample.

use std::io::Write as _;

use crate::model::{MetricFamily, MetricType, Sample, Suffix};

/// Which exposition format to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`.
    Text,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` header value for this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Text => "text/plain; version=0.0.4; charset=utf-8; escaping=underscores",
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores",
        }
    }

    /// Negotiates the format from an `Accept` header as client_golang's `expfmt.Negotiate`
    /// does: OpenMetrics only when explicitly accepted (any version 1.0.0 or unset), text
    /// otherwise. Protobuf is not offered, so a protobuf-first client gets text.
    pub fn negotiate(accept: Option<&str>) -> Self {
        let Some(accept) = accept else { return Self::Text };
        // client_golang picks the first acceptable entry in header order (no q-value sorting).
        for part in accept.split(',') {
            let mut params = part.split(';').map(str::trim);
            let media = params.next().unwrap_or("").to_ascii_lowercase();
            let mut version = None;
            for p in params {
                if let Some((k, v)) = p.split_once('=')
                    && k.trim().eq_ignore_ascii_case("version")
                {
                    version = Some(v.trim().trim_matches('"').to_owned());
                }
            }
            match media.as_str() {
                "application/openmetrics-text" => {
                    if matches!(version.as_deref(), None | Some("1.0.0" | "0.0.1")) {
                        return Self::OpenMetrics;
                    }
                }
                "text/plain" => {
                    if matches!(version.as_deref(), None | Some("0.0.4")) {
                        return Self::Text;
                    }
                }
                _ => {}
            }
        }
        Self::Text
    }
}

/// Appends `families` in `format` to `out`. Families are written in the given order.
pub fn encode(out: &mut Vec<u8>, families: &[MetricFamily], format: Format) {
    for fam in families {
        match format {
            Format::Text => encode_text_family(out, fam),
            Format::OpenMetrics => encode_om_family(out, fam),
        }
    }
    if format == Format::OpenMetrics {
        out.extend_from_slice(b"# EOF\n");
    }
}

fn encode_text_family(out: &mut Vec<u8>, fam: &MetricFamily) {
    if !fam.help.is_empty() {
        out.extend_from_slice(b"# HELP ");
        out.extend_from_slice(fam.name.as_bytes());
        out.push(b' ');
        escape_into(out, &fam.help, false);
        out.push(b'\n');
    }
    out.extend_from_slice(b"# TYPE ");
    out.extend_from_slice(fam.name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(fam.kind.text_name().as_bytes());
    out.push(b'\n');
    for s in &fam.samples {
        if s.suffix == Suffix::Created {
            continue; // text 0.0.4 has no creation timestamps
        }
        out.extend_from_slice(fam.name.as_bytes());
        let suffix = match (fam.kind, s.suffix) {
            (MetricType::Info, Suffix::Info) | (_, Suffix::Total) => "",
            // Text 0.0.4 has no gauge histograms: they are histograms with `_sum`/`_count`.
            (_, Suffix::GSum) => "_sum",
            (_, Suffix::GCount) => "_count",
            (_, suf) => suf.as_str(),
        };
        out.extend_from_slice(suffix.as_bytes());
        write_labels(out, s, None);
        out.push(b' ');
        write_float_text(out, s.value);
        if let Some(ts) = s.timestamp_ms {
            out.push(b' ');
            write_int(out, ts);
        }
        out.push(b'\n');
    }
}

fn encode_om_family(out: &mut Vec<u8>, fam: &MetricFamily) {
    let meta_name = om_family_name(fam);
    // client_golang's order: HELP, TYPE, UNIT.
    if !fam.help.is_empty() {
        out.extend_from_slice(b"# HELP ");
        out.extend_from_slice(meta_name.as_bytes());
        out.push(b' ');
        escape_into(out, &fam.help, true);
        out.push(b'\n');
    }
    out.extend_from_slice(b"# TYPE ");
    out.extend_from_slice(meta_name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(fam.kind.openmetrics_name().as_bytes());
    out.push(b'\n');
    if !fam.unit.is_empty() {
        out.extend_from_slice(b"# UNIT ");
        out.extend_from_slice(meta_name.as_bytes());
        out.push(b' ');
        out.extend_from_slice(fam.unit.as_bytes());
        out.push(b'\n');
    }
    for s in &fam.samples {
        out.extend_from_slice(meta_name.as_bytes());
        let suffix = match (fam.kind, s.suffix) {
            (MetricType::Counter, Suffix::None | Suffix::Total) => "_total",
            (MetricType::Info, Suffix::None | Suffix::Info) => "_info",
            (_, suf) => suf.as_str(),
        };
        out.extend_from_slice(suffix.as_bytes());
        // OpenMetrics wants canonical floats ("1.0", "+Inf") for bucket bounds and quantiles.
        let bound = match (fam.kind, s.suffix) {
            (MetricType::Histogram | MetricType::GaugeHistogram, Suffix::Bucket) => Some("le"),
            (MetricType::Summary, Suffix::None) => Some("quantile"),
            _ => None,
        };
        write_labels(out, s, bound);
        out.push(b' ');
        write_float_om(out, s.value);
        if let Some(ts) = s.timestamp_ms {
            out.push(b' ');
            write_om_timestamp(out, ts);
        }
        out.push(b'\n');
    }
}

/// The OpenMetrics family name: counters drop `_total`, info families drop `_info`.
pub fn om_family_name(fam: &MetricFamily) -> &str {
    match fam.kind {
        MetricType::Counter => fam.name.strip_suffix("_total").unwrap_or(&fam.name),
        MetricType::Info => fam.name.strip_suffix("_info").unwrap_or(&fam.name),
        _ => &fam.name,
    }
}

/// Writes `{name="value",...}`; the value of label `bound` is rewritten as a canonical
/// OpenMetrics float when it parses as one.
fn write_labels(out: &mut Vec<u8>, s: &Sample, bound: Option<&str>) {
    if s.labels.is_empty() {
        return;
    }
    out.push(b'{');
    for (i, (n, v)) in s.labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b"=\"");
        if bound == Some(n.as_str()) {
            match v.parse::<f64>() {
                Ok(f) => write_float_om(out, f),
                Err(_) => escape_into(out, v, true),
            }
        } else {
            escape_into(out, v, true);
        }
        out.push(b'"');
    }
    out.push(b'}');
}

/// Escapes `\`, newline and (for label values and OpenMetrics HELP) `"`.
fn escape_into(out: &mut Vec<u8>, s: &str, quote: bool) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let rep: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'"' if quote => b"\\\"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(rep);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

fn write_int(out: &mut Vec<u8>, v: i64) {
    let _ = write!(out, "{v}");
}

fn write_om_timestamp(out: &mut Vec<u8>, ms: i64) {
    // OpenMetrics timestamps are seconds; client_golang prints them with %g-style floats.
    // Sign and magnitude separately: -1 ms is "-0.001" (not "-1.999", which div_euclid gives).
    if ms < 0 {
        out.push(b'-');
    }
    let abs = ms.unsigned_abs();
    let (secs, frac) = (abs / 1000, abs % 1000);
    let _ = write!(out, "{secs}");
    if frac != 0 {
        let _ = write!(out, ".{frac:03}");
        while out.last() == Some(&b'0') {
            out.pop();
        }
    }
}

/// Writes a value as client_golang's text format does (`1`, `0`, `NaN`, `+Inf`, Go `%g`).
pub fn write_float_text(out: &mut Vec<u8>, v: f64) {
    if v == 1.0 {
        out.push(b'1');
    } else if v == 0.0 && v.is_sign_positive() {
        // Only +0.0: client_golang writes -0.0 as "0" too, but keeping the sign ("-0") makes
        // encode → parse exact.
        out.push(b'0');
    } else if v == -1.0 {
        out.extend_from_slice(b"-1");
    } else {
        write_go_float(out, v);
    }
}

/// Writes a value as client_golang's OpenMetrics encoder does (`1.0`, `0.0`, always a dot
/// or exponent).
pub fn write_float_om(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() || v.is_infinite() {
        write_go_float(out, v);
        return;
    }
    let start = out.len();
    write_go_float(out, v);
    if !out[start..].iter().any(|&b| matches!(b, b'.' | b'e')) {
        out.extend_from_slice(b".0");
    }
}

/// Formats `v` exactly like Go's `strconv.FormatFloat(v, 'g', -1, 64)`, plus `+Inf`/`-Inf`
/// and `NaN` as Prometheus writes them.
pub fn write_go_float(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
        return;
    }
    if v == 0.0 {
        out.extend_from_slice(if v.is_sign_negative() { b"-0" } else { b"0" });
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "-1.2345e-7".
    let mut buf = StackBuf::new();
    let _ = write!(buf, "{v:e}");
    let s = buf.as_bytes();
    let (neg, s) = if s[0] == b'-' { (true, &s[1..]) } else { (false, s) };
    let epos = s.iter().position(|&b| b == b'e').unwrap_or(s.len());
    let (mant, exp_part) = s.split_at(epos);
    let exp: i32 = std::str::from_utf8(&exp_part[1..]).ok().and_then(|e| e.parse().ok()).unwrap_or(0);
    // Digits without the dot.
    let mut digits = [0u8; 32];
    let mut nd = 0;
    for &b in mant {
        if b != b'.' {
            digits[nd] = b;
            nd += 1;
        }
    }
    let digits = &digits[..nd];
    if neg {
        out.push(b'-');
    }
    // Go's shortest %g switches to exponent form below 1e-4 and from 1e6 (eprec = 6).
    if !(-4..6).contains(&exp) {
        write_exp(out, digits, exp);
        return;
    }
    // %f form.
    if exp < 0 {
        out.extend_from_slice(b"0.");
        for _ in 0..(-exp - 1) {
            out.push(b'0');
        }
        out.extend_from_slice(digits);
    } else {
        let int_len = (exp + 1) as usize;
        if nd <= int_len {
            out.extend_from_slice(digits);
            for _ in nd..int_len {
                out.push(b'0');
            }
        } else {
            out.extend_from_slice(&digits[..int_len]);
            out.push(b'.');
            out.extend_from_slice(&digits[int_len..]);
        }
    }
}

fn write_exp(out: &mut Vec<u8>, digits: &[u8], exp: i32) {
    out.push(digits[0]);
    if digits.len() > 1 {
        out.push(b'.');
        out.extend_from_slice(&digits[1..]);
    }
    out.push(b'e');
    out.push(if exp < 0 { b'-' } else { b'+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        out.push(b'0');
    }
    let _ = write!(out, "{a}");
}

/// A fixed stack buffer for float formatting (no heap allocation).
struct StackBuf {
    buf: [u8; 64],
    len: usize,
}

impl StackBuf {
    fn new() -> Self {
        Self { buf: [0; 64], len: 0 }
    }
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::io::Write for StackBuf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&data[..n]);
        self.len += n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MetricFamily;

    fn g(v: f64) -> String {
        let mut o = Vec::new();
        write_go_float(&mut o, v);
        String::from_utf8(o).unwrap()
    }

    #[test]
    fn floats_match_go_strconv_g() {
        assert_eq!(g(1.604_217_241_6e10), "1.6042172416e+10");
        assert_eq!(g(123_456.0), "123456");
        assert_eq!(g(1_000_000.0), "1e+06");
        assert_eq!(g(1_234_567.0), "1.234567e+06");
        assert_eq!(g(0.0001), "0.0001");
        assert_eq!(g(0.00001), "1e-05");
        assert_eq!(g(12.376), "12.376");
        assert_eq!(g(-3.5), "-3.5");
        assert_eq!(g(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(g(1e21), "1e+21");
        assert_eq!(g(5e-324), "5e-324");
        assert_eq!(g(f64::MAX), "1.7976931348623157e+308");
        assert_eq!(g(f64::NAN), "NaN");
        assert_eq!(g(f64::NEG_INFINITY), "-Inf");
        assert_eq!(g(100.0), "100");
        assert_eq!(g(999_999.0), "999999");
    }

    #[test]
    fn text_format_escapes_and_orders() {
        let mut f = MetricFamily::new("node_x", "a \\ b\nc \"q\"", MetricType::Gauge);
        f.push(&[("l", "v\"\\\n")], 1.0);
        let mut out = Vec::new();
        encode(&mut out, &[f], Format::Text);
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s, "# HELP node_x a \\\\ b\\nc \"q\"\n# TYPE node_x gauge\nnode_x{l=\"v\\\"\\\\\\n\"} 1\n");
    }

    #[test]
    fn openmetrics_counter_drops_total_in_metadata() {
        let mut f = MetricFamily::new("x_seconds_total", "h", MetricType::Counter);
        f.unit = "seconds".into();
        f.push(&[], 2.0);
        let mut out = Vec::new();
        encode(&mut out, &[f], Format::OpenMetrics);
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "# HELP x_seconds h\n# TYPE x_seconds counter\n# UNIT x_seconds seconds\nx_seconds_total 2.0\n# EOF\n"
        );
    }

    fn om(f: MetricFamily) -> String {
        let mut out = Vec::new();
        encode(&mut out, &[f], Format::OpenMetrics);
        String::from_utf8(out).unwrap()
    }

    fn text(f: MetricFamily) -> String {
        let mut out = Vec::new();
        encode(&mut out, &[f], Format::Text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn negative_om_timestamp_keeps_its_magnitude() {
        let mut f = MetricFamily::new("x", "", MetricType::Gauge);
        for ms in [-1, -1500, -2000, i64::MIN] {
            f.push(&[], 1.0);
            f.samples.last_mut().unwrap().timestamp_ms = Some(ms);
        }
        assert_eq!(om(f), "# TYPE x gauge\nx 1.0 -0.001\nx 1.0 -1.5\nx 1.0 -2\nx 1.0 -9223372036854775.808\n# EOF\n");
    }

    #[test]
    fn negative_zero_keeps_its_sign_in_text() {
        let mut f = MetricFamily::new("x", "", MetricType::Gauge);
        f.push(&[], -0.0).push(&[], 0.0);
        assert_eq!(text(f.clone()), "# TYPE x gauge\nx -0\nx 0\n");
        assert_eq!(om(f), "# TYPE x gauge\nx -0.0\nx 0.0\n# EOF\n");
    }

    #[test]
    fn om_canonicalizes_only_bucket_and_quantile_bounds() {
        let mut g = MetricFamily::new("g", "", MetricType::Gauge);
        g.push(&[("le", "1"), ("quantile", "2")], 1.0);
        assert_eq!(om(g), "# TYPE g gauge\ng{le=\"1\",quantile=\"2\"} 1.0\n# EOF\n");
        let mut h = MetricFamily::new("h", "", MetricType::Histogram);
        h.push(&[("le", "1")], 1.0);
        h.samples[0].suffix = Suffix::Bucket;
        h.push(&[("le", "1")], 1.0);
        h.samples[1].suffix = Suffix::Sum;
        assert_eq!(om(h), "# TYPE h histogram\nh_bucket{le=\"1.0\"} 1.0\nh_sum{le=\"1\"} 1.0\n# EOF\n");
    }

    #[test]
    fn text_gauge_histogram_is_a_histogram_with_sum_and_count() {
        let mut f = MetricFamily::new("gh", "", MetricType::GaugeHistogram);
        f.push(&[], 2.0).push(&[], 3.0);
        f.samples[0].suffix = Suffix::GSum;
        f.samples[1].suffix = Suffix::GCount;
        assert_eq!(text(f), "# TYPE gh histogram\ngh_sum 2\ngh_count 3\n");
    }

    #[test]
    fn negotiate_like_client_golang() {
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(Format::negotiate(Some("text/plain;version=0.0.4;q=0.5,*/*;q=0.1")), Format::Text);
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            )),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::negotiate(Some(
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
            )),
            Format::Text
        );
    }
}
