//! Observe stage, kernel side: next-hop objects (`ip nexthop`, `RTM_NEWNEXTHOP`)
//! and the routes that use them (`ip route add ... nhid N`).
//!
//! A route with `RTA_NH_ID` forwards through the object's hops, whatever the
//! route message itself lists (with `net.ipv4.nexthop_compat_mode=0` it lists
//! none). When an object changes or goes, the kernel changes or deletes the IPv4
//! routes using it **without any route notification**: the watcher follows
//! next-hop notifications and the consumer resolves its routes again.
//!
//! - [`parse_nexthop`]: the pure decoding of one `struct nhmsg` message.
//! - [`NexthopTable`]: the objects by id; [`NexthopTable::resolve`] gives a
//!   route the hops (or the blackhole) of its object.
//! - [`dump_nexthops`]: every object of the calling thread's namespace
//!   (blocking).

use std::collections::BTreeMap;

use netlink_packet_core::{DecodeError, NlasIterator, NLMSG_DONE, NLMSG_ERROR, NLM_F_DUMP, NLM_F_REQUEST};

use super::error::RouteError;
use super::frames::{errno, frames};
use super::socket::{self, READ_BUFFER};
use crate::model::{NextHop, ObservedRoute, RouteType};

/// `RTM_NEWNEXTHOP`.
pub(crate) const RTM_NEWNEXTHOP: u16 = 104;
/// `RTM_DELNEXTHOP`.
pub(crate) const RTM_DELNEXTHOP: u16 = 105;
const RTM_GETNEXTHOP: u16 = 106;
const NHMSG_LEN: usize = 8;
const NHA_ID: u16 = 1;
const NHA_GROUP: u16 = 2;
const NHA_BLACKHOLE: u16 = 4;
const NHA_OIF: u16 = 5;
const NHA_GATEWAY: u16 = 6;
const NEXTHOP_GRP_LEN: usize = 8;
const REQUEST: &str = "RTM_GETNEXTHOP dump";

/// What a next-hop object forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nexthop {
    /// One hop: a gateway and/or a device.
    Hop(NextHop),
    /// `ip nexthop add id N blackhole`: the traffic is dropped.
    Blackhole,
    /// A group of other objects (their ids).
    Group(Vec<u32>),
}

/// A next-hop object as one notification or dump entry reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NexthopObject {
    /// `NHA_ID`.
    pub id: u32,
    /// What it forwards to.
    pub nexthop: Nexthop,
}

/// Decode one `struct nhmsg` payload (without the netlink header).
pub fn parse_nexthop(payload: &[u8]) -> Result<NexthopObject, DecodeError> {
    let attrs = payload
        .get(NHMSG_LEN..)
        .ok_or_else(|| DecodeError::buffer_too_small(payload.len(), NHMSG_LEN))?;
    let mut id = None;
    let (mut gateway, mut ifindex, mut blackhole, mut group) = (None, None, false, None);
    for nla in NlasIterator::new(attrs) {
        let nla = nla?;
        let value = nla.value();
        match nla.kind() {
            NHA_ID => id = Some(netlink_packet_core::parse_u32(value)?),
            NHA_OIF => ifindex = Some(netlink_packet_core::parse_u32(value)?).filter(|i| *i != 0),
            NHA_GATEWAY => gateway = Some(netlink_packet_core::parse_ip(value)?),
            NHA_BLACKHOLE => blackhole = true,
            NHA_GROUP => group = Some(group_ids(value)?),
            _ => {}
        }
    }
    let id = id.ok_or_else(|| DecodeError::from("next-hop message without NHA_ID"))?;
    let nexthop = match (group, blackhole) {
        (Some(ids), _) => Nexthop::Group(ids),
        (None, true) => Nexthop::Blackhole,
        (None, false) => Nexthop::Hop(NextHop { gateway, ifindex }),
    };
    Ok(NexthopObject { id, nexthop })
}

/// The member ids of an `NHA_GROUP` (an array of `struct nexthop_grp`).
fn group_ids(value: &[u8]) -> Result<Vec<u32>, DecodeError> {
    if !value.len().is_multiple_of(NEXTHOP_GRP_LEN) {
        return Err(DecodeError::from("NHA_GROUP is not a whole number of entries"));
    }
    value
        .chunks_exact(NEXTHOP_GRP_LEN)
        .map(|entry| netlink_packet_core::parse_u32(&entry[..4]))
        .collect()
}

/// The next-hop objects of a namespace, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NexthopTable(BTreeMap<u32, Nexthop>);

/// What a route's next-hop object forwards to, flattened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// The object is known: these hops, or a blackhole.
    Known {
        /// The route type it gives (`blackhole` for a blackhole object, else
        /// `unicast`).
        kind: RouteType,
        /// Its hops.
        hops: Vec<NextHop>,
    },
    /// The route uses no object.
    NotUsed,
    /// The route names an object the table does not hold: the kernel deletes
    /// routes whose object goes, so the route is gone (or the table is stale).
    Unknown,
}

impl NexthopTable {
    /// A table of these objects.
    pub fn from_objects(objects: impl IntoIterator<Item = NexthopObject>) -> NexthopTable {
        NexthopTable(objects.into_iter().map(|o| (o.id, o.nexthop)).collect())
    }

    /// Apply a notification: a new or changed object, or (`removed`) one gone.
    pub fn apply(&mut self, object: NexthopObject, removed: bool) {
        if removed {
            self.0.remove(&object.id);
        } else {
            self.0.insert(object.id, object.nexthop);
        }
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when the object `id` is `changed` or a group holding it.
    pub fn depends_on(&self, id: u32, changed: u32) -> bool {
        id == changed
            || matches!(self.0.get(&id), Some(Nexthop::Group(members)) if members.contains(&changed))
    }

    /// What the object `id` forwards to. Only unicast routes use objects: the
    /// kernel shows a route through a blackhole object as a blackhole route.
    pub fn lookup(&self, id: u32) -> Resolved {
        let hop = |member: &u32| match self.0.get(member) {
            Some(Nexthop::Hop(h)) => Some(h.clone()),
            _ => None,
        };
        let (kind, hops) = match self.0.get(&id) {
            None => return Resolved::Unknown,
            Some(Nexthop::Blackhole) => (RouteType::Blackhole, Vec::new()),
            Some(Nexthop::Hop(h)) => (RouteType::Unicast, vec![h.clone()]),
            Some(Nexthop::Group(members)) => (RouteType::Unicast, members.iter().filter_map(hop).collect()),
        };
        Resolved::Known { kind, hops }
    }

    /// The route with the hops of its object. `None` when the object is gone
    /// (so is the route); a route that uses none, or names one the table does
    /// not know yet, keeps what its message said when `keep_unknown` is set.
    pub fn resolve(&self, mut route: ObservedRoute, keep_unknown: bool) -> Option<ObservedRoute> {
        let Some(id) = route.nhid else {
            return Some(route);
        };
        match self.lookup(id) {
            Resolved::Known { kind, hops } => {
                route.kind = kind;
                route.next_hops = hops;
                Some(route)
            }
            Resolved::NotUsed => Some(route),
            Resolved::Unknown if keep_unknown => Some(route),
            Resolved::Unknown => None,
        }
    }
}

/// Every next-hop object of the calling thread's network namespace (blocking:
/// call it from `spawn_blocking` in async code). Kernels without next-hop
/// objects answer with an error that becomes an empty table.
pub fn dump_nexthops() -> Result<NexthopTable, RouteError> {
    let socket = socket::open("next-hop dump")?;
    socket::send(&socket, &dump_request(), REQUEST)?;
    let mut buf = Vec::with_capacity(READ_BUFFER);
    let mut objects = Vec::new();
    loop {
        socket::recv_datagram(&socket, &mut buf, 0).map_err(|source| RouteError::Recv {
            what: REQUEST,
            source,
        })?;
        for frame in frames(&buf) {
            let frame = frame?;
            match frame.kind {
                RTM_NEWNEXTHOP => objects.push(
                    parse_nexthop(frame.payload)
                        .map_err(|e| RouteError::parse("RTM_NEWNEXTHOP message", e))?,
                ),
                NLMSG_DONE => return Ok(NexthopTable::from_objects(objects)),
                NLMSG_ERROR if errno(frame.payload) == 0 => {}
                NLMSG_ERROR => return Ok(NexthopTable::default()),
                _ => {}
            }
        }
    }
}

/// `RTM_GETNEXTHOP` with `NLM_F_DUMP`, every family: a netlink header and an
/// empty `struct nhmsg`.
fn dump_request() -> Vec<u8> {
    let mut bytes = vec![0u8; 16 + NHMSG_LEN];
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    bytes[..4].copy_from_slice(&len.to_ne_bytes());
    bytes[4..6].copy_from_slice(&RTM_GETNEXTHOP.to_ne_bytes());
    bytes[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    bytes[8..12].copy_from_slice(&1u32.to_ne_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
        let len = 4 + value.len();
        let mut out = Vec::new();
        out.extend_from_slice(&u16::try_from(len).expect("short").to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(value);
        out.resize((len + 3) & !3, 0);
        out
    }

    fn message(family: u8, attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut out = vec![family, 0, 0, 0, 0, 0, 0, 0];
        attrs.iter().for_each(|a| out.extend_from_slice(a));
        out
    }

    fn group(ids: &[u32]) -> Vec<u8> {
        ids.iter()
            .flat_map(|id| {
                let mut e = id.to_ne_bytes().to_vec();
                e.extend_from_slice(&[0, 0, 0, 0]);
                e
            })
            .collect()
    }

    #[test]
    fn hops_blackholes_and_groups() {
        let hop = message(
            2,
            &[
                nla(NHA_ID, &10u32.to_ne_bytes()),
                nla(NHA_GATEWAY, &[172, 18, 0, 1]),
                nla(NHA_OIF, &3u32.to_ne_bytes()),
            ],
        );
        let parsed = parse_nexthop(&hop).expect("parses");
        let gateway = Some("172.18.0.1".parse::<IpAddr>().expect("ip"));
        assert_eq!(
            parsed,
            NexthopObject {
                id: 10,
                nexthop: Nexthop::Hop(NextHop {
                    gateway,
                    ifindex: Some(3)
                })
            }
        );
        let black = message(0, &[nla(NHA_ID, &11u32.to_ne_bytes()), nla(NHA_BLACKHOLE, &[])]);
        assert_eq!(parse_nexthop(&black).expect("parses").nexthop, Nexthop::Blackhole);
        let grp = message(
            0,
            &[
                nla(NHA_ID, &20u32.to_ne_bytes()),
                nla(NHA_GROUP, &group(&[10, 12])),
            ],
        );
        assert_eq!(
            parse_nexthop(&grp).expect("parses").nexthop,
            Nexthop::Group(vec![10, 12])
        );
        assert!(
            parse_nexthop(&message(2, &[nla(NHA_OIF, &3u32.to_ne_bytes())])).is_err(),
            "no id"
        );
        assert!(parse_nexthop(&[2, 0]).is_err(), "shorter than struct nhmsg");
        let bad_group = message(0, &[nla(NHA_ID, &1u32.to_ne_bytes()), nla(NHA_GROUP, &[1, 2, 3])]);
        assert!(parse_nexthop(&bad_group).is_err());
    }

    #[test]
    fn resolution_follows_the_table() {
        let hop = |gw: &str| {
            Nexthop::Hop(NextHop {
                gateway: Some(gw.parse().expect("ip")),
                ifindex: Some(3),
            })
        };
        let mut table = NexthopTable::from_objects([
            NexthopObject {
                id: 10,
                nexthop: hop("172.18.0.1"),
            },
            NexthopObject {
                id: 11,
                nexthop: hop("172.18.0.3"),
            },
            NexthopObject {
                id: 20,
                nexthop: Nexthop::Group(vec![10, 11]),
            },
        ]);
        let key = crate::model::RouteKey::new(254, "10.2.0.0/16".parse().expect("net"));
        let mut route = ObservedRoute::unicast(key, Vec::new(), None, crate::model::Protocol(3));
        route.nhid = Some(20);
        let resolved = table.resolve(route.clone(), false).expect("known");
        assert_eq!(resolved.next_hops.len(), 2);
        assert!(table.depends_on(20, 11) && !table.depends_on(10, 11));
        table.apply(
            NexthopObject {
                id: 20,
                nexthop: Nexthop::Group(vec![10]),
            },
            false,
        );
        assert_eq!(
            table
                .resolve(route.clone(), false)
                .expect("known")
                .next_hops
                .len(),
            1
        );
        table.apply(
            NexthopObject {
                id: 20,
                nexthop: Nexthop::Blackhole,
            },
            false,
        );
        assert_eq!(
            table.resolve(route.clone(), false).map(|r| r.kind),
            Some(RouteType::Blackhole)
        );
        table.apply(
            NexthopObject {
                id: 20,
                nexthop: Nexthop::Blackhole,
            },
            true,
        );
        assert_eq!(
            table.resolve(route.clone(), false),
            None,
            "the object is gone, so is the route"
        );
        let mut black = route.clone();
        black.kind = RouteType::Blackhole;
        table.apply(
            NexthopObject {
                id: 20,
                nexthop: hop("172.18.0.9"),
            },
            false,
        );
        assert_eq!(
            table.resolve(black, false).map(|r| r.kind),
            Some(RouteType::Unicast),
            "a blackhole object replaced by a hop"
        );
        table.apply(
            NexthopObject {
                id: 20,
                nexthop: Nexthop::Blackhole,
            },
            true,
        );
        assert_eq!(
            table.resolve(route.clone(), true),
            Some(route),
            "kept while unknown"
        );
    }
}
