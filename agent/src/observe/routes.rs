//! Observe stage, kernel side: routes, links and addresses over rtnetlink.
//!
//! - [`dump_routes`]: a streaming dump of every routing table (both families)
//!   that keeps only the wanted keys, in flat memory (blocking).
//! - [`route_from_message`]: the pure conversion of a route message.
//! - [`dump_links`]: links with their state and when they were last configured.
//! - [`dump_nexthops`], [`NexthopTable`]: next-hop objects, which routes added
//!   with `nhid` forward through.
//! - [`dump_rules`], [`rule_from_message`]: the policy-routing rules of both
//!   families (a small dump of its own) and the pure conversion of one.
//! - [`Watcher`]: route, rule, link and address notifications as [`Event`]s, lost
//!   notifications as [`Event::Overrun`] (dump again).
//!
//! Everything works in the network namespace of the calling thread.

mod convert;
mod dump;
mod error;
mod events;
mod frames;
mod links;
mod nexthops;
mod paced;
mod rule_convert;
mod rule_dump;
mod socket;
mod watch;

#[cfg(test)]
mod convert_tests;
#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod frames_tests;
#[cfg(test)]
mod rule_tests;

pub use convert::route_from_message;
pub use dump::{dump_routes, DUMP_ATTEMPTS};
pub use error::RouteError;
pub use events::Event;
pub use frames::{RouteDump, Wanted};
pub use links::dump_links;
pub use nexthops::{dump_nexthops, parse_nexthop, Nexthop, NexthopObject, NexthopTable, Resolved};
pub use rule_convert::rule_from_message;
pub use rule_dump::dump_rules;
pub use watch::{Watcher, BURST, CALM, WATCH_RECEIVE_BUFFER};
