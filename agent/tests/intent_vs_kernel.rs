//! The intent's reading of `ip route` commands against iproute2 and the kernel
//! themselves: each sequence of commands is run with the real `ip` in a
//! namespace the test makes, and also given to routewarden as one unit's
//! `ExecStart=` lines. Then `check` must find every route the intent expects
//! present, and the intent must expect, per destination, the routes the kernel
//! holds (by next-hop object, or type, gateway and device; routes that differ
//! only by metric are one expected route, as their metric series would be):
//! nothing the commands left is missed, nothing they removed or never added is
//! expected. Run as root.

mod support;

use serde_json::Value;
use support::NetNs;

/// Sequences of `ip` arguments, each one unit; destinations differ between
/// sequences.
const SEQUENCES: &[&[&str]] = &[
    // a later replace in the same unit: only the last gateway is left
    &[
        "route add 10.80.0.0/16 via 172.18.0.1 dev ens5",
        "route replace 10.80.0.0/16 via 172.18.0.3 dev ens5",
    ],
    // prepend then replace: the replace takes the first of the slot
    &[
        "route add 10.81.0.0/16 via 172.18.0.1 dev ens5",
        "route prepend 10.81.0.0/16 via 172.18.0.9 dev ens5",
        "route replace 10.81.0.0/16 via 172.18.0.8 dev ens5",
    ],
    // append then delete by gateway
    &[
        "route add 10.82.0.0/16 via 172.18.0.1 dev ens5",
        "route append 10.82.0.0/16 via 172.18.0.9 dev ens5",
        "route del 10.82.0.0/16 via 172.18.0.1",
    ],
    // a replace with another metric is another slot: both stay
    &[
        "route add 10.83.0.0/16 dev ens5",
        "route replace 10.83.0.0/16 dev ens5 metric 100",
    ],
    // IPv6 metric 0 is 1024, so the replace hits it
    &[
        "-6 route add 2001:db8:83::/64 dev ens5 metric 0",
        "-6 route replace 2001:db8:83::/64 via fd00::1 dev ens5",
    ],
    // abbreviations and C numbers
    &["route add 10.010/16 dev ens5 tab 200 met 5"],
    &["r a 0x0a.92/16 dev ens5 t 0x10 p 7 s 5 w 5"],
    &["route add 10.89.0.0/16 dev ens5 mtu lock 1400 window lock 5 m 7"],
    &[
        "-fam inet route add 10.90.0.0/16 dev ens5",
        "--family inet6 route add 2001:db8:90::/64 dev ens5",
    ],
    // typed routes
    &[
        "route add blackhole 10.84.0.0/16",
        "route add unreachable 10.85.0.0/16 metric 3",
        "route add prohibit 10.86.0.0/16 table 200",
        "route add local 10.93.0.0/16 dev lo",
    ],
    // RFC 5549: an IPv4 route via an IPv6 gateway
    &["route add 10.87.0.0/16 via inet6 fe80::1 dev ens5"],
    // selectors: a TOS route and one without are two routes; an IPv6 source prefix
    &[
        "route add 10.88.0.0/16 dev ens5 tos 0x10",
        "route add 10.88.0.0/16 via 172.18.0.1 dev ens5",
        "-6 route add 2001:db8:88::/64 from 2001:db8:9::/64 dev ens5",
    ],
    // added then deleted: nothing is expected
    &["route add 10.91.0.0/16 dev ens5", "route del 10.91.0.0/16"],
    // refused by the kernel: nothing is expected (a warning says why)
    &["route add 10.3.0.1/16 dev ens5"],
    // a route through a next-hop object
    &[
        "nexthop add id 40 via 172.18.0.1 dev ens5",
        "route add 10.95.0.0/16 nhid 40",
    ],
    // the rules that look up tables 200 and 0x10 above (a route in a table no
    // rule looks up carries no traffic: `unselected`, not present), and an IPv6
    // rule whose family an abbreviated global option names, and a table in octal
    // (`010` is 8 to iproute2)
    &[
        "rule add pref 100 table 200",
        "ru a pref 101 lookup 0x10",
        "-fam inet6 rule add pref 102 from fd00:99::/64 table 200",
        "rule add pref 103 lookup 010",
    ],
];

fn machineconfig() -> String {
    let units: Vec<Value> = SEQUENCES
        .iter()
        .enumerate()
        .map(|(i, lines)| {
            let execs: String = lines
                .iter()
                .map(|l| format!("ExecStart=/usr/sbin/ip {l}\n"))
                .collect();
            let contents = format!("[Service]\nType=oneshot\n{execs}[Install]\nWantedBy=multi-user.target\n");
            serde_json::json!({"name": format!("seq{i}.service"), "enabled": true, "contents": contents})
        })
        .collect();
    serde_json::json!({
        "kind": "MachineConfig", "metadata": {"name": "intent-vs-kernel"},
        "spec": {"config": {"ignition": {"version": "3.2.0"}, "systemd": {"units": units}}}
    })
    .to_string()
}

/// What tells two routes of one key apart here: the next-hop object, else the
/// type, the gateway and the device.
fn identity(r: &Value) -> String {
    if let Some(id) = r["nhid"].as_u64() {
        return format!("nhid {id}");
    }
    let gateway = r["gateway"].as_str().or(r["via"]["host"].as_str()).unwrap_or("-");
    let kind = r["type"].as_str().unwrap_or("unicast");
    format!(
        "{kind} via {gateway} dev {}",
        r["dev"].as_str().or(r["device"].as_str()).unwrap_or("-")
    )
}

/// The kernel's routes to `dest` in `table`, of every type, as identities.
fn kernel_routes(ns: &NetNs, dest: &str, table: &str) -> Vec<String> {
    let family = if dest.contains(':') { "-6" } else { "-4" };
    let out = support::output(
        "ip",
        &[
            "-j", family, "-n", &ns.name, "route", "show", "table", table, "exact", dest,
        ],
    );
    let routes: Vec<Value> = serde_json::from_str(&out).expect("ip -j output");
    let mut ids: Vec<String> = routes.iter().map(identity).collect();
    ids.sort();
    ids.dedup();
    ids
}

#[test]
fn the_intent_expects_what_the_commands_leave_in_the_kernel() {
    let ns = NetNs::new();
    ns.ip("-6 addr add fd00::2/64 dev ens5 nodad");
    for lines in SEQUENCES {
        for line in *lines {
            let mut args = vec!["-n", ns.name.as_str()];
            args.extend(line.split_whitespace());
            let _ = std::process::Command::new("ip").args(&args).output();
        }
    }
    let (_, report) = support::check_json(&ns, &machineconfig());
    let routes = report["routes"].as_array().expect("routes");
    for r in routes {
        // A route in a table no rule looks up is in the kernel all the same
        // (`unselected`: whether it carries traffic is netns_rules.rs's subject).
        let found = r["state"] == "present"
            || (r["state"] == "unselected"
                && r["reason_codes"] == serde_json::json!(["no-rule-selects-table"]));
        assert!(found, "expected but not in the kernel: {r}");
    }
    let rules = report["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), 4, "{rules:?}");
    for r in rules {
        assert_eq!(r["state"], "present", "expected but not in the kernel: {r}");
    }
    let key = |r: &Value| {
        (
            r["destination"].as_str().unwrap_or("").to_owned(),
            r["table"].to_string(),
        )
    };
    let mut keys: Vec<(String, String)> = routes.iter().map(key).collect();
    keys.sort();
    keys.dedup();
    for (dest, table) in &keys {
        let mut expected: Vec<String> = routes
            .iter()
            .filter(|r| key(r) == (dest.clone(), table.clone()))
            .map(identity)
            .collect();
        expected.sort();
        let kernel = kernel_routes(&ns, dest, table);
        assert_eq!(
            expected, kernel,
            "{dest} table {table}: the intent expects (left) what the kernel holds (right)"
        );
    }
    for gone in ["10.91.0.0/16", "10.3.0.0/16"] {
        assert!(
            !routes.iter().any(|r| r["destination"] == gone),
            "{gone} is not in the kernel and must not be expected"
        );
    }
    let warned = report["diagnostics"].as_array().is_some_and(|d| {
        d.iter()
            .any(|d| d["message"].as_str().is_some_and(|m| m.contains("host bits")))
    });
    assert!(
        warned,
        "the refused prefix is a warning: {}",
        report["diagnostics"]
    );
}
