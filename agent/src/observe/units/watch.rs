//! Observe stage, systemd side: change signals of the expected units.
//!
//! One match rule per unit object path (`PropertiesChanged`, on both the `...Unit`
//! and `...Service` interfaces) and two on the manager (`UnitFilesChanged`, the end
//! of a `Reloading`), merged into one stream that ends when the connection does.

use std::collections::BTreeMap;
use std::future::ready;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::{self, BoxStream, SelectAll, Stream, StreamExt};
use futures::FutureExt;
use zbus::message::{Message, Type};
use zbus::{Connection, MatchRule, MessageStream};

use super::proxy::{MANAGER_INTERFACE, MANAGER_PATH, SYSTEMD_SERVICE};
use crate::model::UnitName;

/// Something that may have changed the state of watched units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitEvent {
    /// Properties of this unit changed: `ActiveState`/`SubState` (on
    /// `org.freedesktop.systemd1.Unit`) or `Result`/`ExecMain*` (on
    /// `org.freedesktop.systemd1.Service`).
    Changed(UnitName),
    /// systemd finished reloading, or unit files changed (enable, disable, mask):
    /// any watched unit may have a new `UnitFileState` or `LoadState`, and systemd
    /// sends no `PropertiesChanged` for those. Re-read every watched unit.
    Reloaded,
}

/// A stream of [`UnitEvent`]s for a set of units, from
/// [`Systemd::watch`](super::Systemd::watch).
///
/// It yields an event per change signal and carries no state: read the units
/// again with [`Systemd::statuses`](super::Systemd::statuses) when one arrives.
/// Signals come in bursts (starting a oneshot sends about ten):
/// [`UnitWatch::next_batch`] takes a burst at once. The watch ends (yields `None`)
/// when the D-Bus connection is gone, and only then: mark the units unknown,
/// reconnect with backoff, and watch again. Poll it continuously (zbus queues a
/// bounded number of signals per match rule).
pub struct UnitWatch {
    events: SelectAll<BoxStream<'static, UnitEvent>>,
}

impl std::fmt::Debug for UnitWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnitWatch")
            .field("streams", &self.events.len())
            .finish()
    }
}

impl UnitWatch {
    /// Wait for the next event, then take every event already received too, each
    /// once (so one burst of signals means one re-read). `None` when the
    /// connection is gone.
    pub async fn next_batch(&mut self) -> Option<Vec<UnitEvent>> {
        let mut batch = vec![self.next().await?];
        while let Some(Some(event)) = self.next().now_or_never() {
            if !batch.contains(&event) {
                batch.push(event);
            }
        }
        Some(batch)
    }
}

impl Stream for UnitWatch {
    type Item = UnitEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<UnitEvent>> {
        self.events.poll_next_unpin(cx)
    }
}

/// Which names each watched object path stands for (an alias and its unit share
/// one object).
pub(crate) type PathNames = BTreeMap<String, Vec<UnitName>>;

/// The object paths to watch: each unit's own (`UnitName::object_path`) and the
/// one systemd answered for it (an alias answers with its unit's), with the names
/// each stands for.
pub(crate) fn watched_paths(units: &[UnitName], canonical: &[String]) -> PathNames {
    let own = units.iter().map(|u| (u.object_path(), u));
    let answered = canonical.iter().cloned().zip(units);
    let mut paths = PathNames::new();
    for (path, name) in own.chain(answered) {
        let names = paths.entry(path).or_default();
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    paths
}

/// Register the match rules; the caller subscribes afterwards, so no signal sent
/// after the subscription is missed.
pub(crate) async fn match_streams(conn: &Connection, paths: PathNames) -> zbus::Result<UnitWatch> {
    let mut events = SelectAll::new();
    for (path, names) in paths {
        let rule = signal_rule(&path, "org.freedesktop.DBus.Properties", "PropertiesChanged")?;
        let signals = MessageStream::for_match_rule(rule, conn, None).await?;
        events.push(unit_events(signals, names));
    }
    for member in ["UnitFilesChanged", "Reloading"] {
        let rule = signal_rule(MANAGER_PATH, MANAGER_INTERFACE, member)?;
        let signals = MessageStream::for_match_rule(rule, conn, None).await?;
        events.push(manager_events(signals));
    }
    Ok(UnitWatch { events })
}

/// Signals from systemd on one object, interface and member.
fn signal_rule(
    path: &str,
    interface: &'static str,
    member: &'static str,
) -> zbus::Result<MatchRule<'static>> {
    let rule = MatchRule::builder()
        .msg_type(Type::Signal)
        .sender(SYSTEMD_SERVICE)
        .path(path.to_owned())
        .interface(interface)
        .member(member)
        .build()?;
    Ok(rule.to_owned())
}

/// One [`UnitEvent::Changed`] per name of the object, for each signal.
fn unit_events(signals: MessageStream, names: Vec<UnitName>) -> BoxStream<'static, UnitEvent> {
    signals
        .filter_map(|msg| ready(msg.ok()))
        .flat_map(move |_| stream::iter(names.clone().into_iter().map(UnitEvent::Changed)))
        .boxed()
}

/// [`UnitEvent::Reloaded`] for each `UnitFilesChanged` and each `Reloading(false)`.
fn manager_events(signals: MessageStream) -> BoxStream<'static, UnitEvent> {
    signals
        .filter_map(|msg| ready(msg.ok().filter(reload_done).map(|_| UnitEvent::Reloaded)))
        .boxed()
}

/// False only for `Reloading(true)`: the reload has begun, its result is not in yet.
fn reload_done(msg: &Message) -> bool {
    let header = msg.header();
    if header.member().map(|m| m.as_str()) != Some("Reloading") {
        return true;
    }
    msg.body().deserialize::<bool>().is_ok_and(|active| !active)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alias_is_watched_on_its_own_path_and_its_units() {
        let alias = UnitName::new("dbus-org.example.service").expect("valid");
        let unit = UnitName::new("example.service").expect("valid");
        let canonical = [unit.object_path(), unit.object_path()];
        let paths = watched_paths(&[alias.clone(), unit.clone()], &canonical);
        assert_eq!(paths.len(), 2);
        assert_eq!(paths[&alias.object_path()], std::slice::from_ref(&alias));
        assert_eq!(paths[&unit.object_path()], [unit, alias]);
    }
}
