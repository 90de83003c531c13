//! Rate-limited warnings: failed logins and handshakes can arrive thousands of times a second
//! from a scanner; one line per interval (with the count of lines left out) keeps the journal
//! readable and the agent cheap.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lets one event through per `interval` and counts the ones held back.
#[derive(Debug)]
pub struct RateLog {
    interval: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLog {
    /// A limiter letting one event through per `interval`.
    pub const fn new(interval: Duration) -> Self {
        Self { interval, state: Mutex::new((None, 0)) }
    }

    /// `Some(n)` when the event at `now` should be logged, `n` being how many were held back
    /// since the last logged one; `None` when it should be dropped.
    pub fn allow(&self, now: Instant) -> Option<u64> {
        let mut st = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match st.0 {
            Some(last) if now.saturating_duration_since(last) < self.interval => {
                st.1 += 1;
                None
            }
            _ => {
                let held = st.1;
                *st = (Some(now), 0);
                Some(held)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_held_back_count() {
        let log = RateLog::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(log.allow(t0), Some(0));
        assert_eq!(log.allow(t0 + Duration::from_secs(1)), None);
        assert_eq!(log.allow(t0 + Duration::from_secs(9)), None);
        assert_eq!(log.allow(t0 + Duration::from_secs(10)), Some(2));
        assert_eq!(log.allow(t0 + Duration::from_secs(11)), None);
    }
}
