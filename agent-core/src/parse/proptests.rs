//! Property: the parser is the inverse of the encoder, `parse(encode(x)) == x`, for arbitrary
//! valid (normalized) families in both formats.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::{Format, Limits, parse};
use crate::encode::{encode, write_float_om};
use crate::model::{Label, MetricFamily, MetricType, Sample, Suffix, normalize};

const KINDS: [MetricType; 8] = [
    MetricType::Counter,
    MetricType::Gauge,
    MetricType::Untyped,
    MetricType::Summary,
    MetricType::Histogram,
    MetricType::Info,
    MetricType::StateSet,
    MetricType::GaugeHistogram,
];

/// Characters that stress escaping: backslash, quote, newline, blanks, non-ASCII, anything.
fn any_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range('a', 'z'),
        1 => Just('\\'),
        1 => Just('"'),
        1 => Just('\n'),
        1 => Just(' '),
        1 => Just('\t'),
        1 => Just('é'),
        1 => Just('😀'),
        1 => any::<char>(),
    ]
}

fn any_text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any_char(), 0..max).prop_map(|v| v.into_iter().collect())
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => any::<f64>().prop_map(|v| if v.is_nan() { f64::NAN } else { v }),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(-0.0),
        1 => Just(0.0),
        1 => Just(5e-324),
        1 => Just(-2.225_073_858_507_2e-308),
        2 => (0u32..1_000_000).prop_map(f64::from),
    ]
}

fn timestamp() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![
        2 => Just(None),
        1 => any::<i64>().prop_map(Some),
        2 => (-2_000_000_000_000i64..2_000_000_000_000).prop_map(Some),
    ]
}

/// An `le`/`quantile` value, spelled canonically (the parser normalizes bounds).
fn bound() -> impl Strategy<Value = String> {
    prop_oneof![value(), Just(f64::INFINITY)].prop_map(|v| {
        let mut out = Vec::new();
        write_float_om(&mut out, v);
        String::from_utf8(out).unwrap_or_default()
    })
}

fn labels() -> impl Strategy<Value = Vec<Label>> {
    let name =
        "[a-zA-Z_][a-zA-Z0-9_]{0,6}".prop_filter("reserved", |n| !matches!(n.as_str(), "le" | "quantile" | "__name__"));
    proptest::collection::vec((name, any_text(8)), 0..4)
        .prop_map(|v| v.into_iter().collect::<BTreeMap<_, _>>().into_iter().collect())
}

#[derive(Debug, Clone)]
struct Series {
    labels: Vec<Label>,
    values: Vec<(f64, Option<i64>)>,
    bounds: Vec<String>,
    created: bool,
}

fn series() -> impl Strategy<Value = Series> {
    (
        labels(),
        proptest::collection::vec((value(), timestamp()), 8),
        proptest::collection::vec(bound(), 0..3),
        any::<bool>(),
    )
        .prop_map(|(labels, values, bounds, created)| Series { labels, values, bounds, created })
}

type Spec = (usize, String, String, Option<String>, Vec<Series>);

fn spec() -> impl Strategy<Value = Spec> {
    let unit = "[a-z]{1,6}".prop_filter("suffix word", |u| {
        !matches!(u.as_str(), "total" | "created" | "sum" | "count" | "bucket" | "gsum" | "gcount" | "info")
    });
    (
        0..KINDS.len(),
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,8}",
        any_text(20),
        proptest::option::of(unit),
        proptest::collection::vec(series(), 0..3),
    )
}

/// Builds family `i`: names end in `_<i>` (plus unit and type suffix) so they never clash.
fn build(i: usize, (k, base, help, unit, series): Spec) -> MetricFamily {
    use MetricType as T;
    let kind = KINDS[k];
    let unit = unit.filter(|_| !matches!(kind, T::Info | T::StateSet)).unwrap_or_default();
    let mut name = format!("{base}_{i}");
    if !unit.is_empty() {
        name = format!("{name}_{unit}");
    }
    match kind {
        T::Counter => name.push_str("_total"),
        T::Info => name.push_str("_info"),
        _ => {}
    }
    let mut fam = MetricFamily::new(name, help, kind);
    fam.unit = unit;
    for s in series {
        let mut vals = s.values.into_iter();
        let mut push = |suffix: Suffix, extra: Option<(&str, &str)>| {
            let (value, timestamp_ms) = vals.next().unwrap_or((0.0, None));
            let mut labels = s.labels.clone();
            if let Some((n, v)) = extra {
                labels.push((n.to_owned(), v.to_owned()));
            }
            let mut sample = Sample::new(labels, value);
            sample.suffix = suffix;
            sample.timestamp_ms = timestamp_ms;
            fam.samples.push(sample);
        };
        match kind {
            T::Counter | T::Gauge | T::Untyped | T::StateSet | T::Info => push(Suffix::None, None),
            T::Summary => s.bounds.iter().for_each(|b| push(Suffix::None, Some(("quantile", b)))),
            T::Histogram | T::GaugeHistogram => s.bounds.iter().for_each(|b| push(Suffix::Bucket, Some(("le", b)))),
        }
        match kind {
            T::Summary | T::Histogram => {
                push(Suffix::Sum, None);
                push(Suffix::Count, None);
            }
            T::GaugeHistogram => {
                push(Suffix::GSum, None);
                push(Suffix::GCount, None);
            }
            _ => {}
        }
        if s.created && matches!(kind, T::Counter | T::Summary | T::Histogram) {
            push(Suffix::Created, None);
        }
    }
    fam
}

fn families() -> impl Strategy<Value = Vec<MetricFamily>> {
    proptest::collection::vec(spec(), 0..6).prop_map(|specs| {
        let mut fams: Vec<_> = specs.into_iter().enumerate().map(|(i, s)| build(i, s)).collect();
        normalize(&mut fams);
        fams
    })
}

/// What the text format can carry of `fams`: no units or creation samples, no OpenMetrics-only
/// types, help without leading blanks (the text format's separator swallows them).
fn as_text(fams: &[MetricFamily]) -> Vec<MetricFamily> {
    fams.iter()
        .map(|f| {
            let mut f = f.clone();
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
            f
        })
        .collect()
}

/// Equality with NaN compared bitwise.
pub(crate) fn same_families(a: &[MetricFamily], b: &[MetricFamily]) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("{} families vs {}", a.len(), b.len()));
    }
    for (x, y) in a.iter().zip(b) {
        let meta = |f: &MetricFamily| (f.name.clone(), f.help.clone(), f.kind, f.unit.clone(), f.samples.len());
        if meta(x) != meta(y) {
            return Err(format!("{:?} vs {:?}", meta(x), meta(y)));
        }
        if let Some((s, t)) = x.samples.iter().zip(&y.samples).find(|(s, t)| !s.same_as(t)) {
            return Err(format!("in {}: {s:?} vs {t:?}", x.name));
        }
    }
    Ok(())
}

fn round_trip(fams: &[MetricFamily], format: Format) -> Result<Vec<MetricFamily>, String> {
    let mut out = Vec::new();
    encode(&mut out, fams, format);
    parse(&out, format, &Limits::default()).map_err(|e| format!("{e}\n{}", String::from_utf8_lossy(&out)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn openmetrics_parse_inverts_encode(fams in families()) {
        let back = round_trip(&fams, Format::OpenMetrics).map_err(TestCaseError::fail)?;
        same_families(&back, &fams).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn text_parse_inverts_encode(fams in families()) {
        let back = round_trip(&fams, Format::Text).map_err(TestCaseError::fail)?;
        same_families(&back, &as_text(&fams)).map_err(TestCaseError::fail)?;
    }
}
