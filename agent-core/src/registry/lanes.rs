//! Lanes: a few blocking threads that drain a queue of collectors, with a per-collector
//! deadline enforced from the async side. Lanes report back once, when they finish, so a
//! scrape costs one thread hand-off per lane instead of one per collector.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::collector::{CollectError, Collector, Sink};

/// One collector to run in this scrape.
pub(super) struct Job {
    /// Index in the registry.
    pub idx: usize,
    /// The collector.
    pub collector: Arc<dyn Collector>,
    /// Cleared when the collector returns, even after its scrape gave up on it.
    pub busy: Arc<AtomicBool>,
}

/// What became of one job.
pub(super) struct Outcome {
    /// Index in the registry.
    pub idx: usize,
    /// Its output (`None` when it timed out or its thread failed).
    pub sink: Option<Sink>,
    /// Its result.
    pub result: Result<(), CollectError>,
    /// Wall time (the timeout when it timed out).
    pub duration: Duration,
}

/// What the lanes and the waiting scrape share.
struct Shared {
    jobs: Vec<Job>,
    state: Mutex<State>,
    /// Woken when a lane finishes.
    done: tokio::sync::Notify,
}

#[derive(Default)]
struct State {
    /// Next job to hand out.
    next: usize,
    /// Per lane: the job it runs and since when; whether the scrape gave up on it.
    lanes: Vec<Lane>,
    /// Finished jobs.
    outcomes: Vec<Outcome>,
}

#[derive(Default)]
struct Lane {
    current: Option<(usize, Instant)>,
    abandoned: bool,
}

/// Runs `jobs` on up to `lanes` lanes; returns when every job finished or timed out.
pub(super) async fn run(jobs: Vec<Job>, lanes: usize, timeout: Duration) -> Vec<Outcome> {
    let total = jobs.len();
    if total == 0 {
        return Vec::new();
    }
    let shared = Arc::new(Shared { jobs, state: Mutex::new(State::default()), done: tokio::sync::Notify::new() });
    for _ in 0..lanes.min(total) {
        spawn_lane(&shared);
    }
    let mut timed_out = Vec::new();
    loop {
        let deadline = {
            let mut st = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let mut stuck = Vec::new();
            for (lane_no, lane) in st.lanes.iter_mut().enumerate() {
                if let (false, Some((job, start))) = (lane.abandoned, lane.current)
                    && now.duration_since(start) >= timeout
                {
                    lane.abandoned = true;
                    stuck.push((lane_no, job));
                }
            }
            for &(_, job) in &stuck {
                timed_out.push(Outcome {
                    idx: shared.jobs[job].idx,
                    sink: None,
                    result: Err(CollectError::Other(format!("timed out after {}s", timeout.as_secs_f64()))),
                    duration: timeout,
                });
            }
            if st.outcomes.len() + timed_out.len() == total {
                let mut out = std::mem::take(&mut st.outcomes);
                out.append(&mut timed_out);
                return out;
            }
            let more_queued = st.next < total;
            drop(st);
            if more_queued {
                // Each abandoned lane is replaced so the queue keeps draining.
                for _ in &stuck {
                    spawn_lane(&shared);
                }
            }
            let st = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
            st.lanes.iter().filter(|l| !l.abandoned).filter_map(|l| l.current.map(|(_, s)| s + timeout)).min()
        };
        // A job that starts after this point has its deadline later than `now + timeout`.
        let wake = deadline.unwrap_or_else(|| Instant::now() + timeout);
        tokio::select! {
            () = shared.done.notified() => {}
            () = tokio::time::sleep_until(wake.into()) => {}
        }
    }
}

/// Starts one lane on the blocking pool.
fn spawn_lane(shared: &Arc<Shared>) {
    let shared = Arc::clone(shared);
    let lane_no = {
        let mut st = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.lanes.push(Lane::default());
        st.lanes.len() - 1
    };
    let handle = tokio::task::spawn_blocking(move || {
        lane(&shared, lane_no);
        shared.done.notify_one();
    });
    drop(handle);
}

/// The lane's loop: take the next job, run it, record it, until the queue is empty or the
/// scrape gave up on this lane.
fn lane(shared: &Shared, lane_no: usize) {
    loop {
        let job = {
            let mut st = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
            if st.lanes[lane_no].abandoned || st.next >= shared.jobs.len() {
                return;
            }
            let job = st.next;
            st.next += 1;
            st.lanes[lane_no].current = Some((job, Instant::now()));
            job
        };
        let Job { idx, collector, busy } = &shared.jobs[job];
        let start = Instant::now();
        let mut sink = Sink::new();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| collector.collect(&mut sink)))
            .unwrap_or_else(|_| Err(CollectError::Other("collector panicked".into())));
        let duration = start.elapsed();
        busy.store(false, Ordering::Release);
        let mut st = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.lanes[lane_no].current = None;
        if st.lanes[lane_no].abandoned {
            // Already reported as timed out; the scrape has moved on.
            return;
        }
        st.outcomes.push(Outcome { idx: *idx, sink: Some(sink), result, duration });
    }
}
