//! Intent stage helper: the `[section]` / `key=value` syntax shared by systemd unit
//! files and NetworkManager keyfiles, with line numbers for diagnostics.
//!
//! Written here rather than with an ini crate because every diagnostic must name
//! its line, and unit files join backslash continuations.

/// One `key=value` assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The section it is in (`Service`, `ipv4`), empty before the first header.
    pub section: String,
    /// The key, trimmed.
    pub key: String,
    /// The value, trimmed, continuation lines joined with a space.
    pub value: String,
    /// 1-based line of the key.
    pub line: usize,
}

/// Syntax flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// systemd: `#`/`;` comments, a trailing `\` continues the line.
    Unit,
    /// GLib keyfile: `#` comments, no continuation.
    Keyfile,
}

/// Every assignment in order. Lines that are neither headers, comments nor
/// assignments are skipped (systemd and GLib warn and go on too).
pub fn entries(text: &str, flavour: Flavour) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut lines = text.lines().enumerate();
    while let Some((idx, raw)) = lines.next() {
        let line = raw.trim();
        if is_comment(line, flavour) || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_owned();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let mut value = value.trim().to_owned();
        if flavour == Flavour::Unit {
            join_continuations(&mut value, &mut lines);
        }
        out.push(Entry {
            section: section.clone(),
            key: key.trim().to_owned(),
            value,
            line: idx + 1,
        });
    }
    out
}

fn is_comment(line: &str, flavour: Flavour) -> bool {
    line.starts_with('#') || (flavour == Flavour::Unit && line.starts_with(';'))
}

fn join_continuations<'a>(value: &mut String, lines: &mut impl Iterator<Item = (usize, &'a str)>) {
    while let Some(stripped) = value.strip_suffix('\\') {
        let kept = stripped.trim_end().len();
        value.truncate(kept);
        let next = loop {
            match lines.next() {
                Some((_, l)) if is_comment(l.trim(), Flavour::Unit) => continue,
                Some((_, l)) => break Some(l.trim()),
                None => break None,
            }
        };
        let Some(next) = next else { return };
        if !next.is_empty() {
            value.push(' ');
            value.push_str(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_keys_lines() {
        let e = entries(
            "# c\n[Unit]\nDescription = x\n\n[Service]\nType=oneshot\n",
            Flavour::Unit,
        );
        assert_eq!(e.len(), 2);
        assert_eq!(
            (
                e[0].section.as_str(),
                e[0].key.as_str(),
                e[0].value.as_str(),
                e[0].line
            ),
            ("Unit", "Description", "x", 3)
        );
        assert_eq!((e[1].section.as_str(), e[1].line), ("Service", 6));
    }

    #[test]
    fn continuations_join_and_skip_comments() {
        let text = "[Service]\nExecStart=/bin/sh -c \\\n  'ip route add \\\n# note\n 10.0.0.0/8 dev eth0'\nType=oneshot\n";
        let e = entries(text, Flavour::Unit);
        assert_eq!(e[0].value, "/bin/sh -c 'ip route add 10.0.0.0/8 dev eth0'");
        assert_eq!(e[0].line, 2);
        assert_eq!(e[1].key, "Type");
    }

    #[test]
    fn keyfile_has_no_continuation() {
        let e = entries("[ipv4]\nroute1=10.0.0.0/8,1.2.3.4\\\n;x=y\n", Flavour::Keyfile);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].value, "10.0.0.0/8,1.2.3.4\\");
    }
}
