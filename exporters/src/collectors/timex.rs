//! `timex`: kernel clock discipline state from `adjtimex(2)` (node_exporter compatible).

use crate::prelude::*;

/// Catalog entry.
pub static DEF: Def = Def {
    name: "timex",
    default_enabled: true,
    help: "Exposes selected adjtimex(2) system call stats.",
    flags: &[],
    build: |_| Ok(Box::new(Timex)),
};

/// `TIME_ERROR`: the clock is not synchronised.
const TIME_ERROR: i32 = 5;
/// `STA_NANO`: offsets are in nanoseconds instead of microseconds.
const STA_NANO: i64 = 0x2000;
/// Scaled-ppm unit of `freq`, `ppsfreq` and `stabil` (ppm with a 16-bit fraction).
const PPM16FRAC: f64 = 1_000_000.0 * 65_536.0;

/// The `struct timex` fields the collector reports, as plain integers.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Clock {
    state: i32,
    offset: i64,
    freq: i64,
    maxerror: i64,
    esterror: i64,
    status: i64,
    constant: i64,
    tick: i64,
    ppsfreq: i64,
    jitter: i64,
    shift: i64,
    stabil: i64,
    jitcnt: i64,
    calcnt: i64,
    errcnt: i64,
    stbcnt: i64,
    tai: i64,
}

/// Reads the clock state without changing it (`modes = 0`).
#[allow(unsafe_code)]
fn adjtimex() -> std::io::Result<Clock> {
    // SAFETY: `libc::timex` is a plain C struct of integers for which all-zero bytes are a
    // valid value. `adjtimex` receives a pointer to this live, exclusively borrowed local for
    // the duration of the call only; with `modes == 0` the kernel only writes the struct and
    // changes nothing else. No pointer escapes the call.
    let (state, t) = unsafe {
        let mut t: libc::timex = std::mem::zeroed();
        let state = libc::adjtimex(&raw mut t);
        (state, t)
    };
    if state < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Clock {
        state,
        offset: t.offset,
        freq: t.freq,
        maxerror: t.maxerror,
        esterror: t.esterror,
        status: i64::from(t.status),
        constant: t.constant,
        tick: t.tick,
        ppsfreq: t.ppsfreq,
        jitter: t.jitter,
        shift: i64::from(t.shift),
        stabil: t.stabil,
        jitcnt: t.jitcnt,
        calcnt: t.calcnt,
        errcnt: t.errcnt,
        stbcnt: t.stbcnt,
        tai: i64::from(t.tai),
    })
}

/// Reports `node_timex_*`.
struct Timex;

/// Writes the metrics for a clock state (pure; unit-tested).
fn emit(c: &Clock, out: &mut Sink) {
    let divisor = if c.status & STA_NANO != 0 { 1e9 } else { 1e6 };
    let g = |out: &mut Sink, name: &str, help: &str, v: f64| out.gauge(name, help, v);
    g(
        out,
        "node_timex_offset_seconds",
        "Time offset in between local system and reference clock.",
        c.offset as f64 / divisor,
    );
    g(
        out,
        "node_timex_frequency_adjustment_ratio",
        "Local clock frequency adjustment.",
        1.0 + c.freq as f64 / PPM16FRAC,
    );
    g(out, "node_timex_maxerror_seconds", "Maximum error in seconds.", c.maxerror as f64 / 1e6);
    g(out, "node_timex_estimated_error_seconds", "Estimated error in seconds.", c.esterror as f64 / 1e6);
    g(out, "node_timex_status", "Value of the status array bits.", c.status as f64);
    g(out, "node_timex_loop_time_constant", "Phase-locked loop time constant.", c.constant as f64);
    g(out, "node_timex_tick_seconds", "Seconds between clock ticks.", c.tick as f64 / 1e6);
    g(out, "node_timex_pps_frequency_hertz", "Pulse per second frequency.", c.ppsfreq as f64 / PPM16FRAC);
    g(out, "node_timex_pps_jitter_seconds", "Pulse per second jitter.", c.jitter as f64 / divisor);
    g(out, "node_timex_pps_shift_seconds", "Pulse per second interval duration.", c.shift as f64);
    g(
        out,
        "node_timex_pps_stability_hertz",
        "Pulse per second stability, average of recent frequency changes.",
        c.stabil as f64 / PPM16FRAC,
    );
    out.counter(
        "node_timex_pps_jitter_total",
        "Pulse per second count of jitter limit exceeded events.",
        c.jitcnt as f64,
    );
    out.counter(
        "node_timex_pps_calibration_total",
        "Pulse per second count of calibration intervals.",
        c.calcnt as f64,
    );
    out.counter("node_timex_pps_error_total", "Pulse per second count of calibration errors.", c.errcnt as f64);
    out.counter(
        "node_timex_pps_stability_exceeded_total",
        "Pulse per second count of stability limit exceeded events.",
        c.stbcnt as f64,
    );
    g(out, "node_timex_tai_offset_seconds", "International Atomic Time (TAI) offset.", c.tai as f64);
    g(
        out,
        "node_timex_sync_status",
        "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
        if c.state == TIME_ERROR { 0.0 } else { 1.0 },
    );
}

impl Collector for Timex {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn collect(&self, out: &mut Sink) -> Result<(), CollectError> {
        match adjtimex() {
            Ok(c) => {
                emit(&c, out);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(CollectError::NoData),
            Err(e) => Err(CollectError::Other(format!("adjtimex: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_units_like_upstream() {
        let c =
            Clock { state: TIME_ERROR, offset: 1500, freq: 65_536, status: STA_NANO, tick: 10_000, ..Clock::default() };
        let mut sink = Sink::new();
        emit(&c, &mut sink);
        let v = |n: &str| sink.families().iter().find(|f| f.name == n).unwrap().samples[0].value;
        assert_eq!(v("node_timex_offset_seconds"), 1.5e-6);
        assert_eq!(v("node_timex_frequency_adjustment_ratio"), 1.000001);
        assert_eq!(v("node_timex_tick_seconds"), 0.01);
        assert_eq!(v("node_timex_sync_status"), 0.0);
        assert_eq!(sink.len(), 17);
    }

    #[test]
    fn reads_the_live_clock() {
        let c = adjtimex().unwrap();
        assert!(c.tick > 0, "{c:?}");
    }
}
