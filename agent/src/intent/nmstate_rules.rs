//! Intent stage, declaration form: nmstate `route-rules.config[]` (ip-from, ip-to,
//! priority, route-table, fwmark, fwmask, iif, action, suppress-prefix-length,
//! family; `state: absent` entries remove rules and are not expected), in nmstate
//! files and in NodeNetworkConfigurationPolicies' `desiredState`.

use serde::Deserialize;

use crate::model::{Family, IfName, RuleAction, RuleSelector, FWMASK_ALL, TABLE_MAIN};

use super::rules::{FileRules, RuleSpec};
use super::spec::{self, Place};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct State {
    #[serde(rename = "route-rules")]
    route_rules: Option<RouteRules>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RouteRules {
    config: Option<Vec<Rule>>,
}

/// A number nmstate takes as an integer or as text (`0x10`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Number {
    Int(i64),
    Text(String),
}

impl Number {
    fn get(&self) -> Option<u32> {
        match self {
            Number::Int(n) => u32::try_from(*n).ok(),
            Number::Text(t) => match t.strip_prefix("0x") {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => t.parse().ok(),
            },
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct Rule {
    ip_from: Option<String>,
    ip_to: Option<String>,
    priority: Option<i64>,
    route_table: Option<Number>,
    fwmark: Option<Number>,
    fwmask: Option<Number>,
    iif: Option<String>,
    action: Option<String>,
    #[serde(alias = "suppress_prefixlength")]
    suppress_prefix_length: Option<i64>,
    family: Option<String>,
    state: Option<String>,
}

/// The rules an nmstate document declares, each with its place, and the
/// problems found. A document that is not valid YAML gives no rules and no
/// problem here: the routes' reading reports it once.
pub fn parse(text: &str) -> FileRules {
    let mut out = FileRules::default();
    let Ok(state) = serde_norway::from_str::<State>(text) else {
        return out;
    };
    let config = state.route_rules.and_then(|r| r.config).unwrap_or_default();
    for (i, r) in config.iter().enumerate() {
        let place = Place::Path(format!("route-rules.config[{i}]"));
        match rule(r) {
            Ok(Some(spec)) => out.rules.push((place, spec)),
            Ok(None) => {}
            Err(e) => out.problems.push((place, e)),
        }
    }
    out
}

fn rule(r: &Rule) -> Result<Option<RuleSpec>, String> {
    if r.state.as_deref() == Some("absent") {
        return Ok(None);
    }
    let family = match r.family.as_deref() {
        None => None,
        Some("ipv4") => Some(Family::Ipv4),
        Some("ipv6") => Some(Family::Ipv6),
        Some(_) => return Err("family is neither ipv4 nor ipv6".to_owned()),
    };
    let net = |t: &Option<String>, what: &str| {
        t.as_deref()
            .map(|t| {
                spec::destination(t, family)
                    .map_err(|_| format!("{what} {} is not an address or prefix", spec::shown(t)))
            })
            .transpose()
    };
    let (from, to) = (net(&r.ip_from, "ip-from")?, net(&r.ip_to, "ip-to")?);
    let found = from.iter().chain(to.iter()).map(Family::of_net).next();
    let family = family.or(found).unwrap_or(Family::Ipv4);
    if from.iter().chain(to.iter()).any(|n| Family::of_net(n) != family) {
        return Err(format!("an address is not of the rule's family ({family})"));
    }
    let selector = RuleSelector {
        from,
        to,
        iif: r
            .iif
            .as_deref()
            .map(IfName::new)
            .transpose()
            .map_err(|e| e.to_string())?,
        fwmark: fwmark(r)?,
        suppress_prefixlength: optional_u32(r.suppress_prefix_length, "suppress-prefix-length")?,
        ..RuleSelector::default()
    };
    Ok(Some(RuleSpec {
        family,
        priority: optional_u32(r.priority.filter(|p| *p >= 0), "priority")?,
        selector,
        action: action(r)?,
        notes: Vec::new(),
    }))
}

fn optional_u32(n: Option<i64>, what: &str) -> Result<Option<u32>, String> {
    n.map(|n| u32::try_from(n).map_err(|_| format!("{what} is out of range")))
        .transpose()
}

fn fwmark(r: &Rule) -> Result<Option<(u32, u32)>, String> {
    let get = |n: &Option<Number>, what: &str| {
        n.as_ref()
            .map(|n| {
                n.get()
                    .ok_or_else(|| format!("{what} is not a number from 0 to 4294967295"))
            })
            .transpose()
    };
    match (get(&r.fwmark, "fwmark")?, get(&r.fwmask, "fwmask")?) {
        (Some(mark), mask) => Ok(Some((mark, mask.unwrap_or(FWMASK_ALL)))),
        (None, Some(_)) => Err("fwmask without fwmark".to_owned()),
        (None, None) => Ok(None),
    }
}

fn action(r: &Rule) -> Result<RuleAction, String> {
    let table = match &r.route_table {
        None => None,
        Some(n) => Some(n.get().ok_or("route-table is not a number")?),
    };
    match (r.action.as_deref(), table) {
        (None, t) => Ok(RuleAction::Table(t.filter(|t| *t != 0).unwrap_or(TABLE_MAIN))),
        (Some(_), Some(_)) => Err("an action other than a table lookup takes no route-table".to_owned()),
        (Some("blackhole"), None) => Ok(RuleAction::Blackhole),
        (Some("unreachable"), None) => Ok(RuleAction::Unreachable),
        (Some("prohibit"), None) => Ok(RuleAction::Prohibit),
        (Some(_), None) => Err("action is not blackhole, unreachable or prohibit".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_rules_config() {
        let text = "route-rules:\n  config:\n  - ip-from: 192.0.2.0/24\n    priority: 1000\n    route-table: 50\n  - ip-to: 2001:db8::/64\n    fwmark: 0x30\n    fwmask: \"0x10\"\n    iif: eth1\n    route-table: 60\n  - ip-from: 198.51.100.0/24\n    state: absent\n  - family: ipv6\n    action: blackhole\n    priority: 5\n  - suppress-prefix-length: 0\n    route-table: 254\n    priority: 6\n  - ip-from: 10.0.0.0/33\n  - ip-from: 10.0.0.0/8\n    family: ipv6\n  - action: drop\n  - fwmask: 1\n";
        let FileRules { rules, problems } = parse(text);
        let got: Vec<_> = rules
            .iter()
            .map(|(p, r)| {
                format!(
                    "{p}: {} {:?} {} => {}",
                    r.family, r.priority, r.selector, r.action
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                " route-rules.config[0]: ipv4 Some(1000) from 192.0.2.0/24 => table 50",
                " route-rules.config[1]: ipv6 None to 2001:db8::/64 fwmark 0x30/0x10 iif eth1 => table 60",
                " route-rules.config[3]: ipv6 Some(5) all => blackhole",
                " route-rules.config[4]: ipv4 Some(6) suppress_prefixlength 0 => table 254",
            ]
        );
        let bad: Vec<_> = problems.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(
            bad,
            [
                " route-rules.config[5]",
                " route-rules.config[6]",
                " route-rules.config[7]",
                " route-rules.config[8]"
            ]
        );
    }

    #[test]
    fn no_rules_and_bad_yaml() {
        assert_eq!(parse("interfaces: []\n"), FileRules::default());
        assert_eq!(parse("route-rules: [\n"), FileRules::default());
    }
}
