//! WAL record payloads: series definitions, sample batches, and checkpoint chunks.

use crate::chunk::bits::{get_uvarint, get_varint, put_uvarint, put_varint};
use crate::labels::Labels;

const SERIES: u8 = 1;
const SAMPLES: u8 = 2;
const CHUNK: u8 = 3;

/// A decoded record.
#[derive(Debug, PartialEq)]
pub enum Record {
    /// New series with their ids.
    Series(Vec<(u32, Labels)>),
    /// Samples of one commit: (series id, t, v).
    Samples(Vec<(u32, i64, f64)>),
    /// A packed chunk of one series (checkpoints).
    Chunk(u32, Vec<u8>),
}

/// Encodes a series record.
pub fn series<'a>(items: impl IntoIterator<Item = (u32, &'a Labels)>) -> Vec<u8> {
    let mut b = vec![SERIES];
    for (id, l) in items {
        put_uvarint(&mut b, u64::from(id));
        put_uvarint(&mut b, l.len() as u64);
        for (n, v) in l.iter() {
            put_uvarint(&mut b, n.len() as u64);
            b.extend_from_slice(n.as_bytes());
            put_uvarint(&mut b, v.len() as u64);
            b.extend_from_slice(v.as_bytes());
        }
    }
    b
}

/// Encodes a samples record.
pub fn samples(items: &[(u32, i64, f64)]) -> Vec<u8> {
    let mut b = Vec::with_capacity(1 + items.len() * 12);
    b.push(SAMPLES);
    let base = items.first().map_or(0, |s| s.1);
    put_varint(&mut b, base);
    for &(id, t, v) in items {
        put_uvarint(&mut b, u64::from(id));
        put_varint(&mut b, t.wrapping_sub(base));
        b.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    b
}

/// Encodes a chunk record.
pub fn chunk(id: u32, packed: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(packed.len() + 6);
    b.push(CHUNK);
    put_uvarint(&mut b, u64::from(id));
    b.extend_from_slice(packed);
    b
}

fn get_str(b: &[u8], pos: &mut usize) -> Option<String> {
    let len = usize::try_from(get_uvarint(b, pos)?).ok()?;
    let s = std::str::from_utf8(b.get(*pos..pos.checked_add(len)?)?).ok()?.to_owned();
    *pos += len;
    Some(s)
}

/// Decodes a record; `None` if malformed.
pub fn decode(b: &[u8]) -> Option<Record> {
    let mut pos = 1;
    match *b.first()? {
        SERIES => {
            let mut out = Vec::new();
            while pos < b.len() {
                let id = u32::try_from(get_uvarint(b, &mut pos)?).ok()?;
                let n = get_uvarint(b, &mut pos)?;
                let mut pairs = Vec::new();
                for _ in 0..n {
                    pairs.push((get_str(b, &mut pos)?, get_str(b, &mut pos)?));
                }
                out.push((id, Labels::from_owned(pairs)));
            }
            Some(Record::Series(out))
        }
        SAMPLES => {
            let base = get_varint(b, &mut pos)?;
            let mut out = Vec::new();
            while pos < b.len() {
                let id = u32::try_from(get_uvarint(b, &mut pos)?).ok()?;
                let t = base.wrapping_add(get_varint(b, &mut pos)?);
                let v = f64::from_bits(u64::from_le_bytes(b.get(pos..pos + 8)?.try_into().ok()?));
                pos += 8;
                out.push((id, t, v));
            }
            Some(Record::Samples(out))
        }
        CHUNK => {
            let id = u32::try_from(get_uvarint(b, &mut pos)?).ok()?;
            Some(Record::Chunk(id, b[pos..].to_vec()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "x")]);
        assert_eq!(decode(&series([(7, &l)])), Some(Record::Series(vec![(7, l)])));
        let s = vec![(1, 1000, 1.5), (2, 999, f64::INFINITY)];
        assert_eq!(decode(&samples(&s)), Some(Record::Samples(s)));
        assert_eq!(decode(&chunk(3, &[1, 2, 3])), Some(Record::Chunk(3, vec![1, 2, 3])));
        assert_eq!(decode(&[9, 1]), None);
    }
}
