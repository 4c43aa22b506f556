//! Differential test: the daemon's incremental view against a fresh `check`.
//!
//! A seeded, bounded random walk drives the real kernel in a namespace the test
//! makes: `ip route add|append|prepend|replace|change|del` (IPv4 and IPv6, two
//! tables, unicast and blackhole/unreachable/prohibit routes, gateways and
//! device routes, metrics, a TOS, IPv6 source prefixes, routes through next-hop
//! objects), `ip nexthop add|replace|del` (single hops, groups, blackholes),
//! `ip rule add|del` (IPv4 and IPv6, priorities shared or none, fwmark with and
//! without mask, iif, the tables the routes are in), a link set down and up or
//! renamed, an address removed and added. After each batch, `serve`'s `/drift`
//! must equal what `check` reports of the same kernel, rules and routes (whose
//! table may be left unselected) alike.
//!
//! `RW_DIFF_SEED`, `RW_DIFF_BATCHES` and `RW_DIFF_OPS` (operations per batch)
//! replay or lengthen a run; a failure prints the seed, the batch, its
//! operations, the verdicts that differ and the kernel's routes and rules.

mod support;

use std::collections::BTreeSet;

use support::verdicts::await_agreement;
use support::{Agent, NetNs, TempDir};

/// splitmix64: a small, seeded, reproducible generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const V4_DESTS: [&str; 3] = ["10.1.0.0/24", "10.2.0.0/24", "192.168.1.0/24"];
const V6_DESTS: [&str; 2] = ["2001:db8:1::/64", "2001:db8:2::/64"];
const TABLES: [&str; 2] = ["main", "200"];
const METRICS: [&str; 4] = ["", " metric 0", " metric 50", " metric 100"];
const DROPS: [&str; 3] = ["blackhole", "unreachable", "prohibit"];
const VERBS: [&str; 6] = ["add", "append", "prepend", "replace", "change", "del"];

/// What the intent declares: each route key in several shapes, and rules.
const DECLARED: [&str; 14] = [
    "route add 10.1.0.0/24 via 172.18.0.1 dev ens5",
    "route add 10.1.0.0/24 via 172.19.0.1 dev ens6 table 200 metric 50",
    "route add 10.2.0.0/24 dev ens6 metric 100",
    "route add blackhole 10.2.0.0/24 table 200",
    "route add 192.168.1.0/24 via 172.18.0.1 dev ens5 metric 100",
    "route add 192.168.1.0/24 via 172.18.0.9 dev ens5 table 200",
    "-6 route add 2001:db8:1::/64 via fd00::1 dev ens5",
    "-6 route add 2001:db8:1::/64 dev ens6 table 200 metric 50",
    "-6 route add 2001:db8:2::/64 via fd01::1 dev ens6 metric 100",
    "-6 route add unreachable 2001:db8:2::/64 table 200",
    "rule add pref 100 from 10.1.0.0/16 table 200",
    "rule add pref 110 fwmark 0x30/0x10 table 200",
    "rule add iif ens6 table 201",
    "-6 rule add pref 100 from 2001:db8::/32 table 200",
];

/// A MachineConfig whose unit runs [`DECLARED`].
fn machineconfig() -> String {
    support::ip_machineconfig(&DECLARED)
}

/// One random `ip -batch` line.
fn operation(rng: &mut Rng) -> String {
    match rng.below(23) {
        20..=22 => rule_op(rng),
        0..=13 => route_op(rng),
        14..=16 => nexthop_op(rng),
        17 if rng.chance(20) => rng
            .pick(&[
                "link set ens6 down\nlink set ens6 name ens9\nlink set ens9 up",
                "link set ens9 down\nlink set ens9 name ens6\nlink set ens6 up",
            ])
            .to_owned(),
        17 => rng.pick(&["link set ens6 down", "link set ens6 up"]).to_owned(),
        18 => rng
            .pick(&[
                "address del 172.19.0.2/16 dev ens6",
                "address add 172.19.0.2/16 dev ens6",
            ])
            .to_owned(),
        _ => rng
            .pick(&[
                "address del fd01::2/64 dev ens6",
                "address add fd01::2/64 dev ens6 nodad",
            ])
            .to_owned(),
    }
}

fn route_op(rng: &mut Rng) -> String {
    let v6 = rng.chance(40);
    let verb = rng.pick(&VERBS);
    let table = rng.pick(&TABLES);
    let metric = rng.pick(&METRICS);
    // `ip -batch` lines take no options: the destination gives the family.
    let dest = if v6 {
        rng.pick(&V6_DESTS)
    } else {
        rng.pick(&V4_DESTS)
    };
    let selector = match (v6, rng.below(8)) {
        (false, 0) => " tos 0x10",
        (true, 0) => " from 2001:db8:9::/64",
        _ => "",
    };
    let via = match (v6, rng.below(10)) {
        (_, 0) => return format!("route {verb} {} {dest} table {table}{metric}", rng.pick(&DROPS)),
        (false, 1) => format!("nhid {}", 1 + rng.below(3)),
        (true, 1) => format!("nhid {}", 4 + rng.below(2)),
        (false, 2..=4) => "dev ens6".to_owned(),
        (true, 2..=4) => rng.pick(&["dev ens5", "dev ens6"]).to_owned(),
        (false, _) => rng
            .pick(&[
                "via 172.18.0.1 dev ens5",
                "via 172.18.0.9 dev ens5",
                "via 172.19.0.1 dev ens6",
            ])
            .to_owned(),
        (true, _) => rng
            .pick(&[
                "via fd00::1 dev ens5",
                "via fd00::9 dev ens5",
                "via fd01::1 dev ens6",
            ])
            .to_owned(),
    };
    format!("route {verb} {dest}{selector} {via} table {table}{metric}")
}

/// An `ip rule add|del`: the declared rules, others in their places, and rules
/// selecting the routes' tables. IPv6 rules start `-6 ` (`ip rule` does not take
/// the family from the address): [`apply`] runs them in a batch of their own.
fn rule_op(rng: &mut Rng) -> String {
    let verb = rng.pick(&["add", "del"]);
    let pref = rng.pick(&["pref 100 ", "pref 110 ", "pref 120 ", ""]);
    let v6 = rng.chance(30);
    let family = if v6 { "-6 " } else { "" };
    let selector = match v6 {
        true => rng.pick(&[
            "from 2001:db8::/32",
            "to 2001:db8:1::/64",
            "from 2001:db8::/32 iif ens6",
        ]),
        false => rng.pick(&[
            "from 10.1.0.0/16",
            "fwmark 0x30/0x10",
            "fwmark 0x30",
            "iif ens6",
            "not from 10.1.0.0/16",
            "from 10.1.0.0/16 iif ens6",
        ]),
    };
    let table = rng.pick(&["table 200", "table 201", "table main", "blackhole"]);
    format!("{family}rule {verb} {pref}{selector} {table}")
}

/// A batch of operations: the IPv6 rules (`-6 ...`) through `ip -6 -batch`,
/// the rest (whose addresses give the family) through `ip -batch`.
fn apply(ns: &NetNs, ops: &[String]) {
    let (v6, rest): (Vec<&str>, Vec<&str>) = ops
        .iter()
        .map(String::as_str)
        .partition(|op| op.starts_with("-6 "));
    ns.ip_batch_force(&rest.join("\n"));
    let v6: Vec<&str> = v6.iter().map(|op| op.trim_start_matches("-6 ")).collect();
    ns.ip6_batch_force(&v6.join("\n"));
}

/// Objects 1-3 are IPv4 (3 may be a group of 1 and 2), 4-5 IPv6.
fn nexthop_op(rng: &mut Rng) -> String {
    let id = 1 + rng.below(5);
    let verb = rng.pick(&["add", "replace", "del"]);
    if verb == "del" {
        return format!("nexthop del id {id}");
    }
    let what = match id {
        3 if rng.chance(60) => "group 1/2".to_owned(),
        1..=3 if rng.chance(15) => "blackhole".to_owned(),
        1..=3 => rng
            .pick(&["via 172.18.0.1 dev ens5", "via 172.19.0.1 dev ens6", "dev ens6"])
            .to_owned(),
        _ => rng
            .pick(&["via fd00::1 dev ens5", "via fd01::1 dev ens6"])
            .to_owned(),
    };
    format!("nexthop {verb} id {id} {what}")
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn serve_agrees_with_a_fresh_check_after_every_batch() {
    let seed = env_u64("RW_DIFF_SEED", 20_261_130);
    let batches = env_u64("RW_DIFF_BATCHES", 40);
    let per_batch = env_u64("RW_DIFF_OPS", 8);
    let ns = NetNs::new();
    ns.veth("ens6", "gw1", &["172.19.0.2/16"]);
    ns.ip("-6 addr add fd00::2/64 dev ens5 nodad");
    ns.ip("-6 addr add fd01::2/64 dev ens6 nodad");
    // The declared rules start in the kernel, so the walk takes them from
    // present to missing or mismatched, not only ever missing.
    for rule in DECLARED.iter().filter(|l| l.contains("rule add")) {
        ns.ip(rule);
    }
    let dir = TempDir::new("differential");
    let mc = dir.path.join("mc.json");
    std::fs::write(&mc, machineconfig()).expect("write MachineConfig");
    let mc_text = machineconfig();
    let agent = Agent::start(&ns, &mc, &["--no-units"]);
    let mut rng = Rng(seed);
    let mut agreed = 0;
    let mut seen = BTreeSet::new();
    for batch in 0..batches {
        let ops: Vec<String> = (0..per_batch).map(|_| operation(&mut rng)).collect();
        apply(&ns, &ops);
        match await_agreement(&ns, &agent, &mc_text) {
            Ok(report) => seen.extend(states(&report)),
            Err(differences) => panic!(
                "seed {seed} batch {batch}: /drift differs from check after\n{}\n{differences}\nthe kernel's routes and rules:\n{}\nagent log:\n{}",
                ops.join("\n"),
                kernel_routes(&ns),
                agent.logs()
            ),
        }
        agreed += 1;
    }
    // Agreement on an empty or unchanging report proves nothing: the walk must
    // have moved routes and rules in and out of their declared state.
    for section in ["routes", "rules"] {
        let present = format!("{section} present");
        assert!(
            seen.contains(&present),
            "seed {seed}: no \"{present}\" in {batches} batches; seen {seen:?}"
        );
        assert!(
            seen.iter().any(|s| s.starts_with(section) && *s != present),
            "seed {seed}: no {section} other than present in {batches} batches; seen {seen:?}"
        );
    }
    println!("seed {seed}: {agreed} batches of {per_batch} operations, /drift agreed with check after each");
}

/// `routes present`, `rules missing`...: each section and state in a report.
fn states(report: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for section in ["routes", "rules"] {
        for v in report[section].as_array().into_iter().flatten() {
            out.push(format!("{section} {}", v["state"].as_str().unwrap_or("?")));
        }
    }
    out
}

fn kernel_routes(ns: &NetNs) -> String {
    ["-4", "-6"]
        .iter()
        .map(|f| {
            let out = std::process::Command::new("ip")
                .args([f, "-n", &ns.name, "route", "show", "table", "all"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            out.lines()
                .filter(|l| {
                    l.contains("10.1.0.0")
                        || l.contains("10.2.0.0")
                        || l.contains("192.168.1.0")
                        || l.contains("2001:db8")
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .chain(["-4", "-6"].iter().map(|f| {
            std::process::Command::new("ip")
                .args([f, "-n", &ns.name, "rule", "show"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        }))
        .collect::<Vec<_>>()
        .join("\n")
}
