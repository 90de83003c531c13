//! Bit-level writer and reader (most significant bit first) and varint helpers.

/// Appends bits, most significant first, to a byte vector.
#[derive(Debug, Clone, Default)]
pub struct BitWriter {
    buf: Vec<u8>,
    /// Unused low bits of the last byte (0: the last byte is full or there is none).
    free: u8,
}

impl BitWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// A writer continuing after whole bytes already in `buf`.
    pub fn from_bytes(buf: Vec<u8>) -> Self {
        Self { buf, free: 0 }
    }

    /// A writer continuing a stream: `buf` with `free` unused low bits in its last byte (the
    /// parts [`BitWriter::into_parts`] gave).
    pub fn resume(buf: Vec<u8>, free: u8) -> Self {
        Self { buf, free }
    }

    /// The bytes and the unused low bits of the last one.
    pub fn into_parts(self) -> (Vec<u8>, u8) {
        (self.buf, self.free)
    }

    /// Makes room for `n` more bytes, growing by ~1/8 instead of doubling: head chunks live
    /// long, and doubling would leave up to half of each one unused.
    fn reserve(&mut self, n: usize) {
        if self.buf.capacity() - self.buf.len() < n {
            self.buf.reserve_exact(n.max(16 + self.buf.len() / 8));
        }
    }

    /// Appends one bit.
    pub fn write_bit(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    /// Appends the low `n` bits of `v` (n ≤ 64): the last byte's free bits first, then whole
    /// bytes at once.
    #[inline]
    pub fn write_bits(&mut self, v: u64, n: u32) {
        debug_assert!(n <= 64);
        if n == 0 {
            return;
        }
        let mut n = n;
        let free = u32::from(self.free);
        if free > 0 {
            let last = self.buf.len() - 1;
            if n <= free {
                let bits = v & (u64::MAX >> (64 - n));
                self.buf[last] |= (bits << (free - n)) as u8;
                self.free -= n as u8;
                return;
            }
            // The top `free` of the `n` bits complete the last byte.
            self.buf[last] |= ((v >> (n - free)) & ((1 << free) - 1)) as u8;
            n -= free;
        }
        // `n` ≥ 1 bits left: left-align them (dropping the ones already written) and append
        // the bytes they cover.
        let bytes = (n as usize).div_ceil(8);
        self.reserve(bytes);
        self.buf.extend_from_slice(&(v << (64 - n)).to_be_bytes()[..bytes]);
        self.free = (bytes * 8 - n as usize) as u8;
    }

    /// Appends an unsigned LEB128 varint, 8 bits per byte.
    pub fn write_uvarint(&mut self, v: u64) {
        let mut v = v;
        while v >= 0x80 {
            self.write_bits((v & 0x7f) | 0x80, 8);
            v >>= 7;
        }
        self.write_bits(v, 8);
    }

    /// Appends a zigzag signed varint, 8 bits per byte.
    pub fn write_varint(&mut self, v: i64) {
        self.write_uvarint(zigzag(v));
    }

    /// The bytes written so far (a partial last byte is zero-padded).
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Mutable access to the bytes (for patching a header).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// Consumes the writer.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Bytes allocated for the buffer (at least [`BitWriter::bytes`]'s length).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Number of bits written.
    pub fn bit_len(&self) -> usize {
        self.buf.len() * 8 - usize::from(self.free)
    }
}

/// Reads bits, most significant first.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// A reader at bit `pos` of `data`.
    pub fn new(data: &'a [u8], pos: usize) -> Self {
        Self { data, pos }
    }

    /// Current bit position.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Reads one bit.
    pub fn read_bit(&mut self) -> Option<bool> {
        let byte = *self.data.get(self.pos / 8)?;
        let bit = byte & (0x80 >> (self.pos % 8)) != 0;
        self.pos += 1;
        Some(bit)
    }

    /// Reads `n` bits (n ≤ 64): from one 8-byte big-endian load when 8 bytes are left.
    #[inline]
    pub fn read_bits(&mut self, n: u32) -> Option<u64> {
        debug_assert!(n <= 64);
        if n == 0 {
            return Some(0);
        }
        let at = self.pos / 8;
        let off = (self.pos % 8) as u32;
        if let Some(w) = self.data.get(at..at + 8) {
            if n + off > 64 {
                // The bits span nine bytes: read them in two parts.
                let hi = self.read_bits(n - 32)?;
                return Some((hi << 32) | self.read_bits(32)?);
            }
            let word = u64::from_be_bytes(w.try_into().ok()?);
            self.pos += n as usize;
            return Some((word << off) >> (64 - n));
        }
        self.read_bits_bytewise(n)
    }

    /// [`BitReader::read_bits`] a byte at a time, for the last bytes of the data.
    fn read_bits_bytewise(&mut self, n: u32) -> Option<u64> {
        let mut v: u64 = 0;
        let mut n = n;
        while n > 0 {
            let byte = *self.data.get(self.pos / 8)?;
            let off = (self.pos % 8) as u32;
            let avail = 8 - off;
            let take = n.min(avail);
            let bits = (u32::from(byte) >> (avail - take)) & ((1u32 << take) - 1);
            v = (v << take) | u64::from(bits);
            self.pos += take as usize;
            n -= take;
        }
        Some(v)
    }

    /// Reads an unsigned LEB128 varint stored 8 bits per byte.
    pub fn read_uvarint(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.read_bits(8)?;
            v |= (b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// Reads a zigzag signed varint.
    pub fn read_varint(&mut self) -> Option<i64> {
        self.read_uvarint().map(unzigzag)
    }
}

/// Zigzag-encodes a signed integer.
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Reverses [`zigzag`].
pub fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Appends an unsigned LEB128 varint.
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a zigzag signed varint.
pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag(v));
}

/// Reads an unsigned varint from `buf` at `*pos`, advancing it.
pub fn get_uvarint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Reads a zigzag signed varint from `buf` at `*pos`.
pub fn get_varint(buf: &[u8], pos: &mut usize) -> Option<i64> {
    get_uvarint(buf, pos).map(unzigzag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip() {
        let mut w = BitWriter::new();
        let items: Vec<(u64, u32)> = vec![(1, 1), (0b101, 3), (u64::MAX, 64), (0, 7), (12345, 17), (1 << 63, 64)];
        for &(v, n) in &items {
            w.write_bits(v, n);
        }
        w.write_varint(-300);
        let bytes = w.into_bytes();
        let mut r = BitReader::new(&bytes, 0);
        for &(v, n) in &items {
            let mask = if n == 64 { u64::MAX } else { (1 << n) - 1 };
            assert_eq!(r.read_bits(n), Some(v & mask));
        }
        assert_eq!(r.read_varint(), Some(-300));
    }

    #[test]
    fn word_writes_equal_bit_by_bit_writes() {
        // Reference: one bit at a time, most significant first, into whole bytes.
        let mut reference: Vec<bool> = Vec::new();
        let mut w = BitWriter::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..5000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = match i % 4 {
                0 => (x % 65) as u32,
                1 => 1 + (x % 7) as u32,
                _ => (x >> 58) as u32,
            };
            w.write_bits(x, n);
            reference.extend((0..n).rev().map(|b| (x >> b) & 1 == 1));
            assert_eq!(w.bit_len(), reference.len(), "after write {i}");
        }
        let want: Vec<u8> = reference
            .chunks(8)
            .map(|c| c.iter().enumerate().fold(0u8, |b, (j, &bit)| b | (u8::from(bit) << (7 - j))))
            .collect();
        assert_eq!(w.bytes(), &want[..]);
        // Resuming from parts continues the same stream.
        let (buf, free) = w.into_parts();
        let mut w = BitWriter::resume(buf, free);
        w.write_bits(0b1011, 4);
        reference.extend([true, false, true, true]);
        assert_eq!(w.bit_len(), reference.len());
    }

    #[test]
    fn word_reads_equal_bytewise_reads_and_stop_at_the_end() {
        let data: Vec<u8> = (0..40u32).map(|i| (i.wrapping_mul(0x9d) ^ 0x5a) as u8).collect();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for start in 0..24 {
            let (mut fast, mut slow) = (BitReader::new(&data, start), BitReader::new(&data, start));
            loop {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let n = (x % 65) as u32;
                let (a, b) = (fast.read_bits(n), slow.read_bits_bytewise(n));
                assert_eq!(a, b, "{n} bits at {}", slow.pos());
                if a.is_none() {
                    break;
                }
                assert_eq!(fast.pos(), slow.pos());
            }
        }
    }

    #[test]
    fn zigzag_edges() {
        for v in [0, 1, -1, i64::MAX, i64::MIN, 63, -64] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }
}
