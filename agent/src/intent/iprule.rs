//! Intent stage, declaration form: `ip [-4|-6] rule add|append|prepend SELECTOR
//! ACTION` (and iproute2's abbreviations, `ip ru a`), as found in units and
//! scripts. The words after the verb are read by [`super::rules`].

use super::ipcmd::{self, abbrev, Invocation};
use super::rules::{self, Dialect, RuleSpec};
use super::spec::Tables;

/// What a command means for the intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not a rule declaration (another `ip` command, `ip rule show`, `ip rule del`).
    NotRule,
    /// A rule.
    Rule(RuleSpec),
    /// Rule-related but not readable; the message says why.
    Problem(String),
}

/// Read an `ip` command line (`words[0]` is the program).
pub fn parse_command(words: &[String], tables: &Tables) -> Outcome {
    let Invocation::Object { family, netns, words } = ipcmd::read(words) else {
        return Outcome::NotRule;
    };
    if !is_rule_add(words.first(), words.get(1)) {
        return Outcome::NotRule;
    }
    if netns {
        return Outcome::Problem("adds a rule in another network namespace (-n); not checked".into());
    }
    let args: Vec<&str> = words[2..].iter().map(String::as_str).collect();
    match rules::parse(&args, family, Dialect::Iproute2, tables) {
        Ok(rule) => Outcome::Rule(rule),
        Err(e) => Outcome::Problem(format!("ip rule: {e}")),
    }
}

/// `rule` (iproute2 tries `route` first: a lone `r` is `route`) followed by a
/// verb that adds (`a` is `add`; `append`, `prepend` from two letters).
fn is_rule_add(object: Option<&String>, verb: Option<&String>) -> bool {
    let (Some(object), Some(verb)) = (object, verb) else {
        return false;
    };
    let from_two = |word: &str, full: &str| word.len() >= 2 && abbrev(word, full);
    abbrev(object, "rule")
        && !abbrev(object, "route")
        && (abbrev(verb, "add") || from_two(verb, "append") || from_two(verb, "prepend"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Family, RuleAction};

    fn parse(line: &str) -> Outcome {
        let words: Vec<String> = line.split_whitespace().map(String::from).collect();
        parse_command(&words, &Tables::default())
    }

    fn rule(line: &str) -> RuleSpec {
        match parse(line) {
            Outcome::Rule(r) => r,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn adds() {
        let r = rule("ip rule add from 10.0.0.0/24 table 200 priority 100");
        assert_eq!(
            (r.family, r.priority, r.action),
            (Family::Ipv4, Some(100), RuleAction::Table(200))
        );
        let r = rule("/usr/sbin/ip -6 ru a iif eth0 lookup 300");
        assert_eq!(
            (r.family, r.selector.to_string()),
            (Family::Ipv6, "iif eth0".into())
        );
        let r = rule("ip -family inet6 rule append fwmark 1 prohibit");
        assert_eq!((r.family, r.action), (Family::Ipv6, RuleAction::Prohibit));
        let r = rule("ip -fam inet6 -s rule add iif eth0 lookup 300");
        assert_eq!(r.family, Family::Ipv6);
        let r = rule("ip rule prepend to 10.9.0.0/16 blackhole");
        assert_eq!(r.action, RuleAction::Blackhole);
    }

    #[test]
    fn not_rules() {
        assert_eq!(parse("ip rule del from 10.0.0.0/24 table 200"), Outcome::NotRule);
        assert_eq!(parse("ip rule show"), Outcome::NotRule);
        assert_eq!(parse("ip r add 10.0.0.0/8 dev eth0"), Outcome::NotRule);
        assert_eq!(parse("ip route add 10.0.0.0/8 dev eth0"), Outcome::NotRule);
        assert_eq!(parse("ip rule"), Outcome::NotRule);
        assert_eq!(parse("ip -n blue link set eth0 up"), Outcome::NotRule);
        assert_eq!(parse("ip -b /tmp/rules"), Outcome::NotRule);
        assert_eq!(
            parse("ip -family link rule add iif eth0 table 1"),
            Outcome::NotRule
        );
    }

    #[test]
    fn problems() {
        let p = |l| matches!(parse(l), Outcome::Problem(_));
        assert!(p("ip rule add from 10.0.0.0/33 table 1"));
        assert!(p("ip -6 rule add from 10.0.0.0/8 table 1"));
        assert!(p("ip rule add lookup vpn"));
        assert!(p("ip rule add from"));
        assert!(p("ip -n blue rule add from 10.0.0.0/8 table 1"));
        assert!(p("ip -net blue rule add from 10.0.0.0/8 table 1"));
    }
}
