//! The daemon's event loop and the state it keeps between events. The intent side
//! (reading the MachineConfig, watching its files, SIGHUP) is in [`intent`].

mod intent;
mod remediation;

pub use remediation::RemediationConfig;

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::signal::unix::Signal;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::changes::{keeps, link_flips};
use super::index::{self, Applied, Insert};
use super::networkmanager::{NmState, NmUpdate};
use super::report_log::ReportLog;
use super::rules::{self, RuleView};
use super::systemd::{self, UnitsUpdate};
use super::{mcwatch::FileWatch, Config};
use crate::compare::{compare, Observed, RouteIndex, SourceState, Sources, UnitsSeen};
use crate::intent::networkmanager as nm_intent;
use crate::model::{Boot, Intent, Link, ObservedRule, RouteKey, UnitName};
use crate::observe::routes::{self, Event, NexthopTable, RouteDump, RouteError, Wanted, Watcher};
use crate::publish::metrics::{CauseLabels, Metrics, Snapshot};

/// Events taken from the socket at once; one evaluation per batch.
const BATCH: usize = 4096;
/// Under sustained overruns a full re-read waits until none came for this long:
/// at most one is in flight, and none follows another while the storm lasts.
const STORM_QUIET: Duration = Duration::from_millis(250);

/// The netlink source before the first dump (which the startup does itself).
const NOT_READ: &str = "not read yet";

/// A full re-read: the routing table and, in the same task, the rules.
struct Reread {
    routes: Result<RouteDump, RouteError>,
    rules: Result<Vec<ObservedRule>, String>,
    /// [`RuleView::mark`] when it began.
    rules_mark: u64,
}

type DumpTask = JoinHandle<Reread>;

pub(super) struct Daemon {
    config: Config,
    metrics: Arc<Metrics>,
    snapshots: watch::Sender<Option<Arc<Snapshot>>>,
    intent: Arc<Intent>,
    wanted: Arc<HashSet<RouteKey>>,
    machineconfig: SourceState,
    routes: RouteIndex,
    /// Next-hop objects, which routes added with `nhid` forward through.
    nexthops: NexthopTable,
    netlink: SourceState,
    /// Every policy-routing rule, re-read on rule notifications and with each dump.
    rules: RuleView,
    links: Option<Vec<Link>>,
    units: UnitsSeen,
    systemd: SourceState,
    boot: Option<Boot>,
    unit_names: watch::Sender<Vec<UnitName>>,
    units_rx: mpsc::Receiver<UnitsUpdate>,
    units_task: Option<JoinHandle<()>>,
    /// The MachineConfig's intent (last good); `intent` is it joined with NetworkManager's.
    mc_intent: Intent,
    nm: NmState,
    watcher: Watcher,
    file_watch: Option<FileWatch>,
    hangup: Option<Signal>,
    dump: Option<(DumpTask, Instant)>,
    /// Route events seen while a dump runs, applied on top of its result.
    replay: Vec<Event>,
    /// A dump to start when the running one ends.
    queued: Option<&'static str>,
    /// When the watcher last reported lost notifications.
    last_overrun: Option<Instant>,
    /// A re-read for an overrun, held back while overruns go on.
    storm_dump: Option<Instant>,
    /// What was last logged of the sources and the drift.
    log: ReportLog,
    remediation: remediation::Remediation,
}

impl Daemon {
    pub(super) async fn start(
        config: Config,
        metrics: Arc<Metrics>,
        snapshots: watch::Sender<Option<Arc<Snapshot>>>,
    ) -> anyhow::Result<Daemon> {
        let watcher = Watcher::new()?;
        let (unit_names, names_rx) = watch::channel(Vec::new());
        let (units_tx, units_rx) = mpsc::channel(16);
        let units_task = (!config.no_units)
            .then(|| tokio::spawn(systemd::run(config.dbus_address.clone(), names_rx, units_tx)));
        let (units, systemd) = if config.no_units {
            (UnitsSeen::Skipped, SourceState::Skipped)
        } else {
            let why = super::report_log::NOT_CONNECTED.to_owned();
            (UnitsSeen::Unavailable(why.clone()), SourceState::Down(why))
        };
        let nm = NmState::start(&config);
        let mut d = Daemon {
            mc_intent: Intent::default(),
            nm,
            file_watch: None,
            hangup: intent::hangup_signal(),
            boot: None,
            intent: Arc::new(Intent::default()),
            wanted: Arc::new(HashSet::new()),
            machineconfig: SourceState::Down("not read yet".into()),
            routes: RouteIndex::default(),
            nexthops: NexthopTable::default(),
            netlink: SourceState::Down(NOT_READ.into()),
            rules: RuleView::default(),
            links: None,
            units,
            systemd,
            unit_names,
            units_rx,
            units_task,
            watcher,
            dump: None,
            replay: Vec::new(),
            queued: None,
            last_overrun: None,
            storm_dump: None,
            log: ReportLog::default(),
            remediation: remediation::Remediation::new(&config.remediation),
            config,
            metrics,
            snapshots,
        };
        if d.config.intent_machineconfig {
            d.watch_file();
            d.reload_intent();
        } else {
            d.machineconfig = SourceState::Skipped;
        }
        d.first_networkmanager().await;
        d.start_dump("startup");
        d.finish_dump().await;
        d.refresh_links().await;
        d.first_units().await;
        d.evaluate();
        Ok(d)
    }

    pub(super) async fn run(mut self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        let mut resync = tokio::time::interval(self.config.resync_interval);
        resync.set_missed_tick_behavior(MissedTickBehavior::Delay);
        resync.reset();
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                batch = self.watcher.next_batch(BATCH) => self.on_events(batch).await,
                () = at(self.storm_dump) => {
                    self.storm_dump = None;
                    self.start_dump("overrun");
                }
                Some(update) = self.units_rx.recv() => self.on_units(update),
                Some(update) = self.nm.rx.recv() => self.on_networkmanager(update),
                changed = file_changed(&mut self.file_watch) => self.on_file(changed).await,
                Some(()) = intent::hangup(&mut self.hangup) => self.on_hangup(),
                done = dump_done(&mut self.dump) => self.on_dump(done),
                done = remediation::action_done(&mut self.remediation.running) => self.on_action_done(done),
                () = at(self.remediation.wake) => {
                    self.remediation.wake = None;
                    self.evaluate();
                }
                _ = resync.tick() => self.on_resync(),
            }
        }
        if self.dump.is_some() {
            tracing::info!("stopping while the routing table is being read; the read is abandoned");
        }
        if let Some(task) = self.units_task.take() {
            task.abort();
        }
        if let Some(task) = self.nm.task.take() {
            task.abort();
        }
        Ok(())
    }

    async fn on_events(&mut self, batch: Result<Vec<Event>, RouteError>) {
        let events = match batch {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %e, kind = e.kind(), "reading route notifications failed; re-reading the table");
                self.start_dump("overrun");
                return;
            }
        };
        let notifications = events.len() as u64 + self.watcher.take_skipped();
        self.metrics.route_events.inc_by(notifications);
        let mut changed = false;
        let mut links_dirty = false;
        let mut rules_dirty = false;
        for event in events {
            match &event {
                Event::RouteAdded { .. } | Event::RouteRemoved(_) | Event::Nexthop { .. } => {
                    changed |= self.apply_route(&event)
                }
                Event::Link { .. } | Event::LinkRemoved { .. } | Event::Address { removed: false, .. } => {
                    links_dirty = true
                }
                // Removing an IPv4 address flushes the routes it made reachable,
                // silently (`nmcli connection up` does it to every route of the
                // device): re-read them. IPv6 announces its removals, and a
                // pod's veth going takes an IPv6 link-local address with it.
                Event::Address {
                    removed: true, ipv4, ..
                } => {
                    links_dirty = true;
                    if *ipv4 {
                        self.start_dump("address");
                    }
                }
                Event::Overrun => self.on_overrun(),
                Event::Rule { .. } => rules_dirty = true,
            }
            if self.dump.is_some() && keeps(&event, &self.wanted) {
                self.replay.push(event);
            }
        }
        if links_dirty {
            changed |= self.on_links_changed().await;
        }
        if rules_dirty {
            changed |= self.rules.refresh().await;
        }
        if changed {
            self.evaluate();
        }
    }

    /// Apply a route or next-hop notification to the index of wanted routes;
    /// true when it changed.
    fn apply_route(&mut self, event: &Event) -> bool {
        match event {
            // Most notifications on a busy node are for routes nobody expects:
            // look before copying.
            Event::RouteAdded {
                route,
                replace,
                append,
            } if self.wanted.contains(&route.key) => {
                let Some(route) = self.nexthops.resolve(route.clone(), true) else {
                    return false;
                };
                let how = Insert::from_flags(*replace, *append);
                let applied = index::add(&mut self.routes, &self.wanted, route, how);
                self.applied(applied)
            }
            Event::RouteRemoved(route) => {
                let applied = index::remove(&mut self.routes, &self.wanted, route);
                self.applied(applied)
            }
            Event::Nexthop { object, removed } => index::nexthop_changed(
                &mut self.routes,
                &self.wanted,
                &mut self.nexthops,
                object.clone(),
                *removed,
            ),
            _ => false,
        }
    }

    /// True when the index changed; a change only the table tells re-reads it.
    fn applied(&mut self, applied: Applied) -> bool {
        match applied {
            Applied::Unchanged => false,
            Applied::Changed => true,
            Applied::Reread => {
                self.start_dump("route");
                false
            }
        }
    }

    /// Re-read links; a link that went down or away loses its IPv4 routes in the
    /// kernel without a notification, so those go now and the table is re-read.
    async fn on_links_changed(&mut self) -> bool {
        let before = self.links.clone();
        self.refresh_links().await;
        if before == self.links {
            return false;
        }
        let flipped = link_flips(before.as_deref(), self.links.as_deref());
        for index in &flipped.down {
            index::link_down(&mut self.routes, &self.wanted, *index);
        }
        if flipped.any {
            self.start_dump("link");
        }
        true
    }

    fn on_units(&mut self, update: UnitsUpdate) {
        self.units = update.seen;
        self.systemd = update.source;
        self.boot = update.boot;
        self.evaluate();
    }

    /// Re-read everything: the MachineConfig too (inotify misses what happens
    /// behind a mount or a link it does not know of yet), then the routing
    /// table and the rules.
    fn on_resync(&mut self) {
        if self.file_watch.is_none() && self.config.intent_machineconfig {
            self.watch_file();
        }
        self.reload_intent();
        self.start_dump("periodic");
    }

    /// Lost notifications: re-read now, or, while a storm of them lasts, once
    /// it has calmed down.
    fn on_overrun(&mut self) {
        self.last_overrun = Some(Instant::now());
        if self.storm_dump.is_some() {
            self.storm_dump = Some(Instant::now() + STORM_QUIET);
        } else {
            self.start_dump("overrun");
        }
    }

    /// A new MachineConfig intent: joined with NetworkManager's, it is the intent.
    fn set_intent(&mut self, intent: Intent) {
        self.mc_intent = intent;
        self.rebuild_intent();
    }

    fn rebuild_intent(&mut self) {
        let intent = nm_intent::merge(self.mc_intent.clone(), self.nm.intent.clone());
        if *self.intent != intent {
            self.apply_intent(intent);
        }
    }

    fn apply_intent(&mut self, intent: Intent) {
        self.remediation.intent_changed();
        let wanted: HashSet<RouteKey> = intent.routes.iter().map(|r| r.key()).collect();
        self.watcher.filter_routes(Some(Wanted::new(&wanted)));
        let names: Vec<UnitName> = intent.units.iter().map(|u| u.name.clone()).collect();
        self.unit_names
            .send_if_modified(|old| std::mem::replace(old, names.clone()) != names);
        self.intent = Arc::new(intent);
        if *self.wanted != wanted {
            self.wanted = Arc::new(wanted);
            if self.netlink != SourceState::Down(NOT_READ.into()) {
                self.start_dump("intent");
            }
        }
    }

    fn start_dump(&mut self, cause: &'static str) {
        if self.dump.is_some() {
            self.queued.get_or_insert(cause);
            return;
        }
        self.metrics.resyncs.get_or_create(&CauseLabels { cause }).inc();
        let wanted = self.wanted.clone();
        let rules_mark = self.rules.mark();
        let task = tokio::task::spawn_blocking(move || Reread {
            routes: routes::dump_routes(&wanted),
            rules: rules::read(),
            rules_mark,
        });
        self.dump = Some((task, Instant::now()));
        self.replay.clear();
    }

    async fn finish_dump(&mut self) {
        let done = dump_done(&mut self.dump).await;
        self.on_dump(done);
    }

    fn on_dump(&mut self, (result, started): (Result<Reread, tokio::task::JoinError>, Instant)) {
        match result {
            Ok(reread) => {
                self.rules.reread(reread.rules_mark, reread.rules);
                self.take_routes(reread.routes);
            }
            Err(e) => self.netlink = SourceState::Down(format!("route dump task: {e}")),
        }
        let read = started.elapsed();
        self.metrics.resync_duration.set(read.as_secs_f64());
        match self.queued.take() {
            Some("overrun") if self.last_overrun.is_some_and(|t| t.elapsed() < STORM_QUIET) => {
                self.storm_dump = Some(Instant::now() + STORM_QUIET);
            }
            Some(cause) => self.start_dump(cause),
            None => {}
        }
        self.evaluate_after(read);
    }

    fn take_routes(&mut self, routes: Result<RouteDump, RouteError>) {
        match routes {
            Ok(dump) => {
                self.nexthops = dump.nexthops;
                self.routes =
                    RouteIndex::from_routes(dump.routes.into_iter().filter(|r| self.wanted.contains(&r.key)));
                self.replay_after_dump();
                self.netlink = SourceState::Up;
            }
            Err(e) => {
                tracing::debug!(error = %e, kind = e.kind(), "reading the routing table failed");
                self.netlink = SourceState::Down(e.to_string());
            }
        }
    }

    /// Apply the notifications that arrived while the dump ran. Some may be
    /// older than what the dump saw, which does no harm to the changes that
    /// name a route (adding one held, removing one gone), but a replace takes
    /// the place of whatever route leads its slot: the table is read again.
    fn replay_after_dump(&mut self) {
        for event in std::mem::take(&mut self.replay) {
            if matches!(&event, Event::RouteAdded { replace: true, .. }) {
                self.start_dump("route");
                return;
            }
            self.apply_route(&event);
        }
    }

    async fn refresh_links(&mut self) {
        match routes::dump_links().await {
            Ok(links) => self.links = Some(links),
            Err(e) => {
                tracing::warn!(error = %e, kind = e.kind(), "reading links failed");
                self.links = None;
            }
        }
    }

    /// Wait a little for systemd's first answer, so the first report is complete.
    async fn first_units(&mut self) {
        if self.config.no_units {
            return;
        }
        if let Ok(Some(update)) = tokio::time::timeout(Duration::from_secs(6), self.units_rx.recv()).await {
            self.units = update.seen;
            self.systemd = update.source;
            self.boot = update.boot;
        }
    }

    fn evaluate(&mut self) {
        self.evaluate_after(Duration::ZERO);
    }

    /// Compare and publish; `read` is the time the full re-read of the table that
    /// led here took, counted in the evaluation's duration.
    fn evaluate_after(&mut self, read: Duration) {
        let started = Instant::now();
        let sources = Sources {
            machineconfig: self.machineconfig.clone(),
            netlink: self.rules.netlink(&self.netlink),
            systemd: self.systemd.clone(),
            networkmanager: self.nm.source.clone(),
        };
        let seen = Observed {
            routes: &self.routes,
            rules: &self.rules.rules,
            links: self.links.as_deref(),
            units: &self.units,
            boot: self.boot,
            networkmanager: self.nm.view.as_ref(),
        };
        let mut report = compare(&self.intent, seen, sources);
        self.log.report(&report);
        self.plan_remediation(&mut report);
        self.snapshots.send_replace(Some(Arc::new(Snapshot {
            report,
            at: SystemTime::now(),
        })));
        self.metrics.evaluations.inc();
        self.metrics
            .evaluation_duration
            .observe((read + started.elapsed()).as_secs_f64());
    }
}

impl Daemon {
    fn on_networkmanager(&mut self, update: NmUpdate) {
        if self.nm.unchanged(&update) {
            return;
        }
        if self.nm.update(update, self.config.intent_networkmanager) {
            self.rebuild_intent();
        }
        self.evaluate();
    }

    /// NetworkManager's first view, so the first dump reads its routes too.
    async fn first_networkmanager(&mut self) {
        if self.nm.first(self.config.intent_networkmanager).await {
            self.rebuild_intent();
        }
    }
}

/// Completes at `when`; never without one.
async fn at(when: Option<Instant>) {
    match when {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

async fn file_changed(watch: &mut Option<FileWatch>) -> std::io::Result<()> {
    match watch {
        Some(w) => w.changed().await,
        None => std::future::pending().await,
    }
}

async fn dump_done(
    dump: &mut Option<(DumpTask, Instant)>,
) -> (Result<Reread, tokio::task::JoinError>, Instant) {
    let Some((task, started)) = dump else {
        return std::future::pending().await;
    };
    let result = task.await;
    let started = *started;
    *dump = None;
    (result, started)
}
