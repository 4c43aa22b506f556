//! Intent stage: the merged config -> [`Intent`]. Visits every place routes can be
//! declared (keyfiles, route-IFACE files, nmstate files, dispatcher scripts,
//! units and the scripts they run) and collects routes, units and diagnostics.

use std::collections::BTreeMap;

use crate::model::{
    Diagnostic, ExecRef, Expect, ExpectedRoute, ExpectedUnit, IfName, Intent, Manager, Source, SourceKind,
    Traits, UnitName,
};

use super::files::{self, NodeFile};
use super::spec::{FileRoutes, Place, RouteSpec, Tables};
use super::{ifcfg, keyfile, nmstate, Merged, Options};

pub(super) const KEYFILE_DIRS: [&str; 3] = [
    "/etc/NetworkManager/system-connections/",
    "/run/NetworkManager/system-connections/",
    "/usr/lib/NetworkManager/system-connections/",
];
const DISPATCHER_DIR: &str = "/etc/NetworkManager/dispatcher.d/";
const UNIT_DIR: &str = "/etc/systemd/system/";

/// A connection profile the config writes, for `nmcli connection modify NAME`.
#[derive(Debug, Clone)]
pub(super) struct Connection {
    pub(super) names: Vec<String>,
    pub(super) device: Option<IfName>,
    pub(super) defaults: [(Option<u32>, Option<u32>); 2],
}

pub(crate) struct Builder<'a> {
    pub(super) merged: Merged,
    pub(super) options: &'a Options,
    pub(super) tables: Tables,
    pub(super) decoded: BTreeMap<String, Option<NodeFile>>,
    pub(super) connections: Vec<Connection>,
    pub(super) out: Intent,
    pub(super) units: Vec<ExpectedUnit>,
    pub(super) needs_nm: bool,
    pub(super) needs_nmstate: bool,
    pub(super) rules: super::rule_build::RuleBook,
    /// Where the routes of the unit (or dispatcher script) being read begin in
    /// `out.routes`: its commands act on those in order.
    pub(super) sequence_start: usize,
    /// The unit command being read, attached to what it declares.
    pub(super) exec: Option<ExecRef>,
}

impl<'a> Builder<'a> {
    pub(crate) fn new(mut merged: Merged, options: &'a Options) -> Builder<'a> {
        let out = Intent {
            machineconfig: merged.name.take(),
            diagnostics: std::mem::take(&mut merged.diagnostics),
            ..Intent::default()
        };
        Builder {
            merged,
            options,
            tables: Tables::default(),
            decoded: BTreeMap::new(),
            connections: Vec::new(),
            out,
            units: Vec::new(),
            needs_nm: false,
            needs_nmstate: false,
            rules: Default::default(),
            sequence_start: 0,
            exec: None,
        }
    }

    pub(crate) fn run(mut self) -> Intent {
        self.read_tables();
        self.read_keyfiles();
        self.read_ifcfg();
        self.read_nmstate();
        self.read_states();
        self.read_dispatcher_scripts();
        self.read_units();
        self.add_service_units();
        self.dedupe();
        self.out.rules = std::mem::take(&mut self.rules).finish();
        self.out.units = self.units;
        self.out
    }

    /// Paths of the config's files under `dir`, sorted.
    fn paths_under(&self, dir: &str) -> Vec<String> {
        self.merged
            .files
            .keys()
            .filter(|p| p.starts_with(dir))
            .cloned()
            .collect()
    }

    /// Decode a file once; a failure becomes one diagnostic.
    pub(super) fn file(&mut self, path: &str) -> Option<NodeFile> {
        if let Some(done) = self.decoded.get(path) {
            return done.clone();
        }
        let file = self.merged.files.get(path)?;
        let decoded = match files::decode(file) {
            Ok(f) => Some(f),
            Err(e) => {
                self.error(format!("file {path}"), e.to_string());
                None
            }
        };
        self.decoded.insert(path.to_owned(), decoded.clone());
        decoded
    }

    pub(super) fn warn(&mut self, origin: impl Into<String>, message: impl Into<String>) {
        self.out.diagnostics.push(Diagnostic::warning(origin, message));
    }

    pub(super) fn error(&mut self, origin: impl Into<String>, message: impl Into<String>) {
        self.out.diagnostics.push(Diagnostic::error(origin, message));
    }

    /// Expect a unit (once).
    pub(super) fn add_unit(&mut self, unit: ExpectedUnit) {
        if !self.units.iter().any(|u| u.name == unit.name) {
            self.units.push(unit);
        }
    }

    pub(super) fn add_route(&mut self, spec: RouteSpec, source: Source, traits: Traits) {
        let route = self.expected(spec, source, traits);
        self.out.routes.push(route);
    }

    /// The expected route of a declaration, with the unit command being read.
    pub(super) fn expected(&mut self, spec: RouteSpec, source: Source, mut traits: Traits) -> ExpectedRoute {
        match traits.manager {
            Manager::NetworkManager => self.needs_nm = true,
            Manager::Nmstate => self.needs_nmstate = true,
            Manager::None => {}
        }
        traits.exec = traits.exec.or_else(|| self.exec.clone());
        spec.into_expected(source, traits)
    }

    /// Routes and problems of a file-based declaration.
    fn add_file_routes(&mut self, path: &str, found: FileRoutes, kind: SourceKind, traits: &Traits) {
        for (place, problem) in found.problems {
            self.error(format!("file {path}{place}"), problem);
        }
        for (place, spec) in found.routes {
            let source = Source {
                kind,
                origin: format!("file {path}{place}"),
                unit: None,
            };
            self.add_route(spec, source, traits.clone());
        }
    }

    fn read_tables(&mut self) {
        let mut paths = self.paths_under("/etc/iproute2/rt_tables.d/");
        paths.retain(|p| p.ends_with(".conf"));
        paths.insert(0, "/etc/iproute2/rt_tables".to_owned());
        for p in paths {
            if let Some(f) = self.file(&p) {
                self.tables.add_file(&f.text);
            }
        }
    }

    fn read_keyfiles(&mut self) {
        let paths: Vec<String> = KEYFILE_DIRS.iter().flat_map(|d| self.paths_under(d)).collect();
        for path in paths.into_iter().filter(|p| !keyfile::ignored_name(p)) {
            if let Some(f) = self.file(&path) {
                self.read_keyfile(&f);
            }
        }
    }

    fn read_keyfile(&mut self, f: &NodeFile) {
        let mut kf = keyfile::parse(&f.text, &self.tables);
        let refused = f.mode & 0o077 != 0;
        if refused {
            self.warn(
                format!("file {}", f.path),
                format!(
                    "mode {:04o}: NetworkManager ignores keyfiles that group or others can read or write; use mode 0600",
                    f.mode
                ),
            );
        }
        let mut traits = super::spec::traits(Manager::NetworkManager, false);
        traits.refused_mode = refused.then_some(f.mode);
        traits.keyfile = Some(f.path.clone());
        let names = kf.id.iter().chain(kf.uuid.iter()).cloned().collect();
        let basename = f.path.rsplit('/').next().unwrap_or_default();
        let mut names: Vec<String> = names;
        names.push(basename.trim_end_matches(".nmconnection").to_owned());
        names.push(f.path.clone());
        traits.declared_by = names.first().map(|n| format!("connection {n}"));
        self.connections.push(Connection {
            names,
            device: kf.interface_name.clone(),
            defaults: kf.defaults,
        });
        self.add_keyfile_rules(&f.path, std::mem::take(&mut kf.rules), &traits);
        let mut found = FileRoutes {
            routes: kf.routes.into_iter().map(|(l, r)| (Place::Line(l), r)).collect(),
            problems: kf
                .problems
                .into_iter()
                .map(|(l, p)| (Place::Line(l), p))
                .collect(),
        };
        if kf.autoconnect_off {
            let note =
                "the connection has autoconnect=false: the route is there only while it is activated by hand";
            found
                .routes
                .iter_mut()
                .for_each(|(_, r)| r.notes.push(note.to_owned()));
        }
        self.add_file_routes(&f.path, found, SourceKind::Keyfile, &traits);
    }

    fn read_ifcfg(&mut self) {
        for path in self.paths_under(ifcfg::DIR) {
            let Some((family, dev)) = ifcfg::classify(&path) else {
                continue;
            };
            let dev = dev.to_owned();
            if let Some(f) = self.file(&path) {
                let found = ifcfg::parse(&f.text, family, &dev, &self.tables);
                let traits = super::spec::traits(Manager::NetworkManager, false);
                self.add_file_routes(&path, found, SourceKind::Ifcfg, &traits);
            }
        }
    }

    fn read_nmstate(&mut self) {
        let host = self.options.short_host().map(str::to_owned);
        let mut per_host = Vec::new();
        for path in self.paths_under(nmstate::DIR) {
            let applies = nmstate::applies(&path, host.as_deref());
            if path.starts_with("/etc/nmstate/openshift/") && !path.ends_with("/cluster.yml") {
                per_host.push((path.clone(), applies == nmstate::Applies::Yes));
            }
            match applies {
                nmstate::Applies::Yes => self.read_nmstate_file(&path, None),
                nmstate::Applies::No(Some(why)) => self.warn(format!("file {path}"), why),
                _ => {}
            }
        }
        if !per_host.is_empty() && !per_host.iter().any(|(_, yes)| *yes) {
            let node = host.unwrap_or_else(|| "unknown".to_owned());
            self.warn(
                "/etc/nmstate/openshift/",
                format!("no per-host nmstate file matches this node (short name {node}); only cluster.yml applies here"),
            );
        }
    }

    pub(super) fn read_nmstate_file(&mut self, path: &str, unit: Option<&UnitName>) {
        let Some(f) = self.file(path) else { return };
        let found = nmstate::parse(&f.text);
        self.add_nmstate_rules(path, &f.text, unit);
        let traits = super::spec::traits(Manager::Nmstate, false);
        for (place, problem) in found.problems {
            self.error(format!("file {path}{place}"), problem);
        }
        for (place, spec) in found.routes {
            let source = Source {
                kind: SourceKind::Nmstate,
                origin: format!("file {path}{place}"),
                unit: unit.cloned(),
            };
            self.add_route(spec, source, traits.clone());
        }
    }

    fn read_dispatcher_scripts(&mut self) {
        for path in self.paths_under(DISPATCHER_DIR) {
            let Some(f) = self.file(&path) else { continue };
            let before = self.out.routes.len();
            self.begin_sequence();
            self.read_script(&f, &super::commands::Context::dispatcher(), 0);
            if self.out.routes.len() > before && f.mode & 0o111 == 0 {
                self.warn(
                    format!("file {path}"),
                    format!(
                        "mode {:04o}: NetworkManager runs only executable dispatcher scripts",
                        f.mode
                    ),
                );
            }
        }
    }

    fn read_units(&mut self) {
        let mut all: Vec<(String, super::document::Unit)> =
            std::mem::take(&mut self.merged.units).into_values().collect();
        for path in self.paths_under(UNIT_DIR) {
            let name = path[UNIT_DIR.len()..].to_owned();
            if name.contains('/') || all.iter().any(|(_, u)| u.name == name) || UnitName::new(&name).is_err()
            {
                continue;
            }
            if let Some(f) = self.file(&path) {
                let unit = super::document::Unit {
                    name,
                    contents: Some(f.text),
                    ..Default::default()
                };
                all.push((format!("file {path}"), unit));
            }
        }
        for (origin, unit) in all {
            self.read_unit(&origin, &unit);
        }
    }

    fn add_service_units(&mut self) {
        let mut wanted = Vec::new();
        if self.needs_nm || self.needs_nmstate {
            wanted.push(("NetworkManager.service", Expect::Active));
        }
        if self.needs_nmstate {
            wanted.push(("nmstate.service", Expect::Succeeded));
        }
        for (name, expect) in wanted {
            if let Ok(name) = UnitName::new(name) {
                self.add_unit(ExpectedUnit {
                    name,
                    enabled: None,
                    expect,
                });
            }
        }
    }

    /// One series per route in the metrics: keep the first declaration of a route.
    fn dedupe(&mut self) {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let routes = std::mem::take(&mut self.out.routes);
        for r in routes {
            let id = identity(&r);
            match seen.get(&id) {
                Some(&i) => {
                    let first = &mut self.out.routes[i];
                    first.notes.push(format!("also declared in {}", r.source.origin));
                    first.sources.push(r.source.clone());
                    if first.metric != r.metric {
                        let msg =
                            "route declared again with another metric; the first declaration is checked";
                        let d = Diagnostic::warning(r.source.origin.clone(), msg);
                        self.out
                            .diagnostics
                            .push(d.about(crate::model::Concern::Redeclared));
                    }
                }
                None => {
                    seen.insert(id, self.out.routes.len());
                    self.out.routes.push(r);
                }
            }
        }
    }
}

/// The labels a route's metric series carry.
fn identity(r: &ExpectedRoute) -> String {
    let gw = r.gateway.map(|g| g.to_string()).unwrap_or_default();
    let dev = r.device.as_ref().map(|d| d.to_string()).unwrap_or_default();
    format!("{}|{}|{gw}|{dev}|{}", r.family, r.destination, r.table)
}
