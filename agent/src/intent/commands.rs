//! Intent stage: what units and scripts run. Each command line is read as `nmcli`,
//! `ip`, `nmstatectl`, a shell (`sh -c '...'`) or a script the config delivers,
//! which is read the same way (a few levels deep).

use crate::model::{Expect, ExpectedUnit, Manager, Source, SourceKind, UnitName};

use super::build::Builder;
use super::document;
use super::files::NodeFile;
use super::nmcli::{self, Target};
use super::spec::{traits, RouteSpec};
use super::{iproute, shell, units};

const MAX_DEPTH: u8 = 4;
const SHELLS: [&str; 5] = ["sh", "bash", "dash", "ksh", "zsh"];

/// Who runs the commands being read.
#[derive(Debug, Clone)]
pub(super) struct Context {
    /// The unit that runs them, if a unit does.
    pub(super) unit: Option<UnitName>,
    /// Run by NetworkManager's dispatcher on each activation.
    pub(super) dispatcher: bool,
}

impl Context {
    pub(super) fn dispatcher() -> Context {
        Context {
            unit: None,
            dispatcher: true,
        }
    }
}

/// One command to read.
struct Cmd<'a> {
    words: &'a [String],
    dynamic: bool,
    origin: &'a str,
}

impl Builder<'_> {
    pub(super) fn read_unit(&mut self, origin: &str, unit: &document::Unit) {
        let def = match units::read(unit, origin) {
            Ok(d) => d,
            Err(diag) => return self.out.diagnostics.push(diag),
        };
        let before = self.out.routes.len();
        let saved = def.masked.then(|| self.out.routes.clone());
        let rules_before = self.rules.declared();
        let ctx = Context {
            unit: Some(def.name.clone()),
            dispatcher: false,
        };
        self.begin_sequence();
        for exec in &def.execs {
            let words = shell::strip_wrappers(exec.words.clone());
            self.exec = Some(exec.at.clone());
            self.command(
                &Cmd {
                    words: &words,
                    dynamic: exec.dynamic,
                    origin: &exec.origin,
                },
                &ctx,
                0,
            );
        }
        self.exec = None;
        let declared = self.out.routes.len() != before || !self.out.routes[self.sequence_start..].is_empty();
        if !declared && self.rules.declared() == rules_before {
            return;
        }
        let unit_origin = format!("unit {}", def.name);
        if let Some(saved) = saved {
            self.out.routes = saved;
            self.rules.drop_unit(&def.name);
            self.warn(unit_origin, "the unit is masked: its routes are not expected");
            return;
        }
        if def.enabled != Some(true) {
            self.warn(unit_origin, "the MachineConfig does not enable this unit: it starts at boot only if another unit pulls it in");
        }
        let expect = if def.is_oneshot() {
            Expect::Succeeded
        } else {
            Expect::Active
        };
        self.add_unit(ExpectedUnit {
            name: def.name,
            enabled: def.enabled,
            expect,
        });
    }

    pub(super) fn read_script(&mut self, file: &NodeFile, ctx: &Context, depth: u8) {
        if depth > MAX_DEPTH {
            return self.warn(
                format!("file {}", file.path),
                "scripts nest too deeply; not read further",
            );
        }
        if let Some(interpreter) = file.text.lines().next().and_then(|l| l.strip_prefix("#!")) {
            let prog = interpreter.split_whitespace().next().unwrap_or("");
            let base = basename(prog);
            if !SHELLS.contains(&base) && base != "env" {
                return;
            }
        }
        self.read_shell_text(&file.text, &format!("file {}", file.path), ctx, depth);
    }

    fn read_shell_text(&mut self, text: &str, origin: &str, ctx: &Context, depth: u8) {
        let multiline = text.trim_end().contains('\n');
        for c in shell::commands(text) {
            let origin = if multiline {
                format!("{origin} line {}", c.line)
            } else {
                origin.to_owned()
            };
            self.command(
                &Cmd {
                    words: &c.words,
                    dynamic: c.dynamic,
                    origin: &origin,
                },
                ctx,
                depth,
            );
        }
    }

    fn command(&mut self, cmd: &Cmd, ctx: &Context, depth: u8) {
        let Some(program) = cmd.words.first() else { return };
        match basename(program) {
            "nmcli" => self.nmcli(cmd, ctx),
            "ip" => self.ip(cmd, ctx),
            "nmstatectl" => self.nmstatectl(cmd, ctx),
            shell if SHELLS.contains(&shell) => self.shell(cmd, ctx, depth),
            _ if program.starts_with('/') => self.script(program, ctx, depth),
            _ => {}
        }
    }

    fn nmcli(&mut self, cmd: &Cmd, ctx: &Context) {
        self.nmcli_rules(&cmd.for_rules(), ctx);
        let m = match nmcli::parse_command(cmd.words, &self.tables) {
            nmcli::Outcome::NotRoute => return,
            _ if cmd.dynamic => return self.dynamic(cmd),
            nmcli::Outcome::Problem(p) => return self.error(cmd.origin, p),
            nmcli::Outcome::Modify(m) => m,
        };
        for p in &m.problems {
            self.error(cmd.origin, p.clone());
        }
        let non_persistent = m.temporary || matches!(m.target, Target::Device(_));
        let source = Source {
            kind: SourceKind::Nmcli,
            origin: cmd.origin.to_owned(),
            unit: ctx.unit.clone(),
        };
        let mut traits = traits(Manager::NetworkManager, non_persistent && !ctx.dispatcher);
        traits.declared_by = Some(self.nm_key(&m.target));
        for change in &m.changes {
            self.nmcli_change(&m.target, change);
            if change.op == nmcli::Op::Remove {
                continue;
            }
            for spec in &change.routes {
                let mut spec = spec.clone();
                self.nmcli_target(&m.target, m.temporary, &mut spec);
                self.add_route(spec, source.clone(), traits.clone());
            }
        }
    }

    /// Device and defaults of the modified connection or device.
    fn nmcli_target(&self, target: &Target, temporary: bool, spec: &mut RouteSpec) {
        match target {
            Target::Device(dev) => {
                spec.device = Some(dev.clone());
                spec.notes.push("declared with nmcli device modify: it changes only the active connection and is lost when the device is re-activated".into());
            }
            Target::Connection(name) => {
                let conn = self
                    .connections
                    .iter()
                    .find(|c| c.names.iter().any(|n| n == name));
                match conn {
                    Some(c) => {
                        spec.device = c.device.clone();
                        let (table, metric) = c.defaults[usize::from(spec.destination.addr().is_ipv6())];
                        spec.table = spec.table.or(table);
                        spec.metric = spec.metric.or(metric);
                    }
                    None => spec.notes.push("the connection it modifies is not defined in the MachineConfig: its device is unknown".to_owned()),
                }
                if temporary {
                    spec.notes.push("declared with nmcli connection modify --temporary: lost when the connection is re-activated".into());
                }
            }
        }
    }

    fn ip(&mut self, cmd: &Cmd, ctx: &Context) {
        if self.ip_rule(&cmd.for_rules(), ctx) {
            return;
        }
        let mut command = match iproute::parse_command(cmd.words, &self.tables) {
            iproute::Outcome::NotRoute => return,
            _ if cmd.dynamic => return self.dynamic(cmd),
            iproute::Outcome::Problem(p) => return self.error(cmd.origin, p),
            iproute::Outcome::Refused(why) => return self.warn(cmd.origin, why),
            iproute::Outcome::Route(c) => c,
        };
        let (manager, non_persistent) = if ctx.dispatcher {
            (Manager::NetworkManager, false)
        } else {
            command.route.notes.push("installed once by ip route: nothing adds it again if it is deleted or the device is re-activated".into());
            (Manager::None, true)
        };
        let source = Source {
            kind: SourceKind::IpRoute,
            origin: cmd.origin.to_owned(),
            unit: ctx.unit.clone(),
        };
        let route = self.expected(command.route.clone(), source, traits(manager, non_persistent));
        self.ip_route(command, route);
    }

    fn nmstatectl(&mut self, cmd: &Cmd, ctx: &Context) {
        let words = cmd.words;
        if !words.get(1).is_some_and(|w| w == "apply" || w == "set") {
            return;
        }
        for path in words[2..].iter().filter(|w| w.starts_with('/')) {
            if self.merged.files.contains_key(path.as_str()) {
                self.read_nmstate_file(path, ctx.unit.as_ref());
            }
        }
    }

    fn shell(&mut self, cmd: &Cmd, ctx: &Context, depth: u8) {
        let args = &cmd.words[1..];
        if let Some(i) = args
            .iter()
            .position(|a| a.starts_with('-') && a.contains('c') && !a.starts_with("--"))
        {
            if let Some(script) = args.get(i + 1) {
                self.read_shell_text(script, cmd.origin, ctx, depth + 1);
            }
            return;
        }
        if let Some(path) = args.iter().find(|a| !a.starts_with('-')) {
            self.script(path, ctx, depth);
        }
    }

    fn script(&mut self, path: &str, ctx: &Context, depth: u8) {
        if let Some(file) = self.file(path) {
            self.read_script(&file, ctx, depth + 1);
        }
    }

    fn dynamic(&mut self, cmd: &Cmd) {
        let d = crate::model::Diagnostic::error(
            cmd.origin,
            "declares a route whose text is not literal (shell variables, substitutions, unit specifiers or unbalanced quotes): its value is not known before it runs",
        );
        self.out
            .diagnostics
            .push(d.about(crate::model::Concern::NotLiteral));
    }
}

impl Cmd<'_> {
    fn for_rules(&self) -> super::rule_build::RuleCmd<'_> {
        super::rule_build::RuleCmd {
            words: self.words,
            dynamic: self.dynamic,
            origin: self.origin,
        }
    }
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}
