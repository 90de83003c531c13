//! Block format: version-1 blocks (written before timestamp columns and pair refs) stay
//! readable; version 2 shares timestamp columns and reads back bit-exact.

use std::path::Path;

use crate::common::TempDir;
use osprey_tsdb::Labels;
use osprey_tsdb::Matcher;
use osprey_tsdb::block::{Block, Compaction, write_block};

const FIXTURE: &str = "tests/fixtures/block-v1/01M84J7ESFRAG4DWY29SJ8Q178";
const MIN_T: i64 = 1_700_000_000_000;
const MAX_T: i64 = MIN_T + 7_200_000;

/// The series of the version-1 block fixture (`tests/fixtures/block-v1`).
fn fixture_series() -> Vec<(Labels, Vec<(i64, f64)>)> {
    let base = 1_700_000_000_000i64;
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let mut out = Vec::new();
    for s in 0..6u32 {
        let n = if s == 5 { 9000 } else { 200 };
        let samples = (0..n)
            .map(|i| {
                let i64i = i64::from(i);
                let t = base + i64i * 1000 + if s % 2 == 1 && i % 7 == 3 { 13 } else { 0 };
                let v = match s {
                    0 => 42.0,
                    1 => f64::from(i * 17),
                    2 => f64::from(100_000 + i * 1234) / 1000.0,
                    3 => {
                        if i == 50 {
                            stale
                        } else {
                            (f64::from(i) / 9.0).sin()
                        }
                    }
                    _ => f64::from(i % 5),
                };
                (t, v)
            })
            .collect();
        let labels = Labels::from_owned(vec![
            ("__name__".to_owned(), format!("fixture_{}", s % 3)),
            ("instance".to_owned(), format!("host-{s}:9100")),
            ("job".to_owned(), "node".to_owned()),
        ]);
        out.push((labels, samples));
    }
    out
}

fn bits(s: &[(i64, f64)]) -> Vec<(i64, u64)> {
    s.iter().map(|&(t, v)| (t, v.to_bits())).collect()
}

/// Every series of the block, in id order, with its samples.
fn read_all(b: &Block) -> Vec<(Labels, Vec<(i64, u64)>)> {
    (0..b.num_series() as u32)
        .map(|id| {
            let (l, chunks) = b.series(id, i64::MIN, i64::MAX).expect("series");
            let s: Vec<(i64, f64)> = chunks.iter().flat_map(|c| c.iter()).collect();
            (l, bits(&s))
        })
        .collect()
}

fn expected() -> Vec<(Labels, Vec<(i64, u64)>)> {
    let mut want: Vec<(Labels, Vec<(i64, u64)>)> = fixture_series()
        .into_iter()
        .map(|(l, s)| {
            let inside: Vec<(i64, f64)> = s.into_iter().filter(|x| x.0 >= MIN_T && x.0 < MAX_T).collect();
            (l, bits(&inside))
        })
        .collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    want
}

#[test]
fn version_1_block_written_by_the_previous_format_reads_back_exactly() {
    let b = Block::open(Path::new(FIXTURE)).expect("open v1 fixture");
    assert_eq!(b.meta.version, 1);
    assert_eq!(read_all(&b), expected());
    let sel = b.select(&[Matcher::eq("__name__", "fixture_1")], i64::MIN, i64::MAX);
    let hosts: Vec<&str> = sel.iter().map(|(l, _)| l.get("instance").unwrap_or("")).collect();
    assert_eq!(hosts, ["host-1:9100", "host-4:9100"]);
}

#[test]
fn version_2_block_shares_timestamp_columns_and_is_smaller() {
    let dir = TempDir::new("block-v2");
    let c = Compaction { level: 1, sources: Vec::new(), imported: false };
    let meta = write_block(&dir.0, MIN_T, MAX_T, c, fixture_series()).expect("write").expect("block");
    assert_eq!(meta.version, 2);
    let b = Block::open(&dir.0.join(&meta.ulid)).expect("open v2");
    assert_eq!(read_all(&b), expected());
    let sel = b.select(&[Matcher::eq("__name__", "fixture_1")], i64::MIN, i64::MAX);
    let hosts: Vec<&str> = sel.iter().map(|(l, _)| l.get("instance").unwrap_or("")).collect();
    assert_eq!(hosts, ["host-1:9100", "host-4:9100"]);
    // A query range inside the block still finds the chunks (metas relative to the block).
    let (_, chunks) = b.series(0, MIN_T + 10_000, MIN_T + 20_000).expect("series");
    assert_eq!(chunks.len(), 1);
    let v1 = Block::open(Path::new(FIXTURE)).expect("open v1");
    assert!(meta.stats.num_bytes < v1.meta.stats.num_bytes, "{} vs {}", meta.stats.num_bytes, v1.meta.stats.num_bytes);
    // Series 0, 2 and 4 share the regular timestamps, 1 and 3 the jittered ones; 5 is longer.
    let report = osprey_tsdb::analyze::Breakdown::of(&b);
    assert_eq!(report.columns, 3, "{report:?}");
    assert_eq!(report.timestamps.keys().collect::<Vec<_>>(), ["shared"]);
}

#[test]
fn groups_of_series_with_many_chunks_read_back_in_any_input_order() {
    // 30 series (several groups of 8), up to 3 chunks each, given in reverse label order so
    // that chunk offsets are not in id order; every id is read on its own.
    let dir = TempDir::new("block-v2-groups");
    let c = Compaction { level: 1, sources: Vec::new(), imported: false };
    let mut input: Vec<(Labels, Vec<(i64, f64)>)> = (0..30i64)
        .map(|s| {
            let l = Labels::from_owned(vec![
                ("__name__".to_owned(), format!("m{}", s / 10)),
                ("i".to_owned(), format!("{s:02}")),
                ("job".to_owned(), "j".to_owned()),
            ]);
            let n = (s % 3 + 1) * 7000;
            (l, (0..n).map(|i| (i * 1000 + (i * s) % 5, ((i * s) % 97) as f64)).collect())
        })
        .collect();
    input.reverse();
    let meta = write_block(&dir.0, 0, 30_000_000, c, input.clone()).expect("write").expect("block");
    assert_eq!(meta.stats.num_chunks, 10 + 10 * 2 + 10 * 3);
    let b = Block::open(&dir.0.join(&meta.ulid)).expect("open");
    input.sort_by(|a, b| a.0.cmp(&b.0));
    let want: Vec<(Labels, Vec<(i64, u64)>)> = input.iter().map(|(l, s)| (l.clone(), bits(s))).collect();
    for id in (0..30u32).rev() {
        let (l, chunks) = b.series(id, i64::MIN, i64::MAX).expect("series");
        let s: Vec<(i64, f64)> = chunks.iter().flat_map(|c| c.iter()).collect();
        assert_eq!((l, bits(&s)), want[id as usize], "series {id}");
    }
    assert!(b.series(30, i64::MIN, i64::MAX).is_none());
    let sel = b.select(&[Matcher::eq("__name__", "m2")], i64::MIN, i64::MAX);
    assert_eq!(sel.len(), 10);
    assert!(sel.iter().all(|(l, _)| l.get("__name__") == Some("m2")));
}
