//! One module per collector. To add one: write the file, add `mod x;` and `x::DEF` below.

use crate::catalog::Def;

mod bonding;
mod btrfs;
mod ipvs;
mod loadavg;
mod nfs;
mod nfsd;
mod selinux;
mod xfs;
mod zfs;

/// Every collector the agent knows, in any order (flags and output are sorted by name).
pub static ALL: &[&Def] = &[
    &bonding::DEF,
    &btrfs::DEF,
    &ipvs::DEF,
    &loadavg::DEF,
    &nfs::DEF,
    &nfsd::DEF,
    &selinux::DEF,
    &xfs::DEF,
    &zfs::DEF,
];
