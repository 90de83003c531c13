//! Shared helpers for the tsdb tests.
#![allow(dead_code)]

use std::path::PathBuf;

use osprey_tsdb::{Db, Labels, Matcher, Options};

/// A fresh temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("osprey-tsdb-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Options for tests: small blocks, no background thread.
pub fn test_opts(block_range_ms: i64) -> Options {
    Options {
        block_range_ms,
        maintenance_interval: None,
        retention_time_ms: None,
        replay_threads: 2,
        ..Options::default()
    }
}

pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

/// Every series and its samples (value bits) in `[mint, maxt]`.
pub fn dump(db: &Db, mint: i64, maxt: i64) -> Vec<(Labels, Vec<(i64, u64)>)> {
    let q = db.querier(mint, maxt);
    q.select(&[Matcher::new(osprey_tsdb::MatchOp::Re, "__name__", ".+").expect("matcher")])
        .into_iter()
        .map(|s| {
            let v: Vec<(i64, u64)> = s.samples().map(|(t, v)| (t, v.to_bits())).collect();
            (s.labels.clone(), v)
        })
        .filter(|(_, v)| !v.is_empty())
        .collect()
}
