//! Logging setup shared by the binaries: `--log.level` and `--log.format logfmt|json`, to
//! stderr. logfmt lines look like Prometheus' own:
//! `ts=2026-01-02T03:04:05.678Z level=info msg="listening" address=127.0.0.1:9100`.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// `key=value` pairs, one event per line.
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber (once; later calls are ignored).
pub fn init(level: Level, format: LogFormat) {
    let builder = tracing_subscriber::fmt().with_max_level(level).with_writer(std::io::stderr).with_ansi(false);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Logfmt => builder.event_format(Logfmt).try_init(),
    };
}

/// A logfmt event formatter.
pub struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        write!(w, "ts=")?;
        write_rfc3339(&mut w, now)?;
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warn",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        write!(w, " level={level}")?;
        let mut v = LogfmtVisitor { w: &mut w, res: Ok(()) };
        event.record(&mut v);
        v.res?;
        writeln!(w)
    }
}

struct LogfmtVisitor<'a, 'b> {
    w: &'a mut Writer<'b>,
    res: fmt::Result,
}

impl Visit for LogfmtVisitor<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.res.is_ok() {
            self.res = write_pair(self.w, field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.res.is_ok() {
            self.res = write_pair(self.w, field.name(), &format!("{value:?}"));
        }
    }
}

fn write_pair(w: &mut Writer<'_>, key: &str, value: &str) -> fmt::Result {
    let key = if key == "message" { "msg" } else { key };
    write!(w, " {key}=")?;
    if !value.is_empty() && !value.contains(|c: char| c.is_whitespace() || c == '"' || c == '=' || c.is_control()) {
        return w.write_str(value);
    }
    w.write_char('"')?;
    for c in value.chars() {
        match c {
            '"' => w.write_str("\\\"")?,
            '\\' => w.write_str("\\\\")?,
            '\n' => w.write_str("\\n")?,
            c => w.write_char(c)?,
        }
    }
    w.write_char('"')
}

/// Writes a UTC timestamp with milliseconds (civil-from-days, no time-zone database needed).
fn write_rfc3339(w: &mut impl fmt::Write, since_epoch: std::time::Duration) -> fmt::Result {
    let secs = since_epoch.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = crate::calendar::civil_from_days(days as i64);
    write!(
        w,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since_epoch.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let mut s = String::new();
        write_rfc3339(&mut s, std::time::Duration::from_millis(1_700_000_000_123)).unwrap();
        assert_eq!(s, "2023-11-14T22:13:20.123Z");
    }
}
