//! The TSDB as the scrape layer's storage: one `osprey_tsdb::Appender` per scrape, committed
//! at once (WAL write, then visible together), with the TSDB's per-sample rejections mapped to
//! the scrape layer's kinds so that the scrape skips and counts them, while a storage failure
//! (a full disk, a WAL write error) fails the scrape.

use std::sync::Arc;

use osprey_scrape::{AppendError, Appendable, Appender, SeriesRef};
use osprey_tsdb::{Db, Labels};

/// An open TSDB shared by every scrape loop.
#[derive(Clone)]
pub struct TsdbStorage {
    db: Arc<Db>,
}

impl TsdbStorage {
    /// Wraps an open database.
    pub fn new(db: Arc<Db>) -> Self {
        Self { db }
    }

    /// The database.
    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }
}

impl Appendable for TsdbStorage {
    fn appender(&self) -> Box<dyn Appender + Send> {
        Box::new(TsdbAppender { inner: self.db.appender() })
    }

    fn appender_sized(&self, samples: usize) -> Box<dyn Appender + Send> {
        Box::new(TsdbAppender { inner: self.db.appender_with_capacity(samples) })
    }
}

/// One scrape's transaction.
struct TsdbAppender {
    inner: osprey_tsdb::Appender,
}

/// Maps a TSDB rejection to the scrape layer's kind.
pub fn map_error(e: osprey_tsdb::AppendError) -> AppendError {
    match e {
        osprey_tsdb::AppendError::OutOfOrder => AppendError::OutOfOrder,
        osprey_tsdb::AppendError::Duplicate => AppendError::Duplicate,
        osprey_tsdb::AppendError::TooOld => AppendError::OutOfBounds,
        osprey_tsdb::AppendError::EmptyLabels => AppendError::Storage("series has no labels".into()),
    }
}

impl Appender for TsdbAppender {
    fn append(&mut self, labels: &[(String, String)], t_ms: i64, v: f64) -> Result<(), AppendError> {
        // The scrape layer hands sorted, unique, non-empty pairs: the constructor's sort is a
        // single pass over already-sorted input.
        let l = Labels::from_owned(labels.to_vec());
        self.inner.append(&l, t_ms, v).map_err(map_error)
    }

    fn append_get_ref(
        &mut self,
        labels: &[(String, String)],
        t_ms: i64,
        v: f64,
    ) -> Result<Option<SeriesRef>, AppendError> {
        let l = Labels::from_owned(labels.to_vec());
        let r = self.inner.append_get_ref(&l, t_ms, v).map_err(map_error)?;
        Ok(Some(Arc::new(r)))
    }

    fn append_ref(&mut self, r: &SeriesRef, t_ms: i64, v: f64) -> Option<Result<(), AppendError>> {
        let r = r.downcast_ref::<osprey_tsdb::SeriesRef>()?;
        Some(self.inner.append_ref(r, t_ms, v)?.map_err(map_error))
    }

    fn commit(self: Box<Self>) -> Result<(), AppendError> {
        self.inner.commit().map_err(|e| AppendError::Storage(e.to_string()))
    }

    fn rollback(self: Box<Self>) {
        self.inner.rollback();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use osprey_tsdb::{Matcher, Options};

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    }

    fn open(dir: &std::path::Path) -> Arc<Db> {
        Arc::new(Db::open(dir, Options { maintenance_interval: None, ..Options::default() }).expect("open"))
    }

    #[test]
    fn commit_makes_a_scrape_visible_and_rollback_discards_it() {
        let dir = std::env::temp_dir().join(format!("osprey-storage-{}-commit", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let st = TsdbStorage::new(open(&dir));
        let up = pairs(&[("__name__", "up"), ("instance", "a:1"), ("job", "j")]);
        let mut a = st.appender();
        a.append(&up, 1000, 1.0).expect("append");
        a.append(&pairs(&[("__name__", "x"), ("job", "j")]), 1000, 5.0).expect("append");
        assert_eq!(st.db().querier(0, 10_000).select(&[Matcher::eq("job", "j")]).len(), 0, "nothing before commit");
        a.commit().expect("commit");
        let got = st.db().querier(0, 10_000).select(&[Matcher::eq("__name__", "up")]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].to_vec(), vec![(1000, 1.0)]);
        let mut b = st.appender();
        b.append(&up, 2000, 0.0).expect("append");
        b.rollback();
        let got = st.db().querier(0, 10_000).select(&[Matcher::eq("__name__", "up")]);
        assert_eq!(got[0].to_vec(), vec![(1000, 1.0)], "rolled back sample is gone");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn per_sample_rejections_map_to_scrape_kinds() {
        let dir = std::env::temp_dir().join(format!("osprey-storage-{}-reject", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let st = TsdbStorage::new(open(&dir));
        let s = pairs(&[("__name__", "m")]);
        let mut a = st.appender();
        a.append(&s, 5000, 1.0).expect("append");
        a.commit().expect("commit");
        let mut b = st.appender();
        let ooo = b.append(&s, 4000, 1.0).expect_err("older sample");
        assert_eq!(ooo, AppendError::OutOfOrder);
        assert!(ooo.is_per_sample());
        let dup = b.append(&s, 5000, 2.0).expect_err("same time, other value");
        assert_eq!(dup, AppendError::Duplicate);
        b.append(&s, 5000, 1.0).expect("identical repeat is accepted");
        assert_eq!(map_error(osprey_tsdb::AppendError::TooOld), AppendError::OutOfBounds);
        assert!(!map_error(osprey_tsdb::AppendError::EmptyLabels).is_per_sample());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
