//! `routewarden check`: one evaluation. Reads the routing table (streaming, only
//! what can match), the routing rules, the links and the expected units, each
//! source on its own: a dead D-Bus leaves units unknown and routes checked.

use std::collections::HashSet;

use crate::compare::{compare, DriftReport, Observed, RouteIndex, SourceState, Sources, UnitsSeen};
use crate::model::{Intent, RouteKey, UnitName};
use crate::observe::routes::{self, RouteError};
use crate::observe::units::Systemd;

/// How to reach systemd.
#[derive(Debug, Clone, Default)]
pub struct UnitsConfig {
    /// D-Bus address (else the environment's, else the system bus).
    pub dbus_address: Option<String>,
    /// Skip systemd.
    pub no_units: bool,
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

/// Evaluate once. `Err` only when the routing table or rules cannot be read.
pub async fn run(intent: &Intent, units: &UnitsConfig) -> Result<DriftReport, CheckError> {
    let wanted: HashSet<RouteKey> = intent.routes.iter().map(|r| r.key()).collect();
    let dump = tokio::task::spawn_blocking(move || routes::dump_routes(&wanted));
    let rules = tokio::task::spawn_blocking(routes::dump_rules);
    let names: Vec<UnitName> = intent.units.iter().map(|u| u.name.clone()).collect();
    let (links, (seen, systemd)) = tokio::join!(routes::dump_links(), read_units(&names, units));
    let dump = dump.await.map_err(|e| CheckError::Task(e.to_string()))??;
    let rules = rules.await.map_err(|e| CheckError::Task(e.to_string()))??;
    let index = RouteIndex::from_routes(dump.routes);
    let links = links.ok();
    let sources = Sources {
        machineconfig: SourceState::Up,
        netlink: SourceState::Up,
        systemd,
    };
    Ok(compare(
        intent,
        Observed {
            routes: &index,
            rules: &rules,
            links: links.as_deref(),
            units: &seen,
        },
        sources,
    ))
}

async fn read_units(names: &[UnitName], config: &UnitsConfig) -> (UnitsSeen, SourceState) {
    if config.no_units {
        return (UnitsSeen::Skipped, SourceState::Skipped);
    }
    let result = match Systemd::connect(config.dbus_address.as_deref()).await {
        Ok(sd) => sd.statuses(names).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(statuses) => (UnitsSeen::Seen(statuses), SourceState::Up),
        Err(e) => (
            UnitsSeen::Unavailable(e.to_string()),
            SourceState::Down(e.to_string()),
        ),
    }
}
