//! Immutable blocks: `<ulid>/meta.json` and one memory-mapped `data` file.
//!
//! `data` layout: magic `OSPB`, version byte, 3 pad bytes; chunks (`encoding byte | bytes`),
//! and in version 2 the timestamp columns they share; the symbol table (sorted strings);
//! series entries (label refs and chunk metas, in label order; a series' id is its position)
//! with a table of their u32 offsets; postings (delta varint ids) per label pair; the postings
//! table; and a fixed 52-byte TOC whose CRC32C covers the whole file before it. The checksum is
//! verified when the block is opened.
//!
//! Version 1 series entries: label pairs as two symbol ids each; chunk metas as varint mint,
//! uvarint maxt - mint, uvarint file offset, uvarint length; one table offset per series.
//! Version 2 (written now): series in groups of 8 with one table offset per group; an entry's
//! labels are the number of leading pairs shared with the previous entry of its group, then
//! the others, each as its index in the postings table (sorted by name, value); chunk metas
//! as uvarint mint - block min time, uvarint maxt - mint, varint offset minus the end of the
//! previous chunk in the group (the group's first absolute: 0 when chunks were written in
//! label order, as a head cut and compaction do), uvarint length; packed
//! chunks refer to a timestamp column written once per distinct timestamp sequence (every
//! series of a scrape target shares one), instead of carrying their own timestamps.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use crate::block_read::GROUP;
use crate::chunk::bits::{put_uvarint, put_varint};
use crate::chunk::{Encoding, packed};
use crate::labels::Labels;

const MAGIC: &[u8; 4] = b"OSPB";
/// Format version written (versions 1 and 2 are read).
pub(crate) const VERSION: u8 = 2;
const TOC_LEN: usize = 6 * 8 + 4;
/// Most samples per chunk in a block.
pub const CHUNK_MAX_SAMPLES: usize = 8192;

/// Block statistics in `meta.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockStats {
    /// Series.
    pub num_series: u64,
    /// Samples.
    pub num_samples: u64,
    /// Chunks.
    pub num_chunks: u64,
    /// Bytes of the `data` file.
    pub num_bytes: u64,
}

/// Compaction lineage in `meta.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Compaction {
    /// 1 for a block cut from the head or imported, +1 per compaction.
    pub level: u32,
    /// ULIDs of the level-1 blocks merged into this one.
    pub sources: Vec<String>,
    /// Written by an importer (its range does not bound what the head accepts).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub imported: bool,
}

/// `meta.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockMeta {
    /// Block id.
    pub ulid: String,
    /// First timestamp covered (inclusive, ms).
    pub min_time: i64,
    /// End of the covered range (exclusive, ms).
    pub max_time: i64,
    /// Statistics.
    pub stats: BlockStats,
    /// Lineage.
    pub compaction: Compaction,
    /// Format version of the block.
    pub version: u32,
}

/// A new ULID string (ms timestamp + 80 bits derived from time, pid and a counter).
pub fn new_ulid() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(now.as_nanos());
    h.write_u32(std::process::id());
    h.write_u64(N.fetch_add(1, Ordering::Relaxed));
    let r1 = h.finish();
    h.write_u8(1);
    let r2 = h.finish();
    let v: u128 = (u128::from(now.as_millis() as u64 & 0xffff_ffff_ffff) << 80)
        | (u128::from(r1) << 16)
        | u128::from(r2 & 0xffff);
    const ALPHA: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    (0..26).map(|i| ALPHA[((v >> (125 - i * 5)) & 31) as usize] as char).collect()
}

/// Whether `name` looks like a ULID block directory.
pub fn is_ulid(name: &str) -> bool {
    name.len() == 26 && name.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

struct CrcWriter<W: Write> {
    w: W,
    crc: u32,
    pos: u64,
}

impl<W: Write> CrcWriter<W> {
    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.w.write_all(b)?;
        self.crc = crc32c::crc32c_append(self.crc, b);
        self.pos += b.len() as u64;
        Ok(())
    }
}

struct SeriesEntry {
    labels: Labels,
    chunks: Vec<(i64, i64, u64, u32)>,
}

/// Writes a block for `[min_time, max_time)` from series given in any order, each with
/// time-ordered samples (samples outside the range are dropped). Returns `None` when no
/// samples remained.
pub fn write_block(
    parent: &Path,
    min_time: i64,
    max_time: i64,
    compaction: Compaction,
    series: impl IntoIterator<Item = (Labels, Vec<(i64, f64)>)>,
) -> io::Result<Option<BlockMeta>> {
    let ulid = new_ulid();
    let tmp = parent.join(format!("{ulid}.tmp-for-creation"));
    let res = write_block_in(&tmp, &ulid, min_time, max_time, compaction, series);
    match res {
        Ok(Some(meta)) => {
            fs::rename(&tmp, parent.join(&ulid))?;
            File::open(parent)?.sync_all()?;
            Ok(Some(meta))
        }
        other => {
            let _ = fs::remove_dir_all(&tmp);
            other.map_err(|e| io::Error::new(e.kind(), format!("writing block {}: {e}", tmp.display())))
        }
    }
}

fn write_block_in(
    dir: &Path,
    ulid: &str,
    min_time: i64,
    max_time: i64,
    mut compaction: Compaction,
    series: impl IntoIterator<Item = (Labels, Vec<(i64, f64)>)>,
) -> io::Result<Option<BlockMeta>> {
    fs::create_dir_all(dir)?;
    let file = File::create(dir.join("data"))?;
    let mut w = CrcWriter { w: BufWriter::with_capacity(1 << 20, file), crc: 0, pos: 0 };
    w.put(MAGIC)?;
    w.put(&[VERSION, 0, 0, 0])?;
    let mut entries = Vec::new();
    let mut stats = BlockStats::default();
    let (mut ts, mut vs) = (Vec::new(), Vec::new());
    // Distinct timestamp columns written so far, with their offsets.
    let mut columns: HashMap<Vec<u8>, u64> = HashMap::new();
    for (labels, samples) in series {
        let mut chunks = Vec::new();
        let inside = samples.into_iter().filter(|s| s.0 >= min_time && s.0 < max_time);
        ts.clear();
        vs.clear();
        for (t, v) in inside {
            ts.push(t);
            vs.push(v);
        }
        for (ct, cv) in ts.chunks(CHUNK_MAX_SAMPLES).zip(vs.chunks(CHUNK_MAX_SAMPLES)) {
            let col = packed::encode_ts_column(ct);
            let col_off = if let Some(&o) = columns.get(&col) {
                o
            } else {
                let o = w.pos;
                w.put(&col)?;
                columns.insert(col, o);
                o
            };
            let off = w.pos;
            let enc = packed::encode_shared(off + 1 - col_off, cv);
            w.put(&[Encoding::Packed as u8])?;
            w.put(&enc)?;
            chunks.push((ct[0], ct[ct.len() - 1], off, enc.len() as u32 + 1));
            stats.num_chunks += 1;
            stats.num_samples += ct.len() as u64;
        }
        if !chunks.is_empty() {
            entries.push(SeriesEntry { labels, chunks });
        }
    }
    drop(columns);
    if entries.is_empty() {
        return Ok(None);
    }
    entries.sort_by(|a, b| a.labels.cmp(&b.labels));
    stats.num_series = entries.len() as u64;

    let mut syms: BTreeSet<&str> = BTreeSet::new();
    for e in &entries {
        for (n, v) in e.labels.iter() {
            syms.insert(n);
            syms.insert(v);
        }
    }
    let sym_ids: HashMap<&str, u32> = syms.iter().enumerate().map(|(i, s)| (*s, i as u32)).collect();
    let symbols_off = w.pos;
    let mut buf = Vec::new();
    put_uvarint(&mut buf, syms.len() as u64);
    for s in &syms {
        put_uvarint(&mut buf, s.len() as u64);
        buf.extend_from_slice(s.as_bytes());
    }
    w.put(&buf)?;

    // Postings per label pair; a pair's index in this (sorted) map is its reference.
    let mut post: BTreeMap<(u32, u32), Vec<u32>> = BTreeMap::new();
    for (id, e) in entries.iter().enumerate() {
        for (n, v) in e.labels.iter() {
            post.entry((sym_ids[n], sym_ids[v])).or_default().push(id as u32);
        }
    }
    let pair_ids: HashMap<(u32, u32), u32> = post.keys().enumerate().map(|(i, k)| (*k, i as u32)).collect();

    let series_off = w.pos;
    let mut table = Vec::with_capacity(entries.len().div_ceil(GROUP) * 4);
    let (mut refs, mut prev): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
    let mut expected_off = 0u64;
    for (id, e) in entries.iter().enumerate() {
        refs.clear();
        refs.extend(e.labels.iter().map(|(n, v)| pair_ids[&(sym_ids[n], sym_ids[v])]));
        let shared = if id % GROUP == 0 {
            table.extend_from_slice(&((w.pos - series_off) as u32).to_le_bytes());
            expected_off = 0;
            0
        } else {
            refs.iter().zip(&prev).take_while(|(a, b)| a == b).count()
        };
        buf.clear();
        put_uvarint(&mut buf, shared as u64);
        put_uvarint(&mut buf, (refs.len() - shared) as u64);
        for &r in &refs[shared..] {
            put_uvarint(&mut buf, u64::from(r));
        }
        put_uvarint(&mut buf, e.chunks.len() as u64);
        for &(mint, maxt, off, len) in &e.chunks {
            put_uvarint(&mut buf, (mint - min_time) as u64);
            put_uvarint(&mut buf, (maxt - mint) as u64);
            put_varint(&mut buf, off.wrapping_sub(expected_off) as i64);
            put_uvarint(&mut buf, u64::from(len));
            expected_off = off + u64::from(len);
        }
        w.put(&buf)?;
        std::mem::swap(&mut refs, &mut prev);
    }
    let table_off = w.pos;
    w.put(&table)?;

    let postings_off = w.pos;
    let mut ptable = Vec::new();
    put_uvarint(&mut ptable, post.len() as u64);
    for ((n, v), ids) in &post {
        put_uvarint(&mut ptable, u64::from(*n));
        put_uvarint(&mut ptable, u64::from(*v));
        put_uvarint(&mut ptable, w.pos - postings_off);
        buf.clear();
        put_uvarint(&mut buf, ids.len() as u64);
        let mut prev = 0;
        for &id in ids {
            put_uvarint(&mut buf, u64::from(id - prev));
            prev = id;
        }
        w.put(&buf)?;
    }
    let ptable_off = w.pos;
    w.put(&ptable)?;
    let mut toc = Vec::with_capacity(TOC_LEN);
    for x in [symbols_off, series_off, table_off, entries.len() as u64, postings_off, ptable_off] {
        toc.extend_from_slice(&x.to_le_bytes());
    }
    w.put(&toc)?;
    let crc = w.crc;
    w.w.write_all(&crc.to_le_bytes())?;
    stats.num_bytes = w.pos + 4;
    let file = w.w.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.sync_all()?;
    let meta = BlockMeta {
        ulid: ulid.to_owned(),
        min_time,
        max_time,
        stats,
        compaction: {
            if compaction.sources.is_empty() {
                compaction.sources.push(ulid.to_owned());
            }
            compaction
        },
        version: u32::from(VERSION),
    };
    let json = serde_json::to_vec_pretty(&meta).map_err(io::Error::other)?;
    let mf = File::create(dir.join("meta.json"))?;
    (&mf).write_all(&json)?;
    mf.sync_all()?;
    File::open(dir)?.sync_all()?;
    Ok(Some(meta))
}

/// Why a block could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// I/O failure.
    #[error("block {0}: {1}")]
    Io(PathBuf, io::Error),
    /// Checksum or structure mismatch: the block is corrupted.
    #[error("block {0} is corrupted: {1}")]
    Corrupt(PathBuf, String),
}

/// An open, memory-mapped block.
pub struct Block {
    /// Directory.
    pub dir: PathBuf,
    /// Parsed `meta.json`.
    pub meta: BlockMeta,
    pub(crate) map: Arc<Mmap>,
    pub(crate) symbols: Vec<(u32, u32)>,
    pub(crate) series_off: usize,
    pub(crate) table_off: usize,
    pub(crate) nseries: usize,
    pub(crate) postings_off: usize,
    pub(crate) postings: BTreeMap<u32, Vec<(u32, usize)>>,
    /// Label pairs (name, value symbol ids) in postings-table order (version 2 label refs).
    pub(crate) pairs: Vec<(u32, u32)>,
}
