//! `routewarden lint`: fragile route declarations caught before they roll out.
//! A command on top of the intent stage: files ([`inputs`]) -> documents -> one
//! [`declarations`](crate::intent::declarations::declarations) per pool (the
//! MachineConfigs of one `machineconfiguration.openshift.io/role`, merged as the
//! MCO merges them, or one rendered MachineConfig, plus the network states
//! `--node-labels` and `--node-name` select: [`select`]) -> the ten rules
//! ([`checks`]) -> findings named by file, line ([`locate`]) and pool -> text,
//! JSON, GitHub annotations or SARIF ([`output`]).
//!
//! Rule IDs are a contract; each has a page in `docs/lint/`.

pub mod checks;
pub mod inputs;
pub mod locate;
pub mod output;
pub mod select;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::intent::declarations::declarations;
use crate::intent::document::{Config, NetworkState};

pub use inputs::{Input, InputError};
use select::Group;
pub use select::HOSTNAME_LABEL;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Likely to lose a route some day.
    Warning,
    /// The route will not be there.
    Error,
}

impl Level {
    /// `warning` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// One rule: its ID, level and words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// `RW001`...
    pub id: &'static str,
    /// Level of its findings.
    pub level: Level,
    /// A short name (SARIF `name`).
    pub name: &'static str,
    /// One sentence.
    pub summary: &'static str,
}

/// The ten rules, in ID order.
pub const RULES: [Rule; 10] = [
    Rule { id: "RW001", level: Level::Warning, name: "NonPersistentNmcli", summary: "Route declared with nmcli device modify (or --temporary): lost when the device is re-activated." },
    Rule { id: "RW002", level: Level::Warning, name: "UnitNotOrderedAfterNetworkManager", summary: "A unit that declares routes through NetworkManager is not ordered after it, or orders after network-online.target without pulling it in." },
    Rule { id: "RW003", level: Level::Error, name: "KeyfileModeRefused", summary: "A NetworkManager keyfile whose mode NetworkManager refuses (group or others may read it)." },
    Rule { id: "RW004", level: Level::Error, name: "NmstateFileNeverApplied", summary: "An nmstate file that nmstate.service never applies (.yaml, a fully qualified host name)." },
    Rule { id: "RW005", level: Level::Warning, name: "NotLiteral", summary: "A route or rule whose text is not literal (variables, substitutions, specifiers): it cannot be verified." },
    Rule { id: "RW006", level: Level::Warning, name: "ConflictingDeclarations", summary: "Two declarations of one destination and table disagree, or a later MachineConfig replaces a file or unit that declared routes." },
    Rule { id: "RW007", level: Level::Warning, name: "TableWithoutRule", summary: "A route in a table other than main/local that no declared rule selects." },
    Rule { id: "RW008", level: Level::Warning, name: "GatewayOffSubnet", summary: "A gateway on no subnet declared for its device." },
    Rule { id: "RW009", level: Level::Error, name: "UnitNeverStarted", summary: "A unit that declares routes is never started (disabled, masked, or no [Install] section and nothing wants it)." },
    Rule { id: "RW010", level: Level::Error, name: "NncpRouteOnBrEx", summary: "An NNCP route whose next-hop-interface is br-ex, which OpenShift does not support." },
];

/// The rule with this ID.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    /// The input file (`-` for stdin).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// Rule ID.
    pub rule: &'static str,
    /// Level.
    pub level: Level,
    /// The pool (`worker`), when the finding comes from MachineConfigs.
    pub pool: Option<String>,
    /// What and how to fix it, in plain words (never file contents).
    pub message: String,
}

/// What `lint` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Findings, by file and line.
    pub findings: Vec<Finding>,
    /// Files read.
    pub files: usize,
    /// Pools evaluated (`worker`; `worker (rendered-worker-HASH)` for a rendered
    /// MachineConfig; `-` for configs without a pool).
    pub pools: Vec<String>,
    /// Documents skipped (neither MachineConfig, Ignition nor network state).
    pub skipped: usize,
}

impl Report {
    /// Findings at this level or above.
    pub fn at_least(&self, level: Level) -> usize {
        self.findings.iter().filter(|f| f.level >= level).count()
    }
}

/// Lint the inputs. `labels` selects NodeNetworkConfigurationPolicies (all when
/// None); `node_name` picks per-host nmstate files and is the node's
/// [`HOSTNAME_LABEL`]: a policy whose `nodeSelector` names another host never
/// applies, with or without `labels` (a hostname in `labels` wins).
pub fn run(inputs: &[Input], labels: Option<BTreeMap<String, String>>, node_name: Option<String>) -> Report {
    let (options, hostname) = select::node_options(labels, node_name);
    let mut report = Report {
        files: inputs.len(),
        skipped: inputs.iter().map(|i| i.docs.skipped).sum(),
        ..Report::default()
    };
    let mut pools: BTreeMap<Group, Vec<(usize, Config)>> = BTreeMap::new();
    let mut states: Vec<(usize, NetworkState)> = Vec::new();
    for (f, input) in inputs.iter().enumerate() {
        for c in &input.docs.configs {
            pools.entry(Group::of(c)).or_default().push((f, c.clone()));
        }
        let on_this_host = |s: &&NetworkState| select::names_host(s, hostname.as_deref());
        states.extend(
            input
                .docs
                .states
                .iter()
                .filter(on_this_host)
                .map(|s| (f, s.clone())),
        );
    }
    if pools.is_empty() {
        pools.insert(Group::default(), Vec::new());
    }
    let plain_states: Vec<NetworkState> = states.iter().map(|(_, s)| s.clone()).collect();
    for (group, configs) in pools {
        let plain: Vec<Config> = configs.iter().map(|(_, c)| c.clone()).collect();
        let decl = declarations(&plain, &plain_states, &options);
        let locator = locate::Locator::new(inputs, &configs, &states, &decl.writers);
        let pool = checks::Pool {
            name: group.pool.clone(),
            decl: &decl,
            configs: &plain,
            options: &options,
        };
        for found in checks::check(&pool) {
            let (file, line, in_pool) = locator.place(&found.anchor);
            let rule = rule(found.rule).map(|r| r.level).unwrap_or(Level::Warning);
            report.findings.push(Finding {
                file,
                line,
                rule: found.rule,
                level: rule,
                pool: if in_pool { group.pool.clone() } else { None },
                message: found.message,
            });
        }
        report.pools.push(group.label());
    }
    report.findings.sort();
    report.findings.dedup();
    report
}
