//! `serve`'s `/drift` against a fresh `check` of the same kernel: the verdicts
//! both must agree on, and a wait until they do.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{check_json, Agent, NetNs};

/// How long `/drift` may take to catch up with a change in the kernel.
const CATCH_UP: Duration = Duration::from_secs(5);

/// What must agree: the verdict on every route and rule, and the drift flag.
pub fn verdicts(report: &Value) -> Value {
    let routes: Vec<Value> = report["routes"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    serde_json::json!({
                        "route": format!("{} {} table {} via {} dev {} metric {}",
                            r["type"], r["destination"], r["table"], r["gateway"], r["device"], r["metric"]),
                        "state": r["state"], "observed": r["observed"],
                        "reasons": r["reasons"], "reason_codes": r["reason_codes"],
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let rules: Vec<Value> = report["rules"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    serde_json::json!({
                        "route": format!("{} rule {}: {} {}", r["family"], r["priority"], r["selector"], r["action"]),
                        "state": r["state"], "observed": r["observed"],
                        "reasons": r["reasons"], "reason_codes": r["reason_codes"],
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({"drift": report["drift"], "routes": routes, "rules": rules})
}

/// The verdict on the route to `dest` in `table` of a report (`check`'s or
/// `/drift`'s JSON).
pub fn verdict<'a>(report: &'a Value, dest: &str, table: u64) -> &'a Value {
    report["routes"]
        .as_array()
        .and_then(|rs| {
            rs.iter()
                .find(|r| r["destination"] == dest && r["table"] == table)
        })
        .unwrap_or_else(|| panic!("{dest} table {table} not in {report}"))
}

/// `/drift`'s verdicts; None when it does not answer.
pub fn drift(ns: &NetNs, agent: &Agent) -> Option<Value> {
    let (status, body) = ns.http_get(agent.port, "/drift")?;
    (status == 200).then(|| serde_json::from_str(&body).ok().map(|v| verdicts(&v)))?
}

/// Wait until `/drift` has the verdicts of a fresh `check` of MachineConfig text
/// `mc` (`check_json`: no units, no NetworkManager): the check's whole report,
/// or, when they still differ after a few seconds, what differs.
pub fn await_agreement(ns: &NetNs, agent: &Agent, mc: &str) -> Result<Value, String> {
    let started = Instant::now();
    loop {
        let report = check_json(ns, mc).1;
        let want = verdicts(&report);
        let got = drift(ns, agent);
        if got.as_ref() == Some(&want) {
            return Ok(report);
        }
        if started.elapsed() > CATCH_UP {
            return Err(differences(got.as_ref(), &want));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`await_agreement`], panicking with what differs and the agent's log; `step`
/// names what was just done to the kernel.
pub fn agreed(ns: &NetNs, agent: &Agent, mc: &str, step: &str) -> Value {
    await_agreement(ns, agent, mc).unwrap_or_else(|diff| {
        panic!(
            "after {step}: /drift differs from check\n{diff}\nagent log:\n{}",
            agent.logs()
        )
    })
}

/// The verdicts that differ, each side by side.
pub fn differences(got: Option<&Value>, want: &Value) -> String {
    let Some(got) = got else {
        return "/drift did not answer".to_owned();
    };
    let empty = Vec::new();
    let mut out = format!("drift: /drift {} check {}\n", got["drift"], want["drift"]);
    for section in ["routes", "rules"] {
        let (g, w) = (
            got[section].as_array().unwrap_or(&empty),
            want[section].as_array().unwrap_or(&empty),
        );
        for (a, b) in g.iter().zip(w) {
            if a != b {
                out.push_str(&format!("{}\n  /drift: {a}\n  check:  {b}\n", b["route"]));
            }
        }
    }
    out
}
