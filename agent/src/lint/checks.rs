//! `lint`: the ten rules over one pool's declarations. Each check is pure and
//! returns what it found with an [`Anchor`]; `docs/lint/RWnnn.md` says why each
//! matters and how to fix it.

use std::collections::BTreeMap;

use crate::intent::declarations::Declarations;
use crate::intent::document::Config;
use crate::intent::keyfile;
use crate::intent::nmstate::{self, Applies};
use crate::intent::units::UnitDef;
use crate::intent::{self, Options};
use crate::model::{
    Concern, ExpectedRoute, Family, Manager, RuleAction, Source, SourceKind, TABLE_DEFAULT, TABLE_LOCAL,
    TABLE_MAIN,
};
use crate::publish::text::table_name;

use super::locate::Anchor;

/// One pool and what lint needs to judge it.
pub struct Pool<'a> {
    /// `worker`, `master`... (None: configs without a role, or states only).
    pub name: Option<String>,
    /// The merged declarations.
    pub decl: &'a Declarations,
    /// The pool's configs, in input order (the writers index them).
    pub configs: &'a [Config],
    /// Node name and labels.
    pub options: &'a Options,
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Rule ID.
    pub rule: &'static str,
    /// Where.
    pub anchor: Anchor,
    /// What and how to fix it.
    pub message: String,
}

fn found(rule: &'static str, anchor: Anchor, message: String) -> Found {
    Found {
        rule,
        anchor,
        message,
    }
}

const KEYFILE_DIRS: [&str; 3] = [
    "/etc/NetworkManager/system-connections/",
    "/run/NetworkManager/system-connections/",
    "/usr/lib/NetworkManager/system-connections/",
];

/// Every rule over the pool.
pub fn check(pool: &Pool) -> Vec<Found> {
    let mut out = Vec::new();
    out.extend(rw001_non_persistent(pool));
    out.extend(rw002_ordering(pool));
    out.extend(rw003_keyfile_mode(pool));
    out.extend(rw004_nmstate_names(pool));
    out.extend(rw005_not_literal(pool));
    out.extend(rw006_conflicts(pool));
    out.extend(rw006_replaced(pool));
    out.extend(rw007_unselected_tables(pool));
    out.extend(rw008_gateways(pool));
    out.extend(rw009_never_started(pool));
    out.extend(rw010_br_ex(pool));
    out
}

/// `route DEST via GW table T`, the table named as `check` and `ip route` name
/// it (`main`, `local`, `default`, else its number).
fn route_text(r: &ExpectedRoute) -> String {
    let via = r.gateway.map(|g| format!(" via {g}")).unwrap_or_default();
    format!("route {}{via} table {}", r.destination, table_name(r.table))
}

/// Every route and rule with its words and source.
fn declared<'a>(pool: &Pool<'a>) -> Vec<(String, &'a Source, &'a crate::model::Traits)> {
    let intent = &pool.decl.intent;
    let routes = intent
        .routes
        .iter()
        .map(|r| (route_text(r), &r.source, &r.traits));
    let rules = intent.rules.iter().map(|r| {
        let prio = r.priority.map(|p| format!(" priority {p}")).unwrap_or_default();
        (
            format!("rule{prio} {} {}", r.selector, r.action),
            &r.source,
            &r.traits,
        )
    });
    routes.chain(rules).collect()
}

fn rw001_non_persistent(pool: &Pool) -> Vec<Found> {
    declared(pool)
        .into_iter()
        .filter(|(_, s, t)| s.kind == SourceKind::Nmcli && t.non_persistent)
        .map(|(what, s, _)| {
            found(
                "RW001",
                Anchor::Origin(s.origin.clone()),
                format!("{what} is declared with `nmcli device modify` (or `--temporary`): it changes only the active connection and is lost when the device is re-activated; use `nmcli connection modify`, a keyfile or an NNCP"),
            )
        })
        .collect()
}

/// Units whose routes or rules go through NetworkManager (or nmstate).
fn nm_units<'a>(pool: &Pool<'a>) -> Vec<&'a UnitDef> {
    let through_nm = |s: &Source, t: &crate::model::Traits| t.manager != Manager::None && s.unit.is_some();
    let names: Vec<String> = declared(pool)
        .into_iter()
        .filter(|(_, s, t)| through_nm(s, t))
        .filter_map(|(_, s, _)| s.unit.as_ref().map(|u| u.to_string()))
        .collect();
    pool.decl
        .units
        .iter()
        .filter(|u| names.iter().any(|n| n == u.name.as_str()))
        .collect()
}

fn rw002_ordering(pool: &Pool) -> Vec<Found> {
    const ONLINE: &str = "network-online.target";
    let mut out = Vec::new();
    for u in nm_units(pool) {
        let d = &u.deps;
        let after_nm =
            d.is_after("NetworkManager.service") || d.is_after("NetworkManager-wait-online.service");
        let message = if !after_nm && !d.is_after(ONLINE) {
            format!("unit {} declares routes through NetworkManager but is not ordered after it: add `After=NetworkManager-wait-online.service` (or `Wants=` and `After=network-online.target`)", u.name)
        } else if d.is_after(ONLINE) && !d.pulls(ONLINE) {
            format!("unit {} orders itself `After=network-online.target` without `Wants=network-online.target`: the ordering holds only if another unit pulls the target in, else it races NetworkManager; add `Wants=network-online.target`", u.name)
        } else {
            continue;
        };
        out.push(found("RW002", Anchor::Unit(u.name.to_string()), message));
    }
    out
}

fn rw003_keyfile_mode(pool: &Pool) -> Vec<Found> {
    pool.decl
        .files
        .iter()
        .filter(|f| KEYFILE_DIRS.iter().any(|d| f.path.starts_with(d)) && !keyfile::ignored_name(&f.path))
        .filter(|f| f.mode & 0o077 != 0)
        .map(|f| {
            let given = if f.mode_given { "" } else { " (Ignition's default when `mode` is absent)" };
            found(
                "RW003",
                Anchor::File(f.path.clone()),
                format!("keyfile {} has mode {:04o}{given}: NetworkManager ignores keyfiles that group or others can read or write, so its connection and routes never exist; set `mode: 0600` (384)", f.path, f.mode),
            )
        })
        .collect()
}

fn rw004_nmstate_names(pool: &Pool) -> Vec<Found> {
    pool.decl
        .files
        .iter()
        .filter_map(|f| match nmstate::applies(&f.path, None) {
            Applies::No(Some(why)) => Some(found(
                "RW004",
                Anchor::File(f.path.clone()),
                format!("{}: {why}", f.path),
            )),
            _ => None,
        })
        .collect()
}

fn rw005_not_literal(pool: &Pool) -> Vec<Found> {
    pool.decl
        .intent
        .diagnostics
        .iter()
        .filter(|d| d.concern == Concern::NotLiteral)
        .map(|d| {
            found(
                "RW005",
                Anchor::Origin(d.origin.clone()),
                format!(
                    "{}: {}; write the value literally, or declare it in a keyfile or NNCP",
                    d.origin, d.message
                ),
            )
        })
        .collect()
}

fn rw006_conflicts(pool: &Pool) -> Vec<Found> {
    let mut out = Vec::new();
    let mut seen: BTreeMap<(Family, u32, String), &ExpectedRoute> = BTreeMap::new();
    for r in &pool.decl.intent.routes {
        let key = (r.family, r.table, r.destination.to_string());
        match seen.get(&key) {
            Some(first) if (first.gateway, first.metric) != (r.gateway, r.metric) => out.push(found(
                "RW006",
                Anchor::Origin(r.source.origin.clone()),
                format!("{} is also declared by {} with another gateway or metric: only one of them ends up in the kernel; keep one declaration", route_text(r), first.source.origin),
            )),
            Some(_) => {}
            None => {
                seen.insert(key, r);
            }
        }
    }
    for d in pool
        .decl
        .intent
        .diagnostics
        .iter()
        .filter(|d| d.concern == Concern::Redeclared)
    {
        out.push(found(
            "RW006",
            Anchor::Origin(d.origin.clone()),
            format!("{}: {}; keep one declaration", d.origin, d.message),
        ));
    }
    out
}

/// A later MachineConfig replacing a unit or file whose earlier version
/// declared routes or rules.
fn rw006_replaced(pool: &Pool) -> Vec<Found> {
    let mut out = Vec::new();
    for (key, writers) in &pool.decl.writers {
        let with_contents: Vec<(usize, _)> = writers.iter().enumerate().filter(|(_, w)| w.contents).collect();
        let (Some(&(last_n, last)), true) = (with_contents.last(), with_contents.len() > 1) else {
            continue;
        };
        for &(_, earlier) in &with_contents[..with_contents.len() - 1] {
            let Some(config) = pool.configs.get(earlier.config) else {
                continue;
            };
            if !earlier_declares(config, key, pool.options) {
                continue;
            }
            let name = |c: Option<&Config>| {
                c.and_then(|c| c.name.clone())
                    .unwrap_or_else(|| "(unnamed)".into())
            };
            let msg = format!(
                "MachineConfig {} replaces {key} of MachineConfig {}, which declared routes or rules there: they are gone from the rendered config; change the earlier MachineConfig instead, or declare the routes in the later one",
                name(pool.configs.get(last.config)),
                name(Some(config)),
            );
            out.push(found("RW006", Anchor::Writer(key.clone(), last_n), msg));
            break;
        }
    }
    out
}

/// Whether `config` alone declares routes or rules in the unit or file `key`.
fn earlier_declares(config: &Config, key: &str, options: &Options) -> bool {
    let intent = intent::from_documents(vec![config.clone()], Vec::new(), options);
    let hits = |s: &Source| match key.strip_prefix("unit ") {
        Some(unit) if !unit.contains(" drop-in ") => s.unit.as_ref().is_some_and(|u| u.as_str() == unit),
        Some(_) => false,
        None => key
            .strip_prefix("file ")
            .is_some_and(|p| s.origin.starts_with(&format!("file {p}"))),
    };
    intent.routes.iter().any(|r| hits(&r.source)) || intent.rules.iter().any(|r| hits(&r.source))
}

fn rw007_unselected_tables(pool: &Pool) -> Vec<Found> {
    let intent = &pool.decl.intent;
    let selected = |family: Family, table: u32| {
        matches!(table, TABLE_MAIN | TABLE_LOCAL)
            || (family == Family::Ipv4 && table == TABLE_DEFAULT)
            || intent
                .rules
                .iter()
                .any(|r| r.family == family && r.action == RuleAction::Table(table))
    };
    intent
        .routes
        .iter()
        .filter(|r| !selected(r.family, r.table))
        .map(|r| {
            found(
                "RW007",
                Anchor::Origin(r.source.origin.clone()),
                format!("{}: no declared {} rule looks that table up, so the route carries no traffic; declare a routing rule (`routing-ruleN=`, NNCP `route-rules`, `ip rule add ... table {}`)", route_text(r), r.family, table_name(r.table)),
            )
        })
        .collect()
}

fn rw008_gateways(pool: &Pool) -> Vec<Found> {
    let decl = pool.decl;
    let mut out = Vec::new();
    for r in &decl.intent.routes {
        let (Some(gw), Some(dev)) = (r.gateway, r.device.as_ref()) else {
            continue;
        };
        let link_local = matches!(gw, std::net::IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80);
        let nets: Vec<_> = decl
            .addresses
            .iter()
            .filter(|a| &a.device == dev && Family::of_net(&a.net) == r.family)
            .collect();
        if link_local || nets.is_empty() || nets.iter().any(|a| a.net.contains(&gw)) {
            continue;
        }
        let list: Vec<String> = nets.iter().map(|a| a.net.to_string()).collect();
        out.push(found(
            "RW008",
            Anchor::Origin(r.source.origin.clone()),
            format!("{}: gateway {gw} is on no subnet declared for {dev} ({}): the kernel refuses the route (Nexthop has invalid gateway) unless it is onlink; fix the gateway or the address", route_text(r), list.join(", ")),
        ));
    }
    out
}

fn rw009_never_started(pool: &Pool) -> Vec<Found> {
    let decl = pool.decl;
    let declaring: Vec<String> = declared(pool)
        .into_iter()
        .filter_map(|(_, s, _)| s.unit.as_ref().map(|u| u.to_string()))
        .chain(decl.masked_declaring.iter().cloned())
        .collect();
    let mut out = Vec::new();
    for u in decl
        .units
        .iter()
        .filter(|u| declaring.iter().any(|n| n == u.name.as_str()))
    {
        let wanted = decl
            .units
            .iter()
            .any(|o| o.name != u.name && o.deps.pulls(u.name.as_str()));
        let installs = !u.deps.wanted_by.is_empty() || !u.deps.required_by.is_empty();
        let why = if u.masked {
            "is masked"
        } else if wanted {
            continue;
        } else if u.enabled == Some(false) {
            "has `enabled: false` and no other unit wants it"
        } else if u.enabled != Some(true) {
            "is not enabled by the MachineConfig (`enabled: true`) and no other unit wants it"
        } else if !installs {
            "has no [Install] section (WantedBy=) and no other unit wants it: enabling it does nothing"
        } else {
            continue;
        };
        out.push(found(
            "RW009",
            Anchor::Unit(u.name.to_string()),
            format!("unit {} declares routes but {why}: it never starts; set `enabled: true` with `[Install] WantedBy=multi-user.target`", u.name),
        ));
    }
    out
}

fn rw010_br_ex(pool: &Pool) -> Vec<Found> {
    pool.decl
        .intent
        .routes
        .iter()
        .filter(|r| r.source.kind == SourceKind::Nncp && r.device.as_ref().is_some_and(|d| d.as_str() == "br-ex"))
        .map(|r| {
            found(
                "RW010",
                Anchor::Origin(r.source.origin.clone()),
                format!("{} has next-hop-interface br-ex: OpenShift does not support NNCP routes on br-ex (OVN-Kubernetes owns it); use a MachineConfig-delivered nmstate file or another interface", route_text(r)),
            )
        })
        .collect()
}
