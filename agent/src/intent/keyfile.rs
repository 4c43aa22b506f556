//! Intent stage, declaration form: NetworkManager keyfiles
//! (`/etc/NetworkManager/system-connections/*.nmconnection`): `[ipv4]`/`[ipv6]`
//! `routeN=dest/plen[,gateway[,metric]]`, `routeN_options=table=N,...`, the
//! section's `route-table=` and `route-metric=`, the device from `[connection]
//! interface-name=`; policy-routing rules from `routing-ruleN=` (NetworkManager's
//! rule syntax, read by [`super::rules`]).

use std::collections::HashMap;

use crate::model::{Family, IfName};

use super::ini::{self, Flavour};
use super::rules::{self, Dialect, RuleSpec};
use super::spec::{self, RouteSpec, Tables};

/// What a keyfile says about routes and which connection it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Keyfile {
    /// `[connection] id=`.
    pub id: Option<String>,
    /// `[connection] uuid=`.
    pub uuid: Option<String>,
    /// `[connection] interface-name=`.
    pub interface_name: Option<IfName>,
    /// `[connection] autoconnect=false`.
    pub autoconnect_off: bool,
    /// Defaults of each family: (`route-table`, `route-metric`), index 0 = IPv4.
    pub defaults: [(Option<u32>, Option<u32>); 2],
    /// Routes with the line that declares each.
    pub routes: Vec<(usize, RouteSpec)>,
    /// Routing rules with the line that declares each.
    pub rules: Vec<(usize, RuleSpec)>,
    /// Problems with the line each is on.
    pub problems: Vec<(usize, String)>,
}

/// Parse a keyfile.
pub fn parse(text: &str, tables: &Tables) -> Keyfile {
    let entries = ini::entries(text, Flavour::Keyfile);
    let mut kf = Keyfile::default();
    let mut options: HashMap<(Family, String), (usize, String)> = HashMap::new();
    let mut raw_routes = Vec::new();
    for e in &entries {
        let family = match e.section.as_str() {
            "connection" => {
                connection_key(&mut kf, e);
                continue;
            }
            "ipv4" => Family::Ipv4,
            "ipv6" => Family::Ipv6,
            _ => continue,
        };
        let slot = usize::from(family == Family::Ipv6);
        match e.key.as_str() {
            "route-table" => match tables.lookup(&e.value) {
                Ok(t) => kf.defaults[slot].0 = Some(t),
                Err(msg) => kf.problems.push((e.line, msg)),
            },
            "route-metric" => kf.defaults[slot].1 = spec::metric(&e.value).ok(),
            key if is_rule_key(key) => rule(&mut kf, e, family),
            key => match route_key(key) {
                Some((name, true)) => {
                    options.insert((family, name.to_owned()), (e.line, e.value.clone()));
                }
                Some((name, false)) => raw_routes.push((family, name, e)),
                None => {}
            },
        }
    }
    for (family, name, e) in raw_routes {
        let opts = options.get(&(family, name.to_owned())).map(|(_, v)| v.as_str());
        let (table, metric) = kf.defaults[usize::from(family == Family::Ipv6)];
        match route(&e.value, opts, family, tables) {
            Ok(mut r) => {
                r.table = r.table.or(table);
                r.metric = r.metric.or(metric);
                r.device = kf.interface_name.clone();
                kf.routes.push((e.line, r));
            }
            Err(msg) => kf.problems.push((e.line, format!("{}: {msg}", e.key))),
        }
    }
    kf
}

fn connection_key(kf: &mut Keyfile, e: &ini::Entry) {
    match e.key.as_str() {
        "id" => kf.id = Some(e.value.clone()),
        "uuid" => kf.uuid = Some(e.value.clone()),
        "interface-name" => match IfName::new(&e.value) {
            Ok(n) => kf.interface_name = Some(n),
            Err(err) => kf.problems.push((e.line, err.to_string())),
        },
        "autoconnect" => kf.autoconnect_off = matches!(e.value.as_str(), "false" | "no" | "0"),
        _ => {}
    }
}

/// `routing-rule1`, `routing-rule12`.
fn is_rule_key(key: &str) -> bool {
    key.strip_prefix("routing-rule")
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// One `routing-ruleN=` line: NetworkManager's syntax, the section's family.
fn rule(kf: &mut Keyfile, e: &ini::Entry, family: Family) {
    let words: Vec<&str> = e.value.split_whitespace().collect();
    match rules::parse(&words, Some(family), Dialect::NetworkManager, &Tables::default()) {
        Ok(r) => kf.rules.push((e.line, r)),
        Err(msg) => kf.problems.push((e.line, format!("{}: {msg}", e.key))),
    }
}

/// `route3` -> ("route3", false); `route3_options` -> ("route3", true); `routes1` too.
fn route_key(key: &str) -> Option<(&str, bool)> {
    let (name, is_options) = match key.strip_suffix("_options") {
        Some(n) => (n, true),
        None => (key, false),
    };
    let digits = name
        .strip_prefix("routes")
        .or_else(|| name.strip_prefix("route"))?;
    digits
        .chars()
        .all(|c| c.is_ascii_digit())
        .then_some((name, is_options))
}

/// `dest/plen[,gateway[,metric]]` (NetworkManager also reads `;` separators).
fn route(value: &str, options: Option<&str>, family: Family, tables: &Tables) -> Result<RouteSpec, String> {
    let mut parts = value.split([',', ';']).map(str::trim);
    let dest = parts.next().unwrap_or("");
    let mut r = RouteSpec::to(spec::destination(dest, Some(family))?);
    if Family::of_net(&r.destination) != family {
        return Err(format!(
            "the destination {} is not an {family} address",
            spec::shown(dest)
        ));
    }
    if let Some(gw) = parts.next() {
        r.gateway = spec::gateway(gw)?;
    }
    if let Some(m) = parts.next().filter(|m| !m.is_empty()) {
        r.metric = Some(spec::metric(m)?);
    }
    for opt in options.unwrap_or("").split(',').filter(|o| !o.trim().is_empty()) {
        match opt.trim().split_once('=') {
            Some(("table", t)) => r.table = Some(tables.lookup(t)?),
            Some(("type", t)) if t != "unicast" => {
                return Err(format!(
                    "type {} is not a unicast route; not checked",
                    spec::shown(t)
                ))
            }
            _ => {}
        }
    }
    r.check_families()?;
    Ok(r)
}

/// Files NetworkManager's keyfile plugin skips (hidden, editor and package backups).
pub fn ignored_name(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    const SUFFIXES: [&str; 8] = [
        "~", ".swp", ".bak", ".orig", ".rej", ".rpmnew", ".rpmsave", ".nmmeta",
    ];
    name.is_empty()
        || name.starts_with('.')
        || name.contains(".dpkg-")
        || SUFFIXES.iter().any(|s| name.ends_with(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[connection]\nid=ens5\nuuid=1234\ntype=ethernet\ninterface-name=ens5\n\n\
        [ipv4]\nmethod=manual\naddress1=172.18.0.2/16\nroute1=10.0.0.0/8,172.18.0.1,100\n\
        route2=10.2.0.0/16,172.18.0.1\nroute2_options=table=200,onlink=true\nroute-table=300\n\
        route3=10.3.0.0/33\n\n[ipv6]\nmethod=manual\nroute1=fd00::/64,::\nroute-metric=512\n";

    #[test]
    fn routes_with_defaults_and_options() {
        let kf = parse(TEXT, &Tables::default());
        assert_eq!(kf.id.as_deref(), Some("ens5"));
        assert_eq!(kf.interface_name.as_ref().map(IfName::as_str), Some("ens5"));
        let got: Vec<_> = kf
            .routes
            .iter()
            .map(|(l, r)| {
                (
                    *l,
                    r.destination.to_string(),
                    r.gateway.is_some(),
                    r.table,
                    r.metric,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (10, "10.0.0.0/8".into(), true, Some(300), Some(100)),
                (11, "10.2.0.0/16".into(), true, Some(200), None),
                (18, "fd00::/64".into(), false, None, Some(512)),
            ]
        );
        assert_eq!(kf.problems.len(), 1);
        assert_eq!(kf.problems[0].0, 14);
    }

    #[test]
    fn routing_rules() {
        let text = "[ipv4]\nrouting-rule1=priority 5 from 10.0.0.0/24 table 200\nrouting-rule2=from 10.1.0.0/24 table 200\n\
            routing-rule3=priority 7 fwmark 0x30/0x10 type blackhole\n[ipv6]\nrouting-rule1=priority 9 to fd00::/64 table 300\n\
            routing-rule2=priority 9 to 10.0.0.0/8 table 300\nrouting-rules=x\n";
        let kf = parse(text, &Tables::default());
        let got: Vec<_> = kf
            .rules
            .iter()
            .map(|(l, r)| format!("{l} {} {:?} {} {}", r.family, r.priority, r.selector, r.action))
            .collect();
        assert_eq!(
            got,
            [
                "2 ipv4 Some(5) from 10.0.0.0/24 table 200",
                "4 ipv4 Some(7) fwmark 0x30/0x10 blackhole",
                "6 ipv6 Some(9) to fd00::/64 table 300"
            ]
        );
        let problems: Vec<_> = kf.problems.iter().map(|(l, _)| *l).collect();
        assert_eq!(problems, [3, 7]);
        assert!(kf.problems[0].1.starts_with("routing-rule2: "));
    }

    #[test]
    fn keys() {
        assert_eq!(route_key("route1"), Some(("route1", false)));
        assert_eq!(route_key("routes2_options"), Some(("routes2", true)));
        assert_eq!(route_key("route"), Some(("route", false)));
        assert_eq!(route_key("route-table"), None);
        assert_eq!(route_key("route1x"), None);
    }
}
