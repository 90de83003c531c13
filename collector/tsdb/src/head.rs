//! The in-memory head: interned symbols, series with an open Gorilla chunk and sealed packed
//! chunks, and postings per label pair.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::chunk::{Encoding, XorAppender, XorIter, packed};
use crate::labels::{LabelIds, Labels};
use crate::matcher::Matcher;
use crate::postings;
use crate::query::ChunkData;
use crate::sealed::SealedChunks;

/// Samples per open chunk before it is sealed into a packed chunk. On issue 7's benchmark fleet
/// (`--bench headmem`) Gorilla costs ≈ 2.5 bytes per sample and packed ≈ 0.5 in 60-sample
/// chunks, so a short open chunk is most of the head's saving.
pub const SEAL_SAMPLES: usize = 60;

/// Sealed chunks of [`SEAL_SAMPLES`] are merged by this many into one (packed ≈ 0.3 bytes per
/// sample at 240 samples), so long heads (2 h at 15 s) stay as compact as with big chunks.
pub const MERGE_CHUNKS: usize = 4;

/// Why a sample was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// Older than the newest sample of its series.
    #[error("out of order sample")]
    OutOfOrder,
    /// Same timestamp as the newest sample, different value.
    #[error("duplicate sample for timestamp")]
    Duplicate,
    /// Older than the head's lower bound (already persisted in a block).
    #[error("out of bounds: sample older than the head")]
    TooOld,
    /// A series with no labels.
    #[error("series has no labels")]
    EmptyLabels,
}

/// Interned label strings.
#[derive(Default)]
pub struct Symbols {
    inner: RwLock<SymInner>,
}

#[derive(Default)]
struct SymInner {
    map: HashMap<Arc<str>, u32>,
    list: Vec<Arc<str>>,
}

impl Symbols {
    /// The id of `s`, interning it.
    pub fn intern(&self, s: &str) -> u32 {
        if let Some(&id) = read(&self.inner).map.get(s) {
            return id;
        }
        let mut w = write(&self.inner);
        if let Some(&id) = w.map.get(s) {
            return id;
        }
        let id = w.list.len() as u32;
        let a: Arc<str> = Arc::from(s);
        w.list.push(a.clone());
        w.map.insert(a, id);
        id
    }

    /// The id of `s` if interned.
    pub fn lookup(&self, s: &str) -> Option<u32> {
        read(&self.inner).map.get(s).copied()
    }

    /// The string of `id`.
    pub fn get(&self, id: u32) -> Arc<str> {
        read(&self.inner).list[id as usize].clone()
    }

    /// Whether symbol-id pairs spell exactly `l` (one lock, no allocation).
    pub fn eq_labels(&self, pairs: &LabelIds, l: &Labels) -> bool {
        let g = read(&self.inner);
        let sym = |id: u32| g.list.get(id as usize).map_or("", |s| &**s);
        let mut want = l.iter();
        pairs.iter().all(|(n, v)| want.next().is_some_and(|(ln, lv)| sym(n) == ln && sym(v) == lv))
            && want.next().is_none()
    }

    /// The label pairs `pairs` spell, under one read lock.
    pub fn pairs_of(&self, pairs: &LabelIds) -> Vec<(String, String)> {
        let g = read(&self.inner);
        let sym = |id: u32| g.list.get(id as usize).map_or("", |s| &**s).to_owned();
        pairs.iter().map(|(n, v)| (sym(n), sym(v))).collect()
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        read(&self.inner).list.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub(crate) fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn lock<T>(l: &Mutex<T>) -> MutexGuard<'_, T> {
    l.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where an accepted sample goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// After the newest sample.
    InOrder,
    /// Older than the newest sample but inside the out-of-order window.
    OutOfOrder,
    /// An exact duplicate: nothing to store.
    Ignore,
}

/// Samples of one head series.
pub struct SeriesData {
    sealed: SealedChunks,
    open: XorAppender,
    /// Out-of-order samples (sorted), only with an out-of-order window. Boxed so a series
    /// without any costs one pointer, not an empty `Vec`.
    #[allow(clippy::box_collection)]
    ooo: Option<Box<Vec<(i64, f64)>>>,
}

impl SeriesData {
    fn new() -> Self {
        Self { sealed: SealedChunks::default(), open: XorAppender::new(), ooo: None }
    }

    /// Checks whether `(t, v)` may be appended; `Ok(false)` for an exact duplicate (ignored).
    pub fn check(last: Option<(i64, u64)>, t: i64, bits: u64, min_valid: i64) -> Result<bool, AppendError> {
        if t < min_valid {
            return Err(AppendError::TooOld);
        }
        match last {
            Some((lt, _)) if t < lt => Err(AppendError::OutOfOrder),
            Some((lt, lb)) if t == lt => {
                if lb == bits {
                    Ok(false)
                } else {
                    Err(AppendError::Duplicate)
                }
            }
            _ => Ok(true),
        }
    }

    /// Decides where `(t, bits)` goes, allowing samples up to `window` ms older than the
    /// newest one (0: no out-of-order samples).
    pub fn place(&self, t: i64, bits: u64, min_valid: i64, window: i64) -> Result<Place, AppendError> {
        match Self::check(self.last(), t, bits, min_valid) {
            Ok(true) => Ok(Place::InOrder),
            Ok(false) => Ok(Place::Ignore),
            Err(AppendError::OutOfOrder) if window > 0 && t >= self.max_t().saturating_sub(window) => {
                match self.sample_at(t) {
                    Some(b) if b == bits => Ok(Place::Ignore),
                    Some(_) => Err(AppendError::Duplicate),
                    None => Ok(Place::OutOfOrder),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Stores a placed sample; returns whether something was stored.
    pub fn apply(&mut self, place: Place, t: i64, v: f64) -> bool {
        match place {
            Place::InOrder => self.push(t, v),
            Place::OutOfOrder => {
                let o = self.ooo.get_or_insert_with(Box::default);
                let i = o.partition_point(|s| s.0 < t);
                o.insert(i, (t, v));
            }
            Place::Ignore => return false,
        }
        true
    }

    fn sample_at(&self, t: i64) -> Option<u64> {
        if let Some(o) = &self.ooo
            && let Ok(i) = o.binary_search_by_key(&t, |s| s.0)
        {
            return Some(o[i].1.to_bits());
        }
        self.snapshot(t, t).iter().flat_map(ChunkData::iter).find(|s| s.0 == t).map(|s| s.1.to_bits())
    }

    /// The newest sample's timestamp and value bits. The open chunk holds the newest sample
    /// whenever the series has any: sealing happens just before an append, and truncation
    /// keeps nothing when it empties the open chunk.
    pub fn last(&self) -> Option<(i64, u64)> {
        (!self.open.is_empty()).then(|| (self.open.last_t(), self.open.last_v_bits()))
    }

    /// The newest sample's timestamp (`i64::MIN` when there is none).
    fn max_t(&self) -> i64 {
        self.last().map_or(i64::MIN, |l| l.0)
    }

    /// Appends a sample already checked to be in order.
    pub fn push(&mut self, t: i64, v: f64) {
        if self.open.len() >= SEAL_SAMPLES {
            self.seal();
        }
        self.open.append(t, v);
    }

    fn seal(&mut self) {
        let (ts, vs): (Vec<i64>, Vec<f64>) = XorIter::new(self.open.bytes()).unzip();
        if !ts.is_empty() {
            self.sealed.push_merging(&ts, &vs, MERGE_CHUNKS, SEAL_SAMPLES as u32);
        }
        self.open = XorAppender::new();
    }

    /// Chunks overlapping `[mint, maxt]`, copied or shared for a query.
    pub fn snapshot(&self, mint: i64, maxt: i64) -> Vec<ChunkData> {
        let mut out: Vec<ChunkData> = self
            .sealed
            .iter()
            .filter(|c| c.maxt >= mint && c.mint <= maxt)
            .map(|c| ChunkData::shared(Encoding::Packed, c.mint, c.maxt, Arc::from(c.data)))
            .collect();
        if let Some(open_mint) = self.open.first_t()
            && self.open.last_t() >= mint
            && open_mint <= maxt
        {
            out.push(ChunkData::shared(Encoding::Xor, open_mint, self.open.last_t(), Arc::from(self.open.bytes())));
        }
        if let Some(o) = &self.ooo {
            let (ts, vs): (Vec<i64>, Vec<f64>) = o.iter().filter(|s| s.0 >= mint && s.0 <= maxt).copied().unzip();
            if !ts.is_empty() {
                let data: Arc<[u8]> = packed::encode(&ts, &vs).into();
                out.push(ChunkData::shared(Encoding::Packed, ts[0], ts[ts.len() - 1], data));
            }
        }
        out
    }

    /// All samples in `[mint, maxt]`.
    pub fn samples(&self, mint: i64, maxt: i64) -> Vec<(i64, f64)> {
        let mut out = Vec::new();
        for c in self.snapshot(mint, maxt) {
            out.extend(c.iter().filter(|(t, _)| *t >= mint && *t <= maxt));
        }
        if self.ooo.is_some() {
            out.sort_by_key(|s| s.0);
        }
        out
    }

    /// Drops samples before `before`; returns whether samples remain.
    fn truncate(&mut self, before: i64) -> bool {
        if self.max_t() < before {
            *self = Self::new();
            return false;
        }
        if self.sealed.iter().any(|c| c.mint < before) {
            // Chunks wholly before `before` go; one straddling it is re-encoded.
            let mut cut = SealedChunks::default();
            for c in self.sealed.iter().filter(|c| c.mint < before && c.maxt >= before) {
                let (ts, vs): (Vec<i64>, Vec<f64>) =
                    crate::chunk::SampleIter::new(Encoding::Packed, c.data).filter(|(t, _)| *t >= before).unzip();
                cut.push_samples(&ts, &vs);
            }
            let rest = self.sealed.iter().filter(|c| c.mint >= before);
            self.sealed = SealedChunks::from_chunks(cut.iter().chain(rest));
        }
        if let Some(o) = &mut self.ooo {
            o.retain(|s| s.0 >= before);
            if o.is_empty() {
                self.ooo = None;
            }
        }
        if self.open.first_t().is_some_and(|t| t < before) {
            let rest: Vec<(i64, f64)> = XorIter::new(self.open.bytes()).filter(|(t, _)| *t >= before).collect();
            self.open = XorAppender::new();
            for (t, v) in rest {
                self.open.append(t, v);
            }
        }
        true
    }

    /// Hands every sample to `f` as packed chunks, for a WAL checkpoint: sealed chunks as they
    /// are (re-encoding the whole head at every checkpoint was a third of the maintenance
    /// CPU), the open chunk encoded anew, all samples merged when some are out of order.
    pub fn packed_chunks(&self, mut f: impl FnMut(&[u8])) {
        let encode = |samples: Vec<(i64, f64)>| {
            let (ts, vs): (Vec<i64>, Vec<f64>) = samples.into_iter().unzip();
            (!ts.is_empty()).then(|| crate::chunk::packed::encode(&ts, &vs))
        };
        if self.ooo.is_some() {
            if let Some(c) = encode(self.samples(i64::MIN, i64::MAX)) {
                f(&c);
            }
            return;
        }
        for c in self.sealed.iter().filter(|c| c.count > 0) {
            f(c.data);
        }
        // Without trials (constant or Gorilla values): the open chunk is at most a minute
        // long and the checkpoint is replaced at the next head cut.
        let (ts, vs): (Vec<i64>, Vec<f64>) = XorIter::new(self.open.bytes()).unzip();
        if !ts.is_empty() {
            let quick = crate::chunk::packed::Choices { max_scale: None, rice: false, ..Default::default() };
            f(&crate::chunk::packed::encode_with(&ts, &vs, quick));
        }
    }

    /// Adds this series' sample memory to `m`.
    fn add_memory(&self, m: &mut HeadMemory) {
        m.open_chunks += self.open.capacity();
        m.open_chunks_used += self.open.bytes().len();
        m.allocations += usize::from(self.open.capacity() > 0);
        m.sealed_chunks += self.sealed.bytes().1;
        m.allocations += usize::from(self.sealed.bytes().1 > 0);
        if let Some(o) = &self.ooo {
            m.out_of_order += o.capacity() * 16 + 24;
            m.allocations += 2;
        }
    }

    /// Approximate heap bytes used by the samples.
    fn heap_bytes(&self) -> usize {
        self.sealed.bytes().1 + self.open.bytes().len() + self.ooo.as_ref().map_or(0, |o| o.len() * 16)
    }
}

/// Heap bytes the head holds, by structure: estimates from lengths and capacities, without
/// the allocator's own overhead (see [`HeadMemory::allocations`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeadMemory {
    /// Series in the head.
    pub series: usize,
    /// Heap blocks counted below (each costs the allocator ≈ 8–16 bytes more).
    pub allocations: usize,
    /// The series structs (`MemSeries` with its reference counts).
    pub series_structs: usize,
    /// The series' label-pair arrays.
    pub labels: usize,
    /// Open (Gorilla) chunks: bytes allocated.
    pub open_chunks: usize,
    /// Open chunks: bytes used.
    pub open_chunks_used: usize,
    /// Sealed chunks: data and descriptors.
    pub sealed_chunks: usize,
    /// Out-of-order sample buffers.
    pub out_of_order: usize,
    /// The series-by-id and series-by-hash maps.
    pub index_maps: usize,
    /// Postings lists and the maps that hold them.
    pub postings: usize,
    /// Interned strings and their map.
    pub symbols: usize,
}

impl HeadMemory {
    /// Sum of all parts (open chunks by allocated bytes).
    pub fn total(&self) -> usize {
        self.series_structs
            + self.labels
            + self.open_chunks
            + self.sealed_chunks
            + self.out_of_order
            + self.index_maps
            + self.postings
            + self.symbols
    }
}

/// Bytes of a hash map's table holding `cap` entries of `entry` bytes (hashbrown: a power of
/// two of buckets at most 7/8 full, one control byte each).
fn map_bytes(cap: usize, entry: usize) -> usize {
    if cap == 0 {
        return 0;
    }
    let buckets = (cap * 8 / 7).next_power_of_two();
    buckets * (entry + 1) + 16
}

/// One head series.
pub struct MemSeries {
    /// Stable id for the life of the head.
    pub id: u32,
    /// Label pairs as symbol ids, sorted by name.
    pub labels: LabelIds,
    /// Samples.
    pub data: Mutex<SeriesData>,
    /// [`LOGGED`] and the token of the last appender that staged a sample of the series (0:
    /// none; see [`MemSeries::mark_staged`]), in one word so the struct stays in 128 bytes.
    flags: AtomicU32,
}

/// In [`MemSeries`]' flags: the series' definition is in the WAL (or its checkpoint).
const LOGGED: u32 = 1 << 31;

impl MemSeries {
    /// Whether the series' definition is in the WAL (or its checkpoint).
    pub fn is_logged(&self) -> bool {
        self.flags.load(Ordering::Relaxed) & LOGGED != 0
    }

    /// Records that the series' definition is in the WAL.
    pub fn set_logged(&self) {
        self.flags.fetch_or(LOGGED, Ordering::Relaxed);
    }

    /// Marks the series as staged by the appender with `token` (below 2^31, not 0) and tells
    /// whether it already was: lets an appender find the series it staged twice without a
    /// per-sample map. Only a filter: another appender may have marked it in between.
    pub fn mark_staged(&self, token: u32) -> bool {
        let prev = self.flags.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |f| Some((f & LOGGED) | token));
        prev.is_ok_and(|f| f & !LOGGED == token)
    }
}

/// The next appender token for [`MemSeries::mark_staged`] from a counter: 31 bits, never 0.
pub(crate) fn appender_token(counter: &AtomicU32) -> u32 {
    loop {
        let t = counter.fetch_add(1, Ordering::Relaxed) & !LOGGED;
        if t != 0 {
            return t;
        }
    }
}

#[derive(Default)]
struct Index {
    series: HashMap<u32, Arc<MemSeries>>,
    /// Labels hash → series id; the rare second series with the same hash goes to `collisions`.
    by_hash: HashMap<u64, u32>,
    collisions: HashMap<u64, Vec<u32>>,
    postings: HashMap<u32, HashMap<u32, Vec<u32>>>,
}

/// The head block.
pub struct Head {
    /// Interned strings.
    pub symbols: Symbols,
    index: RwLock<Index>,
    next_id: AtomicU32,
    /// Source of appender tokens (see [`MemSeries::mark_staged`]).
    pub(crate) next_appender: AtomicU32,
    /// Appends before this time are rejected (data already in blocks).
    pub min_valid: AtomicI64,
    /// Smallest timestamp appended since the last truncation.
    pub min_t: AtomicI64,
    /// Largest timestamp appended.
    pub max_t: AtomicI64,
    /// Samples appended (committed) in total.
    pub samples_appended: AtomicU64,
    /// Bumped whenever series may have been removed from the index.
    pub generation: AtomicU64,
}

fn hash_labels(l: &Labels) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    l.hash(&mut h);
    h.finish()
}

impl Default for Head {
    fn default() -> Self {
        Self::new()
    }
}

impl Head {
    /// An empty head.
    pub fn new() -> Self {
        Self {
            symbols: Symbols::default(),
            index: RwLock::new(Index::default()),
            next_id: AtomicU32::new(1),
            next_appender: AtomicU32::new(1),
            min_valid: AtomicI64::new(i64::MIN),
            min_t: AtomicI64::new(i64::MAX),
            max_t: AtomicI64::new(i64::MIN),
            samples_appended: AtomicU64::new(0),
            generation: AtomicU64::new(0),
        }
    }

    /// Labels of a head series.
    pub fn labels_of(&self, s: &MemSeries) -> Labels {
        Labels::from_owned(self.symbols.pairs_of(&s.labels))
    }

    fn find(&self, idx: &Index, l: &Labels, h: u64) -> Option<Arc<MemSeries>> {
        let first = idx.by_hash.get(&h)?;
        std::iter::once(first)
            .chain(idx.collisions.get(&h).into_iter().flatten())
            .filter_map(|id| idx.series.get(id))
            .find(|s| self.symbols.eq_labels(&s.labels, l))
            .cloned()
    }

    /// The series for `l`, creating it; the flag says whether it was created.
    pub fn get_or_create(&self, l: &Labels) -> (Arc<MemSeries>, bool) {
        let h = hash_labels(l);
        if let Some(s) = self.find(&read(&self.index), l, h) {
            return (s, false);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.insert(id, l, h)
    }

    /// Creates (or finds) a series with a given id, as WAL replay does.
    pub fn create_with_id(&self, id: u32, l: &Labels) -> Arc<MemSeries> {
        self.next_id.fetch_max(id + 1, Ordering::Relaxed);
        self.insert(id, l, hash_labels(l)).0
    }

    fn insert(&self, id: u32, l: &Labels, h: u64) -> (Arc<MemSeries>, bool) {
        let pairs = LabelIds::new(l.iter().map(|(n, v)| (self.symbols.intern(n), self.symbols.intern(v))));
        let mut idx = write(&self.index);
        if let Some(s) = self.find(&idx, l, h) {
            return (s, false);
        }
        if let Some(s) = idx.series.get(&id) {
            return (s.clone(), false);
        }
        for (n, v) in pairs.iter() {
            let list = idx.postings.entry(n).or_default().entry(v).or_default();
            let pos = list.partition_point(|&x| x < id);
            list.insert(pos, id);
        }
        let s =
            Arc::new(MemSeries { id, labels: pairs, data: Mutex::new(SeriesData::new()), flags: AtomicU32::new(0) });
        idx.series.insert(id, s.clone());
        if let std::collections::hash_map::Entry::Vacant(e) = idx.by_hash.entry(h) {
            e.insert(id);
        } else {
            idx.collisions.entry(h).or_default().push(id);
        }
        (s, true)
    }

    /// A series by id.
    pub fn series(&self, id: u32) -> Option<Arc<MemSeries>> {
        read(&self.index).series.get(&id).cloned()
    }

    /// Number of series.
    pub fn num_series(&self) -> usize {
        read(&self.index).series.len()
    }

    /// All series, in id order.
    pub fn all_series(&self) -> Vec<Arc<MemSeries>> {
        let idx = read(&self.index);
        let mut v: Vec<Arc<MemSeries>> = idx.series.values().cloned().collect();
        v.sort_by_key(|s| s.id);
        v
    }

    /// Records the time range of appended samples for the head's range.
    pub fn note_times(&self, min: i64, max: i64) {
        if min <= max {
            self.min_t.fetch_min(min, Ordering::Relaxed);
            self.max_t.fetch_max(max, Ordering::Relaxed);
        }
    }

    /// Ids of series matching all `matchers`.
    pub fn postings_for(&self, matchers: &[Matcher]) -> Vec<u32> {
        let idx = read(&self.index);
        let lookup = |name: &str| self.symbols.lookup(name).and_then(|n| idx.postings.get(&n));
        let mut positive: Option<Vec<u32>> = None;
        let mut negative: Vec<Vec<u32>> = Vec::new();
        for m in matchers {
            let values = lookup(&m.name);
            let matches_empty = m.matches("");
            let lists: Vec<&[u32]> = match (values, m.set_values()) {
                (None, _) => Vec::new(),
                (Some(vals), Some(set)) if !matches_empty => set
                    .iter()
                    .filter_map(|v| self.symbols.lookup(v).and_then(|v| vals.get(&v)))
                    .map(Vec::as_slice)
                    .collect(),
                (Some(vals), _) => vals
                    .iter()
                    .filter(|(v, _)| m.matches(&self.symbols.get(**v)) != matches_empty)
                    .map(|(_, l)| l.as_slice())
                    .collect(),
            };
            let u = postings::union(&lists);
            if matches_empty {
                negative.push(u);
            } else {
                positive = Some(match positive {
                    None => u,
                    Some(p) => postings::intersect(&p, &u),
                });
            }
        }
        let mut out = positive.unwrap_or_else(|| {
            let mut all: Vec<u32> = idx.series.keys().copied().collect();
            all.sort_unstable();
            all
        });
        for n in negative {
            out = postings::subtract(&out, &n);
        }
        out
    }

    /// Drops samples before `before`, removes series left empty, and raises the lower bound.
    pub fn truncate(&self, before: i64) -> usize {
        self.min_valid.fetch_max(before, Ordering::Relaxed);
        let all = self.all_series();
        let mut dead = Vec::new();
        for s in &all {
            if !lock(&s.data).truncate(before) {
                dead.push(s.id);
            }
        }
        let mut guard = write(&self.index);
        let idx = &mut *guard;
        self.generation.fetch_add(1, Ordering::Relaxed);
        for id in &dead {
            // Re-check under the index lock: an appender may have added samples since.
            let Some(s) = idx.series.get(id).cloned() else { continue };
            if lock(&s.data).last().is_some() {
                continue;
            }
            idx.series.remove(id);
            let h = hash_labels(&self.labels_of(&s));
            if idx.by_hash.get(&h) == Some(id) {
                idx.by_hash.remove(&h);
                // Promote a colliding series, if any.
                if let Some(v) = idx.collisions.get_mut(&h) {
                    if let Some(next) = v.pop() {
                        idx.by_hash.insert(h, next);
                    }
                    if v.is_empty() {
                        idx.collisions.remove(&h);
                    }
                }
            } else if let Some(v) = idx.collisions.get_mut(&h) {
                v.retain(|x| x != id);
                if v.is_empty() {
                    idx.collisions.remove(&h);
                }
            }
            for (n, v) in s.labels.iter() {
                if let Some(vals) = idx.postings.get_mut(&n) {
                    if let Some(list) = vals.get_mut(&v) {
                        list.retain(|x| x != id);
                        if list.is_empty() {
                            vals.remove(&v);
                        }
                    }
                    if vals.is_empty() {
                        idx.postings.remove(&n);
                    }
                }
            }
        }
        let new_min = self.min_t.load(Ordering::Relaxed).max(before);
        self.min_t.store(new_min, Ordering::Relaxed);
        dead.len()
    }

    /// Heap bytes held, by structure (walks every series).
    pub fn memory(&self) -> HeadMemory {
        let mut m = HeadMemory::default();
        {
            let idx = read(&self.index);
            m.series = idx.series.len();
            m.index_maps = map_bytes(idx.series.capacity(), 16)
                + map_bytes(idx.by_hash.capacity(), 16)
                + map_bytes(idx.collisions.capacity(), 32)
                + idx.collisions.values().map(|v| v.capacity() * 4).sum::<usize>();
            m.postings = map_bytes(idx.postings.capacity(), 40);
            m.allocations += 3 + idx.collisions.len() + 1;
            for vals in idx.postings.values() {
                m.postings += map_bytes(vals.capacity(), 32) + vals.values().map(|l| l.capacity() * 4).sum::<usize>();
                m.allocations += 1 + vals.len();
            }
        }
        {
            let sym = read(&self.symbols.inner);
            m.symbols = map_bytes(sym.map.capacity(), 24)
                + sym.list.capacity() * 16
                + sym.list.iter().map(|s| s.len() + 16).sum::<usize>();
            m.allocations += 2 + sym.list.len();
        }
        for s in self.all_series() {
            m.series_structs += std::mem::size_of::<MemSeries>() + 16;
            m.labels += s.labels.heap_bytes();
            m.allocations += 2;
            lock(&s.data).add_memory(&mut m);
        }
        m
    }

    /// Approximate heap bytes of sample data.
    pub fn sample_bytes(&self) -> usize {
        self.all_series().iter().map(|s| lock(&s.data).heap_bytes()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_and_merged_chunks_keep_every_sample_through_truncation() {
        let mut d = SeriesData::new();
        let samples: Vec<(i64, f64)> =
            (0..700i32).map(|i| (i64::from(i) * 1000 + i64::from(i % 3), f64::from(i % 17) * 0.25)).collect();
        for &(t, v) in &samples {
            d.push(t, v);
        }
        // 11 sealed chunks of 60: two merged fours, three left; 40 samples open.
        assert_eq!(d.sealed.iter().map(|c| c.count).collect::<Vec<_>>(), vec![240, 240, 60, 60, 60]);
        assert_eq!(d.open.len(), 40);
        assert_eq!(d.samples(i64::MIN, i64::MAX), samples);
        let some: Vec<(i64, f64)> = samples.iter().filter(|s| (100_000..=399_000).contains(&s.0)).copied().collect();
        assert_eq!(d.samples(100_000, 399_000), some);
        assert!(d.truncate(300_500));
        let rest: Vec<(i64, f64)> = samples.iter().filter(|s| s.0 >= 300_500).copied().collect();
        assert_eq!(d.samples(i64::MIN, i64::MAX), rest);
        assert_eq!(d.sealed.iter().map(|c| c.count).collect::<Vec<_>>(), vec![179, 60, 60, 60]);
        d.push(800_000, 1.0);
        assert_eq!(d.samples(700_000, i64::MAX), vec![(800_000, 1.0)]);
        assert!(!d.truncate(900_000), "nothing left");
    }

    #[test]
    fn checkpoint_chunks_hold_every_sample_in_order_with_and_without_out_of_order_ones() {
        let decode = |d: &SeriesData| {
            let mut got = Vec::new();
            d.packed_chunks(|c| got.extend(crate::chunk::SampleIter::new(Encoding::Packed, c)));
            got
        };
        let mut d = SeriesData::new();
        assert!(decode(&d).is_empty(), "an empty series writes no chunk");
        for i in 0..430i32 {
            d.push(i64::from(i) * 1000, f64::from(i % 11) * 1.5);
        }
        assert!(d.sealed.iter().count() > 1 && !d.open.is_empty());
        assert_eq!(decode(&d), d.samples(i64::MIN, i64::MAX));
        assert!(d.apply(Place::OutOfOrder, 500, 9.0));
        let all = d.samples(i64::MIN, i64::MAX);
        assert!(all.contains(&(500, 9.0)));
        assert_eq!(decode(&d), all);
    }

    #[test]
    fn series_struct_stays_within_a_128_byte_allocation() {
        // `Arc<MemSeries>` is one heap block per series: its counts (16 bytes) plus the struct.
        // 128 bytes is an allocator size class; one byte more costs the next class (160).
        let size = std::mem::size_of::<MemSeries>() + 16;
        assert!(size <= 128, "Arc<MemSeries> is {size} bytes");
    }
}
