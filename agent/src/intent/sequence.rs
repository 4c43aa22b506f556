//! Intent stage: what a unit's commands leave behind, read in the order they run
//! (`ExecStartPre`, `ExecStart`, `ExecStartPost`, and the scripts they call).
//!
//! - `ip route add|prepend` go first in their slot (same table, destination,
//!   TOS, source prefix and metric), `append` last, `replace` takes the place of
//!   the first route of the slot (or adds), `change` too, and `delete` removes
//!   the first route matching what it names (every hop, for a multipath
//!   route) — among the routes this unit declared before (what other units do runs in an order nobody knows).
//! - `nmcli ... ipvN.routes LIST` (no `+`) makes LIST the routes of that
//!   profile or device: the routes this unit gave it before go, and so do the
//!   routes its keyfile declares (a device's: the keyfiles bound to it); `+`
//!   adds, `-` removes the routes it lists.

use crate::model::{ExpectedHop, ExpectedRoute, Family, SourceKind, TABLE_MAIN};

use super::build::Builder;
use super::iproute::{Command, Verb};
use super::nmcli::{Change, Op, Target};
use super::spec::{RouteSpec, IPV6_DEFAULT_METRIC};

/// What the kernel tells routes of one key apart by, besides the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    family: Family,
    table: u32,
    destination: ipnet::IpNet,
    tos: u8,
    source: Option<ipnet::IpNet>,
    metric: u32,
}

fn kernel_default(family: Family) -> u32 {
    match family {
        Family::Ipv4 => 0,
        Family::Ipv6 => IPV6_DEFAULT_METRIC,
    }
}

/// The slot of a declared route, when its metric is known: named, or the
/// kernel's default for a route `ip route` adds (NetworkManager's default is
/// its own).
fn slot(r: &ExpectedRoute) -> Option<Slot> {
    let metric = match (r.metric, r.source.kind) {
        (Some(m), _) => m,
        (None, SourceKind::IpRoute) => kernel_default(r.family),
        (None, _) => return None,
    };
    Some(Slot {
        family: r.family,
        table: r.table,
        destination: r.destination,
        tos: r.tos,
        source: r.source_prefix,
        metric,
    })
}

/// Does `r` match what a `delete` names (what it does not name matches)?
fn deleted_by(r: &ExpectedRoute, cmd: &Command) -> bool {
    let spec = &cmd.route;
    let metric = spec.metric.map(|m| match (r.family, m) {
        (Family::Ipv6, 0) => IPV6_DEFAULT_METRIC,
        _ => m,
    });
    r.family == Family::of_net(&spec.destination)
        && r.destination == spec.destination
        && r.table == spec.table.unwrap_or(TABLE_MAIN)
        && r.tos == spec.tos
        && r.source_prefix == spec.source_prefix
        && metric.is_none_or(|m| slot(r).is_some_and(|s| s.metric == m))
        && names_hops_of(spec, r)
        && (!cmd.kind_named || r.kind == spec.kind)
}

/// The hops a `delete` names are `r`'s: its gateway and device when it names
/// one hop, every hop in any order when it names several.
fn names_hops_of(spec: &RouteSpec, r: &ExpectedRoute) -> bool {
    if !spec.next_hops.is_empty() {
        return same_hops(&spec.next_hops, &r.next_hops);
    }
    spec.gateway.is_none_or(|g| r.gateway == Some(g))
        && spec.device.as_ref().is_none_or(|d| r.device.as_ref() == Some(d))
}

/// The same declared hops, in any order (weights aside).
fn same_hops(a: &[ExpectedHop], b: &[ExpectedHop]) -> bool {
    let within = |x: &[ExpectedHop], y: &[ExpectedHop]| {
        x.iter()
            .all(|h| y.iter().any(|o| o.gateway == h.gateway && o.device == h.device))
    };
    within(a, b) && within(b, a)
}

/// Does `r` match a route an `nmcli -ipvN.routes` lists?
fn removed_by(r: &ExpectedRoute, spec: &RouteSpec) -> bool {
    r.destination == spec.destination
        && r.gateway == spec.gateway
        && spec.metric.is_none_or(|m| r.metric == Some(m))
        && spec.table.is_none_or(|t| r.table == t)
}

impl Builder<'_> {
    /// The routes declared from here on belong to one unit (or one dispatcher
    /// script) whose commands are read in order.
    pub(super) fn begin_sequence(&mut self) {
        self.sequence_start = self.out.routes.len();
    }

    /// Apply an `ip route` command to the routes of the sequence.
    pub(super) fn ip_route(&mut self, cmd: Command, route: ExpectedRoute) {
        let start = self.sequence_start;
        let new_slot = slot(&route);
        let in_slot = |r: &ExpectedRoute| new_slot.is_some() && slot(r) == new_slot;
        let first = self.out.routes[start..]
            .iter()
            .position(in_slot)
            .map(|i| start + i);
        let last = self.out.routes[start..]
            .iter()
            .rposition(in_slot)
            .map(|i| start + i);
        match (cmd.verb, first, last) {
            (Verb::Delete, _, _) => {
                if let Some(i) = self.out.routes[start..].iter().position(|r| deleted_by(r, &cmd)) {
                    self.out.routes.remove(start + i);
                }
            }
            (Verb::Replace | Verb::Change, Some(i), _) => self.out.routes[i] = route,
            (Verb::Add, Some(i), _) => self.out.routes.insert(i, route),
            (Verb::Append, _, Some(i)) => self.out.routes.insert(i + 1, route),
            _ => self.out.routes.push(route),
        }
    }

    /// The key a declaration through NetworkManager is filed under: the
    /// profile (by its first name) or the device.
    pub(super) fn nm_key(&self, target: &Target) -> String {
        match target {
            Target::Device(dev) => format!("device {dev}"),
            Target::Connection(name) => {
                let known = self
                    .connections
                    .iter()
                    .find(|c| c.names.iter().any(|n| n == name));
                let canonical = known.and_then(|c| c.names.first()).unwrap_or(name);
                format!("connection {canonical}")
            }
        }
    }

    /// The keys whose routes an `nmcli` property on `target` replaces or removes:
    /// its own, and for a device the profiles bound to it.
    fn nm_keys(&self, target: &Target) -> Vec<String> {
        let mut keys = vec![self.nm_key(target)];
        if let Target::Device(dev) = target {
            keys.extend(
                self.connections
                    .iter()
                    .filter(|c| c.device.as_ref() == Some(dev))
                    .filter_map(|c| c.names.first())
                    .map(|n| format!("connection {n}")),
            );
        }
        keys
    }

    /// Before the routes of an `nmcli` property are added: what a set replaces
    /// and what a removal removes, among this unit's routes and the keyfiles'.
    pub(super) fn nmcli_change(&mut self, target: &Target, change: &Change) {
        let keys = self.nm_keys(target);
        let start = self.sequence_start;
        let mine = |i: usize, r: &ExpectedRoute| {
            (i >= start || r.source.kind == SourceKind::Keyfile)
                && r.family == change.family
                && r.traits.declared_by.as_ref().is_some_and(|k| keys.contains(k))
        };
        match change.op {
            Op::Set => {
                let (mut i, mut before_start) = (0, 0);
                self.out.routes.retain(|r| {
                    let keep = !mine(i, r);
                    before_start += usize::from(!keep && i < start);
                    i += 1;
                    keep
                });
                self.sequence_start -= before_start;
            }
            Op::Remove => {
                for spec in &change.routes {
                    let found = self
                        .out
                        .routes
                        .iter()
                        .enumerate()
                        .position(|(i, r)| mine(i, r) && removed_by(r, spec));
                    if let Some(i) = found {
                        self.out.routes.remove(i);
                        if i < self.sequence_start {
                            self.sequence_start -= 1;
                        }
                    }
                }
            }
            Op::Add => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::intent::{from_bytes, Options};
    use crate::model::Intent;

    const KEYFILE: &str = "[connection]\nid=ens5\ntype=ethernet\ninterface-name=ens5\n[ipv4]\nmethod=manual\naddress1=172.18.0.2/16\nroute1=10.60.0.0/16,172.18.0.1\n";

    /// A MachineConfig with the ens5 keyfile and one unit running `execs`.
    fn intent(execs: &[&str], masked: bool) -> Intent {
        let contents: String = std::iter::once("[Service]\nType=oneshot\n".to_owned())
            .chain(execs.iter().map(|e| format!("ExecStart={e}\n")))
            .collect();
        let keyfile = format!("data:,{}", KEYFILE.replace('\n', "%0A").replace(',', "%2C"));
        let mc = serde_json::json!({"spec": {"config": {"ignition": {"version": "3.2.0"},
            "storage": {"files": [{"path": "/etc/NetworkManager/system-connections/ens5.nmconnection",
                                   "mode": 384, "contents": {"source": keyfile}}]},
            "systemd": {"units": [{"name": "r.service", "enabled": true, "mask": masked, "contents": contents}]}}}});
        from_bytes(mc.to_string().as_bytes(), &Options::default()).expect("parses")
    }

    fn routes(i: &Intent) -> Vec<String> {
        i.routes
            .iter()
            .map(|r| {
                let via = r.gateway.map(|g| format!(" via {g}")).unwrap_or_default();
                let metric = r.metric.map(|m| format!(" metric {m}")).unwrap_or_default();
                format!("{}{via}{metric}", r.destination)
            })
            .collect()
    }

    #[test]
    fn a_later_ip_command_acts_on_the_routes_before_it() {
        let i = intent(
            &[
                "/usr/sbin/ip route add 10.80.0.0/16 via 172.18.0.1",
                "/usr/sbin/ip route replace 10.80.0.0/16 via 172.18.0.3",
                "/usr/sbin/ip route add 10.81.0.0/16 via 172.18.0.1",
                "/usr/sbin/ip route prepend 10.81.0.0/16 via 172.18.0.9",
                "/usr/sbin/ip route replace 10.81.0.0/16 via 172.18.0.8",
                "/usr/sbin/ip route add 10.82.0.0/16 via 172.18.0.1",
                "/usr/sbin/ip route replace 10.82.0.0/16 via 172.18.0.2 metric 5",
                "/usr/sbin/ip route add 10.83.0.0/16 via 172.18.0.1",
                "/usr/sbin/ip route del 10.83.0.0/16",
                "/usr/sbin/ip -6 route add 2001:db8::/64 dev ens5 metric 0",
                "/usr/sbin/ip -6 route replace 2001:db8::/64 via fd00::1 dev ens5",
            ],
            false,
        );
        assert_eq!(
            routes(&i),
            [
                "10.60.0.0/16 via 172.18.0.1",
                "10.80.0.0/16 via 172.18.0.3",
                "10.81.0.0/16 via 172.18.0.8",
                "10.81.0.0/16 via 172.18.0.1",
                "10.82.0.0/16 via 172.18.0.1",
                "10.82.0.0/16 via 172.18.0.2 metric 5",
                "2001:db8::/64 via fd00::1",
            ]
        );
    }

    #[test]
    fn a_multipath_route_s_hops_travel_with_it() {
        let hops = |i: &Intent| -> Vec<usize> { i.routes.iter().map(|r| r.next_hops.len()).collect() };
        let two = "/usr/sbin/ip route add 10.90.0.0/16 nexthop via 172.18.0.1 dev ens5 nexthop via 172.19.0.1 dev ens6";
        assert_eq!(hops(&intent(&[two], false)), [0, 2]);
        let replaced = intent(
            &[
                two,
                "/usr/sbin/ip route replace 10.90.0.0/16 via 172.18.0.1 dev ens5",
            ],
            false,
        );
        assert_eq!(hops(&replaced), [0, 0]);
        let back = intent(
            &[
                "/usr/sbin/ip route add 10.90.0.0/16 via 172.18.0.1 dev ens5",
                &two.replace(" add ", " replace "),
            ],
            false,
        );
        assert_eq!(hops(&back), [0, 2]);
        let gone = intent(
            &[
                two,
                "/usr/sbin/ip route del 10.90.0.0/16 nexthop via 172.18.0.1 dev ens5 nexthop via 172.19.0.9 dev ens6",
            ],
            false,
        );
        assert_eq!(hops(&gone), [0, 2], "another hop set is another route");
        let gone = intent(
            &[
                two,
                "/usr/sbin/ip route del 10.90.0.0/16 nexthop via 172.19.0.1 dev ens6 nexthop via 172.18.0.1 dev ens5",
            ],
            false,
        );
        assert_eq!(hops(&gone), [0]);
    }

    #[test]
    fn nmcli_set_replaces_the_profile_s_routes_add_adds_remove_removes() {
        let set = intent(
            &["/usr/bin/nmcli con mod ens5 ipv4.routes '10.61.0.0/16 172.18.0.1'"],
            false,
        );
        assert_eq!(
            routes(&set),
            ["10.61.0.0/16 via 172.18.0.1"],
            "the keyfile's route is replaced"
        );
        let add = intent(
            &["/usr/bin/nmcli con mod ens5 +ipv4.routes '10.61.0.0/16 172.18.0.1'"],
            false,
        );
        assert_eq!(
            routes(&add),
            ["10.60.0.0/16 via 172.18.0.1", "10.61.0.0/16 via 172.18.0.1"]
        );
        let remove = intent(
            &["/usr/bin/nmcli con mod ens5 -ipv4.routes '10.60.0.0/16 172.18.0.1'"],
            false,
        );
        assert!(routes(&remove).is_empty(), "{:?}", routes(&remove));
        let device = intent(
            &["/usr/bin/nmcli dev mod ens5 ipv4.routes '10.62.0.0/16 172.18.0.1'"],
            false,
        );
        assert_eq!(
            routes(&device),
            ["10.62.0.0/16 via 172.18.0.1"],
            "a device's applied routes are replaced, the profile bound to it included"
        );
        let ipv6 = intent(
            &["/usr/bin/nmcli con mod ens5 ipv6.routes 'fd00:1::/64 fd00::1'"],
            false,
        );
        assert_eq!(routes(&ipv6).len(), 2, "another family is left alone");
        let masked = intent(
            &["/usr/bin/nmcli con mod ens5 ipv4.routes '10.61.0.0/16 172.18.0.1'"],
            true,
        );
        assert_eq!(
            routes(&masked),
            ["10.60.0.0/16 via 172.18.0.1"],
            "a masked unit changes nothing"
        );
    }

    #[test]
    fn routes_know_the_unit_command_that_adds_them() {
        let i = intent(
            &["/bin/true", "-/usr/sbin/ip route add 10.80.0.0/16 via 172.18.0.1"],
            false,
        );
        let exec = i.routes[1].traits.exec.as_ref().expect("an exec");
        assert_eq!(
            (exec.property, exec.index, exec.ignore_failure),
            ("ExecStart", 1, true)
        );
        assert!(exec.origin.contains("line 4"), "{}", exec.origin);
        assert!(i.routes[0].traits.exec.is_none(), "a keyfile route has none");
    }
}
