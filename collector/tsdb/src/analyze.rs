//! `tsdb analyze`: per-block series, samples and bytes per sample, and label cardinality.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::Path;

use crate::block::Block;
pub use crate::block_read::Sections;
use crate::chunk::{Encoding, packed};
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
    /// Where the bytes go.
    pub breakdown: Breakdown,
}

/// Chunks, samples and bits of one encoding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodingUse {
    /// Chunks.
    pub chunks: u64,
    /// Samples.
    pub samples: u64,
    /// Bits (header fields and stream).
    pub bits: u64,
}

impl EncodingUse {
    fn add(&mut self, o: &Self) {
        self.chunks += o.chunks;
        self.samples += o.samples;
        self.bits += o.bits;
    }
}

/// A block's bytes by section and its chunks' bits by encoding.
#[derive(Debug, Clone, Default)]
pub struct Breakdown {
    /// Section sizes.
    pub sections: Sections,
    /// Bytes of the series entries' label references (the rest of the entries is chunk metas).
    pub series_label_bytes: u64,
    /// Bytes of per-chunk overhead: encoding byte, packed tag and sample count.
    pub chunk_overhead_bytes: u64,
    /// Shared timestamp columns (version 2 blocks) and their bytes.
    pub columns: u64,
    /// Bytes of the shared timestamp columns.
    pub column_bytes: u64,
    /// Timestamp bits by encoding (`regular`, `dod`).
    pub timestamps: BTreeMap<String, EncodingUse>,
    /// Value bits by encoding (`const`, `int k=3 o=1`, `xor`).
    pub values: BTreeMap<String, EncodingUse>,
}

impl Breakdown {
    /// The breakdown of one block.
    pub fn of(b: &Block) -> Self {
        let (chunks, series_label_bytes) = b.raw_chunks();
        let mut out = Self { sections: b.sections(), series_label_bytes, ..Self::default() };
        let mut columns = std::collections::HashSet::new();
        let mut chunk_bytes = 0u64;
        for (off, c) in chunks {
            out.chunk_overhead_bytes += 1;
            chunk_bytes += c.len() as u64;
            let Some(l) = c
                .split_first()
                .filter(|(e, _)| Encoding::from_u8(**e) == Some(Encoding::Packed))
                .and_then(|(_, d)| packed::layout(d))
            else {
                out.values.entry("other".into()).or_default().add(&EncodingUse {
                    chunks: 1,
                    samples: 0,
                    bits: 8 * c.len() as u64 - 8,
                });
                continue;
            };
            out.chunk_overhead_bytes += l.common_bits / 8;
            if let Some(back) = l.column_back {
                columns.insert((off + 1).wrapping_sub(back as usize));
            }
            let n = l.samples as u64;
            out.timestamps.entry(l.ts_encoding.into()).or_default().add(&EncodingUse {
                chunks: 1,
                samples: n,
                bits: l.ts_bits,
            });
            let v = if l.scale_order.1 > 0 {
                format!("{} k={} o={}", l.value_encoding, l.scale_order.0, l.scale_order.1)
            } else {
                l.value_encoding.to_owned()
            };
            out.values.entry(v).or_default().add(&EncodingUse { chunks: 1, samples: n, bits: l.value_bits });
        }
        // Whatever of the chunk section is not chunks (nor the 8-byte file header) is columns.
        out.column_bytes = out.sections.chunks.saturating_sub(8 + chunk_bytes);
        out.columns = columns.len() as u64;
        out
    }

    fn add(&mut self, o: &Self) {
        let (s, t) = (&mut self.sections, &o.sections);
        s.chunks += t.chunks;
        s.symbols += t.symbols;
        s.series += t.series;
        s.series_table += t.series_table;
        s.postings += t.postings;
        s.postings_table += t.postings_table;
        s.toc += t.toc;
        self.series_label_bytes += o.series_label_bytes;
        self.chunk_overhead_bytes += o.chunk_overhead_bytes;
        self.column_bytes += o.column_bytes;
        self.columns += o.columns;
        for (k, v) in &o.timestamps {
            self.timestamps.entry(k.clone()).or_default().add(v);
        }
        for (k, v) in &o.values {
            self.values.entry(k.clone()).or_default().add(v);
        }
    }
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
        let mut all = Breakdown::default();
        for b in &self.blocks {
            all.add(&b.breakdown);
        }
        let samples: u64 = self.blocks.iter().map(|b| b.samples).sum();
        if samples > 0 {
            let per = |bytes: u64| bytes as f64 / samples as f64;
            let s = &all.sections;
            writeln!(f, "bytes by section (all blocks), in B/sample:")?;
            let payload = s.chunks - all.chunk_overhead_bytes - all.column_bytes;
            let columns = format!("timestamp columns ({})", all.columns);
            for (name, bytes) in [
                ("chunk payload", payload),
                (columns.as_str(), all.column_bytes),
                ("chunk overhead (encoding, tag, count)", all.chunk_overhead_bytes),
                ("symbols", s.symbols),
                ("series labels", all.series_label_bytes),
                ("series chunk metas", s.series - all.series_label_bytes),
                ("series table", s.series_table),
                ("postings", s.postings),
                ("postings table", s.postings_table),
            ] {
                writeln!(f, "  {name:<38} {bytes:>12} {:>8.3}", per(bytes))?;
            }
            writeln!(f, "chunk bits by encoding: chunks, samples, bytes, bits/sample, share of all samples:")?;
            for (kind, map) in [("timestamps", &all.timestamps), ("values", &all.values)] {
                for (name, u) in map {
                    let bps = if u.samples == 0 { 0.0 } else { u.bits as f64 / u.samples as f64 };
                    writeln!(
                        f,
                        "  {kind:<10} {name:<12} {:>9} {:>11} {:>11} {bps:>7.2} {:>6.1}%",
                        u.chunks,
                        u.samples,
                        u.bits / 8,
                        100.0 * u.samples as f64 / samples as f64
                    )?;
                }
            }
        }
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
        breakdown: Breakdown::of(b),
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
