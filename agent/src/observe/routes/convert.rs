//! Observe stage, kernel side: the pure conversion of a route message into an
//! [`ObservedRoute`], and a cheap peek at its [`RouteKey`] used by the dump to
//! skip the routes nobody asked about without decoding them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use netlink_packet_core::{DecodeError, NlasIterator};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteNextHop, RouteVia,
};
use netlink_packet_route::AddressFamily;

use crate::model::{NextHop, ObservedRoute, Protocol, RouteKey, RouteType};

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const RTN_UNICAST: u8 = 1;
const RTA_DST: u16 = 1;
const RTA_TABLE: u16 = 15;
/// `RTM_F_CLONED` in `rtm_flags`: a cached (exception) route, not a table entry.
const RTM_F_CLONED: u32 = 0x200;
/// Length of `struct rtmsg`, the header of a route message.
pub(crate) const RTMSG_LEN: usize = 12;

/// Convert a kernel route message into an [`ObservedRoute`].
///
/// Every type of IPv4 and IPv6 route converts (unicast, blackhole, local...:
/// [`ObservedRoute::kind`] says which); `None` for other families and for cached
/// (`RTM_F_CLONED`) routes. The table comes from `RTA_TABLE` (the 8-bit header
/// field only when it is absent); a missing `RTA_DST` is the default route.
pub fn route_from_message(msg: &RouteMessage) -> Option<ObservedRoute> {
    let header = &msg.header;
    if header.flags.contains(RouteFlags::Cloned) {
        return None;
    }
    let attrs = Attrs::collect(&msg.attributes);
    let destination = destination(
        header.address_family,
        attrs.destination,
        header.destination_prefix_length,
    )?;
    let source = match header.source_prefix_length {
        0 => None,
        len => Some(destination_or_source(header.address_family, attrs.source, len)?),
    };
    let table = attrs.table.unwrap_or(u32::from(header.table));
    Some(ObservedRoute {
        key: RouteKey::new(table, destination),
        kind: RouteType::from_number(u8::from(header.kind)),
        tos: header.tos,
        source: source.map(|s| s.trunc()),
        next_hops: attrs.next_hops(),
        nhid: attrs.nhid,
        metric: attrs.metric,
        protocol: Protocol(u8::from(header.protocol)),
    })
}

/// The attributes the conversion reads, borrowed from the message.
#[derive(Default)]
struct Attrs<'a> {
    table: Option<u32>,
    destination: Option<&'a RouteAddress>,
    source: Option<&'a RouteAddress>,
    gateway: Option<IpAddr>,
    oif: Option<u32>,
    metric: Option<u32>,
    nhid: Option<u32>,
    multipath: Option<&'a [RouteNextHop]>,
}

impl<'a> Attrs<'a> {
    fn collect(attributes: &'a [RouteAttribute]) -> Attrs<'a> {
        let mut attrs = Attrs::default();
        for attr in attributes {
            match attr {
                RouteAttribute::Table(t) => attrs.table = Some(*t),
                RouteAttribute::Destination(a) => attrs.destination = Some(a),
                RouteAttribute::Source(a) => attrs.source = Some(a),
                RouteAttribute::NhId(id) => attrs.nhid = Some(*id),
                RouteAttribute::Oif(i) => attrs.oif = Some(*i),
                RouteAttribute::Priority(p) => attrs.metric = Some(*p),
                RouteAttribute::MultiPath(hops) => attrs.multipath = Some(hops),
                other => attrs.gateway = attrs.gateway.or_else(|| gateway(other)),
            }
        }
        attrs
    }

    fn next_hops(&self) -> Vec<NextHop> {
        if let Some(hops) = self.multipath.filter(|hops| !hops.is_empty()) {
            return hops.iter().map(next_hop).collect();
        }
        if self.gateway.is_none() && self.oif.is_none() {
            return Vec::new();
        }
        vec![NextHop {
            gateway: self.gateway,
            ifindex: self.oif.filter(|i| *i != 0),
        }]
    }
}

/// One next hop of an `RTA_MULTIPATH` attribute.
fn next_hop(hop: &RouteNextHop) -> NextHop {
    NextHop {
        gateway: hop.attributes.iter().find_map(gateway),
        ifindex: Some(hop.interface_index).filter(|i| *i != 0),
    }
}

/// The address of an `RTA_GATEWAY` or `RTA_VIA` attribute.
fn gateway(attr: &RouteAttribute) -> Option<IpAddr> {
    match attr {
        RouteAttribute::Gateway(a) => address(a),
        RouteAttribute::Via(RouteVia::Inet(a)) => Some(IpAddr::V4(*a)),
        RouteAttribute::Via(RouteVia::Inet6(a)) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

fn address(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

/// The destination network, `0.0.0.0/0` or `::/0` when `RTA_DST` is absent.
fn destination(family: AddressFamily, dst: Option<&RouteAddress>, len: u8) -> Option<IpNet> {
    destination_or_source(family, dst, len)
}

/// A prefix from an `RTA_DST` or `RTA_SRC` attribute and its length.
fn destination_or_source(family: AddressFamily, dst: Option<&RouteAddress>, len: u8) -> Option<IpNet> {
    let addr = match (family, dst) {
        (AddressFamily::Inet, None) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (AddressFamily::Inet6, None) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        (AddressFamily::Inet, Some(RouteAddress::Inet(a))) => IpAddr::V4(*a),
        (AddressFamily::Inet6, Some(RouteAddress::Inet6(a))) => IpAddr::V6(*a),
        _ => return None,
    };
    IpNet::new(addr, len).ok()
}

/// What a peek at a route message tells without decoding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peeked {
    /// The key [`route_from_message`] would give.
    pub key: RouteKey,
    /// An `RTN_UNICAST` route (the ones the dump counts).
    pub unicast: bool,
}

/// The key of a route message, read straight from its bytes (`struct rtmsg` and
/// attributes, without the netlink header) without decoding it.
///
/// `Ok(None)` exactly when [`route_from_message`] would return `None`; otherwise
/// the key it would give.
pub(crate) fn peek_key(payload: &[u8]) -> Result<Option<Peeked>, DecodeError> {
    let Some(header) = payload.get(..RTMSG_LEN) else {
        return Err(DecodeError::buffer_too_small(payload.len(), RTMSG_LEN));
    };
    let (family, dst_len, table, kind) = (header[0], header[1], header[4], header[7]);
    let flags = u32::from_ne_bytes([header[8], header[9], header[10], header[11]]);
    if (family != AF_INET && family != AF_INET6) || flags & RTM_F_CLONED != 0 {
        return Ok(None);
    }
    let (dst, table) = peek_dst_table(&payload[RTMSG_LEN..], table)?;
    let addr = peek_address(family, dst)?;
    let net = IpNet::new(addr, dst_len).map_err(|_| DecodeError::from("route prefix length too long"))?;
    Ok(Some(Peeked {
        key: RouteKey::new(table, net),
        unicast: kind == RTN_UNICAST,
    }))
}

/// `RTA_DST` bytes (empty when absent) and `RTA_TABLE` (else the header table).
fn peek_dst_table(attrs: &[u8], header_table: u8) -> Result<(&[u8], u32), DecodeError> {
    let (mut dst, mut table): (&[u8], u32) = (&[], u32::from(header_table));
    for nla in NlasIterator::new(attrs) {
        let nla = nla?;
        let (kind, len) = (nla.kind(), usize::from(nla.length()));
        let value = nla.into_inner().get(4..len).unwrap_or_default();
        match kind {
            RTA_DST => dst = value,
            RTA_TABLE => table = netlink_packet_core::parse_u32(value)?,
            _ => {}
        }
    }
    Ok((dst, table))
}

fn peek_address(family: u8, bytes: &[u8]) -> Result<IpAddr, DecodeError> {
    match (family, bytes.len()) {
        (AF_INET, 0) => Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        (AF_INET6, 0) => Ok(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        (AF_INET, 4) => Ok(IpAddr::from(<[u8; 4]>::try_from(bytes).unwrap_or_default())),
        (AF_INET6, 16) => Ok(IpAddr::from(<[u8; 16]>::try_from(bytes).unwrap_or_default())),
        (_, n) => Err(DecodeError::invalid_ip_address(n)),
    }
}
