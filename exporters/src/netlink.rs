//! A minimal rtnetlink client: one dump request (`RTM_GETLINK`, `RTM_GETADDR`) and the parsing
//! of its replies. Parsing is pure and unit-tested; the socket sits in [`dump`].

use std::net::IpAddr;

use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType, netlink};

/// One link from an `RTM_GETLINK` dump.
#[derive(Debug, PartialEq)]
pub(crate) struct Link {
    /// Interface index.
    pub index: i32,
    /// `IFLA_IFNAME`.
    pub name: String,
    /// `IFLA_STATS64`, else `IFLA_STATS` widened; `None` when the kernel sent neither.
    pub stats: Option<[u64; 24]>,
}

/// One interface address from an `RTM_GETADDR` dump.
#[derive(Debug, PartialEq)]
pub(crate) struct Addr {
    /// Interface index.
    pub index: i32,
    /// The address.
    pub ip: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

/// Netlink message types and flags used here (from `linux/netlink.h`, `linux/rtnetlink.h`).
pub(crate) mod nl {
    /// End of a dump.
    pub const DONE: u16 = 3;
    /// Error (or ack).
    pub const ERROR: u16 = 2;
    /// Request link dump / link message.
    pub const RTM_GETLINK: u16 = 18;
    /// A link.
    pub const RTM_NEWLINK: u16 = 16;
    /// Request address dump.
    pub const RTM_GETADDR: u16 = 22;
    /// An address.
    pub const RTM_NEWADDR: u16 = 20;
    /// `NLM_F_REQUEST | NLM_F_DUMP`.
    pub const DUMP_REQUEST: u16 = 0x1 | 0x300;
    /// `IFLA_IFNAME`.
    pub const IFLA_IFNAME: u16 = 3;
    /// `IFLA_STATS`.
    pub const IFLA_STATS: u16 = 7;
    /// `IFLA_STATS64`.
    pub const IFLA_STATS64: u16 = 23;
    /// `IFA_ADDRESS`.
    pub const IFA_ADDRESS: u16 = 1;
    /// `IFA_LOCAL`.
    pub const IFA_LOCAL: u16 = 2;
}

/// Sends one rtnetlink dump request (`msg_type` with a `body` header) and returns every
/// message payload (type, bytes after the netlink header) until `NLMSG_DONE`.
pub(crate) fn dump(msg_type: u16, body: &[u8]) -> std::io::Result<Vec<(u16, Vec<u8>)>> {
    // Protocol 0 is NETLINK_ROUTE.
    let fd = rustix::net::socket(AddressFamily::NETLINK, SocketType::RAW, None)?;
    let kernel = netlink::SocketAddrNetlink::new(0, 0);
    let mut req = Vec::with_capacity(16 + body.len());
    req.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
    req.extend_from_slice(&msg_type.to_ne_bytes());
    req.extend_from_slice(&nl::DUMP_REQUEST.to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    req.extend_from_slice(body);
    rustix::net::sendto(&fd, &req, SendFlags::empty(), &kernel)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut msgs = Vec::new();
    loop {
        let (n, _) = rustix::net::recv(&fd, &mut buf[..], RecvFlags::empty())?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "netlink socket closed"));
        }
        if split_messages(&buf[..n], &mut msgs).map_err(std::io::Error::other)? {
            return Ok(msgs);
        }
    }
}

/// Splits one datagram into messages; true when `NLMSG_DONE` was seen. An `NLMSG_ERROR`
/// with a non-zero code is an error.
pub(crate) fn split_messages(mut b: &[u8], out: &mut Vec<(u16, Vec<u8>)>) -> Result<bool, String> {
    while b.len() >= 16 {
        let len = u32_at(b, 0) as usize;
        if len < 16 || len > b.len() {
            return Err(format!("bad netlink message length {len}"));
        }
        let kind = u16::from_ne_bytes([b[4], b[5]]);
        let payload = &b[16..len];
        match kind {
            nl::DONE => return Ok(true),
            nl::ERROR => {
                let code = if payload.len() >= 4 { u32_at(payload, 0) as i32 } else { -1 };
                if code != 0 {
                    return Err(std::io::Error::from_raw_os_error(-code).to_string());
                }
            }
            _ => out.push((kind, payload.to_vec())),
        }
        b = &b[align4(len).min(b.len())..];
    }
    Ok(false)
}

/// Rounds up to netlink's 4-byte alignment.
pub(crate) fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// A native-endian u32 at `off`.
pub(crate) fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// The routing attributes following a fixed header of `skip` bytes, as (type, value).
pub(crate) fn attributes(payload: &[u8], skip: usize) -> impl Iterator<Item = (u16, &[u8])> {
    let mut b = payload.get(skip..).unwrap_or_default();
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let kind = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        let value = &b[4..len];
        b = &b[align4(len).min(b.len())..];
        Some((kind, value))
    })
}

/// Parses an `RTM_NEWLINK` payload (`ifinfomsg` + attributes).
pub(crate) fn parse_link(payload: &[u8]) -> Option<Link> {
    if payload.len() < 16 {
        return None;
    }
    let index = u32_at(payload, 4) as i32;
    let mut name = None;
    let mut stats64 = None;
    let mut stats32 = None;
    for (kind, value) in attributes(payload, 16) {
        match kind {
            nl::IFLA_IFNAME => {
                let end = value.iter().position(|&c| c == 0).unwrap_or(value.len());
                name = Some(String::from_utf8_lossy(&value[..end]).into_owned());
            }
            nl::IFLA_STATS64 => stats64 = Some(widen(value, 8)),
            nl::IFLA_STATS => stats32 = Some(widen(value, 4)),
            _ => {}
        }
    }
    Some(Link { index, name: name?, stats: stats64.or(stats32) })
}

/// Reads up to 24 native-endian counters of `width` bytes (missing trailing ones are 0).
pub(crate) fn widen(value: &[u8], width: usize) -> [u64; 24] {
    let mut out = [0u64; 24];
    for (slot, chunk) in out.iter_mut().zip(value.chunks_exact(width)) {
        *slot = if width == 8 {
            u64::from_ne_bytes(chunk.try_into().unwrap_or([0; 8]))
        } else {
            u64::from(u32_at(chunk, 0))
        };
    }
    out
}

/// Parses an `RTM_NEWADDR` payload (`ifaddrmsg` + attributes) the way Go's `net` package
/// does: `IFA_LOCAL` wins over `IFA_ADDRESS` (point-to-point links).
pub(crate) fn parse_addr(payload: &[u8]) -> Option<Addr> {
    if payload.len() < 8 {
        return None;
    }
    let family = payload[0];
    let prefix = payload[1];
    let index = u32_at(payload, 4) as i32;
    let mut address = None;
    let mut local = None;
    for (kind, value) in attributes(payload, 8) {
        match kind {
            nl::IFA_ADDRESS => address = Some(value),
            nl::IFA_LOCAL => local = Some(value),
            _ => {}
        }
    }
    let v = local.or(address)?;
    let ip = match family {
        2 => IpAddr::from(<[u8; 4]>::try_from(v.get(..4)?).ok()?),
        10 => IpAddr::from(<[u8; 16]>::try_from(v.get(..16)?).ok()?),
        _ => return None,
    };
    Some(Addr { index, ip, prefix })
}

/// All links with their statistics (`RTM_GETLINK` dump).
pub(crate) fn dump_links() -> std::io::Result<Vec<Link>> {
    let msgs = dump(nl::RTM_GETLINK, &[0u8; 16])?;
    Ok(msgs.iter().filter(|(k, _)| *k == nl::RTM_NEWLINK).filter_map(|(_, p)| parse_link(p)).collect())
}

/// All interface addresses (`RTM_GETADDR` dump).
pub(crate) fn dump_addrs() -> std::io::Result<Vec<Addr>> {
    let msgs = dump(nl::RTM_GETADDR, &[0u8; 8])?;
    Ok(msgs.iter().filter(|(k, _)| *k == nl::RTM_NEWADDR).filter_map(|(_, p)| parse_addr(p)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An attribute in netlink wire format.
    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut v = ((4 + value.len()) as u16).to_ne_bytes().to_vec();
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(value);
        v.resize(align4(v.len()), 0);
        v
    }

    #[test]
    fn parses_link_and_addr_messages() {
        let mut link = vec![0u8; 16];
        link[4..8].copy_from_slice(&7u32.to_ne_bytes());
        link.extend(attr(nl::IFLA_IFNAME, b"eth9\0"));
        let stats: Vec<u8> = (1u32..=24).flat_map(u32::to_ne_bytes).collect();
        link.extend(attr(nl::IFLA_STATS, &stats));
        let l = parse_link(&link).unwrap();
        assert_eq!((l.index, l.name.as_str()), (7, "eth9"));
        assert_eq!(l.stats.unwrap()[23], 24);

        let mut addr = vec![2u8, 24, 0, 0];
        addr.extend_from_slice(&7u32.to_ne_bytes());
        addr.extend(attr(nl::IFA_ADDRESS, &[10, 0, 0, 9]));
        addr.extend(attr(nl::IFA_LOCAL, &[10, 0, 0, 1]));
        let a = parse_addr(&addr).unwrap();
        assert_eq!((a.ip.to_string().as_str(), a.prefix, a.index), ("10.0.0.1", 24, 7));
    }

    #[test]
    fn splits_messages_until_done() {
        let mut dgram = Vec::new();
        for kind in [nl::RTM_NEWLINK, nl::DONE] {
            dgram.extend_from_slice(&20u32.to_ne_bytes());
            dgram.extend_from_slice(&kind.to_ne_bytes());
            dgram.extend_from_slice(&[0; 10]);
            dgram.extend_from_slice(&[1, 2, 3, 4]);
        }
        let mut msgs = Vec::new();
        assert!(split_messages(&dgram, &mut msgs).unwrap());
        assert_eq!(msgs, vec![(nl::RTM_NEWLINK, vec![1, 2, 3, 4])]);
    }
}
