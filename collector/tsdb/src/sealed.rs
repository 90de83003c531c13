//! A head series' sealed chunks, back to back in one buffer: per chunk a zigzag varint min
//! time, a varint `max − min`, a varint length, then the packed chunk's bytes. One heap block
//! per series (grown exactly, never doubled) instead of a block per chunk plus a descriptor:
//! at 1 s a sealed 120-sample chunk is ≈ 45 bytes, less than a descriptor and its
//! allocation cost.

use crate::chunk::bits::{get_uvarint, get_varint, put_uvarint, put_varint};

/// The sealed chunks of one series, oldest first.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SealedChunks(Vec<u8>);

/// One sealed chunk, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedChunk<'a> {
    /// First sample's timestamp.
    pub mint: i64,
    /// Last sample's timestamp.
    pub maxt: i64,
    /// Packed chunk bytes.
    pub data: &'a [u8],
}

fn put_chunk(out: &mut Vec<u8>, mint: i64, maxt: i64, data: &[u8]) {
    put_varint(out, mint);
    put_uvarint(out, maxt.wrapping_sub(mint) as u64);
    put_uvarint(out, data.len() as u64);
    out.extend_from_slice(data);
}

impl SealedChunks {
    /// Appends a chunk (after the others in time), growing the buffer by exactly its size.
    pub fn push(&mut self, mint: i64, maxt: i64, data: &[u8]) {
        let mut head = Vec::with_capacity(30);
        put_varint(&mut head, mint);
        put_uvarint(&mut head, maxt.wrapping_sub(mint) as u64);
        put_uvarint(&mut head, data.len() as u64);
        self.0.reserve_exact(head.len() + data.len());
        self.0.extend_from_slice(&head);
        self.0.extend_from_slice(data);
    }

    /// Builds from chunks in time order.
    pub fn from_chunks<'a>(chunks: impl IntoIterator<Item = (i64, i64, &'a [u8])>) -> Self {
        let mut out = Vec::new();
        for (mint, maxt, data) in chunks {
            put_chunk(&mut out, mint, maxt, data);
        }
        out.shrink_to_fit();
        Self(out)
    }

    /// The chunks, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = SealedChunk<'_>> {
        let buf = &self.0[..];
        let mut pos = 0;
        std::iter::from_fn(move || {
            if pos >= buf.len() {
                return None;
            }
            let mint = get_varint(buf, &mut pos)?;
            let span = get_uvarint(buf, &mut pos)?;
            let len = usize::try_from(get_uvarint(buf, &mut pos)?).ok()?;
            let data = buf.get(pos..pos.checked_add(len)?)?;
            pos += len;
            Some(SealedChunk { mint, maxt: mint.wrapping_add(span as i64), data })
        })
    }

    /// Whether there are no chunks.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Bytes held (used, allocated).
    pub fn bytes(&self) -> (usize, usize) {
        (self.0.len(), self.0.capacity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_and_grow_exactly() {
        let mut s = SealedChunks::default();
        assert!(s.is_empty());
        assert_eq!(s.iter().count(), 0);
        let a = vec![7u8; 45];
        let b = vec![9u8; 300];
        s.push(-5_000, 120_000, &a);
        s.push(1_700_000_000_000, 1_700_000_119_000, &b);
        s.push(1_700_000_120_000, 1_700_000_120_000, &[]);
        let got: Vec<SealedChunk<'_>> = s.iter().collect();
        assert_eq!(
            got,
            vec![
                SealedChunk { mint: -5_000, maxt: 120_000, data: &a },
                SealedChunk { mint: 1_700_000_000_000, maxt: 1_700_000_119_000, data: &b },
                SealedChunk { mint: 1_700_000_120_000, maxt: 1_700_000_120_000, data: &[] },
            ]
        );
        let (used, cap) = s.bytes();
        assert_eq!(used, cap, "no spare capacity after pushes");
        let rebuilt = SealedChunks::from_chunks(got.iter().skip(1).map(|c| (c.mint, c.maxt, c.data)));
        assert_eq!(rebuilt.iter().collect::<Vec<_>>(), got[1..].to_vec());
        assert_eq!(rebuilt.bytes().0, rebuilt.bytes().1);
    }
}
