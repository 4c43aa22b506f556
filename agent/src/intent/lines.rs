//! Intent stage helper: where each node of a YAML (or JSON) input is, by path
//! (`spec.config.systemd.units[0].contents`), so a tool can name the line a
//! declaration comes from. The serde parsers give no positions; this walks the
//! same text once more with an event parser that does.
//!
//! Pure, and never fails: text past a syntax error is simply not indexed (the
//! document reader reports the error).

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Where one node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    /// 1-based line of its key (of the node itself in a sequence).
    pub line: usize,
    /// For a block scalar (`|`, `>`): the 1-based line of its first content line.
    pub block: Option<usize>,
}

/// The nodes of every document of an input, by document index and path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lines {
    docs: Vec<HashMap<String, Node>>,
}

impl Lines {
    /// Index `text`.
    pub fn index(text: &str) -> Lines {
        let mut walker = Walker::default();
        let _ = Parser::new_from_str(text).load(&mut walker, true);
        Lines { docs: walker.docs }
    }

    /// The node at `path` of document `doc` (0-based).
    pub fn node(&self, doc: usize, path: &str) -> Option<Node> {
        self.docs.get(doc)?.get(path).copied()
    }

    /// The line of `path`.
    pub fn line(&self, doc: usize, path: &str) -> Option<usize> {
        self.node(doc, path).map(|n| n.line)
    }

    /// The line of line `n` (1-based) of the text at `path`: exact for a
    /// literal block scalar, the node's own line otherwise.
    pub fn line_in(&self, doc: usize, path: &str, n: usize) -> Option<usize> {
        let node = self.node(doc, path)?;
        Some(match node.block {
            Some(first) if n > 0 => first + n - 1,
            _ => node.line,
        })
    }
}

#[derive(Debug)]
enum Frame {
    /// A mapping: the key being read (None while waiting for one) and its line.
    Map(Option<(String, usize)>),
    /// A sequence: the index of the next item.
    Seq(usize),
}

#[derive(Debug, Default)]
struct Walker {
    docs: Vec<HashMap<String, Node>>,
    stack: Vec<Frame>,
    path: Vec<String>,
}

impl Walker {
    /// The path segment of the node starting now, and the line to record for
    /// it; None when this node is a mapping key.
    fn enter(&mut self, mark: Marker) -> Option<(String, usize)> {
        match self.stack.last_mut() {
            None => Some((String::new(), mark.line())),
            Some(Frame::Seq(i)) => {
                *i += 1;
                Some((format!("[{}]", *i - 1), mark.line()))
            }
            Some(Frame::Map(key)) => key.take().map(|(k, line)| (format!(".{k}"), line)),
        }
    }

    fn full_path(&self, segment: &str) -> String {
        let mut p: String = self.path.concat();
        p.push_str(segment);
        p.trim_start_matches('.').to_owned()
    }

    fn record(&mut self, segment: &str, node: Node) {
        let path = self.full_path(segment);
        if let Some(doc) = self.docs.last_mut() {
            doc.entry(path).or_insert(node);
        }
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::DocumentStart => {
                self.docs.push(HashMap::new());
                self.stack.clear();
                self.path.clear();
            }
            Event::Scalar(value, style, ..) => match self.enter(mark) {
                Some((segment, line)) => {
                    let block =
                        matches!(style, TScalarStyle::Literal | TScalarStyle::Folded).then_some(mark.line());
                    self.record(&segment, Node { line, block });
                }
                None => {
                    if let Some(Frame::Map(key)) = self.stack.last_mut() {
                        *key = Some((value, mark.line()));
                    }
                }
            },
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(ev, Event::MappingStart(..));
                let (segment, line) = self.enter(mark).unwrap_or_default();
                self.record(&segment, Node { line, block: None });
                self.path.push(segment);
                self.stack
                    .push(if is_map { Frame::Map(None) } else { Frame::Seq(0) });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.path.pop();
            }
            Event::Alias(_) => {
                let _ = self.enter(mark);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# comment\napiVersion: v1\nspec:\n  config:\n    systemd:\n      units:\n      - name: a.service\n        contents: |\n          [Unit]\n          After=x\n      - name: b.service\n        contents: \"[Unit]\\nAfter=y\\n\"\n---\nkind: List\nitems:\n- spec: {config: {storage: {files: [{path: /etc/x}]}}}\n";

    #[test]
    fn paths_and_lines() {
        let l = Lines::index(TEXT);
        assert_eq!(l.line(0, "spec.config.systemd.units[0]"), Some(7));
        assert_eq!(l.line(0, "spec.config.systemd.units[0].name"), Some(7));
        assert_eq!(l.line(0, "spec.config.systemd.units[1].contents"), Some(12));
        assert_eq!(l.line_in(0, "spec.config.systemd.units[0].contents", 2), Some(10));
        assert_eq!(l.line_in(0, "spec.config.systemd.units[1].contents", 2), Some(12));
        assert_eq!(l.line(1, "items[0].spec.config.storage.files[0].path"), Some(16));
        assert_eq!(l.line(1, "kind"), Some(14));
        assert_eq!(l.line(2, "kind"), None);
    }

    #[test]
    fn json_and_broken_text() {
        let l = Lines::index("{\n \"spec\": {\n  \"config\": {\"a\": [1,\n 2]}}}\n");
        assert_eq!(l.line(0, "spec.config.a[1]"), Some(4));
        let l = Lines::index("a: 1\nb: [\n");
        assert_eq!(l.line(0, "a"), Some(1));
    }
}
