//! Intent stage, declaration form: `nmcli device|connection modify ...
//! [+|-]ipvN.routing-rules "RULE, RULE"`: each change in command order. Without a
//! sign the list replaces the connection's rules of that family, `+` appends,
//! `-` removes rules given as text or by their 0-based index.

use crate::model::Family;

use super::nmcli::{self, Target};
use super::rules::{self, Dialect, RuleSpec};
use super::spec::Tables;

/// How a property changes the list of rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `ipvN.routing-rules`: replace.
    Set(Vec<RuleSpec>),
    /// `+ipvN.routing-rules`: append.
    Add(Vec<RuleSpec>),
    /// `-ipvN.routing-rules RULE`: remove equal rules.
    Remove(Vec<RuleSpec>),
    /// `-ipvN.routing-rules N`: remove by index.
    RemoveIndex(Vec<usize>),
}

/// A `modify` command that changes routing rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleModify {
    /// Device or connection.
    pub target: Target,
    /// `--temporary`.
    pub temporary: bool,
    /// The changes, in command order, each for one family.
    pub changes: Vec<(Family, Op)>,
    /// Rules that could not be read (the others are kept).
    pub problems: Vec<String>,
}

/// What a command means for the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Touches no routing rule.
    NotRule,
    /// Changes rules.
    Modify(RuleModify),
    /// Rule-related but unreadable.
    Problem(String),
}

/// Read an nmcli command line (`words[0]` is the program).
pub fn parse_command(words: &[String]) -> Outcome {
    let Some((target, temporary, pairs)) = nmcli::modify_target(words) else {
        return Outcome::NotRule;
    };
    let mut m = RuleModify {
        target: Target::Connection(String::new()),
        temporary,
        changes: Vec::new(),
        problems: Vec::new(),
    };
    for pair in pairs.chunks(2) {
        let Some((sign, family)) = property(&pair[0]) else {
            continue;
        };
        let Some(value) = pair.get(1) else {
            m.problems.push(format!("{} has no value", pair[0]));
            continue;
        };
        let op = change(sign, family, value, &mut m.problems);
        m.changes.push((family, op));
    }
    if m.changes.is_empty() && m.problems.is_empty() {
        return Outcome::NotRule;
    }
    match target {
        Ok(t) => m.target = t,
        Err(e) => return Outcome::Problem(e),
    }
    Outcome::Modify(m)
}

/// `+ipv6.routing-rules` -> ('+', Ipv6).
fn property(prop: &str) -> Option<(char, Family)> {
    let (sign, rest) = match prop.chars().next() {
        Some(c @ ('+' | '-')) => (c, &prop[1..]),
        _ => (' ', prop),
    };
    match rest {
        "ipv4.routing-rules" => Some((sign, Family::Ipv4)),
        "ipv6.routing-rules" => Some((sign, Family::Ipv6)),
        _ => None,
    }
}

fn change(sign: char, family: Family, value: &str, problems: &mut Vec<String>) -> Op {
    let items: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    if sign == '-' && !items.is_empty() && items.iter().all(|i| i.parse::<usize>().is_ok()) {
        return Op::RemoveIndex(items.iter().filter_map(|i| i.parse().ok()).collect());
    }
    let mut specs = Vec::new();
    for (n, text) in items.iter().enumerate() {
        let words: Vec<&str> = text.split_whitespace().collect();
        match rules::parse(&words, Some(family), Dialect::NetworkManager, &Tables::default()) {
            Ok(r) => specs.push(r),
            Err(e) => problems.push(format!("rule {} of {family}.routing-rules: {e}", n + 1)),
        }
    }
    match sign {
        '+' => Op::Add(specs),
        '-' => Op::Remove(specs),
        _ => Op::Set(specs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{IfName, RuleAction};

    fn parse(line: &str) -> Outcome {
        let words = shell_words::split(line).expect("test line splits");
        parse_command(&words)
    }

    fn modify(line: &str) -> RuleModify {
        match parse(line) {
            Outcome::Modify(m) => m,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn set_add_remove_in_order() {
        let m = modify(
            r#"nmcli con mod --temporary uplink ipv4.routing-rules "priority 5 from 10.0.0.0/24 table 200, priority 6 to 10.1.0.0/16 table 200" +ipv6.routing-rules "priority 7 from fd00::/64 table 300" -ipv4.routing-rules "priority 6 to 10.1.0.0/16 table 200" -ipv4.routing-rules 0,2"#,
        );
        assert_eq!(m.target, Target::Connection("uplink".into()));
        assert!(m.temporary && m.problems.is_empty());
        let shape: Vec<_> = m
            .changes
            .iter()
            .map(|(f, op)| match op {
                Op::Set(r) => format!("{f} set {}", r.len()),
                Op::Add(r) => format!("{f} add {}", r.len()),
                Op::Remove(r) => format!("{f} remove {}", r.len()),
                Op::RemoveIndex(i) => format!("{f} remove-index {i:?}"),
            })
            .collect();
        assert_eq!(
            shape,
            [
                "ipv4 set 2",
                "ipv6 add 1",
                "ipv4 remove 1",
                "ipv4 remove-index [0, 2]"
            ]
        );
        let Op::Set(rules) = &m.changes[0].1 else {
            panic!("set")
        };
        assert_eq!(rules[0].action, RuleAction::Table(200));
    }

    #[test]
    fn device_modify_and_problems() {
        let m = modify(
            r#"nmcli device modify ens5 +ipv4.routing-rules "priority 5 from 10.0.0.0/24 table 200, from 10.2.0.0/24 table 1""#,
        );
        assert_eq!(m.target, Target::Device(IfName::new("ens5").expect("name")));
        assert_eq!(m.problems.len(), 1);
        assert!(matches!(&m.changes[0].1, Op::Add(r) if r.len() == 1));
        assert!(matches!(
            parse(r#"nmcli dev mod eth/0 +ipv4.routing-rules "priority 5 table 1""#),
            Outcome::Problem(_)
        ));
        assert_eq!(modify("nmcli c m x ipv4.routing-rules").problems.len(), 1);
    }

    #[test]
    fn not_rules() {
        assert_eq!(
            parse(r#"nmcli dev modify ens5 +ipv4.routes "10.0.0.0/8 1.2.3.4""#),
            Outcome::NotRule
        );
        assert_eq!(parse("nmcli con up ens5"), Outcome::NotRule);
        assert_eq!(parse("nmcli con show"), Outcome::NotRule);
    }
}
