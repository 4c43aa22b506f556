//! The decision table and the engine, on verdicts the real comparison gives:
//! the seed's unit route and a route NetworkManager alone declares, in the
//! states the node shows them in.

use std::time::{Duration, Instant, SystemTime};

use super::decide::*;
use super::engine::Engine;
use super::guard::Timing;
use super::Mode;
use crate::compare::DriftReport;
use crate::compare::{compare, Observed, RouteIndex, SourceState, Sources, UnitsSeen};
use crate::intent::networkmanager::{expected, merge};
use crate::intent::{self, Options};
use crate::model::AttemptResult;
use crate::model::{
    ActionKind, DeviceState, IfName, Intent, Link, NmConnection, NmDevice, NmProfile, NmView, ProfileFlags,
    StateReason, UnitName, UnitStatus,
};

const SEED: &[u8] = include_bytes!("../../../examples/seed-machineconfig.yaml");
const SEED_ROUTE: &str = "192.168.1.0/24";
const PROFILE_ROUTE: &str = "10.9.0.0/16";

/// A oneshot that ran from 1 s to 2 s after boot: `failed` with `status` (8 at
/// the boot race) or inactive with 0.
fn unit(name: &str, active: &str, status: i32) -> UnitStatus {
    let result = if status == 0 { "success" } else { "exit-code" };
    let mut u = UnitStatus::oneshot_for_tests(name, active, result, (1, status), 2_000_000);
    u.inactive_exit_usec = 1_000_000;
    u
}

struct Node {
    seed_unit: UnitStatus,
    nm_active: bool,
    ens5: bool,
    /// When ens5 was last configured (monotonic usec).
    configured: Option<u64>,
    view: Option<NmView>,
    sources: Sources,
}

impl Node {
    /// The seed's boot race: the unit failed, NetworkManager is up now, ens5 up.
    fn boot_race() -> Node {
        Node {
            seed_unit: unit("nmcli-dev-modify.service", "failed", 8),
            nm_active: true,
            ens5: true,
            configured: None,
            view: None,
            sources: Sources {
                machineconfig: SourceState::Up,
                netlink: SourceState::Up,
                systemd: SourceState::Up,
                networkmanager: SourceState::Skipped,
            },
        }
    }

    /// NetworkManager runs ens5 with `applied`, from a profile with `profile_routes`.
    fn with_networkmanager(mut self, applied: Option<NmConnection>, profile: NmConnection) -> Node {
        let state = if applied.is_some() { 100 } else { 30 };
        self.view = Some(NmView {
            devices: vec![NmDevice {
                interface: IfName::new("ens5").expect("name"),
                state: DeviceState(state),
                reason: StateReason(39),
                managed: true,
                applied,
            }],
            profiles: vec![NmProfile {
                settings: profile,
                filename: Some("/etc/NetworkManager/system-connections/rw.nmconnection".into()),
                flags: ProfileFlags(0),
            }],
            problems: Vec::new(),
        });
        self.sources.networkmanager = SourceState::Up;
        self
    }

    /// The decision for `dest` with the routing table empty.
    fn decide(&self, intent: &Intent, dest: &str) -> Decision {
        let report = self.report(intent);
        let v = report
            .routes
            .iter()
            .find(|r| r.expected.destination.to_string() == dest)
            .expect("expected");
        let ctx = Context {
            sources: &report.sources,
            units: &report.units,
            view: self.view.as_ref(),
        };
        decide(v, ctx)
    }

    /// The report with the routing table empty.
    fn report(&self, intent: &Intent) -> DriftReport {
        let index = RouteIndex::default();
        let mut ens5 = Link::new(2, IfName::new("ens5").expect("name"), true, true);
        ens5.addresses = vec!["172.18.0.2/16".parse().expect("net")];
        ens5.last_configured_usec = self.configured;
        let links: Vec<Link> = if self.ens5 { vec![ens5] } else { Vec::new() };
        let nm = unit(
            "NetworkManager.service",
            if self.nm_active { "active" } else { "inactive" },
            0,
        );
        let units = UnitsSeen::Seen(vec![self.seed_unit.clone(), nm]);
        let seen = Observed {
            routes: &index,
            rules: &[],
            links: Some(&links),
            units: &units,
            boot: None,
            networkmanager: self.view.as_ref(),
        };
        compare(intent, seen, self.sources.clone())
    }
}

fn seed() -> Intent {
    intent::from_bytes(SEED, &Options::default()).expect("seed")
}

fn profile(autoconnect: bool) -> NmConnection {
    let mut c = NmConnection::for_tests("rw", "ens5", &[(PROFILE_ROUTE, "172.18.0.1", None)]);
    c.autoconnect = autoconnect;
    c
}

fn acts(d: &Decision) -> Option<(ActionKind, &str)> {
    match d {
        Decision::Act(a, _) => Some((a.kind, a.owner.as_str())),
        Decision::Hold(_) => None,
    }
}

fn held(d: &Decision) -> &str {
    match d {
        Decision::Hold(why) => why,
        Decision::Act(a, _) => panic!("acts: {a:?}"),
    }
}

#[test]
fn the_boot_race_restarts_the_unit_once_networkmanager_is_active() {
    let node = Node::boot_race();
    let d = node.decide(&seed(), SEED_ROUTE);
    assert_eq!(
        acts(&d),
        Some((ActionKind::RestartUnit, "nmcli-dev-modify.service"))
    );
    let Decision::Act(action, why) = d else {
        unreachable!()
    };
    assert_eq!(
        action.target,
        Target::Unit(UnitName::new("nmcli-dev-modify.service").expect("name"))
    );
    assert!(why.contains("unit-failed"), "{why}");
    let waiting = Node {
        nm_active: false,
        ..Node::boot_race()
    };
    assert!(held(&waiting.decide(&seed(), SEED_ROUTE)).contains("NetworkManager is not active"));
}

#[test]
fn a_route_deleted_by_hand_restarts_the_unit_that_declares_it() {
    let applied = NmConnection::for_tests("ens5", "ens5", &[(SEED_ROUTE, "172.18.0.1", None)]);
    let node = Node {
        seed_unit: unit("nmcli-dev-modify.service", "inactive", 0),
        ..Node::boot_race()
    }
    .with_networkmanager(Some(applied.clone()), applied);
    let intent = merge(seed(), expected(node.view.as_ref().expect("view")));
    assert_eq!(
        acts(&node.decide(&intent, SEED_ROUTE)),
        Some((ActionKind::RestartUnit, "nmcli-dev-modify.service")),
        "removed-outside-networkmanager, declared by a unit"
    );
    let unseen = Node {
        seed_unit: unit("nmcli-dev-modify.service", "inactive", 0),
        configured: Some(500_000),
        ..Node::boot_race()
    };
    let report = unseen.report(&seed());
    let codes: Vec<&str> = report.routes[0].reasons.0.iter().map(|r| r.kind.code()).collect();
    assert_eq!(
        codes,
        ["unexplained"],
        "without NetworkManager's view: ran after ens5, gone since"
    );
    assert_eq!(
        acts(&unseen.decide(&seed(), SEED_ROUTE)),
        Some((ActionKind::RestartUnit, "nmcli-dev-modify.service")),
    );
}

#[test]
fn a_profile_route_deleted_by_hand_is_reapplied() {
    let node = Node {
        seed_unit: unit("nmcli-dev-modify.service", "inactive", 0),
        ..Node::boot_race()
    }
    .with_networkmanager(Some(profile(true)), profile(true));
    let intent = merge(Intent::default(), expected(node.view.as_ref().expect("view")));
    let d = node.decide(&intent, PROFILE_ROUTE);
    assert_eq!(acts(&d), Some((ActionKind::Reapply, "connection/rw")));
    let Decision::Act(action, _) = d else {
        unreachable!()
    };
    assert_eq!(action.target, Target::Device(IfName::new("ens5").expect("name")));
}

#[test]
fn an_inactive_autoconnect_profile_is_activated_a_manual_one_is_not() {
    let node = Node::boot_race().with_networkmanager(None, profile(true));
    let intent = merge(Intent::default(), expected(node.view.as_ref().expect("view")));
    let d = node.decide(&intent, PROFILE_ROUTE);
    assert_eq!(acts(&d), Some((ActionKind::Activate, "connection/rw")));
    let Decision::Act(action, _) = d else {
        unreachable!()
    };
    assert_eq!(
        action.target,
        Target::Profile {
            uuid: "uuid-rw".into(),
            device: IfName::new("ens5").expect("name")
        }
    );
    let mut intent = intent;
    let manual = Node::boot_race().with_networkmanager(None, profile(false));
    intent.routes[0].traits.connection = Some("uuid-rw".into());
    assert!(held(&manual.decide(&intent, PROFILE_ROUTE)).contains("does not autoconnect"));
}

#[test]
fn what_needs_a_person_is_left_alone() {
    let no_device = Node {
        ens5: false,
        ..Node::boot_race()
    };
    let why = held(&no_device.decide(&seed(), SEED_ROUTE)).to_owned();
    assert!(why.contains("device-missing"), "{why}");
    let mut disabled = unit("nmcli-dev-modify.service", "inactive", 0);
    disabled.unit_file_state = "disabled".into();
    let node = Node {
        seed_unit: disabled,
        ..Node::boot_race()
    };
    assert!(held(&node.decide(&seed(), SEED_ROUTE)).contains("unit-disabled"));
}

#[test]
fn no_unit_is_restarted_when_systemd_is_not_asked() {
    let mut node = Node {
        seed_unit: unit("nmcli-dev-modify.service", "inactive", 0),
        configured: Some(500_000),
        ..Node::boot_race()
    };
    node.sources.systemd = SourceState::Skipped;
    assert!(held(&node.decide(&seed(), SEED_ROUTE)).contains("--no-units"));
}

#[test]
fn nothing_is_done_while_a_source_is_down() {
    for down in ["machineconfig", "netlink", "systemd", "networkmanager"] {
        let mut node = Node::boot_race();
        let state = SourceState::Down("no answer".into());
        match down {
            "machineconfig" => node.sources.machineconfig = state,
            "netlink" => node.sources.netlink = state,
            "systemd" => node.sources.systemd = state,
            _ => node.sources.networkmanager = state,
        }
        let why = held(&node.decide(&seed(), SEED_ROUTE)).to_owned();
        assert!(why.contains(&format!("the {down} source is down")), "{why}");
    }
}

#[test]
fn every_reason_needing_a_person_is_a_known_reason_and_none_is_acted_on() {
    use crate::compare::ReasonKind;
    for kind in NEEDS_A_PERSON {
        assert!(ReasonKind::ALL.contains(&kind), "{kind:?}");
    }
    assert!(!NEEDS_A_PERSON.contains(&ReasonKind::UnitFailed));
    assert!(!NEEDS_A_PERSON.contains(&ReasonKind::RemovedOutsideNetworkManager));
}

#[test]
fn the_owner_of_a_route_whatever_its_state() {
    let intent = seed();
    assert_eq!(
        owner_of(&intent.routes[0], None).as_deref(),
        Some("nmcli-dev-modify.service")
    );
    let node = Node::boot_race().with_networkmanager(Some(profile(true)), profile(true));
    let view = node.view.as_ref().expect("view");
    let nm = merge(Intent::default(), expected(view));
    assert_eq!(
        owner_of(&nm.routes[0], Some(view)).as_deref(),
        Some("connection/rw")
    );
}

const MIN: Duration = Duration::from_secs(60);

fn engine(mode: Mode) -> Engine {
    Engine::new(
        mode,
        Timing {
            after: MIN,
            base: MIN,
        },
    )
}

#[test]
fn off_plans_nothing() {
    let report = Node::boot_race().report(&seed());
    let plan = engine(Mode::Off).plan(&report, None, Instant::now(), SystemTime::now());
    assert_eq!((plan.start, plan.wake), (None, None));
    assert_eq!(plan.routes, vec![None]);
}

#[test]
fn the_engine_waits_acts_backs_off_and_gives_up_on_a_unit() {
    let report = Node::boot_race().report(&seed());
    let (t0, wall) = (Instant::now(), SystemTime::now());
    let mut e = engine(Mode::On);
    let plan = e.plan(&report, None, t0, wall);
    assert_eq!(
        (plan.start.is_none(), plan.wake),
        (true, Some(t0 + MIN)),
        "missing for a minute first"
    );
    let shown = plan.routes[0].clone().expect("not present: shown");
    assert_eq!(shown.action, Some(ActionKind::RestartUnit));
    assert!(shown.next_attempt_at.is_some());
    let mut now = t0 + MIN;
    let mut starts = Vec::new();
    loop {
        let plan = e.plan(&report, None, now, wall);
        assert!(plan.start.is_none() || plan.gave_up.is_empty());
        if let Some(start) = plan.start {
            starts.push(now.duration_since(t0).as_secs() / 60);
            assert!(e.plan(&report, None, now, wall).start.is_none(), "one at a time");
            let attempt = e.finished(&start, AttemptResult::Success, None, wall);
            assert_eq!(
                (attempt.owner.as_str(), attempt.result),
                ("nmcli-dev-modify.service", AttemptResult::Success)
            );
        }
        if !plan.gave_up.is_empty() {
            assert_eq!(plan.gave_up[0].owner, "nmcli-dev-modify.service");
            break;
        }
        now = e.plan(&report, None, now, wall).wake.expect("a wait");
    }
    assert_eq!(
        starts,
        [1, 2, 4],
        "after a minute, then 1 and 2 minutes later; then gave up"
    );
    let plan = e.plan(&report, None, now + 10 * MIN, wall);
    let shown = plan.routes[0].clone().expect("shown");
    assert_eq!(
        (plan.start, plan.wake, shown.action),
        (None, None, None),
        "given up: nothing more"
    );
    assert!(shown.why.contains("gave up"), "{}", shown.why);
    let last = shown.last_attempt.expect("the give-up is the last attempt");
    assert_eq!(last.result, AttemptResult::GaveUp);
    e.intent_changed();
    e.plan(&report, None, now + 11 * MIN, wall);
    assert!(
        e.plan(&report, None, now + 12 * MIN, wall).start.is_some(),
        "a new intent: tried again"
    );
}

#[test]
fn dry_run_decides_as_on_does() {
    let report = Node::boot_race().report(&seed());
    let (t0, wall) = (Instant::now(), SystemTime::now());
    let (mut on, mut dry) = (engine(Mode::On), engine(Mode::DryRun));
    for at in [t0, t0 + MIN] {
        let (a, b) = (
            on.plan(&report, None, at, wall),
            dry.plan(&report, None, at, wall),
        );
        assert_eq!(a, b);
    }
    let record = dry.record(t0 + MIN, wall);
    assert_eq!(record.mode, "dry-run");
    assert!(record.owners.contains_key("nmcli-dev-modify.service"));
}
