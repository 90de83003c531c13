//! Test helper for the crash-safety test: appends scrapes as fast as it can and prints
//! `committed K` after each commit returns, until it is killed.
//!
//! Usage: `osprey-tsdb-crash-writer DIR SERIES`. Scrape K has timestamp K*100 ms and value K
//! for every series; it resumes after the newest scrape found in DIR.

use std::io::Write;

use osprey_tsdb::{Db, Labels, Matcher, Options};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("usage: osprey-tsdb-crash-writer DIR SERIES");
    let n: usize = args.next().and_then(|s| s.parse().ok()).expect("SERIES must be a number");
    let opts =
        Options { block_range_ms: 10_000, maintenance_interval: None, retention_time_ms: None, ..Options::default() };
    let db = Db::open(&dir, opts).unwrap_or_else(|e| panic!("open {dir}: {e}"));
    let all = Matcher::new(osprey_tsdb::MatchOp::Re, "__name__", ".+").expect("matcher");
    let next = db
        .querier(i64::MIN, i64::MAX)
        .select(&[all])
        .iter()
        .filter_map(|s| s.samples().last())
        .map(|(t, _)| t / 100 + 1)
        .max()
        .unwrap_or(0);
    let labels: Vec<Labels> =
        (0..n).map(|i| Labels::from_pairs([("__name__", "crash_test"), ("i", &i.to_string())])).collect();
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready {next}").expect("stdout");
    out.flush().expect("flush");
    for k in next.. {
        let mut app = db.appender();
        for l in &labels {
            app.append(l, k * 100, k as f64).expect("append");
        }
        app.commit().expect("commit");
        writeln!(out, "committed {k}").expect("stdout");
        out.flush().expect("flush");
        if k % 64 == 0 {
            db.maintain().expect("maintain");
        }
    }
}
