//! Osprey's sealed-chunk codec. Each sealed chunk picks, by trial, the smallest of:
//!
//! * timestamps: `REGULAR` (a start and one period: 0 bits per sample) or `DOD`
//!   (delta-of-delta through an adaptive integer stream);
//! * values: `CONST` (one value), `INT` (values that are exactly `m / 10^k` for integers `m`,
//!   with k = 0..=6 — integer counters and fixed-decimal gauges — as first or second
//!   differences of `m` through the integer stream), or `XOR` (Gorilla).
//!
//! Every encoding is checked bit-exactly at encode time, so decoding is lossless, stale-marker
//! NaNs included (they simply force `XOR` or `CONST`).
//!
//! Layout: tag byte (ts << 4 | value), uvarint n, varint t0, then per-encoding header fields,
//! then a bit stream of timestamps followed by a bit stream of values.

use super::bits::{BitReader, BitWriter, get_uvarint, get_varint, put_uvarint, put_varint};
use super::intstream::{IntStream, int_plan, write_int_stream, write_rice_stream};
use super::xor::{XorValues, write_xor_values};

const TS_REGULAR: u8 = 0;
const TS_DOD: u8 = 1;
const TS_SHARED: u8 = 2;
const V_CONST: u8 = 0;
const V_INT: u8 = 1;
const V_XOR: u8 = 2;
/// As `INT`, with a Rice-coded difference stream.
const V_RICE: u8 = 3;
/// Flag on a value encoding: the chunk's stale markers are a list of positions, the encoding
/// covers the other values (a failed scrape then does not force `XOR` on its series).
const V_STALE: u8 = 8;
const STALE: u64 = crate::STALE_NAN_BITS;
const POW10: [f64; 7] = [1.0, 10.0, 100.0, 1000.0, 10_000.0, 100_000.0, 1_000_000.0];

/// Which encodings [`encode_with`] may choose (all on in [`encode`]); the codec benchmark
/// turns them off one by one to measure what each buys.
#[derive(Debug, Clone, Copy)]
pub struct Choices {
    /// Regular timestamps stored as a period.
    pub regular_ts: bool,
    /// Constant values stored once.
    pub constant: bool,
    /// Integer / fixed-decimal values as integer differences; the largest decimal scale tried.
    pub max_scale: Option<u8>,
    /// Rice coding for integer differences when it is smaller than the adaptive stream.
    pub rice: bool,
}

impl Default for Choices {
    fn default() -> Self {
        Self { regular_ts: true, constant: true, max_scale: Some(6), rice: true }
    }
}

/// Encodes time-ordered samples (at least one) into a packed chunk.
pub fn encode(ts: &[i64], vs: &[f64]) -> Vec<u8> {
    encode_with(ts, vs, Choices::default())
}

/// [`encode`] restricted to some encodings.
pub fn encode_with(ts: &[i64], vs: &[f64], choices: Choices) -> Vec<u8> {
    assert!(!ts.is_empty() && ts.len() == vs.len(), "packed::encode needs matching non-empty slices");
    let mut head = Vec::with_capacity(32);
    let mut bits = BitWriter::new();
    let (ts_enc, delta) = ts_encoding(ts, choices.regular_ts);
    let (values, stale) = choose_values(vs, choices);
    head.push((ts_enc << 4) | values.code() | if stale.is_empty() { 0 } else { V_STALE });
    put_uvarint(&mut head, ts.len() as u64);
    put_ts_fields(&mut head, &mut bits, ts, ts_enc, delta);
    if ts_enc == TS_DOD {
        put_uvarint(&mut head, bits.bit_len() as u64);
    }
    put_values(&mut head, &mut bits, vs, values, &stale);
    head.extend_from_slice(bits.bytes());
    head
}

/// Encodes timestamps alone, as a column that chunks written by [`encode_shared`] refer to
/// (a block stores each distinct column once: every series of a target has the same
/// timestamps). Layout: ts encoding byte, uvarint n, varint t0, varint delta (n > 1), then the
/// delta-of-delta stream for `DOD`.
pub fn encode_ts_column(ts: &[i64]) -> Vec<u8> {
    assert!(!ts.is_empty(), "packed::encode_ts_column needs samples");
    let (ts_enc, delta) = ts_encoding(ts, true);
    let mut head = vec![ts_enc];
    put_uvarint(&mut head, ts.len() as u64);
    let mut bits = BitWriter::new();
    put_ts_fields(&mut head, &mut bits, ts, ts_enc, delta);
    head.extend_from_slice(bits.bytes());
    head
}

/// Encodes values (at least one) whose timestamps are the [`encode_ts_column`] column that
/// starts `back` bytes before the first byte of the returned chunk in the same file. Layout:
/// tag (`SHARED` << 4 | value encoding), uvarint n, uvarint back, value header fields, value
/// bit stream.
pub fn encode_shared(back: u64, vs: &[f64]) -> Vec<u8> {
    assert!(!vs.is_empty(), "packed::encode_shared needs samples");
    let mut head = Vec::with_capacity(24);
    let mut bits = BitWriter::new();
    let (values, stale) = choose_values(vs, Choices::default());
    head.push((TS_SHARED << 4) | values.code() | if stale.is_empty() { 0 } else { V_STALE });
    put_uvarint(&mut head, vs.len() as u64);
    put_uvarint(&mut head, back);
    put_values(&mut head, &mut bits, vs, values, &stale);
    head.extend_from_slice(bits.bytes());
    head
}

fn ts_encoding(ts: &[i64], allow_regular: bool) -> (u8, i64) {
    let delta = if ts.len() > 1 { ts[1].wrapping_sub(ts[0]) } else { 0 };
    let regular = allow_regular && ts.windows(2).all(|w| w[1].wrapping_sub(w[0]) == delta);
    (if regular { TS_REGULAR } else { TS_DOD }, delta)
}

fn put_ts_fields(head: &mut Vec<u8>, bits: &mut BitWriter, ts: &[i64], ts_enc: u8, delta: i64) {
    put_varint(head, ts[0]);
    if ts.len() > 1 {
        put_varint(head, delta);
    }
    if ts_enc == TS_DOD {
        let dods: Vec<i64> =
            ts.windows(3).map(|w| (w[2].wrapping_sub(w[1])).wrapping_sub(w[1].wrapping_sub(w[0]))).collect();
        write_int_stream(bits, &dods);
    }
}

/// The value encoding, and the stale-marker positions it leaves out (empty when it covers all
/// values: no markers, or `XOR`, which stores them as they are).
fn choose_values(vs: &[f64], choices: Choices) -> (ValueStream, Vec<usize>) {
    let stale: Vec<usize> = vs.iter().enumerate().filter(|(_, v)| v.to_bits() == STALE).map(|(i, _)| i).collect();
    if stale.is_empty() || stale.len() == vs.len() {
        return (choose_values_of(vs, choices), Vec::new());
    }
    let rest: Vec<f64> = vs.iter().copied().filter(|v| v.to_bits() != STALE).collect();
    match choose_values_of(&rest, choices) {
        ValueStream::Xor => (ValueStream::Xor, Vec::new()),
        other => (other, stale),
    }
}

fn choose_values_of(vs: &[f64], choices: Choices) -> ValueStream {
    let first = vs[0].to_bits();
    if choices.constant && vs.iter().all(|v| v.to_bits() == first) {
        ValueStream::Const
    } else if let Some((k, ms)) = choices.max_scale.and_then(|m| as_scaled_ints(vs, m)) {
        let o1 = diffs(&ms, 1);
        let o2 = diffs(&ms, 2);
        let (p1, p2) = (int_plan(&o1, choices.rice), int_plan(&o2, choices.rice));
        if o2.len() + 1 == o1.len() && p2.2 + 64 < p1.2 {
            let d1 = o1.first().copied().unwrap_or(0);
            ValueStream::Int { k, order: 2, first: ms[0], d1, stream: o2, plan: (p2.0, p2.1) }
        } else {
            ValueStream::Int { k, order: 1, first: ms[0], d1: 0, stream: o1, plan: (p1.0, p1.1) }
        }
    } else {
        ValueStream::Xor
    }
}

/// Writes the stale-marker positions (if any; uvarint count, then gaps), the value header
/// fields and the value stream.
fn put_values(head: &mut Vec<u8>, bits: &mut BitWriter, vs: &[f64], values: ValueStream, stale: &[usize]) {
    let first = if stale.is_empty() {
        vs[0]
    } else {
        put_uvarint(head, stale.len() as u64);
        let mut next = 0;
        for &p in stale {
            put_uvarint(head, (p - next) as u64);
            next = p + 1;
        }
        vs.iter().copied().find(|v| v.to_bits() != STALE).unwrap_or(vs[0])
    };
    match values {
        ValueStream::Const => head.extend_from_slice(&first.to_bits().to_le_bytes()),
        ValueStream::Int { k, order, first, d1, stream, plan } => {
            head.push((k << 4) | order);
            put_varint(head, first);
            if order == 2 {
                put_varint(head, d1);
            }
            match plan {
                (g, Some(rk)) => write_rice_stream(bits, &stream, g, rk),
                (_, None) => write_int_stream(bits, &stream),
            }
        }
        ValueStream::Xor => {
            let vbits: Vec<u64> = vs.iter().map(|v| v.to_bits()).collect();
            head.extend_from_slice(&vbits[0].to_le_bytes());
            write_xor_values(bits, &vbits);
        }
    }
}

enum ValueStream {
    Const,
    Int { k: u8, order: u8, first: i64, d1: i64, stream: Vec<i64>, plan: (u64, Option<u32>) },
    Xor,
}

impl ValueStream {
    fn code(&self) -> u8 {
        match self {
            Self::Const => V_CONST,
            Self::Int { plan: (_, None), .. } => V_INT,
            Self::Int { .. } => V_RICE,
            Self::Xor => V_XOR,
        }
    }
}

/// The smallest decimal scale k for which every value is exactly `m / 10^k`, with the `m`s.
fn as_scaled_ints(vs: &[f64], max_scale: u8) -> Option<(u8, Vec<i64>)> {
    'scale: for (k, &p) in POW10.iter().enumerate().take(usize::from(max_scale) + 1) {
        let mut ms = Vec::with_capacity(vs.len());
        for &v in vs {
            let m = (v * p).round();
            if !m.is_finite() || m.abs() >= 9.007_199_254_740_992e15 {
                continue 'scale;
            }
            let m = m as i64;
            let back = if k == 0 { m as f64 } else { m as f64 / p };
            if back.to_bits() != v.to_bits() {
                continue 'scale;
            }
            ms.push(m);
        }
        return Some((k as u8, ms));
    }
    None
}

fn diffs(ms: &[i64], order: usize) -> Vec<i64> {
    let d1: Vec<i64> = ms.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    if order == 1 { d1 } else { d1.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect() }
}

enum TsState {
    Regular { delta: i64 },
    Dod { stream: IntStream, delta: i64 },
}

enum VState {
    Const(u64),
    Int { k: u8, order: u8, m: i64, d: i64, stream: IntStream },
    Xor(XorValues),
}

/// Iterates a packed chunk's samples.
pub struct PackedIter<'a> {
    n: usize,
    i: usize,
    t: i64,
    ts: TsState,
    vs: VState,
    tr: BitReader<'a>,
    vr: BitReader<'a>,
    first_v: u64,
    failed: bool,
    vi: usize,
    stale: StaleList<'a>,
}

impl<'a> PackedIter<'a> {
    /// Parses the header; `None` on malformed data, or for a chunk whose timestamps are a
    /// shared column (those need [`PackedIter::new_in`]).
    pub fn new(data: &'a [u8]) -> Option<Self> {
        Self::parse(data, None)
    }

    /// Parses the chunk at `file[off..off + len]`, whose shared timestamp column (if any) is
    /// earlier in `file`.
    pub fn new_in(file: &'a [u8], off: usize, len: usize) -> Option<Self> {
        Self::parse(file.get(off..off.checked_add(len)?)?, Some((file, off)))
    }

    fn parse(data: &'a [u8], file: Option<(&'a [u8], usize)>) -> Option<Self> {
        let tag = *data.first()?;
        let mut pos = 1;
        let n = usize::try_from(get_uvarint(data, &mut pos)?).ok()?;
        let ts_enc = tag >> 4;
        // The timestamp fields and stream: in the chunk, or in a column earlier in the file.
        let (ts_src, mut tpos) = if ts_enc == TS_SHARED {
            let back = usize::try_from(get_uvarint(data, &mut pos)?).ok()?;
            let (file, off) = file?;
            let col = file.get(off.checked_sub(back)?..off)?;
            let mut cpos = 1;
            if usize::try_from(get_uvarint(col, &mut cpos)?).ok()? != n {
                return None;
            }
            (col, cpos)
        } else {
            (data, pos)
        };
        let ts_enc = if ts_enc == TS_SHARED { *ts_src.first()? } else { ts_enc };
        let t0 = get_varint(ts_src, &mut tpos)?;
        let delta = if n > 1 { get_varint(ts_src, &mut tpos)? } else { 0 };
        let ts_bits = if ts_enc == TS_DOD && tag >> 4 != TS_SHARED {
            usize::try_from(get_uvarint(ts_src, &mut tpos)?).ok()?
        } else {
            0
        };
        if tag >> 4 != TS_SHARED {
            pos = tpos;
        }
        let mut stale = StaleList { data, pos: 0, left: 0, next: 0 };
        if tag & V_STALE != 0 {
            stale.left = usize::try_from(get_uvarint(data, &mut pos)?).ok()?;
            if stale.left == 0 || stale.left >= n {
                return None;
            }
            stale.next = usize::try_from(get_uvarint(data, &mut pos)?).ok()?;
            stale.pos = pos;
            for _ in 1..stale.left {
                get_uvarint(data, &mut pos)?;
            }
        }
        let nv = n - stale.left;
        let (v_enc, first_v, vhead);
        match tag & !V_STALE & 0xf {
            V_CONST | V_XOR => {
                let b: [u8; 8] = data.get(pos..pos + 8)?.try_into().ok()?;
                pos += 8;
                first_v = u64::from_le_bytes(b);
                v_enc = tag & !V_STALE & 0xf;
                if v_enc == V_XOR && stale.left > 0 {
                    return None;
                }
                vhead = (0, 0, 0, 0);
            }
            V_INT | V_RICE => {
                let ko = *data.get(pos)?;
                pos += 1;
                let m0 = get_varint(data, &mut pos)?;
                let d1 = if ko & 0xf == 2 { get_varint(data, &mut pos)? } else { 0 };
                let k = ko >> 4;
                if usize::from(k) >= POW10.len() || !(1..=2).contains(&(ko & 0xf)) {
                    return None;
                }
                first_v = scaled(m0, k).to_bits();
                v_enc = tag & !V_STALE & 0xf;
                vhead = (k, ko & 0xf, m0, d1);
            }
            _ => return None,
        }
        let stream = data.get(pos..)?;
        let mut tr =
            if tag >> 4 == TS_SHARED { BitReader::new(ts_src.get(tpos..)?, 0) } else { BitReader::new(stream, 0) };
        let ts = if ts_enc == TS_DOD {
            let s = if n > 2 { IntStream::start(&mut tr)? } else { IntStream::EMPTY };
            TsState::Dod { stream: s, delta }
        } else if ts_enc == TS_REGULAR {
            TsState::Regular { delta }
        } else {
            return None;
        };
        let mut vr = BitReader::new(stream, ts_bits);
        let vs = match v_enc {
            V_CONST => VState::Const(first_v),
            V_XOR => VState::Xor(XorValues::new(first_v)),
            _ => {
                let (k, order, m, d) = vhead;
                let needed = if order == 2 { 2 } else { 1 };
                let s = if nv <= needed {
                    IntStream::EMPTY
                } else if v_enc == V_RICE {
                    IntStream::start_rice(&mut vr)?
                } else {
                    IntStream::start(&mut vr)?
                };
                VState::Int { k, order, m, d, stream: s }
            }
        };
        Some(Self { n, i: 0, t: t0, ts, vs, tr, vr, first_v, failed: false, vi: 0, stale })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the chunk is empty.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Whether decoding stopped on malformed data.
    pub fn failed(&self) -> bool {
        self.failed
    }

    fn step(&mut self) -> Option<(i64, u64)> {
        if self.i > 0 {
            match &mut self.ts {
                TsState::Regular { delta } => self.t = self.t.wrapping_add(*delta),
                TsState::Dod { stream, delta } => {
                    if self.i >= 2 {
                        *delta = delta.wrapping_add(stream.next(&mut self.tr)?);
                    }
                    self.t = self.t.wrapping_add(*delta);
                }
            }
        }
        if self.stale.left > 0 && self.i == self.stale.next {
            self.stale.left -= 1;
            if self.stale.left > 0 {
                let gap = usize::try_from(get_uvarint(self.stale.data, &mut self.stale.pos)?).ok()?;
                self.stale.next = self.stale.next.checked_add(gap)?.checked_add(1)?;
            }
            return Some((self.t, STALE));
        }
        // Index among the values the encoding covers (stale markers left out).
        let vi = self.vi;
        self.vi += 1;
        if vi == 0 {
            return Some((self.t, self.first_v));
        }
        let v = match &mut self.vs {
            VState::Const(b) => *b,
            VState::Xor(x) => x.next(&mut self.vr)?,
            VState::Int { k, order, m, d, stream } => {
                if *order == 1 {
                    *m = m.wrapping_add(stream.next(&mut self.vr)?);
                } else {
                    if vi >= 2 {
                        *d = d.wrapping_add(stream.next(&mut self.vr)?);
                    }
                    *m = m.wrapping_add(*d);
                }
                scaled(*m, *k).to_bits()
            }
        };
        Some((self.t, v))
    }
}

/// Stale-marker positions still to come (read lazily from the header).
struct StaleList<'a> {
    data: &'a [u8],
    pos: usize,
    left: usize,
    next: usize,
}

/// Where a packed chunk's bits go, for `tsdb analyze`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Timestamp encoding: `"regular"`, `"dod"` or `"shared"` (a reference to a column).
    pub ts_encoding: &'static str,
    /// Value encoding: `"const"`, `"int"` (with its decimal scale and difference order) or `"xor"`;
    /// `"+stale"` when stale markers are listed apart.
    pub value_encoding: &'static str,
    /// Decimal scale k and difference order of an `int` chunk (0 otherwise).
    pub scale_order: (u8, u8),
    /// Samples.
    pub samples: usize,
    /// Bits of the tag and sample count.
    pub common_bits: u64,
    /// Bits of timestamp header fields and the timestamp stream.
    pub ts_bits: u64,
    /// Bits of value header fields and the value stream (padding included).
    pub value_bits: u64,
    /// For `shared` timestamps: how many bytes before the chunk its column starts.
    pub column_back: Option<u64>,
}

/// Parses a packed chunk's header to tell how many bits its timestamps and values take.
pub fn layout(data: &[u8]) -> Option<Layout> {
    let tag = *data.first()?;
    let mut pos = 1;
    let n = usize::try_from(get_uvarint(data, &mut pos)?).ok()?;
    let common = pos;
    let ts_enc = tag >> 4;
    let mut column_back = None;
    if ts_enc == TS_SHARED {
        column_back = Some(get_uvarint(data, &mut pos)?);
    } else {
        get_varint(data, &mut pos)?;
        if n > 1 {
            get_varint(data, &mut pos)?;
        }
    }
    let ts_stream = if ts_enc == TS_DOD { get_uvarint(data, &mut pos)? } else { 0 };
    let ts_head = pos - common;
    let stale = tag & V_STALE != 0;
    let mut vpos = pos;
    if stale {
        for _ in 0..get_uvarint(data, &mut vpos)?.min(data.len() as u64) {
            get_uvarint(data, &mut vpos)?;
        }
    }
    let (value_encoding, scale_order) = match (tag & !V_STALE & 0xf, stale) {
        (V_CONST, false) => ("const", (0, 0)),
        (V_CONST, true) => ("const+stale", (0, 0)),
        (V_XOR, _) => ("xor", (0, 0)),
        (V_INT | V_RICE, _) => {
            let ko = *data.get(vpos)?;
            let name = match (tag & 7 == V_RICE, stale) {
                (false, false) => "int",
                (false, true) => "int+stale",
                (true, false) => "rice",
                (true, true) => "rice+stale",
            };
            (name, (ko >> 4, ko & 0xf))
        }
        _ => return None,
    };
    let ts_bits = 8 * ts_head as u64 + ts_stream;
    let total = 8 * data.len() as u64;
    Some(Layout {
        ts_encoding: match ts_enc {
            TS_DOD => "dod",
            TS_SHARED => "shared",
            _ => "regular",
        },
        value_encoding,
        scale_order,
        samples: n,
        common_bits: 8 * common as u64,
        ts_bits,
        value_bits: total.checked_sub(ts_bits + 8 * common as u64)?,
        column_back,
    })
}

fn scaled(m: i64, k: u8) -> f64 {
    if k == 0 { m as f64 } else { m as f64 / POW10[usize::from(k)] }
}

impl Iterator for PackedIter<'_> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        if self.i >= self.n || self.failed {
            return None;
        }
        let s = self.step();
        self.i += 1;
        if let Some((t, b)) = s {
            Some((t, f64::from_bits(b)))
        } else {
            self.failed = true;
            None
        }
    }
}

#[cfg(test)]
#[path = "packed_tests.rs"]
mod tests;
