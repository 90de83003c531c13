//! Reading blocks: open with checksum verification, symbol and postings lookup, selection.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;

use crate::block::{Block, BlockError, BlockMeta};
use crate::chunk::Encoding;
use crate::chunk::bits::{get_uvarint, get_varint};
use crate::labels::Labels;
use crate::matcher::Matcher;
use crate::postings;
use crate::query::ChunkData;

const TOC_LEN: usize = 6 * 8 + 4;
/// Series per group in version 2: the series table holds one offset per group, and an entry's
/// labels share a prefix with the previous entry's in its group.
pub(crate) const GROUP: usize = 8;

/// A parsed series entry.
struct Entry {
    /// (name, value) symbol ids.
    labels: Vec<(u32, u32)>,
    /// (mint, maxt, offset, length) per chunk.
    chunks: Vec<(i64, i64, usize, usize)>,
    /// Bytes of the label references.
    label_bytes: usize,
}

fn corrupt(dir: &Path, what: &str) -> BlockError {
    BlockError::Corrupt(dir.to_path_buf(), what.to_owned())
}

#[allow(unsafe_code)]
fn map_file(f: &File) -> std::io::Result<Mmap> {
    // SAFETY: block files are written once to a temporary directory, fsync'd and renamed
    // into place; nothing in this program writes to or truncates them afterwards (deletion
    // only unlinks, which keeps the mapping valid). Another process truncating the file would
    // be outside the data directory's contract (it is locked while we run).
    unsafe { Mmap::map(f) }
}

/// CRC32C of the first `len` bytes of `f`, read with `pread` rather than through the mapping:
/// verifying through the map would make every page of the block resident in this process
/// (RSS) until the kernel reclaims it; pages read this way stay in the page cache only.
fn file_crc(f: &File, len: usize) -> std::io::Result<u32> {
    use std::os::unix::fs::FileExt as _;
    let mut buf = vec![0u8; (1 << 18).min(len.max(1))];
    let (mut crc, mut off) = (0, 0);
    while off < len {
        let want = (len - off).min(buf.len());
        let n = f.read_at(&mut buf[..want], off as u64)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        off += n;
    }
    Ok(crc)
}

impl Block {
    /// Opens and verifies the block in `dir`.
    pub fn open(dir: &Path) -> Result<Self, BlockError> {
        let io = |e| BlockError::Io(dir.to_path_buf(), e);
        let meta_raw = fs::read(dir.join("meta.json")).map_err(io)?;
        let meta: BlockMeta =
            serde_json::from_slice(&meta_raw).map_err(|e| corrupt(dir, &format!("meta.json: {e}")))?;
        if !(1..=u32::from(crate::block::VERSION)).contains(&meta.version) {
            return Err(corrupt(dir, &format!("unsupported block version {}", meta.version)));
        }
        let f = File::open(dir.join("data")).map_err(io)?;
        let map = map_file(&f).map_err(io)?;
        let len = map.len();
        if len < 8 + TOC_LEN || &map[..4] != b"OSPB" || u32::from(map[4]) != meta.version {
            return Err(corrupt(dir, "bad header or too short"));
        }
        let stored = u32::from_le_bytes(map[len - 4..].try_into().unwrap_or([0; 4]));
        if file_crc(&f, len - 4).map_err(io)? != stored {
            return Err(corrupt(dir, "checksum mismatch"));
        }
        let toc = &map[len - TOC_LEN..len - 4];
        let at = |i: usize| u64::from_le_bytes(toc[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8])) as usize;
        let (symbols_off, series_off, table_off, nseries, postings_off, ptable_off) =
            (at(0), at(1), at(2), at(3), at(4), at(5));
        let bad = || corrupt(dir, "malformed index");
        let mut pos = symbols_off;
        let n = get_uvarint(&map, &mut pos).ok_or_else(bad)?;
        let mut symbols = Vec::with_capacity(n.min(1 << 24) as usize);
        for _ in 0..n {
            let l = get_uvarint(&map, &mut pos).ok_or_else(bad)? as usize;
            let s = map.get(pos..pos + l).ok_or_else(bad)?;
            std::str::from_utf8(s).map_err(|_| bad())?;
            symbols.push((pos as u32, l as u32));
            pos += l;
        }
        let mut pos = ptable_off;
        let n = get_uvarint(&map, &mut pos).ok_or_else(bad)?;
        let mut post: BTreeMap<u32, Vec<(u32, usize)>> = BTreeMap::new();
        let mut pairs = Vec::with_capacity(n.min(1 << 24) as usize);
        for _ in 0..n {
            let name = get_uvarint(&map, &mut pos).ok_or_else(bad)? as u32;
            let value = get_uvarint(&map, &mut pos).ok_or_else(bad)? as u32;
            let off = get_uvarint(&map, &mut pos).ok_or_else(bad)? as usize;
            if name as usize >= symbols.len() || value as usize >= symbols.len() {
                return Err(bad());
            }
            post.entry(name).or_default().push((value, postings_off + off));
            pairs.push((name, value));
        }
        if table_off + Self::table_len(meta.version, nseries) * 4 > len {
            return Err(bad());
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            meta,
            map: Arc::new(map),
            symbols,
            series_off,
            table_off,
            nseries,
            postings_off,
            postings: post,
            pairs,
        })
    }

    fn sym(&self, id: u32) -> &str {
        let (off, len) = self.symbols.get(id as usize).copied().unwrap_or((0, 0));
        std::str::from_utf8(&self.map[off as usize..(off + len) as usize]).unwrap_or("")
    }

    fn lookup(&self, s: &str) -> Option<u32> {
        let mut lo = 0;
        let mut hi = self.symbols.len();
        while lo < hi {
            let mid = usize::midpoint(lo, hi);
            match self.sym(mid as u32).cmp(s) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid as u32),
            }
        }
        None
    }

    fn read_postings(&self, off: usize) -> Vec<u32> {
        let mut pos = off;
        let n = get_uvarint(&self.map, &mut pos).unwrap_or(0) as usize;
        let mut out = Vec::with_capacity(n.min(self.nseries));
        let mut cur = 0u32;
        for _ in 0..n {
            let Some(d) = get_uvarint(&self.map, &mut pos) else { break };
            cur = cur.wrapping_add(d as u32);
            out.push(cur);
        }
        out
    }

    /// Series ids matching all matchers.
    pub fn postings_for(&self, matchers: &[Matcher]) -> Vec<u32> {
        let mut positive: Option<Vec<u32>> = None;
        let mut negative = Vec::new();
        for m in matchers {
            let values = self.lookup(&m.name).and_then(|n| self.postings.get(&n));
            let matches_empty = m.matches("");
            let lists: Vec<Vec<u32>> = match (values, m.set_values()) {
                (None, _) => Vec::new(),
                (Some(vals), Some(set)) if !matches_empty => set
                    .iter()
                    .filter_map(|v| self.lookup(v))
                    .filter_map(|v| vals.binary_search_by_key(&v, |x| x.0).ok().map(|i| vals[i].1))
                    .map(|off| self.read_postings(off))
                    .collect(),
                (Some(vals), _) => vals
                    .iter()
                    .filter(|(v, _)| m.matches(self.sym(*v)) != matches_empty)
                    .map(|(_, off)| self.read_postings(*off))
                    .collect(),
            };
            let refs: Vec<&[u32]> = lists.iter().map(Vec::as_slice).collect();
            let u = postings::union(&refs);
            if matches_empty {
                negative.push(u);
            } else {
                positive = Some(match positive {
                    None => u,
                    Some(p) => postings::intersect(&p, &u),
                });
            }
        }
        let mut out = positive.unwrap_or_else(|| (0..self.nseries as u32).collect());
        for n in negative {
            out = postings::subtract(&out, &n);
        }
        out
    }

    /// Labels and chunks (overlapping `[mint, maxt]`) of series `id`.
    pub fn series(&self, id: u32, mint: i64, maxt: i64) -> Option<(Labels, Vec<ChunkData>)> {
        let e = self.entry(id as usize)?;
        let pairs = e.labels.iter().map(|&(n, v)| (self.sym(n).to_owned(), self.sym(v).to_owned())).collect();
        let mut chunks = Vec::with_capacity(e.chunks.len());
        for (cmint, cmaxt, off, len) in e.chunks {
            if cmaxt < mint || cmint > maxt || len == 0 {
                continue;
            }
            let enc = Encoding::from_u8(*self.map.get(off)?)?;
            chunks.push(ChunkData::mapped(enc, cmint, cmaxt, self.map.clone(), off + 1, len - 1));
        }
        Some((Labels::from_owned(pairs), chunks))
    }

    /// Number of offsets in the series table.
    pub(crate) fn table_len(version: u32, nseries: usize) -> usize {
        if version == 1 { nseries } else { nseries.div_ceil(GROUP) }
    }

    /// Series entry `id`, parsed (version 2: walking from the start of its group).
    fn entry(&self, id: usize) -> Option<Entry> {
        if id >= self.nseries {
            return None;
        }
        let m = &self.map[..];
        let v1 = self.meta.version == 1;
        let first = if v1 { id } else { id / GROUP * GROUP };
        let t = self.table_off + if v1 { id } else { id / GROUP } * 4;
        let mut pos = self.series_off + u32::from_le_bytes(m.get(t..t + 4)?.try_into().ok()?) as usize;
        let mut refs: Vec<u32> = Vec::new();
        let mut labels = Vec::new();
        let mut chunks = Vec::new();
        let mut expected = 0usize;
        for j in first..=id {
            let start = pos;
            if v1 {
                let n = get_uvarint(m, &mut pos)?;
                for _ in 0..n {
                    labels.push((get_uvarint(m, &mut pos)? as u32, get_uvarint(m, &mut pos)? as u32));
                }
            } else {
                let shared = usize::try_from(get_uvarint(m, &mut pos)?).ok()?;
                if shared > refs.len() {
                    return None;
                }
                refs.truncate(shared);
                for _ in 0..get_uvarint(m, &mut pos)? {
                    refs.push(u32::try_from(get_uvarint(m, &mut pos)?).ok()?);
                }
            }
            let label_bytes = pos - start;
            chunks.clear();
            for _ in 0..get_uvarint(m, &mut pos)? {
                chunks.push(if v1 {
                    let cmint = get_varint(m, &mut pos)?;
                    let cmaxt = cmint.checked_add(i64::try_from(get_uvarint(m, &mut pos)?).ok()?)?;
                    let off = usize::try_from(get_uvarint(m, &mut pos)?).ok()?;
                    (cmint, cmaxt, off, usize::try_from(get_uvarint(m, &mut pos)?).ok()?)
                } else {
                    let cmint = self.meta.min_time.checked_add(i64::try_from(get_uvarint(m, &mut pos)?).ok()?)?;
                    let cmaxt = cmint.checked_add(i64::try_from(get_uvarint(m, &mut pos)?).ok()?)?;
                    let off =
                        usize::try_from(i64::try_from(expected).ok()?.checked_add(get_varint(m, &mut pos)?)?).ok()?;
                    let len = usize::try_from(get_uvarint(m, &mut pos)?).ok()?;
                    expected = off.checked_add(len)?;
                    (cmint, cmaxt, off, len)
                });
            }
            if j == id {
                if !v1 {
                    labels = refs.iter().map(|&r| self.pairs.get(r as usize).copied()).collect::<Option<_>>()?;
                }
                return Some(Entry { labels, chunks, label_bytes });
            }
        }
        None
    }

    /// Matching series with chunks overlapping `[mint, maxt]`.
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<(Labels, Vec<ChunkData>)> {
        self.postings_for(matchers)
            .into_iter()
            .filter_map(|id| self.series(id, mint, maxt))
            .filter(|(_, c)| !c.is_empty())
            .collect()
    }

    /// Number of series.
    pub fn num_series(&self) -> usize {
        self.nseries
    }

    /// Label names with their number of distinct values.
    pub fn label_cardinality(&self) -> Vec<(String, usize)> {
        self.postings.iter().map(|(n, vals)| (self.sym(*n).to_owned(), vals.len())).collect()
    }

    /// Every chunk's offset and bytes (encoding byte included), with the bytes of the series entries'
    /// label references (the rest of the entries being chunk metas), for `tsdb analyze`.
    pub fn raw_chunks(&self) -> (Vec<(usize, &[u8])>, u64) {
        let mut out = Vec::new();
        let mut label_bytes = 0u64;
        for id in 0..self.nseries {
            let Some(e) = self.entry(id) else { break };
            label_bytes += e.label_bytes as u64;
            out.extend(e.chunks.iter().filter_map(|&(_, _, off, len)| Some((off, self.map.get(off..off + len)?))));
        }
        (out, label_bytes)
    }

    /// Byte sizes of the data file's sections (for `tsdb analyze`).
    pub fn sections(&self) -> Sections {
        let len = self.map.len();
        let toc = &self.map[len - TOC_LEN..len - 4];
        let ptable_off = u64::from_le_bytes(toc[40..48].try_into().unwrap_or([0; 8])) as usize;
        let symbols_off = self.chunks_end();
        Sections {
            chunks: symbols_off as u64,
            symbols: (self.series_off - symbols_off) as u64,
            series: (self.table_off - self.series_off) as u64,
            series_table: (Self::table_len(self.meta.version, self.nseries) * 4) as u64,
            postings: (ptable_off.saturating_sub(self.postings_off)) as u64,
            postings_table: (len - TOC_LEN).saturating_sub(ptable_off) as u64,
            toc: TOC_LEN as u64,
        }
    }

    /// Offset where the symbol table starts: bytes before it are the header and chunks.
    pub fn chunks_end(&self) -> usize {
        self.symbols.first().map_or(self.series_off, |s| s.0 as usize).min(self.series_off)
    }

    /// Offset of the postings section.
    pub fn postings_offset(&self) -> usize {
        self.postings_off
    }
}

/// Byte sizes of a block's sections.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sections {
    /// File header and chunks.
    pub chunks: u64,
    /// Symbol table.
    pub symbols: u64,
    /// Series entries (label refs and chunk metas).
    pub series: u64,
    /// Series offset table.
    pub series_table: u64,
    /// Postings lists.
    pub postings: u64,
    /// Postings table (label pair to list offset).
    pub postings_table: u64,
    /// Table of contents and checksum.
    pub toc: u64,
}
