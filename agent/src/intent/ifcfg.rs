//! Intent stage, declaration form: legacy `/etc/sysconfig/network-scripts/route-IFACE`
//! and `route6-IFACE` files, in both the `ADDRESSn=/NETMASKn=/GATEWAYn=/METRICn=`
//! syntax and the `ip route` line syntax (`10.0.0.0/8 via 1.2.3.4 dev eth0`).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::model::{Family, IfName};

use super::iproute::{self, Outcome};
use super::spec::{self, FileRoutes, Place, RouteSpec, Tables};

/// Directory the files live in.
pub const DIR: &str = "/etc/sysconfig/network-scripts/";

/// The family and device a path names: `route-eth0` -> (IPv4, eth0).
pub fn classify(path: &str) -> Option<(Family, &str)> {
    let name = path.strip_prefix(DIR)?;
    if let Some(dev) = name.strip_prefix("route6-") {
        Some((Family::Ipv6, dev))
    } else {
        name.strip_prefix("route-").map(|dev| (Family::Ipv4, dev))
    }
}

/// Parse a route file for `device`.
pub fn parse(text: &str, family: Family, device: &str, tables: &Tables) -> FileRoutes {
    match IfName::new(device) {
        Ok(dev) if family == Family::Ipv4 && is_key_value(text) => key_value(text, &dev, tables),
        Ok(dev) => lines(text, family, &dev, tables),
        Err(e) => FileRoutes {
            routes: Vec::new(),
            problems: vec![(Place::Whole, e.to_string())],
        },
    }
}

fn is_key_value(text: &str) -> bool {
    text.lines().any(|l| l.trim_start().starts_with("ADDRESS"))
}

fn lines(text: &str, family: Family, dev: &IfName, tables: &Tables) -> FileRoutes {
    let mut file = FileRoutes::default();
    for (idx, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<String> = line.split_whitespace().map(String::from).collect();
        match iproute::parse_route_args(&words, Some(family), tables) {
            Outcome::Route(mut c) => {
                c.route.device.get_or_insert_with(|| dev.clone());
                file.routes.push((Place::Line(idx + 1), c.route));
            }
            Outcome::Problem(p) | Outcome::Refused(p) => file.problems.push((Place::Line(idx + 1), p)),
            Outcome::NotRoute => {}
        }
    }
    file
}

fn key_value(text: &str, dev: &IfName, tables: &Tables) -> FileRoutes {
    let mut groups: BTreeMap<u32, BTreeMap<&str, (usize, String)>> = BTreeMap::new();
    for (idx, line) in text.lines().enumerate() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let split = key.find(|c: char| c.is_ascii_digit()).unwrap_or(key.len());
        let (name, n) = key.split_at(split);
        let Ok(n) = n.parse::<u32>() else { continue };
        let value = value.trim().trim_matches(['"', '\'']).to_owned();
        groups.entry(n).or_default().insert(name, (idx + 1, value));
    }
    let mut file = FileRoutes::default();
    for (n, keys) in groups {
        let line = keys.values().map(|(l, _)| *l).min().unwrap_or(1);
        match group(&keys, tables) {
            Ok(mut r) => {
                r.device = Some(dev.clone());
                file.routes.push((Place::Line(line), r));
            }
            Err(e) => file
                .problems
                .push((Place::Line(line), format!("ADDRESS{n}: {e}"))),
        }
    }
    file
}

fn group(keys: &BTreeMap<&str, (usize, String)>, tables: &Tables) -> Result<RouteSpec, String> {
    let get = |k: &str| keys.get(k).map(|(_, v)| v.as_str());
    let addr = get("ADDRESS").ok_or("no ADDRESS")?;
    let plen = match get("NETMASK") {
        Some(mask) => prefix_len(mask)?,
        None => 32,
    };
    let mut r = RouteSpec::to(spec::destination(&format!("{addr}/{plen}"), Some(Family::Ipv4))?);
    r.gateway = get("GATEWAY").map(spec::gateway).transpose()?.flatten();
    r.metric = get("METRIC").map(spec::metric).transpose()?;
    let options: Vec<&str> = get("OPTIONS").unwrap_or("").split_whitespace().collect();
    if let Some(pos) = options.iter().position(|o| *o == "table") {
        let t = options.get(pos + 1).ok_or("OPTIONS table has no value")?;
        r.table = Some(tables.lookup(t)?);
    }
    r.check_families()?;
    Ok(r)
}

fn prefix_len(mask: &str) -> Result<u8, String> {
    let m: Ipv4Addr = mask.parse().map_err(|_| "NETMASK is not a netmask".to_owned())?;
    let bits = u32::from(m);
    if bits.leading_ones() + bits.trailing_zeros() != 32 {
        return Err("NETMASK is not contiguous".to_owned());
    }
    u8::try_from(bits.leading_ones()).map_err(|_| "bad netmask".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_syntax() {
        let text = "ADDRESS0=10.10.10.0\nNETMASK0=255.255.255.0\nGATEWAY0=192.168.0.1\nMETRIC0=10\n\
                    ADDRESS1=\"10.20.0.0\"\nNETMASK1=255.255.0.0\nGATEWAY1=192.168.0.1\nOPTIONS1=\"table 200\"\n\
                    ADDRESS2=10.30.0.0\nNETMASK2=255.0.255.0\n";
        let f = parse(text, Family::Ipv4, "eth0", &Tables::default());
        let got: Vec<_> = f
            .routes
            .iter()
            .map(|(l, r)| (l.to_string(), r.destination.to_string(), r.table, r.metric))
            .collect();
        assert_eq!(
            got,
            vec![
                (" line 1".into(), "10.10.10.0/24".into(), None, Some(10)),
                (" line 5".into(), "10.20.0.0/16".into(), Some(200), None)
            ]
        );
        assert_eq!(f.routes[0].1.device.as_ref().map(IfName::as_str), Some("eth0"));
        assert_eq!(f.problems.len(), 1);
    }

    #[test]
    fn line_syntax_v4_and_v6() {
        let f = parse(
            "# routes\n10.1.0.0/16 via 192.168.0.1 dev eth1\ndefault via 192.168.0.254 table 5\n",
            Family::Ipv4,
            "eth0",
            &Tables::default(),
        );
        assert_eq!(f.routes.len(), 2);
        assert_eq!(f.routes[0].1.device.as_ref().map(IfName::as_str), Some("eth1"));
        assert_eq!(f.routes[1].1.device.as_ref().map(IfName::as_str), Some("eth0"));
        assert_eq!(f.routes[1].0, Place::Line(3));
        let f = parse(
            "2001:db8:1::/64 via 2001:db8::1\n",
            Family::Ipv6,
            "eth0",
            &Tables::default(),
        );
        assert_eq!(f.routes[0].1.destination.to_string(), "2001:db8:1::/64");
    }

    #[test]
    fn classify_paths() {
        assert_eq!(
            classify("/etc/sysconfig/network-scripts/route-eth0"),
            Some((Family::Ipv4, "eth0"))
        );
        assert_eq!(
            classify("/etc/sysconfig/network-scripts/route6-eth0"),
            Some((Family::Ipv6, "eth0"))
        );
        assert_eq!(classify("/etc/sysconfig/network-scripts/ifcfg-eth0"), None);
    }
}
