//! WAL replay at start-up: records are decoded in order; series are created inline and
//! samples are sharded by series id across one worker per core.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};

use crate::chunk::{Encoding, SampleIter};
use crate::db::Options;
use crate::head::{Head, MemSeries, lock};
use crate::records::{self, Record};
use crate::wal::Wal;

/// Opens the WAL under `dir` and replays it into `head`.
pub(crate) fn replay(dir: &Path, opts: &Options, head: &Head) -> io::Result<Wal> {
    let threads = if opts.replay_threads == 0 {
        std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
    } else {
        opts.replay_threads
    };
    let started = std::time::Instant::now();
    let total = AtomicU64::new(0);
    let wal = std::thread::scope(|scope| {
        let mut senders = Vec::new();
        for _ in 0..threads {
            let (tx, rx) = mpsc::sync_channel::<Vec<(u32, i64, f64)>>(64);
            senders.push(tx);
            let total = &total;
            scope.spawn(move || {
                let min_valid = head.min_valid.load(Ordering::Relaxed);
                let window = opts.out_of_order_window_ms;
                // Series by id, cached per worker so the index lock is taken once per series.
                let mut cache: HashMap<u32, Arc<MemSeries>> = HashMap::new();
                let (mut lo, mut hi, mut n) = (i64::MAX, i64::MIN, 0u64);
                for batch in rx {
                    for (id, t, v) in batch {
                        let s = match cache.get(&id) {
                            Some(s) => s,
                            None => match head.series(id) {
                                Some(s) => cache.entry(id).or_insert(s),
                                None => continue,
                            },
                        };
                        let mut d = lock(&s.data);
                        if let Ok(p) = d.place(t, v.to_bits(), min_valid, window)
                            && d.apply(p, t, v)
                        {
                            lo = lo.min(t);
                            hi = hi.max(t);
                            n += 1;
                        }
                    }
                }
                head.note_times(lo, hi);
                total.fetch_add(n, Ordering::Relaxed);
            });
        }
        let dispatch = |samples: Vec<(u32, i64, f64)>| {
            let mut shards: Vec<Vec<(u32, i64, f64)>> = vec![Vec::new(); senders.len()];
            for s in samples {
                shards[s.0 as usize % senders.len()].push(s);
            }
            for (tx, shard) in senders.iter().zip(shards) {
                if !shard.is_empty() {
                    let _ = tx.send(shard);
                }
            }
        };
        let wal = Wal::open(&dir.join("wal"), opts.fsync, opts.wal_segment_size, |_seg, recs| {
            for r in recs {
                match records::decode(r) {
                    Some(Record::Series(list)) => {
                        for (id, l) in list {
                            head.create_with_id(id, &l).set_logged();
                        }
                    }
                    Some(Record::Samples(s)) => dispatch(s),
                    Some(Record::Chunk(id, data)) => {
                        dispatch(SampleIter::new(Encoding::Packed, &data).map(|(t, v)| (id, t, v)).collect());
                    }
                    None => tracing::warn!("skipping undecodable WAL record"),
                }
            }
        });
        drop(senders);
        wal
    })?;
    head.samples_appended.store(0, Ordering::Relaxed);
    tracing::info!(
        series = head.num_series(),
        samples = total.load(Ordering::Relaxed),
        elapsed_ms = started.elapsed().as_millis() as u64,
        threads,
        "WAL replay done"
    );
    Ok(wal)
}
