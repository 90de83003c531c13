//! Background maintenance: cutting the head into blocks, WAL checkpoints, compaction and
//! retention. Block sets change by swapping the list under a short write lock, so appends and
//! queries never wait for block I/O.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::block::{Block, Compaction, write_block};
use crate::db::Shared;
use crate::head::{lock, read, write};
use crate::labels::Labels;
use crate::records;
use crate::wal::frame;

/// One maintenance round.
pub fn run(sh: &Shared) -> io::Result<()> {
    let _m = lock(&sh.maintenance);
    cut_head(sh)?;
    if let Err(e) = compact(sh) {
        sh.counters.compactions_failed.fetch_add(1, Ordering::Relaxed);
        tracing::error!(error = %e, "compaction failed");
    }
    retention(sh);
    sh.wal.sync_if_due(false)
}

fn open_new(sh: &Shared, ulid: &str) -> io::Result<Arc<Block>> {
    Block::open(&sh.dir.join(ulid)).map(Arc::new).map_err(|e| io::Error::other(e.to_string()))
}

fn cut_head(sh: &Shared) -> io::Result<()> {
    let r = sh.opts.block_range_ms;
    let head = &sh.head;
    loop {
        let (min, max) = (head.min_t.load(Ordering::Relaxed), head.max_t.load(Ordering::Relaxed));
        if min == i64::MAX || max.saturating_sub(min) < r / 2 * 3 {
            return Ok(());
        }
        let a = min.div_euclid(r) * r;
        let b = a + r;
        {
            // From here on, no commit can add samples before `b` to the head.
            let _c = lock(&sh.commit);
            head.min_valid.fetch_max(b, Ordering::Relaxed);
        }
        let series = head.all_series();
        // In label order, so that the block's chunks are written in series-id order (its chunk
        // metas then store offsets as deltas of 0); the block writer's own sort is then linear.
        let mut order: Vec<(Labels, usize)> = series.iter().enumerate().map(|(i, s)| (head.labels_of(s), i)).collect();
        order.sort_unstable_by(|x, y| x.0.cmp(&y.0));
        let iter = order.into_iter().map(|(l, i)| (l, lock(&series[i].data).samples(a, b - 1)));
        if let Some(meta) =
            write_block(&sh.dir, a, b, Compaction { level: 1, sources: Vec::new(), imported: false }, iter)?
        {
            let blk = open_new(sh, &meta.ulid)?;
            let mut bl = write(&sh.blocks);
            bl.push(blk);
            bl.sort_by_key(|b| (b.meta.min_time, b.meta.max_time));
            tracing::info!(ulid = %meta.ulid, mint = a, maxt = b, series = meta.stats.num_series, samples = meta.stats.num_samples, "head range persisted as block");
        }
        let removed = {
            let _c = lock(&sh.commit);
            head.truncate(b)
        };
        sh.counters.head_cuts.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(removed_series = removed, "head truncated");
        checkpoint(sh)?;
    }
}

/// Writes a WAL checkpoint of the current head and drops older segments. Records are framed
/// and written about 1 MiB at a time: a whole head's worth in one buffer was a transient of
/// tens of MiB at every head cut (issue 7's benchmark), which the allocator may keep.
pub fn checkpoint(sh: &Shared) -> io::Result<()> {
    let seg = {
        let _c = lock(&sh.commit);
        sh.wal.start_checkpoint()?
    };
    let series = sh.head.all_series();
    let mut rest = series.iter().filter(|s| s.is_logged());
    let parts = std::iter::from_fn(|| {
        let mut buf = Vec::with_capacity(1 << 20);
        for s in rest.by_ref() {
            let l = sh.head.labels_of(s);
            frame(&mut buf, &records::series([(s.id, &l)]));
            lock(&s.data).packed_chunks(|c| frame(&mut buf, &records::chunk(s.id, c)));
            if buf.len() >= (1 << 20) - (64 << 10) {
                break;
            }
        }
        (!buf.is_empty()).then_some(buf)
    });
    sh.wal.finish_checkpoint(seg, parts)
}

/// Merges all series of `blocks` (each sorted by labels) into one stream, deduplicating
/// timestamps.
fn merged_series(blocks: &[Arc<Block>]) -> impl Iterator<Item = (Labels, Vec<(i64, f64)>)> + '_ {
    let mut cursors: Vec<(usize, u32)> = blocks.iter().enumerate().map(|(i, _)| (i, 0u32)).collect();
    let mut current: Vec<Option<(Labels, Vec<crate::query::ChunkData>)>> =
        blocks.iter().map(|b| b.series(0, i64::MIN, i64::MAX).filter(|_| b.num_series() > 0)).collect();
    std::iter::from_fn(move || {
        let min = current.iter().flatten().map(|(l, _)| l).min()?.clone();
        let mut samples = Vec::new();
        for (i, cur) in current.iter_mut().enumerate() {
            if cur.as_ref().is_some_and(|(l, _)| *l == min) {
                let (_, chunks) = cur.take().unwrap_or_default();
                for c in &chunks {
                    samples.extend(c.iter());
                }
                let (bi, next) = &mut cursors[i];
                *next += 1;
                let b = &blocks[*bi];
                *cur = if (*next as usize) < b.num_series() { b.series(*next, i64::MIN, i64::MAX) } else { None };
            }
        }
        samples.sort_by_key(|s| s.0);
        samples.dedup_by_key(|s| s.0);
        Some((min, samples))
    })
}

fn remove_block_dirs(sh: &Shared, gone: &[Arc<Block>]) {
    for b in gone {
        let del = sh.dir.join(format!("{}.tmp-for-deletion", b.meta.ulid));
        if fs::rename(&b.dir, &del).is_ok() {
            let _ = fs::remove_dir_all(&del);
        }
    }
}

/// Merges blocks that fall into one window of 3×, 9×, 27× the block range once the window is
/// entirely older than the head.
pub fn compact(sh: &Shared) -> io::Result<()> {
    let base = sh.opts.block_range_ms;
    for mult in [3, 9, 27] {
        let range = base * mult;
        let limit = sh.head.min_valid.load(Ordering::Relaxed);
        let blocks = read(&sh.blocks).clone();
        let mut groups: BTreeMap<i64, Vec<Arc<Block>>> = BTreeMap::new();
        for b in &blocks {
            let w = b.meta.min_time.div_euclid(range) * range;
            if b.meta.max_time <= w + range && w + range <= limit {
                groups.entry(w).or_default().push(b.clone());
            }
        }
        for (w, group) in groups.into_iter().filter(|(_, g)| g.len() >= 2) {
            let level = group.iter().map(|b| b.meta.compaction.level).max().unwrap_or(1) + 1;
            let mut sources: Vec<String> = group.iter().flat_map(|b| b.meta.compaction.sources.clone()).collect();
            sources.sort();
            let mint = group.iter().map(|b| b.meta.min_time).min().unwrap_or(w);
            let maxt = group.iter().map(|b| b.meta.max_time).max().unwrap_or(w + range);
            let meta = write_block(
                &sh.dir,
                mint,
                maxt,
                Compaction { level, sources, imported: group.iter().all(|b| b.meta.compaction.imported) },
                merged_series(&group),
            )?;
            let new = match meta {
                Some(m) => Some(open_new(sh, &m.ulid)?),
                None => None,
            };
            {
                let mut bl = write(&sh.blocks);
                bl.retain(|b| !group.iter().any(|g| Arc::ptr_eq(g, b)));
                bl.extend(new.clone());
                bl.sort_by_key(|b| (b.meta.min_time, b.meta.max_time));
            }
            remove_block_dirs(sh, &group);
            sh.counters.compactions.fetch_add(1, Ordering::Relaxed);
            tracing::info!(window_start = w, merged = group.len(), level, "compacted blocks");
        }
    }
    Ok(())
}

/// Deletes whole blocks past the time or size retention.
pub fn retention(sh: &Shared) {
    let blocks = read(&sh.blocks).clone();
    let mut gone: Vec<Arc<Block>> = Vec::new();
    if let Some(rt) = sh.opts.retention_time_ms {
        let newest = blocks.iter().map(|b| b.meta.max_time).chain([sh.head.max_t.load(Ordering::Relaxed)]).max();
        if let Some(newest) = newest {
            gone.extend(blocks.iter().filter(|b| b.meta.max_time < newest.saturating_sub(rt)).cloned());
        }
    }
    if let Some(limit) = sh.opts.retention_size_bytes {
        let mut total: u64 = blocks.iter().map(|b| b.meta.stats.num_bytes).sum();
        for b in &blocks {
            if total <= limit {
                break;
            }
            total -= b.meta.stats.num_bytes;
            if !gone.iter().any(|g| Arc::ptr_eq(g, b)) {
                gone.push(b.clone());
            }
        }
    }
    if gone.is_empty() {
        return;
    }
    write(&sh.blocks).retain(|b| !gone.iter().any(|g| Arc::ptr_eq(g, b)));
    for b in &gone {
        tracing::info!(ulid = %b.meta.ulid, "deleting block past retention");
    }
    remove_block_dirs(sh, &gone);
    sh.counters.retention_deletions.fetch_add(gone.len() as u64, Ordering::Relaxed);
}
