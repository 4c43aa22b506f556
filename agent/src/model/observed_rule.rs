//! What the observe stage reports of policy-routing rules: one kernel rule, in
//! the same words as the expected ones ([`RuleSelector`], [`RuleAction`]).

use std::fmt;

use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;

use super::{Family, Protocol, RuleAction, RuleSelector};

/// A routing rule read from the kernel (`ip rule`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedRule {
    /// Address family.
    pub family: Family,
    /// Priority (preference); the kernel gives every rule one (0 for `local`).
    pub priority: u32,
    /// What it matches.
    pub selector: RuleSelector,
    /// What it does. An `l3mdev` rule looks up the table of the packet's VRF
    /// device: its action is the table `0` the kernel reports.
    pub action: RuleAction,
    /// `l3mdev`: the rule looks up the table of the VRF device the packet is
    /// associated with.
    pub l3mdev: bool,
    /// Selectors routewarden does not compare (`uidrange`, `realms`, `tun_id`,
    /// `suppress_ifgroup`), as `ip rule` writes them; the intent reads them with
    /// a note that they are not checked.
    pub unchecked: Vec<String>,
    /// Who installed it (`kernel` for the default rules).
    pub protocol: Protocol,
}

impl ObservedRule {
    /// The table it looks up, for a `table` action (not for `l3mdev`).
    pub fn table(&self) -> Option<u32> {
        self.action.table().filter(|_| !self.l3mdev)
    }

    /// `100: from 10.0.0.0/24 table 200`, as `ip rule` lists it but in the
    /// canonical words of the intent.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("{}:", self.priority), self.selector.to_string()];
        parts.extend(self.unchecked.iter().cloned());
        if self.l3mdev {
            parts.push("l3mdev".to_owned());
        } else {
            parts.push(self.action.to_string());
        }
        parts.join(" ")
    }
}

impl fmt::Display for ObservedRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Serialize for ObservedRule {
    /// `{"priority", "selector", "table", "action", "protocol"}`, plus `l3mdev`
    /// and `unchecked` when set: the shape of an expected rule.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let extra = usize::from(self.l3mdev) + usize::from(!self.unchecked.is_empty());
        let mut st = s.serialize_struct("ObservedRule", 6 + extra)?;
        st.serialize_field("family", &self.family)?;
        st.serialize_field("priority", &self.priority)?;
        st.serialize_field("selector", &self.selector.to_string())?;
        st.serialize_field("table", &self.table())?;
        st.serialize_field("action", &self.action.to_string())?;
        if self.l3mdev {
            st.serialize_field("l3mdev", &true)?;
        }
        if !self.unchecked.is_empty() {
            st.serialize_field("unchecked", &self.unchecked)?;
        }
        st.serialize_field("protocol", &self.protocol)?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn described_and_serialized_like_an_expected_rule() {
        let rule = ObservedRule {
            family: Family::Ipv4,
            priority: 100,
            selector: RuleSelector {
                from: "10.0.0.0/24".parse().ok(),
                fwmark: Some((0x30, 0x10)),
                ..RuleSelector::default()
            },
            action: RuleAction::Table(200),
            l3mdev: false,
            unchecked: vec!["uidrange 1000-2000".into()],
            protocol: Protocol(4),
        };
        assert_eq!(
            rule.describe(),
            "100: from 10.0.0.0/24 fwmark 0x30/0x10 uidrange 1000-2000 table 200"
        );
        let json = serde_json::to_value(&rule).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({"family": "ipv4", "priority": 100,
                "selector": "from 10.0.0.0/24 fwmark 0x30/0x10", "table": 200, "action": "table 200",
                "unchecked": ["uidrange 1000-2000"], "protocol": "static"})
        );
        let vrf = ObservedRule {
            l3mdev: true,
            action: RuleAction::Table(0),
            unchecked: Vec::new(),
            ..rule
        };
        assert_eq!(vrf.table(), None);
        assert_eq!(vrf.describe(), "100: from 10.0.0.0/24 fwmark 0x30/0x10 l3mdev");
    }
}
