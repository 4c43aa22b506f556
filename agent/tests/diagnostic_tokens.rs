//! A diagnostic names the one token it could not read, in every declaration
//! form (ip route, ip rule, nmcli routes and rules, keyfiles, nmstate), and
//! never a token shaped like anything but a value of a route or rule (a word
//! in capitals, base64: maybe a secret put in the wrong place).

use routewarden::intent::{self, Options};
use routewarden::model::Intent;

fn data(text: &str) -> String {
    use base64::Engine;
    format!(
        "data:;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(text)
    )
}

/// One MachineConfig with a bad token in each form.
fn intent() -> Intent {
    let unit = [
        "[Service]",
        "Type=oneshot",
        "ExecStart=/usr/sbin/ip route add 10.1.0.0/16 via 10.0.0.300 dev ens5",
        "ExecStart=/usr/sbin/ip rule add from 10.2.0.0/16 priority lots table 100",
        "ExecStart=/usr/bin/nmcli connection modify uplink +ipv4.routes \"10.3.0.0/16 192.0.2.1 frob=1\"",
        "ExecStart=/usr/bin/nmcli connection modify uplink +ipv4.routing-rules \"priority 5 from 10.4.0.0/16 sideways 7 table 100\"",
        "ExecStart=/usr/sbin/ip route add 10.5.0.0/16 via 192.0.2.1 metric many",
        "",
    ]
    .join("\n");
    let keyfile = "[connection]\nid=uplink\ninterface-name=ens6\n[ipv4]\nmethod=auto\nroute1=10.6.0.0/40,192.0.2.1\nroute2=10.7.0.0/16,Hunter2-SECRET\n";
    let nmstate = "routes:\n  config:\n  - destination: 10.8.0.0/16\n    next-hop-address: 192.0.2.999\n    next-hop-interface: ens6\nroute-rules:\n  config:\n  - ip-to: 10.9.0.0/99\n    priority: 40\n    route-table: 100\n";
    let mc = serde_json::json!({
        "kind": "MachineConfig", "metadata": {"name": "tokens"},
        "spec": {"config": {"ignition": {"version": "3.2.0"},
            "storage": {"files": [
                {"path": "/etc/NetworkManager/system-connections/uplink.nmconnection", "mode": 384,
                 "contents": {"source": data(keyfile)}},
                {"path": "/etc/nmstate/openshift/cluster.yml", "mode": 420,
                 "contents": {"source": data(nmstate)}}
            ]},
            "systemd": {"units": [{"name": "t.service", "enabled": true, "contents": unit}]}}}
    });
    intent::from_bytes(mc.to_string().as_bytes(), &Options::default()).expect("parses")
}

fn message(intent: &Intent, origin: &str) -> String {
    let found: Vec<&str> = intent
        .diagnostics
        .iter()
        .filter(|d| d.origin == origin)
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one diagnostic at {origin}: {:#?}",
        intent.diagnostics
    );
    found[0].to_owned()
}

#[test]
fn each_form_names_its_offending_token() {
    let i = intent();
    let cases = [
        ("unit t.service line 3", "\"10.0.0.300\""),
        ("unit t.service line 4", "\"lots\""),
        ("unit t.service line 5", "\"frob\""),
        ("unit t.service line 6", "\"sideways\""),
        ("unit t.service line 7", "\"many\""),
        (
            "file /etc/NetworkManager/system-connections/uplink.nmconnection line 6",
            "\"10.6.0.0/40\"",
        ),
        (
            "file /etc/nmstate/openshift/cluster.yml routes.config[0]",
            "\"192.0.2.999\"",
        ),
        (
            "file /etc/nmstate/openshift/cluster.yml route-rules.config[0]",
            "\"10.9.0.0/99\"",
        ),
    ];
    for (origin, token) in cases {
        let m = message(&i, origin);
        assert!(m.contains(token), "{origin}: {token} named in {m:?}");
    }
}

#[test]
fn a_token_not_shaped_like_a_value_is_not_shown() {
    let i = intent();
    let m = message(
        &i,
        "file /etc/NetworkManager/system-connections/uplink.nmconnection line 7",
    );
    assert!(m.contains("(a value not shown)"), "{m}");
    let all = format!("{:?}", i.diagnostics);
    assert!(!all.contains("Hunter2"), "{all}");
}
