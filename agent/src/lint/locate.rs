//! `lint`: which input file and line a finding comes from. A declaration's origin
//! (`unit NAME line N`, `file PATH line N`, `NodeNetworkConfigurationPolicy NAME
//! desiredState routes.config[0]`) names a unit, file or state; the intent's
//! writers say which MachineConfig wrote it last and at which entry; the line
//! index says where that entry is in the YAML.

use std::collections::BTreeMap;

use crate::intent::declarations::Written;
use crate::intent::document::{Config, NetworkState};

use super::inputs::Input;

/// What a finding points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchor {
    /// A route's, rule's or diagnostic's origin.
    Origin(String),
    /// A unit's entry in the config that last set its contents.
    Unit(String),
    /// A file's entry (its `mode` when the config names one).
    File(String),
    /// One writer of a unit or file (`unit NAME` / `file PATH`, 0-based in merge
    /// order).
    Writer(String, usize),
}

/// Turns anchors into places.
pub struct Locator<'a> {
    inputs: &'a [Input],
    configs: &'a [(usize, Config)],
    states: &'a [(usize, NetworkState)],
    writers: &'a BTreeMap<String, Vec<Written>>,
}

impl<'a> Locator<'a> {
    /// A locator for one pool: its configs (with the input each came from), the
    /// network states, and the intent's writers.
    pub fn new(
        inputs: &'a [Input],
        configs: &'a [(usize, Config)],
        states: &'a [(usize, NetworkState)],
        writers: &'a BTreeMap<String, Vec<Written>>,
    ) -> Locator<'a> {
        Locator {
            inputs,
            configs,
            states,
            writers,
        }
    }

    /// File name, line, and whether the place is in a MachineConfig of the pool
    /// (rather than in a network state).
    pub fn place(&self, anchor: &Anchor) -> (String, usize, bool) {
        let found = match anchor {
            Anchor::Origin(o) => self.origin(o),
            Anchor::Unit(name) => self.entry(&format!("unit {name}"), None, "", 0),
            Anchor::File(path) => self
                .entry(&format!("file {path}"), None, ".mode", 0)
                .or_else(|| self.entry(&format!("file {path}"), None, "", 0)),
            Anchor::Writer(key, n) => self.entry(key, Some(*n), "", 0),
        };
        found.unwrap_or_else(|| self.fallback())
    }

    fn fallback(&self) -> (String, usize, bool) {
        let file = self.configs.first().map(|(f, _)| *f).unwrap_or(0);
        let name = self
            .inputs
            .get(file)
            .map(|i| i.name.clone())
            .unwrap_or_else(|| "-".into());
        (name, 1, !self.configs.is_empty())
    }

    fn origin(&self, origin: &str) -> Option<(String, usize, bool)> {
        if let Some(rest) = origin.strip_prefix("unit ") {
            let (name, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            let line = line_number(rest);
            if let Some(dropin) = rest.strip_prefix("drop-in ") {
                let file = dropin.split(' ').next().unwrap_or(dropin);
                return self.dropin(name, file, line);
            }
            return self.entry(&format!("unit {name}"), None, ".contents", line);
        }
        if let Some(rest) = origin.strip_prefix("file ") {
            let path = rest.split(' ').next().unwrap_or(rest);
            let key = format!("file {path}");
            return self
                .entry(&key, None, ".contents.source", 0)
                .or_else(|| self.entry(&key, None, "", 0));
        }
        self.state(origin)
    }

    /// The entry of writer `n` (the last one that set contents when None) of
    /// `key`, with `suffix` appended to its path, at line `line` of a block.
    fn entry(&self, key: &str, n: Option<usize>, suffix: &str, line: usize) -> Option<(String, usize, bool)> {
        let writers = self.writers.get(key)?;
        let w = match n {
            Some(n) => writers.get(n)?,
            None => writers.iter().rev().find(|w| w.contents).or(writers.last())?,
        };
        let list = if key.starts_with("unit ") {
            "systemd.units"
        } else {
            "storage.files"
        };
        let (file, config) = self.configs.get(w.config)?;
        let path = join(&config.at.1, &format!("{list}[{}]{suffix}", w.index));
        let input = self.inputs.get(*file)?;
        let line = input.lines.line_in(config.at.0, &path, line)?;
        Some((input.name.clone(), line, true))
    }

    fn dropin(&self, unit: &str, file: &str, line: usize) -> Option<(String, usize, bool)> {
        let d = self.writers.get(&format!("unit {unit} drop-in {file}"))?.last()?;
        let u = self
            .writers
            .get(&format!("unit {unit}"))?
            .iter()
            .rev()
            .find(|w| w.config == d.config)?;
        let (input, config) = self.configs.get(d.config)?;
        let path = join(
            &config.at.1,
            &format!("systemd.units[{}].dropins[{}].contents", u.index, d.index),
        );
        let input = self.inputs.get(*input)?;
        Some((
            input.name.clone(),
            input.lines.line_in(config.at.0, &path, line)?,
            true,
        ))
    }

    fn state(&self, origin: &str) -> Option<(String, usize, bool)> {
        let (file, state, rest) = self.states.iter().find_map(|(f, s)| {
            let rest = origin.strip_prefix(&s.origin())?;
            Some((f, s, rest.trim_start()))
        })?;
        let input = self.inputs.get(*file)?;
        let path = join(&state.at.1, rest);
        let line = input
            .lines
            .line(state.at.0, &path)
            .or_else(|| input.lines.line(state.at.0, &state.at.1))?;
        Some((input.name.clone(), line, false))
    }
}

fn join(base: &str, rest: &str) -> String {
    match (base.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_owned(),
        (_, true) => base.to_owned(),
        _ => format!("{base}.{rest}"),
    }
}

/// `line N` (possibly after other words) -> N; 0 when absent.
fn line_number(text: &str) -> usize {
    text.rsplit_once("line ")
        .and_then(|(_, n)| n.split(' ').next()?.parse().ok())
        .unwrap_or(0)
}
