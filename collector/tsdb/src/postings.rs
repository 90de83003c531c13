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

/// Union of two sorted lists (linear merge).
fn merge2(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// Union of many sorted lists (pairwise merges, smallest first).
pub fn union(lists: &[&[u32]]) -> Vec<u32> {
    match lists {
        [] => Vec::new(),
        [one] => one.to_vec(),
        [a, b] => merge2(a, b),
        _ => {
            let mut v: Vec<Vec<u32>> = lists.iter().map(|l| l.to_vec()).collect();
            while v.len() > 1 {
                v.sort_by_key(|l| std::cmp::Reverse(l.len()));
                let a = v.pop().unwrap_or_default();
                let b = v.pop().unwrap_or_default();
                v.push(merge2(&a, &b));
            }
            v.pop().unwrap_or_default()
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
            let vc: Vec<u32> = va.iter().map(|x| x / 2).collect::<BTreeSet<_>>().into_iter().collect();
            let abc: BTreeSet<u32> = a.iter().chain(&b).chain(&vc).copied().collect();
            prop_assert_eq!(union(&[&va, &vb, &vc, &[]]), abc.into_iter().collect::<Vec<_>>());
            prop_assert_eq!(subtract(&va, &vb), a.difference(&b).copied().collect::<Vec<_>>());
        }
    }
}
