//! Intent stage, declaration form: `ip [-4|-6] rule add|append|prepend SELECTOR
//! ACTION` (and iproute2's abbreviations, `ip ru a`), as found in units and
//! scripts. The words after the verb are read by [`super::rules`].

use crate::model::Family;

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
    let mut family = None;
    let mut i = 1;
    while let Some(w) = words.get(i).filter(|w| w.starts_with('-')) {
        match w.trim_start_matches('-') {
            "4" => family = Some(Family::Ipv4),
            "6" => family = Some(Family::Ipv6),
            "f" | "family" => {
                i += 1;
                family = match words.get(i).map(String::as_str) {
                    Some("inet") => Some(Family::Ipv4),
                    Some("inet6") => Some(Family::Ipv6),
                    _ => family,
                };
            }
            "n" | "netns" if is_rule_add(words.get(i + 2), words.get(i + 3)) => {
                return Outcome::Problem("adds a rule in another network namespace (-n); not checked".into())
            }
            "b" | "batch" => return Outcome::NotRule,
            "n" | "netns" | "rc" | "rcvbuf" | "l" | "loops" => i += 1,
            _ => {}
        }
        i += 1;
    }
    if !is_rule_add(words.get(i), words.get(i + 1)) {
        return Outcome::NotRule;
    }
    let args: Vec<&str> = words[i + 2..].iter().map(String::as_str).collect();
    match rules::parse(&args, family, Dialect::Iproute2, tables) {
        Ok(rule) => Outcome::Rule(rule),
        Err(e) => Outcome::Problem(format!("ip rule: {e}")),
    }
}

/// `rule` (iproute2 takes `ru`, `rul`: a lone `r` is `route`) followed by a verb
/// that adds.
fn is_rule_add(object: Option<&String>, verb: Option<&String>) -> bool {
    let (Some(object), Some(verb)) = (object, verb) else {
        return false;
    };
    let abbrev = |word: &str, full: &str, min: usize| word.len() >= min && full.starts_with(word);
    abbrev(object, "rule", 2)
        && (abbrev(verb, "add", 1) || abbrev(verb, "append", 2) || abbrev(verb, "prepend", 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RuleAction;

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
    }

    #[test]
    fn problems() {
        let p = |l| matches!(parse(l), Outcome::Problem(_));
        assert!(p("ip rule add from 10.0.0.0/33 table 1"));
        assert!(p("ip -6 rule add from 10.0.0.0/8 table 1"));
        assert!(p("ip rule add lookup vpn"));
        assert!(p("ip rule add from"));
        assert!(p("ip -n blue rule add from 10.0.0.0/8 table 1"));
    }
}
