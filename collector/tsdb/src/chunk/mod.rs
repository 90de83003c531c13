//! Chunk codecs: the Prometheus-compatible Gorilla XOR chunk (the head's open chunk, and what
//! Prometheus blocks contain) and Osprey's packed codec for sealed chunks.

pub mod bits;
mod intstream;
pub mod packed;
pub mod xor;

pub use packed::PackedIter;
pub use xor::{XorAppender, XorIter};

/// How a chunk's bytes are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Encoding {
    /// Prometheus XOR chunk (encoding 1).
    Xor = 1,
    /// Osprey packed chunk.
    Packed = 0x40,
}

impl Encoding {
    /// Parses an encoding byte.
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Xor),
            0x40 => Some(Self::Packed),
            _ => None,
        }
    }
}

/// Iterator over any chunk's samples.
pub enum SampleIter<'a> {
    /// A Gorilla chunk.
    Xor(XorIter<'a>),
    /// A packed chunk.
    Packed(PackedIter<'a>),
    /// Malformed or unknown data: no samples.
    Empty,
}

impl<'a> SampleIter<'a> {
    /// Iterates `data` encoded as `enc`.
    pub fn new(enc: Encoding, data: &'a [u8]) -> Self {
        match enc {
            Encoding::Xor => Self::Xor(XorIter::new(data)),
            Encoding::Packed => PackedIter::new(data).map_or(Self::Empty, Self::Packed),
        }
    }

    /// Iterates the chunk at `file[off..off + len]` encoded as `enc` (a packed chunk there may
    /// refer to a timestamp column earlier in the same file).
    pub fn new_in(enc: Encoding, file: &'a [u8], off: usize, len: usize) -> Self {
        match enc {
            Encoding::Xor => file.get(off..off.saturating_add(len)).map_or(Self::Empty, |d| Self::Xor(XorIter::new(d))),
            Encoding::Packed => PackedIter::new_in(file, off, len).map_or(Self::Empty, Self::Packed),
        }
    }
}

impl Iterator for SampleIter<'_> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        match self {
            Self::Xor(i) => i.next(),
            Self::Packed(i) => i.next(),
            Self::Empty => None,
        }
    }
}

/// Decodes a chunk fully into timestamp and value vectors.
pub fn decode_all(enc: Encoding, data: &[u8], ts: &mut Vec<i64>, vs: &mut Vec<f64>) {
    for (t, v) in SampleIter::new(enc, data) {
        ts.push(t);
        vs.push(v);
    }
}
