//! Query side: chunk handles shared with the head or mapped from blocks, series with merged
//! sample iterators, and the [`Querier`].

use std::sync::Arc;

use memmap2::Mmap;

use crate::chunk::{Encoding, SampleIter};
use crate::db::Shared;
use crate::head::read;
use crate::labels::Labels;
use crate::matcher::Matcher;

#[derive(Clone)]
enum Bytes {
    Shared(Arc<[u8]>),
    Mapped(Arc<Mmap>, usize, usize),
}

/// A chunk of one series, readable without locks.
#[derive(Clone)]
pub struct ChunkData {
    /// Codec.
    pub enc: Encoding,
    /// First timestamp.
    pub mint: i64,
    /// Last timestamp.
    pub maxt: i64,
    bytes: Bytes,
}

impl ChunkData {
    /// A chunk held in memory.
    pub fn shared(enc: Encoding, mint: i64, maxt: i64, data: Arc<[u8]>) -> Self {
        Self { enc, mint, maxt, bytes: Bytes::Shared(data) }
    }

    /// A chunk inside a mapped block file.
    pub fn mapped(enc: Encoding, mint: i64, maxt: i64, map: Arc<Mmap>, off: usize, len: usize) -> Self {
        Self { enc, mint, maxt, bytes: Bytes::Mapped(map, off, len) }
    }

    /// The encoded bytes (a packed chunk of a block may refer to a timestamp column outside
    /// them: decode with [`ChunkData::iter`]).
    pub fn data(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Shared(a) => a,
            Bytes::Mapped(m, off, len) => m.get(*off..off + len).unwrap_or(&[]),
        }
    }

    /// Iterates the chunk's samples.
    #[allow(clippy::iter_without_into_iter)]
    pub fn iter(&self) -> SampleIter<'_> {
        match &self.bytes {
            Bytes::Shared(a) => SampleIter::new(self.enc, a),
            Bytes::Mapped(m, off, len) => SampleIter::new_in(self.enc, m, *off, *len),
        }
    }
}

/// One selected series.
pub struct Series {
    /// Its labels.
    pub labels: Labels,
    chunks: Vec<ChunkData>,
    mint: i64,
    maxt: i64,
}

impl Series {
    /// Samples in time order within the query range; where blocks overlap, the first sample
    /// for a timestamp wins.
    pub fn samples(&self) -> Box<dyn Iterator<Item = (i64, f64)> + '_> {
        let (mint, maxt) = (self.mint, self.maxt);
        let disjoint = self.chunks.windows(2).all(|w| w[0].maxt < w[1].mint);
        if disjoint {
            return Box::new(
                self.chunks.iter().flat_map(move |c| c.iter().filter(move |s| s.0 >= mint && s.0 <= maxt)),
            );
        }
        let mut all: Vec<(i64, f64)> =
            self.chunks.iter().flat_map(|c| c.iter().filter(|s| s.0 >= mint && s.0 <= maxt)).collect();
        all.sort_by_key(|s| s.0);
        all.dedup_by_key(|s| s.0);
        Box::new(all.into_iter())
    }

    /// All samples as a vector (what [`Series::samples`] yields, without its boxed iterator:
    /// chunks inside the range are copied whole, decoding stops past the range's end).
    pub fn to_vec(&self) -> Vec<(i64, f64)> {
        let mut out = Vec::with_capacity(16);
        self.append_to(&mut out);
        out
    }

    /// Appends the samples of [`Series::samples`] to `out`.
    pub fn append_to(&self, out: &mut Vec<(i64, f64)>) {
        let (mint, maxt) = (self.mint, self.maxt);
        if !self.chunks.windows(2).all(|w| w[0].maxt < w[1].mint) {
            out.extend(self.samples());
            return;
        }
        for c in &self.chunks {
            if c.mint >= mint && c.maxt <= maxt {
                out.extend(c.iter());
            } else {
                out.extend(c.iter().skip_while(|s| s.0 < mint).take_while(|s| s.0 <= maxt));
            }
        }
    }

    /// The chunks (for tools that copy data).
    pub fn chunks(&self) -> &[ChunkData] {
        &self.chunks
    }
}

/// Reads a consistent view of the head and blocks for `[mint, maxt]` (inclusive, ms).
pub struct Querier {
    shared: Arc<Shared>,
    mint: i64,
    maxt: i64,
}

impl Querier {
    pub(crate) fn new(shared: Arc<Shared>, mint: i64, maxt: i64) -> Self {
        Self { shared, mint, maxt }
    }

    /// Matching series with their chunks from the head and every overlapping block, sorted by
    /// labels, one entry per label set.
    fn collect(&self, matchers: &[Matcher]) -> Vec<(Labels, Vec<ChunkData>)> {
        let mut out: Vec<(Labels, Vec<ChunkData>)> = Vec::new();
        let head = &self.shared.head;
        {
            // Commits apply under the write side: a scrape is seen whole or not at all.
            let _vis = read(&self.shared.visibility);
            for id in head.postings_for(matchers) {
                let Some(s) = head.series(id) else { continue };
                let chunks = crate::head::lock(&s.data).snapshot(self.mint, self.maxt);
                if !chunks.is_empty() {
                    out.push((head.labels_of(&s), chunks));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        // Blocks after the head: a head cut adds its block before truncating the head.
        let blocks = read(&self.shared.blocks).clone();
        let mut sources = usize::from(!out.is_empty());
        for b in blocks.iter().filter(|b| b.meta.max_time > self.mint && b.meta.min_time <= self.maxt) {
            // A block lists its series in label order.
            let part = b.select(matchers, self.mint, self.maxt);
            if !part.is_empty() {
                sources += 1;
                out.extend(part);
            }
        }
        if sources > 1 {
            // Sorted runs, one per source: the stable sort merges them, then equal label sets
            // (the same series in several sources) are joined.
            out.sort_by(|a, b| a.0.cmp(&b.0));
            let mut merged: Vec<(Labels, Vec<ChunkData>)> = Vec::with_capacity(out.len());
            for (l, chunks) in out {
                match merged.last_mut() {
                    Some(last) if last.0 == l => last.1.extend(chunks),
                    _ => merged.push((l, chunks)),
                }
            }
            out = merged;
        }
        out
    }

    /// Series matching all matchers, sorted by labels, each with at least one chunk in range.
    pub fn select(&self, matchers: &[Matcher]) -> Vec<Series> {
        self.collect(matchers)
            .into_iter()
            .map(|(labels, mut chunks)| {
                chunks.sort_by_key(|c| (c.mint, c.maxt));
                Series { labels, chunks, mint: self.mint, maxt: self.maxt }
            })
            .collect()
    }

    /// Label names of matching series (all series when `matchers` is empty), sorted.
    pub fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        let mut names: Vec<String> = self
            .collect(matchers)
            .iter()
            .flat_map(|(l, _)| l.iter().map(|(n, _)| n.to_owned()).collect::<Vec<_>>())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Values of label `name` among matching series, sorted.
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        let mut vals: Vec<String> =
            self.collect(matchers).iter().filter_map(|(l, _)| l.get(name).map(str::to_owned)).collect();
        vals.sort();
        vals.dedup();
        vals
    }
}
