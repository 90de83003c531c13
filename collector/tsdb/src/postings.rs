//! Sorted postings lists (series ids) and their set operations.

/// Intersection of two sorted lists (galloping through the longer one).
pub fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(small.len());
    let mut lo = 0;
    for &x in small {
        let rest = &large[lo..];
        // Exponential search for x in rest.
        let mut step = 1;
        while step < rest.len() && rest[step - 1] < x {
            step *= 2;
        }
        let hi = step.min(rest.len());
        match rest[..hi].binary_search(&x) {
            Ok(i) => {
                out.push(x);
                lo += i + 1;
            }
            Err(i) => lo += i,
        }
        if lo >= large.len() {
            break;
        }
    }
    out
}

/// Union of many sorted lists.
pub fn union(lists: &[&[u32]]) -> Vec<u32> {
    match lists {
        [] => Vec::new(),
        [one] => one.to_vec(),
        _ => {
            let mut out: Vec<u32> = Vec::with_capacity(lists.iter().map(|l| l.len()).sum());
            for l in lists {
                out.extend_from_slice(l);
            }
            out.sort_unstable();
            out.dedup();
            out
        }
    }
}

/// Elements of `a` not in `b`.
pub fn subtract(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j >= b.len() || b[j] != x {
            out.push(x);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    proptest! {
        #[test]
        fn ops_match_btreeset(a in proptest::collection::btree_set(0u32..500, 0..200),
                              b in proptest::collection::btree_set(0u32..500, 0..200)) {
            let va: Vec<u32> = a.iter().copied().collect();
            let vb: Vec<u32> = b.iter().copied().collect();
            prop_assert_eq!(intersect(&va, &vb), a.intersection(&b).copied().collect::<Vec<_>>());
            prop_assert_eq!(union(&[&va, &vb]), a.union(&b).copied().collect::<Vec<_>>());
            prop_assert_eq!(subtract(&va, &vb), a.difference(&b).copied().collect::<Vec<_>>());
            let _: BTreeSet<u32> = BTreeSet::new();
        }
    }
}
