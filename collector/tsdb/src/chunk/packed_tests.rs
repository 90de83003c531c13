//! Tests of the packed codec.

use super::*;
use crate::chunk::bits::zigzag;
use crate::chunk::intstream::{best_width, bit_len};

fn round_trip(ts: &[i64], vs: &[f64]) -> usize {
    let enc = encode(ts, vs);
    let got: Vec<(i64, u64)> = PackedIter::new(&enc).expect("header").map(|(t, v)| (t, v.to_bits())).collect();
    let want: Vec<(i64, u64)> = ts.iter().zip(vs).map(|(&t, v)| (t, v.to_bits())).collect();
    assert_eq!(got, want);
    enc.len()
}

#[test]
fn constant_regular_series_is_tiny() {
    let ts: Vec<i64> = (0..1000).map(|i| 1_000 + i * 15_000).collect();
    let vs = vec![42.0; 1000];
    assert!(round_trip(&ts, &vs) < 24);
}

#[test]
fn integer_counter_and_decimals() {
    let ts: Vec<i64> = (0..500).map(|i| i * 1000 + (i % 3)).collect();
    let mut c = 1e9;
    let vs: Vec<f64> = (0..500)
        .map(|i| {
            c += f64::from((i * 7919) % 4096);
            c
        })
        .collect();
    round_trip(&ts, &vs);
    let cpu: Vec<f64> = (0..500).map(|i| f64::from(123_456 + i * 37) / 100.0).collect();
    let size = round_trip(&ts, &cpu);
    assert!(size < 500 * 2, "fixed-decimal counter should pack well, got {size}");
}

#[test]
fn stale_markers_are_listed_apart_from_integer_and_constant_values() {
    let stale = f64::from_bits(STALE);
    let ts: Vec<i64> = (0..120).map(|i| i * 1000).collect();
    // A counter whose target failed twice (one marker, then two in a row), and a constant.
    let counter: Vec<f64> = (0..120)
        .map(|i| if matches!(i, 0 | 40 | 41 | 119) { stale } else { f64::from(1000 + i * 7) / 1000.0 })
        .collect();
    let size = round_trip(&ts, &counter);
    let all_xor = encode_with(&ts, &counter, Choices { max_scale: None, ..Choices::default() }).len();
    assert!(size * 4 < all_xor, "{size} vs {all_xor}");
    let lay = layout(&encode(&ts, &counter)).expect("layout");
    assert!(lay.value_encoding.ends_with("+stale") && lay.scale_order.0 == 3, "{lay:?}");
    let constant: Vec<f64> = (0..120).map(|i| if i % 50 == 7 { stale } else { 5.0 }).collect();
    assert!(round_trip(&ts, &constant) < 30);
    assert_eq!(layout(&encode(&ts, &constant)).expect("layout").value_encoding, "const+stale");
    round_trip_shared(&ts, &counter, 2);
    // Markers alone, or with values only XOR can hold, stay XOR.
    round_trip(&ts[..3], &[stale, stale, stale]);
    let odd = [stale, 0.1 + 0.2, 7.0, stale];
    round_trip(&ts[..4], &odd);
    assert_eq!(layout(&encode(&ts[..4], &odd)).expect("layout").value_encoding, "xor");
}

#[test]
fn noisy_differences_take_the_rice_stream_when_smaller() {
    // A float counter scraped with jitter: second differences spread around 0 (as the fleet
    // simulator's CPU counters), plus one outlier that takes the escape.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let ts: Vec<i64> = (0..240).map(|i| i * 1000).collect();
    let mut m = 5_000_000i64;
    let vs: Vec<f64> = (0..240)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let noise = (x % 9) as i64 - 4 + if i == 100 { 1 << 40 } else { 0 };
            m += 481 + noise * i64::from(x.is_multiple_of(3));
            m as f64 / 1000.0
        })
        .collect();
    let with = round_trip(&ts, &vs);
    let without = encode_with(&ts, &vs, Choices { rice: false, ..Choices::default() }).len();
    assert!(with < without, "{with} vs {without}");
    assert_eq!(layout(&encode(&ts, &vs)).expect("layout").value_encoding, "rice");
    round_trip_shared(&ts, &vs, 0);
}

#[test]
fn odd_values_fall_back_to_xor() {
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let ts = [1, 2, 5, 9, 100, 101];
    let vs = [0.1 + 0.2, stale, -0.0, f64::NAN, f64::INFINITY, 1e300];
    round_trip(&ts, &vs);
    round_trip(&[7], &[stale]);
    round_trip(&[7, 9], &[1.0, 2.0]);
    round_trip(&[7, 9, 10], &[1.0, 2.0, 4.0]);
}

/// Column and shared chunk laid out in one "file" with `gap` bytes between; decoded back.
fn round_trip_shared(ts: &[i64], vs: &[f64], gap: usize) {
    let mut file = vec![0xAAu8; 3];
    let col_off = file.len();
    file.extend(encode_ts_column(ts));
    file.extend(std::iter::repeat_n(0x55u8, gap));
    let off = file.len();
    let chunk = encode_shared((off - col_off) as u64, vs);
    file.extend(&chunk);
    let got: Vec<(i64, u64)> =
        PackedIter::new_in(&file, off, chunk.len()).expect("header").map(|(t, v)| (t, v.to_bits())).collect();
    let want: Vec<(i64, u64)> = ts.iter().zip(vs).map(|(&t, v)| (t, v.to_bits())).collect();
    assert_eq!(got, want);
    assert!(PackedIter::new(&chunk).is_none(), "a shared chunk needs its file");
    let lay = layout(&chunk).expect("layout");
    assert_eq!((lay.ts_encoding, lay.column_back, lay.samples), ("shared", Some((off - col_off) as u64), ts.len()));
}

#[test]
fn shared_column_mismatch_is_rejected() {
    let ts: Vec<i64> = (0..10).map(|i| i * 1000).collect();
    let mut file = encode_ts_column(&ts);
    let off = file.len();
    let chunk = encode_shared(off as u64, &[1.0; 9]);
    file.extend(&chunk);
    assert!(PackedIter::new_in(&file, off, chunk.len()).is_none(), "sample count differs from the column's");
    let chunk = encode_shared(off as u64 + 1, &[1.0; 10]);
    file.truncate(off);
    file.extend(&chunk);
    assert!(PackedIter::new_in(&file, off, chunk.len()).is_none(), "column before the file start");
}

use proptest::strategy::Strategy as _;

proptest::proptest! {
    #[test]
    fn any_samples_round_trip(
        dts in proptest::collection::vec(proptest::prop_oneof![proptest::strategy::Just(1000i64), 0i64..5000, proptest::num::i64::ANY.prop_map(|x| x >> 20)], 1..300),
        kind in 0u8..6,
        raw in proptest::collection::vec(proptest::num::i64::ANY, 300),
    ) {
        let mut t = 0i64;
        let ts: Vec<i64> = dts.iter().map(|d| { t = t.wrapping_add(*d); t }).collect();
        let vs: Vec<f64> = raw.iter().take(ts.len()).enumerate().map(|(i, &r)| match kind {
            0 => ((r >> 40) * 4096) as f64,
            1 => (r >> 44) as f64 / 100.0,
            2 => f64::from_bits(r as u64),
            3 => if i % 7 == 0 { f64::from_bits(0x7ff0_0000_0000_0002) } else { (r % 3) as f64 },
            4 if r % 16 == 0 => f64::from_bits(STALE),
            4 => (r >> 50) as f64 / 1000.0,
            _ => i as f64 * 0.1,
        }).collect();
        round_trip(&ts, &vs);
        round_trip_shared(&ts, &vs, (raw[0] & 7) as usize);
    }
}

#[test]
fn garbage_does_not_panic() {
    for seed in 0u32..2000 {
        let data: Vec<u8> = (0..(seed % 40)).map(|i| (seed.wrapping_mul(2_654_435_761).rotate_left(i)) as u8).collect();
        if let Some(it) = PackedIter::new(&data) {
            let _ = it.take(10_000).count();
        }
        let off = (seed as usize / 40) % (data.len() + 1);
        if let Some(it) = PackedIter::new_in(&data, off, data.len() - off) {
            let _ = it.take(10_000).count();
        }
    }
}

fn best_width_naive(values: &[i64]) -> (u32, bool, u64) {
    let mut hist = [0u64; 65];
    for &v in values {
        hist[bit_len(zigzag(v)) as usize] += 1;
    }
    let mut best = (1u32, false, u64::MAX);
    for plain in [false, true] {
        for b in 1..=64u32 {
            let mut cost = 7;
            for (len, &count) in hist.iter().enumerate() {
                let len = len as u32;
                let bits = match (plain, len) {
                    (false, 0) => 1,
                    (false, l) if l <= b => 2 + b,
                    (false, l) => 2 + 6 + l,
                    (true, l) if l <= b => 1 + b,
                    (true, l) => 1 + 6 + l,
                };
                cost += count * u64::from(bits);
            }
            if cost < best.2 {
                best = (b, plain, cost);
            }
        }
    }
    best
}

#[test]
fn best_width_matches_the_exhaustive_search() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    assert_eq!(best_width(&[]), best_width_naive(&[]));
    for round in 0..2000 {
        let n = (next() % 300) as usize;
        let vals: Vec<i64> = (0..n)
            .map(|_| {
                let r = next();
                match round % 4 {
                    0 => 0,
                    1 => (r % 7) as i64 - 3,
                    2 => (r >> (r % 64)) as i64,
                    _ => {
                        if r % 3 == 0 {
                            0
                        } else {
                            (r % 1000) as i64 - 500
                        }
                    }
                }
            })
            .collect();
        assert_eq!(best_width(&vals), best_width_naive(&vals), "{vals:?}");
    }
}
