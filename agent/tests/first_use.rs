//! What a new administrator meets first: the JSON's identifying fields, the
//! exit code when units cannot be read, `--no-units` in text, the command
//! line's short forms, and the daemon's log lines (a source down from
//! startup, the intent's diagnostics, a MachineConfig not readable before
//! any was, drift as it starts and ends, JSON lines). In network namespaces
//! the tests make; run as root.

mod support;

use std::process::{Command, Output};
use std::time::Duration;

use clap::Parser;
use routewarden::cli::{Cli, Command as Sub};
use serde_json::Value;
use support::{ip_machineconfig, wait_for, Agent, NetNs, TempDir};

const ROUTE: &str = "route add 10.1.0.0/24 via 172.18.0.1 dev ens5";

/// `routewarden ARGS --machineconfig FILE` in the namespace, FILE holding `mc`.
fn run(ns: &NetNs, mc: &str, args: &[&str]) -> Output {
    let dir = TempDir::new("first-use");
    let path = dir.path.join("mc.json");
    std::fs::write(&path, mc).expect("write");
    ns.command(support::agent())
        .args(args)
        .arg("--machineconfig")
        .arg(&path)
        .output()
        .expect("run")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn check_json_names_the_node_the_time_and_the_schema() {
    let ns = NetNs::new();
    ns.ip(ROUTE);
    let out = run(
        &ns,
        &ip_machineconfig(&[ROUTE]),
        &[
            "check",
            "-o",
            "json",
            "--no-units",
            "--no-networkmanager",
            "--node-name",
            "worker-7",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["node"], "worker-7");
    let at = v["evaluated_at"].as_str().expect("evaluated_at");
    humantime::parse_rfc3339(at).unwrap_or_else(|e| panic!("{at}: {e}"));
    assert_eq!(v["sources"]["systemd"], "skipped", "the strings stay");
    assert_eq!(
        v["sources_detail"]["systemd"],
        serde_json::json!({"state": "skipped", "reason": null})
    );
    assert_eq!(v["sources_detail"]["netlink"]["state"], "up");
    let route = &v["routes"][0];
    assert_eq!(route["source"]["origin"], "unit r.service line 3");
    assert_eq!(
        route["source"]["origin_detail"],
        serde_json::json!({"unit": "r.service", "line": 3})
    );
    assert_eq!(
        route["observed"][0]["metric"], 0,
        "the kernel's metric, 0 when none is stored: {route}"
    );
    assert_eq!(v["units"][0]["state"], "skipped");
}

#[test]
fn routes_fine_and_units_unreadable_exits_zero_and_says_so() {
    let ns = NetNs::new();
    ns.ip(ROUTE);
    let mc = ip_machineconfig(&[ROUTE]);
    let args = [
        "check",
        "--no-networkmanager",
        "--dbus-address",
        "unix:path=/nonexistent/rw-bus",
    ];
    let out = run(&ns, &mc, &args);
    assert_eq!(out.status.code(), Some(0), "as the README's exit-code table says");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Result: no drift"), "{text}");
    assert!(text.contains("systemd down: "), "{text}");
    assert!(
        text.contains("Units: 1, unknown (systemd could not be asked, see Sources): r.service"),
        "{text}"
    );
    assert_eq!(
        text.matches("/nonexistent/rw-bus").count(),
        1,
        "the bus error said once: {text}"
    );
}

#[test]
fn no_units_text_says_skipped_without_a_table_of_dashes() {
    let ns = NetNs::new();
    ns.ip(ROUTE);
    let out = run(
        &ns,
        &ip_machineconfig(&[ROUTE]),
        &["check", "--no-units", "--no-networkmanager"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Units: 1, skipped (not asked (--no-units)): r.service"),
        "{text}"
    );
    assert!(!text.contains("ACTIVE  SUB"), "no units table: {text}");
    assert!(
        text.contains("present  ipv4    10.1.0.0/24  172.18.0.1  ens5    main"),
        "{text}"
    );
    assert!(
        text.ends_with("Summary: 1 route (1 present), 0 rules, 1 unit (1 skipped), 0 diagnostics\n"),
        "{text}"
    );
}

#[test]
fn short_forms_and_listen_addresses_parse() {
    let parse = |args: &[&str]| Cli::try_parse_from([&["routewarden"], args].concat());
    for cmd in ["check", "expected"] {
        assert!(parse(&[cmd, "-o", "json"]).is_ok(), "{cmd} -o json");
    }
    assert!(parse(&["lint", "-o", "sarif"]).is_ok());
    let listen = |a: &str| match parse(&["serve", "--listen", a]).map(|c| c.command) {
        Ok(Sub::Serve(s)) => Some(s.listen.to_string()),
        _ => None,
    };
    assert_eq!(listen(":9810").as_deref(), Some("[::]:9810"));
    assert_eq!(listen("localhost:9810").as_deref(), Some("127.0.0.1:9810"));
    assert_eq!(listen("10.0.0.1:9810").as_deref(), Some("10.0.0.1:9810"));
    let logs = parse(&["check", "--log-format", "json", "--log-level", "debug"]).expect("log flags");
    assert_eq!(logs.log.log_level.as_deref(), Some("debug"));
    assert!(parse(&["--log-format", "xml", "check"]).is_err());
}

#[test]
fn serve_help_does_not_offer_stdin() {
    let help = Command::new(support::agent())
        .args(["serve", "--help"])
        .output()
        .expect("help");
    let help = String::from_utf8_lossy(&help.stdout);
    let mc = help
        .split("--machineconfig")
        .nth(1)
        .and_then(|h| h.split("--host-root").next())
        .unwrap_or("");
    assert!(mc.contains("not stdin"), "{mc}");
    assert!(!mc.contains("`-`"), "{mc}");
    assert!(
        help.contains("--log-level") && help.contains("RUST_LOG"),
        "{help}"
    );
    let refused = Command::new(support::agent())
        .args(["serve", "--machineconfig", "-"])
        .output()
        .expect("serve -");
    assert_eq!(refused.status.code(), Some(2));
}

/// The agent's log, as lines.
fn lines(agent: &Agent) -> Vec<String> {
    agent.logs().lines().map(str::to_owned).collect()
}

fn wait_log(agent: &Agent, what: &str, f: impl Fn(&str) -> bool) {
    wait_for(Duration::from_secs(20), what, || {
        agent.logs().lines().any(&f).then_some(())
    });
}

#[test]
fn serve_logs_a_source_down_from_startup_and_drift_as_it_changes() {
    let ns = NetNs::new();
    ns.ip(ROUTE);
    let dir = TempDir::new("serve-logs");
    let mc = dir.path.join("mc.json");
    let text = ip_machineconfig(&[ROUTE, "route add 10.2.0.0/16 via 172.18.0.1 table no-such-table"]);
    std::fs::write(&mc, &text).expect("write");
    let agent = Agent::start(
        &ns,
        &mc,
        &[
            "--no-networkmanager",
            "--dbus-address",
            "unix:path=/nonexistent/rw-bus",
        ],
    );
    wait_log(&agent, "systemd down", |l| {
        l.contains("WARN") && l.contains("source down") && l.contains("source=systemd")
    });
    let log = lines(&agent);
    let start = log.iter().find(|l| l.contains("serving")).expect("startup line");
    assert!(
        start.contains(&format!("version={}", env!("CARGO_PKG_VERSION"))),
        "{start}"
    );
    let down = log
        .iter()
        .find(|l| l.contains("source=systemd"))
        .expect("down line");
    assert!(
        down.contains("reason=\"cannot connect to D-Bus at unix:path=/nonexistent/rw-bus"),
        "quoted: {down}"
    );
    let diag = log
        .iter()
        .find(|l| l.contains("intent diagnostic"))
        .expect("the diagnostic is logged");
    assert!(
        diag.contains("WARN") && diag.contains("origin=\"unit r.service line 4\""),
        "{diag}"
    );
    assert!(diag.contains("no-such-table"), "the offending token: {diag}");
    assert!(!diag.contains("ExecStart"), "never the file's contents: {diag}");

    ns.ip("route del 10.1.0.0/24");
    wait_log(&agent, "drift started", |l| l.contains("drift started"));
    ns.ip(ROUTE);
    wait_log(&agent, "drift ended", |l| l.contains("drift ended"));
    let log = agent.logs();
    let started: Vec<&str> = log.lines().filter(|l| l.contains("drift started")).collect();
    assert_eq!(started.len(), 1, "{log}");
    assert!(
        started[0].contains("what=\"ipv4 10.1.0.0/24 via 172.18.0.1 dev ens5 table main\"")
            && started[0].contains("state=missing"),
        "{}",
        started[0]
    );
    assert_eq!(log.matches("source down").count(), 1, "said once: {log}");
}

#[test]
fn serve_without_a_good_intent_yet_never_says_it_keeps_one() {
    use std::os::unix::fs::PermissionsExt;
    let ns = NetNs::new();
    let dir = TempDir::new("no-intent-yet");
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    let invalid = dir.path.join("invalid.json");
    std::fs::write(&invalid, "{ this is not a machineconfig").expect("write");
    let unreadable = dir.path.join("unreadable.json");
    std::fs::write(&unreadable, ip_machineconfig(&[ROUTE])).expect("write");
    std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    let args = ["--no-units", "--no-networkmanager"];
    let broken = Agent::start(&ns, &invalid, &args);
    // As nobody, so that mode 000 really denies it (root would read it).
    let denied = Agent::start_as(&ns, &unreadable, &args, Some("65534"));
    let cannot = |l: &str| l.contains("cannot read the MachineConfig");
    for (agent, why) in [(&broken, "kind=syntax"), (&denied, "kind=permission")] {
        wait_log(agent, "cannot read the MachineConfig", cannot);
        let log = agent.logs();
        let line = log.lines().find(|l| cannot(l)).unwrap_or_default();
        assert!(line.contains("WARN") && line.contains(why), "{line}");
        assert!(
            line.contains("effect=\"no intent was read yet: the MachineConfig's routes are not watched until it can be read\""),
            "{line}"
        );
        assert!(!log.contains("keeping the last good intent"), "{log}");
    }

    std::fs::write(&invalid, ip_machineconfig(&[ROUTE])).expect("write a good config");
    wait_log(&broken, "intent read", |l| l.contains("intent read"));
    std::fs::write(&invalid, "{ broken again").expect("break it");
    wait_log(&broken, "the last good intent kept", |l| {
        cannot(l) && l.contains("effect=\"keeping the last good intent\"")
    });
}

#[test]
fn serve_logs_json_lines_when_asked() {
    let ns = NetNs::new();
    let dir = TempDir::new("serve-json");
    let mc = dir.path.join("mc.json");
    std::fs::write(&mc, ip_machineconfig(&[ROUTE])).expect("write");
    let agent = Agent::start(
        &ns,
        &mc,
        &["--no-units", "--no-networkmanager", "--log-format", "json"],
    );
    wait_log(&agent, "intent read", |l| l.contains("intent read"));
    for line in lines(&agent) {
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["message"].is_string() && v["level"].is_string(), "{line}");
    }
    let first: Value = serde_json::from_str(&lines(&agent)[0]).expect("JSON");
    assert_eq!(first["message"], "serving");
    assert_eq!(first["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn drift_endpoint_has_the_same_fields() {
    let ns = NetNs::new();
    ns.ip(ROUTE);
    let dir = TempDir::new("drift-json");
    let mc = dir.path.join("mc.json");
    std::fs::write(&mc, ip_machineconfig(&[ROUTE])).expect("write");
    let agent = Agent::start(
        &ns,
        &mc,
        &["--no-units", "--no-networkmanager", "--node-name", "worker-9"],
    );
    let (status, body) = ns.http_get(agent.port, "/drift").expect("/drift");
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        (v["schema_version"].clone(), v["node"].clone()),
        (1.into(), "worker-9".into())
    );
    assert!(v["evaluated_at"]
        .as_str()
        .is_some_and(|t| humantime::parse_rfc3339(t).is_ok()));
    assert_eq!(v["sources_detail"]["machineconfig"]["state"], "up");
}
