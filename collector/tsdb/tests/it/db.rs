//! Database behaviour: appends, queries, matchers, rejections, directory checks, blocks.

use crate::common::{TempDir, dump, labels, test_opts};
use osprey_tsdb::{AppendError, Db, Error, MatchOp, Matcher, STALE_NAN_BITS};

#[test]
fn append_commit_select_with_matchers_and_stale_markers() {
    let dir = TempDir::new("basic");
    let db = Db::open(&dir.0, test_opts(7_200_000)).expect("open");
    let mut a = db.appender();
    let stale = f64::from_bits(STALE_NAN_BITS);
    for (i, job) in ["api", "db", "web"].iter().enumerate() {
        for t in 0..10 {
            let l = labels(&[("__name__", "up"), ("job", job), ("instance", &format!("h{i}"))]);
            a.append(&l, t * 1000, if t == 9 { stale } else { t as f64 }).expect("append");
        }
    }
    a.append(&labels(&[("__name__", "other"), ("env", "prod")]), 5, 1.0).expect("append");
    // Not visible before commit.
    assert!(dump(&db, 0, 100_000).is_empty());
    a.commit().expect("commit");

    let q = db.querier(0, 100_000);
    let sel = |ms: &[Matcher]| {
        q.select(ms).into_iter().map(|s| s.labels.get("job").unwrap_or("-").to_owned()).collect::<Vec<_>>()
    };
    let m = |op, n: &str, v: &str| Matcher::new(op, n, v).expect("matcher");
    assert_eq!(sel(&[m(MatchOp::Eq, "__name__", "up")]), ["api", "db", "web"]);
    assert_eq!(sel(&[m(MatchOp::Re, "job", "a.*|w.b")]), ["api", "web"]);
    assert_eq!(sel(&[m(MatchOp::Eq, "__name__", "up"), m(MatchOp::Ne, "job", "db")]), ["api", "web"]);
    assert_eq!(sel(&[m(MatchOp::Eq, "__name__", "up"), m(MatchOp::Nre, "job", "api|db")]), ["web"]);
    assert_eq!(sel(&[m(MatchOp::Eq, "job", "")]), ["-"], "empty matcher selects series without the label");
    assert_eq!(sel(&[m(MatchOp::Re, "job", "d")]), Vec::<String>::new(), "regex is fully anchored");
    assert_eq!(q.label_names(&[]), ["__name__", "env", "instance", "job"]);
    assert_eq!(q.label_values("job", &[m(MatchOp::Ne, "instance", "h1")]), ["api", "web"]);

    let s = &q.select(&[m(MatchOp::Eq, "job", "db")])[0];
    let got = s.to_vec();
    assert_eq!(got.len(), 10);
    assert_eq!(got[9].1.to_bits(), STALE_NAN_BITS, "stale marker bit pattern preserved");
    assert_eq!(db.querier(2000, 4000).select(&[m(MatchOp::Eq, "job", "db")])[0].to_vec().len(), 3);
    assert_eq!(db.stats().head_series, 4);
    assert_eq!(db.stats().head_samples_appended, 31);
}

#[test]
fn out_of_order_and_duplicates_are_rejected_and_counted() {
    let dir = TempDir::new("ooo");
    let db = Db::open(&dir.0, test_opts(7_200_000)).expect("open");
    let l = labels(&[("__name__", "x")]);
    let mut a = db.appender();
    a.append(&l, 1000, 1.0).expect("first");
    assert_eq!(a.append(&l, 999, 1.0), Err(AppendError::OutOfOrder));
    assert_eq!(a.append(&l, 1000, 2.0), Err(AppendError::Duplicate));
    assert_eq!(a.append(&l, 1000, 1.0), Ok(()), "identical duplicate is ignored");
    a.commit().expect("commit");
    let mut b = db.appender();
    assert_eq!(b.append(&l, 500, 1.0), Err(AppendError::OutOfOrder));
    b.rollback();
    let st = db.stats();
    assert_eq!((st.rejected_out_of_order, st.rejected_duplicate), (2, 1));
    assert!(st.to_text().contains("osprey_tsdb_out_of_order_samples_total{reason=\"out_of_order\"} 2"));
    assert_eq!(dump(&db, 0, 10_000)[0].1, vec![(1000, 1f64.to_bits())]);
}

#[test]
fn locked_directory_and_newer_format_are_refused() {
    let dir = TempDir::new("lock");
    let db = Db::open(&dir.0, test_opts(1000)).expect("open");
    match Db::open(&dir.0, test_opts(1000)) {
        Err(Error::Locked(p)) => assert_eq!(p, dir.0),
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("second open of a locked dir succeeded"),
    }
    drop(db);
    std::fs::write(dir.0.join("FORMAT"), "osprey-tsdb 99\n").expect("write");
    let err = Db::open(&dir.0, test_opts(1000)).err().expect("must refuse");
    assert!(err.to_string().contains("newer than the supported"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.0.join("FORMAT")).expect("read"), "osprey-tsdb 99\n", "not rewritten");
    // An older format is opened and upgraded, so that an older Osprey refuses the directory
    // instead of quarantining the newer blocks it cannot read.
    std::fs::write(dir.0.join("FORMAT"), "osprey-tsdb 1\n").expect("write");
    drop(Db::open(&dir.0, test_opts(1000)).expect("open an older format"));
    let v = osprey_tsdb::db::FORMAT_VERSION;
    assert_eq!(std::fs::read_to_string(dir.0.join("FORMAT")).expect("read"), format!("osprey-tsdb {v}\n"));
}

#[test]
fn head_cut_compaction_retention_and_reopen() {
    let dir = TempDir::new("cut");
    let db = Db::open(&dir.0, test_opts(1000)).expect("open");
    for t in (0..20_000).step_by(100) {
        let mut a = db.appender();
        for i in 0..5 {
            let l = labels(&[("__name__", "m"), ("i", &i.to_string())]);
            a.append(&l, t, (t / 100 * i) as f64).expect("append");
        }
        a.commit().expect("commit");
    }
    let before = dump(&db, i64::MIN, i64::MAX);
    db.maintain().expect("maintain");
    let st = db.stats();
    assert!(st.head_cuts >= 15, "{st:?}");
    assert!(st.compactions >= 1, "{st:?}");
    assert_eq!(dump(&db, i64::MIN, i64::MAX), before, "same data after cut + compaction");
    let levels: Vec<u32> = db.blocks().iter().map(|b| b.compaction.level).collect();
    assert!(levels.iter().any(|&l| l >= 2), "{levels:?}");
    drop(db);
    let db = Db::open(&dir.0, test_opts(1000)).expect("reopen");
    assert_eq!(dump(&db, i64::MIN, i64::MAX), before, "same data after reopen (blocks + checkpoint + WAL)");
    drop(db);
    let opts = osprey_tsdb::Options { retention_time_ms: Some(5000), ..test_opts(1000) };
    let db = Db::open(&dir.0, opts).expect("reopen with retention");
    db.maintain().expect("maintain");
    let after = dump(&db, i64::MIN, i64::MAX);
    let first = after.iter().filter_map(|(_, s)| s.first()).map(|s| s.0).min().expect("data left");
    assert!(first >= 20_000 - 5000 - 3 * 9000, "old blocks deleted: first sample {first}");
    assert!(first > 0, "retention deleted something: first sample {first}");
    assert!(db.stats().retention_deletions > 0);
}

#[test]
fn flipped_bit_in_block_is_quarantined_and_rest_served() {
    let dir = TempDir::new("corrupt");
    let db = Db::open(&dir.0, test_opts(1000)).expect("open");
    for t in (0..5000).step_by(100) {
        let mut a = db.appender();
        a.append(&labels(&[("__name__", "m")]), t, t as f64).expect("append");
        a.commit().expect("commit");
    }
    db.maintain().expect("maintain");
    let blocks = db.blocks();
    assert!(blocks.len() >= 2, "{blocks:?}");
    drop(db);
    let victim = &blocks[0];
    let data = dir.0.join(&victim.ulid).join("data");
    let mut bytes = std::fs::read(&data).expect("read");
    bytes[12] ^= 0x10;
    std::fs::write(&data, bytes).expect("write");
    let db = Db::open(&dir.0, test_opts(1000)).expect("reopen despite corruption");
    assert_eq!(db.stats().corrupted_blocks, 1);
    assert!(dir.0.join(format!("{}.corrupted", victim.ulid)).is_dir());
    let left = dump(&db, i64::MIN, i64::MAX);
    let ts: Vec<i64> = left[0].1.iter().map(|s| s.0).collect();
    assert!(!ts.iter().any(|t| (victim.min_time..victim.max_time).contains(t)));
    assert!(ts.contains(&4900), "the rest is served");
}

#[test]
fn partial_compaction_leftovers_are_cleaned_on_open() {
    let dir = TempDir::new("partial");
    let stale = dir.0.join("01ARZ3NDEKTSV4RRFFQ69G5FAV.tmp-for-creation");
    std::fs::create_dir_all(&stale).expect("mkdir");
    std::fs::write(stale.join("data"), b"half").expect("write");
    let db = Db::open(&dir.0, test_opts(1000)).expect("open");
    assert!(!stale.exists());
    assert!(db.blocks().is_empty());
}

#[test]
fn handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Db>();
    send_sync::<osprey_tsdb::Querier>();
    send_sync::<osprey_tsdb::Series>();
    send::<osprey_tsdb::Appender>();
}

#[test]
fn out_of_order_window_accepts_recent_samples_and_survives_reopen() {
    let dir = TempDir::new("ooowin");
    let opts = osprey_tsdb::Options { out_of_order_window_ms: 200, ..test_opts(7_200_000) };
    let db = Db::open(&dir.0, opts.clone()).expect("open");
    let l = labels(&[("__name__", "x")]);
    let mut a = db.appender();
    a.append(&l, 1000, 1.0).expect("in order");
    a.commit().expect("commit");
    let mut a = db.appender();
    assert_eq!(a.append(&l, 900, 0.9), Ok(()), "inside the window");
    assert_eq!(a.append(&l, 700, 0.7), Err(AppendError::OutOfOrder), "outside the window");
    a.commit().expect("commit");
    let mut a = db.appender();
    assert_eq!(a.append(&l, 900, 5.0), Err(AppendError::Duplicate));
    assert_eq!(a.append(&l, 950, 0.95), Ok(()));
    a.append(&l, 1100, 1.1).expect("in order again");
    a.commit().expect("commit");
    let want: Vec<(i64, u64)> =
        [(900, 0.9), (950, 0.95), (1000, 1.0), (1100, 1.1)].map(|(t, v)| (t, f64::to_bits(v))).to_vec();
    assert_eq!(dump(&db, 0, 10_000)[0].1, want);
    drop(db);
    let db = Db::open(&dir.0, opts).expect("reopen");
    assert_eq!(dump(&db, 0, 10_000)[0].1, want, "replayed from the WAL in the same order");
}

/// A series reference appends without labels until the head is truncated (a block cut); then
/// it is refused (`None`) so the caller appends by labels, and the new reference works again.
#[test]
fn series_refs_append_until_the_head_is_truncated() {
    let dir = TempDir::new("series-ref");
    let range = 60_000;
    let db = Db::open(&dir.0, test_opts(range)).expect("open");
    let l = labels(&[("__name__", "m"), ("job", "j")]);
    let mut a = db.appender();
    let r = a.append_get_ref(&l, 0, 0.0).expect("append");
    a.commit().expect("commit");
    let mut a = db.appender();
    assert_eq!(a.append_ref(&r, 1000, 1.0), Some(Ok(())));
    assert_eq!(a.append_ref(&r, 500, 2.0), Some(Err(AppendError::OutOfOrder)), "rules apply by reference too");
    a.commit().expect("commit");
    // Past 1.5 block ranges: maintenance cuts [0, 60 s) into a block and truncates the head.
    let mut a = db.appender();
    a.append(&l, 2 * range, 3.0).expect("append");
    a.commit().expect("commit");
    db.maintain().expect("maintain");
    let mut a = db.appender();
    assert!(a.append_ref(&r, 2 * range + 1000, 4.0).is_none(), "a reference from before the truncation is refused");
    let r2 = a.append_get_ref(&l, 2 * range + 1000, 4.0).expect("append by labels");
    assert_eq!(a.append_ref(&r2, 2 * range + 2000, 5.0), Some(Ok(())));
    a.commit().expect("commit");
    let got: Vec<(i64, f64)> = db.querier(0, i64::MAX).select(&[Matcher::eq("job", "j")])[0].to_vec();
    assert_eq!(got, [(0, 0.0), (1000, 1.0), (2 * range, 3.0), (2 * range + 1000, 4.0), (2 * range + 2000, 5.0)]);
}
