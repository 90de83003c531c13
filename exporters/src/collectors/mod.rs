//! One module per collector. To add one: write the file, add `mod x;` and `x::DEF` below.

use crate::catalog::Def;

mod arp;
mod conntrack;
mod diskstats;
mod entropy;
mod filefd;
mod filesystem;
mod loadavg;
mod mdadm;
mod meminfo;
mod netclass;
mod netdev;
mod netstat;
mod pressure;
mod sockstat;
mod stat;
mod textfile;
mod udp_queues;
mod vmstat;

/// Every collector the agent knows, in any order (flags and output are sorted by name).
pub static ALL: &[&Def] = &[
    &arp::DEF,
    &conntrack::DEF,
    &diskstats::DEF,
    &entropy::DEF,
    &filefd::DEF,
    &filesystem::DEF,
    &loadavg::DEF,
    &mdadm::DEF,
    &meminfo::DEF,
    &netclass::DEF,
    &netdev::DEF,
    &netstat::DEF,
    &pressure::DEF,
    &sockstat::DEF,
    &stat::DEF,
    &textfile::DEF,
    &udp_queues::DEF,
    &vmstat::DEF,
];
