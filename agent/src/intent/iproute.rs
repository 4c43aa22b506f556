//! Intent stage, declaration form: `ip [-4|-6] route add|replace|append|prepend|change
//! ROUTE` (and iproute2's abbreviations, `ip r a`), as found in units and scripts,
//! and the same syntax in legacy `route-IFACE` files.

use crate::model::{Family, IfName};

use super::spec::{self, RouteSpec, Tables};

/// What a command means for the intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not a route declaration (another `ip` command, `ip route del`, ...).
    NotRoute,
    /// A unicast route.
    Route(RouteSpec),
    /// Route-related but not readable; the message says why.
    Problem(String),
}

/// Read an `ip` command line (`words[0]` is the program).
pub fn parse_command(words: &[String], tables: &Tables) -> Outcome {
    let mut family = None;
    let mut i = 1;
    while let Some(w) = words.get(i).filter(|w| w.starts_with('-')) {
        match w.as_str() {
            "-4" => family = Some(Family::Ipv4),
            "-6" => family = Some(Family::Ipv6),
            "-f" | "-family" => {
                family = match words.get(i + 1).map(String::as_str) {
                    Some("inet") => Some(Family::Ipv4),
                    Some("inet6") => Some(Family::Ipv6),
                    _ => family,
                };
                i += 1;
            }
            "-n" | "-netns" => {
                return Outcome::Problem("runs in another network namespace (-n); not checked".into())
            }
            "-b" | "-batch" => {
                return Outcome::Problem("reads commands from a batch file (-batch); not read".into())
            }
            "-rc" | "-rcvbuf" | "-l" | "-loops" => i += 1,
            _ => {}
        }
        i += 1;
    }
    let (Some(object), Some(verb)) = (words.get(i), words.get(i + 1)) else {
        return Outcome::NotRoute;
    };
    if !is_abbrev(object, "route", 1) || !declares(verb) {
        return Outcome::NotRoute;
    }
    parse_route_args(&words[i + 2..], family, tables)
}

/// Whether `verb` adds a route: add, replace, append, prepend, change (and
/// abbreviations as iproute2 matches them).
fn declares(verb: &str) -> bool {
    is_abbrev(verb, "add", 1)
        || is_abbrev(verb, "replace", 1)
        || is_abbrev(verb, "prepend", 1)
        || is_abbrev(verb, "append", 2)
        || is_abbrev(verb, "change", 1)
        || verb == "chg"
}

fn is_abbrev(word: &str, full: &str, min: usize) -> bool {
    word.len() >= min && full.starts_with(word)
}

const ROUTE_TYPES: &[&str] = &[
    "local",
    "broadcast",
    "multicast",
    "throw",
    "unreachable",
    "prohibit",
    "blackhole",
    "nat",
    "anycast",
];
/// Options that take one value and do not change what is checked.
const VALUE_OPTIONS: &[&str] = &[
    "src",
    "from",
    "tos",
    "dsfield",
    "expires",
    "scope",
    "proto",
    "protocol",
    "advmss",
    "rtt",
    "rttvar",
    "reordering",
    "window",
    "cwnd",
    "initcwnd",
    "initrwnd",
    "features",
    "quickack",
    "congctl",
    "pref",
    "realm",
    "realms",
    "ssthresh",
    "hoplimit",
    "fastopen_no_cookie",
    "ttl-propagate",
    "rto_min",
    "mtu",
    "nhid",
    "as",
];
const FLAGS: &[&str] = &["onlink", "pervasive", "unicast", "lock"];

/// Read the arguments after `ip route add` (also a `route-IFACE` line).
pub fn parse_route_args(args: &[String], family: Option<Family>, tables: &Tables) -> Outcome {
    match route_args(args, family, tables) {
        Ok(Some(route)) => Outcome::Route(route),
        Ok(None) => Outcome::NotRoute,
        Err(problem) => Outcome::Problem(problem),
    }
}

/// `Ok(None)` for a route type that is not unicast.
fn route_args(args: &[String], family: Option<Family>, tables: &Tables) -> Result<Option<RouteSpec>, String> {
    let mut dest = None;
    let mut route = Parts::default();
    let mut it = args.iter().map(String::as_str);
    while let Some(word) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("option {word:?} has no value"));
        match word {
            "to" => dest = Some(value()?),
            "via" => {
                let mut v = value()?;
                if v == "inet" || v == "inet6" {
                    v = value()?;
                }
                route.gateway.get_or_insert(v);
            }
            "dev" | "oif" => {
                route.device.get_or_insert(value()?);
            }
            "table" | "vrf" => route.table = Some(tables.lookup(value()?)?),
            "metric" | "priority" | "preference" => route.metric = Some(spec::metric(value()?)?),
            "nexthop" => route.hops += 1,
            "weight" => drop(value()?),
            "encap" => return Err("uses encapsulation (encap); not read".into()),
            w if ROUTE_TYPES.contains(&w) && dest.is_none() => return Ok(None),
            w if VALUE_OPTIONS.contains(&w) => drop(value()?),
            w if FLAGS.contains(&w) => {}
            w if dest.is_none() && !w.starts_with('-') => dest = Some(w),
            _ => return Err("an option iproute2 does not know (not read)".to_owned()),
        }
    }
    let dest = dest.ok_or("names no destination")?;
    route.build(dest, family).map(Some)
}

#[derive(Default)]
struct Parts<'a> {
    gateway: Option<&'a str>,
    device: Option<&'a str>,
    table: Option<u32>,
    metric: Option<u32>,
    hops: usize,
}

impl Parts<'_> {
    fn build(self, dest: &str, family: Option<Family>) -> Result<RouteSpec, String> {
        let gateway = self.gateway.map(spec::gateway).transpose()?.flatten();
        let family = family.or(gateway.as_ref().map(Family::of));
        let mut route = RouteSpec::to(spec::destination(dest, family)?);
        if family.is_some_and(|f| f != Family::of_net(&route.destination)) {
            return Err("the destination is not of the family the command selects".to_owned());
        }
        route.gateway = gateway;
        route.device = self
            .device
            .map(IfName::new)
            .transpose()
            .map_err(|e| e.to_string())?;
        route.table = self.table;
        route.metric = self.metric;
        if self.hops > 1 {
            route.notes.push(format!(
                "multipath route with {} next hops: checked by its first",
                self.hops
            ));
        }
        route.check_families()?;
        Ok(route)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Outcome {
        let words: Vec<String> = line.split_whitespace().map(String::from).collect();
        parse_command(&words, &Tables::default())
    }

    fn route(line: &str) -> RouteSpec {
        match parse(line) {
            Outcome::Route(r) => r,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn full_and_abbreviated() {
        let r = route("ip route add 192.168.1.0/24 via 172.18.0.1 dev ens5 table 200 metric 50");
        assert_eq!(r.destination.to_string(), "192.168.1.0/24");
        assert_eq!(r.gateway.map(|g| g.to_string()), Some("172.18.0.1".into()));
        assert_eq!(r.device.as_ref().map(IfName::as_str), Some("ens5"));
        assert_eq!((r.table, r.metric), (Some(200), Some(50)));
        let r = route("/usr/sbin/ip -4 r a 10.0.0.0/8 dev eth0 proto static scope link");
        assert_eq!((r.gateway, r.table, r.metric), (None, None, None));
        let r = route("ip ro replace to default via 10.0.0.1 table main");
        assert_eq!(
            (r.destination.to_string(), r.table),
            ("0.0.0.0/0".into(), Some(254))
        );
        let r = route("ip -6 route append 2001:db8::/64 via inet6 fe80::1 dev eth0 pref high");
        assert_eq!(r.destination.to_string(), "2001:db8::/64");
        let r = route("ip -6 route add default dev eth0");
        assert_eq!(r.destination.to_string(), "::/0");
    }

    #[test]
    fn not_routes() {
        assert_eq!(parse("ip route del 10.0.0.0/8"), Outcome::NotRoute);
        assert_eq!(parse("ip link set eth0 up"), Outcome::NotRoute);
        assert_eq!(parse("ip rule add from 1.2.3.4 table 100"), Outcome::NotRoute);
        assert_eq!(parse("ip route add blackhole 10.0.0.0/8"), Outcome::NotRoute);
        assert_eq!(parse("ip route show"), Outcome::NotRoute);
    }

    #[test]
    fn problems() {
        let p = |l| matches!(parse(l), Outcome::Problem(_));
        assert!(p("ip route add 10.0.0.0/8 via 1.2.3.4 table vpn"));
        assert!(p("ip route add 10.0.0.0/8 bogus 1"));
        assert!(p("ip route add 10.0.0.0/33 dev eth0"));
        assert!(p("ip route add 10.0.0.0/8 via fe80::1"));
        assert!(p("ip -n other route add 10.0.0.0/8 dev eth0"));
        assert!(p("ip route add 10.0.0.0/8 via"));
        assert!(p("ip route add"));
        assert!(p("ip -6 route add 10.0.0.0/8 dev eth0"));
    }

    #[test]
    fn multipath_takes_first_hop() {
        let r =
            route("ip route add 10.9.0.0/16 nexthop via 10.0.0.1 dev a weight 1 nexthop via 10.0.0.2 dev b");
        assert_eq!(r.gateway.map(|g| g.to_string()), Some("10.0.0.1".into()));
        assert_eq!(r.notes.len(), 1);
    }
}
