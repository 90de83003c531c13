//! The metric model shared by the encoder, the parser and every collector.
//!
//! The model follows client_golang's: a [`MetricFamily`] has a name, help, type and unit, and
//! holds flat [`Sample`]s. A counter's family name is the name its samples carry in the
//! Prometheus text format (usually ending in `_total`); summaries and histograms hold their
//! `_sum`, `_count`, `_bucket` and quantile samples, marked by a [`Suffix`].

use std::fmt;

/// The type of a metric family, as written on its `# TYPE` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricType {
    /// A monotonically increasing value.
    Counter,
    /// A value that can go up and down.
    Gauge,
    /// No type information (text format `untyped`, OpenMetrics `unknown`).
    Untyped,
    /// Quantiles plus `_sum` and `_count`.
    Summary,
    /// Cumulative `_bucket`s plus `_sum` and `_count`.
    Histogram,
    /// OpenMetrics `info`: a constant 1 with labels (text format: gauge).
    Info,
    /// OpenMetrics `stateset` (text format: gauge).
    StateSet,
    /// OpenMetrics `gaugehistogram` (text format: histogram).
    GaugeHistogram,
}

impl MetricType {
    /// The keyword on the `# TYPE` line of the Prometheus text format 0.0.4.
    pub fn text_name(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge | Self::Info | Self::StateSet => "gauge",
            Self::Untyped => "untyped",
            Self::Summary => "summary",
            Self::Histogram | Self::GaugeHistogram => "histogram",
        }
    }

    /// The keyword on the `# TYPE` line of OpenMetrics 1.0.
    pub fn openmetrics_name(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Untyped => "unknown",
            Self::Summary => "summary",
            Self::Histogram => "histogram",
            Self::Info => "info",
            Self::StateSet => "stateset",
            Self::GaugeHistogram => "gaugehistogram",
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text_name())
    }
}

/// Which part of a family a sample is: the sample name is the family name plus this suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Suffix {
    /// The plain family name (counters, gauges, untyped, summary quantiles).
    #[default]
    None,
    /// `_bucket` of a histogram.
    Bucket,
    /// `_sum` of a summary or histogram.
    Sum,
    /// `_count` of a summary or histogram.
    Count,
    /// `_created` (OpenMetrics creation timestamp).
    Created,
    /// `_gcount` of a gauge histogram.
    GCount,
    /// `_gsum` of a gauge histogram.
    GSum,
    /// `_info` of an OpenMetrics info family.
    Info,
    /// `_total` of an OpenMetrics counter whose family name lacks it.
    Total,
}

impl Suffix {
    /// The text appended to the family name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "",
            Self::Bucket => "_bucket",
            Self::Sum => "_sum",
            Self::Count => "_count",
            Self::Created => "_created",
            Self::GCount => "_gcount",
            Self::GSum => "_gsum",
            Self::Info => "_info",
            Self::Total => "_total",
        }
    }
}

/// One label pair.
pub type Label = (String, String);

/// One sample: a label set, a value and an optional timestamp in milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Which part of the family this sample is.
    pub suffix: Suffix,
    /// Label pairs, sorted by name, without duplicates.
    pub labels: Vec<Label>,
    /// The value.
    pub value: f64,
    /// Optional timestamp in milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    /// A sample of the plain family name with `labels` (sorted here) and `value`.
    pub fn new(labels: Vec<Label>, value: f64) -> Self {
        let mut s = Self { suffix: Suffix::None, labels, value, timestamp_ms: None };
        s.sort_labels();
        s
    }

    /// Sorts the label pairs by name (as client_golang does).
    pub fn sort_labels(&mut self) {
        if !self.labels.is_sorted_by(|a, b| a.0 <= b.0) {
            self.labels.sort_by(|a, b| a.0.cmp(&b.0));
        }
    }

    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Bitwise equality of values (so NaN == NaN) plus equal labels, suffix and timestamp.
    pub fn same_as(&self, other: &Self) -> bool {
        self.suffix == other.suffix
            && self.labels == other.labels
            && self.value.to_bits() == other.value.to_bits()
            && self.timestamp_ms == other.timestamp_ms
    }
}

/// A metric family: metadata plus its samples.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricFamily {
    /// The family name (for counters, the name samples carry in text 0.0.4).
    pub name: String,
    /// The HELP text, unescaped.
    pub help: String,
    /// The type.
    pub kind: MetricType,
    /// The unit (OpenMetrics `# UNIT`), empty when none.
    pub unit: String,
    /// The samples.
    pub samples: Vec<Sample>,
}

impl MetricFamily {
    /// An empty family.
    pub fn new(name: impl Into<String>, help: impl Into<String>, kind: MetricType) -> Self {
        Self { name: name.into(), help: help.into(), kind, unit: String::new(), samples: Vec::new() }
    }

    /// Adds a sample with the given labels (any order) and value.
    pub fn push(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        let labels = labels.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
        self.samples.push(Sample::new(labels, value));
        self
    }

    /// Adds a sample with owned labels.
    pub fn push_owned(&mut self, labels: Vec<Label>, value: f64) -> &mut Self {
        self.samples.push(Sample::new(labels, value));
        self
    }

    /// Sorts samples as client_golang does: by label values in label-name order. For
    /// summaries and histograms the `le`/`quantile` labels and suffix order are kept (stable).
    pub fn sort_samples(&mut self) {
        let special = match self.kind {
            MetricType::Histogram | MetricType::GaugeHistogram => "le",
            MetricType::Summary => "quantile",
            _ => "",
        };
        if special.is_empty() {
            if !self.samples.is_sorted_by(|a, b| cmp_label_values(a, b).is_le()) {
                self.samples.sort_by(cmp_label_values);
            }
        } else {
            self.samples.sort_by_cached_key(|s| {
                s.labels.iter().filter(|(n, _)| n != special).map(|(_, v)| v.clone()).collect::<Vec<_>>()
            });
        }
    }
}

/// client_golang's metric order: fewer labels first, then label values in order.
fn cmp_label_values(a: &Sample, b: &Sample) -> std::cmp::Ordering {
    a.labels
        .len()
        .cmp(&b.labels.len())
        .then_with(|| a.labels.iter().map(|l| &l.1).cmp(b.labels.iter().map(|l| &l.1)))
        .then_with(|| match (a.timestamp_ms, b.timestamp_ms) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        })
}

/// Sorts families by name and their samples, merging families that share a name (the first
/// family's metadata wins; later samples are appended).
pub fn normalize(families: &mut Vec<MetricFamily>) {
    families.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out: Vec<MetricFamily> = Vec::with_capacity(families.len());
    for fam in families.drain(..) {
        match out.last_mut() {
            Some(last) if last.name == fam.name => last.samples.extend(fam.samples),
            _ => out.push(fam),
        }
    }
    for fam in &mut out {
        fam.sort_samples();
    }
    *families = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_sort_by_label_values_like_client_golang() {
        let mut f = MetricFamily::new("x", "h", MetricType::Gauge);
        f.push(&[("mode", "user"), ("cpu", "1")], 1.0);
        f.push(&[("cpu", "0"), ("mode", "user")], 2.0);
        f.push(&[("cpu", "0"), ("mode", "idle")], 3.0);
        f.sort_samples();
        let vals: Vec<f64> = f.samples.iter().map(|s| s.value).collect();
        assert_eq!(vals, [3.0, 2.0, 1.0]);
        assert_eq!(f.samples[0].labels[0].0, "cpu");
    }

    #[test]
    fn normalize_merges_same_name() {
        let mut a = MetricFamily::new("b", "h", MetricType::Gauge);
        a.push(&[("x", "2")], 1.0);
        let mut b = MetricFamily::new("b", "h", MetricType::Gauge);
        b.push(&[("x", "1")], 1.0);
        let c = MetricFamily::new("a", "h", MetricType::Gauge);
        let mut v = vec![a, b, c];
        normalize(&mut v);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].name, "a");
        assert_eq!(v[1].samples[0].label("x"), Some("1"));
    }
}
