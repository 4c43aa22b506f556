//! Policy-routing rules the intent expects: what a rule selects ([`RuleSelector`]),
//! what it does ([`RuleAction`]) and where it was declared ([`ExpectedRule`]).
//!
//! Each has one canonical text (`from 10.0.0.0/24 fwmark 0x30/0x10`, `table 200`):
//! the same words in `expected`, in JSON and, later, in metric labels.

use std::fmt;

use ipnet::IpNet;
use serde::Serialize;

use super::{ser_display, Family, IfName, Source, Traits, TABLE_MAIN};

/// The mask the kernel uses for `fwmark M` given without `/MASK`.
pub const FWMASK_ALL: u32 = 0xffff_ffff;

/// What a rule matches. Empty (every field unset) matches all packets.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleSelector {
    /// Source prefix (`from`), host bits cleared.
    pub from: Option<IpNet>,
    /// Destination prefix (`to`), host bits cleared.
    pub to: Option<IpNet>,
    /// Incoming interface (`iif`).
    pub iif: Option<IfName>,
    /// Outgoing interface (`oif`).
    pub oif: Option<IfName>,
    /// Firewall mark and mask; the mask is [`FWMASK_ALL`] when not given.
    pub fwmark: Option<(u32, u32)>,
    /// Type of service (DS field) byte.
    pub tos: Option<u8>,
    /// IP protocol number (`ipproto`).
    pub ipproto: Option<u8>,
    /// Source port range, first <= last.
    pub sport: Option<(u16, u16)>,
    /// Destination port range, first <= last.
    pub dport: Option<(u16, u16)>,
    /// `suppress_prefixlength`: ignore routes with a prefix this long or shorter.
    pub suppress_prefixlength: Option<u32>,
    /// `not`: the rule applies to packets that do not match.
    pub invert: bool,
}

impl RuleSelector {
    /// True when nothing is selected (`all`).
    pub fn is_all(&self) -> bool {
        let RuleSelector { invert, .. } = self;
        *self
            == RuleSelector {
                invert: *invert,
                ..RuleSelector::default()
            }
    }
}

impl fmt::Display for RuleSelector {
    /// `not from A to B tos 0x10 fwmark 0x30/0x10 iif X oif Y ipproto 6 sport 1-2
    /// dport 3 suppress_prefixlength 0`, each part only when set; `all` when none is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if self.invert {
            parts.push("not".into());
        }
        if self.is_all() {
            parts.push("all".into());
        }
        if let Some(n) = self.from {
            parts.push(format!("from {n}"));
        }
        if let Some(n) = self.to {
            parts.push(format!("to {n}"));
        }
        if let Some(t) = self.tos {
            parts.push(format!("tos {t:#04x}"));
        }
        if let Some((mark, mask)) = self.fwmark {
            match mask {
                FWMASK_ALL => parts.push(format!("fwmark {mark:#x}")),
                _ => parts.push(format!("fwmark {mark:#x}/{mask:#x}")),
            }
        }
        if let Some(i) = &self.iif {
            parts.push(format!("iif {i}"));
        }
        if let Some(o) = &self.oif {
            parts.push(format!("oif {o}"));
        }
        if let Some(p) = self.ipproto {
            parts.push(format!("ipproto {p}"));
        }
        for (word, range) in [("sport", self.sport), ("dport", self.dport)] {
            match range {
                Some((a, b)) if a == b => parts.push(format!("{word} {a}")),
                Some((a, b)) => parts.push(format!("{word} {a}-{b}")),
                None => {}
            }
        }
        if let Some(n) = self.suppress_prefixlength {
            parts.push(format!("suppress_prefixlength {n}"));
        }
        f.write_str(&parts.join(" "))
    }
}

/// What a rule does with the packets it selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleAction {
    /// Look the route up in this table (254 = main).
    Table(u32),
    /// Drop silently.
    Blackhole,
    /// Answer "network unreachable".
    Unreachable,
    /// Answer "communication prohibited".
    Prohibit,
    /// Continue at the rule with this priority.
    Goto(u32),
    /// Do nothing (used to skip rules).
    Nop,
}

impl RuleAction {
    /// The table looked up, for the `Table` action.
    pub fn table(self) -> Option<u32> {
        match self {
            RuleAction::Table(t) => Some(t),
            _ => None,
        }
    }
}

impl Default for RuleAction {
    fn default() -> Self {
        RuleAction::Table(TABLE_MAIN)
    }
}

impl fmt::Display for RuleAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleAction::Table(t) => write!(f, "table {t}"),
            RuleAction::Blackhole => f.write_str("blackhole"),
            RuleAction::Unreachable => f.write_str("unreachable"),
            RuleAction::Prohibit => f.write_str("prohibit"),
            RuleAction::Goto(p) => write!(f, "goto {p}"),
            RuleAction::Nop => f.write_str("nop"),
        }
    }
}

/// A routing rule the intent says the node must have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpectedRule {
    /// Address family.
    pub family: Family,
    /// Priority (preference), when the declaration names one; the kernel picks
    /// one otherwise.
    pub priority: Option<u32>,
    /// What it matches, as canonical text (`all` when nothing).
    #[serde(serialize_with = "ser_display")]
    pub selector: RuleSelector,
    /// What it does, as text (`table 200`, `blackhole`).
    #[serde(serialize_with = "ser_display")]
    pub action: RuleAction,
    /// Where it was declared (the first of `sources`).
    pub source: Source,
    /// Every declaration of this rule, `source` first (the MachineConfig's and
    /// NetworkManager's view).
    pub sources: Vec<Source>,
    /// Plain-words remarks about the declaration.
    pub notes: Vec<String>,
    /// Facts used to explain drift.
    #[serde(skip)]
    pub traits: Traits,
}

impl ExpectedRule {
    /// The table this rule sends lookups to, if it does.
    pub fn table(&self) -> Option<u32> {
        self.action.table()
    }

    /// Whether `other` is the same rule: the same family, priority, selector and
    /// action (its metric series' labels, less the table it implies).
    pub fn same_rule(&self, other: &ExpectedRule) -> bool {
        self.is(other.family, other.priority, &other.selector, other.action)
    }

    /// Whether this rule is the one these parts describe.
    pub fn is(
        &self,
        family: Family,
        priority: Option<u32>,
        selector: &RuleSelector,
        action: RuleAction,
    ) -> bool {
        (self.family, self.priority, &self.selector, self.action) == (family, priority, selector, action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Option<IpNet> {
        Some(s.parse().expect("net"))
    }

    #[test]
    fn selector_text() {
        assert_eq!(RuleSelector::default().to_string(), "all");
        let s = RuleSelector {
            from: net("10.0.0.0/24"),
            fwmark: Some((0x30, 0x10)),
            ..RuleSelector::default()
        };
        assert_eq!(s.to_string(), "from 10.0.0.0/24 fwmark 0x30/0x10");
        let s = RuleSelector {
            invert: true,
            to: net("fd00::/64"),
            tos: Some(0x10),
            fwmark: Some((1, FWMASK_ALL)),
            iif: IfName::new("eth0").ok(),
            oif: IfName::new("eth1").ok(),
            ipproto: Some(6),
            sport: Some((1000, 2000)),
            dport: Some((53, 53)),
            suppress_prefixlength: Some(0),
            ..RuleSelector::default()
        };
        assert_eq!(
            s.to_string(),
            "not to fd00::/64 tos 0x10 fwmark 0x1 iif eth0 oif eth1 ipproto 6 sport 1000-2000 dport 53 suppress_prefixlength 0"
        );
        let s = RuleSelector {
            invert: true,
            ..RuleSelector::default()
        };
        assert_eq!(s.to_string(), "not all");
    }

    #[test]
    fn action_text() {
        assert_eq!(RuleAction::default().to_string(), "table 254");
        assert_eq!(RuleAction::Table(200).to_string(), "table 200");
        assert_eq!(RuleAction::Goto(5).to_string(), "goto 5");
        assert_eq!(RuleAction::Blackhole.to_string(), "blackhole");
        assert_eq!(RuleAction::Table(200).table(), Some(200));
        assert_eq!(RuleAction::Prohibit.table(), None);
    }
}
