//! The narrow storage interface the engine reads through, plus an in-memory implementation.
//!
//! The engine asks a [`Queryable`] once per selector and query for every series matching a set
//! of [`Matcher`]s within `[mint, maxt]` (milliseconds, both inclusive), then walks the samples
//! of each step itself. Stale markers are NaNs with the bit pattern [`STALE_NAN_BITS`].

use regex::Regex;

use crate::labels::Labels;

/// Bit pattern of Prometheus's staleness marker (a signalling-free NaN).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker value.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `v` is the staleness marker (not just any NaN).
pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// How a [`Matcher`] compares a label value.
#[derive(Debug, Clone)]
pub enum MatchOp {
    /// `=`
    Equal(String),
    /// `!=`
    NotEqual(String),
    /// `=~` (fully anchored, `.` matches newlines)
    Regex(Regex),
    /// `!~`
    NotRegex(Regex),
}

/// One label matcher; a missing label has the value `""`.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Comparison.
    pub op: MatchOp,
}

impl Matcher {
    /// An equality matcher.
    pub fn equal(name: &str, value: &str) -> Self {
        Self { name: name.into(), op: MatchOp::Equal(value.into()) }
    }

    /// A regex matcher, anchored at both ends as PromQL does.
    pub fn regex(name: &str, re: &str, negate: bool) -> Result<Self, regex::Error> {
        let re = Regex::new(&format!("(?s)^(?:{re})$"))?;
        let op = if negate { MatchOp::NotRegex(re) } else { MatchOp::Regex(re) };
        Ok(Self { name: name.into(), op })
    }

    /// Whether the label value `v` (`""` when absent) matches.
    pub fn matches(&self, v: &str) -> bool {
        match &self.op {
            MatchOp::Equal(s) => s == v,
            MatchOp::NotEqual(s) => s != v,
            MatchOp::Regex(r) => r.is_match(v),
            MatchOp::NotRegex(r) => !r.is_match(v),
        }
    }

    /// Whether a series with these labels matches.
    pub fn matches_labels(&self, ls: &Labels) -> bool {
        self.matches(ls.get(&self.name).unwrap_or(""))
    }
}

/// One series as returned by [`Queryable::select`].
#[derive(Debug, Clone)]
pub struct Series {
    /// Sorted label pairs, including `__name__`.
    pub labels: Labels,
    /// `(timestamp ms, value)` in time order; stale markers included.
    pub samples: Vec<(i64, f64)>,
}

/// What the engine needs from a time-series store.
pub trait Queryable: Send + Sync {
    /// Every series matching all `matchers`, with its samples in `[mint, maxt]`, sorted by labels.
    /// Series without samples in the window may be omitted.
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Series>;
    /// Sorted label names of series matching `matchers` (all series when empty).
    fn label_names(&self, matchers: &[Matcher]) -> Vec<String>;
    /// Sorted values of label `name` on series matching `matchers`.
    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String>;
}

/// A simple in-memory store: series kept sorted by labels.
#[derive(Debug, Default, Clone)]
pub struct MemStorage {
    series: std::collections::BTreeMap<Labels, Vec<(i64, f64)>>,
}

impl MemStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one sample; samples of a series are kept in time order (a sample at an existing
    /// timestamp replaces it).
    pub fn add(&mut self, labels: &Labels, t: i64, v: f64) {
        let s = self.series.entry(labels.clone()).or_default();
        match s.last() {
            Some(&(lt, _)) if lt < t => s.push((t, v)),
            None => s.push((t, v)),
            _ => match s.binary_search_by_key(&t, |p| p.0) {
                Ok(i) => s[i] = (t, v),
                Err(i) => s.insert(i, (t, v)),
            },
        }
    }

    /// Drops all data.
    pub fn clear(&mut self) {
        self.series.clear();
    }

    /// Number of series stored.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    fn matching<'a>(&'a self, matchers: &'a [Matcher]) -> impl Iterator<Item = (&'a Labels, &'a Vec<(i64, f64)>)> + 'a {
        self.series.iter().filter(move |(ls, _)| matchers.iter().all(|m| m.matches_labels(ls)))
    }
}

impl Queryable for MemStorage {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Series> {
        self.matching(matchers)
            .filter_map(|(ls, s)| {
                let lo = s.partition_point(|p| p.0 < mint);
                let hi = s.partition_point(|p| p.0 <= maxt);
                (lo < hi).then(|| Series { labels: ls.clone(), samples: s[lo..hi].to_vec() })
            })
            .collect()
    }

    fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        let mut out: Vec<String> =
            self.matching(matchers).flat_map(|(ls, _)| ls.iter().map(|(n, _)| n.to_string())).collect();
        out.sort();
        out.dedup();
        out
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        let mut out: Vec<String> =
            self.matching(matchers).filter_map(|(ls, _)| ls.get(name).map(str::to_string)).collect();
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_window_is_inclusive_and_filters_by_matchers() {
        let mut s = MemStorage::new();
        let a = Labels::from_pairs(&[("__name__", "m"), ("job", "a")]);
        let b = Labels::from_pairs(&[("__name__", "m"), ("job", "b")]);
        for t in 0..10 {
            s.add(&a, t * 10, t as f64);
            s.add(&b, t * 10, -(t as f64));
        }
        let got = s.select(&[Matcher::equal("job", "a")], 20, 40);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].samples, vec![(20, 2.0), (30, 3.0), (40, 4.0)]);
        let re = Matcher::regex("job", "a|b", false).unwrap();
        assert_eq!(s.select(&[re], 0, 0).len(), 2);
        assert_eq!(s.label_values("job", &[]), vec!["a", "b"]);
        assert_eq!(s.label_names(&[]), vec!["__name__", "job"]);
    }

    #[test]
    fn stale_marker_is_recognised_but_plain_nan_is_not() {
        assert!(is_stale(stale_nan()));
        assert!(!is_stale(f64::NAN));
    }
}
