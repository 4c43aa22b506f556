//! Integration tests of the kernel side of the observe stage: dumps, links and
//! notifications read from the real kernel, each test in a network namespace
//! of its own (created and deleted by the test; needs root).

mod support;

use std::collections::HashSet;
use std::time::Duration;

use routewarden::model::{Family, NextHop, ObservedRoute, Protocol, RouteKey};
use routewarden::observe::routes::{dump_links, dump_routes, Event, Watcher, WATCH_RECEIVE_BUFFER};
use support::{output, wait_for, NetNs};

fn key(table: u32, net: &str) -> RouteKey {
    RouteKey::new(table, net.parse().expect("network"))
}

fn hop(gateway: &str, ifindex: u32) -> NextHop {
    NextHop {
        gateway: Some(gateway.parse().expect("address")),
        ifindex: Some(ifindex),
    }
}

/// A namespace with ens5 (172.18.0.2/16, 2001:db8::2/64) and ens6 (172.19.0.2/16).
fn node() -> (NetNs, u32, u32) {
    let ns = NetNs::bare();
    let ens5 = ns.veth("ens5", "gw0", &["172.18.0.2/16", "2001:db8::2/64"]);
    let ens6 = ns.veth("ens6", "gw1", &["172.19.0.2/16"]);
    (ns, ens5, ens6)
}

/// Unicast routes `ip` lists in every table for this family (one line each,
/// multipath next hops are indented continuation lines).
fn ip_unicast_count(ns: &NetNs, family: &str) -> u64 {
    let out = output(
        "ip",
        &[
            "-n", &ns.name, family, "route", "show", "table", "all", "type", "unicast",
        ],
    );
    out.lines()
        .filter(|l| !l.starts_with(char::is_whitespace))
        .count() as u64
}

fn only(routes: &[ObservedRoute], key: RouteKey) -> &ObservedRoute {
    let found: Vec<_> = routes.iter().filter(|r| r.key == key).collect();
    assert_eq!(found.len(), 1, "{key:?} in {routes:?}");
    found[0]
}

#[test]
fn dump_finds_wanted_routes_in_every_table_and_counts_the_rest() {
    let (ns, ens5, ens6) = node();
    ns.ip("route add 192.168.1.0/24 via 172.18.0.1 dev ens5 proto static metric 100");
    ns.ip("route add 10.20.0.0/16 via 172.18.0.1 dev ens5 table 1000");
    ns.ip("route add 10.30.0.0/24 via 172.18.0.1 dev ens5 table 200 metric 7");
    ns.ip("route add 10.30.0.0/24 via 172.19.0.1 dev ens6");
    ns.ip("route add 10.40.0.0/24 nexthop via 172.18.0.1 dev ens5 nexthop via 172.19.0.1 dev ens6");
    ns.ip("route add default via 172.18.0.1 dev ens5");
    ns.ip("-6 route add 2001:db8:1::/48 via 2001:db8::1 dev ens5 metric 50");
    ns.ip("-6 route add default via 2001:db8::1 dev ens5");
    let batch: String = (0..1000)
        .map(|i| {
            format!(
                "route add 10.100.{}.{}/32 via 172.19.0.1 dev ens6\n",
                i / 256,
                i % 256
            )
        })
        .collect();
    ns.ip_batch(&batch);
    let wanted: HashSet<RouteKey> = [
        key(254, "192.168.1.0/24"),
        key(1000, "10.20.0.0/16"),
        key(200, "10.30.0.0/24"),
        key(254, "10.40.0.0/24"),
        key(254, "0.0.0.0/0"),
        key(254, "2001:db8:1::/48"),
        key(254, "::/0"),
        key(254, "10.99.0.0/24"),
    ]
    .into_iter()
    .collect();

    let dump = ns.run(|| dump_routes(&wanted)).expect("dump routes");

    let r = only(&dump.routes, key(254, "192.168.1.0/24"));
    assert_eq!(
        (r.next_hops.clone(), r.metric, r.protocol),
        (vec![hop("172.18.0.1", ens5)], Some(100), Protocol(4))
    );
    assert_eq!(
        only(&dump.routes, key(1000, "10.20.0.0/16")).next_hops,
        vec![hop("172.18.0.1", ens5)]
    );
    let r = only(&dump.routes, key(200, "10.30.0.0/24"));
    assert_eq!(
        (r.next_hops.clone(), r.metric),
        (vec![hop("172.18.0.1", ens5)], Some(7)),
        "table 200, not main's 10.30.0.0/24"
    );
    let r = only(&dump.routes, key(254, "10.40.0.0/24"));
    assert_eq!(
        r.next_hops,
        vec![hop("172.18.0.1", ens5), hop("172.19.0.1", ens6)]
    );
    assert_eq!(
        only(&dump.routes, key(254, "0.0.0.0/0")).next_hops,
        vec![hop("172.18.0.1", ens5)]
    );
    let r = only(&dump.routes, key(254, "2001:db8:1::/48"));
    assert_eq!(
        (r.key.family, r.next_hops.clone(), r.metric),
        (Family::Ipv6, vec![hop("2001:db8::1", ens5)], Some(50))
    );
    assert_eq!(
        only(&dump.routes, key(254, "::/0")).next_hops,
        vec![hop("2001:db8::1", ens5)]
    );
    assert_eq!(
        dump.routes.len(),
        7,
        "nothing unwanted kept, the absent key not found"
    );

    assert_eq!(dump.ipv4, ip_unicast_count(&ns, "-4"));
    assert_eq!(dump.ipv6, ip_unicast_count(&ns, "-6"));
    assert!(
        dump.ipv4 > 1000,
        "the 1000 unwanted routes are counted: {}",
        dump.ipv4
    );
    assert_eq!(dump.total, dump.ipv4 + dump.ipv6);
    assert!(dump.skipped > 0, "local and broadcast entries are skipped");
}

#[test]
fn links_report_state_and_when_an_address_was_last_added() {
    let (ns, ens5, _) = node();
    ns.ip("link add x0 type veth peer name x1");
    let links = ns.block_on(|| async { dump_links().await }).expect("dump links");
    let get = |name: &str| {
        links
            .iter()
            .find(|l| l.name.as_str() == name)
            .cloned()
            .expect("link listed")
    };
    let (e, x0) = (get("ens5"), get("x0"));
    assert_eq!(e.index, ens5);
    assert!(e.up && e.carrier, "ens5 and its peer are up: {e:?}");
    assert!(
        !x0.up && !x0.carrier && x0.last_configured_usec.is_none(),
        "{x0:?}"
    );
    let first = e.last_configured_usec.expect("ens5 has addresses");
    let uptime = uptime_usec();
    assert!(
        uptime.abs_diff(first) < 10_000_000,
        "stamp {first} should be close to the uptime {uptime} (both since boot)"
    );

    // cstamp counts hundredths of a second: let the clock move on first.
    wait_for(Duration::from_secs(2), "the clock to move", || {
        (uptime_usec() > first + 30_000).then_some(())
    });
    ns.ip("addr del 172.18.0.2/16 dev ens5");
    ns.ip("addr add 172.18.0.2/16 dev ens5");
    let links = ns.block_on(|| async { dump_links().await }).expect("dump links");
    let again = links
        .iter()
        .find(|l| l.index == ens5)
        .and_then(|l| l.last_configured_usec);
    assert!(
        again.expect("still has addresses") > first,
        "re-adding an address moves the stamp forward"
    );
}

#[test]
fn links_report_their_subnets_master_and_kind() {
    let (ns, ens5, _) = node();
    ns.ip("link add br0 type bridge");
    ns.ip("link set br0 up");
    ns.ip("addr add 10.9.0.1/24 dev br0");
    ns.ip("addr add fd00:9::1/64 dev br0 nodad");
    ns.ip("link add ens7 type veth peer name ens7p");
    ns.ip("link set ens7 master br0");
    let links = ns.block_on(|| async { dump_links().await }).expect("dump links");
    let get = |name: &str| {
        links
            .iter()
            .find(|l| l.name.as_str() == name)
            .cloned()
            .expect("link listed")
    };
    let (br0, ens7, e) = (get("br0"), get("ens7"), get("ens5"));
    assert_eq!(br0.kind.as_deref(), Some("bridge"), "{br0:?}");
    assert_eq!(ens7.kind.as_deref(), Some("veth"), "{ens7:?}");
    assert_eq!(ens7.master, Some(br0.index), "ens7 is a port of br0");
    assert_eq!((e.index, e.master), (ens5, None));
    let nets: Vec<String> = br0.addresses.iter().map(|a| a.to_string()).collect();
    assert!(
        nets.contains(&"10.9.0.1/24".to_owned()) && nets.contains(&"fd00:9::1/64".to_owned()),
        "{nets:?}"
    );
    assert!(br0.reaches(&"10.9.0.200".parse().expect("ip")));
    assert!(!br0.reaches(&"10.9.1.1".parse().expect("ip")));
    assert!(e.reaches(&"172.18.0.1".parse().expect("ip")), "{e:?}");
    assert!(ens7.addresses.is_empty(), "a port holds no address: {ens7:?}");
}

/// Microseconds since boot, from /proc/uptime.
fn uptime_usec() -> u64 {
    let text = std::fs::read_to_string("/proc/uptime").expect("read /proc/uptime");
    let secs: f64 = text
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .expect("uptime");
    (secs * 1e6) as u64
}

/// The first event `f` accepts, skipping others, within five seconds.
async fn expect<T>(w: &mut Watcher, what: &str, mut f: impl FnMut(&Event) -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let event = tokio::time::timeout_at(deadline, w.next()).await;
        let event = event
            .unwrap_or_else(|_| panic!("no {what} within 5 s"))
            .expect("watcher reads");
        if let Some(v) = f(&event) {
            return v;
        }
    }
}

#[test]
fn watcher_sees_route_link_and_address_changes() {
    let (ns, ens5, ens6) = node();
    let wanted = key(254, "10.50.0.0/24");
    ns.block_on(|| async {
        let mut w = Watcher::new().expect("watcher");
        ns.ip("route add 10.50.0.0/24 via 172.18.0.1 dev ens5 metric 30");
        let added = expect(&mut w, "RouteAdded", |e| match e {
            Event::RouteAdded { route, replace, .. } if route.key == wanted => {
                Some((route.clone(), *replace))
            }
            _ => None,
        })
        .await;
        assert_eq!(added.0.next_hops, vec![hop("172.18.0.1", ens5)]);
        assert_eq!((added.0.metric, added.1), (Some(30), false));

        ns.ip("route replace 10.50.0.0/24 via 172.19.0.1 dev ens6 metric 30");
        let replaced = expect(&mut w, "replacing RouteAdded", |e| match e {
            Event::RouteAdded {
                route, replace: true, ..
            } if route.key == wanted => Some(route.clone()),
            _ => None,
        })
        .await;
        assert_eq!(replaced.next_hops, vec![hop("172.19.0.1", ens6)]);

        ns.ip("route del 10.50.0.0/24 table main");
        let removed = expect(&mut w, "RouteRemoved", |e| match e {
            Event::RouteRemoved(route) if route.key == wanted => Some(route.clone()),
            _ => None,
        })
        .await;
        assert_eq!(
            (removed.next_hops, removed.metric),
            (vec![hop("172.19.0.1", ens6)], Some(30))
        );

        ns.ip("link set ens6 down");
        expect(&mut w, "Link for ens6", |e| {
            (*e == Event::Link { index: ens6 }).then_some(())
        })
        .await;
        ns.ip("addr add 172.21.0.2/16 dev ens5");
        expect(&mut w, "Address for ens5", |e| {
            (*e == Event::Address {
                index: ens5,
                removed: false,
                ipv4: true,
            })
            .then_some(())
        })
        .await;
        ns.ip("-6 addr add 2001:db8:9::2/64 dev ens5 nodad");
        expect(&mut w, "IPv6 Address for ens5", |e| {
            (*e == Event::Address {
                index: ens5,
                removed: false,
                ipv4: false,
            })
            .then_some(())
        })
        .await;
        // A link set down loses its IPv4 routes without RTM_DELROUTE: the
        // consumer re-reads on Link events.
        let connected = key(254, "172.19.0.0/16");
        let dump = dump_routes(&[connected].into_iter().collect()).expect("dump");
        assert!(dump.routes.is_empty(), "{:?}", dump.routes);
    });
}

#[test]
fn a_burst_overruns_the_watcher_which_keeps_working() {
    let (ns, _, _) = node();
    ns.block_on(|| async {
        let mut w = Watcher::new().expect("watcher");
        assert!(
            w.receive_buffer() >= WATCH_RECEIVE_BUFFER,
            "root gets SO_RCVBUFFORCE: {}",
            w.receive_buffer()
        );
        // The watcher does not read while ip adds the routes.
        let batch: String = (0..200_000)
            .map(|i| {
                let (a, b, c) = (128 + i / 65536, (i / 256) % 256, i % 256);
                format!("route add 10.{a}.{b}.{c}/32 via 172.18.0.1 dev ens5\n")
            })
            .collect();
        ns.ip_batch(&batch);
        let mut seen = 0usize;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let batch = tokio::time::timeout_at(deadline, w.next_batch(4096)).await;
            let batch = batch.expect("an Overrun within 30 s").expect("watcher reads");
            seen += batch.len();
            if batch.contains(&Event::Overrun) {
                break;
            }
        }
        assert!(seen < 200_000, "events were lost: {seen} read before the Overrun");
        ns.ip("route add 10.250.0.0/24 via 172.18.0.1 dev ens5");
        let wanted = key(254, "10.250.0.0/24");
        expect(&mut w, "RouteAdded after the overrun", |e| match e {
            Event::RouteAdded { route, .. } if route.key == wanted => Some(()),
            _ => None,
        })
        .await;
        // What the consumer does on an overrun: dump again.
        let dump = dump_routes(&[wanted].into_iter().collect()).expect("dump after the overrun");
        assert!(dump.ipv4 > 200_000, "the burst is in the table: {}", dump.ipv4);
        assert_eq!(dump.routes.len(), 1);
    });
}
