//! `routewarden check`: one evaluation. Reads NetworkManager's view (its routes
//! join the intent), then the routing table (streaming, only what can match),
//! the routing rules, the links and the expected units, each source on its own:
//! a dead D-Bus leaves units unknown and routes checked. systemd and
//! NetworkManager share one bus connection. `expected` uses the first step alone
//! ([`with_networkmanager`]).

use std::collections::HashSet;

use crate::compare::{compare, DriftReport, Observed, RouteIndex, SourceState, Sources, UnitsSeen};
use crate::intent::networkmanager::{expected, merge};
use crate::model::{Boot, Diagnostic, Intent, NmView, RouteKey, UnitName};
use crate::observe::networkmanager::{NetworkManager, NmError};
use crate::observe::routes::{self, RouteError};
use crate::observe::units::Systemd;
use crate::remediate::{self, state::Record};

/// How to reach systemd and NetworkManager, and which to ask.
#[derive(Debug, Clone, Default)]
pub struct UnitsConfig {
    /// D-Bus address (else the environment's, else the system bus).
    pub dbus_address: Option<String>,
    /// Skip systemd.
    pub no_units: bool,
    /// Skip NetworkManager.
    pub no_networkmanager: bool,
}

/// Where the expected routes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntentFrom {
    /// The MachineConfig was read (else the intent given is empty, and the
    /// source is reported skipped).
    pub machineconfig: bool,
    /// NetworkManager's routes join the intent.
    pub networkmanager: bool,
}

impl Default for IntentFrom {
    fn default() -> Self {
        IntentFrom {
            machineconfig: true,
            networkmanager: true,
        }
    }
}

/// The routing table or rules could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Netlink failed.
    #[error(transparent)]
    Routes(#[from] RouteError),
    /// A dump's thread died.
    #[error("the route or rule dump task failed: {0}")]
    Task(String),
}

/// Evaluate once; `machineconfig` is how reading the MachineConfig went (up, or
/// absent with an empty intent). Each route that is not present says what
/// remediation would do, with the daemon's `record` of its last attempt when
/// given. `Err` only when the routing table or rules cannot be read.
pub async fn run(
    intent: &Intent,
    machineconfig: SourceState,
    units: &UnitsConfig,
    from: IntentFrom,
    record: Option<&Record>,
) -> Result<DriftReport, CheckError> {
    let bus = Bus::connect(units).await;
    let (view, networkmanager) = read_view(&bus, units).await;
    let intent = match (&view, from.networkmanager) {
        (Some(view), true) => merge(intent.clone(), expected(view)),
        _ => intent.clone(),
    };
    let wanted: HashSet<RouteKey> = intent.routes.iter().map(|r| r.key()).collect();
    let dump = tokio::task::spawn_blocking(move || routes::dump_routes(&wanted));
    let rules = tokio::task::spawn_blocking(routes::dump_rules);
    let names: Vec<UnitName> = intent.units.iter().map(|u| u.name.clone()).collect();
    let (links, (seen, systemd, boot)) = tokio::join!(routes::dump_links(), read_units(&bus, units, &names));
    let dump = dump.await.map_err(|e| CheckError::Task(e.to_string()))??;
    let rules = rules.await.map_err(|e| CheckError::Task(e.to_string()))??;
    let index = RouteIndex::from_routes(dump.routes);
    let links = links.ok();
    let sources = Sources {
        machineconfig: if from.machineconfig {
            machineconfig
        } else {
            SourceState::Skipped
        },
        netlink: SourceState::Up,
        systemd,
        networkmanager,
    };
    let seen = Observed {
        routes: &index,
        rules: &rules,
        links: links.as_deref(),
        units: &seen,
        networkmanager: view.as_ref(),
        boot,
    };
    let mut report = compare(&intent, seen, sources);
    remediate::state::annotate(&mut report, view.as_ref(), record);
    Ok(report)
}

/// The intent with NetworkManager's routes joined (`expected`); when it cannot
/// be asked, the intent as given plus a warning saying why.
pub async fn with_networkmanager(intent: Intent, units: &UnitsConfig) -> Intent {
    let bus = Bus::connect(&UnitsConfig {
        no_units: true,
        ..units.clone()
    })
    .await;
    match read_view(&bus, units).await {
        (Some(view), _) => merge(intent, expected(&view)),
        (None, SourceState::Down(why)) => {
            let mut intent = intent;
            let message = format!(
                "{why}; its routes are not listed (--intent machineconfig to read the MachineConfig alone)"
            );
            intent
                .diagnostics
                .push(Diagnostic::warning("NetworkManager", message));
            intent
        }
        (None, _) => intent,
    }
}

/// The bus connection systemd and NetworkManager share, or why there is none.
enum Bus {
    /// Neither is asked.
    Skipped,
    /// Connected (through systemd's side when units are asked).
    Up(Option<Systemd>, NetworkManager),
    /// The bus could not be reached.
    Down(String),
}

impl Bus {
    async fn connect(config: &UnitsConfig) -> Bus {
        let address = config.dbus_address.as_deref();
        match (config.no_units, config.no_networkmanager) {
            (true, true) => Bus::Skipped,
            (false, _) => match Systemd::connect(address).await {
                Ok(sd) => {
                    let nm = NetworkManager::on(sd.connection().clone(), sd.address());
                    Bus::Up(Some(sd), nm)
                }
                Err(e) => Bus::Down(e.to_string()),
            },
            (true, false) => match NetworkManager::connect(address).await {
                Ok(nm) => Bus::Up(None, nm),
                Err(e) => Bus::Down(e.to_string()),
            },
        }
    }
}

async fn read_view(bus: &Bus, config: &UnitsConfig) -> (Option<NmView>, SourceState) {
    if config.no_networkmanager {
        return (None, SourceState::Skipped);
    }
    let nm = match bus {
        Bus::Up(_, nm) => nm,
        Bus::Down(why) => return (None, SourceState::Down(why.clone())),
        Bus::Skipped => return (None, SourceState::Skipped),
    };
    match nm.view().await {
        Ok(view) => (Some(view), SourceState::Up),
        Err(NmError::NotRunning { .. }) if !nm.installed().await => (None, SourceState::Absent),
        Err(e) => (None, SourceState::Down(e.to_string())),
    }
}

async fn read_units(
    bus: &Bus,
    config: &UnitsConfig,
    names: &[UnitName],
) -> (UnitsSeen, SourceState, Option<Boot>) {
    if config.no_units {
        return (UnitsSeen::Skipped, SourceState::Skipped, None);
    }
    let result = match bus {
        Bus::Up(Some(sd), _) => match sd.statuses(names).await {
            Ok(statuses) => sd.boot().await.map(|boot| (statuses, boot)),
            Err(e) => Err(e),
        }
        .map_err(|e| e.to_string()),
        Bus::Down(why) => Err(why.clone()),
        Bus::Up(None, _) | Bus::Skipped => return (UnitsSeen::Skipped, SourceState::Skipped, None),
    };
    match result {
        Ok((statuses, boot)) => (UnitsSeen::Seen(statuses), SourceState::Up, Some(boot)),
        Err(why) => (UnitsSeen::Unavailable(why.clone()), SourceState::Down(why), None),
    }
}
