//! `tsdb analyze`: per-block series, samples and bytes per sample, and label cardinality.

use std::fmt;
use std::io;
use std::path::Path;

use crate::block::Block;
use crate::db::{Counters, load_blocks};

/// One block's figures.
#[derive(Debug, Clone)]
pub struct BlockReport {
    /// Block id.
    pub ulid: String,
    /// Range start (ms).
    pub min_time: i64,
    /// Range end (ms, exclusive).
    pub max_time: i64,
    /// Series.
    pub series: u64,
    /// Samples.
    pub samples: u64,
    /// Chunks.
    pub chunks: u64,
    /// Bytes of the data file.
    pub bytes: u64,
    /// Bytes of chunk data alone.
    pub chunk_bytes: u64,
    /// Label names by number of distinct values, highest first.
    pub label_cardinality: Vec<(String, usize)>,
}

impl BlockReport {
    /// Total bytes per sample.
    pub fn bytes_per_sample(&self) -> f64 {
        if self.samples == 0 { 0.0 } else { self.bytes as f64 / self.samples as f64 }
    }
}

/// The whole report.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Blocks, oldest first.
    pub blocks: Vec<BlockReport>,
    /// Blocks found corrupted (moved aside) while loading.
    pub corrupted: u64,
}

impl Report {
    /// Bytes per sample over all blocks.
    pub fn bytes_per_sample(&self) -> f64 {
        let (b, s) = self.blocks.iter().fold((0u64, 0u64), |a, r| (a.0 + r.bytes, a.1 + r.samples));
        if s == 0 { 0.0 } else { b as f64 / s as f64 }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<26} {:>14} {:>14} {:>9} {:>11} {:>11} {:>8}",
            "block", "min_time", "max_time", "series", "samples", "bytes", "B/sample"
        )?;
        for b in &self.blocks {
            writeln!(
                f,
                "{:<26} {:>14} {:>14} {:>9} {:>11} {:>11} {:>8.3}",
                b.ulid,
                b.min_time,
                b.max_time,
                b.series,
                b.samples,
                b.bytes,
                b.bytes_per_sample()
            )?;
        }
        writeln!(f, "total bytes per sample: {:.3}", self.bytes_per_sample())?;
        if let Some(last) = self.blocks.last() {
            writeln!(f, "label cardinality (newest block):")?;
            for (n, c) in last.label_cardinality.iter().take(20) {
                writeln!(f, "  {c:>8} {n}")?;
            }
        }
        if self.corrupted > 0 {
            writeln!(f, "corrupted blocks moved aside: {}", self.corrupted)?;
        }
        Ok(())
    }
}

fn report_block(b: &Block) -> BlockReport {
    let mut label_cardinality = b.label_cardinality();
    label_cardinality.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    BlockReport {
        ulid: b.meta.ulid.clone(),
        min_time: b.meta.min_time,
        max_time: b.meta.max_time,
        series: b.meta.stats.num_series,
        samples: b.meta.stats.num_samples,
        chunks: b.meta.stats.num_chunks,
        bytes: b.meta.stats.num_bytes,
        chunk_bytes: b.chunks_end() as u64,
        label_cardinality,
    }
}

/// `tsdb analyze`: reads every block of `data_dir` (taking the directory lock).
pub fn analyze(data_dir: &Path) -> io::Result<Report> {
    let _lock = crate::db::lock_for_tool(data_dir).map_err(|e| io::Error::other(e.to_string()))?;
    let counters = Counters::default();
    let blocks = load_blocks(data_dir, &counters)?;
    Ok(Report {
        blocks: blocks.iter().map(|b| report_block(b)).collect(),
        corrupted: counters.corrupted_blocks.load(std::sync::atomic::Ordering::Relaxed),
    })
}
