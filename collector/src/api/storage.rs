//! The TSDB seen through the PromQL engine's [`Queryable`] interface.
//!
//! Matchers map one to one: `=`/`!=` as literals, `=~`/`!~` with the regex source the query
//! wrote (both sides anchor it fully and let `.` match newlines, as Prometheus 3 does).

use std::sync::Arc;

use osprey_promql::Labels as QLabels;
use osprey_promql::storage::{MatchOp as QOp, Matcher as QMatcher, Queryable, Series as QSeries};
use osprey_tsdb::{Db, MatchOp, Matcher};

/// A [`Queryable`] over an [`osprey_tsdb::Db`].
#[derive(Clone)]
pub struct TsdbStorage {
    db: Arc<Db>,
}

impl TsdbStorage {
    /// Wraps a database.
    pub fn new(db: Arc<Db>) -> Self {
        Self { db }
    }

    /// The wrapped database.
    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }
}

/// The regex source of an engine matcher: the engine compiles `(?s)^(?:SRC)$`.
fn regex_source(re: &regex::Regex) -> &str {
    let s = re.as_str();
    s.strip_prefix("(?s)^(?:").and_then(|r| r.strip_suffix(")$")).unwrap_or(s)
}

/// Converts engine matchers into TSDB matchers; `None` when a regex cannot be compiled (the
/// engine compiled it already, so this does not happen in practice), which selects nothing.
pub fn convert_matchers(ms: &[QMatcher]) -> Option<Vec<Matcher>> {
    ms.iter()
        .map(|m| {
            let (op, value) = match &m.op {
                QOp::Equal(v) => (MatchOp::Eq, v.as_str()),
                QOp::NotEqual(v) => (MatchOp::Ne, v.as_str()),
                QOp::Regex(r) => (MatchOp::Re, regex_source(r)),
                QOp::NotRegex(r) => (MatchOp::Nre, regex_source(r)),
            };
            Matcher::new(op, &m.name, value).ok()
        })
        .collect()
}

/// TSDB labels as engine labels.
pub fn to_engine_labels(l: &osprey_tsdb::Labels) -> QLabels {
    QLabels::from_vec(l.iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect())
}

impl Queryable for TsdbStorage {
    fn select(&self, matchers: &[QMatcher], mint: i64, maxt: i64) -> Vec<QSeries> {
        let Some(ms) = convert_matchers(matchers) else { return Vec::new() };
        self.db
            .querier(mint, maxt)
            .select(&ms)
            .into_iter()
            .filter_map(|s| {
                let samples = s.to_vec();
                // The label strings move over; nothing is copied per series.
                (!samples.is_empty()).then(|| QSeries { labels: QLabels::from_vec(s.labels.into_pairs()), samples })
            })
            .collect()
    }

    fn label_names(&self, matchers: &[QMatcher]) -> Vec<String> {
        let Some(ms) = convert_matchers(matchers) else { return Vec::new() };
        self.db.querier(i64::MIN, i64::MAX).label_names(&ms)
    }

    fn label_values(&self, name: &str, matchers: &[QMatcher]) -> Vec<String> {
        let Some(ms) = convert_matchers(matchers) else { return Vec::new() };
        self.db.querier(i64::MIN, i64::MAX).label_values(name, &ms)
    }
}
