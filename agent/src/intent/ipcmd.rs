//! Intent stage: the front of an `ip` command line, read the way iproute2 6.1's
//! `ip.c` reads it before the object: its global options in its own order and
//! abbreviations (`-fam`, `-ne`, `--netns=x`), the family they select, then the
//! object and its words. One reader for `ip route` ([`super::iproute`]) and `ip
//! rule` ([`super::iprule`]).

use crate::model::Family;

/// iproute2's `matches()`: `word` is a non-empty abbreviation of `full`.
pub(super) fn abbrev(word: &str, full: &str) -> bool {
    !word.is_empty() && full.starts_with(word)
}

/// The global options of `ip` in the order `ip` tries them, and whether each
/// takes a value. `matches()` picks the first whose name the word abbreviates.
const GLOBAL_OPTIONS: &[(&str, bool)] = &[
    ("-loops", true),
    ("-family", true),
    ("-human", false),
    ("-human-readable", false),
    ("-iec", false),
    ("-stats", false),
    ("-statistics", false),
    ("-details", false),
    ("-resolve", false),
    ("-oneline", false),
    ("-timestamp", false),
    ("-tshort", false),
    ("-Version", false),
    ("-force", false),
    ("-batch", true),
    ("-brief", false),
    ("-json", false),
    ("-pretty", false),
    ("-rcvbuf", true),
    ("-color", false),
    ("-help", false),
    ("-netns", true),
    ("-Numeric", false),
    ("-all", false),
];

/// What the front of an `ip` command line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Invocation<'a> {
    /// `ip [OPTIONS] OBJECT ...`.
    Object {
        /// The family `-4`, `-6` or `-family` selects.
        family: Option<Family>,
        /// `-netns` names another network namespace.
        netns: bool,
        /// The words from the object on.
        words: &'a [String],
    },
    /// `-batch FILE`: the commands are in a file.
    Batch,
    /// Not an IPv4/IPv6 command: another family (`-0`, `-M`, `-B`, `-family
    /// link`), or an option `ip` does not know (it refuses the command).
    Other,
}

/// Read an `ip` command line (`words[0]` is the program) up to its object.
pub(super) fn read(words: &[String]) -> Invocation<'_> {
    let mut family = None;
    let mut netns = false;
    let mut i = 1;
    while let Some(word) = words.get(i).filter(|w| w.starts_with('-')) {
        if word == "--" {
            i += 1;
            break;
        }
        let opt = word
            .strip_prefix('-')
            .filter(|o| o.starts_with('-'))
            .unwrap_or(word);
        // A value given as `-opt=VALUE` is in the word, else it is the next.
        let (opt, inline) = opt.split_once('=').map_or((opt, None), |(o, v)| (o, Some(v)));
        let mut value = || match inline {
            Some(v) => Some(v),
            None => {
                i += 1;
                words.get(i).map(String::as_str)
            }
        };
        match opt {
            "-4" => family = Some(Family::Ipv4),
            "-6" => family = Some(Family::Ipv6),
            "-0" | "-M" | "-B" => return Invocation::Other,
            _ => match GLOBAL_OPTIONS.iter().find(|(name, _)| abbrev(opt, name)) {
                Some(("-batch", _)) => return Invocation::Batch,
                Some(("-family", _)) => match value() {
                    Some("inet") => family = Some(Family::Ipv4),
                    Some("inet6") => family = Some(Family::Ipv6),
                    _ => return Invocation::Other,
                },
                Some(("-netns", _)) => {
                    netns = true;
                    value();
                }
                Some((_, true)) => drop(value()),
                Some((_, false)) => {}
                None => return Invocation::Other,
            },
        }
        i += 1;
    }
    Invocation::Object {
        family,
        netns,
        words: words.get(i..).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_line(line: &str) -> (Option<Family>, bool, Vec<String>) {
        let words: Vec<String> = line.split_whitespace().map(String::from).collect();
        match read(&words) {
            Invocation::Object { family, netns, words } => (family, netns, words.to_vec()),
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn options_as_ip_reads_them() {
        assert_eq!(
            read_line("ip -fam inet6 -s rule add"),
            (Some(Family::Ipv6), false, vec!["rule".into(), "add".into()])
        );
        assert_eq!(read_line("ip --family inet -6 r").0, Some(Family::Ipv6));
        assert_eq!(read_line("ip -l 3 -rc 1000 -- -4").2, vec!["-4".to_owned()]);
        for netns in ["-n x", "-ne x", "--netns x", "-netns=x"] {
            let (_, ns, words) = read_line(&format!("ip {netns} rule add"));
            assert!(ns, "{netns}");
            assert_eq!(words, ["rule", "add"], "{netns}");
        }
        assert!(read_line("ip").2.is_empty());
    }

    #[test]
    fn other_families_batches_and_unknown_options() {
        let read_words = |line: &str| {
            let words: Vec<String> = line.split_whitespace().map(String::from).collect();
            read(&words) == Invocation::Other
        };
        assert!(read_words("ip -0 link show"));
        assert!(read_words("ip -family link route add 10.0.0.0/8 dev eth0"));
        assert!(read_words("ip -f"));
        assert!(read_words("ip -bogus route add 10.0.0.0/8 dev eth0"));
        let batch: Vec<String> = ["ip", "-ba", "/tmp/f"].map(String::from).into();
        assert_eq!(read(&batch), Invocation::Batch);
    }
}
