//! A rendered MachineConfig holds the pull secret: nothing routewarden prints,
//! logs or serves may contain file contents. A secret is planted in every place
//! the agent reads or skips, and every output is searched for it.

mod support;

use std::time::Duration;

use support::{wait_for, Agent, NetNs};

const SECRET: &str = "S3CR3T-PULL-TOKEN-8d1f";

fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Valid, with the secret in the pull secret, a keyfile's psk, a unit's
/// Environment and in route-related lines that cannot be read.
fn machineconfig() -> String {
    let pull = format!("{{\"auths\":{{\"quay.io\":{{\"auth\":\"{}\"}}}}}}", b64(SECRET));
    let keyfile = format!(
        "[connection]\nid=wifi\ninterface-name=wlan0\n[wifi-security]\npsk={SECRET}\n[ipv4]\nroute1=10.9.0.0/16,{SECRET}\nroute2=10.8.0.0/16\n"
    );
    let unit = format!(
        "[Service]\nType=oneshot\nEnvironment=TOKEN={SECRET}\nExecStart=/usr/sbin/ip route add 10.7.0.0/16 via 172.18.0.1 token $TOKEN\nExecStart=/usr/sbin/ip route add 10.6.0.0/16 via 172.18.0.1 dev ens5\n"
    );
    serde_json::json!({
        "kind": "MachineConfig",
        "metadata": {"name": "rendered-worker-secret"},
        "spec": {"config": {
            "ignition": {"version": "3.2.0"},
            "storage": {"files": [
                {"path": "/var/lib/kubelet/config.json", "mode": 384, "contents": {"source": format!("data:;base64,{}", b64(&pull))}},
                {"path": "/etc/NetworkManager/system-connections/wifi.nmconnection", "mode": 384,
                 "contents": {"source": format!("data:;base64,{}", b64(&keyfile))}}
            ]},
            "systemd": {"units": [{"name": "r.service", "enabled": true, "contents": unit}]}
        }}
    })
    .to_string()
}

fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "{what} shows the planted secret:\n{text}");
    assert!(
        !text.contains(&b64(SECRET)),
        "{what} shows the planted secret (base64):\n{text}"
    );
}

#[test]
fn no_output_shows_file_contents() {
    let ns = NetNs::new();
    let dir = support::TempDir::new("secret");
    let mc = dir.path.join("currentconfig");
    std::fs::write(&mc, machineconfig()).expect("write");
    let path = mc.to_str().expect("utf-8");

    for args in [vec!["expected"], vec!["expected", "--format", "json"]] {
        let out = ns
            .command(support::agent())
            .args(&args)
            .args(["--machineconfig", path])
            .output()
            .expect("run");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("10.6.0.0/16"),
            "the readable route is listed: {text}"
        );
        assert!(
            text.contains("error"),
            "the unreadable lines are diagnostics: {text}"
        );
        assert_clean(&format!("{args:?}"), &text);
    }
    for format in ["text", "json"] {
        let out = ns
            .command(support::agent())
            .args([
                "check",
                "--no-units",
                "--no-networkmanager",
                "--format",
                format,
                "--machineconfig",
                path,
            ])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_clean(&format!("check --format {format}"), &text);
    }

    let agent = Agent::start(&ns, &mc, &["--no-units", "--no-networkmanager"]);
    let drift = wait_for(Duration::from_secs(10), "/drift", || {
        ns.http_get(agent.port, "/drift")
    })
    .1;
    let metrics = ns
        .http_get(agent.port, "/metrics")
        .map(|r| r.1)
        .unwrap_or_default();
    std::fs::write(&mc, format!("{{\"spec\": {{\"config\": {{\"storage\": {{\"files\": [{{\"path\": \"{SECRET}\", \"mode\": \"{SECRET}\"}}]}}}}}}}}"))
        .expect("write a broken config");
    wait_for(Duration::from_secs(10), "the broken config to be noticed", || {
        agent
            .logs()
            .contains("keeping the last good intent")
            .then_some(())
    });
    assert_clean("/drift", &drift);
    assert_clean("/metrics", &metrics);
    assert_clean("the agent's log", &agent.logs());
}
