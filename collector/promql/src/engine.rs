//! The engine: query entry points, data preloading and the per-step evaluator.
//!
//! Every selector's data is read from storage once per query, for the whole window the query
//! can touch (computed from the query range, offsets, `@`, ranges and subqueries). Each
//! evaluation step then only binary-searches those in-memory samples.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{self, AtModifier, Expr, Offset, VectorSelector};

use crate::idmap::IdMap;
use crate::labels::{Labels, METRIC_NAME};
use crate::storage::{self, Matcher, Queryable, is_stale};
use crate::value::{Error, QueryResult, QueryValue, RangeSeries, Result, Sample, Value};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (Prometheus: 5m).
    pub lookback_ms: i64,
    /// Most samples a query may hold at once.
    pub max_samples: usize,
    /// Longest a query may run.
    pub timeout: Duration,
    /// Subquery step when none is given.
    pub default_subquery_step_ms: i64,
    /// Most queries running at once; more wait for a slot until their timeout.
    pub max_concurrent: usize,
    /// Most samples a query may read from storage in all (its selectors' whole windows);
    /// bounds memory for long range queries.
    pub max_loaded_samples: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            lookback_ms: 5 * 60 * 1000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            default_subquery_step_ms: 60_000,
            max_concurrent: 20,
            max_loaded_samples: 200_000_000,
        }
    }
}

/// A PromQL engine.
#[derive(Debug, Default)]
pub struct Engine {
    opts: EngineOptions,
    /// Queries running now; at `max_concurrent`, further queries wait for a slot (as
    /// Prometheus's query queue does) until their timeout.
    running: Mutex<usize>,
    slot_freed: Condvar,
}

/// Parses a query with the `promql-parser` crate.
pub fn parse(query: &str) -> Result<Expr> {
    crate::durations::parse_checked(query).map_err(Error::Parse)
}

struct RunningGuard<'a>(&'a Engine);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        let mut n = self.0.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *n -= 1;
        self.0.slot_freed.notify_one();
    }
}

impl Engine {
    /// An engine with these options.
    pub fn new(opts: EngineOptions) -> Self {
        Self { opts, running: Mutex::new(0), slot_freed: Condvar::new() }
    }

    /// An engine with the default options (Prometheus's defaults: 5m lookback, 1m subquery step).
    pub fn default_engine() -> Self {
        Self::new(EngineOptions::default())
    }

    /// The engine's options.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Waits for a query slot. The query's timeout (the engine's, or a shorter one asked for
    /// by the request) runs from here, so time in the queue counts, as in Prometheus: a query
    /// still queued when it runs out fails with "query timed out in query queue". Returns the
    /// slot and the options with the time left as the evaluation timeout.
    fn admit(&self, timeout: Option<Duration>) -> Result<(RunningGuard<'_>, EngineOptions)> {
        let timeout = timeout.map_or(self.opts.timeout, |t| t.min(self.opts.timeout));
        let deadline = Instant::now() + timeout;
        let mut n = self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while *n >= self.opts.max_concurrent.max(1) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout("query queue"));
            }
            n = self.slot_freed.wait_timeout(n, left).unwrap_or_else(std::sync::PoisonError::into_inner).0;
        }
        *n += 1;
        drop(n);
        let opts = EngineOptions { timeout: deadline.saturating_duration_since(Instant::now()), ..self.opts.clone() };
        Ok((RunningGuard(self), opts))
    }

    /// Parses and evaluates `query` at `t` (ms).
    pub fn instant_query(&self, q: &dyn Queryable, query: &str, t: i64) -> Result<QueryResult> {
        self.instant_query_timeout(q, query, t, None)
    }

    /// [`Engine::instant_query`] with a per-request timeout (capped at the engine's).
    pub fn instant_query_timeout(
        &self,
        q: &dyn Queryable,
        query: &str,
        t: i64,
        timeout: Option<Duration>,
    ) -> Result<QueryResult> {
        let expr = parse(&crate::durations::expand(query, 0, 0).map_err(Error::Parse)?)?;
        self.eval_instant_timeout(q, &expr, t, timeout)
    }

    /// Parses and evaluates `query` from `start` to `end` every `step` (ms).
    pub fn range_query(&self, q: &dyn Queryable, query: &str, start: i64, end: i64, step: i64) -> Result<QueryResult> {
        self.range_query_timeout(q, query, start, end, step, None)
    }

    /// [`Engine::range_query`] with a per-request timeout (capped at the engine's).
    pub fn range_query_timeout(
        &self,
        q: &dyn Queryable,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
        timeout: Option<Duration>,
    ) -> Result<QueryResult> {
        let expr = parse(&crate::durations::expand(query, end - start, step).map_err(Error::Parse)?)?;
        self.eval_range_timeout(q, &expr, start, end, step, timeout)
    }

    /// Evaluates a parsed expression at `t`.
    pub fn eval_instant(&self, q: &dyn Queryable, expr: &Expr, t: i64) -> Result<QueryResult> {
        self.eval_instant_timeout(q, expr, t, None)
    }

    /// [`Engine::eval_instant`] with a per-request timeout.
    pub fn eval_instant_timeout(
        &self,
        q: &dyn Queryable,
        expr: &Expr,
        t: i64,
        timeout: Option<Duration>,
    ) -> Result<QueryResult> {
        let (_g, opts) = self.admit(timeout)?;
        let mut ev = Evaluator::new(q, &opts, t, t, 0);
        ev.preload(expr, t, t);
        ev.check_loaded()?;
        let result = ev.eval(expr, t)?;
        // Release the query's inputs first: result labels then usually have no other owner,
        // so dropping their names edits them in place.
        ev.release_inputs();
        let value = match result {
            Value::Scalar(v) => QueryValue::Scalar { t, v },
            Value::String(s) => QueryValue::String { t, s },
            Value::Vector(mut vec) => {
                for s in &mut vec {
                    s.t = t;
                    if s.drop_name {
                        s.labels.drop_name();
                        s.drop_name = false;
                    }
                }
                check_unique(&vec)?;
                QueryValue::Vector(vec)
            }
            Value::Matrix(mut m) => {
                for s in &mut m {
                    if s.drop_name {
                        s.labels.drop_name();
                        s.drop_name = false;
                    }
                }
                m.sort_by(|a, b| a.labels.cmp(&b.labels));
                // Names dropped inside a subquery can make two series equal (found by the
                // fuzzer); Prometheus rejects such a matrix as it rejects such a vector.
                if m.windows(2).any(|w| w[0].labels == w[1].labels) {
                    return Err(Error::Exec("vector cannot contain metrics with the same labelset".into()));
                }
                QueryValue::Matrix(m)
            }
        };
        Ok(ev.finish(value))
    }

    /// Evaluates a parsed expression as a range query.
    pub fn eval_range(&self, q: &dyn Queryable, expr: &Expr, start: i64, end: i64, step: i64) -> Result<QueryResult> {
        self.eval_range_timeout(q, expr, start, end, step, None)
    }

    /// [`Engine::eval_range`] with a per-request timeout.
    pub fn eval_range_timeout(
        &self,
        q: &dyn Queryable,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
        timeout: Option<Duration>,
    ) -> Result<QueryResult> {
        let (_g, opts) = self.admit(timeout)?;
        if step <= 0 {
            return Err(Error::Exec("zero or negative query resolution step widths are not accepted".into()));
        }
        if end < start {
            return Err(Error::Exec("end timestamp must not be before start time".into()));
        }
        match expr.value_type() {
            ValueType::Vector | ValueType::Scalar => {}
            t => {
                return Err(Error::Exec(format!(
                    "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                    type_name(t)
                )));
            }
        }
        let mut ev = Evaluator::new(q, &opts, start, end, step);
        ev.preload(expr, start, end);
        ev.check_loaded()?;
        let mut out = MatrixBuilder::default();
        let mut total = 0usize;
        let mut ts = start;
        while ts <= end {
            ev.check_deadline()?;
            ev.step_samples = 0;
            match ev.eval(expr, ts)? {
                Value::Scalar(v) => {
                    let i = out.slot(&Labels::default(), false);
                    out.series[i].points.push((ts, v));
                    total += 1;
                }
                Value::Vector(vec) => {
                    for s in vec {
                        let i = out.slot(&s.labels, s.drop_name);
                        if out.series[i].points.last().is_some_and(|p| p.0 == ts) {
                            return Err(Error::Exec("vector cannot contain metrics with the same labelset".into()));
                        }
                        out.series[i].points.push((ts, s.v));
                        total += 1;
                    }
                }
                other => return Err(Error::Exec(format!("unexpected {} in range query", other.type_name()))),
            }
            if total + ev.step_samples > self.opts.max_samples {
                return Err(Error::TooManySamples("query execution"));
            }
            ts += step;
        }
        ev.release_inputs();
        let out = merge_dropped_names(out.series)?;
        Ok(ev.finish(QueryValue::Matrix(out)))
    }
}

/// The series of a matrix built step by step (range queries, subqueries), found by label set.
#[derive(Default)]
struct MatrixBuilder {
    index: HashMap<Labels, usize>,
    by_id: IdMap<usize, usize>,
    series: Vec<RangeSeries>,
}

impl MatrixBuilder {
    /// Index in `series` of the series with `labels`, added (without points) if new.
    fn slot(&mut self, labels: &Labels, drop_name: bool) -> usize {
        // Fast path: the same shared label set as a stored series (selector series, interned
        // aggregation keys); `series` keeps it alive, so the id stays unique for the whole query.
        if let Some(&i) = self.by_id.get(&labels.id()) {
            return i;
        }
        let Self { index, by_id, series } = self;
        *index.entry(labels.clone()).or_insert_with(|| {
            by_id.insert(labels.id(), series.len());
            series.push(RangeSeries { labels: labels.clone(), points: Vec::new(), drop_name });
            series.len() - 1
        })
    }
}

fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Vector => "vector",
        ValueType::Scalar => "scalar",
        ValueType::Matrix => "range vector",
        ValueType::String => "string",
    }
}

/// Errors when two samples of a final vector share a label set.
pub(crate) fn check_unique(vec: &[Sample]) -> Result<()> {
    if vec.len() < 2 {
        return Ok(());
    }
    let mut seen = std::collections::HashSet::with_capacity(vec.len());
    for s in vec {
        if !seen.insert(&s.labels) {
            return Err(Error::Exec("vector cannot contain metrics with the same labelset".into()));
        }
    }
    Ok(())
}

/// Drops flagged names and merges series that now share labels (error when they overlap).
fn merge_dropped_names(mut out: Vec<RangeSeries>) -> Result<Vec<RangeSeries>> {
    for s in &mut out {
        if s.drop_name {
            s.labels.drop_name();
            s.drop_name = false;
        }
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    let mut merged: Vec<RangeSeries> = Vec::with_capacity(out.len());
    for s in out {
        match merged.last_mut() {
            Some(last) if last.labels == s.labels => {
                last.points.extend(s.points);
                last.points.sort_by_key(|p| p.0);
                if last.points.windows(2).any(|w| w[0].0 == w[1].0) {
                    return Err(Error::Exec("vector cannot contain metrics with the same labelset".into()));
                }
            }
            _ => merged.push(s),
        }
    }
    Ok(merged)
}

/// Number of samples with time `<= t` (`partition_point`), starting from a previous answer.
fn count_le(samples: &[(i64, f64)], t: i64, hint: usize) -> usize {
    let n = samples.len();
    if hint <= n && (hint == 0 || samples[hint - 1].0 <= t) {
        let mut i = hint;
        for _ in 0..8 {
            if i == n || samples[i].0 > t {
                return i;
            }
            i += 1;
        }
        return i + samples[i..].partition_point(|p| p.0 <= t);
    }
    samples.partition_point(|p| p.0 <= t)
}

/// Milliseconds of a `SystemTime` relative to the epoch (negative before it).
pub(crate) fn system_time_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

pub(crate) fn offset_ms(o: Option<&Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
    }
}

/// Converts the parser's matchers of a selector (plus its name) into storage matchers.
pub fn selector_matchers(vs: &VectorSelector) -> Vec<Vec<Matcher>> {
    let conv = |m: &promql_parser::label::Matcher| -> Matcher {
        match &m.op {
            PMatchOp::Equal => Matcher::equal(&m.name, &m.value),
            PMatchOp::NotEqual => Matcher { name: m.name.clone(), op: storage::MatchOp::NotEqual(m.value.clone()) },
            PMatchOp::Re(_) | PMatchOp::NotRe(_) => {
                let neg = matches!(m.op, PMatchOp::NotRe(_));
                Matcher::regex(&m.name, &m.value, neg).unwrap_or_else(|_| Matcher {
                    name: m.name.clone(),
                    op: if neg {
                        storage::MatchOp::NotRegex(re_of(&m.op))
                    } else {
                        storage::MatchOp::Regex(re_of(&m.op))
                    },
                })
            }
        }
    };
    let mut base: Vec<Matcher> = vs.matchers.matchers.iter().map(conv).collect();
    if let Some(n) = &vs.name {
        base.push(Matcher::equal(METRIC_NAME, n));
    }
    if vs.matchers.or_matchers.is_empty() {
        return vec![base];
    }
    vs.matchers
        .or_matchers
        .iter()
        .map(|group| {
            let mut g: Vec<Matcher> = group.iter().map(conv).collect();
            g.extend(base.iter().cloned());
            g
        })
        .collect()
}

fn re_of(op: &PMatchOp) -> regex::Regex {
    match op {
        PMatchOp::Re(r) | PMatchOp::NotRe(r) => r.clone(),
        _ => unreachable!("only called for regex matchers"),
    }
}

/// Per-query evaluation state.
pub(crate) struct Evaluator<'a> {
    q: &'a dyn Queryable,
    pub(crate) opts: &'a EngineOptions,
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) interval: i64,
    data: IdMap<usize, Arc<Vec<storage::Series>>>,
    /// Per selector and series, the sample indices of the previous step (steps mostly move
    /// forward, so the next window is found by a short forward scan).
    cursors: IdMap<usize, Vec<(usize, usize)>>,
    deadline: Instant,
    /// Grouping keys by (aggregation node, input label set id); the input is kept alive here so
    /// its id cannot be reused. Keys are interned, so equal keys share one id.
    group_keys: IdMap<(usize, usize), (Labels, Labels)>,
    interned: HashMap<Labels, Labels>,
    /// Per aggregation node, the grouping of its input at the previous step.
    pub(crate) assignments: IdMap<usize, Arc<crate::aggregate::Assignment>>,
    pub(crate) step_samples: usize,
    /// Subqueries being evaluated around the current node (steps are off the query's grid).
    pub(crate) subquery_depth: usize,
    /// Precomputed range-function steps per matrix selector (see `rangeblock`).
    pub(crate) blocks: IdMap<usize, crate::rangeblock::RangeBlock>,
    loaded: usize,
    pub(crate) warnings: BTreeSet<String>,
    pub(crate) infos: BTreeSet<String>,
}

impl<'a> Evaluator<'a> {
    fn new(q: &'a dyn Queryable, opts: &'a EngineOptions, start: i64, end: i64, interval: i64) -> Self {
        Self {
            q,
            opts,
            start,
            end,
            interval,
            data: IdMap::default(),
            cursors: IdMap::default(),
            group_keys: IdMap::default(),
            interned: HashMap::new(),
            assignments: IdMap::default(),
            deadline: Instant::now() + opts.timeout,
            step_samples: 0,
            subquery_depth: 0,
            blocks: IdMap::default(),
            loaded: 0,
            warnings: BTreeSet::new(),
            infos: BTreeSet::new(),
        }
    }

    /// Drops the preloaded series and per-query caches (evaluation is over).
    fn release_inputs(&mut self) {
        self.data.clear();
        self.cursors.clear();
        self.blocks.clear();
        self.assignments.clear();
        self.group_keys.clear();
        self.interned.clear();
    }

    fn finish(self, value: QueryValue) -> QueryResult {
        QueryResult { value, warnings: self.warnings.into_iter().collect(), infos: self.infos.into_iter().collect() }
    }

    fn check_loaded(&self) -> Result<()> {
        if self.loaded > self.opts.max_loaded_samples {
            return Err(Error::TooManySamples("query execution"));
        }
        Ok(())
    }

    pub(crate) fn check_deadline(&self) -> Result<()> {
        if Instant::now() > self.deadline {
            return Err(Error::Timeout("expression evaluation"));
        }
        Ok(())
    }

    pub(crate) fn count_samples(&mut self, n: usize) -> Result<()> {
        self.step_samples += n;
        if self.step_samples > self.opts.max_samples {
            return Err(Error::TooManySamples("query execution"));
        }
        Ok(())
    }

    /// The reference time of a selector or subquery evaluated at `ts`.
    pub(crate) fn ref_time(&self, at: Option<&AtModifier>, offset: Option<&Offset>, ts: i64) -> i64 {
        let base = match at {
            None => ts,
            Some(AtModifier::Start) => self.start,
            Some(AtModifier::End) => self.end,
            Some(AtModifier::At(t)) => system_time_ms(*t),
        };
        base - offset_ms(offset)
    }

    fn ref_window(&self, at: Option<&AtModifier>, offset: Option<&Offset>, lo: i64, hi: i64) -> (i64, i64) {
        if at.is_some() {
            let t = self.ref_time(at, offset, lo);
            (t, t)
        } else {
            let o = offset_ms(offset);
            (lo - o, hi - o)
        }
    }

    /// Loads every selector's data once, for the widest window the query can touch.
    fn preload(&mut self, e: &Expr, lo: i64, hi: i64) {
        match e {
            Expr::Aggregate(a) => {
                self.preload(&a.expr, lo, hi);
                if let Some(p) = &a.param {
                    self.preload(p, lo, hi);
                }
            }
            Expr::Unary(u) => self.preload(&u.expr, lo, hi),
            Expr::Binary(b) => {
                self.preload(&b.lhs, lo, hi);
                self.preload(&b.rhs, lo, hi);
            }
            Expr::Paren(p) => self.preload(&p.expr, lo, hi),
            Expr::Subquery(sq) => {
                let (l, h) = self.ref_window(sq.at.as_ref(), sq.offset.as_ref(), lo, hi);
                self.preload(&sq.expr, l - sq.range.as_millis() as i64, h);
            }
            Expr::VectorSelector(vs) => {
                let (l, h) = self.ref_window(vs.at.as_ref(), vs.offset.as_ref(), lo, hi);
                self.load(vs, l - self.opts.lookback_ms, h);
            }
            Expr::MatrixSelector(ms) => {
                let (l, h) = self.ref_window(ms.vs.at.as_ref(), ms.vs.offset.as_ref(), lo, hi);
                self.load(&ms.vs, l - ms.range.as_millis() as i64, h);
            }
            Expr::Call(c) => {
                for a in &c.args.args {
                    self.preload(a, lo, hi);
                }
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }

    fn load(&mut self, vs: &VectorSelector, mint: i64, maxt: i64) {
        if self.loaded > self.opts.max_loaded_samples {
            return; // Already over the limit: `check_loaded` fails the query.
        }
        let key = std::ptr::from_ref(vs) as usize;
        let mut series: Vec<storage::Series> = Vec::new();
        let groups = selector_matchers(vs);
        for g in &groups {
            series.extend(self.q.select(g, mint, maxt));
        }
        self.loaded += series.iter().map(|s| s.samples.len()).sum::<usize>();
        if groups.len() > 1 {
            series.sort_by(|a, b| a.labels.cmp(&b.labels));
            series.dedup_by(|a, b| a.labels == b.labels);
        }
        self.data.insert(key, Arc::new(series));
    }

    /// Series matching `matchers` in `[mint, maxt]`, read once per query under `key`.
    pub(crate) fn load_matchers(
        &mut self,
        key: usize,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Arc<Vec<storage::Series>> {
        if let Some(d) = self.data.get(&key) {
            return d.clone();
        }
        let d = Arc::new(self.q.select(matchers, mint, maxt));
        self.data.insert(key, d.clone());
        d
    }

    pub(crate) fn series_of(&self, vs: &VectorSelector) -> Arc<Vec<storage::Series>> {
        let key = std::ptr::from_ref(vs) as usize;
        self.data.get(&key).cloned().unwrap_or_default()
    }

    /// Evaluates `e` at one timestamp.
    pub(crate) fn eval(&mut self, e: &Expr, ts: i64) -> Result<Value> {
        match e {
            Expr::NumberLiteral(n) => Ok(Value::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Value::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, ts),
            Expr::Unary(u) => match self.eval(&u.expr, ts)? {
                Value::Scalar(v) => Ok(Value::Scalar(-v)),
                Value::Vector(mut vec) => {
                    for s in &mut vec {
                        s.v = -s.v;
                        s.drop_name = true;
                    }
                    Ok(Value::Vector(vec))
                }
                other => Err(Error::Exec(format!("unary minus on {}", other.type_name()))),
            },
            Expr::VectorSelector(vs) => self.select_vector(vs, ts).map(Value::Vector),
            Expr::MatrixSelector(ms) => self.select_matrix(&ms.vs, ms.range.as_millis() as i64, ts).map(Value::Matrix),
            Expr::Subquery(sq) => self.eval_subquery(sq, ts).map(Value::Matrix),
            Expr::Call(c) => crate::functions::call(self, c, ts),
            Expr::Aggregate(a) => crate::aggregate::eval(self, a, ts),
            Expr::Binary(b) => crate::binop::eval(self, b, ts),
            Expr::Extension(_) => Err(Error::Exec("extension expressions are not supported".into())),
        }
    }

    /// Evaluates `e` expecting an instant vector.
    pub(crate) fn eval_vector(&mut self, e: &Expr, ts: i64) -> Result<Vec<Sample>> {
        match self.eval(e, ts)? {
            Value::Vector(v) => Ok(v),
            other => Err(Error::Exec(format!("expected instant vector, got {}", other.type_name()))),
        }
    }

    /// Evaluates `e` expecting a scalar.
    pub(crate) fn eval_scalar(&mut self, e: &Expr, ts: i64) -> Result<f64> {
        match self.eval(e, ts)? {
            Value::Scalar(v) => Ok(v),
            other => Err(Error::Exec(format!("expected scalar, got {}", other.type_name()))),
        }
    }

    /// Evaluates `e` expecting a range vector.
    pub(crate) fn eval_matrix(&mut self, e: &Expr, ts: i64) -> Result<Vec<RangeSeries>> {
        match self.eval(e, ts)? {
            Value::Matrix(m) => Ok(m),
            other => Err(Error::Exec(format!("expected range vector, got {}", other.type_name()))),
        }
    }

    fn select_vector(&mut self, vs: &VectorSelector, ts: i64) -> Result<Vec<Sample>> {
        let rt = self.ref_time(vs.at.as_ref(), vs.offset.as_ref(), ts);
        let lb = rt - self.opts.lookback_ms;
        let data = self.series_of(vs);
        let key = std::ptr::from_ref(vs) as usize;
        let mut cur = self.cursors.remove(&key).unwrap_or_else(|| vec![(0, 0); data.len()]);
        let mut out = Vec::with_capacity(data.len());
        for (s, c) in data.iter().zip(cur.iter_mut()) {
            let i = count_le(&s.samples, rt, c.1);
            c.1 = i;
            if i == 0 {
                continue;
            }
            let (t, v) = s.samples[i - 1];
            if t <= lb || is_stale(v) {
                continue;
            }
            out.push(Sample { labels: s.labels.clone(), t, v, drop_name: false });
        }
        self.cursors.insert(key, cur);
        self.count_samples(out.len())?;
        Ok(out)
    }

    /// The points of each series in `(rt - range, rt]`, stale markers removed.
    pub(crate) fn select_matrix(&mut self, vs: &VectorSelector, range: i64, ts: i64) -> Result<Vec<RangeSeries>> {
        let rt = self.ref_time(vs.at.as_ref(), vs.offset.as_ref(), ts);
        let data = self.series_of(vs);
        let key = std::ptr::from_ref(vs) as usize;
        let mut cur = self.cursors.remove(&key).unwrap_or_else(|| vec![(0, 0); data.len()]);
        let mut out = Vec::with_capacity(data.len());
        let mut n = 0;
        for (s, c) in data.iter().zip(cur.iter_mut()) {
            let lo = count_le(&s.samples, rt - range, c.0);
            let hi = count_le(&s.samples, rt, c.1.max(lo));
            *c = (lo, hi);
            if lo >= hi {
                continue;
            }
            let window = &s.samples[lo..hi];
            let points: Vec<(i64, f64)> = if window.iter().any(|p| is_stale(p.1)) {
                window.iter().copied().filter(|p| !is_stale(p.1)).collect()
            } else {
                window.to_vec()
            };
            if points.is_empty() {
                continue;
            }
            n += points.len();
            out.push(RangeSeries { labels: s.labels.clone(), points, drop_name: false });
        }
        self.cursors.insert(key, cur);
        self.count_samples(n)?;
        Ok(out)
    }

    /// Calls `f` with the labels and points in `(rt - range, rt]` of each series of a matrix
    /// selector (stale markers removed, series without points skipped), like
    /// [`Self::select_matrix`] but borrowing the preloaded samples instead of copying them.
    pub(crate) fn for_each_window(
        &mut self,
        vs: &VectorSelector,
        range: i64,
        ts: i64,
        mut f: impl FnMut(&Labels, &[(i64, f64)]) -> Result<()>,
    ) -> Result<()> {
        let rt = self.ref_time(vs.at.as_ref(), vs.offset.as_ref(), ts);
        let data = self.series_of(vs);
        let key = std::ptr::from_ref(vs) as usize;
        let mut cur = self.cursors.remove(&key).unwrap_or_else(|| vec![(0, 0); data.len()]);
        let mut n = 0;
        let mut buf: Vec<(i64, f64)> = Vec::new();
        let mut res = Ok(());
        for (s, c) in data.iter().zip(cur.iter_mut()) {
            let lo = count_le(&s.samples, rt - range, c.0);
            let hi = count_le(&s.samples, rt, c.1.max(lo));
            *c = (lo, hi);
            if lo >= hi {
                continue;
            }
            let window = &s.samples[lo..hi];
            let points = if window.iter().any(|p| is_stale(p.1)) {
                buf.clear();
                buf.extend(window.iter().copied().filter(|p| !is_stale(p.1)));
                &buf[..]
            } else {
                window
            };
            if points.is_empty() {
                continue;
            }
            n += points.len();
            res = f(&s.labels, points);
            if res.is_err() {
                break;
            }
        }
        self.cursors.insert(key, cur);
        res?;
        self.count_samples(n)
    }

    fn eval_subquery(&mut self, sq: &parser::SubqueryExpr, ts: i64) -> Result<Vec<RangeSeries>> {
        self.subquery_depth += 1;
        let r = self.eval_subquery_steps(sq, ts);
        self.subquery_depth -= 1;
        r
    }

    fn eval_subquery_steps(&mut self, sq: &parser::SubqueryExpr, ts: i64) -> Result<Vec<RangeSeries>> {
        let rt = self.ref_time(sq.at.as_ref(), sq.offset.as_ref(), ts);
        let step = sq.step.map_or(self.opts.default_subquery_step_ms, |d| d.as_millis() as i64).max(1);
        let range = sq.range.as_millis() as i64;
        let mut t = step * ((rt - range) / step);
        if t <= rt - range {
            t += step;
        }
        let mut out = MatrixBuilder::default();
        let mut n = 0;
        while t <= rt {
            self.check_deadline()?;
            match self.eval(&sq.expr, t)? {
                Value::Vector(vec) => {
                    for s in vec {
                        let i = out.slot(&s.labels, s.drop_name);
                        out.series[i].points.push((t, s.v));
                        n += 1;
                    }
                }
                Value::Scalar(v) => {
                    let i = out.slot(&Labels::default(), false);
                    out.series[i].points.push((t, v));
                    n += 1;
                }
                other => return Err(Error::Exec(format!("subquery over {}", other.type_name()))),
            }
            t += step;
        }
        self.count_samples(n)?;
        Ok(out.series)
    }

    /// The interned grouping key of `ls` for aggregation node `node`, computed once per query.
    pub(crate) fn group_key(&mut self, node: usize, ls: &Labels, f: impl Fn(&Labels) -> Labels) -> Labels {
        if let Some((_, k)) = self.group_keys.get(&(node, ls.id())) {
            return k.clone();
        }
        if self.group_keys.len() >= 1 << 18 {
            // Inputs with fresh label sets every step (e.g. binary-operator results) would
            // otherwise grow the cache with the query's length.
            self.group_keys.clear();
        }
        let k = f(ls);
        let k = self.interned.entry(k.clone()).or_insert(k).clone();
        self.group_keys.insert((node, ls.id()), (ls.clone(), k.clone()));
        k
    }

    /// Records a warning.
    pub(crate) fn warn(&mut self, msg: &str) {
        self.warnings.insert(format!("PromQL warning: {msg}"));
    }

    /// Records an info.
    pub(crate) fn info(&mut self, msg: &str) {
        self.infos.insert(format!("PromQL info: {msg}"));
    }
}
