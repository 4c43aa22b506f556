//! What the daemon logs of an evaluation: changes, once.

use super::*;
use crate::compare::{compare, Observed, RouteIndex, Sources, UnitsSeen};
use crate::intent::{self, Options};
use crate::model::{NextHop, ObservedRoute, Protocol, RouteKey};

const SEED: &[u8] = include_bytes!("../../../examples/seed-machineconfig.yaml");

fn sources(systemd: SourceState) -> Sources {
    Sources {
        machineconfig: SourceState::Up,
        netlink: SourceState::Up,
        systemd,
        networkmanager: SourceState::Skipped,
    }
}

/// The seed's intent against a table with or without its route.
fn report(present: bool, systemd: SourceState) -> DriftReport {
    let intent = intent::from_bytes(SEED, &Options::default()).expect("seed");
    let routes = present.then(|| {
        ObservedRoute::unicast(
            RouteKey::new(254, "192.168.1.0/24".parse().expect("net")),
            vec![NextHop {
                gateway: Some("172.18.0.1".parse().expect("ip")),
                ifindex: Some(2),
            }],
            None,
            Protocol(4),
        )
    });
    let index = RouteIndex::from_routes(routes);
    let units = match &systemd {
        SourceState::Down(why) => UnitsSeen::Unavailable(why.clone()),
        _ => UnitsSeen::Skipped,
    };
    let seen = Observed {
        routes: &index,
        rules: &[],
        links: None,
        units: &units,
        boot: None,
        networkmanager: None,
    };
    compare(&intent, seen, sources(systemd))
}

fn kinds(changes: &[Change]) -> Vec<String> {
    changes
        .iter()
        .map(|c| match c {
            Change::SourceDown(s, why) => format!("down {s}: {why}"),
            Change::SourceUp(s) => format!("up {s}"),
            Change::SourceAbsent(s) => format!("absent {s}"),
            Change::Started(i, d) => format!("started {} {} {}", i.name, d.state, d.reasons),
            Change::Changed(i, d) => format!("changed {} {} {}", i.name, d.state, d.reasons),
            Change::Stopped(i) => format!("stopped {}", i.name),
        })
        .collect()
}

#[test]
fn a_source_down_from_startup_is_said_at_once_then_on_a_new_reason_only() {
    let mut log = ReportLog::default();
    let down = |why: &str| SourceState::Down(why.into());
    let first = log.changes(&report(true, down("no bus")));
    assert_eq!(kinds(&first), ["down systemd: no bus"]);
    assert!(
        log.changes(&report(true, down("no bus"))).is_empty(),
        "the same reason again"
    );
    assert_eq!(
        kinds(&log.changes(&report(true, down("access denied")))),
        ["down systemd: access denied"]
    );
    assert_eq!(
        kinds(&log.changes(&report(true, SourceState::Up))),
        ["up systemd"]
    );
    assert!(log.changes(&report(true, SourceState::Up)).is_empty());
}

#[test]
fn a_source_absent_is_said_once() {
    let mut log = ReportLog::default();
    let mut r = report(true, SourceState::Up);
    r.sources.networkmanager = SourceState::Absent;
    assert_eq!(kinds(&log.changes(&r)), ["absent networkmanager"]);
    assert!(log.changes(&r).is_empty());
}

#[test]
fn not_connected_yet_is_no_failure() {
    let mut log = ReportLog::default();
    let waiting = SourceState::Down(NOT_CONNECTED.into());
    assert!(log.changes(&report(true, waiting)).is_empty());
    assert!(
        log.changes(&report(true, SourceState::Up)).is_empty(),
        "no 'up' either"
    );
}

#[test]
fn a_route_is_said_when_it_starts_and_stops_drifting_not_at_each_evaluation() {
    let mut log = ReportLog::default();
    let route = "ipv4 192.168.1.0/24 via 172.18.0.1 dev ens5 table main";
    assert!(log.changes(&report(true, SourceState::Skipped)).is_empty());
    assert_eq!(
        kinds(&log.changes(&report(false, SourceState::Skipped))),
        [format!("started {route} missing non-persistent")]
    );
    assert!(log.changes(&report(false, SourceState::Skipped)).is_empty());
    assert_eq!(
        kinds(&log.changes(&report(true, SourceState::Skipped))),
        [format!("stopped {route}")]
    );
}
