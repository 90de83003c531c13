//! The storage boundary: what the scrape loop appends into. The TSDB implements
//! [`Appendable`]; [`MemStorage`] is an in-memory implementation for tests and tools.
//!
//! One scrape is one [`Appender`]: every sample of the scrape, its staleness markers and its
//! synthetic `up`/`scrape_*` series are appended, then committed at once (or rolled back).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The NaN bit pattern Prometheus uses as a staleness marker.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// A staleness marker value (a NaN with [`STALE_NAN_BITS`]).
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `v` is a staleness marker (compares bits: ordinary NaNs are not markers).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// Why the storage refused a sample or a commit.
///
/// The first three are per-sample and expected (Prometheus counts and skips them); the scrape
/// goes on. Any other error fails the scrape.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The sample is older than the newest sample of its series.
    #[error("out of order sample")]
    OutOfOrder,
    /// Same timestamp as the newest sample of its series, different value.
    #[error("duplicate sample for timestamp")]
    Duplicate,
    /// Too old or too far in the future for the storage to accept.
    #[error("out of bounds")]
    OutOfBounds,
    /// Anything else (disk full, storage closed, …): the scrape fails with this message.
    #[error("storage: {0}")]
    Storage(String),
}

impl AppendError {
    /// Whether the scrape skips this sample and goes on (as Prometheus does).
    pub fn is_per_sample(&self) -> bool {
        matches!(self, Self::OutOfOrder | Self::Duplicate | Self::OutOfBounds)
    }
}

/// Where scrapes are written. Implemented by the TSDB.
pub trait Appendable: Send + Sync {
    /// A new transaction for one scrape.
    fn appender(&self) -> Box<dyn Appender + Send>;
    /// As [`Appendable::appender`], for about `samples` samples (a hint: the last scrape's
    /// count), so a store can size its buffers once instead of growing them every scrape.
    fn appender_sized(&self, samples: usize) -> Box<dyn Appender + Send> {
        let _ = samples;
        self.appender()
    }
}

/// The storage's handle of a series, from [`Appender::append_get_ref`]; the scrape cache keeps
/// it and appends later samples with [`Appender::append_ref`], without the labels (as
/// Prometheus' series references). Opaque to the scrape layer.
pub type SeriesRef = Arc<dyn std::any::Any + Send + Sync>;

/// One transaction: samples become visible together on [`Appender::commit`].
pub trait Appender {
    /// Adds a sample. `labels` are sorted by name, unique, include `__name__` and have no
    /// empty values.
    fn append(&mut self, labels: &[(String, String)], t_ms: i64, v: f64) -> Result<(), AppendError>;
    /// As [`Appender::append`], also returning a handle of the series for
    /// [`Appender::append_ref`] when the storage has them (by default it has none).
    fn append_get_ref(
        &mut self,
        labels: &[(String, String)],
        t_ms: i64,
        v: f64,
    ) -> Result<Option<SeriesRef>, AppendError> {
        self.append(labels, t_ms, v).map(|()| None)
    }
    /// Adds a sample to the series `r` refers to; `None` when `r` is no longer valid (the
    /// caller then appends by labels).
    fn append_ref(&mut self, r: &SeriesRef, t_ms: i64, v: f64) -> Option<Result<(), AppendError>> {
        let _ = (r, t_ms, v);
        None
    }
    /// Makes every appended sample visible at once.
    fn commit(self: Box<Self>) -> Result<(), AppendError>;
    /// Discards every appended sample.
    fn rollback(self: Box<Self>);
}

/// Sorted label pairs, the key of a series.
pub type Labels = Vec<(String, String)>;

#[derive(Default)]
struct MemInner {
    series: HashMap<Labels, Vec<(i64, f64)>>,
    commits: u64,
    rollbacks: u64,
}

/// An in-memory [`Appendable`] with the TSDB's per-series rules: samples must be newer than
/// the series' newest (older → [`AppendError::OutOfOrder`], same time and other value →
/// [`AppendError::Duplicate`], same time and value → accepted, not stored twice).
#[derive(Clone, Default)]
pub struct MemStorage {
    inner: Arc<Mutex<MemInner>>,
    fail_commit: Arc<Mutex<Option<String>>>,
}

impl MemStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every series whose `__name__` is `name`, with its samples, sorted by labels.
    pub fn series(&self, name: &str) -> Vec<(Labels, Vec<(i64, f64)>)> {
        let inner = self.inner.lock().expect("storage lock");
        let mut out: Vec<_> = inner
            .series
            .iter()
            .filter(|(l, _)| l.iter().any(|(n, v)| n == "__name__" && v == name))
            .map(|(l, s)| (l.clone(), s.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The samples of the series whose labels contain every pair of `matchers`, merged per series.
    pub fn select(&self, matchers: &[(&str, &str)]) -> Vec<(Labels, Vec<(i64, f64)>)> {
        let inner = self.inner.lock().expect("storage lock");
        let mut out: Vec<_> = inner
            .series
            .iter()
            .filter(|(l, _)| matchers.iter().all(|(mn, mv)| l.iter().any(|(n, v)| n == mn && v == mv)))
            .map(|(l, s)| (l.clone(), s.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Number of series stored.
    pub fn series_count(&self) -> usize {
        self.inner.lock().expect("storage lock").series.len()
    }

    /// Number of committed and rolled-back transactions.
    pub fn transactions(&self) -> (u64, u64) {
        let inner = self.inner.lock().expect("storage lock");
        (inner.commits, inner.rollbacks)
    }

    /// Makes every later commit fail with `msg` (or succeed again with `None`).
    pub fn fail_commits(&self, msg: Option<&str>) {
        *self.fail_commit.lock().expect("storage lock") = msg.map(str::to_owned);
    }
}

impl Appendable for MemStorage {
    fn appender(&self) -> Box<dyn Appender + Send> {
        Box::new(MemAppender { store: self.clone(), pending: HashMap::new() })
    }
}

struct MemAppender {
    store: MemStorage,
    pending: HashMap<Labels, Vec<(i64, f64)>>,
}

/// Checks `t`/`v` against the newest sample `last`: `Ok(true)` to store, `Ok(false)` for an
/// identical repeat.
fn admit(last: Option<&(i64, f64)>, t: i64, v: f64) -> Result<bool, AppendError> {
    match last {
        Some(&(lt, _)) if t < lt => Err(AppendError::OutOfOrder),
        Some(&(lt, lv)) if t == lt => {
            if lv.to_bits() == v.to_bits() {
                Ok(false)
            } else {
                Err(AppendError::Duplicate)
            }
        }
        _ => Ok(true),
    }
}

impl Appender for MemAppender {
    fn append(&mut self, labels: &[(String, String)], t_ms: i64, v: f64) -> Result<(), AppendError> {
        debug_assert!(labels.is_sorted_by(|a, b| a.0 < b.0), "labels must be sorted and unique: {labels:?}");
        // Check against this transaction's own earlier samples, else against committed data.
        let last = match self.pending.get(labels).and_then(|s| s.last()) {
            Some(own) => Some(*own),
            None => self.store.inner.lock().expect("storage lock").series.get(labels).and_then(|s| s.last()).copied(),
        };
        if admit(last.as_ref(), t_ms, v)? {
            self.pending.entry(labels.to_vec()).or_default().push((t_ms, v));
        }
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<(), AppendError> {
        if let Some(msg) = self.store.fail_commit.lock().expect("storage lock").clone() {
            self.store.inner.lock().expect("storage lock").rollbacks += 1;
            return Err(AppendError::Storage(msg));
        }
        let mut inner = self.store.inner.lock().expect("storage lock");
        for (labels, samples) in self.pending {
            let s = inner.series.entry(labels).or_default();
            for (t, v) in samples {
                // Another transaction may have committed newer samples meanwhile: re-check.
                if matches!(admit(s.last(), t, v), Ok(true)) {
                    s.push((t, v));
                }
            }
        }
        inner.commits += 1;
        Ok(())
    }

    fn rollback(self: Box<Self>) {
        self.store.inner.lock().expect("storage lock").rollbacks += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(name: &str) -> Labels {
        vec![("__name__".into(), name.into())]
    }

    #[test]
    fn commit_makes_samples_visible_and_rollback_discards() {
        let s = MemStorage::new();
        let mut a = s.appender();
        a.append(&l("x"), 1, 1.0).unwrap();
        assert_eq!(s.series_count(), 0, "nothing visible before commit");
        a.commit().unwrap();
        assert_eq!(s.series("x")[0].1, [(1, 1.0)]);
        let mut a = s.appender();
        a.append(&l("y"), 1, 1.0).unwrap();
        a.rollback();
        assert!(s.series("y").is_empty());
        assert_eq!(s.transactions(), (1, 1));
    }

    #[test]
    fn out_of_order_and_duplicates_are_refused() {
        let s = MemStorage::new();
        let mut a = s.appender();
        a.append(&l("x"), 10, 1.0).unwrap();
        a.commit().unwrap();
        let mut a = s.appender();
        assert_eq!(a.append(&l("x"), 9, 1.0), Err(AppendError::OutOfOrder));
        assert_eq!(a.append(&l("x"), 10, 2.0), Err(AppendError::Duplicate));
        assert_eq!(a.append(&l("x"), 10, 1.0), Ok(()));
        a.append(&l("x"), 11, 3.0).unwrap();
        assert_eq!(a.append(&l("x"), 11, 4.0), Err(AppendError::Duplicate), "within one transaction too");
        a.commit().unwrap();
        assert_eq!(s.series("x")[0].1, [(10, 1.0), (11, 3.0)]);
    }

    #[test]
    fn stale_nan_is_recognised_by_bits() {
        assert!(is_stale_nan(stale_nan()));
        assert!(!is_stale_nan(f64::NAN));
    }
}
