//! Why a scrape failed. The `Display` text is the target's `lastError`.

use std::time::Duration;

/// Which exposition format a body was parsed as.
pub use agent_core::encode::Format;

/// A failed scrape: the target reports `up 0` and this as `lastError`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScrapeError {
    /// The request could not be made or the response not read (connection refused, reset,
    /// TLS, too many redirects, …).
    #[error("Get \"{url}\": {cause}")]
    Http {
        /// The URL (without credentials).
        url: String,
        /// The error and its causes, outermost first.
        cause: String,
    },
    /// No complete response within the scrape timeout.
    #[error("Get \"{url}\": scrape timed out after {timeout:?} (scrape_timeout)")]
    Timeout {
        /// The URL.
        url: String,
        /// The timeout in force.
        timeout: Duration,
    },
    /// A status other than 200.
    #[error("server returned HTTP status {0}")]
    Status(String),
    /// The uncompressed body is larger than `body_size_limit`.
    #[error("body size limit exceeded: the uncompressed response body is larger than {limit} bytes (body_size_limit)")]
    BodyTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// The body says gzip but does not decompress.
    #[error("decompressing the gzip response body: {0}")]
    Gzip(String),
    /// The exposition does not parse.
    #[error("parsing the {format} exposition: {error}")]
    Parse {
        /// `text format 0.0.4` or `OpenMetrics`.
        format: &'static str,
        /// The parser's error (line, column, what was expected).
        error: Box<agent_core::parse::ParseError>,
    },
    /// More samples than `sample_limit` after metric relabeling.
    #[error("sample_limit exceeded: {samples} samples after metric relabeling, limit {limit}")]
    SampleLimit {
        /// Samples in the scrape (at least this many).
        samples: usize,
        /// The limit.
        limit: usize,
    },
    /// A series with more labels than `label_limit`.
    #[error("label_limit exceeded (metric: {metric}, number of labels: {count}, limit: {limit})")]
    LabelLimit {
        /// The series' name (truncated).
        metric: String,
        /// Its number of labels.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A label name longer than `label_name_length_limit`.
    #[error("label_name_length_limit exceeded (metric: {metric}, label name: {name}, length: {len}, limit: {limit})")]
    LabelNameLength {
        /// The series' name (truncated).
        metric: String,
        /// The label name (truncated).
        name: String,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A label value longer than `label_value_length_limit`.
    #[error(
        "label_value_length_limit exceeded (metric: {metric}, label name: {name}, value: {value:?}, length: {len}, limit: {limit})"
    )]
    LabelValueLength {
        /// The series' name (truncated).
        metric: String,
        /// The label name (truncated).
        name: String,
        /// The start of the value.
        value: String,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The same series twice in one exposition (without explicit timestamps).
    #[error("duplicate series in the exposition: {0} appears more than once")]
    DuplicateSeries(String),
    /// Metric relabeling removed `__name__`.
    #[error("series {0} has no __name__ label after metric relabeling")]
    MissingName(String),
    /// The storage refused the scrape.
    #[error("{0}")]
    Storage(String),
    /// The scrape was not attempted: the target's pool is in error (Prometheus' "forced
    /// error", e.g. `target_limit exceeded (…)`), see [`crate::ScrapeTarget::forced_error`].
    #[error("{0}")]
    Forced(String),
}

impl ScrapeError {
    /// A short reason code for self-metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Http { .. } => "http",
            Self::Timeout { .. } => "timeout",
            Self::Status(_) => "status",
            Self::BodyTooLarge { .. } => "body_size_limit",
            Self::Gzip(_) => "gzip",
            Self::Parse { .. } => "parse",
            Self::SampleLimit { .. } => "sample_limit",
            Self::LabelLimit { .. } => "label_limit",
            Self::LabelNameLength { .. } => "label_name_length_limit",
            Self::LabelValueLength { .. } => "label_value_length_limit",
            Self::DuplicateSeries(_) => "duplicate_series",
            Self::MissingName(_) => "missing_name",
            Self::Storage(_) => "storage",
            Self::Forced(_) => "forced",
        }
    }
}

/// The first `n` characters of `s` (as Prometheus' `%.50s`).
pub(crate) fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Labels in the exposition's notation, `name{a="b"}`, truncated to 200 characters.
pub(crate) fn series_string(labels: &[(String, String)]) -> String {
    let mut name = "";
    let mut rest = Vec::new();
    for (n, v) in labels {
        if n == "__name__" {
            name = v;
        } else {
            rest.push(format!("{n}={v:?}"));
        }
    }
    let s = if rest.is_empty() { name.to_owned() } else { format!("{name}{{{}}}", rest.join(",")) };
    truncate(&s, 200)
}

/// The name of `format` for messages.
pub(crate) fn format_name(format: Format) -> &'static str {
    match format {
        Format::Text => "text format 0.0.4",
        Format::OpenMetrics => "OpenMetrics",
    }
}
