"""What people look at, checked on a booted node: the fleet dashboard's queries in a
real Prometheus, and the agent's status page in a real browser.

These are the bodies of two tests of test_agent.py: they run on that module's seed
node and agent (a node boot saved) and, like its other scenarios, set up the state
they need (the seed route in place) and put the route back when done.
"""

from __future__ import annotations

import time

import browser
import dashboard
from agent import SEED_ROUTE, route_complaints
from common import wait_for
from nodeops import delete_route, run_seed_unit, seed_route_fine, since, wait_kernel_route
from prom import Prometheus

MISSING_TABLE = ("Routes not present, by node", "A")
SLACK_S = 3.0  # scrape interval, subquery step and query time between "deleted" and "now"


def dashboard_queries(node, agent, facts) -> None:
    """Every panel query, with the seed route in place and deleted (dashboard.EXPECT);
    deleted, the missing-routes table has the node and the route, one line per reason
    /drift gives, missing for as long as it has been (within the scrape and the step)."""
    seed_route_fine(agent, node)
    with Prometheus(node.netns, f"127.0.0.1:{agent.port}", job="routewarden", labels={"node": node.name}) as prom:
        prom.wait_query(f'count_over_time(routewarden_route_present{{destination="{SEED_ROUTE.destination}"}}[1m]) > 5',
                        bool, "6 scrapes of the route present")
        t0 = time.monotonic()
        dashboard.run_all(prom, node.name, agent.metrics(), "well")
        facts["dashboard_queries_seconds_all_well"] = since(t0)
        deleted = time.time()
        delete_route(node)
        s = agent.converge("route missing", lambda s: route_complaints(s, SEED_ROUTE, present=False))
        codes = set(s.route(SEED_ROUTE.destination)["reason_codes"])
        want = {**SEED_ROUTE.labels, "node": node.name}

        def table_shows_reasons():
            rows = dashboard.missing_rows(dashboard.run(prom, dashboard.query(*MISSING_TABLE), node.name))
            mine = [r for r in rows if {k: r.get(k) for k in want} == want]
            return mine if {r["reason"] for r in mine} == codes and time.time() - deleted > 2 * SLACK_S else None
        wait_for(f"the missing-routes table to list {want} with reasons {sorted(codes)}", table_shows_reasons,
                 timeout=30, interval=0.5)
        t0 = time.monotonic()
        results = dashboard.run_all(prom, node.name, agent.metrics(), "drift")
        facts["dashboard_queries_seconds_route_deleted"] = since(t0)
        now = time.time()
        rows = dashboard.missing_rows(results[MISSING_TABLE])
        assert [r for r in rows if {k: r.get(k) for k in want} != want] == [], rows
        assert sorted(r["reason"] for r in rows) == sorted(codes), (rows, codes)
        for r in rows:
            assert abs(r["missing_for"] - (now - deleted)) <= SLACK_S, \
                f"missing for {r['missing_for']} s, deleted {now - deleted:.1f} s ago: {r}"
        facts["dashboard_missing_table"] = rows
    run_seed_unit(node)
    wait_kernel_route(node, SEED_ROUTE, present=True)


def status_page_in_a_browser(node, agent, facts) -> None:
    """Chromium loads / from the agent in the node's namespace: the route rows match
    /drift; the route deleted, a reload shows it missing with /drift's reasons. A
    screenshot of each state goes to the test's output directory."""
    url = f"http://127.0.0.1:{agent.port}/"
    shots = browser.artifacts("test_status_page_in_a_browser")
    seed_route_fine(agent, node)
    page = _page_matching_drift(node, agent, url)
    assert page.verdict == "no drift" and page.route(SEED_ROUTE.destination).state == "present", page
    assert page.refresh == "5" and page.scripts == 0 and {"metrics", "drift"} <= set(page.links), page
    files = [browser.screenshot(node.netns, url, shots / "status-page-all-well.png")]
    delete_route(node)
    agent.converge("route missing", lambda s: route_complaints(s, SEED_ROUTE, present=False))
    page = _page_matching_drift(node, agent, url)
    row = page.route(SEED_ROUTE.destination)
    assert page.verdict == "DRIFT" and row.state == "missing" and row.items["reasons"], row
    files.append(browser.screenshot(node.netns, url, shots / "status-page-route-deleted.png"))
    facts["status_page_screenshots"] = [str(f) for f in files]
    facts["status_page_missing_row"] = {"state": row.state, "reasons": row.items["reasons"]}
    run_seed_unit(node)
    wait_kernel_route(node, SEED_ROUTE, present=True)


def _page_matching_drift(node, agent, url) -> "browser.Page":
    """The page, loaded until its routes match /drift read right after (the agent
    may re-evaluate between the two requests)."""
    last = {}

    def probe():
        page, dom = browser.load(node.netns, url)
        last["complaints"], last["dom"] = browser.route_complaints(page, agent.drift()), dom
        return None if last["complaints"] else page
    try:
        return wait_for("the status page's routes to match /drift", probe, timeout=30, interval=0.5)
    except Exception:
        raise AssertionError(f"the page never matched /drift: {last.get('complaints')}\n"
                             f"DOM:\n{last.get('dom', '')[-4000:]}\n{agent.explain()}") from None
