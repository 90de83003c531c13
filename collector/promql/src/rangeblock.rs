//! Range queries over `f(selector[range])`: the function's values for a block of steps are
//! computed series by series (each series' samples read sequentially, once per block), then
//! served step by step. Walking 10 000 series' windows step-major touched a different cache
//! line per series and step; this reads each series' memory once per block instead.

use promql_parser::parser::MatrixSelector;

use crate::engine::Evaluator;
use crate::labels::Labels;
use crate::rangefns::{self, RangeArgs};
use crate::storage::is_stale;
use crate::value::{Result, Sample};

/// Most values one block holds (steps × series), bounding its memory to ~9 MB (tiny in unit
/// tests, so that their range queries cross many blocks).
const BLOCK_VALUES: usize = if cfg!(test) { 16 } else { 1 << 20 };

/// One block of precomputed steps for one matrix selector.
pub(crate) struct RangeBlock {
    /// Index of the block's first step (from the query's start).
    first: i64,
    /// Steps in the block.
    steps: usize,
    /// Series of the selector (the block's columns).
    series: usize,
    /// `values[k * series + s]`: the function at step `first + k` for series `s`.
    values: Vec<f64>,
    present: Vec<bool>,
    /// Points read per step (the query's sample accounting).
    points: Vec<usize>,
    /// Metric names seen that do not look like counters (for `rate`/`increase`'s info).
    not_counter: Vec<String>,
    /// Each series' window `(lo, hi)` at the block's last step, where the next block starts
    /// (a fresh binary search per series and block missed the cache at every probe).
    cursors: Vec<(usize, usize)>,
}

/// Whether `name` depends only on the window (no scalar parameters), so it can be blocked.
pub(crate) fn eligible(name: &str) -> bool {
    !matches!(name, "quantile_over_time" | "predict_linear" | "double_exponential_smoothing" | "holt_winters")
}

/// The samples of `name(ms)` at `ts`, from the selector's block (computed when `ts` is not in
/// the current one). `None` when `ts` is not one of the query's steps.
pub(crate) fn eval(
    ev: &mut Evaluator<'_>,
    name: &str,
    ms: &MatrixSelector,
    ts: i64,
    keep_name: bool,
) -> Result<Option<Vec<Sample>>> {
    if ev.interval <= 0 || ev.start == ev.end || ev.subquery_depth > 0 || ts < ev.start || ts > ev.end {
        return Ok(None);
    }
    if (ts - ev.start) % ev.interval != 0 {
        return Ok(None);
    }
    let step = (ts - ev.start) / ev.interval;
    let key = std::ptr::from_ref(ms) as usize;
    let data = ev.series_of(&ms.vs);
    let stale = ev.blocks.get(&key).is_none_or(|b| step < b.first || step >= b.first + b.steps as i64);
    if stale {
        let total_steps = (ev.end - ev.start) / ev.interval + 1;
        let per_block = (BLOCK_VALUES / data.len().max(1)).clamp(1, 1024) as i64;
        let steps = per_block.min(total_steps - step) as usize;
        let prev = ev.blocks.remove(&key);
        let resume = prev.filter(|b| b.first + b.steps as i64 == step && b.series == data.len()).map(|b| b.cursors);
        let block = compute(ev, name, ms, &data, step, steps, resume.as_deref())?;
        ev.blocks.insert(key, block);
    }
    let Some(b) = ev.blocks.get(&key) else { return Ok(None) };
    let k = (step - b.first) as usize;
    let row = k * b.series;
    let mut out = Vec::new();
    for (s, series) in data.iter().enumerate() {
        if b.present[row + s] {
            out.push(Sample { labels: series.labels.clone(), t: ts, v: b.values[row + s], drop_name: !keep_name });
        }
    }
    let n = b.points[k];
    let infos: Vec<String> = b.not_counter.clone();
    for n in infos {
        ev.info(&format!("metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {n:?}"));
    }
    ev.count_samples(n)?;
    Ok(Some(out))
}

fn compute(
    ev: &Evaluator<'_>,
    name: &str,
    ms: &MatrixSelector,
    data: &[crate::storage::Series],
    first: i64,
    steps: usize,
    resume: Option<&[(usize, usize)]>,
) -> Result<RangeBlock> {
    let range = ms.range.as_millis() as i64;
    let n = data.len();
    let mut b = RangeBlock {
        first,
        steps,
        series: n,
        values: vec![0.0; steps * n],
        present: vec![false; steps * n],
        points: vec![0; steps],
        not_counter: Vec::new(),
        cursors: vec![(0, 0); n],
    };
    let check_counter = matches!(name, "rate" | "increase");
    let mut buf: Vec<(i64, f64)> = Vec::new();
    for (s, series) in data.iter().enumerate() {
        let samples = &series.samples[..];
        let (mut lo, mut hi) = resume.map_or((0, 0), |c| c[s]);
        let mut seen = false;
        for k in 0..steps {
            let ts = ev.start + (first + k as i64) * ev.interval;
            let rt = ev.ref_time(ms.vs.at.as_ref(), ms.vs.offset.as_ref(), ts);
            let from = rt - range;
            if k == 0 && resume.is_none() {
                lo = samples.partition_point(|p| p.0 <= from);
                hi = lo + samples[lo..].partition_point(|p| p.0 <= rt);
            } else {
                // `@` can make the window move backwards; otherwise it only moves forward.
                if lo > 0 && samples[lo - 1].0 > from {
                    lo = samples.partition_point(|p| p.0 <= from);
                }
                while lo < samples.len() && samples[lo].0 <= from {
                    lo += 1;
                }
                hi = hi.max(lo);
                if hi > lo && samples[hi - 1].0 > rt {
                    hi = lo + samples[lo..].partition_point(|p| p.0 <= rt);
                }
                while hi < samples.len() && samples[hi].0 <= rt {
                    hi += 1;
                }
            }
            b.cursors[s] = (lo, hi);
            if lo >= hi {
                continue;
            }
            let window = &samples[lo..hi];
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
            b.points[k] += points.len();
            let ra = RangeArgs { rt, range, ts, ..RangeArgs::default() };
            if let Some(v) = rangefns::eval(name, points, &ra)? {
                b.values[k * n + s] = v;
                b.present[k * n + s] = true;
                seen = true;
            }
        }
        if check_counter && seen {
            note_counter(&mut b.not_counter, &series.labels);
        }
    }
    Ok(b)
}

fn note_counter(names: &mut Vec<String>, labels: &Labels) {
    let n = labels.name().unwrap_or("");
    if !n.is_empty()
        && !["_total", "_sum", "_count", "_bucket"].iter().any(|suf| n.ends_with(suf))
        && !names.iter().any(|c| c == n)
    {
        names.push(n.to_string());
    }
}
