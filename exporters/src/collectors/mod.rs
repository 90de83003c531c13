//! One module per collector. To add one: write the file, add `mod x;` and `x::DEF` below.

use crate::catalog::Def;

mod diskstats;
mod filesystem;
mod loadavg;
mod mdadm;
mod textfile;

/// Every collector the agent knows, in any order (flags and output are sorted by name).
pub static ALL: &[&Def] = &[
    &diskstats::DEF,
    &filesystem::DEF,
    &loadavg::DEF,
    &mdadm::DEF,
    &textfile::DEF,
];
