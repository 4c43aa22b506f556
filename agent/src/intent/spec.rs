//! Intent stage helper: the pieces every declaration form shares (a destination,
//! a gateway, a table name or number) validated once, and the route they build
//! before its source is attached.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use crate::model::{
    ExpectedHop, ExpectedRoute, Family, IfName, Manager, RouteType, Source, Traits, TABLE_DEFAULT,
    TABLE_LOCAL, TABLE_MAIN,
};

/// The metric the kernel gives an IPv6 route declared with metric 0 (or none).
pub const IPV6_DEFAULT_METRIC: u32 = 1024;

/// A route as a declaration states it, before its source is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// Destination, host bits cleared.
    pub destination: IpNet,
    /// Type (unicast unless declared otherwise).
    pub kind: RouteType,
    /// TOS selector (IPv4), 0 when none.
    pub tos: u8,
    /// Source prefix selector (IPv6 `from`).
    pub source_prefix: Option<IpNet>,
    /// The next-hop object it forwards through (`nhid`), whose hops the
    /// MachineConfig does not say.
    pub nhid: Option<u32>,
    /// Next hop (the first, for a multipath route).
    pub gateway: Option<IpAddr>,
    /// Output device.
    pub device: Option<IfName>,
    /// Table, when the declaration names one (main otherwise).
    pub table: Option<u32>,
    /// Metric, when named.
    pub metric: Option<u32>,
    /// Every hop of a multipath route, the first being `gateway` and `device`;
    /// empty for a route of one hop.
    pub next_hops: Vec<ExpectedHop>,
    /// Remarks.
    pub notes: Vec<String>,
}

impl RouteSpec {
    /// A route to `destination` with nothing else known.
    pub fn to(destination: IpNet) -> RouteSpec {
        RouteSpec {
            destination: destination.trunc(),
            kind: RouteType::Unicast,
            tos: 0,
            source_prefix: None,
            nhid: None,
            gateway: None,
            device: None,
            table: None,
            metric: None,
            next_hops: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Attach where it came from. An IPv6 metric of 0 becomes 1024, as the
    /// kernel stores it.
    pub fn into_expected(self, source: Source, traits: Traits) -> ExpectedRoute {
        let family = Family::of_net(&self.destination);
        let metric = match (family, self.metric) {
            (Family::Ipv6, Some(0)) => Some(IPV6_DEFAULT_METRIC),
            (_, m) => m,
        };
        ExpectedRoute {
            family,
            destination: self.destination,
            kind: self.kind,
            gateway: self.gateway,
            device: self.device,
            table: self.table.unwrap_or(TABLE_MAIN),
            metric,
            tos: self.tos,
            source_prefix: self.source_prefix,
            nhid: self.nhid,
            next_hops: self.next_hops,
            sources: vec![source.clone()],
            source,
            notes: self.notes,
            traits,
        }
    }

    /// Check that the gateway is of the destination's family.
    pub fn check_families(&self) -> Result<(), String> {
        match self.gateway {
            Some(gw) if Family::of(&gw) != Family::of_net(&self.destination) => Err(format!(
                "gateway {gw} is not of the same family as destination {}",
                self.destination
            )),
            _ => Ok(()),
        }
    }
}

/// Where in a file something was declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A 1-based line.
    Line(usize),
    /// A path inside a structured document (`routes.config[2]`).
    Path(String),
    /// The file as a whole.
    Whole,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Line(n) => write!(f, " line {n}"),
            Place::Path(p) => write!(f, " {p}"),
            Place::Whole => Ok(()),
        }
    }
}

/// The routes a file declares and the problems found reading it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileRoutes {
    /// Routes, each with its place.
    pub routes: Vec<(Place, RouteSpec)>,
    /// Problems, each with its place.
    pub problems: Vec<(Place, String)>,
}

/// Traits for a route kept by `manager`.
pub fn traits(manager: Manager, non_persistent: bool) -> Traits {
    Traits {
        non_persistent,
        manager,
        ..Traits::default()
    }
}

/// The offending token of a declaration, quoted, for a diagnostic: the one
/// word that could not be read (`"10.62.0.0/33"`, `"unknown-table"`), never
/// more of the line. Only a token shaped like a value of a route or a rule
/// (at most 64 lowercase letters, digits and `.:/_-`) is shown: anything else
/// (a word in capitals, base64, a long string) could be a secret someone put
/// in the wrong place, and is said to be not shown.
pub fn shown(token: &str) -> String {
    let shaped = !token.is_empty()
        && token.len() <= 64
        && token.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | ':' | '/' | '_' | '-')
        });
    if shaped {
        format!("{token:?}")
    } else {
        "(a value not shown)".to_owned()
    }
}

/// A destination: `default`, an address (a host route), `addr/len`, and the short
/// IPv4 forms iproute2 takes (`10/8`).
pub fn destination(text: &str, family: Option<Family>) -> Result<IpNet, String> {
    let bad = || {
        format!(
            "the destination {} is not an address/prefix length or default",
            shown(text)
        )
    };
    if matches!(text, "default" | "all" | "any") {
        return Ok(match family {
            Some(Family::Ipv6) => IpNet::V6(Default::default()),
            _ => IpNet::V4(Default::default()),
        });
    }
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| bad())?)),
        None => (text, None),
    };
    let addr = address(addr).map_err(|_| bad())?;
    let len = len.unwrap_or(if addr.is_ipv4() { 32 } else { 128 });
    IpNet::new(addr, len).map(|n| n.trunc()).map_err(|_| bad())
}

/// An address, accepting iproute2's short IPv4 forms (`10` = 10.0.0.0).
pub fn address(text: &str) -> Result<IpAddr, String> {
    if let Ok(a) = text.parse::<IpAddr>() {
        return Ok(a);
    }
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() < 4 && parts.iter().all(|p| p.parse::<u8>().is_ok()) {
        let mut octets = [0u8; 4];
        for (o, p) in octets.iter_mut().zip(&parts) {
            *o = p.parse().map_err(|_| text.to_owned())?;
        }
        return Ok(IpAddr::V4(Ipv4Addr::from(octets)));
    }
    Err("not an IP address".to_owned())
}

/// A gateway, where `0.0.0.0`, `::` and the empty string mean none.
pub fn gateway(text: &str) -> Result<Option<IpAddr>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let a: IpAddr = text
        .parse()
        .map_err(|_| format!("the gateway {} is not an IP address", shown(text)))?;
    Ok((!a.is_unspecified()).then_some(a))
}

/// A NetworkManager route `type=` attribute.
pub fn nm_route_type(text: &str) -> Result<RouteType, String> {
    Ok(match text {
        "unicast" => RouteType::Unicast,
        "local" => RouteType::Local,
        "blackhole" => RouteType::Blackhole,
        "unreachable" => RouteType::Unreachable,
        "prohibit" => RouteType::Prohibit,
        "throw" => RouteType::Throw,
        _ => {
            return Err(format!(
                "{} is a route type NetworkManager does not know",
                shown(text)
            ))
        }
    })
}

/// A NetworkManager route `tos=` attribute: a byte, in C notation.
pub fn nm_tos(text: &str) -> Result<u8, String> {
    super::iproute::number(text)
        .and_then(|n| u8::try_from(n).ok())
        .ok_or_else(|| format!("the TOS {} is not a number from 0 to 255", shown(text)))
}

/// A NetworkManager route `from=` attribute: an IPv6 source prefix.
pub fn nm_source_prefix(text: &str, family: Family) -> Result<IpNet, String> {
    let net = destination(text, Some(family)).map_err(|_| {
        format!(
            "the source prefix (from) {} is not an address/prefix",
            shown(text)
        )
    })?;
    if family != Family::Ipv6 || Family::of_net(&net) != Family::Ipv6 {
        return Err("a source prefix (from) is an IPv6 route attribute".into());
    }
    Ok(net)
}

/// A metric.
pub fn metric(text: &str) -> Result<u32, String> {
    text.parse()
        .map_err(|_| format!("the metric {} is not a number from 0 to 4294967295", shown(text)))
}

/// Routing table names known on the node: iproute2's own plus those the
/// MachineConfig writes to `/etc/iproute2/rt_tables` or `rt_tables.d/*.conf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables(HashMap<String, u32>);

impl Default for Tables {
    fn default() -> Self {
        let names = [
            ("main", TABLE_MAIN),
            ("local", TABLE_LOCAL),
            ("default", TABLE_DEFAULT),
        ];
        Tables(names.into_iter().map(|(n, t)| (n.to_owned(), t)).collect())
    }
}

impl Tables {
    /// Add the `NUMBER NAME` lines of an rt_tables file.
    pub fn add_file(&mut self, text: &str) {
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            if let (Some(num), Some(name)) = (words.next(), words.next()) {
                if let Ok(n) = parse_u32(num) {
                    self.0.insert(name.to_owned(), n);
                }
            }
        }
    }

    /// A table number or a known name. 0 (unspec) means main.
    pub fn lookup(&self, text: &str) -> Result<u32, String> {
        self.resolve(text, parse_u32(text).ok())
    }

    /// A table as iproute2 reads it: a known name, else a C number (`0x10`,
    /// `010` is 8).
    pub fn lookup_iproute2(&self, text: &str) -> Result<u32, String> {
        self.resolve(text, super::iproute::number(text))
    }

    fn resolve(&self, text: &str, number: Option<u32>) -> Result<u32, String> {
        let n = match (self.0.get(text).copied(), number) {
            (Some(n), _) | (None, Some(n)) => n,
            (None, None) => {
                return Err(format!(
                    "the routing table {} is a name that is not defined in the MachineConfig's rt_tables",
                    shown(text)
                ))
            }
        };
        Ok(if n == 0 { TABLE_MAIN } else { n })
    }
}

fn parse_u32(text: &str) -> Result<u32, ()> {
    match text.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).map_err(|_| ()),
        None => text.parse().map_err(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        let d = |t, f| destination(t, f).map(|n| n.to_string());
        assert_eq!(d("192.168.1.7/24", None), Ok("192.168.1.0/24".into()));
        assert_eq!(d("10.1.2.3", None), Ok("10.1.2.3/32".into()));
        assert_eq!(d("10/8", None), Ok("10.0.0.0/8".into()));
        assert_eq!(d("default", None), Ok("0.0.0.0/0".into()));
        assert_eq!(d("default", Some(Family::Ipv6)), Ok("::/0".into()));
        assert_eq!(d("fd00::1/64", None), Ok("fd00::/64".into()));
        assert!(d("10.0.0.0/33", None).is_err());
        assert!(d("ten/8", None).is_err());
        assert!(d("", None).is_err());
    }

    #[test]
    fn the_offending_token_is_named_when_it_is_shaped_like_a_value() {
        assert_eq!(
            destination("10.62.0.0/33", None),
            Err("the destination \"10.62.0.0/33\" is not an address/prefix length or default".into())
        );
        assert!(Tables::default()
            .lookup("unknown-table")
            .is_err_and(|e| e.contains("\"unknown-table\"")));
        assert!(gateway("S3cr3t+TOKEN=").is_err_and(|e| e.contains("(a value not shown)")));
        assert_eq!(shown(&"a".repeat(65)), "(a value not shown)");
    }

    #[test]
    fn gateways_and_tables() {
        assert_eq!(gateway("0.0.0.0"), Ok(None));
        assert_eq!(gateway("::"), Ok(None));
        assert!(gateway("x").is_err());
        let mut t = Tables::default();
        assert_eq!(t.lookup("main"), Ok(254));
        assert_eq!(t.lookup("0"), Ok(254));
        assert_eq!(t.lookup("1000"), Ok(1000));
        assert!(t.lookup("vpn").is_err());
        t.add_file("# comment\n200 vpn\n");
        assert_eq!(t.lookup("vpn"), Ok(200));
    }
}
