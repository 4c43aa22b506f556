//! Intent stage, declaration form: `ip [OPTIONS] route add|append|prepend|replace|
//! change|delete ROUTE`, as found in units and scripts, and the same syntax in
//! legacy `route-IFACE` files — read the way iproute2 6.1 reads it: its option
//! abbreviations in its own order (`tab`, `met`, `pri`, `s` is `ssthresh`), the
//! metrics that take `lock`, typed routes (`blackhole`, `unreachable`...), `via
//! inet6` for an IPv4 route (RFC 5549), numbers in any C base (`table 0x10`,
//! `/020`) and IPv4 addresses as `inet_aton`-like parts (`10.010` is 10.8.0.0).
//! An IPv4 prefix with host bits set is refused by the kernel, and so here.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use crate::model::{ExpectedHop, Family, IfName, RouteType, TABLE_LOCAL};

use super::ipcmd::{self, abbrev, Invocation};
use super::spec::{RouteSpec, Tables};

/// What the command does to the routes the unit has declared so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `add`, `prepend`: first of its slot.
    Add,
    /// `append`: last of its slot.
    Append,
    /// `replace`: in place of the first route of its slot, else added.
    Replace,
    /// `change`: in place of the first route of its slot.
    Change,
    /// `delete`: the first route matching what it names goes.
    Delete,
}

/// A route command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// What it does.
    pub verb: Verb,
    /// The route (for `delete`, what it names).
    pub route: RouteSpec,
    /// The type was named (a `delete` without one matches any type).
    pub kind_named: bool,
}

/// What a command means for the intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not a route change (another `ip` command, `ip route show`...).
    NotRoute,
    /// A route command.
    Route(Command),
    /// A route the kernel refuses (an IPv4 prefix with host bits set): the
    /// command fails and adds nothing. The words say why.
    Refused(String),
    /// Route-related but not readable; the message says why.
    Problem(String),
}

/// Read an `ip` command line (`words[0]` is the program).
pub fn parse_command(words: &[String], tables: &Tables) -> Outcome {
    let (family, netns, words) = match ipcmd::read(words) {
        Invocation::Object { family, netns, words } => (family, netns, words),
        Invocation::Batch => {
            return Outcome::Problem("reads commands from a batch file (-batch); not read".into())
        }
        Invocation::Other => return Outcome::NotRoute,
    };
    let (Some(object), Some(verb)) = (words.first(), words.get(1)) else {
        return Outcome::NotRoute;
    };
    if !abbrev(object, "route") {
        return Outcome::NotRoute;
    }
    let Some(verb) = verb_of(verb) else {
        return Outcome::NotRoute;
    };
    if netns {
        return Outcome::Problem(
            "runs in another network namespace (-netns): not the node's route; not checked".into(),
        );
    }
    route_command(verb, &words[2..], family, tables)
}

/// The verbs of `ip route` in the order iproute2 tries them.
fn verb_of(word: &str) -> Option<Verb> {
    const VERBS: [(&str, Option<Verb>); 8] = [
        ("add", Some(Verb::Add)),
        ("change", Some(Verb::Change)),
        ("replace", Some(Verb::Replace)),
        ("prepend", Some(Verb::Add)),
        ("append", Some(Verb::Append)),
        ("test", None),
        ("delete", Some(Verb::Delete)),
        ("list", None),
    ];
    if word == "chg" {
        return Some(Verb::Change);
    }
    VERBS
        .iter()
        .find(|(full, _)| abbrev(word, full))
        .and_then(|(_, v)| *v)
}

/// Read the arguments after `ip route add` (also a `route-IFACE` line).
pub fn parse_route_args(args: &[String], family: Option<Family>, tables: &Tables) -> Outcome {
    route_command(Verb::Add, args, family, tables)
}

fn route_command(verb: Verb, args: &[String], family: Option<Family>, tables: &Tables) -> Outcome {
    match Parts::read(args, family, tables).and_then(|p| p.build(verb)) {
        Ok(Built::Route(command)) => Outcome::Route(command),
        Ok(Built::Refused(why)) => Outcome::Refused(why),
        Err(problem) => Outcome::Problem(problem),
    }
}

/// Keywords of iproute2's route syntax that take one value (and may take `lock`
/// before it), in its order; the first a word abbreviates (or equals, for the
/// exact ones) wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Src,
    As,
    Via,
    From,
    Tos,
    Expires,
    Metric,
    Scope,
    Metrics(&'static str, bool),
    Realms,
    Onlink,
    Nexthop,
    Nhid,
    Protocol,
    Table,
    Vrf,
    Dev,
    Pref,
    Encap,
    TtlPropagate,
    FastopenNoCookie,
}

/// `(name, exact, key)` in iproute2 6.1's order.
const KEYS: &[(&str, bool, Key)] = &[
    ("src", true, Key::Src),
    ("as", true, Key::As),
    ("via", true, Key::Via),
    ("from", true, Key::From),
    ("tos", true, Key::Tos),
    ("dsfield", false, Key::Tos),
    ("expires", true, Key::Expires),
    ("metric", false, Key::Metric),
    ("priority", false, Key::Metric),
    ("preference", true, Key::Metric),
    ("scope", true, Key::Scope),
    ("mtu", true, Key::Metrics("mtu", true)),
    ("hoplimit", true, Key::Metrics("hoplimit", true)),
    ("advmss", true, Key::Metrics("advmss", true)),
    ("reordering", false, Key::Metrics("reordering", true)),
    ("rtt", true, Key::Metrics("rtt", true)),
    ("rto_min", true, Key::Metrics("rto_min", false)),
    ("window", false, Key::Metrics("window", true)),
    ("cwnd", false, Key::Metrics("cwnd", true)),
    ("initcwnd", false, Key::Metrics("initcwnd", true)),
    ("initrwnd", false, Key::Metrics("initrwnd", true)),
    ("features", false, Key::Metrics("features", false)),
    ("quickack", false, Key::Metrics("quickack", false)),
    ("congctl", false, Key::Metrics("congctl", true)),
    ("rttvar", false, Key::Metrics("rttvar", true)),
    ("ssthresh", false, Key::Metrics("ssthresh", true)),
    ("realms", false, Key::Realms),
    ("onlink", true, Key::Onlink),
    ("nexthop", true, Key::Nexthop),
    ("nhid", true, Key::Nhid),
    ("protocol", false, Key::Protocol),
    ("table", false, Key::Table),
    ("vrf", false, Key::Vrf),
    ("dev", true, Key::Dev),
    ("oif", true, Key::Dev),
    ("pref", false, Key::Pref),
    ("encap", true, Key::Encap),
    ("ttl-propagate", true, Key::TtlPropagate),
    ("fastopen_no_cookie", true, Key::FastopenNoCookie),
];

fn key_of(word: &str) -> Option<Key> {
    KEYS.iter()
        .find(|(name, exact, _)| if *exact { word == *name } else { abbrev(word, name) })
        .map(|(_, _, k)| *k)
}

/// iproute2's route types (`rtnl_rtntype_a2n`), in its order.
fn route_type(word: &str) -> Option<RouteType> {
    const TYPES: [(&str, bool, RouteType); 10] = [
        ("local", true, RouteType::Local),
        ("nat", true, RouteType::Nat),
        ("broadcast", false, RouteType::Broadcast),
        ("anycast", false, RouteType::Anycast),
        ("multicast", false, RouteType::Multicast),
        ("prohibit", false, RouteType::Prohibit),
        ("unreachable", false, RouteType::Unreachable),
        ("blackhole", false, RouteType::Blackhole),
        ("unicast", false, RouteType::Unicast),
        ("throw", true, RouteType::Throw),
    ];
    if word == "brd" {
        return Some(RouteType::Broadcast);
    }
    TYPES
        .iter()
        .find(|(name, exact, _)| if *exact { word == *name } else { abbrev(word, name) })
        .map(|(_, _, t)| *t)
}

/// The pieces of a route command, as read.
struct Parts<'a> {
    family: Option<Family>,
    destination: Option<&'a str>,
    kind: Option<RouteType>,
    gateway: Option<Gateway<'a>>,
    device: Option<&'a str>,
    table: Option<u32>,
    metric: Option<u32>,
    tos: u8,
    source_prefix: Option<&'a str>,
    nhid: Option<u32>,
    hops: Vec<Hop<'a>>,
}

/// One `nexthop` of a multipath route, as read.
#[derive(Default)]
struct Hop<'a> {
    gateway: Option<Gateway<'a>>,
    device: Option<&'a str>,
    weight: Option<u32>,
}

impl<'a> Parts<'a> {
    fn read(args: &'a [String], family: Option<Family>, tables: &Tables) -> Result<Parts<'a>, String> {
        let mut p = Parts {
            family,
            destination: None,
            kind: None,
            gateway: None,
            device: None,
            table: None,
            metric: None,
            tos: 0,
            source_prefix: None,
            nhid: None,
            hops: Vec::new(),
        };
        let mut it = args.iter().map(String::as_str).peekable();
        while let Some(word) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("option {word:?} has no value"));
            match key_of(word) {
                Some(Key::Via) => {
                    if p.gateway.replace(via(value)?).is_some() {
                        return Err("names two gateways (via) outside a nexthop list".into());
                    }
                }
                Some(Key::Dev) => p.device = Some(value()?),
                Some(Key::Table) => p.table = Some(tables.lookup_iproute2(value()?)?),
                Some(Key::Vrf) => return Err("names a VRF (vrf), whose table is not known here".into()),
                Some(Key::Metric) => {
                    let v = value()?;
                    p.metric =
                        Some(number(v).ok_or_else(|| format!("the metric {:?} is not a number", token(v)))?)
                }
                Some(Key::Tos) => p.tos = tos(value()?)?,
                Some(Key::From) => p.source_prefix = Some(value()?),
                Some(Key::Nhid) => {
                    let v = value()?;
                    p.nhid = Some(
                        number(v).ok_or_else(|| format!("the next-hop id {:?} is not a number", token(v)))?,
                    )
                }
                Some(Key::Metrics(_, true)) => {
                    if value()? == "lock" {
                        value()?;
                    }
                }
                Some(Key::Nexthop) => {
                    let hop = Parts::nexthop(&mut it)?;
                    p.gateway = p.gateway.or(hop.gateway);
                    p.device = p.device.or(hop.device);
                    p.hops.push(hop);
                }
                Some(Key::Encap) => return Err("uses encapsulation (encap); not read".into()),
                Some(Key::Onlink) => {}
                Some(_) => drop(value()?),
                None => p.destination_words(word, &mut it)?,
            }
        }
        Ok(p)
    }

    /// `[to] [TYPE] PREFIX`, the branch iproute2 takes for any other word.
    fn destination_words(
        &mut self,
        word: &'a str,
        it: &mut impl Iterator<Item = &'a str>,
    ) -> Result<(), String> {
        let mut word = word;
        if word == "to" {
            word = it.next().ok_or("\"to\" names no destination")?;
        }
        if !word.starts_with(|c: char| c.is_ascii_digit()) {
            if let Some(kind) = route_type(word) {
                self.kind = Some(kind);
                word = it.next().ok_or("a route type with no destination")?;
            }
        }
        if self.destination.replace(word).is_some() {
            return Err(format!(
                "{:?} is a second destination or a word iproute2 does not know",
                token(word)
            ));
        }
        Ok(())
    }

    /// One `nexthop` of a multipath route: its gateway, device and weight (the
    /// first one's gateway and device are the route's).
    fn nexthop(it: &mut std::iter::Peekable<impl Iterator<Item = &'a str>>) -> Result<Hop<'a>, String> {
        let mut hop = Hop::default();
        while let Some(word) = it.next_if(|w| *w != "nexthop") {
            let mut value = || it.next().ok_or_else(|| format!("option {word:?} has no value"));
            match word {
                "via" => {
                    let gateway = via(value)?;
                    hop.gateway.get_or_insert(gateway);
                }
                "dev" => {
                    let v = value()?;
                    hop.device.get_or_insert(v);
                }
                "weight" => {
                    let v = value()?;
                    hop.weight =
                        Some(number(v).filter(|w| (1..=256).contains(w)).ok_or_else(|| {
                            format!("the weight {:?} is not a number from 1 to 256", token(v))
                        })?);
                }
                "as" | "realms" => drop(value()?),
                "onlink" => {}
                "encap" => return Err("uses encapsulation (encap); not read".into()),
                _ => return Err(format!("{:?} is a word a nexthop does not take", token(word))),
            }
        }
        Ok(hop)
    }

    /// The hops of a multipath route (none for a route of one hop), each
    /// gateway of the destination's family unless named with `inet`/`inet6`.
    fn multipath(&self, family: Family) -> Result<Vec<ExpectedHop>, String> {
        if self.hops.len() < 2 {
            return Ok(Vec::new());
        }
        self.hops
            .iter()
            .map(|hop| {
                let gateway = match hop.gateway {
                    Some((fam, text)) => {
                        let gw = address(text, fam.or(Some(family)))
                            .ok_or_else(|| format!("the gateway {:?} is not an address", token(text)))?;
                        if fam.is_none() && Family::of(&gw) != family {
                            return Err(format!("gateway {gw} is not of the destination's family"));
                        }
                        Some(gw).filter(|g| !g.is_unspecified())
                    }
                    None => None,
                };
                let device = hop
                    .device
                    .map(IfName::new)
                    .transpose()
                    .map_err(|e| e.to_string())?;
                Ok(ExpectedHop {
                    gateway,
                    device,
                    weight: hop.weight,
                })
            })
            .collect()
    }

    fn build(self, verb: Verb) -> Result<Built, String> {
        let gateway_family = self.gateway.and_then(|(f, _)| f);
        let gateway = match self.gateway {
            Some((fam, text)) => Some(
                address(text, fam.or(self.family))
                    .ok_or_else(|| format!("the gateway {:?} is not an address", token(text)))?,
            ),
            None => None,
        };
        let family = self.family.or(gateway
            .filter(|_| gateway_family.is_none())
            .as_ref()
            .map(Family::of));
        let dest = self.destination.ok_or("names no destination")?;
        let (net, exact) = prefix(dest, family)?;
        if family.is_some_and(|f| f != Family::of_net(&net)) {
            return Err("the destination is not of the family the command selects".into());
        }
        if matches!(net, IpNet::V4(_)) && !exact {
            return Ok(Built::Refused(
                "the prefix has host bits set: the kernel refuses it (\"Invalid prefix for given prefix length\"), so the command fails and adds no route".into(),
            ));
        }
        let mut route = RouteSpec::to(net);
        route.kind = self.kind.unwrap_or(RouteType::Unicast);
        route.tos = self.tos;
        route.source_prefix = match self.source_prefix {
            Some(text) => Some(prefix(text, Some(Family::of_net(&net)))?.0),
            None => None,
        };
        route.nhid = self.nhid;
        route.gateway = gateway.filter(|g| !g.is_unspecified());
        if route.nhid.is_some() && (route.gateway.is_some() || !self.hops.is_empty()) {
            return Err("names both a next-hop object (nhid) and next hops, which iproute2 refuses".into());
        }
        route.device = self
            .device
            .map(IfName::new)
            .transpose()
            .map_err(|e| e.to_string())?;
        route.table = self.table.or(match route.kind {
            RouteType::Local | RouteType::Broadcast | RouteType::Nat | RouteType::Anycast => {
                Some(TABLE_LOCAL)
            }
            _ => None,
        });
        route.metric = self.metric;
        route.next_hops = self.multipath(Family::of_net(&net))?;
        if !route.next_hops.is_empty() {
            route.notes.push(format!(
                "multipath route with {} next hops: present when the kernel's route has these hops and no other, in any order (weights and the kernel's dead/linkdown flags are not compared)",
                route.next_hops.len()
            ));
        }
        if gateway_family.is_none() {
            route.check_families()?;
        }
        Ok(Built::Route(Command {
            verb,
            route,
            kind_named: self.kind.is_some(),
        }))
    }
}

/// The words after `via`: `[inet|inet6] ADDRESS` (a family named for a gateway
/// of another family than the route's, RFC 5549).
fn via<'a>(mut value: impl FnMut() -> Result<&'a str, String>) -> Result<Gateway<'a>, String> {
    let word = value()?;
    let family = match word {
        "inet" => Family::Ipv4,
        "inet6" => Family::Ipv6,
        _ => return Ok((None, word)),
    };
    Ok((Some(family), value()?))
}

/// A gateway as read: the family named with it, and its words.
type Gateway<'a> = (Option<Family>, &'a str);

enum Built {
    Route(Command),
    Refused(String),
}

/// A word of the command line, shortened, for a diagnostic (a token of an
/// argument list, never a file's contents).
fn token(word: &str) -> String {
    word.chars().take(40).collect()
}

/// A number as `strtoul(…, 0)` reads it: `0x` hexadecimal, a leading `0` octal,
/// else decimal; nothing may follow.
pub fn number(text: &str) -> Option<u32> {
    let (digits, radix) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None if text.len() > 1 && text.starts_with('0') => (&text[1..], 8),
        None => (text, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

/// A TOS (`rtnl_dsfield_a2n`): hexadecimal, with or without `0x`, at most 0xff.
fn tos(text: &str) -> Result<u8, String> {
    let hex = text.strip_prefix("0x").unwrap_or(text);
    u8::from_str_radix(hex, 16).map_err(|_| {
        format!(
            "the TOS {:?} is not a hexadecimal number up to 0xff (a TOS name is not read)",
            token(text)
        )
    })
}

/// An IPv4 address as iproute2's `get_addr_ipv4` reads it: up to four parts,
/// each a C number (octal, hexadecimal) up to 255; missing parts are 0.
fn ipv4(text: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (o, p) in octets.iter_mut().zip(&parts) {
        *o = u8::try_from(number(p)?).ok()?;
    }
    Some(Ipv4Addr::from(octets))
}

/// An address of the family given (or the one it looks like).
fn address(text: &str, family: Option<Family>) -> Option<IpAddr> {
    let v6 = || text.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    let v4 = || ipv4(text).map(IpAddr::V4);
    match family {
        Some(Family::Ipv4) => v4(),
        Some(Family::Ipv6) => v6(),
        None if text.contains(':') => v6(),
        None => v4(),
    }
}

/// `default`/`all`/`any`, or `ADDR[/LEN]` (a host when no length); and whether
/// the address had no host bits set.
fn prefix(text: &str, family: Option<Family>) -> Result<(IpNet, bool), String> {
    let bad = || {
        format!(
            "the destination {:?} is not an address/prefix length or default",
            token(text)
        )
    };
    if matches!(text, "default" | "all" | "any") {
        let net = match family {
            Some(Family::Ipv6) => IpNet::V6(Default::default()),
            _ => IpNet::V4(Default::default()),
        };
        return Ok((net, true));
    }
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(number(l).ok_or_else(bad)?)),
        None => (text, None),
    };
    let addr = address(addr, family).ok_or_else(bad)?;
    let len = len.unwrap_or(if addr.is_ipv4() { 32 } else { 128 });
    let net = IpNet::new(addr, u8::try_from(len).map_err(|_| bad())?).map_err(|_| bad())?;
    Ok((net.trunc(), net.trunc().addr() == addr))
}

#[cfg(test)]
#[path = "iproute_tests.rs"]
mod tests;
