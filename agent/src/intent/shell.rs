//! Intent stage helper: a shell script (or `sh -c` string) cut into the simple
//! commands it runs, each with its line, so `ip route add` and `nmcli` calls can be
//! read wherever they sit (`;`, `&&`, `||`, `|`, newlines, `if ...; then`).
//!
//! This is not a shell: loops run once, functions and here-documents are not
//! followed, and anything built from variables or substitutions is flagged
//! `dynamic` so it becomes a diagnostic, never an invented route.

/// One simple command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// 1-based line where it starts.
    pub line: usize,
    /// Its words, quotes removed; leading keywords, assignments and wrappers
    /// (`sudo`, `exec`, `env`, `timeout 10`...) stripped.
    pub words: Vec<String>,
    /// Uses `$`, a backquote or a glob outside single quotes: words are not literal.
    pub dynamic: bool,
}

/// Cut a script into simple commands. Text that cannot be split (an unclosed
/// quote) is cut at whitespace and marked `dynamic`.
pub fn commands(script: &str) -> Vec<Command> {
    let mut out = Vec::new();
    for seg in segments(script) {
        let (words, dynamic) = match shell_words::split(&seg.text) {
            Ok(w) => (w, seg.dynamic),
            Err(_) => (seg.text.split_whitespace().map(String::from).collect(), true),
        };
        let words = strip_wrappers(drop_redirections(words));
        if !words.is_empty() {
            out.push(Command {
                line: seg.line,
                words,
                dynamic,
            });
        }
    }
    out
}

struct Segment {
    line: usize,
    text: String,
    dynamic: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Quote {
    None,
    Single,
    Double,
}

/// Split on `;`, `&`, `|`, newlines, `(`, `)` outside quotes; drop comments; join
/// backslash-newline.
fn segments(script: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut cur = Segment {
        line: 1,
        text: String::new(),
        dynamic: false,
    };
    let mut quote = Quote::None;
    let mut line = 1;
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\n') if quote == Quote::None => {
                line += 1;
                flush(&mut out, &mut cur, line);
            }
            (Quote::None, '\\') | (Quote::Double, '\\') => match chars.next() {
                Some('\n') => line += 1,
                Some(n) => {
                    cur.text.push('\\');
                    cur.text.push(n);
                }
                None => {}
            },
            (Quote::None, '#') if cur.text.is_empty() || cur.text.ends_with(char::is_whitespace) => {
                while chars.peek().is_some_and(|&n| n != '\n') {
                    chars.next();
                }
            }
            (Quote::None, ';' | '&' | '|' | '(' | ')') if is_separator(c, &cur.text) => {
                flush(&mut out, &mut cur, line)
            }
            (q, c) => {
                if c == '\n' {
                    line += 1;
                }
                quote = next_quote(q, c);
                if q != Quote::Single && matches!(c, '$' | '`' | '*' | '?') {
                    cur.dynamic = true;
                }
                cur.text.push(c);
            }
        }
    }
    flush(&mut out, &mut cur, line);
    out
}

/// `$(` and `>&` do not end a command.
fn is_separator(c: char, before: &str) -> bool {
    !(before.ends_with('$') || (c == '&' && before.ends_with(['>', '<'])))
}

fn next_quote(q: Quote, c: char) -> Quote {
    match (q, c) {
        (Quote::None, '\'') => Quote::Single,
        (Quote::None, '"') => Quote::Double,
        (Quote::Single, '\'') | (Quote::Double, '"') => Quote::None,
        (q, _) => q,
    }
}

fn flush(out: &mut Vec<Segment>, cur: &mut Segment, next_line: usize) {
    let done = std::mem::replace(
        cur,
        Segment {
            line: next_line,
            text: String::new(),
            dynamic: false,
        },
    );
    if !done.text.trim().is_empty() {
        out.push(done);
    }
}

const KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "time",
];
const WRAPPERS: &[&str] = &[
    "sudo",
    "exec",
    "command",
    "nohup",
    "builtin",
    "env",
    "/usr/bin/env",
    "/bin/env",
];

/// Remove what runs the real command: keywords, `VAR=value`, `sudo`, `timeout N`.
pub fn strip_wrappers(mut words: Vec<String>) -> Vec<String> {
    loop {
        let Some(first) = words.first() else { return words };
        let drop = if KEYWORDS.contains(&first.as_str())
            || WRAPPERS.contains(&first.as_str())
            || is_assignment(first)
        {
            1
        } else if first == "timeout" || first.ends_with("/timeout") {
            timeout_args(&words)
        } else {
            0
        };
        if drop == 0 || drop > words.len() {
            return words;
        }
        words.drain(..drop);
    }
}

fn timeout_args(words: &[String]) -> usize {
    let mut i = 1;
    while words.get(i).is_some_and(|w| w.starts_with('-')) {
        i += if matches!(words[i].as_str(), "-s" | "-k" | "--signal" | "--kill-after") {
            2
        } else {
            1
        };
    }
    i + 1
}

/// Drop `>/dev/null`, `2>&1`, `> file` and the like.
fn drop_redirections(words: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(words.len());
    let mut skip_next = false;
    for w in words {
        if std::mem::take(&mut skip_next) {
            continue;
        }
        let op = w.trim_start_matches(|c: char| c.is_ascii_digit() || c == '&');
        if op.starts_with(['>', '<']) {
            skip_next = op.trim_start_matches(['>', '<', '&', '|']).is_empty() && !op.ends_with('&');
            continue;
        }
        out.push(w);
    }
    out
}

fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(script: &str) -> Vec<(usize, String, bool)> {
        commands(script)
            .into_iter()
            .map(|c| (c.line, c.words.join(" "), c.dynamic))
            .collect()
    }

    #[test]
    fn separators_and_lines() {
        let w = words("set -e\nip route add 10.0.0.0/8 via 1.1.1.1 && nmcli con up x; echo ok\n");
        assert_eq!(w[1], (2, "ip route add 10.0.0.0/8 via 1.1.1.1".into(), false));
        assert_eq!(w[2], (2, "nmcli con up x".into(), false));
        assert_eq!(w.len(), 4);
    }

    #[test]
    fn quotes_comments_continuations() {
        let w = words("# header\nnmcli dev modify ens5 +ipv4.routes \"192.168.1.0/24 172.18.0.1; x\" # trailing\nip route \\\n  add 10.1.0.0/16 dev eth0\n");
        assert_eq!(
            w[0],
            (
                2,
                "nmcli dev modify ens5 +ipv4.routes 192.168.1.0/24 172.18.0.1; x".into(),
                false
            )
        );
        assert_eq!(w[1], (3, "ip route add 10.1.0.0/16 dev eth0".into(), false));
    }

    #[test]
    fn keywords_wrappers_and_dynamic() {
        let w = words("if true; then sudo FOO=1 timeout -s KILL 5 ip route add $NET dev eth0; fi");
        assert_eq!(w[1], (1, "ip route add $NET dev eth0".into(), true));
        let w = words("ip route add 10.0.0.0/8 dev eth0 >/dev/null 2>&1 || true\nip r a 10.2.0.0/16 dev eth0 2> /tmp/log");
        assert_eq!(w[0].1, "ip route add 10.0.0.0/8 dev eth0");
        assert_eq!(w[2].1, "ip r a 10.2.0.0/16 dev eth0");
        let w = words("echo '$HOME'");
        assert!(!w[0].2);
    }

    #[test]
    fn unclosed_quote_is_dynamic() {
        let c = commands("ip route add 'oops");
        assert_eq!(c.len(), 1);
        assert!(c[0].dynamic);
        assert_eq!(c[0].words[0], "ip");
    }
}
