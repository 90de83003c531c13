//! One target's task: wait for its tick, scrape with a timeout, append everything in one
//! transaction, report `up` and the `scrape_*` series, repeat. When the target is removed it
//! writes staleness markers for its series (after the grace period Prometheus uses, in case
//! the target comes straight back) and ends.

use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::append::{Counts, SeriesCache};
use crate::client::{Clients, fetch};
use crate::clock::Clock;
use crate::error::{Format, ScrapeError};
use crate::status::{Health, ScrapeMetrics, TargetStatus};
use crate::storage::{AppendError, Appendable, Appender, SeriesRef, stale_nan};
use crate::target::{Labels, ScrapeTarget, start_offset_ms};

/// Bodies at least this large are parsed and appended on tokio's blocking pool, so that one
/// huge exposition does not hold up the scheduling of other targets.
const BLOCKING_BODY_BYTES: usize = 1 << 20;

/// A body buffer up to this capacity is kept between scrapes; a larger one is freed after the
/// scrape and allocated again, at the size of the last body, when the next scrape starts. A
/// target's buffer is thus held only while it is being scraped (≈ 100 KB × 100 targets of
/// mostly idle memory otherwise), for one allocation per scrape.
const KEEP_BODY_BUFFER: usize = 16 << 10;

/// What the manager wants a loop to do.
#[derive(Clone)]
pub(crate) enum Mode {
    /// Scrape this target.
    Run(Arc<ScrapeTarget>),
    /// The target was removed: write staleness markers after the grace period, then end.
    Drain,
    /// End now, without markers (shutdown).
    Shutdown,
    /// The loop has ended (set by the loop itself).
    Exited,
}

/// Everything a loop shares with its manager.
pub(crate) struct LoopCtx {
    /// Time of the first scrape, fixed when the loop is created (not when its task first
    /// runs), so the schedule does not depend on how busy the runtime is.
    pub(crate) first_tick: i64,
    pub(crate) key_hash: u64,
    pub(crate) offset_seed: u64,
    pub(crate) tolerance_ms: Option<i64>,
    pub(crate) storage: Arc<dyn Appendable>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) clients: Arc<Clients>,
    pub(crate) metrics: Arc<ScrapeMetrics>,
    pub(crate) status: Arc<Mutex<TargetStatus>>,
    pub(crate) mode: Arc<watch::Sender<Mode>>,
}

/// The synthetic series of every target.
const REPORT_NAMES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

struct LoopState {
    cache: SeriesCache,
    buf: Vec<u8>,
    /// Length of the last body read in full: the capacity to reserve for the next one.
    body_hint: usize,
    /// The synthetic series' labels and storage references (see [`append_synthetic`]).
    report: Vec<(Labels, Option<SeriesRef>)>,
    /// Sample timestamp of the last scrape, if any.
    last_scrape: Option<i64>,
}

fn report_series(target: &ScrapeTarget) -> Vec<(Labels, Option<SeriesRef>)> {
    REPORT_NAMES
        .iter()
        .map(|name| {
            let mut l: Labels =
                target.labels.iter().filter(|(n, v)| n != "__name__" && !v.is_empty()).cloned().collect();
            l.push(("__name__".into(), (*name).into()));
            l.sort();
            (l, None)
        })
        .collect()
}

/// Appends a synthetic sample by the series' storage reference while the storage honours it,
/// by labels otherwise (keeping the new reference): looking five series up by labels on
/// every scrape cost more than all the scrape's other series lookups together.
fn append_synthetic(
    app: &mut dyn Appender,
    (labels, r): &mut (Labels, Option<SeriesRef>),
    t: i64,
    v: f64,
) -> Result<(), AppendError> {
    if let Some(res) = r.as_ref().and_then(|r| app.append_ref(r, t, v)) {
        return res;
    }
    *r = None;
    app.append_get_ref(labels, t, v).map(|new| *r = new)
}

fn interval_ms(t: &ScrapeTarget) -> i64 {
    (t.interval.as_millis() as i64).max(1)
}

/// What to do after looking at a mode change.
enum Flow {
    Continue,
    Stop,
}

/// Runs the loop until the manager stops it.
pub(crate) async fn run(ctx: LoopCtx) {
    let mut rx = ctx.mode.subscribe();
    let Mode::Run(mut target) = rx.borrow_and_update().clone() else { return };
    let mut st = LoopState {
        cache: SeriesCache::default(),
        buf: Vec::new(),
        body_hint: 0,
        report: report_series(&target),
        last_scrape: None,
    };
    let mut next = ctx.first_tick;
    loop {
        let mut changed = false;
        // Biased: a mode change that is already there wins over a due tick (a removed target
        // is not scraped once more).
        tokio::select! {
            biased;
            r = rx.changed() => {
                if r.is_err() { return; }
                changed = true;
            }
            () = ctx.clock.sleep_until(next) => {}
        }
        if changed {
            let mode = rx.borrow_and_update().clone();
            match apply_mode(&ctx, &mut rx, &mut st, &mut target, &mut next, mode).await {
                Flow::Continue => continue,
                Flow::Stop => return,
            }
        }
        let scheduled = next;
        let now = ctx.clock.now_ms();
        let tolerance = ctx.tolerance_ms.unwrap_or_else(|| (interval_ms(&target) / 100).min(25));
        let t = if now - scheduled <= tolerance { scheduled } else { now };
        ctx.metrics.observe_lateness(now - scheduled);
        let mut pending_change = false;
        {
            let mut scrape = pin!(scrape_once(&ctx, &mut st, &target, t));
            loop {
                tokio::select! {
                    () = &mut scrape => break,
                    r = rx.changed() => {
                        // Only a shutdown interrupts a scrape; other changes wait for its end.
                        if r.is_err() || matches!(*rx.borrow(), Mode::Shutdown | Mode::Exited) {
                            return;
                        }
                        pending_change = true;
                    }
                }
            }
        }
        // The next tick on the grid; ticks that passed during a long scrape are skipped.
        let iv = interval_ms(&target);
        let now = ctx.clock.now_ms();
        next = scheduled + iv;
        if next <= now {
            let missed = (now - next) / iv + 1;
            ctx.metrics.skipped_ticks.fetch_add(missed as u64, Ordering::Relaxed);
            next += missed * iv;
        }
        if pending_change {
            let mode = rx.borrow_and_update().clone();
            if let Flow::Stop = apply_mode(&ctx, &mut rx, &mut st, &mut target, &mut next, mode).await {
                return;
            }
        }
    }
}

/// The first tick of a target from now on: now plus its offset.
pub(crate) fn first_tick(clock: &dyn Clock, key_hash: u64, offset_seed: u64, target: &ScrapeTarget) -> i64 {
    let now = clock.now_ms();
    now + start_offset_ms(key_hash, offset_seed, interval_ms(target), now)
}

/// Applies a new mode; for `Drain` runs the drain (which may end in a resume).
async fn apply_mode(
    ctx: &LoopCtx,
    rx: &mut watch::Receiver<Mode>,
    st: &mut LoopState,
    target: &mut Arc<ScrapeTarget>,
    next: &mut i64,
    mode: Mode,
) -> Flow {
    let new = match mode {
        Mode::Run(new) => new,
        Mode::Drain => match drain(ctx, rx, st, target, *next).await {
            Some(new) => new,
            None => return Flow::Stop,
        },
        Mode::Shutdown | Mode::Exited => return Flow::Stop,
    };
    if !new.same_series_shape(target) {
        st.cache.invalidate_labels(target);
    }
    if new.interval != target.interval {
        *next = first_tick(ctx.clock.as_ref(), ctx.key_hash, ctx.offset_seed, &new);
    }
    st.report = report_series(&new);
    {
        let mut s = ctx.status.lock().expect("status lock");
        s.interval = new.interval;
        s.timeout = new.timeout;
        s.discovered_labels.clone_from(&new.discovered_labels);
        s.scrape_pool.clone_from(&new.scrape_pool);
    }
    *target = new;
    Flow::Continue
}

/// The target was removed. As Prometheus: wait for the tick after next plus 10% of the
/// interval (the target may be re-added meanwhile: then return it and go on), then write
/// markers stamped with the first missed tick, and end. `None` means "end the loop".
async fn drain(
    ctx: &LoopCtx,
    rx: &mut watch::Receiver<Mode>,
    st: &mut LoopState,
    target: &ScrapeTarget,
    next: i64,
) -> Option<Arc<ScrapeTarget>> {
    if st.last_scrape.is_some() {
        let iv = interval_ms(target);
        let stale_time = next;
        let wake = next + iv + iv / 10;
        loop {
            tokio::select! {
                biased;
                r = rx.changed() => {
                    if r.is_err() { return None; }
                    match rx.borrow_and_update().clone() {
                        Mode::Run(t) => return Some(t),
                        Mode::Drain => {}
                        Mode::Shutdown | Mode::Exited => return None,
                    }
                }
                () = ctx.clock.sleep_until(wake) => break,
            }
        }
        let mut app = ctx.storage.appender();
        st.cache.mark_all_stale(target, app.as_mut(), stale_time);
        for series in &mut st.report {
            let _ = append_synthetic(app.as_mut(), series, stale_time, stale_nan());
        }
        if let Err(e) = app.commit() {
            tracing::warn!(error = %e, "committing end-of-run staleness markers");
        }
        st.last_scrape = None;
    }
    // End, unless the manager re-added the target in the meantime.
    let mut resumed = None;
    ctx.mode.send_if_modified(|m| match m {
        Mode::Drain => {
            *m = Mode::Exited;
            true
        }
        Mode::Run(t) => {
            resumed = Some(t.clone());
            false
        }
        Mode::Shutdown | Mode::Exited => false,
    });
    rx.borrow_and_update();
    resumed
}

/// One scrape at sample time `t`: fetch, append, report, commit, update the status.
async fn scrape_once(ctx: &LoopCtx, st: &mut LoopState, target: &Arc<ScrapeTarget>, t: i64) {
    let started = Instant::now();
    let timeout_ms = (target.timeout.as_millis() as i64).max(1);
    let client = match &target.forced_error {
        Some(e) => Err(Err(ScrapeError::Forced(e.clone()))),
        None => ctx.clients.get(&target.tls).map_err(Ok),
    };
    let fetched = match client {
        Err(Err(forced)) => Err(forced),
        Err(Ok(cause)) => Err(ScrapeError::Http { url: crate::client::redact_url(&target.url), cause }),
        Ok(client) => {
            let deadline = ctx.clock.now_ms() + timeout_ms;
            reserve_body(&mut st.buf, st.body_hint, target.limits.effective_body_size_limit());
            tokio::select! {
                r = fetch(&client, target, &mut st.buf) => r,
                () = ctx.clock.sleep_until(deadline) => Err(ScrapeError::Timeout {
                    url: crate::client::redact_url(&target.url),
                    timeout: target.timeout,
                }),
            }
        }
    };
    ctx.metrics.peak_body_buffer.fetch_max(st.buf.capacity() as u64, Ordering::Relaxed);
    let body_bytes = if fetched.is_ok() { st.buf.len() } else { 0 };
    if fetched.is_ok() {
        st.body_hint = body_bytes;
    }

    let mut counts = Counts::default();
    let (mut app, result) = match fetched {
        Ok(format) => process(ctx, st, target, format, t, &mut counts).await,
        Err(e) => (ctx.storage.appender(), Err(e)),
    };
    if let Err(e) = &result {
        // Nothing of a failed scrape is stored: start over with markers for its old series.
        app.rollback();
        app = ctx.storage.appender();
        st.cache.fail(target, app.as_mut(), t);
        if !matches!(e, ScrapeError::SampleLimit { .. }) {
            counts = Counts { scraped: counts.scraped, ..Counts::default() };
        }
    }
    let duration = started.elapsed();
    let up = if result.is_ok() { 1.0 } else { 0.0 };
    let values =
        [up, duration.as_secs_f64(), counts.scraped as f64, counts.post_relabel as f64, counts.series_added as f64];
    let mut result = result;
    for (series, v) in st.report.iter_mut().zip(values) {
        if let Err(e) = append_synthetic(app.as_mut(), series, t, v)
            && !e.is_per_sample()
            && result.is_ok()
        {
            result = Err(ScrapeError::Storage(e.to_string()));
        }
    }
    if let Err(e) = app.commit() {
        result = Err(ScrapeError::Storage(e.to_string()));
    }
    st.last_scrape = Some(t);
    release_body(&mut st.buf);
    record(ctx, target, &result, &counts, t, duration, body_bytes);
}

/// Parses and appends the body, on the blocking pool when it is large.
async fn process(
    ctx: &LoopCtx,
    st: &mut LoopState,
    target: &Arc<ScrapeTarget>,
    format: Format,
    t: i64,
    counts: &mut Counts,
) -> (Box<dyn Appender + Send>, Result<(), ScrapeError>) {
    // The cached series plus the synthetic ones: what this scrape most likely appends.
    let mut app = ctx.storage.appender_sized(st.cache.len() + REPORT_NAMES.len());
    if st.buf.len() < BLOCKING_BODY_BYTES {
        let r = st.cache.append(target, &st.buf, format, t, app.as_mut(), counts);
        return (app, r);
    }
    let mut cache = std::mem::take(&mut st.cache);
    let buf = std::mem::take(&mut st.buf);
    let tgt = Arc::clone(target);
    let mut c = Counts::default();
    let (cache, buf, app, r, c) = tokio::task::spawn_blocking(move || {
        let r = cache.append(&tgt, &buf, format, t, app.as_mut(), &mut c);
        (cache, buf, app, r, c)
    })
    .await
    .expect("scrape processing panicked");
    st.cache = cache;
    st.buf = buf;
    *counts = c;
    (app, r)
}

/// Reserves room for a body like the last one (plus 1/8 for growth), never past `limit`.
fn reserve_body(buf: &mut Vec<u8>, hint: usize, limit: usize) {
    let want = (hint + hint / 8).min(limit);
    if want > buf.capacity() {
        buf.clear();
        buf.reserve_exact(want);
    }
}

/// Frees the body buffer between scrapes unless it is small.
fn release_body(buf: &mut Vec<u8>) {
    if buf.capacity() > KEEP_BODY_BUFFER {
        *buf = Vec::new();
    } else {
        buf.clear();
    }
}

fn record(
    ctx: &LoopCtx,
    target: &ScrapeTarget,
    result: &Result<(), ScrapeError>,
    counts: &Counts,
    t: i64,
    duration: Duration,
    body_bytes: usize,
) {
    let m = &ctx.metrics;
    m.scrapes.fetch_add(1, Ordering::Relaxed);
    m.add_refused(&counts.refused);
    if let Err(e) = result {
        m.failed.fetch_add(1, Ordering::Relaxed);
        let counter = match e {
            ScrapeError::SampleLimit { .. } => Some(&m.exceeded_sample_limit),
            ScrapeError::BodyTooLarge { .. } => Some(&m.exceeded_body_size_limit),
            ScrapeError::LabelLimit { .. }
            | ScrapeError::LabelNameLength { .. }
            | ScrapeError::LabelValueLength { .. } => Some(&m.exceeded_label_limits),
            ScrapeError::Timeout { .. } => Some(&m.timeouts),
            _ => None,
        };
        if let Some(c) = counter {
            c.fetch_add(1, Ordering::Relaxed);
        }
        tracing::debug!(target = %target.url, reason = e.reason(), error = %e, "scrape failed");
    }
    let mut s = ctx.status.lock().expect("status lock");
    s.health = if result.is_ok() { Health::Up } else { Health::Down };
    s.last_error = result.as_ref().err().map(ToString::to_string).unwrap_or_default();
    s.last_scrape_ms = Some(t);
    s.last_scrape_duration = duration;
    s.scrapes += 1;
    s.last_samples_scraped = counts.scraped;
    s.last_body_bytes = body_bytes;
}

#[cfg(test)]
mod tests {
    use super::{KEEP_BODY_BUFFER, release_body, reserve_body};

    #[test]
    fn body_buffer_is_freed_between_scrapes_and_reserved_from_the_last_body() {
        let mut buf = Vec::new();
        reserve_body(&mut buf, 100_000, 1 << 20);
        assert!(buf.capacity() >= 112_500, "room for the last body and growth: {}", buf.capacity());
        buf.resize(100_000, b'x');
        release_body(&mut buf);
        assert_eq!(buf.capacity(), 0, "a large buffer is not held between scrapes");
        buf.reserve(100);
        release_body(&mut buf);
        assert!(buf.is_empty() && buf.capacity() > 0 && buf.capacity() <= KEEP_BODY_BUFFER, "a small one is kept");
    }

    #[test]
    fn body_reservation_never_passes_the_size_limit() {
        let mut buf = Vec::new();
        reserve_body(&mut buf, 5000, 4096);
        assert!(buf.capacity() >= 4096 && buf.capacity() < 5000, "{}", buf.capacity());
    }
}
