//! The status page (`GET /`) of `routewarden serve` against the real kernel, in a
//! network namespace the test creates: a MachineConfig whose name, file path and
//! device hold markup (shown as text), the route rows against `/drift`, and a
//! route deleted showing as missing with its reason. Run as root.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use support::{wait_for, Agent, NetNs, TempDir};

const MC_NAME: &str = "<script>alert('mc')</script>";
const KEYFILE: &str = "/etc/NetworkManager/system-connections/<u>k</u>.nmconnection";
const DEVICE: &str = "<em>d";

/// A MachineConfig with markup in its name, in a keyfile's path (a route via ens5,
/// 10.7.0.0/24) and in a device name (a unit's route 10.8.0.0/24: that device does
/// not exist, and the reason says so).
fn machineconfig(dir: &TempDir) -> PathBuf {
    let keyfile = "[connection]\nid=<b>conn</b>\ntype=ethernet\ninterface-name=ens5\n\
                   [ipv4]\nmethod=manual\naddress1=172.18.0.2/16\nroute1=10.7.0.0/24,172.18.0.1\n";
    let unit = format!(
        "[Service]\nType=oneshot\nExecStart=/usr/sbin/ip route add 10.8.0.0/24 via 172.18.0.1 dev {DEVICE}\n\
         [Install]\nWantedBy=multi-user.target\n"
    );
    let mc = serde_json::json!({
        "kind": "MachineConfig",
        "metadata": {"name": MC_NAME},
        "spec": {"config": {
            "ignition": {"version": "3.2.0"},
            "systemd": {"units": [{"name": "r.service", "enabled": true, "contents": unit}]},
            "storage": {"files": [{"path": KEYFILE, "mode": 384,
                                   "contents": {"source": data_url(keyfile)}}]}
        }}
    });
    let path = dir.path.join("currentconfig");
    std::fs::write(&path, mc.to_string()).expect("write MachineConfig");
    path
}

fn data_url(text: &str) -> String {
    let mut out = String::from("data:,");
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// (destination, state, reason codes) of each row of the page's routes table.
fn page_routes(html: &str) -> Vec<(String, String, Vec<String>)> {
    let table = html
        .split("<table id=\"routes\">")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .unwrap_or_else(|| panic!("no routes table:\n{html}"));
    let field = |row: &str, name: &str| -> String {
        let start = format!("<td data-field=\"{name}\">");
        row.split(&start)
            .nth(1)
            .and_then(|c| c.split("</td>").next())
            .unwrap_or_default()
            .to_owned()
    };
    table
        .lines()
        .filter_map(|row| {
            let state = row
                .strip_prefix("<tr data-state=\"")?
                .split('"')
                .next()?
                .to_owned();
            let codes = field(row, "reasons")
                .split("<code>")
                .skip(1)
                .filter_map(|c| c.split("</code>").next())
                .map(str::to_owned)
                .collect();
            Some((field(row, "destination"), state, codes))
        })
        .collect()
}

/// The same from `/drift`.
fn drift_routes(drift: &Value) -> Vec<(String, String, Vec<String>)> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    drift["routes"]
        .as_array()
        .unwrap_or_else(|| panic!("no routes in /drift: {drift}"))
        .iter()
        .map(|r| {
            let codes = r["reason_codes"].as_array().map(|c| c.iter().map(text).collect());
            (
                text(&r["destination"]),
                text(&r["state"]),
                codes.unwrap_or_default(),
            )
        })
        .collect()
}

fn get(ns: &NetNs, agent: &Agent, path: &str) -> String {
    match ns.http_get(agent.port, path) {
        Some((200, body)) => body,
        other => panic!("GET {path}: {other:?}\nagent log:\n{}", agent.logs()),
    }
}

/// Page and /drift read until they agree (each is its own request); both.
fn agreeing(ns: &NetNs, agent: &Agent) -> (String, Value) {
    wait_for(
        Duration::from_secs(10),
        "the page's routes to match /drift",
        || {
            let html = get(ns, agent, "/");
            let drift: Value = serde_json::from_str(&get(ns, agent, "/drift")).expect("/drift is JSON");
            (page_routes(&html) == drift_routes(&drift)).then_some((html, drift))
        },
    )
}

#[test]
fn page_shows_the_node_as_text_and_follows_the_drift() {
    let ns = NetNs::new();
    ns.ip("route add 10.7.0.0/24 via 172.18.0.1 dev ens5");
    let dir = TempDir::new("page");
    let mc = machineconfig(&dir);
    let agent = Agent::start(&ns, &mc, &["--no-units"]);

    let (status, head, html) = ns.http_get_with_head(agent.port, "/").expect("GET /");
    assert_eq!(status, 200, "{head}\n{html}");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-type: text/html; charset=utf-8"), "{head}");
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    for text in [MC_NAME, KEYFILE, DEVICE] {
        assert!(
            html.contains(&escaped(text)),
            "{text:?} not shown as text:\n{html}"
        );
        assert!(!html.contains(text), "{text:?} left as markup:\n{html}");
    }
    assert!(
        !html.contains("<script") && !html.contains("<u>") && !html.contains("<em>"),
        "{html}"
    );

    let (html, drift) = agreeing(&ns, &agent);
    let rows = page_routes(&html);
    let state = |dest: &str| rows.iter().find(|r| r.0 == dest).map(|r| r.1.clone());
    assert_eq!(state("10.7.0.0/24").as_deref(), Some("present"), "{html}");
    assert_eq!(state("10.8.0.0/24").as_deref(), Some("missing"), "{html}");
    let reason = format!(
        "<li><code>device-missing</code> device {} does not exist</li>",
        escaped(DEVICE)
    );
    assert!(
        html.contains(&reason),
        "{reason} not on the page:\n{html}\n/drift: {drift}"
    );
    assert!(
        html.contains("reloads every 5 s") && html.contains("<a href=\"drift\">"),
        "{html}"
    );

    ns.ip("route del 10.7.0.0/24");
    let (html, drift) = wait_for(Duration::from_secs(10), "the route missing on the page", || {
        let (html, drift) = agreeing(&ns, &agent);
        (page_routes(&html)
            .iter()
            .any(|r| r.0 == "10.7.0.0/24" && r.1 == "missing"))
        .then_some((html, drift))
    });
    let (_, _, codes) = drift_routes(&drift)
        .into_iter()
        .find(|r| r.0 == "10.7.0.0/24")
        .expect("route in /drift");
    assert!(!codes.is_empty(), "a missing route has a reason: {drift}");
    let route = drift["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["destination"] == "10.7.0.0/24");
    let texts = route
        .and_then(|r| r["reasons"].as_array())
        .cloned()
        .unwrap_or_default();
    for text in texts.iter().filter_map(Value::as_str) {
        assert!(
            html.contains(&escaped(text)),
            "reason {text:?} not on the page:\n{html}"
        );
    }
}
