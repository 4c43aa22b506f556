//! The daemon's inputs: the MachineConfig behind a symbolic link whose target is
//! rewritten, in a ConfigMap volume whose `..data` link is swapped, changed where
//! inotify cannot see it (re-read by the periodic resync and on SIGHUP), and the
//! node's own files (HyperShift's empty `currentconfig` with the MCO daemon's
//! config or the one the node was provisioned with, no MachineConfig at all), for
//! `serve` and `check`. In network namespaces the tests make; run as root.

mod support;

use std::path::{Path, PathBuf};

use support::{metric_value, Agent, NetNs, TempDir};

const INFO: &str = "routewarden_machineconfig_info";
const UP: &str = "routewarden_source_up";
const ABSENT: &str = "routewarden_source_absent";
const MC_SOURCE: &str = "source=\"machineconfig\"";

/// A MachineConfig named `name` whose one unit adds `10.77.0.0/16`.
fn config(name: &str) -> String {
    config_routing(name, "10.77.0.0/16")
}

/// A MachineConfig named `name` whose one unit adds a route to `dest`.
fn config_routing(name: &str, dest: &str) -> String {
    let unit = format!("[Service]\nType=oneshot\nExecStart=/usr/sbin/ip route add {dest} via 172.18.0.1 dev ens5\n[Install]\nWantedBy=multi-user.target\n");
    serde_json::json!({
        "kind": "MachineConfig", "metadata": {"name": name},
        "spec": {"config": {"ignition": {"version": "3.2.0"},
                            "systemd": {"units": [{"name": "r.service", "enabled": true, "contents": unit}]}}}
    })
    .to_string()
}

/// Write `text` to `path` as the MCO's daemon does: a temporary file, renamed over it.
fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_file_name(".rw-test-tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

fn named(agent: &Agent, ns: &NetNs, name: &str) {
    agent.wait_metric(ns, INFO, &[&format!("name=\"{name}\"")], Some(1.0));
}

#[test]
fn a_link_whose_target_is_rewritten_is_reloaded() {
    let ns = NetNs::new();
    let dir = TempDir::new("link");
    let target_dir = dir.path.join("elsewhere");
    std::fs::create_dir(&target_dir).expect("mkdir");
    let target = target_dir.join("real.json");
    std::fs::write(&target, config("rendered-1")).expect("write");
    let link = dir.path.join("currentconfig");
    std::os::unix::fs::symlink("elsewhere/real.json", &link).expect("symlink");
    let agent = Agent::start(&ns, &link, &["--no-units"]);
    named(&agent, &ns, "rendered-1");
    write_atomic(&target, &config("rendered-2"));
    named(&agent, &ns, "rendered-2");
    std::fs::write(&target, config("rendered-3")).expect("rewrite in place");
    named(&agent, &ns, "rendered-3");
}

/// A ConfigMap volume: `currentconfig -> ..data/currentconfig`, `..data -> ..<version>`.
fn configmap_version(dir: &Path, version: u32, text: &str) {
    let versioned = dir.join(format!("..2024_01_01_00_00_0{version}.1"));
    std::fs::create_dir(&versioned).expect("mkdir");
    std::fs::write(versioned.join("currentconfig"), text).expect("write");
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(versioned.file_name().expect("name"), &tmp).expect("symlink");
    std::fs::rename(&tmp, dir.join("..data")).expect("swap ..data");
    if version > 1 {
        let old = dir.join(format!("..2024_01_01_00_00_0{}.1", version - 1));
        std::fs::remove_dir_all(old).expect("remove the old version");
    }
}

#[test]
fn a_configmap_data_swap_is_reloaded_every_time() {
    let ns = NetNs::new();
    let dir = TempDir::new("configmap");
    configmap_version(&dir.path, 1, &config("rendered-1"));
    let key = dir.path.join("currentconfig");
    std::os::unix::fs::symlink("..data/currentconfig", &key).expect("symlink");
    let agent = Agent::start(&ns, &key, &["--no-units"]);
    named(&agent, &ns, "rendered-1");
    configmap_version(&dir.path, 2, &config("rendered-2"));
    named(&agent, &ns, "rendered-2");
    configmap_version(&dir.path, 3, &config("rendered-3"));
    named(&agent, &ns, "rendered-3");
}

/// `currentconfig` and a hard link to it in another directory: a write through the
/// other link changes the file without an event in `currentconfig`'s directory.
fn hard_linked(tag: &str) -> (TempDir, PathBuf, PathBuf) {
    let dir = TempDir::new(tag);
    let file = dir.path.join("currentconfig");
    std::fs::write(&file, config("rendered-1")).expect("write");
    let other_dir = dir.path.join("other");
    std::fs::create_dir(&other_dir).expect("mkdir");
    let other = other_dir.join("same-inode");
    std::fs::hard_link(&file, &other).expect("hard link");
    (dir, file, other)
}

#[test]
fn the_periodic_resync_re_reads_the_file_and_source_up_stays_honest() {
    let ns = NetNs::new();
    let (_dir, file, other) = hard_linked("resync");
    let agent = Agent::start(&ns, &file, &["--no-units", "--resync-interval", "1s"]);
    named(&agent, &ns, "rendered-1");
    std::fs::write(&other, config("rendered-2")).expect("write through the other link");
    named(&agent, &ns, "rendered-2");
    std::fs::write(&other, "{ broken").expect("break it");
    agent.wait_metric(&ns, UP, &[MC_SOURCE], Some(0.0));
    named(&agent, &ns, "rendered-2");
    std::fs::write(&other, config("rendered-3")).expect("repair it");
    agent.wait_metric(&ns, UP, &[MC_SOURCE], Some(1.0));
    named(&agent, &ns, "rendered-3");
}

#[test]
fn sighup_re_reads_the_machineconfig_and_logs_it() {
    let ns = NetNs::new();
    let (_dir, file, other) = hard_linked("sighup");
    let mut agent = Agent::start(&ns, &file, &["--no-units"]);
    named(&agent, &ns, "rendered-1");
    std::fs::write(&other, config("rendered-2")).expect("write through the other link");
    agent.signal("HUP");
    named(&agent, &ns, "rendered-2");
    agent.assert_running();
    std::fs::write(&other, config("rendered-3")).expect("write again");
    agent.signal("HUP");
    named(&agent, &ns, "rendered-3");
    agent.assert_running();
    let logs = agent.logs();
    assert_eq!(logs.matches("SIGHUP: MachineConfig re-read").count(), 2, "{logs}");
    assert_eq!(agent.stop(), Some(0), "{}", agent.logs());
}

/// A host root with `/etc/machine-config-daemon/`.
fn node_root(tag: &str) -> TempDir {
    let root = TempDir::new(tag);
    std::fs::create_dir_all(root.path.join("etc/machine-config-daemon")).expect("mkdir");
    root
}

#[test]
fn hypershift_files_then_none_then_currentconfig() {
    let ns = NetNs::new();
    let root = node_root("hypershift");
    let current = root.path.join("etc/machine-config-daemon/currentconfig");
    let mcd = root.path.join("etc/mcd-currentconfig.json");
    std::fs::write(&current, "").expect("empty currentconfig");
    std::fs::write(&mcd, config("rendered-hypershift")).expect("write");
    let mut agent = Agent::start_node(&ns, &root.path, &["--no-units"]);
    let path = "path=\"/etc/mcd-currentconfig.json\"";
    agent.wait_metric(&ns, INFO, &["name=\"rendered-hypershift\"", path], Some(1.0));
    agent.wait_metric(&ns, UP, &[MC_SOURCE], Some(1.0));
    agent.wait_metric(&ns, ABSENT, &[MC_SOURCE], Some(0.0));
    std::fs::remove_file(&mcd).expect("rm");
    agent.wait_metric(&ns, ABSENT, &[MC_SOURCE], Some(1.0));
    let body = agent.metrics(&ns);
    assert_eq!(metric_value(&body, UP, &[MC_SOURCE]), Some(0.0), "{body}");
    assert_eq!(
        metric_value(&body, "routewarden_expected_routes", &[]),
        Some(0.0),
        "{body}"
    );
    let (_, drift) = ns.http_get(agent.port, "/drift").expect("/drift answers");
    let drift: serde_json::Value = serde_json::from_str(&drift).expect("JSON");
    assert_eq!(drift["sources"]["machineconfig"], "absent", "{drift}");
    assert_eq!(drift["machineconfig_file"], serde_json::Value::Null, "{drift}");
    agent.assert_running();
    write_atomic(&current, &config("rendered-back"));
    let path = "path=\"/etc/machine-config-daemon/currentconfig\"";
    agent.wait_metric(&ns, INFO, &["name=\"rendered-back\"", path], Some(1.0));
    agent.wait_metric(&ns, ABSENT, &[MC_SOURCE], Some(0.0));
    agent.wait_metric(&ns, UP, &[MC_SOURCE], Some(1.0));
}

#[test]
fn hypershift_provisioned_config_followed_without_a_restart() {
    const PRESENT: &str = "routewarden_route_present";
    let (first, second) = ("destination=\"10.77.0.0/16\"", "destination=\"10.78.0.0/16\"");
    let ns = NetNs::new();
    ns.ip("route add 10.77.0.0/16 via 172.18.0.1 dev ens5");
    let root = node_root("mcs");
    std::fs::write(root.path.join("etc/machine-config-daemon/currentconfig"), "").expect("write");
    let mcs = root.path.join("etc/mcs-machine-config-content.json");
    // No periodic re-read during the test: only the file's events can move it.
    let flags = ["--no-units", "--resync-interval", "1h"];
    let mut agent = Agent::start_node(&ns, &root.path, &flags);
    agent.wait_metric(&ns, ABSENT, &[MC_SOURCE], Some(1.0));
    let path = "path=\"/etc/mcs-machine-config-content.json\"";
    write_atomic(&mcs, &config_routing("rendered-provisioned", "10.77.0.0/16"));
    agent.wait_metric(&ns, INFO, &["name=\"rendered-provisioned\"", path], Some(1.0));
    agent.wait_metric(&ns, PRESENT, &[first], Some(1.0));
    agent.wait_metric(&ns, ABSENT, &[MC_SOURCE], Some(0.0));
    write_atomic(&mcs, &config_routing("rendered-provisioned-2", "10.78.0.0/16"));
    agent.wait_metric(&ns, INFO, &["name=\"rendered-provisioned-2\"", path], Some(1.0));
    agent.wait_metric(&ns, PRESENT, &[second], Some(0.0));
    let body = agent.metrics(&ns);
    assert_eq!(metric_value(&body, PRESENT, &[first]), None, "{body}");
    assert_eq!(
        metric_value(&body, "routewarden_expected_routes", &[]),
        Some(1.0),
        "{body}"
    );
    std::fs::write(&mcs, config_routing("rendered-provisioned-3", "10.77.0.0/16")).expect("rewrite in place");
    agent.wait_metric(&ns, INFO, &["name=\"rendered-provisioned-3\"", path], Some(1.0));
    agent.wait_metric(&ns, PRESENT, &[first], Some(1.0));
    let (_, drift) = ns.http_get(agent.port, "/drift").expect("/drift answers");
    let drift: serde_json::Value = serde_json::from_str(&drift).expect("JSON");
    let file = "/etc/mcs-machine-config-content.json";
    assert_eq!(drift["machineconfig_file"]["path"], file, "{drift}");
    let (code, out, err) = check(&ns, &root.path, "json");
    assert_eq!(code, Some(0), "the route is there\n{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["machineconfig"], "rendered-provisioned-3", "{v}");
    assert_eq!(v["machineconfig_file"]["path"], file, "{v}");
    agent.assert_running();
}

#[test]
fn serves_without_a_machineconfig_and_notices_one_appear() {
    let ns = NetNs::new();
    let root = TempDir::new("bare-node");
    let mut agent = Agent::start_node(&ns, &root.path, &["--no-units"]);
    agent.wait_metric(&ns, ABSENT, &[MC_SOURCE], Some(1.0));
    assert_eq!(ns.http_get(agent.port, "/readyz").map(|r| r.0), Some(200));
    // The directories do not exist yet: their parents are watched for them.
    let dir = root.path.join("etc/machine-config-daemon");
    std::fs::create_dir_all(&dir).expect("mkdir");
    write_atomic(&dir.join("currentconfig"), &config("rendered-late"));
    named(&agent, &ns, "rendered-late");
    agent.wait_metric(&ns, ABSENT, &[MC_SOURCE], Some(0.0));
    agent.assert_running();
}

/// `routewarden check --host-root ROOT --no-units --format FORMAT`: exit code, stdout, stderr.
fn check(ns: &NetNs, root: &Path, format: &str) -> (Option<i32>, String, String) {
    let out = ns
        .command(support::agent())
        .args(["check", "--no-units", "--format", format, "--host-root"])
        .arg(root)
        .output()
        .expect("run check");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn check_names_the_file_read_and_says_absent() {
    let ns = NetNs::new();
    let root = node_root("check");
    let (code, out, err) = check(&ns, &root.path, "json");
    assert_eq!(
        code,
        Some(0),
        "no MachineConfig: an empty intent, no drift\n{out}{err}"
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["sources"]["machineconfig"], "absent", "{v}");
    assert!(err.contains("no MachineConfig on this node"), "{err}");
    let (code, out, _) = check(&ns, &root.path, "text");
    assert_eq!(code, Some(0));
    assert!(out.contains("Sources: machineconfig absent,"), "{out}");
    std::fs::write(root.path.join("etc/machine-config-daemon/currentconfig"), "").expect("write");
    std::fs::write(
        root.path.join("etc/mcd-currentconfig.json"),
        config("rendered-hs"),
    )
    .expect("write");
    std::fs::write(
        root.path.join("etc/machine-config-daemon/currentimage"),
        "quay.io/example/os@sha256:0123\n",
    )
    .expect("write");
    let (code, out, err) = check(&ns, &root.path, "json");
    assert_eq!(
        code,
        Some(1),
        "the route is not in the namespace: drift\n{out}{err}"
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["machineconfig"], "rendered-hs");
    assert_eq!(
        v["machineconfig_file"]["path"], "/etc/mcd-currentconfig.json",
        "{v}"
    );
    assert_eq!(
        v["machineconfig_file"]["image"], "quay.io/example/os@sha256:0123",
        "{v}"
    );
    assert_eq!(v["sources"]["machineconfig"], "up");
    let (_, out, _) = check(&ns, &root.path, "text");
    assert!(
        out.contains("File: /etc/mcd-currentconfig.json (written "),
        "{out}"
    );
    assert!(out.contains("Image: quay.io/example/os@sha256:0123"), "{out}");
}
