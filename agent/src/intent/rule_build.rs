//! Intent stage: routing rules from every declaration form, collected while the
//! builder visits keyfiles, nmstate files, units and scripts. Rules are kept with
//! the connection (or device) they belong to, so `nmcli ... ipvN.routing-rules`
//! without a sign replaces that connection's earlier rules, and `-` removes them.

use crate::model::{
    Concern, Diagnostic, ExpectedRule, Family, IfName, Manager, Source, SourceKind, Traits, UnitName,
};

use super::build::Builder;
use super::commands::Context;
use super::iprule;
use super::nmcli::Target;
use super::nmcli_rules::{self, Op};
use super::nmstate_rules;
use super::rules::{FileRules, RuleSpec};
use super::spec::traits;

/// Whose rules these are, for nmcli's set and remove.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    /// A connection profile the config writes (index into the builder's list).
    Connection(usize),
    /// A connection the config does not write, by the name nmcli gives.
    Named(String),
    /// The active connection of a device no written profile names.
    Device(IfName),
    /// Nothing nmcli can change (ip rule, nmstate).
    None,
}

/// The rules declared so far, each with its owner.
#[derive(Debug, Default)]
pub(super) struct RuleBook {
    rules: Vec<(Owner, ExpectedRule)>,
    declared: usize,
}

impl RuleBook {
    /// The rules, the first declaration of each kept (later ones become notes).
    pub(super) fn finish(self) -> Vec<ExpectedRule> {
        let mut out: Vec<ExpectedRule> = Vec::new();
        for (_, r) in self.rules {
            match out.iter_mut().find(|k| k.same_rule(&r)) {
                Some(first) => first.notes.push(format!("also declared in {}", r.source.origin)),
                None => out.push(r),
            }
        }
        out
    }

    /// How many rules there are.
    fn len(&self) -> usize {
        self.rules.len()
    }

    /// How many rules were declared so far, removed ones included.
    pub(super) fn declared(&self) -> usize {
        self.declared
    }

    /// Drop the rules a unit installs (the unit is masked).
    pub(super) fn drop_unit(&mut self, unit: &UnitName) {
        self.rules.retain(|(_, r)| r.source.unit.as_ref() != Some(unit));
    }
}

/// A command to read for rules: its words, whether they are literal, its place.
pub(super) struct RuleCmd<'a> {
    pub(super) words: &'a [String],
    pub(super) dynamic: bool,
    pub(super) origin: &'a str,
}

impl Builder<'_> {
    fn push_rule(&mut self, owner: Owner, spec: RuleSpec, source: Source, traits: Traits) {
        match traits.manager {
            Manager::NetworkManager => self.needs_nm = true,
            Manager::Nmstate => self.needs_nmstate = true,
            Manager::None => {}
        }
        self.rules.rules.push((owner, spec.into_expected(source, traits)));
        self.rules.declared += 1;
    }

    /// `routing-ruleN=` of the keyfile just read (the last connection).
    pub(super) fn add_keyfile_rules(&mut self, path: &str, rules: Vec<(usize, RuleSpec)>, traits: &Traits) {
        let owner = Owner::Connection(self.connections.len().saturating_sub(1));
        let traits = Traits {
            device: self.owner_device(&owner),
            ..traits.clone()
        };
        for (line, spec) in rules {
            let source = Source {
                kind: SourceKind::Keyfile,
                origin: format!("file {path} line {line}"),
                unit: None,
            };
            self.push_rule(owner.clone(), spec, source, traits.clone());
        }
    }

    /// `route-rules.config` of an nmstate file.
    pub(super) fn add_nmstate_rules(&mut self, path: &str, text: &str, unit: Option<&UnitName>) {
        let found = nmstate_rules::parse(text);
        self.add_state_rules(
            &format!("file {path}"),
            found,
            (SourceKind::Nmstate, Manager::Nmstate),
            unit,
        );
    }

    /// Rules and problems of an nmstate state, `at` naming where it is.
    pub(super) fn add_state_rules(
        &mut self,
        at: &str,
        found: FileRules,
        (kind, manager): (SourceKind, Manager),
        unit: Option<&UnitName>,
    ) {
        for (place, problem) in found.problems {
            self.error(format!("{at}{place}"), problem);
        }
        for (place, spec) in found.rules {
            let source = Source {
                kind,
                origin: format!("{at}{place}"),
                unit: unit.cloned(),
            };
            self.push_rule(Owner::None, spec, source, traits(manager, false));
        }
    }

    /// `ip rule add ...`; true when the command was a rule command.
    pub(super) fn ip_rule(&mut self, cmd: &RuleCmd, ctx: &Context) -> bool {
        let mut spec = match iprule::parse_command(cmd.words, &self.tables) {
            iprule::Outcome::NotRule => return false,
            _ if cmd.dynamic => return self.dynamic_rule(cmd),
            iprule::Outcome::Problem(p) => {
                self.error(cmd.origin, p);
                return true;
            }
            iprule::Outcome::Rule(r) => r,
        };
        let (manager, non_persistent) = if ctx.dispatcher {
            (Manager::NetworkManager, false)
        } else {
            spec.notes
                .push("installed once by ip rule: nothing adds it again if it is deleted".into());
            (Manager::None, true)
        };
        let source = Source {
            kind: SourceKind::IpRule,
            origin: cmd.origin.to_owned(),
            unit: ctx.unit.clone(),
        };
        self.push_rule(Owner::None, spec, source, traits(manager, non_persistent));
        true
    }

    /// `nmcli ... [+|-]ipvN.routing-rules ...`.
    pub(super) fn nmcli_rules(&mut self, cmd: &RuleCmd, ctx: &Context) {
        let m = match nmcli_rules::parse_command(cmd.words) {
            nmcli_rules::Outcome::NotRule => return,
            _ if cmd.dynamic => {
                self.dynamic_rule(cmd);
                return;
            }
            nmcli_rules::Outcome::Problem(p) => return self.error(cmd.origin, p),
            nmcli_rules::Outcome::Modify(m) => m,
        };
        for p in &m.problems {
            self.error(cmd.origin, p.clone());
        }
        let owner = self.owner(&m.target);
        let non_persistent = (m.temporary || matches!(m.target, Target::Device(_))) && !ctx.dispatcher;
        let source = Source {
            kind: SourceKind::Nmcli,
            origin: cmd.origin.to_owned(),
            unit: ctx.unit.clone(),
        };
        for (family, op) in m.changes {
            self.apply(&owner, family, op, &source, non_persistent);
        }
    }

    /// The device of the connection whose rules these are, when known.
    fn owner_device(&self, owner: &Owner) -> Option<IfName> {
        match owner {
            Owner::Connection(i) => self.connections.get(*i).and_then(|c| c.device.clone()),
            Owner::Device(dev) => Some(dev.clone()),
            Owner::Named(_) | Owner::None => None,
        }
    }

    fn apply(&mut self, owner: &Owner, family: Family, op: Op, source: &Source, non_persistent: bool) {
        let mine = |o: &Owner, r: &ExpectedRule| o == owner && r.family == family;
        let specs = match op {
            Op::Set(specs) => {
                self.rules.rules.retain(|(o, r)| !mine(o, r));
                specs
            }
            Op::Add(specs) => specs,
            Op::Remove(specs) => {
                for s in specs {
                    let before = self.rules.len();
                    self.rules
                        .rules
                        .retain(|(o, r)| !(mine(o, r) && r.is(s.family, s.priority, &s.selector, s.action)));
                    if self.rules.len() == before {
                        self.warn(source.origin.clone(), format!("removes {family} rule \"{}\", which the MachineConfig does not declare for this connection", s.selector));
                    }
                }
                return;
            }
            Op::RemoveIndex(indices) => return self.remove_indices(owner, family, &indices, source),
        };
        for mut spec in specs {
            if non_persistent {
                spec.notes.push("declared with nmcli device modify or --temporary: lost when the connection is re-activated".into());
            }
            let t = Traits {
                device: self.owner_device(owner),
                ..traits(Manager::NetworkManager, non_persistent)
            };
            self.push_rule(owner.clone(), spec, source.clone(), t);
        }
    }

    fn remove_indices(&mut self, owner: &Owner, family: Family, indices: &[usize], source: &Source) {
        let positions: Vec<usize> = (0..self.rules.len())
            .filter(|&i| {
                let (o, r) = &self.rules.rules[i];
                o == owner && r.family == family
            })
            .collect();
        let mut doomed: Vec<usize> = Vec::new();
        for &n in indices {
            match positions.get(n) {
                Some(&p) => doomed.push(p),
                None => self.warn(
                    source.origin.clone(),
                    format!("removes {family} rule number {n}, which the MachineConfig does not declare for this connection"),
                ),
            }
        }
        let mut i = 0;
        self.rules.rules.retain(|_| {
            i += 1;
            !doomed.contains(&(i - 1))
        });
    }

    fn owner(&self, target: &Target) -> Owner {
        let found = self.connections.iter().position(|c| match target {
            Target::Connection(name) => c.names.iter().any(|n| n == name),
            Target::Device(dev) => c.device.as_ref() == Some(dev),
        });
        match (found, target) {
            (Some(i), _) => Owner::Connection(i),
            (None, Target::Connection(name)) => Owner::Named(name.clone()),
            (None, Target::Device(dev)) => Owner::Device(dev.clone()),
        }
    }

    fn dynamic_rule(&mut self, cmd: &RuleCmd) -> bool {
        let d = Diagnostic::error(
            cmd.origin,
            "declares a routing rule whose text is not literal (shell variables, substitutions, unit specifiers or unbalanced quotes): its value is not known before it runs",
        );
        self.out.diagnostics.push(d.about(Concern::NotLiteral));
        true
    }
}
