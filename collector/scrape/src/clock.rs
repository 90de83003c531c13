//! Time as the scrape loops see it: the wall clock in milliseconds and a way to sleep until a
//! moment. Production uses [`RealClock`]; tests drive [`ManualClock`] by hand, so schedules
//! and timeouts are checked without sleeping.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;

/// A boxed, sendable future.
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The source of time for scheduling, timeouts and sample timestamps.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
    /// Completes once [`Clock::now_ms`] has reached `t_ms`.
    fn sleep_until(&self, t_ms: i64) -> BoxFuture;
}

/// The system clock, sleeping with tokio's timer.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealClock;

impl Clock for RealClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
    }

    fn sleep_until(&self, t_ms: i64) -> BoxFuture {
        let wait = (t_ms - self.now_ms()).max(0) as u64;
        Box::pin(tokio::time::sleep(Duration::from_millis(wait)))
    }
}

#[derive(Default)]
struct ManualInner {
    now: i64,
    waiters: Vec<(i64, oneshot::Sender<()>)>,
}

/// A clock that moves only when told to ([`ManualClock::advance`]); sleepers wake when the
/// time they wait for is reached.
#[derive(Clone, Default)]
pub struct ManualClock {
    inner: Arc<Mutex<ManualInner>>,
}

impl ManualClock {
    /// A clock showing `start_ms`.
    pub fn new(start_ms: i64) -> Self {
        Self { inner: Arc::new(Mutex::new(ManualInner { now: start_ms, waiters: Vec::new() })) }
    }

    /// Moves the clock forward by `ms` and wakes every sleeper whose time has come.
    pub fn advance(&self, ms: i64) {
        let mut inner = self.inner.lock().expect("clock lock");
        inner.now += ms;
        let now = inner.now;
        let (due, later): (Vec<_>, Vec<_>) = inner.waiters.drain(..).partition(|(t, _)| *t <= now);
        inner.waiters = later;
        drop(inner);
        for (_, tx) in due {
            let _ = tx.send(());
        }
    }

    /// How many sleepers are waiting (dropped sleepers count until the next advance).
    pub fn sleepers(&self) -> usize {
        self.inner.lock().expect("clock lock").waiters.iter().filter(|(_, tx)| !tx.is_closed()).count()
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.inner.lock().expect("clock lock").now
    }

    fn sleep_until(&self, t_ms: i64) -> BoxFuture {
        let mut inner = self.inner.lock().expect("clock lock");
        if t_ms <= inner.now {
            return Box::pin(std::future::ready(()));
        }
        let (tx, rx) = oneshot::channel();
        inner.waiters.push((t_ms, tx));
        Box::pin(async move {
            // A dropped clock never wakes its sleepers.
            if rx.await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_in_time_order() {
        let c = ManualClock::new(1000);
        let early = tokio::spawn(c.sleep_until(1500));
        let late = tokio::spawn(c.sleep_until(3000));
        tokio::task::yield_now().await;
        assert_eq!(c.sleepers(), 2);
        c.advance(500);
        early.await.unwrap();
        assert!(!late.is_finished());
        assert_eq!(c.sleepers(), 1);
        c.advance(1500);
        late.await.unwrap();
        assert_eq!(c.now_ms(), 3000);
        // A time in the past completes at once.
        c.sleep_until(10).await;
    }
}
