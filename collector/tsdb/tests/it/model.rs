//! Model check: random appends, commits, rollbacks, reopens (WAL replay), head cuts and
//! compactions; every query must equal a `BTreeMap` of what was committed.

use std::collections::BTreeMap;

use crate::common::{TempDir, dump, labels, test_opts};
use osprey_tsdb::{Db, Labels};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append { series: u8, dt: i16, v: i16, frac: bool },
    Commit,
    Rollback,
    Reopen,
    Maintain,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0u8..6, -300i16..400, any::<i16>(), any::<bool>()).prop_map(|(series, dt, v, frac)| Op::Append { series, dt, v, frac }),
        4 => Just(Op::Commit),
        1 => Just(Op::Rollback),
        1 => Just(Op::Reopen),
        1 => Just(Op::Maintain),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn queries_match_a_btreemap(ops in proptest::collection::vec(op(), 1..120), window in prop_oneof![Just(0i64), Just(250i64)]) {
        let dir = TempDir::new("model");
        let opts = osprey_tsdb::Options { out_of_order_window_ms: window, ..test_opts(1000) };
        let mut db = Some(Db::open(&dir.0, opts.clone()).expect("open"));
        let mut model: BTreeMap<Labels, BTreeMap<i64, u64>> = BTreeMap::new();
        let mut staged: Vec<(Labels, i64, u64)> = Vec::new();
        let mut app = Some(db.as_ref().expect("db").appender());
        let mut clock: BTreeMap<u8, i64> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Append { series, dt, v, frac } => {
                    let l = labels(&[("__name__", "m"), ("s", &series.to_string())]);
                    let t = (clock.get(&series).copied().unwrap_or(0) + i64::from(dt)).max(0);
                    let v = if frac { f64::from(v) / 100.0 } else { f64::from(v) };
                    let ok = app.as_mut().expect("appender").append(&l, t, v).is_ok();
                    let committed_last = model.get(&l).and_then(|m| m.last_key_value()).map(|(t, _)| *t);
                    let staged_last = staged.iter().filter(|s| s.0 == l).map(|s| s.1).max();
                    // The newer of the two: an out-of-order sample staged after a commit is older
                    // than the committed one.
                    let last = staged_last.max(committed_last);
                    if ok {
                        staged.push((l, t, v.to_bits()));
                        let c = clock.entry(series).or_insert(0);
                        *c = (*c).max(t);
                    } else {
                        // Only rejections the model predicts: same or older timestamp, or
                        // older than the data already cut into blocks.
                        let min_valid = db.as_ref().expect("db").min_valid_time();
                        prop_assert!(last.is_some_and(|lt| t <= lt) || t < min_valid);
                    }
                }
                Op::Commit => {
                    app.take().expect("appender").commit().expect("commit");
                    // A head cut since staging makes older staged samples too old.
                    let min_valid = db.as_ref().expect("db").min_valid_time();
                    // The first sample for a timestamp wins; later ones are duplicates.
                    for (l, t, v) in staged.drain(..).filter(|s| s.1 >= min_valid) {
                        model.entry(l).or_default().entry(t).or_insert(v);
                    }
                    app = Some(db.as_ref().expect("db").appender());
                }
                Op::Rollback => {
                    app.take().expect("appender").rollback();
                    staged.clear();
                    app = Some(db.as_ref().expect("db").appender());
                }
                Op::Reopen => {
                    app.take().expect("appender").rollback();
                    staged.clear();
                    drop(db.take());
                    db = Some(Db::open(&dir.0, opts.clone()).expect("reopen"));
                    app = Some(db.as_ref().expect("db").appender());
                }
                Op::Maintain => db.as_ref().expect("db").maintain().expect("maintain"),
            }
            let want: Vec<(Labels, Vec<(i64, u64)>)> = model
                .iter()
                .map(|(l, m)| (l.clone(), m.iter().map(|(t, v)| (*t, *v)).collect::<Vec<_>>()))
                .filter(|(_, v)| !v.is_empty())
                .collect();
            prop_assert_eq!(dump(db.as_ref().expect("db"), i64::MIN, i64::MAX), want);
        }
    }
}
