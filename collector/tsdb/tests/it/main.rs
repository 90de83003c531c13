//! osprey-tsdb's test binary: behaviour, model check, imports against promtool, crash safety.
#![allow(missing_docs)]

mod block_format;
mod common;
mod crash;
mod db;
mod import;
mod model;
