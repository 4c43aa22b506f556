//! Observe stage, kernel side: links (name, index, up, carrier, master, kind),
//! their addresses, and when each was last configured, from its addresses'
//! creation stamps. The link and address tables are small, so rtnetlink's
//! buffered dumps serve here.

use std::collections::HashMap;
use std::net::IpAddr;

use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use rtnetlink::Handle;

use super::error::RouteError;
use crate::model::{IfName, Link};

/// `IFA_CACHEINFO` stamps count hundredths of a second since boot.
const USEC_PER_STAMP: u64 = 10_000;

/// Every link of the calling thread's network namespace, with its addresses and
/// the newest `IFA_CACHEINFO` creation stamp among them as `last_configured_usec`
/// (microseconds since boot, `None` without addresses).
///
/// The kernel keeps that stamp in 32 bits of hundredths of a second: it wraps
/// after about 497 days of uptime. Links whose name the kernel should never have
/// accepted are left out.
pub async fn dump_links() -> Result<Vec<Link>, RouteError> {
    let (connection, handle, _) =
        rtnetlink::new_connection().map_err(RouteError::socket("open", "link dump"))?;
    let task = tokio::spawn(connection);
    let result = collect(&handle).await;
    task.abort();
    result
}

async fn collect(handle: &Handle) -> Result<Vec<Link>, RouteError> {
    let addresses = link_addresses(handle).await?;
    let links = handle.link().get().execute();
    let messages: Vec<LinkMessage> = links
        .try_collect()
        .await
        .map_err(rtnetlink_error("RTM_GETLINK dump"))?;
    Ok(messages
        .iter()
        .filter_map(|m| link_from_message(m, &addresses))
        .collect())
}

/// What the address dump says about one link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LinkAddresses {
    /// Its addresses with their prefix lengths.
    pub(crate) subnets: Vec<IpNet>,
    /// The newest creation stamp, in microseconds.
    pub(crate) newest_usec: Option<u64>,
}

impl LinkAddresses {
    /// Account for one address message.
    pub(crate) fn add(&mut self, msg: &AddressMessage) {
        if let Some(net) = subnet(msg) {
            self.subnets.push(net);
        }
        if let Some(usec) = created_usec(msg) {
            self.newest_usec = Some(self.newest_usec.map_or(usec, |n| n.max(usec)));
        }
    }
}

/// Addresses and the newest creation stamp of each link.
async fn link_addresses(handle: &Handle) -> Result<HashMap<u32, LinkAddresses>, RouteError> {
    let mut by_link: HashMap<u32, LinkAddresses> = HashMap::new();
    let mut addresses = handle.address().get().execute();
    while let Some(msg) = addresses
        .try_next()
        .await
        .map_err(rtnetlink_error("RTM_GETADDR dump"))?
    {
        by_link.entry(msg.header.index).or_default().add(&msg);
    }
    Ok(by_link)
}

/// The address of an address message with its prefix length (`IFA_LOCAL` when
/// present, the peer-less IPv4 form; else `IFA_ADDRESS`).
fn subnet(msg: &AddressMessage) -> Option<IpNet> {
    let pick = |want_local: bool| {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(ip) if want_local => Some(*ip),
            AddressAttribute::Address(ip) if !want_local => Some(*ip),
            _ => None,
        })
    };
    let addr: IpAddr = pick(true).or_else(|| pick(false))?;
    IpNet::new(addr, msg.header.prefix_len).ok()
}

fn rtnetlink_error(request: &'static str) -> impl Fn(rtnetlink::Error) -> RouteError {
    move |source| RouteError::Rtnetlink { request, source }
}

/// When an address was created (`IFA_CACHEINFO` cstamp), in microseconds since
/// boot.
pub(crate) fn created_usec(msg: &AddressMessage) -> Option<u64> {
    msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::CacheInfo(info) => Some(u64::from(info.cstamp) * USEC_PER_STAMP),
        _ => None,
    })
}

/// A [`Link`] from a link message and the addresses by link index.
pub(crate) fn link_from_message(msg: &LinkMessage, addresses: &HashMap<u32, LinkAddresses>) -> Option<Link> {
    let mut name = None;
    let mut master = None;
    let mut kind = None;
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => name = Some(n),
            LinkAttribute::Controller(m) => master = Some(*m).filter(|m| *m != 0),
            LinkAttribute::LinkInfo(infos) => kind = link_kind(infos),
            _ => {}
        }
    }
    let name = IfName::new(name?)
        .map_err(|e| tracing::warn!(error = %e, "link left out"))
        .ok()?;
    let index = msg.header.index;
    let mut link = Link::new(
        index,
        name,
        msg.header.flags.contains(LinkFlags::Up),
        msg.header.flags.contains(LinkFlags::LowerUp),
    );
    if let Some(found) = addresses.get(&index) {
        link.addresses = found.subnets.clone();
        link.last_configured_usec = found.newest_usec;
    }
    link.master = master;
    link.kind = kind;
    Some(link)
}

/// `IFLA_INFO_KIND`, as iproute2 names it.
fn link_kind(infos: &[LinkInfo]) -> Option<String> {
    infos.iter().find_map(|i| match i {
        LinkInfo::Kind(k) => Some(k.to_string()),
        _ => None,
    })
}
