//! Observe stage, kernel side: links (name, index, up, carrier) and when each
//! was last configured, from its addresses' creation stamps. The link and
//! address tables are small, so rtnetlink's buffered dumps serve here.

use std::collections::HashMap;

use futures::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::Handle;

use super::error::RouteError;
use crate::model::{IfName, Link};

/// `IFA_CACHEINFO` stamps count hundredths of a second since boot.
const USEC_PER_STAMP: u64 = 10_000;

/// Every link of the calling thread's network namespace, with the newest
/// `IFA_CACHEINFO` creation stamp among its IPv4 and IPv6 addresses as
/// `last_configured_usec` (microseconds since boot, `None` without addresses).
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
    let stamps = address_stamps(handle).await?;
    let links = handle.link().get().execute();
    let messages: Vec<LinkMessage> = links
        .try_collect()
        .await
        .map_err(rtnetlink_error("RTM_GETLINK dump"))?;
    Ok(messages
        .iter()
        .filter_map(|m| link_from_message(m, &stamps))
        .collect())
}

/// The newest address creation stamp of each link, in microseconds.
async fn address_stamps(handle: &Handle) -> Result<HashMap<u32, u64>, RouteError> {
    let mut stamps = HashMap::new();
    let mut addresses = handle.address().get().execute();
    while let Some(msg) = addresses
        .try_next()
        .await
        .map_err(rtnetlink_error("RTM_GETADDR dump"))?
    {
        if let Some(usec) = created_usec(&msg) {
            let newest = stamps.entry(msg.header.index).or_insert(usec);
            *newest = (*newest).max(usec);
        }
    }
    Ok(stamps)
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

/// A [`Link`] from a link message and the address stamps by link index.
pub(crate) fn link_from_message(msg: &LinkMessage, stamps: &HashMap<u32, u64>) -> Option<Link> {
    let name = msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some(name),
        _ => None,
    })?;
    let name = IfName::new(name)
        .map_err(|e| tracing::warn!(error = %e, "link left out"))
        .ok()?;
    let index = msg.header.index;
    Some(Link {
        index,
        name,
        up: msg.header.flags.contains(LinkFlags::Up),
        carrier: msg.header.flags.contains(LinkFlags::LowerUp),
        last_configured_usec: stamps.get(&index).copied(),
    })
}
