//! One module per collector. To add one: write the file, add `mod x;` and `x::DEF` below.

use crate::catalog::Def;

mod arp;
mod bcache;
mod conntrack;
mod dmi;
mod fibrechannel;
mod infiniband;
mod loadavg;
mod netclass;
mod netdev;
mod netstat;
mod sockstat;
mod udp_queues;

/// Every collector the agent knows, in any order (flags and output are sorted by name).
pub static ALL: &[&Def] = &[
    &arp::DEF,
    &bcache::DEF,
    &conntrack::DEF,
    &dmi::DEF,
    &fibrechannel::DEF,
    &infiniband::DEF,
    &loadavg::DEF,
    &netclass::DEF,
    &netdev::DEF,
    &netstat::DEF,
    &sockstat::DEF,
    &udp_queues::DEF,
];
