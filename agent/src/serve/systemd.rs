//! Daemon, systemd side: one task owns the D-Bus connection. It connects (with
//! backoff while the bus is away), reads when the node's boot began (once per
//! connection), subscribes to the expected units' changes, reads their state when
//! a signal arrives, and sends each new view to the main loop. While the bus is
//! gone, units are `unknown` and routes are still watched.

use std::time::Duration;

use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, watch};

use crate::compare::{SourceState, UnitsSeen};
use crate::model::{Boot, UnitName};
use crate::observe::units::Systemd;

/// What the task tells the main loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitsUpdate {
    /// The units' state, or why it is unknown.
    pub seen: UnitsSeen,
    /// The systemd source.
    pub source: SourceState,
    /// When the node's current boot began (read once per connection).
    pub boot: Option<Boot>,
}

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Signals closer together than this are read once.
const COALESCE: Duration = Duration::from_millis(20);

/// Run until the main loop goes away.
pub async fn run(
    address: Option<String>,
    mut names: watch::Receiver<Vec<UnitName>>,
    tx: mpsc::Sender<UnitsUpdate>,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let why = match Systemd::connect(address.as_deref()).await {
            Ok(sd) => {
                backoff = BACKOFF_MIN;
                match session(&sd, &mut names, &tx).await {
                    Ok(()) => return,
                    Err(why) => why,
                }
            }
            Err(e) => e.to_string(),
        };
        tracing::debug!(reason = %why, "systemd source down");
        let down = UnitsUpdate {
            seen: UnitsSeen::Unavailable(why.clone()),
            source: SourceState::Down(why),
            boot: None,
        };
        if tx.send(down).await.is_err() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            r = names.changed() => if r.is_err() { return },
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One connection's life. `Ok` when the main loop is gone; `Err(why)` when the
/// connection must be made again.
async fn session(
    sd: &Systemd,
    names: &mut watch::Receiver<Vec<UnitName>>,
    tx: &mpsc::Sender<UnitsUpdate>,
) -> Result<(), String> {
    let boot = sd.boot().await.map_err(|e| e.to_string())?;
    loop {
        let current = names.borrow_and_update().clone();
        let mut events = sd.watch(&current).await.map_err(|e| e.to_string())?;
        if !send_statuses(sd, &current, boot, tx).await? {
            return Ok(());
        }
        loop {
            tokio::select! {
                event = events.next() => {
                    if event.is_none() {
                        return Err(format!("connection to {} lost", sd.address()));
                    }
                    tokio::time::sleep(COALESCE).await;
                    while let Some(Some(_)) = events.next().now_or_never() {}
                    if !send_statuses(sd, &current, boot, tx).await? {
                        return Ok(());
                    }
                }
                r = names.changed() => {
                    if r.is_err() {
                        return Ok(());
                    }
                    break;
                }
            }
        }
    }
}

/// Read and send; `Ok(false)` when the main loop is gone.
async fn send_statuses(
    sd: &Systemd,
    names: &[UnitName],
    boot: Boot,
    tx: &mpsc::Sender<UnitsUpdate>,
) -> Result<bool, String> {
    let statuses = sd.statuses(names).await.map_err(|e| e.to_string())?;
    let update = UnitsUpdate {
        seen: UnitsSeen::Seen(statuses),
        source: SourceState::Up,
        boot: Some(boot),
    };
    Ok(tx.send(update).await.is_ok())
}
