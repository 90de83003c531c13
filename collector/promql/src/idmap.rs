//! Hash maps keyed by identities (pointer-derived `usize`s): a multiply-and-fold hasher instead
//! of SipHash, which dominated per-step aggregation and range-result bookkeeping.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A hasher for integer keys: one multiply per word, high bits folded down at the end (the map
/// picks buckets from the low bits, and pointers have zero low bits).
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

const K: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(23) ^ x).wrapping_mul(K);
    }

    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }
}

/// A `HashMap` with [`IdHasher`].
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_keys_spread_over_low_bits() {
        let mut buckets = std::collections::HashSet::new();
        for i in 0..64usize {
            let mut h = IdHasher::default();
            h.write_usize(0x7f00_0000_0000 + i * 64);
            buckets.insert(h.finish() & 63);
        }
        assert!(buckets.len() > 32, "only {} of 64 low-bit buckets used", buckets.len());
    }
}
