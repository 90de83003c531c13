//! Gorilla chunk, bit-compatible with Prometheus's XOR chunk (encoding 1): a 2-byte big-endian
//! sample count, then the first timestamp as a varint and value as 64 raw bits, the second
//! timestamp as a delta, and from then on delta-of-delta timestamps and XOR'd values.

use super::bits::{BitReader, BitWriter};

/// Incremental writer of a Gorilla chunk; the head's open chunk.
#[derive(Debug, Clone)]
pub struct XorAppender {
    /// Encoded bytes and the unused low bits of the last byte: a [`BitWriter`]'s parts, kept
    /// apart so the bit count packs with the small fields below (the head holds one
    /// appender per series; see `head::tests::series_struct_stays_within_a_128_byte_allocation`).
    buf: Vec<u8>,
    free: u8,
    n: u16,
    t: i64,
    t_delta: i64,
    v_bits: u64,
    leading: u8,
    trailing: u8,
}

impl Default for XorAppender {
    fn default() -> Self {
        Self::new()
    }
}

impl XorAppender {
    /// An empty chunk.
    pub fn new() -> Self {
        Self { buf: vec![0, 0], free: 0, n: 0, t: 0, t_delta: 0, v_bits: 0, leading: 0xff, trailing: 0 }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        usize::from(self.n)
    }

    /// Whether the chunk has no samples.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Timestamp of the last sample (meaningless when empty).
    pub fn last_t(&self) -> i64 {
        self.t
    }

    /// Timestamp of the first sample (`None` when empty): a varint right after the count.
    pub fn first_t(&self) -> Option<i64> {
        if self.n == 0 {
            return None;
        }
        super::bits::get_varint(&self.buf, &mut 2)
    }

    /// Bit pattern of the last value.
    pub fn last_v_bits(&self) -> u64 {
        self.v_bits
    }

    /// Encoded bytes (header + stream).
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes allocated for the encoded stream.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Appends a sample; the caller guarantees `t` is after the previous one.
    pub fn append(&mut self, t: i64, v: f64) {
        let bits = v.to_bits();
        let mut w = BitWriter::resume(std::mem::take(&mut self.buf), self.free);
        match self.n {
            0 => {
                w.write_varint(t);
                w.write_bits(bits, 64);
            }
            1 => {
                self.t_delta = t.wrapping_sub(self.t);
                w.write_uvarint(self.t_delta as u64);
                self.write_xor(&mut w, bits);
            }
            _ => {
                let delta = t.wrapping_sub(self.t);
                let dod = delta.wrapping_sub(self.t_delta);
                write_dod(&mut w, dod);
                self.t_delta = delta;
                self.write_xor(&mut w, bits);
            }
        }
        (self.buf, self.free) = w.into_parts();
        self.t = t;
        self.v_bits = bits;
        self.n += 1;
        self.buf[..2].copy_from_slice(&self.n.to_be_bytes());
    }

    fn write_xor(&mut self, w: &mut BitWriter, bits: u64) {
        let x = bits ^ self.v_bits;
        if x == 0 {
            w.write_bits(0, 1);
            return;
        }
        let leading = (x.leading_zeros() as u8).min(31);
        let trailing = x.trailing_zeros() as u8;
        if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
            // '10', then the significant bits inside the previous window.
            let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
            let v = x >> self.trailing;
            if sig <= 62 {
                w.write_bits((0b10 << sig) | v, sig + 2);
            } else {
                w.write_bits(0b10, 2);
                w.write_bits(v, sig);
            }
        } else {
            // '11', 5 bits of leading zeros, 6 bits of length (64 written as 0), the bits.
            self.leading = leading;
            self.trailing = trailing;
            let sig = 64 - u32::from(leading) - u32::from(trailing);
            let head = (0b11 << 11) | (u64::from(leading) << 6) | u64::from(sig & 63);
            let v = x >> trailing;
            if sig <= 51 {
                w.write_bits((head << sig) | v, 13 + sig);
            } else {
                w.write_bits(head, 13);
                w.write_bits(v, sig);
            }
        }
    }
}

fn write_dod(w: &mut BitWriter, dod: i64) {
    let fits = |nbits: u32| -((1i64 << (nbits - 1)) - 1) <= dod && dod <= 1i64 << (nbits - 1);
    // A prefix of 0, 10, 110, 1110 or 1111, then the value in 0, 14, 17, 20 or 64 bits.
    let mask = |nbits: u32| dod as u64 & ((1u64 << nbits) - 1);
    if dod == 0 {
        w.write_bits(0, 1);
    } else if fits(14) {
        w.write_bits((0b10 << 14) | mask(14), 16);
    } else if fits(17) {
        w.write_bits((0b110 << 17) | mask(17), 20);
    } else if fits(20) {
        w.write_bits((0b1110 << 20) | mask(20), 24);
    } else {
        w.write_bits(0b1111, 4);
        w.write_bits(dod as u64, 64);
    }
}

/// Reads the Gorilla XOR value stream shared by [`XorIter`] and the packed codec.
#[derive(Debug, Clone)]
pub struct XorValues {
    v_bits: u64,
    leading: u8,
    trailing: u8,
}

impl XorValues {
    /// Starts after a first value.
    pub fn new(first: u64) -> Self {
        Self { v_bits: first, leading: 0, trailing: 0 }
    }

    /// Reads the next value bit pattern.
    pub fn next(&mut self, r: &mut BitReader<'_>) -> Option<u64> {
        if !r.read_bit()? {
            return Some(self.v_bits);
        }
        if r.read_bit()? {
            self.leading = r.read_bits(5)? as u8;
            let mut sig = r.read_bits(6)? as u8;
            if sig == 0 {
                sig = 64;
            }
            self.trailing = 64u8.checked_sub(self.leading)?.checked_sub(sig)?;
        }
        let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
        let x = r.read_bits(sig)?;
        self.v_bits ^= x << self.trailing;
        Some(self.v_bits)
    }
}

/// Encodes `values` after the first with the Gorilla XOR scheme into `w`.
pub fn write_xor_values(w: &mut BitWriter, values: &[u64]) {
    let mut enc = XorAppender::new();
    if let Some((&first, rest)) = values.split_first() {
        enc.v_bits = first;
        for &b in rest {
            enc.write_xor(w, b);
            enc.v_bits = b;
        }
    }
}

/// Iterates the samples of a Prometheus-format XOR chunk.
#[derive(Debug, Clone)]
pub struct XorIter<'a> {
    r: BitReader<'a>,
    total: u16,
    i: u16,
    t: i64,
    t_delta: i64,
    vals: XorValues,
    failed: bool,
}

impl<'a> XorIter<'a> {
    /// Iterates `data` (header included).
    pub fn new(data: &'a [u8]) -> Self {
        let total = if data.len() >= 2 { u16::from_be_bytes([data[0], data[1]]) } else { 0 };
        Self { r: BitReader::new(data, 16), total, i: 0, t: 0, t_delta: 0, vals: XorValues::new(0), failed: false }
    }

    /// Whether decoding stopped on malformed data.
    pub fn failed(&self) -> bool {
        self.failed
    }

    fn step(&mut self) -> Option<(i64, f64)> {
        match self.i {
            0 => {
                self.t = self.r.read_varint()?;
                let bits = self.r.read_bits(64)?;
                self.vals = XorValues::new(bits);
                Some((self.t, f64::from_bits(bits)))
            }
            1 => {
                self.t_delta = self.r.read_uvarint()? as i64;
                self.t = self.t.wrapping_add(self.t_delta);
                let bits = self.vals.next(&mut self.r)?;
                Some((self.t, f64::from_bits(bits)))
            }
            _ => {
                let mut ones = 0;
                while ones < 4 && self.r.read_bit()? {
                    ones += 1;
                }
                let dod = match ones {
                    0 => 0,
                    4 => self.r.read_bits(64)? as i64,
                    _ => {
                        let sz = [0, 14, 17, 20][ones];
                        let mut bits = self.r.read_bits(sz)? as i64;
                        if bits > (1i64 << (sz - 1)) {
                            bits -= 1i64 << sz;
                        }
                        bits
                    }
                };
                self.t_delta = self.t_delta.wrapping_add(dod);
                self.t = self.t.wrapping_add(self.t_delta);
                let bits = self.vals.next(&mut self.r)?;
                Some((self.t, f64::from_bits(bits)))
            }
        }
    }
}

impl Iterator for XorIter<'_> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        if self.i >= self.total || self.failed {
            return None;
        }
        let s = self.step();
        if s.is_none() {
            self.failed = true;
        }
        self.i += 1;
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xor_round_trip_with_stale_nan_and_jitter() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let mut samples = Vec::new();
        let mut t = 1_700_000_000_000i64;
        for i in 0..120 {
            t += 15_000 + [0, 3, -2, 9000, 70_000, 600_000, 1 << 40][i % 7];
            let v = match i % 5 {
                0 => stale,
                1 => -0.0,
                2 => f64::INFINITY,
                _ => i as f64 * 1.37,
            };
            samples.push((t, v));
        }
        let mut a = XorAppender::new();
        for &(t, v) in &samples {
            a.append(t, v);
        }
        let got: Vec<(i64, u64)> = XorIter::new(a.bytes()).map(|(t, v)| (t, v.to_bits())).collect();
        let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
        assert_eq!(got, want);
    }
}
