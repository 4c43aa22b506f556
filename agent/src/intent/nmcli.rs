//! Intent stage, declaration form: `nmcli device modify DEV` and `nmcli connection
//! modify [--temporary] NAME` with `[+]ipv4.routes` / `[+]ipv6.routes` (several
//! routes comma separated, each `dest[/plen] [gateway] [metric] [attr=value...]`),
//! plus `ipvN.route-table` / `ipvN.route-metric` given in the same command.

#[cfg(test)]
use crate::model::RouteType;
use crate::model::{Family, IfName};

use super::spec::{self, RouteSpec, Tables};

/// What the command modifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `nmcli device modify DEV`: the active connection only; lost on re-activation.
    Device(IfName),
    /// `nmcli connection modify NAME`: the saved profile (id, uuid or path).
    Connection(String),
}

/// What a property does to the routes of its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `ipvN.routes LIST`: the routes become the list.
    Set,
    /// `+ipvN.routes LIST`: the list is added.
    Add,
    /// `-ipvN.routes LIST`: the routes of the list go.
    Remove,
}

/// One `[+|-]ipvN.routes` property of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The family of the property.
    pub family: Family,
    /// Set, add or remove.
    pub op: Op,
    /// Its routes, the command's `ipvN.route-table`/`route-metric` applied
    /// (not to removals).
    pub routes: Vec<RouteSpec>,
}

/// A `modify` command that declares routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modify {
    /// Device or connection.
    pub target: Target,
    /// `--temporary` (connection modify): not saved, like device modify.
    pub temporary: bool,
    /// The route properties, in order.
    pub changes: Vec<Change>,
    /// Per-route problems (one bad route does not hide the others).
    pub problems: Vec<String>,
}

impl Modify {
    /// Every route the command sets or adds.
    pub fn routes(&self) -> impl Iterator<Item = &RouteSpec> {
        self.changes
            .iter()
            .filter(|c| c.op != Op::Remove)
            .flat_map(|c| &c.routes)
    }
}

/// What a command means for the intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not a `modify` that touches routes.
    NotRoute,
    /// Routes declared.
    Modify(Modify),
    /// Route-related but unreadable.
    Problem(String),
}

const VALUE_OPTIONS: &[&str] = &[
    "-m",
    "--mode",
    "-c",
    "--colors",
    "-f",
    "--fields",
    "-g",
    "--get-values",
    "-e",
    "--escape",
    "-w",
    "--wait",
];

/// Read an nmcli command line (`words[0]` is the program).
pub fn parse_command(words: &[String], tables: &Tables) -> Outcome {
    let mut i = 1;
    while let Some(w) = words.get(i).filter(|w| w.starts_with('-')) {
        i += if VALUE_OPTIONS.contains(&w.as_str()) { 2 } else { 1 };
    }
    let (Some(object), Some(verb)) = (words.get(i), words.get(i + 1)) else {
        return Outcome::NotRoute;
    };
    if !"modify".starts_with(verb.as_str()) || verb.is_empty() {
        return Outcome::NotRoute;
    }
    let rest = &words[i + 2..];
    if is_prefix(object, "device") {
        device_modify(rest, tables)
    } else if is_prefix(object, "connection") {
        connection_modify(rest, tables)
    } else {
        Outcome::NotRoute
    }
}

fn is_prefix(word: &str, full: &str) -> bool {
    !word.is_empty() && full.starts_with(word)
}

fn device_modify(args: &[String], tables: &Tables) -> Outcome {
    let Some(dev) = args.first() else {
        return Outcome::NotRoute;
    };
    let target = match IfName::new(dev) {
        Ok(d) => Target::Device(d),
        Err(e) => return problem_if_routes(&args[1..], e.to_string()),
    };
    properties(target, false, &args[1..], tables)
}

fn connection_modify(args: &[String], tables: &Tables) -> Outcome {
    let Some((name, temporary, rest)) = connection_args(args) else {
        return Outcome::NotRoute;
    };
    properties(Target::Connection(name.clone()), temporary, rest, tables)
}

/// `[--temporary] [id|uuid|path|filename] NAME PAIRS...` -> (NAME, temporary, PAIRS).
fn connection_args(args: &[String]) -> Option<(&String, bool, &[String])> {
    let mut args = args;
    let mut temporary = false;
    while let Some(first) = args.first().filter(|a| a.starts_with("--")) {
        temporary |= first == "--temporary";
        args = &args[1..];
    }
    if args
        .first()
        .is_some_and(|a| matches!(a.as_str(), "id" | "uuid" | "path" | "filename"))
    {
        args = &args[1..];
    }
    let name = args.first()?;
    Some((name, temporary, &args[1..]))
}

fn problem_if_routes(props: &[String], why: String) -> Outcome {
    if props.iter().any(|p| p.contains(".route")) {
        Outcome::Problem(why)
    } else {
        Outcome::NotRoute
    }
}

/// The `[+|-]setting.property value` pairs.
fn properties(target: Target, temporary: bool, pairs: &[String], tables: &Tables) -> Outcome {
    let mut values: Vec<(Family, Op, &str)> = Vec::new();
    let mut defaults = [(Family::Ipv4, None, None), (Family::Ipv6, None, None)];
    let mut problems = Vec::new();
    for pair in pairs.chunks(2) {
        let (prop, value) = (pair[0].as_str(), pair.get(1).map(String::as_str));
        let Some((op, family, name)) = split_property(prop) else {
            continue;
        };
        let Some(value) = value else {
            problems.push("a property has no value".to_owned());
            continue;
        };
        let slot = &mut defaults[usize::from(family == Family::Ipv6)];
        match (op, name) {
            ('-', "routes") => values.push((family, Op::Remove, value)),
            ('+', "routes") => values.push((family, Op::Add, value)),
            (_, "routes") => values.push((family, Op::Set, value)),
            (_, "route-table") => match tables.lookup(value) {
                Ok(t) => slot.1 = Some(t),
                Err(e) => problems.push(e),
            },
            (_, "route-metric") => slot.2 = spec::metric(value).ok().filter(|_| value != "-1"),
            _ => {}
        }
    }
    if values.is_empty() && problems.is_empty() {
        return Outcome::NotRoute;
    }
    let mut changes = Vec::new();
    for (family, op, value) in values {
        let (_, table, metric) = defaults[usize::from(family == Family::Ipv6)];
        let mut routes = Vec::new();
        for (n, text) in value
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .enumerate()
        {
            match route(text, family, tables) {
                Ok(mut r) => {
                    if op != Op::Remove {
                        r.table = r.table.or(table);
                        r.metric = r.metric.or(metric);
                    }
                    routes.push(r);
                }
                Err(e) => problems.push(format!("route {} of {family}.routes: {e}", n + 1)),
            }
        }
        changes.push(Change { family, op, routes });
    }
    Outcome::Modify(Modify {
        target,
        temporary,
        changes,
        problems,
    })
}

/// `+ipv4.routes` -> ('+', Ipv4, "routes"); None for other settings.
fn split_property(prop: &str) -> Option<(char, Family, &str)> {
    let (op, rest) = match prop.chars().next() {
        Some(c @ ('+' | '-')) => (c, &prop[1..]),
        _ => (' ', prop),
    };
    let (setting, name) = rest.split_once('.')?;
    let family = match setting {
        "ipv4" => Family::Ipv4,
        "ipv6" => Family::Ipv6,
        _ => return None,
    };
    Some((op, family, name))
}

const ATTRIBUTES: &[&str] = &[
    "cwnd",
    "initcwnd",
    "initrwnd",
    "lock-cwnd",
    "lock-initcwnd",
    "lock-initrwnd",
    "lock-mtu",
    "lock-window",
    "mtu",
    "onlink",
    "scope",
    "src",
    "window",
    "rto_min",
    "quickack",
    "advmss",
    "weight",
];

/// One route: `dest[/plen] [next-hop] [metric] [attr=value...]`.
fn route(text: &str, family: Family, tables: &Tables) -> Result<RouteSpec, String> {
    let mut words = text.split_whitespace();
    let dest = words.next().ok_or("empty route")?;
    let mut r = RouteSpec::to(spec::destination(dest, Some(family))?);
    if Family::of_net(&r.destination) != family {
        return Err(format!(
            "the destination {} is not an {family} address",
            spec::shown(dest)
        ));
    }
    for word in words {
        match word.split_once('=') {
            Some(("table", t)) => r.table = Some(tables.lookup(t)?),
            Some(("type", t)) => r.kind = spec::nm_route_type(t)?,
            Some(("tos", t)) => r.tos = spec::nm_tos(t)?,
            Some(("from", f)) => r.source_prefix = Some(spec::nm_source_prefix(f, family)?),
            Some((attr, _)) if ATTRIBUTES.contains(&attr) => {}
            Some((attr, _)) => {
                return Err(format!(
                    "{} is a route attribute NetworkManager does not know",
                    spec::shown(attr)
                ))
            }
            None if r.gateway.is_none() && r.metric.is_none() && word.parse::<std::net::IpAddr>().is_ok() => {
                r.gateway = spec::gateway(word)?;
            }
            None if r.metric.is_none() => r.metric = Some(spec::metric(word)?),
            None => {
                return Err(format!(
                    "{} is a word that is not a gateway, a metric or an attribute",
                    spec::shown(word)
                ))
            }
        }
    }
    r.check_families()?;
    Ok(r)
}

/// The target of an `nmcli device|connection modify` command and its
/// `property value` pairs; None for any other command. The target is an error
/// when a device name is not valid. Used by [`super::nmcli_rules`].
pub(super) fn modify_target(words: &[String]) -> Option<(Result<Target, String>, bool, &[String])> {
    let mut i = 1;
    while let Some(w) = words.get(i).filter(|w| w.starts_with('-')) {
        i += if VALUE_OPTIONS.contains(&w.as_str()) { 2 } else { 1 };
    }
    let (object, verb) = (words.get(i)?, words.get(i + 1)?);
    if verb.is_empty() || !"modify".starts_with(verb.as_str()) {
        return None;
    }
    let args = &words[i + 2..];
    if is_prefix(object, "device") {
        let dev = args.first()?;
        return Some((
            IfName::new(dev).map(Target::Device).map_err(|e| e.to_string()),
            false,
            &args[1..],
        ));
    }
    if !is_prefix(object, "connection") {
        return None;
    }
    let (name, temporary, rest) = connection_args(args)?;
    Some((Ok(Target::Connection(name.clone())), temporary, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Outcome {
        let words = shell_words::split(line).expect("test line splits");
        parse_command(&words, &Tables::default())
    }

    fn modify(line: &str) -> Modify {
        match parse(line) {
            Outcome::Modify(m) => m,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn seed_command() {
        let m = modify(r#"nmcli dev modify ens5 +ipv4.routes "192.168.1.0/24 172.18.0.1""#);
        assert_eq!(m.target, Target::Device(IfName::new("ens5").expect("name")));
        let routes: Vec<&RouteSpec> = m.routes().collect();
        assert_eq!(routes.len(), 1);
        assert_eq!(m.changes[0].op, Op::Add);
        assert_eq!(routes[0].destination.to_string(), "192.168.1.0/24");
        assert_eq!(
            routes[0].gateway.map(|g| g.to_string()),
            Some("172.18.0.1".into())
        );
        assert_eq!((routes[0].table, routes[0].metric), (None, None));
        assert!(!m.temporary && m.problems.is_empty());
    }

    #[test]
    fn connection_several_routes_table_metric() {
        let m = modify(
            r#"nmcli -w 10 con mod --temporary "Wired 1" ipv4.routes "10.0.0.0/8 10.1.1.1 100 table=200, 10.2.0.0/16" ipv4.route-table 300 ipv6.routes "fd00::/64 fd00::1""#,
        );
        assert_eq!(m.target, Target::Connection("Wired 1".into()));
        assert!(m.temporary);
        let got: Vec<_> = m
            .routes()
            .map(|r| (r.destination.to_string(), r.table, r.metric))
            .collect();
        assert_eq!(
            got,
            vec![
                ("10.0.0.0/8".into(), Some(200), Some(100)),
                ("10.2.0.0/16".into(), Some(300), None),
                ("fd00::/64".into(), None, None)
            ]
        );
    }

    #[test]
    fn metric_without_gateway_and_host_route() {
        let m = modify("nmcli device modify eth0 +ipv4.routes '10.3.0.0/16 50, 10.4.0.1'");
        let routes: Vec<&RouteSpec> = m.routes().collect();
        assert_eq!((routes[0].gateway, routes[0].metric), (None, Some(50)));
        assert_eq!(routes[1].destination.to_string(), "10.4.0.1/32");
    }

    #[test]
    fn problems_keep_good_routes() {
        let m = modify("nmcli d m eth0 +ipv4.routes '10.0.0.0/33, 10.5.0.0/16 1.2.3.4 table=vpn, 10.6.0.0/16 type=blackhole, 10.7.0.0/16 type=bogus, 10.8.0.0/16'");
        assert_eq!(m.routes().count(), 2);
        assert_eq!(m.problems.len(), 3);
        let m = modify("nmcli d m eth0 +ipv4.routes 'fd00::/64'");
        assert_eq!(m.problems.len(), 1);
    }

    #[test]
    fn typed_routes_tos_and_source_prefixes() {
        let m = modify("nmcli c mod x ipv4.routes '10.6.0.0/16 type=blackhole, 10.7.0.0/16 1.2.3.4 tos=0x10' ipv6.routes 'fd00::/64 fd00::1 from=fd09::/64'");
        let got: Vec<_> = m
            .routes()
            .map(|r| (r.kind, r.tos, r.source_prefix.map(|p| p.to_string())))
            .collect();
        assert_eq!(
            got,
            vec![
                (RouteType::Blackhole, 0, None),
                (RouteType::Unicast, 0x10, None),
                (RouteType::Unicast, 0, Some("fd09::/64".into()))
            ]
        );
        assert!(matches!(
            parse("nmcli c mod x ipv4.routes '10.7.0.0/16 from=10.9.0.0/16'"),
            Outcome::Modify(m) if m.problems.len() == 1
        ));
    }

    #[test]
    fn set_add_and_remove() {
        let m = modify("nmcli c mod x ipv4.routes '' +ipv4.routes 10.1.0.0/16 -ipv6.routes fd00::/64 ipv4.route-metric 5");
        let ops: Vec<_> = m
            .changes
            .iter()
            .map(|c| (c.family, c.op, c.routes.len()))
            .collect();
        assert_eq!(
            ops,
            vec![
                (Family::Ipv4, Op::Set, 0),
                (Family::Ipv4, Op::Add, 1),
                (Family::Ipv6, Op::Remove, 1)
            ]
        );
        assert_eq!(m.changes[1].routes[0].metric, Some(5));
        assert_eq!(m.changes[2].routes[0].metric, None, "removals match as written");
    }

    #[test]
    fn not_routes() {
        assert_eq!(parse("nmcli con up ens5"), Outcome::NotRoute);
        assert_eq!(parse("nmcli dev modify ens5 ipv4.dns 1.1.1.1"), Outcome::NotRoute);
        assert_eq!(parse("nmcli general status"), Outcome::NotRoute);
    }
}
