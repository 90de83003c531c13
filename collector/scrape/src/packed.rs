//! Label sets packed into one allocation, for the per-series cache: a `Vec<(String, String)>`
//! costs a heap block per name and value; packed, a series' labels cost one.

/// Label pairs in one buffer: per pair, the name's length (u32 LE), the name, the value's
/// length (u32 LE), the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Packed(Box<[u8]>);

impl Packed {
    /// Packs `labels`.
    pub(crate) fn pack(labels: &[(String, String)]) -> Self {
        let len = labels.iter().map(|(n, v)| 8 + n.len() + v.len()).sum();
        let mut buf = Vec::with_capacity(len);
        for (n, v) in labels {
            buf.extend_from_slice(&(n.len() as u32).to_le_bytes());
            buf.extend_from_slice(n.as_bytes());
            buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
            buf.extend_from_slice(v.as_bytes());
        }
        Self(buf.into_boxed_slice())
    }

    /// The pairs, borrowed.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut rest = &self.0[..];
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let n = take(&mut rest);
            let v = take(&mut rest);
            Some((n, v))
        })
    }

    /// Writes the pairs into `scratch` reusing its strings' buffers (no allocation once they
    /// are large enough) and returns the filled prefix.
    pub(crate) fn unpack_into<'a>(&self, scratch: &'a mut Vec<(String, String)>) -> &'a [(String, String)] {
        let mut i = 0;
        for (n, v) in self.iter() {
            if i == scratch.len() {
                scratch.push((String::new(), String::new()));
            }
            let slot = &mut scratch[i];
            slot.0.clear();
            slot.0.push_str(n);
            slot.1.clear();
            slot.1.push_str(v);
            i += 1;
        }
        &scratch[..i]
    }

    /// The pairs as owned strings.
    pub(crate) fn to_vec(&self) -> Vec<(String, String)> {
        self.iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect()
    }
}

/// Takes one length-prefixed string off the front of `rest`. The buffer is only built by
/// [`Packed::pack`] from `String`s, so lengths and UTF-8 are valid.
fn take<'a>(rest: &mut &'a [u8]) -> &'a str {
    let (len, tail) = rest.split_at(4);
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let (s, tail) = tail.split_at(len);
    *rest = tail;
    std::str::from_utf8(s).expect("packed labels are UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips_and_reuses_scratch() {
        let labels: Vec<(String, String)> =
            vec![("__name__".into(), "m".into()), ("a".into(), String::new()), ("é".into(), "ü".repeat(300))];
        let p = Packed::pack(&labels);
        assert_eq!(p.to_vec(), labels);
        let mut scratch = vec![("x".repeat(10), "y".into()); 5];
        assert_eq!(p.unpack_into(&mut scratch), &labels[..]);
        assert_eq!(scratch.len(), 5, "longer scratch keeps its tail");
        assert!(Packed::pack(&[]).iter().next().is_none());
    }
}
