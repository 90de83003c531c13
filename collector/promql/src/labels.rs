//! Label sets: sorted, immutable, cheap to clone.

use std::fmt;
use std::sync::Arc;

/// The metric name label.
pub const METRIC_NAME: &str = "__name__";

/// A sorted set of `(name, value)` pairs, shared behind an `Arc`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Labels(Arc<Vec<(String, String)>>);

impl Labels {
    /// Builds a label set from pairs (sorted here; later duplicates win; empty values dropped).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self::from_vec(pairs.iter().map(|(n, v)| ((*n).to_string(), (*v).to_string())).collect())
    }

    /// Builds a label set from owned pairs (sorted here; empty values dropped).
    pub fn from_vec(mut v: Vec<(String, String)>) -> Self {
        if v.windows(2).all(|w| w[0].0 < w[1].0) && v.iter().all(|p| !p.1.is_empty()) {
            // Already sorted and clean (storage hands labels over this way): keep the vector.
            return Self(Arc::new(v));
        }
        v.retain(|(_, val)| !val.is_empty());
        v.sort_by(|a, b| a.0.cmp(&b.0));
        // Keep the last of duplicate names.
        let mut out: Vec<(String, String)> = Vec::with_capacity(v.len());
        for p in v {
            match out.last_mut() {
                Some(last) if last.0 == p.0 => *last = p,
                _ => out.push(p),
            }
        }
        Self(Arc::new(out))
    }

    /// The value of label `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        // Typical series have a handful of labels: a linear scan with cheap equality checks
        // beats ordered comparisons there.
        if self.0.len() <= 16 {
            return self.0.iter().find(|p| p.0 == name).map(|p| p.1.as_str());
        }
        self.0.binary_search_by(|p| p.0.as_str().cmp(name)).ok().map(|i| self.0[i].1.as_str())
    }

    /// The metric name, if any.
    pub fn name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Iterates the pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A copy with label `name` set to `value` (removed when `value` is empty).
    #[must_use]
    pub fn with(&self, name: &str, value: &str) -> Self {
        let mut v: Vec<(String, String)> = self.0.iter().filter(|p| p.0 != name).cloned().collect();
        if !value.is_empty() {
            v.push((name.to_string(), value.to_string()));
            v.sort_by(|a, b| a.0.cmp(&b.0));
        }
        Self(Arc::new(v))
    }

    /// A copy without the named labels.
    #[must_use]
    pub fn without(&self, names: &[&str]) -> Self {
        if !self.0.iter().any(|p| names.contains(&p.0.as_str())) {
            return self.clone();
        }
        Self(Arc::new(self.0.iter().filter(|p| !names.contains(&p.0.as_str())).cloned().collect()))
    }

    /// A copy without `__name__` and the other metadata labels (`__type__`, `__unit__`).
    #[must_use]
    pub fn without_name(&self) -> Self {
        self.without(&[METRIC_NAME, "__type__", "__unit__"])
    }

    /// Removes `__name__` and the other metadata labels, in place when this is the only
    /// handle to the set (no allocation), else by copying like [`Labels::without_name`].
    pub fn drop_name(&mut self) {
        const META: [&str; 3] = [METRIC_NAME, "__type__", "__unit__"];
        if !self.0.iter().any(|p| META.contains(&p.0.as_str())) {
            return;
        }
        match Arc::get_mut(&mut self.0) {
            Some(v) => v.retain(|p| !META.contains(&p.0.as_str())),
            None => *self = self.without_name(),
        }
    }

    /// A copy keeping only the named labels.
    #[must_use]
    pub fn keep(&self, names: &[&str]) -> Self {
        Self(Arc::new(self.0.iter().filter(|p| names.contains(&p.0.as_str())).cloned().collect()))
    }

    /// Identity of this shared label set (equal ids imply equal labels while both are alive).
    pub fn id(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    /// The owned pairs.
    pub fn to_vec(&self) -> Vec<(String, String)> {
        self.0.as_ref().clone()
    }
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (n, v)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}={v:?}")?;
        }
        f.write_str("}")
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_sorted_and_empty_values_dropped() {
        let l = Labels::from_pairs(&[("b", "2"), ("a", "1"), ("c", "")]);
        assert_eq!(l.to_string(), r#"{a="1", b="2"}"#);
        assert_eq!(l.with("c", "3").get("c"), Some("3"));
        assert_eq!(l.with("a", "").len(), 1);
        assert_eq!(l.keep(&["b"]).to_string(), r#"{b="2"}"#);
        let mut named = Labels::from_pairs(&[("__name__", "x"), ("a", "1")]);
        let shared = named.clone();
        named.drop_name();
        assert_eq!(named.to_string(), r#"{a="1"}"#);
        assert_eq!(shared.to_string(), r#"{__name__="x", a="1"}"#, "a shared set is copied, not changed");
        let mut own = shared;
        own.drop_name();
        assert_eq!(own, named);
        let dup = Labels::from_vec(vec![("b".into(), "1".into()), ("a".into(), "2".into()), ("b".into(), "3".into())]);
        assert_eq!(dup.to_string(), r#"{a="2", b="3"}"#);
    }
}
