//! The series cache's hasher.

/// A fast seeded hasher for cache keys (folded 64×64→128 multiplies over 8-byte words): the
/// keys are long byte strings and std's SipHash was a visible share of a warm scrape. The seed
/// is random per process, so a target cannot precompute collisions.
#[derive(Clone, Copy)]
pub(crate) struct SeededState(u64);

impl Default for SeededState {
    fn default() -> Self {
        use std::hash::BuildHasher as _;
        static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        Self(*SEED.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64) | 1))
    }
}

impl std::hash::BuildHasher for SeededState {
    type Hasher = FoldHasher;
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher(self.0)
    }
}

pub(crate) struct FoldHasher(u64);

const MUL: u64 = 0x9e37_79b9_7f4a_7c15;

fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl std::hash::Hasher for FoldHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.0 = fold(self.0 ^ w, MUL);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.0 = fold(self.0 ^ u64::from_le_bytes(buf), MUL);
        }
        self.0 = self.0.rotate_left(17) ^ bytes.len() as u64;
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = fold(self.0 ^ n as u64, MUL);
    }

    fn finish(&self) -> u64 {
        fold(self.0, MUL ^ 0xa076_1d64_78bd_642f)
    }
}
