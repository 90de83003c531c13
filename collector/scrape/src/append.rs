//! From a parsed exposition to appended samples: target labels (`honor_labels`), metric
//! relabeling, limits, timestamps (`honor_timestamps`), duplicate detection and staleness.
//!
//! The [`SeriesCache`] of a target maps each exposed series (name and labels as exposed) to
//! its final label set, so labels are merged and relabeled once per series, not per scrape.
//! It also remembers which series the last successful scrape stored, to write staleness
//! markers for those that disappear — as Prometheus' scrape cache does.
//!
//! Once the storage holds a series and gave a reference to it, the entry forgets the final
//! labels (the storage has them): should the reference go stale (the TSDB head was truncated),
//! they are computed again from the key and the target, which has not changed meanwhile (a
//! change of target labels or relabeling goes through [`SeriesCache::invalidate_labels`]).
//!
//! Entries are kept in the order the last successful scrape exposed them: targets expose the
//! same series in the same order every time, so the fast path compares each line with the next
//! entry first and only hashes and looks the line up when that is not it.

use indexmap::IndexMap;

use agent_core::model::{MetricFamily, MetricType, Suffix};
use agent_core::parse::{self, Limits as ParseLimits};

use crate::error::{Format, ScrapeError, format_name, series_string, truncate};
use crate::hash::SeededState;
use crate::packed::Packed;
use crate::storage::{AppendError, Appender, SeriesRef, stale_nan};
use crate::target::{Labels, ScrapeTarget};

/// Per-sample storage refusals of one scrape (skipped, not fatal).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppendCounts {
    /// Samples older than their series' newest.
    pub out_of_order: u64,
    /// Samples with their series' newest timestamp and another value.
    pub duplicate: u64,
    /// Samples the storage considers too old or too new.
    pub out_of_bounds: u64,
}

/// What one scrape's samples amounted to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// `scrape_samples_scraped`: samples in the exposition.
    pub scraped: usize,
    /// `scrape_samples_post_metric_relabeling`: samples kept by metric relabeling.
    pub post_relabel: usize,
    /// `scrape_series_added`: series not in the previous scrape's cache.
    pub series_added: usize,
    /// Per-sample refusals.
    pub refused: AppendCounts,
}

/// An entry's final labels.
enum Final {
    /// Metric relabeling drops the series.
    Dropped,
    /// Kept, packed: until the storage gives a reference, or for a series kept only for its
    /// staleness marker after [`SeriesCache::invalidate_labels`].
    Packed(Packed),
    /// The storage holds the series (`sref` is set): computed again from the key if needed.
    Stored,
}

struct Entry {
    /// Final labels.
    labels: Final,
    /// Seen in the scrape being processed.
    seen_now: bool,
    /// Created by the scrape being processed.
    created_now: bool,
    /// Stored without an explicit timestamp by this scrape (so tracked for staleness).
    tracked_now: bool,
    /// Stored without an explicit timestamp by the last successful scrape.
    tracked_prev: bool,
    /// Position of the series in the scrape being processed (sample line number).
    pos: u32,
    /// The storage's handle of the series, once it gave one.
    sref: Option<SeriesRef>,
}

/// A target's series cache (see the module documentation).
#[derive(Default)]
pub struct SeriesCache {
    /// In the order of the last successful scrape (see the module documentation).
    entries: IndexMap<Box<[u8]>, Entry, SeededState>,
    key: Vec<u8>,
    scratch: Vec<(String, String)>,
    size_after_success: usize,
    /// Hash of the comment lines of the last successful full parse of a text-format body:
    /// while they stay the same, [`crate::fast`] may read known series without the parser.
    comments: Option<u64>,
    /// Scrapes to go before the fast path is tried again after it gave up.
    fast_backoff: u32,
}

/// Scrapes without the fast path after it gave up once.
const FAST_BACKOFF: u32 = 8;

/// Prometheus' default of `scrape_config.sample_limit` is 0 (none); the parser's per-line
/// limits are agent-core's defaults.
fn parse_limits() -> ParseLimits {
    ParseLimits::default()
}

/// Number of sample lines in `body`: non-blank lines that are not comments. An upper bound of
/// the samples the parser would return, found without allocating.
pub fn count_sample_lines(body: &[u8]) -> usize {
    body.split(|&b| b == b'\n')
        .filter(|line| {
            let t = line.iter().position(|&b| b != b' ' && b != b'\t').map_or(&[][..], |i| &line[i..]);
            !t.is_empty() && t[0] != b'#'
        })
        .count()
}

impl SeriesCache {
    /// Number of cached series (kept and dropped).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets every cached label set (after the target's honor flags or relabeling changed).
    /// Series of the last successful scrape are kept, under keys no exposition produces, so
    /// they still get a staleness marker at the next successful scrape unless re-created.
    /// `old` is the target as it was, to compute labels the entries no longer keep.
    pub fn invalidate_labels(&mut self, old_target: &ScrapeTarget) {
        self.comments = None;
        let old = std::mem::take(&mut self.entries);
        self.entries.reserve(old.len());
        let kept = old.into_iter().filter(|(_, e)| e.tracked_prev).filter_map(|(k, mut e)| {
            if matches!(e.labels, Final::Stored) {
                // Another target will not produce them: keep them for the marker.
                e.labels = match recompute(old_target, &k) {
                    Ok(Some(l)) => Final::Packed(Packed::pack(&l)),
                    Ok(None) | Err(_) => Final::Dropped,
                };
            }
            (!matches!(e.labels, Final::Dropped)).then_some(e)
        });
        for (i, e) in kept.enumerate() {
            // Real keys start with a metric name, which is UTF-8 and so never holds 0xff.
            let mut k = b"\xff\xffstale".to_vec();
            k.extend_from_slice(&i.to_le_bytes());
            self.entries.insert(k.into_boxed_slice(), e);
        }
    }

    /// Parses `body` and appends its samples for `target` at `t_ms`; on success also appends
    /// staleness markers for the series of the last successful scrape that are gone.
    ///
    /// On error nothing must be committed: the caller rolls `app` back and calls
    /// [`SeriesCache::fail`] with a fresh appender.
    pub fn append(
        &mut self,
        target: &ScrapeTarget,
        body: &[u8],
        format: Format,
        t_ms: i64,
        app: &mut dyn Appender,
        counts: &mut Counts,
    ) -> Result<(), ScrapeError> {
        *counts = Counts::default();
        let limit = target.limits.sample_limit;
        if limit > 0 && target.metric_relabel.is_none() {
            // Without relabeling every line is a stored sample: refuse before parsing, so the
            // parsed model of a huge exposition is never built.
            let lines = count_sample_lines(body);
            if lines > limit {
                counts.scraped = lines;
                counts.post_relabel = lines;
                return Err(ScrapeError::SampleLimit { samples: lines, limit });
            }
        }
        if format == Format::Text && self.comments.is_some() && self.fast_backoff == 0 {
            if self.append_fast(target, body, t_ms, app, counts).is_some() {
                self.finish_success(target, app, t_ms);
                return Ok(());
            }
            // Start over with the parser. Samples the fast path already appended are appended
            // again with the same time and value, which the storage takes as no-ops.
            for e in self.entries.values_mut() {
                e.seen_now = false;
                e.tracked_now = false;
            }
            *counts = Counts::default();
            self.fast_backoff = FAST_BACKOFF;
        } else {
            self.fast_backoff = self.fast_backoff.saturating_sub(1);
        }
        self.comments = None;
        let families = parse::parse(body, format, &parse_limits())
            .map_err(|error| ScrapeError::Parse { format: format_name(format), error: Box::new(error) })?;
        self.append_families(target, &families, t_ms, app, counts)?;
        if format == Format::Text {
            use std::hash::BuildHasher as _;
            self.comments = Some(crate::fast::comments_hash(body, SeededState::default().build_hasher()));
        }
        self.finish_success(target, app, t_ms);
        Ok(())
    }

    /// The fast path (see [`crate::fast`]): `None` when it gave up (the caller resets the
    /// scrape's flags and runs the parser).
    fn append_fast(
        &mut self,
        target: &ScrapeTarget,
        body: &[u8],
        t_ms: i64,
        app: &mut dyn Appender,
        c: &mut Counts,
    ) -> Option<()> {
        use std::hash::BuildHasher as _;
        let limit = target.limits.sample_limit;
        let mut comments = SeededState::default().build_hasher();
        let mut pairs = Vec::new();
        // The entry expected next: the one after the last line's, in last-scrape order.
        let mut next = 0;
        for line in body.split(|&b| b == b'\n') {
            let line = match crate::fast::kind(line) {
                crate::fast::Kind::Empty => continue,
                crate::fast::Kind::Comment(l) => {
                    crate::fast::hash_comment(&mut comments, l);
                    continue;
                }
                crate::fast::Kind::Sample(l) => l,
            };
            let expected = self.entries.get_index(next).and_then(|(k, _)| crate::fast::match_key(line, k));
            let (index, s) = if let Some(value_at) = expected {
                (next, crate::fast::read_value(line, value_at)?)
            } else {
                let s = crate::fast::read_line(line, &mut self.key, &mut pairs)?;
                (self.entries.get_index_of(self.key.as_slice())?, s)
            };
            next = index + 1;
            let pos = u32::try_from(c.scraped).unwrap_or(u32::MAX);
            c.scraped += 1;
            let explicit_ts = if target.honor_timestamps { s.timestamp_ms } else { None };
            let (key, entry) = self.entries.get_index_mut(index)?;
            if entry.seen_now && explicit_ts.is_none() {
                return None;
            }
            entry.seen_now = true;
            entry.pos = pos;
            if matches!(entry.labels, Final::Dropped) {
                continue;
            }
            c.post_relabel += 1;
            if limit > 0 && c.post_relabel > limit {
                return None;
            }
            let t = explicit_ts.unwrap_or(t_ms);
            match append_entry(target, key, entry, &mut self.scratch, app, t, s.value) {
                Ok(()) => entry.tracked_now = explicit_ts.is_none(),
                Err(AppendError::OutOfOrder) => c.refused.out_of_order += 1,
                Err(AppendError::Duplicate) => c.refused.duplicate += 1,
                Err(AppendError::OutOfBounds) => c.refused.out_of_bounds += 1,
                Err(AppendError::Storage(_)) => return None,
            }
        }
        (Some(std::hash::Hasher::finish(&comments)) == self.comments).then_some(())
    }

    fn append_families(
        &mut self,
        target: &ScrapeTarget,
        families: &[MetricFamily],
        t_ms: i64,
        app: &mut dyn Appender,
        c: &mut Counts,
    ) -> Result<(), ScrapeError> {
        let limit = target.limits.sample_limit;
        let mut limit_hit = false;
        let mut name = String::new();
        for fam in families {
            for s in &fam.samples {
                let pos = u32::try_from(c.scraped).unwrap_or(u32::MAX);
                c.scraped += 1;
                sample_name(fam, s.suffix, &mut name);
                build_key(&mut self.key, &name, &s.labels);
                let explicit_ts = if target.honor_timestamps { s.timestamp_ms } else { None };
                let entry = if let Some(e) = self.entries.get_mut(self.key.as_slice()) {
                    if e.seen_now && explicit_ts.is_none() {
                        let labels = match &e.labels {
                            Final::Packed(p) => p.to_vec(),
                            Final::Stored => recompute(target, &self.key).ok().flatten().unwrap_or_default(),
                            Final::Dropped => exposed_labels(&name, &s.labels),
                        };
                        return Err(ScrapeError::DuplicateSeries(series_string(&labels)));
                    }
                    e.seen_now = true;
                    e.pos = pos;
                    e
                } else {
                    let labels = final_labels(target, &name, &s.labels)?;
                    let e = Entry {
                        labels: labels.as_deref().map_or(Final::Dropped, |l| Final::Packed(Packed::pack(l))),
                        seen_now: true,
                        created_now: true,
                        tracked_now: false,
                        tracked_prev: false,
                        pos,
                        sref: None,
                    };
                    self.entries.entry(self.key.clone().into_boxed_slice()).or_insert(e)
                };
                if matches!(entry.labels, Final::Dropped) {
                    continue;
                }
                c.post_relabel += 1;
                if limit > 0 && c.post_relabel > limit {
                    // Keep counting, as Prometheus does, to report the true number.
                    limit_hit = true;
                    continue;
                }
                if limit_hit {
                    continue;
                }
                let t = explicit_ts.unwrap_or(t_ms);
                match append_entry(target, &self.key, entry, &mut self.scratch, app, t, s.value) {
                    Ok(()) => {
                        entry.tracked_now = explicit_ts.is_none();
                        if entry.created_now {
                            c.series_added += 1;
                        }
                    }
                    Err(e) => match e {
                        AppendError::OutOfOrder => c.refused.out_of_order += 1,
                        AppendError::Duplicate => c.refused.duplicate += 1,
                        AppendError::OutOfBounds => c.refused.out_of_bounds += 1,
                        AppendError::Storage(msg) => return Err(ScrapeError::Storage(msg)),
                    },
                }
            }
        }
        if limit_hit {
            return Err(ScrapeError::SampleLimit { samples: c.post_relabel, limit });
        }
        Ok(())
    }

    /// After a successful scrape: markers for the series that disappeared, then the cache
    /// keeps exactly this scrape's series, in this scrape's order.
    fn finish_success(&mut self, target: &ScrapeTarget, app: &mut dyn Appender, t_ms: i64) {
        let scratch = &mut self.scratch;
        let mut last_pos = None;
        let mut in_order = true;
        self.entries.retain(|k, e| {
            if !e.seen_now {
                if e.tracked_prev {
                    append_marker(target, k, e, scratch, app, t_ms);
                }
                return false;
            }
            e.tracked_prev = e.tracked_now;
            e.seen_now = false;
            e.created_now = false;
            e.tracked_now = false;
            in_order &= last_pos.is_none_or(|p| p < e.pos);
            last_pos = Some(e.pos);
            true
        });
        if !in_order {
            self.entries.sort_by(|_, a, _, b| a.pos.cmp(&b.pos));
        }
        self.size_after_success = self.entries.len();
    }

    /// After a failed scrape (nothing of it committed): markers for every series of the last
    /// successful scrape, since the target's series are gone for now. The cache keeps its
    /// label sets but forgets what this scrape created.
    pub fn fail(&mut self, target: &ScrapeTarget, app: &mut dyn Appender, t_ms: i64) {
        self.comments = None;
        let scratch = &mut self.scratch;
        self.entries.retain(|k, e| {
            if e.tracked_prev {
                append_marker(target, k, e, scratch, app, t_ms);
            }
            let keep = !e.created_now;
            e.tracked_prev = false;
            e.seen_now = false;
            e.created_now = false;
            e.tracked_now = false;
            keep
        });
        if self.entries.len() > self.size_after_success * 2 + 1000 {
            self.entries.clear();
        }
        if self.entries.capacity() > 4 * self.entries.len() + 1024 {
            self.entries.shrink_to_fit();
        }
    }

    /// The target went away: markers for the series of the last successful scrape.
    pub fn mark_all_stale(&mut self, target: &ScrapeTarget, app: &mut dyn Appender, t_ms: i64) {
        self.fail(target, app, t_ms);
    }
}

/// Appends a sample of the entry under `key`: by reference, else by its labels (computed again
/// if the entry does not keep them). Once the storage gives a reference the entry stops keeping
/// its labels.
fn append_entry(
    target: &ScrapeTarget,
    key: &[u8],
    e: &mut Entry,
    scratch: &mut Labels,
    app: &mut dyn Appender,
    t_ms: i64,
    v: f64,
) -> Result<(), AppendError> {
    if let Some(r) = e.sref.as_ref().and_then(|r| app.append_ref(r, t_ms, v)) {
        return r;
    }
    let labels = match entry_labels(target, key, &e.labels, scratch) {
        Ok(Some(l)) => l,
        Ok(None) => return Ok(()),
        Err(err) => return Err(AppendError::Storage(err.to_string())),
    };
    let r = app.append_get_ref(labels, t_ms, v)?;
    if r.is_some() {
        e.labels = Final::Stored;
        e.sref = r;
    }
    Ok(())
}

/// Appends a staleness marker for the entry under `key` (by reference when it is still valid).
fn append_marker(
    target: &ScrapeTarget,
    key: &[u8],
    e: &Entry,
    scratch: &mut Labels,
    app: &mut dyn Appender,
    t_ms: i64,
) {
    let appended = if let Some(r) = e.sref.as_ref().and_then(|r| app.append_ref(r, t_ms, stale_nan())) {
        r
    } else {
        match entry_labels(target, key, &e.labels, scratch) {
            Ok(Some(labels)) => app.append(labels, t_ms, stale_nan()),
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(error = %err, "computing the labels of a staleness marker");
                return;
            }
        }
    };
    // A marker older than a newer sample (the target came back) is refused: that is fine.
    if let Err(e) = appended
        && !e.is_per_sample()
    {
        tracing::warn!(error = %e, "appending a staleness marker");
    }
}

/// The final labels of an entry under `key`, in `scratch`; `None` when relabeling drops it.
fn entry_labels<'a>(
    target: &ScrapeTarget,
    key: &[u8],
    labels: &Final,
    scratch: &'a mut Labels,
) -> Result<Option<&'a [(String, String)]>, ScrapeError> {
    Ok(match labels {
        Final::Packed(p) => Some(p.unpack_into(scratch)),
        Final::Stored => recompute(target, key)?.map(|l| {
            *scratch = l;
            &scratch[..]
        }),
        Final::Dropped => None,
    })
}

/// The final labels of the series under cache key `key` (see [`build_key`]), computed again
/// for `target` without the label limits (the series passed them when it was first seen).
fn recompute(target: &ScrapeTarget, key: &[u8]) -> Result<Option<Labels>, ScrapeError> {
    let mut parts = key.split(|&b| b == 0xff);
    let name = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let exposed: Labels = parts
        .map(|p| {
            let (n, v) = p.split_at(p.iter().position(|&b| b == 0xfe).unwrap_or(p.len()));
            (
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v.get(1..).unwrap_or_default()).into_owned(),
            )
        })
        .collect();
    merged_labels(target, &name, &exposed)
}

/// The name a sample carries in the exposition: the family name plus its suffix, except that
/// an OpenMetrics counter's `_created` sample hangs off the name without `_total` (`x_created`
/// for family `x_total`).
fn sample_name(fam: &MetricFamily, suffix: Suffix, out: &mut String) {
    out.clear();
    if fam.kind == MetricType::Counter && suffix == Suffix::Created {
        out.push_str(agent_core::encode::om_family_name(fam));
    } else {
        out.push_str(&fam.name);
    }
    out.push_str(suffix.as_str());
}

/// The cache key of an exposed series: name and labels as exposed (empty values skipped, as
/// they mean "no label").
fn build_key(key: &mut Vec<u8>, name: &str, labels: &[(String, String)]) {
    key.clear();
    key.extend_from_slice(name.as_bytes());
    for (n, v) in labels {
        if v.is_empty() {
            continue;
        }
        key.push(0xff);
        key.extend_from_slice(n.as_bytes());
        key.push(0xfe);
        key.extend_from_slice(v.as_bytes());
    }
}

fn exposed_labels(name: &str, labels: &[(String, String)]) -> Labels {
    let mut out = Vec::with_capacity(labels.len() + 1);
    out.push(("__name__".to_owned(), name.to_owned()));
    out.extend(labels.iter().filter(|(_, v)| !v.is_empty()).cloned());
    out
}

/// Exposed labels plus target labels (with `honor_labels` or `exported_` renaming), then
/// metric relabeling, then the label limits. `None` when relabeling drops the series.
pub(crate) fn final_labels(
    target: &ScrapeTarget,
    name: &str,
    exposed: &[(String, String)],
) -> Result<Option<Labels>, ScrapeError> {
    let out = merged_labels(target, name, exposed)?;
    if let Some(l) = &out {
        check_label_limits(target, l)?;
    }
    Ok(out)
}

/// [`final_labels`] without the label limits.
fn merged_labels(
    target: &ScrapeTarget,
    name: &str,
    exposed: &[(String, String)],
) -> Result<Option<Labels>, ScrapeError> {
    let mut out = exposed_labels(name, exposed);
    let n_exposed = out.len();
    let mut conflicts: Vec<(String, String)> = Vec::new();
    for (tn, tv) in &target.labels {
        match out[..n_exposed].iter_mut().find(|(n, _)| n == tn) {
            Some(existing) => {
                if !target.honor_labels {
                    conflicts.push((tn.clone(), std::mem::replace(&mut existing.1, tv.clone())));
                }
            }
            None => out.push((tn.clone(), tv.clone())),
        }
    }
    if !conflicts.is_empty() {
        // Shorter names first, as Prometheus, so `exported_x` is taken before `exported_exported_x`.
        conflicts.sort_by_key(|(n, _)| n.len());
        for (n, v) in conflicts {
            let mut new = format!("exported_{n}");
            while out.iter().any(|(o, _)| *o == new) {
                new.insert_str(0, "exported_");
            }
            out.push((new, v));
        }
    }
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    if let Some(relabel) = &target.metric_relabel {
        if !relabel(&mut out) {
            return Ok(None);
        }
        out.retain(|(_, v)| !v.is_empty());
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.dedup_by(|a, b| a.0 == b.0);
        if !out.iter().any(|(n, _)| n == "__name__") {
            return Err(ScrapeError::MissingName(series_string(&out)));
        }
    }
    Ok(Some(out))
}

fn check_label_limits(target: &ScrapeTarget, labels: &[(String, String)]) -> Result<(), ScrapeError> {
    let l = &target.limits;
    let metric = || truncate(labels.iter().find(|(n, _)| n == "__name__").map_or("", |(_, v)| v.as_str()), 50);
    if l.label_limit > 0 && labels.len() > l.label_limit {
        return Err(ScrapeError::LabelLimit { metric: metric(), count: labels.len(), limit: l.label_limit });
    }
    for (n, v) in labels {
        if l.label_name_length_limit > 0 && n.len() > l.label_name_length_limit {
            return Err(ScrapeError::LabelNameLength {
                metric: metric(),
                name: truncate(n, 50),
                len: n.len(),
                limit: l.label_name_length_limit,
            });
        }
        if l.label_value_length_limit > 0 && v.len() > l.label_value_length_limit {
            return Err(ScrapeError::LabelValueLength {
                metric: metric(),
                name: truncate(n, 50),
                value: truncate(v, 50),
                len: v.len(),
                limit: l.label_value_length_limit,
            });
        }
    }
    Ok(())
}
