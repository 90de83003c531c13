//! One module per collector. To add one: write the file, add `mod x;` and `x::DEF` below.

use crate::catalog::Def;

mod arp;
mod bcache;
mod bonding;
mod btrfs;
mod buddyinfo;
mod cgroup;
mod cgroups;
mod conntrack;
mod cpu;
mod cpu_vulnerabilities;
mod cpufreq;
mod diskstats;
mod dmi;
mod dmmultipath;
mod drbd;
mod edac;
mod entropy;
mod fibrechannel;
mod filefd;
mod filesystem;
mod hwmon;
mod infiniband;
mod interrupts;
mod ipvs;
mod kernel_hung;
mod ksmd;
mod lnstat;
mod loadavg;
mod mdadm;
mod meminfo;
mod meminfo_numa;
mod netclass;
mod netdev;
mod netstat;
mod nfs;
mod nfsd;
mod nvme;
mod os;
mod powersupplyclass;
mod pressure;
pub mod probe;
pub mod processes;
mod rapl;
mod schedstat;
mod selinux;
mod slabinfo;
mod sockstat;
mod softirqs;
mod softnet;
mod stat;
mod sysctl;
mod systemd;
mod tapestats;
mod textfile;
mod thermal_zone;
mod time;
mod timex;
mod udp_queues;
mod uname;
mod vmstat;
mod watchdog;
mod xfrm;
mod xfs;
mod zfs;
mod zoneinfo;

/// Every collector the agent knows, in any order (flags and output are sorted by name).
pub static ALL: &[&Def] = &[
    &arp::DEF,
    &bcache::DEF,
    &bonding::DEF,
    &btrfs::DEF,
    &buddyinfo::DEF,
    &cgroup::DEF,
    &cgroups::DEF,
    &conntrack::DEF,
    &cpu::DEF,
    &cpu_vulnerabilities::DEF,
    &cpufreq::DEF,
    &diskstats::DEF,
    &dmi::DEF,
    &dmmultipath::DEF,
    &drbd::DEF,
    &edac::DEF,
    &entropy::DEF,
    &fibrechannel::DEF,
    &filefd::DEF,
    &filesystem::DEF,
    &hwmon::DEF,
    &infiniband::DEF,
    &interrupts::DEF,
    &ipvs::DEF,
    &kernel_hung::DEF,
    &ksmd::DEF,
    &lnstat::DEF,
    &loadavg::DEF,
    &mdadm::DEF,
    &meminfo::DEF,
    &meminfo_numa::DEF,
    &netclass::DEF,
    &netdev::DEF,
    &netstat::DEF,
    &nfs::DEF,
    &nfsd::DEF,
    &nvme::DEF,
    &os::DEF,
    &powersupplyclass::DEF,
    &pressure::DEF,
    &probe::DEF,
    &processes::DEF,
    &rapl::DEF,
    &schedstat::DEF,
    &selinux::DEF,
    &slabinfo::DEF,
    &sockstat::DEF,
    &softirqs::DEF,
    &softnet::DEF,
    &stat::DEF,
    &sysctl::DEF,
    &systemd::DEF,
    &tapestats::DEF,
    &textfile::DEF,
    &thermal_zone::DEF,
    &time::DEF,
    &timex::DEF,
    &udp_queues::DEF,
    &uname::DEF,
    &vmstat::DEF,
    &watchdog::DEF,
    &xfrm::DEF,
    &xfs::DEF,
    &zfs::DEF,
    &zoneinfo::DEF,
];
