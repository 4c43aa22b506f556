//! Faults while serving: each one, then the metrics tell the truth again, the
//! process did not restart (same PID, evaluations kept counting) and its memory
//! did not grow without bound. Run as root.

mod common;
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::systemd_units::SUCCEEDS;
use common::user_systemd::UserSystemd;
use support::{machineconfig, metric_value, rss_kib, wait_for, Agent, NetNs};

const ROUTE: &str = "destination=\"10.1.0.0/24\"";

struct Setup {
    ns: NetNs,
    dir: PathBuf,
    mc: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let ns = NetNs::new();
        ns.ip("route add 10.1.0.0/24 via 172.18.0.1 dev ens5");
        let dir = std::env::temp_dir().join(format!("{}-faults", ns.name));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mc = dir.join("currentconfig");
        Setup { ns, dir, mc }
    }

    fn write(&self, text: &str) {
        let tmp = self.dir.join(".new");
        std::fs::write(&tmp, text).expect("write");
        std::fs::rename(&tmp, &self.mc).expect("rename");
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait(s: &Setup, a: &Agent, metric: &str, needles: &[&str], want: Option<f64>) {
    a.wait_metric(&s.ns, metric, needles, want);
}

fn alive(a: &mut Agent) -> bool {
    matches!(a.child.try_wait(), Ok(None))
}

#[test]
fn machineconfig_missing_truncated_garbage_unreadable_then_good() {
    let s = Setup::new();
    let mut a = Agent::start(&s.ns, &s.mc, &["--no-units", "--no-networkmanager"]);
    wait(&s, &a, "routewarden_source_up", &["machineconfig"], Some(0.0));
    wait(&s, &a, "routewarden_expected_routes", &[], Some(0.0));
    let good = machineconfig(&["a.service"]);
    s.write(&good);
    wait(&s, &a, "routewarden_route_present", &[ROUTE], Some(1.0));
    wait(&s, &a, "routewarden_source_up", &["machineconfig"], Some(1.0));
    s.write(&good[..good.len() / 2]);
    wait(&s, &a, "routewarden_source_up", &["machineconfig"], Some(0.0));
    wait(&s, &a, "routewarden_route_present", &[ROUTE], Some(1.0));
    s.write(&good);
    wait(&s, &a, "routewarden_source_up", &["machineconfig"], Some(1.0));
    std::fs::write(&s.mc, [0xffu8, 0xfe, 0x00, 0x13].repeat(1000)).expect("garbage");
    wait(&s, &a, "routewarden_source_up", &["machineconfig"], Some(0.0));
    s.write(&good);
    wait(&s, &a, "routewarden_source_up", &["machineconfig"], Some(1.0));
    let rss = rss_kib(a.child.id());
    for i in 0..50 {
        s.write(if i % 2 == 0 { "{ broken" } else { &good });
        std::thread::sleep(Duration::from_millis(20));
    }
    s.write(&good);
    wait(&s, &a, "routewarden_source_up", &["machineconfig"], Some(1.0));
    assert!(alive(&mut a), "the agent did not exit");
    let grown = rss_kib(a.child.id()).saturating_sub(rss);
    assert!(grown < 8 * 1024, "RSS grew {grown} KiB over 50 replacements");
    println!("figure: MachineConfig missing at start, truncated, garbage, replaced atomically 50 times with good and broken files: last good intent kept, source_up right, RSS grew {grown} KiB");
    let drift =
        s.ns.http_get(a.port, "/drift")
            .map(|(_, b)| b)
            .unwrap_or_default();
    assert!(!drift.contains("broken"), "file contents are never shown");
}

#[test]
fn machineconfig_unreadable_by_permissions() {
    let s = Setup::new();
    s.write(&machineconfig(&["a.service"]));
    std::fs::set_permissions(&s.dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    // The agent runs as nobody so that mode 000 really denies it (root would not be).
    let a = Agent::start_as(
        &s.ns,
        &s.mc,
        &["--no-units", "--no-networkmanager"],
        Some("65534"),
    );
    wait(&s, &a, "routewarden_route_present", &[ROUTE], Some(1.0));
    std::fs::set_permissions(&s.mc, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    wait(&s, &a, "routewarden_source_up", &["machineconfig"], Some(0.0));
    assert!(a.logs().contains("Permission denied"), "{}", a.logs());
    wait(&s, &a, "routewarden_route_present", &[ROUTE], Some(1.0));
    std::fs::set_permissions(&s.mc, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    wait(&s, &a, "routewarden_source_up", &["machineconfig"], Some(1.0));
}

#[test]
fn link_flapping_and_table_emptied_and_refilled() {
    let s = Setup::new();
    s.write(&machineconfig(&["a.service"]));
    let mut a = Agent::start(&s.ns, &s.mc, &["--no-units", "--no-networkmanager"]);
    wait(&s, &a, "routewarden_route_present", &[ROUTE], Some(1.0));
    let rss = rss_kib(a.child.id());
    let mut batch = String::new();
    for _ in 0..100 {
        batch.push_str("link set ens5 down\nlink set ens5 up\n");
    }
    s.ns.ip_batch(&batch);
    wait(&s, &a, "routewarden_route_present", &[ROUTE], Some(0.0));
    wait(
        &s,
        &a,
        "routewarden_route_drift_reason",
        &[ROUTE, "non-persistent"],
        Some(1.0),
    );
    s.ns.ip("route add 10.1.0.0/24 via 172.18.0.1 dev ens5");
    wait(&s, &a, "routewarden_route_present", &[ROUTE], Some(1.0));
    let mut fill = String::new();
    for i in 0..20_000u32 {
        fill.push_str(&format!(
            "route add 10.{}.{}.0/24 via 172.18.0.1 dev ens5\n",
            100 + i / 256,
            i % 256
        ));
    }
    s.ns.ip_batch(&fill);
    s.ns.ip("route flush table main proto boot");
    wait(&s, &a, "routewarden_route_present", &[ROUTE], Some(0.0));
    s.ns.ip_batch(&fill);
    s.ns.ip("route add 10.1.0.0/24 via 172.18.0.1 dev ens5");
    wait(&s, &a, "routewarden_route_present", &[ROUTE], Some(1.0));
    assert!(alive(&mut a));
    let grown = rss_kib(a.child.id()).saturating_sub(rss);
    println!("figure: link flapped 100 times, table emptied and refilled twice with 20,000 routes: metrics right after each, same process, RSS grew {grown} KiB");
    assert!(grown < 16 * 1024, "RSS grew {grown} KiB");
}

#[test]
fn dbus_absent_at_start_then_appears() {
    let s = Setup::new();
    s.write(&machineconfig(&["a.service"]));
    let sd = UserSystemd::start().expect("user systemd");
    let address = sd.bus_address().to_owned();
    sd.add_units(&[("a.service", SUCCEEDS)]).expect("units");
    sd.enable("a.service").expect("enable");
    sd.systemctl_ok(&["start", "a.service"]).expect("start");
    sd.kill_bus().expect("bus down before the agent starts");
    let a = Agent::start(&s.ns, &s.mc, &["--dbus-address", &address]);
    wait(&s, &a, "routewarden_source_up", &["systemd"], Some(0.0));
    wait(&s, &a, "routewarden_route_present", &[ROUTE], Some(1.0));
    sd.systemctl_ok(&["start", "dbus.socket"]).expect("bus back");
    wait(&s, &a, "routewarden_source_up", &["systemd"], Some(1.0));
    wait(&s, &a, "routewarden_unit_ok", &["a.service"], Some(1.0));
}

#[test]
fn sigterm_during_a_resync_and_start_while_flooded() {
    let s = Setup::new();
    s.write(&machineconfig(&["a.service"]));
    let mut fill = String::new();
    for i in 0..100_000u32 {
        fill.push_str(&format!(
            "route add 10.{}.{}.{}/32 via 172.18.0.1 dev ens5\n",
            100 + (i >> 16),
            (i >> 8) & 255,
            i & 255
        ));
    }
    let path = s.dir.join("fill");
    std::fs::write(&path, &fill).expect("batch");
    let mut flood = s.ns_ip_batch_spawn(&path);
    let mut a = Agent::start(
        &s.ns,
        &s.mc,
        &["--no-units", "--no-networkmanager", "--resync-interval", "1s"],
    );
    let _ = flood.wait();
    wait(&s, &a, "routewarden_route_present", &[ROUTE], Some(1.0));
    // The counter moves when a resync starts, and reading 100,000 routes takes the
    // (debug) agent about 100 ms: polling every millisecond, SIGTERM lands mid-read.
    let periodic = |a: &Agent| metric_value(&a.metrics(&s.ns), "routewarden_resyncs_total", &["periodic"]);
    let before = wait_for(Duration::from_secs(10), "a periodic resync", || {
        periodic(&a).filter(|n| *n >= 1.0)
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while periodic(&a).is_some_and(|n| n <= before) {
        assert!(Instant::now() < deadline, "no periodic resync after the first");
        std::thread::sleep(Duration::from_millis(1));
    }
    let started = Instant::now();
    assert_eq!(a.stop(), Some(0), "{}", a.logs());
    assert!(
        a.logs()
            .contains("stopping while the routing table is being read"),
        "SIGTERM landed during a resync: {}",
        a.logs()
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stopped in {:?}",
        started.elapsed()
    );
}

impl Setup {
    fn ns_ip_batch_spawn(&self, path: &Path) -> std::process::Child {
        std::process::Command::new("ip")
            .args(["-n", &self.ns.name, "-batch", path.to_str().expect("utf-8")])
            .spawn()
            .expect("ip -batch")
    }
}
