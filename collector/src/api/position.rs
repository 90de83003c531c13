//! Prometheus-style `line:col: parse error: …` prefixes (shared with rule-file checks).

pub use osprey_promql::position::with_position;
