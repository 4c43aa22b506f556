//! Intent stage helper: the text of one routing rule -> [`RuleSpec`], in the two
//! dialects that write it as words: iproute2's (`ip rule add ...`, keywords
//! abbreviated as iproute2 matches them, table names from `rt_tables`) and
//! NetworkManager's (`routing-ruleN=` in keyfiles, `ipvN.routing-rules` in nmcli:
//! full keywords only, a priority and a table required).
//!
//! Text that cannot be read is an error naming the word's role, never a guess.

use ipnet::IpNet;

use crate::model::{
    ExpectedRule, Family, IfName, RuleAction, RuleSelector, Source, Traits, FWMASK_ALL, TABLE_MAIN,
};

use super::iproute::number;
use super::spec::{self, Place, Tables};

/// A rule as a declaration states it, before its source is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    /// Address family.
    pub family: Family,
    /// Priority, when named.
    pub priority: Option<u32>,
    /// What it matches.
    pub selector: RuleSelector,
    /// What it does.
    pub action: RuleAction,
    /// Remarks.
    pub notes: Vec<String>,
}

impl RuleSpec {
    /// Attach where it came from.
    pub fn into_expected(self, source: Source, traits: Traits) -> ExpectedRule {
        ExpectedRule {
            family: self.family,
            priority: self.priority,
            selector: self.selector,
            action: self.action,
            sources: vec![source.clone()],
            source,
            notes: self.notes,
            traits,
        }
    }
}

/// The note on a selector routewarden does not compare (`uidrange 1000-2000`).
pub fn not_checked(part: &str) -> String {
    format!("{part} is not checked")
}

/// For tests: `c` with these rules, written as NetworkManager writes them,
/// as its view would hold them.
#[cfg(test)]
pub(crate) fn with_nm_rules(mut c: crate::model::NmConnection, texts: &[&str]) -> crate::model::NmConnection {
    for text in texts {
        let words: Vec<&str> = text.split_whitespace().collect();
        let spec = parse(&words, None, Dialect::NetworkManager, &Tables::default()).expect("rule text");
        let rule = crate::model::NmRule {
            family: spec.family,
            priority: spec.priority,
            selector: spec.selector,
            action: spec.action,
            unchecked: Vec::new(),
        };
        match rule.family {
            Family::Ipv4 => c.ipv4.rules.push(rule),
            Family::Ipv6 => c.ipv6.rules.push(rule),
        }
    }
    c
}

/// The rules a structured document declares and the problems found reading it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileRules {
    /// Rules, each with its place.
    pub rules: Vec<(Place, RuleSpec)>,
    /// Problems, each with its place.
    pub problems: Vec<(Place, String)>,
}

/// Who wrote the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `ip rule add ARGS`.
    Iproute2,
    /// NetworkManager's routing-rule strings.
    NetworkManager,
}

/// Keywords and the iproute2 abbreviation rule for each: `true` when any prefix
/// matches (iproute2's `matches()`), `false` when only the full word does. Order
/// matters: iproute2 tries them in this order.
const KEYWORDS: &[(&str, &str, bool)] = &[
    ("not", "not", false),
    ("from", "from", false),
    ("to", "to", false),
    ("priority", "preference", true),
    ("priority", "order", true),
    ("priority", "priority", true),
    ("tos", "tos", false),
    ("tos", "dsfield", true),
    ("fwmark", "fwmark", false),
    ("realms", "realms", true),
    ("protocol", "protocol", true),
    ("tun_id", "tun_id", true),
    ("table", "table", true),
    ("table", "lookup", false),
    ("suppress_prefixlength", "suppress_prefixlength", true),
    ("suppress_prefixlength", "sup_pl", false),
    ("suppress_ifgroup", "suppress_ifgroup", true),
    ("suppress_ifgroup", "sup_group", false),
    ("iif", "dev", false),
    ("iif", "iif", false),
    ("oif", "oif", false),
    ("l3mdev", "l3mdev", false),
    ("uidrange", "uidrange", false),
    ("ipproto", "ipproto", true),
    ("sport", "sport", false),
    ("dport", "dport", false),
    ("nat", "nat", false),
    ("nat", "map-to", true),
    ("type", "type", false),
    ("goto", "goto", true),
];

/// The words NetworkManager reads (it takes no abbreviation).
const NM_WORDS: &[&str] = &[
    "not",
    "from",
    "to",
    "priority",
    "order",
    "pref",
    "preference",
    "table",
    "lookup",
    "tos",
    "dsfield",
    "ipproto",
    "sport",
    "dport",
    "fwmark",
    "iif",
    "dev",
    "oif",
    "suppress_prefixlength",
    "sup_pl",
    "uidrange",
    "type",
];

/// The canonical keyword a word stands for in this dialect.
fn keyword(word: &str, dialect: Dialect) -> Option<&'static str> {
    if dialect == Dialect::NetworkManager {
        if !NM_WORDS.contains(&word) {
            return None;
        }
        if matches!(word, "order" | "pref" | "preference") {
            return Some("priority");
        }
    }
    KEYWORDS
        .iter()
        .find(|(_, full, abbrev)| *full == word || (*abbrev && !word.is_empty() && full.starts_with(word)))
        .map(|(canon, _, _)| *canon)
}

/// Parse one rule's words. `family` is the one the context fixes (`ip -6`,
/// `[ipv6]`, `ipv6.routing-rules`); otherwise the first address decides, and
/// IPv4 when there is none (as iproute2 does).
pub fn parse(
    words: &[&str],
    family: Option<Family>,
    dialect: Dialect,
    tables: &Tables,
) -> Result<RuleSpec, String> {
    let mut p = Parts::default();
    let mut it = words.iter().copied();
    while let Some(word) = it.next() {
        let Some(key) = keyword(word, dialect) else {
            if dialect == Dialect::NetworkManager {
                return Err(format!(
                    "{} is a word that is not a NetworkManager rule keyword",
                    spec::shown(word)
                ));
            }
            p.action_word(word, dialect)?;
            continue;
        };
        if key == "not" {
            p.selector.invert = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{key} has no value"))?;
        p.set(key, value, dialect, tables)?;
    }
    p.build(family, dialect)
}

#[derive(Default)]
struct Parts<'a> {
    from: Option<&'a str>,
    to: Option<&'a str>,
    priority: Option<u32>,
    table: Option<u32>,
    action: Option<RuleAction>,
    selector: RuleSelector,
    notes: Vec<String>,
    seen: Vec<&'static str>,
}

impl<'a> Parts<'a> {
    fn set(
        &mut self,
        key: &'static str,
        value: &'a str,
        dialect: Dialect,
        tables: &Tables,
    ) -> Result<(), String> {
        if self.seen.contains(&key) && key != "type" {
            return Err(format!("{key} is given twice"));
        }
        self.seen.push(key);
        let bad = |what: &str| format!("{key} {} is not {what}", spec::shown(value));
        match key {
            "from" => self.from = Some(value),
            "to" => self.to = Some(value),
            "priority" => self.priority = Some(number(value).ok_or_else(|| bad("a number"))?),
            "table" => self.table = Some(table(value, dialect, tables)?),
            "tos" => self.selector.tos = Some(tos(value).ok_or_else(|| bad("a hexadecimal byte"))?),
            "fwmark" => self.selector.fwmark = Some(fwmark(value).ok_or_else(|| bad("MARK[/MASK]"))?),
            "iif" => self.selector.iif = Some(ifname(value)?),
            "oif" => self.selector.oif = Some(ifname(value)?),
            "ipproto" => self.selector.ipproto = Some(ipproto(value).ok_or_else(|| bad("a protocol"))?),
            "sport" => self.selector.sport = Some(ports(value).ok_or_else(|| bad("a port or range"))?),
            "dport" => self.selector.dport = Some(ports(value).ok_or_else(|| bad("a port or range"))?),
            "suppress_prefixlength" => {
                self.selector.suppress_prefixlength = Some(number(value).ok_or_else(|| bad("a number"))?)
            }
            "type" => self.action_word(value, dialect)?,
            "goto" => self.set_action(RuleAction::Goto(number(value).ok_or_else(|| bad("a priority"))?))?,
            "uidrange" | "realms" | "protocol" | "suppress_ifgroup" | "tun_id" | "l3mdev" => {
                self.notes.push(not_checked(&format!("{key} {value}")))
            }
            _ => {
                return Err(format!(
                    "{key} (network address translation) is not supported by Linux since 2.6"
                ))
            }
        }
        Ok(())
    }

    /// A rule type given as a bare word (iproute2) or after `type`.
    fn action_word(&mut self, word: &str, dialect: Dialect) -> Result<(), String> {
        let action = match word {
            "blackhole" => RuleAction::Blackhole,
            "unreachable" => RuleAction::Unreachable,
            "prohibit" => RuleAction::Prohibit,
            "unicast" => return Ok(()),
            "nop" if dialect == Dialect::Iproute2 => RuleAction::Nop,
            _ => {
                return Err(format!(
                    "{} is a word that is not a rule keyword or type",
                    spec::shown(word)
                ))
            }
        };
        self.set_action(action)
    }

    fn set_action(&mut self, action: RuleAction) -> Result<(), String> {
        match self.action.replace(action) {
            Some(old) if old != action => Err("two different rule types".to_owned()),
            _ => Ok(()),
        }
    }

    fn build(self, family: Option<Family>, dialect: Dialect) -> Result<RuleSpec, String> {
        let from = self
            .from
            .map(|t| prefix(t, "from", family))
            .transpose()?
            .flatten();
        let to = self.to.map(|t| prefix(t, "to", family)).transpose()?.flatten();
        let found = from.iter().chain(to.iter()).map(Family::of_net).next();
        let family = family.or(found).unwrap_or(Family::Ipv4);
        if from.iter().chain(to.iter()).any(|n| Family::of_net(n) != family) {
            return Err(format!("an address is not of the rule's family ({family})"));
        }
        let action = match (self.action, self.table) {
            (None, Some(t)) => RuleAction::Table(t),
            (None, None) if dialect == Dialect::NetworkManager => {
                return Err("NetworkManager refuses a rule without a table".to_owned())
            }
            (None, None) => RuleAction::Table(TABLE_MAIN),
            (Some(_), Some(_)) => return Err("a rule type other than unicast takes no table".to_owned()),
            (Some(a), None) => a,
        };
        if dialect == Dialect::NetworkManager && self.priority.is_none() {
            return Err("NetworkManager refuses a rule without a priority".to_owned());
        }
        let mut selector = self.selector;
        selector.from = from;
        selector.to = to;
        Ok(RuleSpec {
            family,
            priority: self.priority,
            selector,
            action,
            notes: self.notes,
        })
    }
}

/// `all`/`any`/`default` select nothing (None); otherwise a prefix, host bits cleared.
fn prefix(text: &str, what: &str, family: Option<Family>) -> Result<Option<IpNet>, String> {
    if matches!(text, "all" | "any" | "default") {
        return Ok(None);
    }
    let net = spec::destination(text, family)
        .map_err(|_| format!("{what} {} is not an address or prefix", spec::shown(text)))?;
    Ok((net.prefix_len() > 0 || !net.addr().is_unspecified()).then_some(net))
}

fn table(text: &str, dialect: Dialect, tables: &Tables) -> Result<u32, String> {
    match dialect {
        Dialect::Iproute2 => tables.lookup_iproute2(text),
        Dialect::NetworkManager => number(text)
            .filter(|t| *t > 0)
            .ok_or_else(|| format!("table {} is not a number from 1 to 4294967295", spec::shown(text))),
    }
}

/// `tos` is read as hexadecimal, with or without `0x`.
fn tos(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("0x").unwrap_or(text);
    u8::from_str_radix(hex, 16).ok()
}

fn fwmark(text: &str) -> Option<(u32, u32)> {
    match text.split_once('/') {
        Some((mark, mask)) => Some((number(mark)?, number(mask)?)),
        None => Some((number(text)?, FWMASK_ALL)),
    }
}

fn ifname(text: &str) -> Result<IfName, String> {
    IfName::new(text).map_err(|e| e.to_string())
}

/// A protocol number or one of the common names `/etc/protocols` gives.
fn ipproto(text: &str) -> Option<u8> {
    const NAMES: &[(&str, u8)] = &[
        ("icmp", 1),
        ("igmp", 2),
        ("tcp", 6),
        ("udp", 17),
        ("gre", 47),
        ("esp", 50),
        ("ah", 51),
        ("ipv6-icmp", 58),
        ("icmpv6", 58),
        ("sctp", 132),
    ];
    NAMES
        .iter()
        .find(|(n, _)| *n == text)
        .map(|(_, p)| *p)
        .or_else(|| text.parse().ok())
}

/// `N` or `N-M` with N <= M.
fn ports(text: &str) -> Option<(u16, u16)> {
    let (a, b) = text.split_once('-').unwrap_or((text, text));
    let (a, b): (u16, u16) = (a.parse().ok()?, b.parse().ok()?);
    (a <= b).then_some((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Result<String, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        parse(&words, None, Dialect::Iproute2, &Tables::default()).map(|r| show(&r))
    }

    fn nm(text: &str, family: Family) -> Result<String, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        parse(&words, Some(family), Dialect::NetworkManager, &Tables::default()).map(|r| show(&r))
    }

    fn show(r: &RuleSpec) -> String {
        let prio = r.priority.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
        format!("{} {prio} {} => {}", r.family, r.selector, r.action)
    }

    /// `ip rule add` arguments, and the rule read (`show`).
    #[rustfmt::skip]
    const IPROUTE2_FORMS: &[(&str, &str)] = &[
        ("from 10.0.0.7/24 lookup 200 pref 100", "ipv4 100 from 10.0.0.0/24 => table 200"),
        ("pri 5 fwmark 0x30/0x10 lookup main", "ipv4 5 fwmark 0x30/0x10 => table 254"),
        ("to fd00::/64 iif eth0 oif eth1 order 7 table 10", "ipv6 7 to fd00::/64 iif eth0 oif eth1 => table 10"),
        ("not fwmark 51820 table 51820", "ipv4 - not fwmark 0xca6c => table 51820"),
        ("table main suppress_prefixlength 0", "ipv4 - suppress_prefixlength 0 => table 254"),
        ("from all sup_pl 0 lookup 254", "ipv4 - suppress_prefixlength 0 => table 254"),
        ("from 10.1.0.0/16 blackhole", "ipv4 - from 10.1.0.0/16 => blackhole"),
        ("type unreachable to 10.2.0.0/16", "ipv4 - to 10.2.0.0/16 => unreachable"),
        ("prohibit iif eth0", "ipv4 - iif eth0 => prohibit"),
        ("iif lo ipproto udp dport 53 goto 5338 priority 5336", "ipv4 5336 iif lo ipproto 17 dport 53 => goto 5338"),
        ("sport 1000-2000 tos 10 nop", "ipv4 - tos 0x10 sport 1000-2000 => nop"),
        ("dsfield 0x08 pref 0x10 table 0", "ipv4 16 tos 0x08 => table 254"),
        ("from 0.0.0.0/0 table 100", "ipv4 - all => table 100"),
        ("pref 010 lookup 010", "ipv4 8 all => table 8"),
    ];

    #[test]
    fn iproute2_forms() {
        for (text, rule) in IPROUTE2_FORMS {
            assert_eq!(ip(text).as_deref(), Ok(*rule), "{text}");
        }
    }

    #[test]
    fn iproute2_noted_and_refused() {
        let words = ["uidrange", "1000-2000", "table", "5"];
        let r = parse(&words, None, Dialect::Iproute2, &Tables::default()).expect("reads");
        assert_eq!(r.notes, ["uidrange 1000-2000 is not checked"]);
        let bad = |t: &str| ip(t).is_err();
        assert!(bad("from 10.0.0.0/33 table 1"));
        assert!(bad("table vpn"));
        assert!(bad("fwmark x table 1"));
        assert!(bad("from 10.0.0.0/8 to fd00::/8 table 1"));
        assert!(bad("blackhole table 100"));
        assert!(bad("blackhole prohibit"));
        assert!(bad("pref"));
        assert!(bad("pref 1 pref 2 table 1"));
        assert!(bad("bogus 1"));
        assert!(bad("nat 1.2.3.4"));
        assert!(bad("sport 2000-1000 table 1"));
        assert!(bad("iif eth/0 table 1"));
        assert!(bad("tos 0x100 table 1"));
        let mut tables = Tables::default();
        tables.add_file("200 vpn\n");
        let r = parse(&["lookup", "vpn"], None, Dialect::Iproute2, &tables).expect("named table");
        assert_eq!(r.action, RuleAction::Table(200));
    }

    #[test]
    fn networkmanager_forms() {
        assert_eq!(
            nm("priority 5 from 192.168.4.0/24 table 100", Family::Ipv4),
            Ok("ipv4 5 from 192.168.4.0/24 => table 100".into())
        );
        assert_eq!(
            nm(
                "priority 10 to fd00::/64 fwmark 0x30/0x10 iif eth0 table 200",
                Family::Ipv6
            ),
            Ok("ipv6 10 to fd00::/64 fwmark 0x30/0x10 iif eth0 => table 200".into())
        );
        assert_eq!(
            nm("not priority 30 from all type blackhole", Family::Ipv4),
            Ok("ipv4 30 not all => blackhole".into())
        );
        assert_eq!(
            nm(
                "priority 40 table 254 suppress_prefixlength 0 ipproto 6 sport 22 dport 80-90 tos 0x10",
                Family::Ipv4
            ),
            Ok("ipv4 40 tos 0x10 ipproto 6 sport 22 dport 80-90 suppress_prefixlength 0 => table 254".into())
        );
        let bad = |t: &str, f| nm(t, f).is_err();
        assert!(bad("from 10.0.0.0/8 table 100", Family::Ipv4), "no priority");
        assert!(bad("priority 5 from 10.0.0.0/8", Family::Ipv4), "no table");
        assert!(bad("prio 5 table 100", Family::Ipv4), "no abbreviations");
        assert!(bad("priority 5 table main", Family::Ipv4), "no table names");
        assert!(
            bad("priority 5 from 10.0.0.0/8 table 100", Family::Ipv6),
            "wrong family"
        );
        assert!(bad("priority 5 nop", Family::Ipv4));
    }
}
