//! Daemon, NetworkManager side: one task owns a bus connection for it. It
//! connects (with backoff while the bus is away), subscribes to NetworkManager's
//! signals, reads the whole view once, then re-reads only what each batch of
//! signals names, and sends each new view to the main loop. Nothing is read per
//! route and nothing at scrape time. NetworkManager leaving the bus makes the
//! source down with the reason; its coming back is a signal too, and the view is
//! read again. Routes are watched all along.

use std::time::Duration;

use futures::FutureExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Config;
use crate::compare::SourceState;
use crate::intent::networkmanager::{self as nm_intent, NmIntent};
use crate::model::NmView;
use crate::observe::networkmanager::{NetworkManager, NmError, NmEvent, Tracker};

/// What the task tells the main loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NmUpdate {
    /// The view, when it could be read.
    pub view: Option<NmView>,
    /// The networkmanager source.
    pub source: SourceState,
}

/// What the daemon keeps of NetworkManager between its updates.
pub(super) struct NmState {
    pub(super) rx: mpsc::Receiver<NmUpdate>,
    pub(super) task: Option<JoinHandle<()>>,
    /// The view, while the source is up.
    pub(super) view: Option<NmView>,
    /// The routes it declares: the last good ones, kept while it is down (its
    /// routes stay watched and their series stay).
    pub(super) intent: NmIntent,
    pub(super) source: SourceState,
}

impl NmState {
    pub(super) fn start(config: &Config) -> NmState {
        let (tx, rx) = mpsc::channel(16);
        let task = (!config.no_networkmanager).then(|| tokio::spawn(run(config.dbus_address.clone(), tx)));
        let source = match task {
            Some(_) => SourceState::Down(super::report_log::NOT_CONNECTED.into()),
            None => SourceState::Skipped,
        };
        NmState {
            rx,
            task,
            view: None,
            intent: NmIntent::default(),
            source,
        }
    }

    /// Wait a little for the first update and take it; true when it brought routes.
    pub(super) async fn first(&mut self, declares: bool) -> bool {
        if self.task.is_none() {
            return false;
        }
        match tokio::time::timeout(FIRST_WAIT, self.rx.recv()).await {
            Ok(Some(update)) => self.update(update, declares),
            _ => false,
        }
    }

    /// True when an update says what the last one said (a signal that changed
    /// nothing routewarden reads): no evaluation is needed.
    pub(super) fn unchanged(&self, update: &NmUpdate) -> bool {
        self.source == update.source && self.view == update.view
    }

    /// Take an update; true when the routes NetworkManager declares changed.
    pub(super) fn update(&mut self, update: NmUpdate, declares: bool) -> bool {
        self.source = update.source;
        self.view = update.view;
        let Some(view) = self.view.as_ref().filter(|_| declares) else {
            return false;
        };
        let intent = nm_intent::expected(view);
        let changed = intent != self.intent;
        self.intent = intent;
        changed
    }
}

/// How long the daemon's startup waits for the first view.
const FIRST_WAIT: Duration = Duration::from_secs(6);
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Signals closer together than this are read once.
const COALESCE: Duration = Duration::from_millis(20);

/// Run until the main loop goes away.
pub async fn run(address: Option<String>, tx: mpsc::Sender<NmUpdate>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let why = match NetworkManager::connect(address.as_deref()).await {
            Ok(nm) => {
                backoff = BACKOFF_MIN;
                match session(&nm, &tx).await {
                    Ok(()) => return,
                    Err(why) => why,
                }
            }
            Err(e) => e.to_string(),
        };
        tracing::debug!(reason = %why, "networkmanager source down");
        if !send(&tx, None, SourceState::Down(why)).await {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One bus connection's life. `Ok` when the main loop is gone; `Err(why)` when
/// the connection must be made again.
async fn session(nm: &NetworkManager, tx: &mpsc::Sender<NmUpdate>) -> Result<(), String> {
    let mut watch = nm.watch().await.map_err(|e| e.to_string())?;
    let mut tracker = Tracker::default();
    let mut retry: Option<Duration> = None;
    let mut outcome = reload(nm, &mut tracker).await;
    loop {
        match outcome {
            Outcome::Closed(why) => return Err(why),
            Outcome::Read => retry = None,
            Outcome::NotRunning(_) | Outcome::NotInstalled => retry = None,
            Outcome::Failed(_) => retry = Some(retry.map_or(BACKOFF_MIN, |d| (d * 2).min(BACKOFF_MAX))),
        }
        if !report(tx, &tracker, &outcome).await {
            return Ok(());
        }
        let events = tokio::select! {
            events = watch.next_batch() => match events {
                Some(events) => events,
                None => return Err(format!("connection to {} lost", nm.address())),
            },
            _ = sleep_opt(retry) => vec![NmEvent::Started],
        };
        tokio::time::sleep(COALESCE).await;
        let mut events = events;
        while let Some(Some(more)) = watch.next_batch().now_or_never() {
            events.extend(more);
        }
        outcome = if events
            .iter()
            .any(|e| matches!(e, NmEvent::Started | NmEvent::Gone))
            || retry.is_some()
        {
            reload(nm, &mut tracker).await
        } else {
            sort(tracker.apply(nm, &events).await)
        };
    }
}

/// How a read went.
enum Outcome {
    /// The view is current.
    Read,
    /// NetworkManager is not on the bus: wait for it to come back.
    NotRunning(String),
    /// Not on the bus, and not installed: the source is absent.
    NotInstalled,
    /// A call failed otherwise: try again after a while.
    Failed(String),
    /// The bus connection is gone.
    Closed(String),
}

fn sort(result: Result<(), NmError>) -> Outcome {
    match result {
        Ok(()) => Outcome::Read,
        Err(e) if e.is_closed() => Outcome::Closed(e.to_string()),
        Err(e @ NmError::NotRunning { .. }) => Outcome::NotRunning(e.to_string()),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// Everything again, if NetworkManager is on the bus.
async fn reload(nm: &NetworkManager, tracker: &mut Tracker) -> Outcome {
    match nm.running().await {
        Ok(true) => sort(tracker.reload(nm).await),
        Ok(false) if !nm.installed().await => Outcome::NotInstalled,
        Ok(false) => Outcome::NotRunning(
            NmError::NotRunning {
                address: nm.address().to_owned(),
            }
            .to_string(),
        ),
        Err(e) => sort(Err(e)),
    }
}

/// Tell the main loop; false when it is gone.
async fn report(tx: &mpsc::Sender<NmUpdate>, tracker: &Tracker, outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Read => send(tx, Some(tracker.view()), SourceState::Up).await,
        Outcome::NotInstalled => send(tx, None, SourceState::Absent).await,
        Outcome::NotRunning(why) | Outcome::Failed(why) | Outcome::Closed(why) => {
            send(tx, None, SourceState::Down(why.clone())).await
        }
    }
}

async fn send(tx: &mpsc::Sender<NmUpdate>, view: Option<NmView>, source: SourceState) -> bool {
    tx.send(NmUpdate { view, source }).await.is_ok()
}

async fn sleep_opt(after: Option<Duration>) {
    match after {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
