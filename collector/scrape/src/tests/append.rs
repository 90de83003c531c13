//! The series cache on its own: label merging, relabeling, limits, duplicates, staleness.

use std::sync::Arc;

use crate::error::Format;
use crate::storage::Labels;
use crate::{Appendable, Counts, MemStorage, ScrapeError, ScrapeLimits, ScrapeTarget, SeriesCache, is_stale_nan};

fn tgt() -> ScrapeTarget {
    ScrapeTarget::new("j", vec![("job".into(), "j".into()), ("instance".into(), "h:1".into())], "http://h:1/metrics")
}

fn l(pairs: &[(&str, &str)]) -> Labels {
    let mut v: Labels = pairs.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect();
    v.sort();
    v
}

/// One scrape of `body` at `t` through a fresh appender; commits on success, and on failure
/// does what the loop does (rollback, markers in a new transaction).
fn scrape(
    cache: &mut SeriesCache,
    store: &MemStorage,
    t: &ScrapeTarget,
    body: &str,
    ts: i64,
) -> Result<Counts, ScrapeError> {
    let mut app = store.appender();
    let mut c = Counts::default();
    match cache.append(t, body.as_bytes(), Format::Text, ts, app.as_mut(), &mut c) {
        Ok(()) => {
            app.commit().unwrap();
            Ok(c)
        }
        Err(e) => {
            app.rollback();
            let mut app = store.appender();
            cache.fail(t, app.as_mut(), ts);
            app.commit().unwrap();
            Err(e)
        }
    }
}

fn only_series(store: &MemStorage, name: &str) -> (Labels, Vec<(i64, f64)>) {
    let s = store.series(name);
    assert_eq!(s.len(), 1, "{name}: {s:?}");
    s.into_iter().next().unwrap()
}

#[test]
fn target_labels_win_and_clashing_exposed_labels_become_exported() {
    let (store, mut cache) = (MemStorage::new(), SeriesCache::default());
    let body = "m{job=\"exp\",instance=\"x\",exported_job=\"already\",a=\"1\"} 5\n";
    scrape(&mut cache, &store, &tgt(), body, 1000).unwrap();
    let (labels, samples) = only_series(&store, "m");
    assert_eq!(
        labels,
        l(&[
            ("__name__", "m"),
            ("a", "1"),
            ("exported_exported_job", "exp"),
            ("exported_instance", "x"),
            ("exported_job", "already"),
            ("instance", "h:1"),
            ("job", "j"),
        ])
    );
    assert_eq!(samples, [(1000, 5.0)]);
}

#[test]
fn honor_labels_keeps_exposed_values_and_fills_the_rest() {
    let (store, mut cache) = (MemStorage::new(), SeriesCache::default());
    let mut t = tgt();
    t.honor_labels = true;
    scrape(&mut cache, &store, &t, "m{job=\"exp\"} 1\n", 1000).unwrap();
    assert_eq!(only_series(&store, "m").0, l(&[("__name__", "m"), ("instance", "h:1"), ("job", "exp")]));
}

#[test]
fn empty_label_values_mean_no_label() {
    let (store, mut cache) = (MemStorage::new(), SeriesCache::default());
    scrape(&mut cache, &store, &tgt(), "m{a=\"\"} 1\n", 1000).unwrap();
    assert_eq!(only_series(&store, "m").0, l(&[("__name__", "m"), ("instance", "h:1"), ("job", "j")]));
    // …so `m{a=""}` and `m` are the same series.
    let err = scrape(&mut cache, &store, &tgt(), "m{a=\"\"} 1\nm 2\n", 2000).unwrap_err();
    assert!(matches!(err, ScrapeError::DuplicateSeries(_)), "{err}");
}

#[test]
fn honor_timestamps_uses_exposed_timestamps_only_when_set() {
    let store = MemStorage::new();
    let body = "m 1 1234\n";
    scrape(&mut SeriesCache::default(), &store, &tgt(), body, 5000).unwrap();
    assert_eq!(only_series(&store, "m").1, [(1234, 1.0)]);
    let store = MemStorage::new();
    let mut t = tgt();
    t.honor_timestamps = false;
    scrape(&mut SeriesCache::default(), &store, &t, body, 5000).unwrap();
    assert_eq!(only_series(&store, "m").1, [(5000, 1.0)]);
}

#[test]
fn metric_relabeling_drops_and_rewrites_and_sample_limit_counts_what_is_kept() {
    let (store, mut cache) = (MemStorage::new(), SeriesCache::default());
    let mut t = tgt();
    t.metric_relabel = Some(Arc::new(|labels: &mut Vec<(String, String)>| {
        if labels.iter().any(|(n, v)| n == "__name__" && v.starts_with("drop_")) {
            return false;
        }
        labels.push(("env".into(), "prod".into()));
        true
    }));
    t.limits.sample_limit = 2;
    let body = "drop_a 1\ndrop_b 1\ndrop_c 1\nkeep_a 1\nkeep_b 2\n";
    let c = scrape(&mut cache, &store, &t, body, 1000).unwrap();
    assert_eq!((c.scraped, c.post_relabel, c.series_added), (5, 2, 2));
    assert_eq!(
        only_series(&store, "keep_b").0,
        l(&[("__name__", "keep_b"), ("env", "prod"), ("instance", "h:1"), ("job", "j")])
    );
    assert!(store.series("drop_a").is_empty());
    let err = scrape(&mut cache, &store, &t, &format!("{body}keep_c 3\n"), 2000).unwrap_err();
    assert_eq!(err.to_string(), "sample_limit exceeded: 3 samples after metric relabeling, limit 2");
}

#[test]
fn sample_limit_without_relabeling_refuses_before_parsing() {
    let mut t = tgt();
    t.limits.sample_limit = 3;
    // Line 5 would not parse: the line count alone refuses the scrape.
    let mut app = MemStorage::new().appender();
    let mut c = Counts::default();
    let err = SeriesCache::default().append(
        &t,
        b"# HELP a x\na 1\nb 1\n\nc 1\nd{ 1\n",
        Format::Text,
        1,
        app.as_mut(),
        &mut c,
    );
    assert_eq!(err.unwrap_err().to_string(), "sample_limit exceeded: 4 samples after metric relabeling, limit 3");
    assert_eq!(c.scraped, 4);
}

#[test]
fn label_limits_fail_the_scrape_with_the_limit_named() {
    let cases: [(ScrapeLimits, &str); 3] = [
        (
            ScrapeLimits { label_limit: 3, ..ScrapeLimits::default() },
            "label_limit exceeded (metric: m, number of labels: 4, limit: 3)",
        ),
        (
            ScrapeLimits { label_name_length_limit: 5, ..ScrapeLimits::default() },
            "label_name_length_limit exceeded (metric: m, label name: __name__, length: 8, limit: 5)",
        ),
        (
            ScrapeLimits { label_value_length_limit: 3, ..ScrapeLimits::default() },
            "label_value_length_limit exceeded (metric: m, label name: a, value: \"long\", length: 4, limit: 3)",
        ),
    ];
    for (limits, msg) in cases {
        let store = MemStorage::new();
        let mut t = tgt();
        t.limits = limits;
        let err = scrape(&mut SeriesCache::default(), &store, &t, "m{a=\"long\"} 1\n", 1).unwrap_err();
        assert_eq!(err.to_string(), msg);
        assert!(store.series("m").is_empty(), "nothing of a failed scrape is stored");
    }
}

#[test]
fn duplicate_series_fail_unless_they_carry_timestamps() {
    let store = MemStorage::new();
    let err = scrape(&mut SeriesCache::default(), &store, &tgt(), "m{a=\"1\"} 1\nm{a=\"1\"} 2\n", 1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "duplicate series in the exposition: m{a=\"1\",instance=\"h:1\",job=\"j\"} appears more than once"
    );
    let c = scrape(&mut SeriesCache::default(), &store, &tgt(), "m{a=\"1\"} 1 100\nm{a=\"1\"} 2 200\n", 1).unwrap();
    assert_eq!(c.post_relabel, 2);
    assert_eq!(only_series(&store, "m").1, [(100, 1.0), (200, 2.0)]);
}

#[test]
fn a_series_that_disappears_gets_one_staleness_marker() {
    let (store, mut cache) = (MemStorage::new(), SeriesCache::default());
    let t = tgt();
    let c = scrape(&mut cache, &store, &t, "a 1\nb 1\nts_only 1 500\n", 1000).unwrap();
    assert_eq!(c.series_added, 3);
    let c = scrape(&mut cache, &store, &t, "a 2\nb 2\nts_only 1 600\n", 2000).unwrap();
    assert_eq!(c.series_added, 0);
    scrape(&mut cache, &store, &t, "a 3\n", 3000).unwrap();
    scrape(&mut cache, &store, &t, "a 4\n", 4000).unwrap();
    let b = only_series(&store, "b").1;
    assert_eq!(b.len(), 3);
    assert_eq!(b[2].0, 3000);
    assert!(is_stale_nan(b[2].1), "marker at the first scrape without b");
    assert!(only_series(&store, "a").1.iter().all(|(_, v)| !v.is_nan()));
    // Series with their own timestamps are not marked (Prometheus does the same).
    assert!(only_series(&store, "ts_only").1.iter().all(|(_, v)| !v.is_nan()));
    // b comes back: counted as added again.
    let c = scrape(&mut cache, &store, &t, "a 5\nb 5\n", 5000).unwrap();
    assert_eq!(c.series_added, 1);
}

#[test]
fn a_failed_scrape_marks_every_series_stale_once() {
    let (store, mut cache) = (MemStorage::new(), SeriesCache::default());
    let t = tgt();
    scrape(&mut cache, &store, &t, "a 1\nb 1\n", 1000).unwrap();
    scrape(&mut cache, &store, &t, "a 2\nbroken{ 2\n", 2000).unwrap_err();
    scrape(&mut cache, &store, &t, "also{ broken\n", 3000).unwrap_err();
    let c = scrape(&mut cache, &store, &t, "a 4\n", 4000).unwrap();
    assert_eq!(c.series_added, 0, "the cache survives failed scrapes");
    let a = only_series(&store, "a").1;
    assert_eq!(a.iter().map(|s| s.0).collect::<Vec<_>>(), [1000, 2000, 4000]);
    assert!(is_stale_nan(a[1].1));
    let b = only_series(&store, "b").1;
    assert_eq!(b.len(), 2, "one marker, not one per failed scrape, none after recovery: {b:?}");
    assert!(is_stale_nan(b[1].1));
    assert_eq!(b[1].0, 2000);
}

#[test]
fn changed_relabeling_marks_series_it_no_longer_produces() {
    let (store, mut cache) = (MemStorage::new(), SeriesCache::default());
    let mut t = tgt();
    scrape(&mut cache, &store, &t, "a 1\n", 1000).unwrap();
    let old = t.clone();
    t.metric_relabel = Some(Arc::new(|labels: &mut Vec<(String, String)>| {
        labels.push(("v".into(), "2".into()));
        true
    }));
    cache.invalidate_labels(&old);
    scrape(&mut cache, &store, &t, "a 2\n", 2000).unwrap();
    let s = store.series("a");
    assert_eq!(s.len(), 2);
    assert!(is_stale_nan(s[0].1[1].1), "old labels marked: {s:?}");
    assert_eq!(s[1].1, [(2000, 2.0)]);
}

#[test]
fn histograms_and_openmetrics_samples_get_their_suffixed_names() {
    let (store, mut cache) = (MemStorage::new(), SeriesCache::default());
    let body = "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n# TYPE c counter\nc_total 7\n# EOF\n";
    let mut app = store.appender();
    let mut c = Counts::default();
    cache.append(&tgt(), body.as_bytes(), Format::OpenMetrics, 1, app.as_mut(), &mut c).unwrap();
    app.commit().unwrap();
    assert_eq!(c.scraped, 5);
    assert_eq!(store.series("h_bucket").len(), 2);
    let les: Vec<String> =
        store.series("h_bucket").iter().map(|(l, _)| l.iter().find(|(n, _)| n == "le").unwrap().1.clone()).collect();
    assert_eq!(les, ["+Inf", "1.0"], "le normalized as Prometheus 3 does");
    assert_eq!(only_series(&store, "c_total").1, [(1, 7.0)]);
    assert_eq!(only_series(&store, "h_count").1, [(1, 2.0)]);
}

/// The fast path walks the cache in last-scrape order: a target that changes its order, adds
/// series in the middle or drops some still gets every sample on its own series.
#[test]
fn reordered_and_inserted_series_keep_their_samples() {
    let (store, mut cache) = (MemStorage::new(), SeriesCache::default());
    let t = tgt();
    let body = |order: &[usize]| {
        let lines: Vec<String> = order.iter().map(|i| format!("m{{i=\"{i}\"}} {i}")).collect();
        format!("# TYPE m gauge\n{}\n", lines.join("\n"))
    };
    let scrapes: [&[usize]; 6] =
        [&[0, 1, 2, 3], &[0, 1, 2, 3], &[3, 2, 1, 0], &[3, 2, 1, 0], &[3, 9, 2, 1, 0], &[2, 3, 0, 9]];
    for (n, order) in scrapes.iter().enumerate() {
        let c = scrape(&mut cache, &store, &t, &body(order), 1000 * (n as i64 + 1)).unwrap();
        assert_eq!(c.scraped, order.len());
        assert_eq!(cache.len(), order.len(), "the cache keeps exactly the scrape's series");
    }
    for i in [0, 1, 2, 3, 9] {
        let mut s: Vec<_> = store.select(&[("i", &i.to_string())]);
        assert_eq!(s.len(), 1);
        let (_, samples) = s.remove(0);
        let expect: Vec<(i64, f64)> = scrapes
            .iter()
            .enumerate()
            .filter(|(_, o)| o.contains(&i))
            .map(|(n, _)| (1000 * (n as i64 + 1), i as f64))
            .collect();
        let live: Vec<_> = samples.iter().copied().filter(|(_, v)| !is_stale_nan(*v)).collect();
        assert_eq!(live, expect, "series i={i}");
        let stale = samples.iter().filter(|(_, v)| is_stale_nan(*v)).count();
        assert_eq!(stale, usize::from(i == 1), "series i={i}: one marker when it disappeared");
    }
}

/// A store that hands out references and invalidates them all on `truncate`, as the TSDB head
/// does when it is truncated.
#[derive(Clone, Default)]
struct RefStore {
    inner: MemStorage,
    generation: Arc<std::sync::atomic::AtomicU64>,
}

impl RefStore {
    fn truncate(&self) {
        self.generation.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

struct RefAppender {
    inner: Box<dyn crate::Appender + Send>,
    generation: Arc<std::sync::atomic::AtomicU64>,
}

impl crate::Appender for RefAppender {
    fn append(&mut self, labels: &[(String, String)], t_ms: i64, v: f64) -> Result<(), crate::AppendError> {
        self.inner.append(labels, t_ms, v)
    }

    fn append_get_ref(
        &mut self,
        labels: &[(String, String)],
        t_ms: i64,
        v: f64,
    ) -> Result<Option<crate::SeriesRef>, crate::AppendError> {
        self.inner.append(labels, t_ms, v)?;
        let g = self.generation.load(std::sync::atomic::Ordering::Relaxed);
        Ok(Some(Arc::new((labels.to_vec(), g))))
    }

    fn append_ref(&mut self, r: &crate::SeriesRef, t_ms: i64, v: f64) -> Option<Result<(), crate::AppendError>> {
        let (labels, g) = r.downcast_ref::<(Labels, u64)>()?;
        (*g == self.generation.load(std::sync::atomic::Ordering::Relaxed)).then(|| self.inner.append(labels, t_ms, v))
    }

    fn commit(self: Box<Self>) -> Result<(), crate::AppendError> {
        self.inner.commit()
    }

    fn rollback(self: Box<Self>) {
        self.inner.rollback();
    }
}

impl Appendable for RefStore {
    fn appender(&self) -> Box<dyn crate::Appender + Send> {
        Box::new(RefAppender { inner: self.inner.appender(), generation: self.generation.clone() })
    }
}

fn scrape_ref(cache: &mut SeriesCache, store: &RefStore, t: &ScrapeTarget, body: &str, ts: i64) -> bool {
    let mut app = store.appender();
    let mut c = Counts::default();
    if cache.append(t, body.as_bytes(), Format::Text, ts, app.as_mut(), &mut c).is_ok() {
        app.commit().unwrap();
        true
    } else {
        app.rollback();
        let mut app = store.appender();
        cache.fail(t, app.as_mut(), ts);
        app.commit().unwrap();
        false
    }
}

/// The cache forgets a series' final labels once the storage holds it: after the storage
/// invalidated its references they are computed again (target labels, `exported_`, metric
/// relabeling), for samples and for staleness markers alike.
#[test]
fn labels_are_computed_again_after_the_storage_invalidates_its_references() {
    let store = RefStore::default();
    let mut cache = SeriesCache::default();
    let mut t = tgt();
    t.metric_relabel = Some(Arc::new(|labels: &mut Vec<(String, String)>| {
        labels.push(("r".into(), "1".into()));
        labels.iter().all(|(_, v)| v != "drop")
    }));
    let body = "m{job=\"exp\",a=\"1\"} 1\nn 2\nd{x=\"drop\"} 3\n";
    assert!(scrape_ref(&mut cache, &store, &t, body, 1000));
    store.truncate();
    // Still through the fast path (same comments), then by recomputed labels.
    assert!(scrape_ref(&mut cache, &store, &t, "m{job=\"exp\",a=\"1\"} 4\nn 5\nd{x=\"drop\"} 6\n", 2000));
    store.truncate();
    // `n` is gone: its marker needs its labels.
    assert!(scrape_ref(&mut cache, &store, &t, "m{job=\"exp\",a=\"1\"} 7\n", 3000));
    store.truncate();
    // A failed scrape: markers for the last scrape's series.
    assert!(!scrape_ref(&mut cache, &store, &t, "m{job=\"exp\",a=\"1\"} 7\nm{job=\"exp\",a=\"1\"} 8\n", 4000));
    let m = l(&[("__name__", "m"), ("a", "1"), ("exported_job", "exp"), ("instance", "h:1"), ("job", "j"), ("r", "1")]);
    let n = l(&[("__name__", "n"), ("instance", "h:1"), ("job", "j"), ("r", "1")]);
    let all = store.inner.select(&[]);
    assert_eq!(all.iter().map(|s| s.0.clone()).collect::<Vec<_>>(), [m, n], "no series under other labels: {all:?}");
    let (ms, ns) = (&all[0].1, &all[1].1);
    assert_eq!(ms[..3], [(1000, 1.0), (2000, 4.0), (3000, 7.0)]);
    assert!(ms.len() == 4 && ms[3].0 == 4000 && is_stale_nan(ms[3].1), "{ms:?}");
    assert_eq!(ns[..2], [(1000, 2.0), (2000, 5.0)]);
    assert!(ns.len() == 3 && ns[2].0 == 3000 && is_stale_nan(ns[2].1), "{ns:?}");
}

/// Changing the relabeling after the references went stale: the old series are still marked
/// under their old labels, computed with the old target.
#[test]
fn changed_relabeling_after_stale_references_marks_the_old_labels() {
    let store = RefStore::default();
    let mut cache = SeriesCache::default();
    let old = tgt();
    assert!(scrape_ref(&mut cache, &store, &old, "a 1\n", 1000));
    store.truncate();
    let mut t = old.clone();
    t.metric_relabel = Some(Arc::new(|labels: &mut Vec<(String, String)>| {
        labels.push(("v".into(), "2".into()));
        true
    }));
    cache.invalidate_labels(&old);
    assert!(scrape_ref(&mut cache, &store, &t, "a 2\n", 2000));
    let s = store.inner.series("a");
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!(s[0].0, l(&[("__name__", "a"), ("instance", "h:1"), ("job", "j")]));
    assert!(s[0].1.len() == 2 && is_stale_nan(s[0].1[1].1), "old labels marked: {s:?}");
    assert_eq!(s[1].1, [(2000, 2.0)]);
}
