//! The integer streams of packed chunks: the adaptive-width stream (delta-of-delta timestamps
//! and `INT` values) and the Rice-coded stream (`RICE` values), both with a common factor.

use super::bits::{BitReader, BitWriter, unzigzag, zigzag};

pub(super) fn bit_len(u: u64) -> u32 {
    64 - u.leading_zeros()
}

pub(super) fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The common factor of all values (1 when none or when it would not fit an i64).
pub(super) fn common_factor(values: &[i64]) -> u64 {
    // Stops at the first 1: most value streams have no common factor after a few values, and
    // a division per value was most of a head chunk's sealing.
    let g = values.iter().try_fold(0u64, |g, v| match gcd(g, v.unsigned_abs()) {
        1 => None,
        g => Some(g),
    });
    let g = g.unwrap_or(1);
    if g <= 1 || g > i64::MAX as u64 { 1 } else { g }
}

/// Best (base width, plain mode) and total cost in bits of the adaptive integer stream.
/// O(65) per call from the bit-length histogram (prefix sums), instead of trying every width
/// against every length (2 × 64 × 65 steps per call made it 58% of a head cut's CPU).
pub(super) fn best_width(values: &[i64]) -> (u32, bool, u64) {
    let mut hist = [0u64; 65];
    for &v in values {
        hist[bit_len(zigzag(v)) as usize] += 1;
    }
    best_width_of(&hist)
}

/// [`best_width`] from the histogram of the zigzagged values' bit lengths.
fn best_width_of(hist: &[u64; 65]) -> (u32, bool, u64) {
    let zeros = hist[0];
    let nonzero: u64 = hist[1..].iter().sum();
    // Values wider than the current base width b: their count and the sum of their widths.
    let mut wide_cnt = nonzero;
    let mut wide_len: u64 = hist.iter().enumerate().map(|(l, &c)| l as u64 * c).sum();
    // Past the widest value length every cost grows with b (or stays, with no non-zero
    // value, where the first width wins anyway): widths up to it suffice.
    let top = hist.iter().rposition(|&c| c > 0).unwrap_or(0).max(1);
    let mut costs = [[0u64; 2]; 65];
    for b in 1..=top {
        wide_cnt -= hist[b];
        wide_len -= b as u64 * hist[b];
        let narrow = nonzero - wide_cnt;
        let bw = b as u64;
        // Mode 0: `0` for zero, `10` + b bits, `11` + 6-bit width + bits.
        costs[b][0] = 7 + zeros + narrow * (2 + bw) + wide_cnt * 8 + wide_len;
        // Mode 1: b bits after one flag bit for zero and narrow values, 1 + 6 + bits otherwise.
        costs[b][1] = 7 + (zeros + narrow) * (1 + bw) + wide_cnt * 7 + wide_len;
    }
    let mut best = (1u32, false, u64::MAX);
    for plain in [false, true] {
        for b in 1..=top as u32 {
            let cost = costs[b as usize][usize::from(plain)];
            if cost < best.2 {
                best = (b, plain, cost);
            }
        }
    }
    best
}

/// The adaptive integer stream. Header: 6-bit base width B - 1, a mode bit, a factor bit (and
/// then the common factor g as a varint, all values being multiples of it). Per value v/g,
/// zigzagged: mode 0 — `0` (zero), `10` + B bits, `11` + 6-bit width + bits; mode 1 —
/// `0` + B bits, `1` + 6-bit width + bits.
pub(super) fn write_int_stream(w: &mut BitWriter, values: &[i64]) {
    let g = common_factor(values);
    let scaled: Vec<i64>;
    let values = if g > 1 {
        scaled = values.iter().map(|v| v / g as i64).collect();
        &scaled
    } else {
        values
    };
    let (b, plain, _) = best_width(values);
    w.write_bits(u64::from(b - 1), 6);
    w.write_bit(plain);
    w.write_bit(g > 1);
    if g > 1 {
        w.write_uvarint(g);
    }
    for &v in values {
        let u = zigzag(v);
        let len = bit_len(u);
        match (plain, len) {
            (false, 0) => w.write_bit(false),
            (false, l) if l <= b => {
                w.write_bits(0b10, 2);
                w.write_bits(u, b);
            }
            (true, l) if l <= b => {
                w.write_bit(false);
                w.write_bits(u, b);
            }
            (false, l) => {
                w.write_bits(0b11, 2);
                w.write_bits(u64::from(l - 1), 6);
                w.write_bits(u, l);
            }
            (true, l) => {
                w.write_bit(true);
                w.write_bits(u64::from(l - 1), 6);
                w.write_bits(u, l);
            }
        }
    }
}

pub(super) struct IntStream {
    b: u32,
    plain: bool,
    g: i64,
    /// Rice parameter k, for a Rice stream.
    rice: Option<u32>,
}

impl IntStream {
    pub(super) const EMPTY: Self = Self { b: 1, plain: false, g: 1, rice: None };

    pub(super) fn start(r: &mut BitReader<'_>) -> Option<Self> {
        let b = r.read_bits(6)? as u32 + 1;
        let plain = r.read_bit()?;
        let g = if r.read_bit()? { i64::try_from(r.read_uvarint()?).ok()? } else { 1 };
        Some(Self { b, plain, g, rice: None })
    }

    /// Reads a Rice stream's header.
    pub(super) fn start_rice(r: &mut BitReader<'_>) -> Option<Self> {
        let k = r.read_bits(6)? as u32;
        let g = if r.read_bit()? { i64::try_from(r.read_uvarint()?).ok()? } else { 1 };
        Some(Self { b: 1, plain: false, g, rice: Some(k) })
    }

    pub(super) fn next(&self, r: &mut BitReader<'_>) -> Option<i64> {
        if let Some(k) = self.rice {
            let mut q = 0u64;
            while q < RICE_ESCAPE && r.read_bit()? {
                q += 1;
            }
            let u = if q == RICE_ESCAPE {
                let w = r.read_bits(6)? as u32 + 1;
                r.read_bits(w)?
            } else {
                (q << k) | r.read_bits(k)?
            };
            return Some(unzigzag(u).wrapping_mul(self.g));
        }
        let width = if self.plain {
            if r.read_bit()? { r.read_bits(6)? as u32 + 1 } else { self.b }
        } else {
            if !r.read_bit()? {
                return Some(0);
            }
            if r.read_bit()? { r.read_bits(6)? as u32 + 1 } else { self.b }
        };
        Some(unzigzag(r.read_bits(width)?).wrapping_mul(self.g))
    }
}

/// Unary quotients from this value on are escaped in the Rice stream.
const RICE_ESCAPE: u64 = 16;

/// Rice parameter k and estimated cost in bits (header included) of the Rice stream of
/// values (divided by their common factor) with the bit-length histogram `hist` of their
/// zigzagged forms, which sum to `sum`. From the histogram alone: a value of bit length l > k
/// is escaped exactly when l - k ≥ 5, otherwise its quotient is taken as 3/4 of 2^(l-k)
/// (it lies in [2^(l-k-1), 2^(l-k))). k is searched around log2 of the mean.
fn rice_plan(hist: &[u64; 65], sum: u64) -> (u32, u64) {
    let n: u64 = hist.iter().sum();
    if n == 0 {
        return (0, 7);
    }
    let k0 = bit_len(sum / n).saturating_sub(1);
    let mut best = (0, u64::MAX);
    for k in k0.saturating_sub(1)..=(k0 + 1).min(63) {
        let mut cost = 7u64;
        for (l, &c) in hist.iter().enumerate() {
            let l = l as u32;
            let bits = if l <= k {
                1 + u64::from(k)
            } else if l - k >= 5 {
                RICE_ESCAPE + 6 + u64::from(l)
            } else {
                (3u64 << (l - k)) / 4 + 1 + u64::from(k)
            };
            cost += c * bits;
        }
        if cost < best.1 {
            best = (k, cost);
        }
    }
    best
}

/// How a value stream is best coded (Rice only if allowed): common factor, Rice parameter
/// (`None`: adaptive stream) and cost in bits, from one pass over the values.
pub(super) fn int_plan(values: &[i64], allow_rice: bool) -> (u64, Option<u32>, u64) {
    let g = common_factor(values);
    let factor_bits = if g == 1 { 1 } else { 1 + 8 * u64::from(bit_len(g).div_ceil(7)) };
    let gi = g as i64;
    let (mut hist, mut sum) = ([0u64; 65], 0u64);
    for &v in values {
        let u = zigzag(if g > 1 { v / gi } else { v });
        hist[bit_len(u) as usize] += 1;
        sum = sum.saturating_add(u);
    }
    let adaptive = best_width_of(&hist).2 + factor_bits;
    let (k, rice) = if allow_rice { rice_plan(&hist, sum) } else { (0, u64::MAX - factor_bits) };
    if rice + factor_bits < adaptive { (g, Some(k), rice + factor_bits) } else { (g, None, adaptive) }
}

/// The Rice stream. Header: 6-bit k, a factor bit (and then the common factor g as a varint).
/// Per value v/g, zigzagged to u: q = u >> k in unary (q ones, then a zero) and the k low bits
/// of u; when q ≥ 16, sixteen ones, a 6-bit width - 1 and u in that many bits.
pub(super) fn write_rice_stream(w: &mut BitWriter, values: &[i64], g: u64, k: u32) {
    w.write_bits(u64::from(k), 6);
    w.write_bit(g > 1);
    if g > 1 {
        w.write_uvarint(g);
    }
    for &v in values {
        let u = zigzag(v / g as i64);
        let q = u >> k;
        if q < RICE_ESCAPE && k + (q as u32) < 64 {
            // q ones, a zero and the k low bits, in one write.
            let low = u & ((1u64 << k) - 1);
            w.write_bits((((1u64 << q) - 1) << (k + 1)) | low, q as u32 + 1 + k);
        } else if q < RICE_ESCAPE {
            w.write_bits((1u64 << q) - 1, q as u32);
            w.write_bit(false);
            w.write_bits(u & ((1u64 << k) - 1), k);
        } else {
            w.write_bits((1u64 << RICE_ESCAPE) - 1, RICE_ESCAPE as u32);
            let l = bit_len(u);
            w.write_bits(u64::from(l - 1), 6);
            w.write_bits(u, l);
        }
    }
}
