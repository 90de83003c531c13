//! Arbitrary bytes into both exposition parsers; whatever parses must survive
//! encode → parse unchanged (NaN compared bitwise).
#![no_main]

use agent_core::encode::{Format, encode};
use agent_core::model::MetricFamily;
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

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    for format in [Format::Text, Format::OpenMetrics] {
        if let Ok(fams) = parse(data, format, &limits) {
            let mut out = Vec::new();
            encode(&mut out, &fams, format);
            match parse(&out, format, &limits) {
                Ok(again) => assert_same(&fams, &again, &out),
                Err(e) => panic!("re-parse of encoded output failed: {e}\n{}", String::from_utf8_lossy(&out)),
            }
        }
    }
});
