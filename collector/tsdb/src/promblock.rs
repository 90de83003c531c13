//! Reader for Prometheus TSDB blocks (index format v2, chunks format v1, tombstones v1), as
//! documented upstream in `tsdb/docs/format/`. Fixed-width integers are big-endian; checksums
//! are CRC32 Castagnoli.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::chunk::XorIter;
use crate::chunk::bits::{get_uvarint, get_varint};
use crate::labels::Labels;

const INDEX_MAGIC: u32 = 0xBAAA_D700;
const CHUNKS_MAGIC: u32 = 0x85BD_40DD;
const TOMBSTONES_MAGIC: u32 = 0x0130_BA30;

/// A Prometheus block's `meta.json` (the fields we use).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromMeta {
    /// Block id.
    pub ulid: String,
    /// Inclusive start, ms.
    pub min_time: i64,
    /// Exclusive end, ms.
    pub max_time: i64,
}

/// A series read from a Prometheus block.
pub struct PromSeries {
    /// Labels.
    pub labels: Labels,
    /// Samples in time order (tombstoned ranges removed).
    pub samples: Vec<(i64, f64)>,
}

/// What was skipped while reading.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Chunks of encodings other than XOR (native histograms).
    pub non_float_chunks: u64,
}

fn bad(p: &Path, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{}: {what}", p.display()))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Reads the whole block in `dir`: its meta and every series with its float samples.
pub fn read_block(dir: &Path) -> io::Result<(PromMeta, Vec<PromSeries>, Skipped)> {
    let meta_path = dir.join("meta.json");
    let meta: PromMeta = serde_json::from_slice(&fs::read(&meta_path)?).map_err(|e| bad(&meta_path, e))?;
    let ip = dir.join("index");
    let idx = fs::read(&ip)?;
    if be32(&idx, 0) != Some(INDEX_MAGIC) {
        return Err(bad(&ip, "not a Prometheus index (bad magic)"));
    }
    if idx.get(4) != Some(&2) {
        return Err(bad(&ip, format!("index version {:?} unsupported (expected 2)", idx.get(4))));
    }
    let toc_at = idx.len().checked_sub(52).ok_or_else(|| bad(&ip, "too short for a TOC"))?;
    if crc32c::crc32c(&idx[toc_at..toc_at + 48]) != be32(&idx, toc_at + 48).unwrap_or(0) {
        return Err(bad(&ip, "TOC checksum mismatch"));
    }
    let toc = |i: usize| be64(&idx, toc_at + i * 8).unwrap_or(0) as usize;
    let (sym_off, post_table_off) = (toc(0), toc(5));

    // Symbol table.
    let sym_len = be32(&idx, sym_off).ok_or_else(|| bad(&ip, "symbol table out of range"))? as usize;
    let sym_body = idx.get(sym_off + 4..sym_off + 4 + sym_len).ok_or_else(|| bad(&ip, "symbol table out of range"))?;
    if crc32c::crc32c(sym_body) != be32(&idx, sym_off + 4 + sym_len).unwrap_or(0) {
        return Err(bad(&ip, "symbol table checksum mismatch"));
    }
    let nsym = be32(sym_body, 0).unwrap_or(0) as usize;
    let mut symbols = Vec::with_capacity(nsym.min(sym_len));
    let mut pos = 4;
    for _ in 0..nsym {
        let l = get_uvarint(sym_body, &mut pos).ok_or_else(|| bad(&ip, "truncated symbol"))? as usize;
        let s = sym_body.get(pos..pos + l).ok_or_else(|| bad(&ip, "truncated symbol"))?;
        symbols.push(std::str::from_utf8(s).map_err(|_| bad(&ip, "symbol is not UTF-8"))?.to_owned());
        pos += l;
    }

    // Postings offset table: find the all-postings key ("", "").
    let pt_len = be32(&idx, post_table_off).ok_or_else(|| bad(&ip, "postings table out of range"))? as usize;
    let pt = idx
        .get(post_table_off + 4..post_table_off + 4 + pt_len)
        .ok_or_else(|| bad(&ip, "postings table out of range"))?;
    let n = be32(pt, 0).unwrap_or(0);
    let mut pos = 4;
    let mut all_off = None;
    for _ in 0..n {
        let err = || bad(&ip, "malformed postings offset table");
        let _two = get_uvarint(pt, &mut pos).ok_or_else(err)?;
        let nl = get_uvarint(pt, &mut pos).ok_or_else(err)? as usize;
        let name = pt.get(pos..pos + nl).ok_or_else(err)?;
        pos += nl;
        let vl = get_uvarint(pt, &mut pos).ok_or_else(err)? as usize;
        let value = pt.get(pos..pos + vl).ok_or_else(err)?;
        pos += vl;
        let off = get_uvarint(pt, &mut pos).ok_or_else(err)? as usize;
        if name.is_empty() && value.is_empty() {
            all_off = Some(off);
        }
    }
    let mut series_refs = Vec::new();
    if let Some(off) = all_off {
        let len = be32(&idx, off).ok_or_else(|| bad(&ip, "postings out of range"))? as usize;
        let body = idx.get(off + 4..off + 4 + len).ok_or_else(|| bad(&ip, "postings out of range"))?;
        if crc32c::crc32c(body) != be32(&idx, off + 4 + len).unwrap_or(0) {
            return Err(bad(&ip, "postings checksum mismatch"));
        }
        let cnt = be32(body, 0).unwrap_or(0) as usize;
        for i in 0..cnt {
            series_refs.push(be32(body, 4 + i * 4).ok_or_else(|| bad(&ip, "truncated postings"))?);
        }
    }

    let tombstones = read_tombstones(&dir.join("tombstones"))?;
    let mut chunk_files: Vec<Option<Vec<u8>>> = Vec::new();
    let mut skipped = Skipped::default();
    let mut out = Vec::with_capacity(series_refs.len());
    for sref in series_refs {
        let at = sref as usize * 16;
        let mut pos = at;
        let err = || bad(&ip, format!("malformed series entry at offset {at}"));
        let len = get_uvarint(&idx, &mut pos).ok_or_else(err)? as usize;
        let body = idx.get(pos..pos + len).ok_or_else(err)?;
        if crc32c::crc32c(body) != be32(&idx, pos + len).ok_or_else(err)? {
            return Err(bad(&ip, format!("series entry at offset {at}: checksum mismatch")));
        }
        let mut p = 0;
        let nl = get_uvarint(body, &mut p).ok_or_else(err)?;
        let mut pairs = Vec::new();
        for _ in 0..nl {
            let n = get_uvarint(body, &mut p).ok_or_else(err)? as usize;
            let v = get_uvarint(body, &mut p).ok_or_else(err)? as usize;
            pairs.push((symbols.get(n).ok_or_else(err)?.clone(), symbols.get(v).ok_or_else(err)?.clone()));
        }
        let nc = get_uvarint(body, &mut p).ok_or_else(err)?;
        let mut samples = Vec::new();
        let (mut prev_maxt, mut prev_ref) = (0i64, 0i64);
        for i in 0..nc {
            let (mint, maxt, cref);
            if i == 0 {
                mint = get_varint(body, &mut p).ok_or_else(err)?;
                maxt = mint + get_uvarint(body, &mut p).ok_or_else(err)? as i64;
                cref = get_uvarint(body, &mut p).ok_or_else(err)? as i64;
            } else {
                mint = prev_maxt + get_uvarint(body, &mut p).ok_or_else(err)? as i64;
                maxt = mint + get_uvarint(body, &mut p).ok_or_else(err)? as i64;
                cref = prev_ref + get_varint(body, &mut p).ok_or_else(err)?;
            }
            let _ = mint;
            prev_maxt = maxt;
            prev_ref = cref;
            let (enc, data) = read_chunk(dir, &mut chunk_files, cref as u64)?;
            if enc != 1 {
                skipped.non_float_chunks += 1;
                continue;
            }
            samples.extend(XorIter::new(&data));
        }
        if let Some(ivs) = tombstones.iter().find(|t| t.0 == u64::from(sref)) {
            samples.retain(|(t, _)| !ivs.1.iter().any(|&(a, b)| *t >= a && *t <= b));
        }
        out.push(PromSeries { labels: Labels::from_owned(pairs), samples });
    }
    Ok((meta, out, skipped))
}

fn read_chunk(dir: &Path, files: &mut Vec<Option<Vec<u8>>>, cref: u64) -> io::Result<(u8, Vec<u8>)> {
    let seq = (cref >> 32) as usize;
    let off = (cref & 0xffff_ffff) as usize;
    if files.len() <= seq {
        files.resize(seq + 1, None);
    }
    let path: PathBuf = dir.join("chunks").join(format!("{:06}", seq + 1));
    if files[seq].is_none() {
        let data = fs::read(&path)?;
        if be32(&data, 0) != Some(CHUNKS_MAGIC) {
            return Err(bad(&path, "not a Prometheus chunks file (bad magic)"));
        }
        files[seq] = Some(data);
    }
    let data = files[seq].as_deref().unwrap_or(&[]);
    let err = || bad(&path, format!("chunk at offset {off} out of range"));
    let mut pos = off;
    let len = get_uvarint(data, &mut pos).ok_or_else(err)? as usize;
    let enc_data = data.get(pos..pos + 1 + len).ok_or_else(err)?;
    if crc32c::crc32c(enc_data) != be32(data, pos + 1 + len).ok_or_else(err)? {
        return Err(bad(&path, format!("chunk at offset {off}: checksum mismatch")));
    }
    Ok((enc_data[0], enc_data[1..].to_vec()))
}

fn read_tombstones(p: &Path) -> io::Result<Vec<(u64, Vec<(i64, i64)>)>> {
    let Ok(data) = fs::read(p) else { return Ok(Vec::new()) };
    if data.len() < 9 {
        return Ok(Vec::new());
    }
    if be32(&data, 0) != Some(TOMBSTONES_MAGIC) {
        return Err(bad(p, "bad tombstones magic"));
    }
    let body = &data[5..data.len() - 4];
    let mut pos = 0;
    let mut out: Vec<(u64, Vec<(i64, i64)>)> = Vec::new();
    while pos < body.len() {
        let err = || bad(p, "malformed tombstone");
        let r = get_uvarint(body, &mut pos).ok_or_else(err)?;
        let iv = (get_varint(body, &mut pos).ok_or_else(err)?, get_varint(body, &mut pos).ok_or_else(err)?);
        if let Some(e) = out.iter_mut().find(|e| e.0 == r) {
            e.1.push(iv);
            continue;
        }
        let ivs = vec![iv];
        out.push((r, ivs));
    }
    Ok(out)
}
