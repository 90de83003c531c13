//! Arbitrary bytes into both exposition parsers. Whatever parses must survive
//! encode → parse unchanged (NaN compared bitwise), and OpenMetrics input must also survive
//! the trip through the text format, minus what text cannot carry.
#![no_main]

use agent_core::encode::{Format, encode};
use agent_core::model::{MetricFamily, MetricType, Suffix};
use agent_core::parse::{Limits, parse};
use libfuzzer_sys::fuzz_target;

fn assert_same(a: &[MetricFamily], b: &[MetricFamily], encoded: &[u8]) {
    let ok = a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.name == y.name
                && x.help == y.help
                && x.kind == y.kind
                && x.unit == y.unit
                && x.samples.len() == y.samples.len()
                && x.samples.iter().zip(&y.samples).all(|(s, t)| s.same_as(t))
        });
    assert!(ok, "round trip changed the families:\n{a:?}\n{b:?}\nencoded:\n{}", String::from_utf8_lossy(encoded));
}

/// What the text format keeps of OpenMetrics families.
fn as_text(fams: &[MetricFamily]) -> Vec<MetricFamily> {
    let mut out = fams.to_vec();
    for f in &mut out {
        f.kind = match f.kind {
            MetricType::Info | MetricType::StateSet => MetricType::Gauge,
            MetricType::GaugeHistogram => MetricType::Histogram,
            k => k,
        };
        f.unit.clear();
        f.help = f.help.trim_start_matches([' ', '\t']).to_owned();
        f.samples.retain(|s| s.suffix != Suffix::Created);
        for s in &mut f.samples {
            s.suffix = match s.suffix {
                Suffix::GSum => Suffix::Sum,
                Suffix::GCount => Suffix::Count,
                other => other,
            };
        }
    }
    out
}

fn round_trip(fams: &[MetricFamily], format: Format, limits: &Limits) -> (Vec<MetricFamily>, Vec<u8>) {
    let mut out = Vec::new();
    encode(&mut out, fams, format);
    match parse(&out, format, limits) {
        Ok(again) => (again, out),
        Err(e) => panic!("re-parse of encoded {format:?} failed: {e}\n{}", String::from_utf8_lossy(&out)),
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(fams) = parse(data, Format::Text, &limits) {
        let (again, out) = round_trip(&fams, Format::Text, &limits);
        assert_same(&fams, &again, &out);
    }
    if let Ok(fams) = parse(data, Format::OpenMetrics, &limits) {
        let (again, out) = round_trip(&fams, Format::OpenMetrics, &limits);
        assert_same(&fams, &again, &out);
        let (as_txt, out) = round_trip(&fams, Format::Text, &limits);
        assert_same(&as_text(&fams), &as_txt, &out);
    }
});
