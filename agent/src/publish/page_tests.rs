//! The status page rendered from hand-built reports (their JSON form, as `/drift`
//! serves it), fields the report does not have yet included.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::*;

const AT: u64 = 1_700_000_000;

fn at() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(AT)
}

fn page(report: &Value) -> String {
    render_report(report, at(), at() + Duration::from_secs(12))
}

fn seed_route() -> Value {
    json!({
        "family": "ipv4", "destination": "192.168.1.0/24", "type": "unicast",
        "gateway": "172.18.0.1", "device": "ens5", "table": 254, "metric": null,
        "source": {"kind": "nmcli", "origin": "unit nmcli-dev-modify.service line 7",
                   "unit": "nmcli-dev-modify.service"},
        "notes": ["declared with nmcli device modify"],
        "state": "missing",
        "observed": [{"type": "unicast", "metric": 100, "gateway": "172.18.0.9", "device": "ens5",
                      "table": 254, "protocol": "static"}],
        "reasons": ["unit nmcli-dev-modify.service failed: exit status 8", "device ens5 is down"],
        "reason_codes": ["unit-failed", "device-down"]
    })
}

fn unit(name: &str, state: &str) -> Value {
    json!({"name": name, "state": state, "expect": "succeeded", "enabled": true,
           "active_state": "failed", "sub_state": "failed", "result": "exit-code",
           "exec_main_status": 8, "unit_file_state": "enabled", "unknown_reason": null})
}

fn report(routes: Vec<Value>, units: Vec<Value>) -> Value {
    json!({
        "machineconfig": "rendered-worker-1",
        "drift": true,
        "routes": routes,
        "units": units,
        "sources": {"machineconfig": "up", "netlink": "up", "systemd": "down: no bus"},
        "diagnostics": []
    })
}

/// The element names of a document (`<x` and `</x`), in order.
fn tags(html: &str) -> Vec<String> {
    html.split('<')
        .skip(1)
        .map(|t| {
            t.trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '!')
                .collect()
        })
        .collect()
}

const OWN_TAGS: &[&str] = &[
    "!DOCTYPE", "html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "span", "time", "a",
    "table", "thead", "tbody", "tr", "th", "td", "ul", "li", "code",
];

#[test]
fn markup_from_the_node_is_shown_as_text() {
    let mc = "<script>alert('mc')</script>";
    let unit_name = "<img src=x onerror=alert(1)>.service";
    let conn = "\"><b>conn</b>&amp;";
    let device = "<i>d</i>";
    let path = "file /etc/NetworkManager/system-connections/<u>x</u>.nmconnection line 2";
    let mut route = seed_route();
    route["device"] = json!(device);
    route["source"] = json!({"kind": "keyfile", "origin": path});
    let mut r = report(vec![route], vec![unit(unit_name, "failed")]);
    r["machineconfig"] = json!(mc);
    r["connections"] = json!([{"connection": conn, "uuid": "5fb06bd0", "device": device, "active": false}]);
    r["diagnostics"] = json!([{"severity": "error", "origin": format!("unit {unit_name}"),
                               "message": "invalid unit name <a href=x>"}]);
    let html = page(&r);
    for text in [mc, unit_name, conn, device, path, "invalid unit name <a href=x>"] {
        assert!(
            html.contains(&escape(text)),
            "{text:?} not shown as text:\n{html}"
        );
        assert!(!html.contains(text), "{text:?} left unescaped:\n{html}");
    }
    let foreign: Vec<String> = tags(&html)
        .into_iter()
        .filter(|t| !OWN_TAGS.contains(&t.as_str()))
        .collect();
    assert!(
        foreign.is_empty(),
        "elements from the node's names: {foreign:?}\n{html}"
    );
    assert_eq!(
        escape("<a href=\"x\">'&'"),
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;"
    );
}

#[test]
fn each_route_is_a_row_with_state_reasons_found_and_source() {
    let html = page(&report(
        vec![seed_route()],
        vec![unit("nmcli-dev-modify.service", "failed")],
    ));
    let row = html
        .lines()
        .find(|l| l.starts_with("<tr data-state=\"missing\">"))
        .unwrap_or_else(|| panic!("no missing row:\n{html}"));
    for cell in [
        "<td data-field=\"state\"><span class=\"s-missing\">missing</span></td>",
        "<td data-field=\"destination\">192.168.1.0/24</td>",
        "<td data-field=\"table\">254</td>",
        "<td data-field=\"metric\"><span class=\"none\">-</span></td>",
        "<li>via 172.18.0.9 dev ens5 table 254 metric 100 type unicast proto static</li>",
        "<li><code>unit-failed</code> unit nmcli-dev-modify.service failed: exit status 8</li>",
        "<li><code>device-down</code> device ens5 is down</li>",
        "<td data-field=\"source\">nmcli: unit nmcli-dev-modify.service line 7</td>",
    ] {
        assert!(row.contains(cell), "{cell} not in the route's row:\n{row}");
    }
    let state = row.find("data-field=\"state\"");
    let reasons = row.find("data-field=\"reasons\"");
    let source = row.find("data-field=\"source\"");
    assert!(state < reasons && reasons < source, "column order: {row}");
    assert!(
        !row.contains("reason_codes"),
        "codes are shown with the reasons: {row}"
    );
    assert!(
        html.contains("<h2 id=\"routes-heading\">Routes: 1 (1 missing)</h2>"),
        "{html}"
    );
}

#[test]
fn summary_verdict_time_links_and_refresh() {
    let html = page(&report(vec![seed_route()], vec![]));
    assert!(
        html.contains("<meta http-equiv=\"refresh\" content=\"5\">"),
        "{html}"
    );
    assert!(
        html.contains("<title>routewarden: DRIFT: rendered-worker-1</title>"),
        "{html}"
    );
    assert!(
        html.contains("<span id=\"verdict\" class=\"s-DRIFT\">DRIFT</span>"),
        "{html}"
    );
    let stamp = "2023-11-14T22:13:20Z";
    assert!(html.contains(&format!(
        "<time id=\"evaluated\" datetime=\"{stamp}\">{stamp}</time> (12 s ago)"
    )));
    assert!(
        html.contains("<a href=\"metrics\">/metrics</a>") && html.contains("<a href=\"drift\">/drift</a>")
    );
    assert!(html
        .contains("<tr data-field=\"machineconfig\"><th>MachineConfig</th><td>rendered-worker-1</td></tr>"));
    assert!(html.contains("<li data-field=\"netlink\">netlink: <span class=\"s-up\">up</span></li>"));
    assert!(
        html.contains("<li data-field=\"systemd\">systemd: <span class=\"s-down\">down: no bus</span></li>")
    );
    assert!(html.contains("<h2 id=\"units-heading\">Units: 0</h2>\n<p class=\"none\">none</p>"));
    assert!(
        !html.contains("<script") && !html.contains("src="),
        "no script, no outside asset"
    );
    let mut well = report(vec![], vec![]);
    well["drift"] = json!(false);
    assert!(page(&well).contains("<span id=\"verdict\" class=\"s-no-drift\">no drift</span>"));
}

#[test]
fn fields_and_lists_the_report_does_not_have_yet_show_without_work() {
    let mut route = seed_route();
    route["sources"] = json!([{"kind": "machineconfig", "origin": "unit a.service line 3"},
                              {"kind": "networkmanager", "origin": "connection ens5"}]);
    let mut r = report(vec![route], vec![unit("a.service", "ok")]);
    r["rules"] = json!([{"family": "ipv4", "priority": 100, "selector": "from 10.0.0.0/24",
                         "action": "table 200", "state": "missing", "reasons": ["absent"],
                         "reason_codes": ["rule-missing"]}]);
    r["connections"] = json!([{"connection": "ens5", "uuid": "5fb06bd0", "device": "ens5", "active": true}]);
    r["widgets"] = json!([{"knob": 3}]);
    r["machineconfig_file"] = json!({"path": "/etc/machine-config-daemon/currentconfig", "image": null});
    r["sources"]["networkmanager"] = json!("absent");
    let html = page(&r);
    let at = |needle: &str| {
        html.find(needle)
            .unwrap_or_else(|| panic!("{needle} not in:\n{html}"))
    };
    let order = [
        "<table id=\"summary\">",
        "<table id=\"routes\">",
        "<table id=\"rules\">",
        "<table id=\"units\">",
        "<table id=\"connections\">",
        "<table id=\"widgets\">",
        "<h2 id=\"diagnostics-heading\">",
    ];
    let places: Vec<usize> = order.iter().map(|n| at(n)).collect();
    assert!(
        places.windows(2).all(|w| w[0] < w[1]),
        "section order {places:?}:\n{html}"
    );
    at("<li>machineconfig: unit a.service line 3</li><li>networkmanager: connection ens5</li>");
    at("<td data-field=\"selector\">from 10.0.0.0/24</td>");
    at("<li><code>rule-missing</code> absent</li>");
    at("<td data-field=\"knob\">3</td>");
    at("<tr data-state=\"\"><td data-field=\"active\">yes</td><td data-field=\"connection\">ens5</td>");
    at("<li data-field=\"path\">path: <span>/etc/machine-config-daemon/currentconfig</span></li>");
    at("<li data-field=\"networkmanager\">networkmanager: <span class=\"s-absent\">absent</span></li>");
}

#[test]
fn before_the_first_evaluation() {
    let html = render(None, SystemTime::now());
    assert!(html.contains("The first evaluation is not done yet."), "{html}");
    assert!(html.contains("http-equiv=\"refresh\""), "{html}");
}

#[test]
fn not_a_report_still_renders() {
    for v in [
        json!(null),
        json!([1, 2]),
        json!({"drift": "maybe", "routes": [1, {"a": null}]}),
    ] {
        let html = page(&v);
        assert!(
            html.contains("<span id=\"verdict\" class=\"s-unknown\">unknown</span>"),
            "{html}"
        );
    }
}
