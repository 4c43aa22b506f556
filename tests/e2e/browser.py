"""Headless Chromium (Debian's `chromium`) reading the agent's status page from inside
a node's network namespace, as a person's browser would through a port-forward.

`load` runs Chromium once with `--dump-dom` (the DOM after the page loaded) and parses
it with the standard library's HTML parser; `screenshot` runs it with
`--screenshot`. Each run gets a fresh profile directory (removed after) and the flags
a headless run in a test needs (no sandbox as root, no GPU, no background traffic).
Chromium is installed with apt-get on first use.

    page = load(node.netns, f"http://127.0.0.1:{agent.port}/")
    page.verdict                       # "DRIFT" or "no drift"
    page.tables["routes"][0].state     # "missing", with .cells and .items by field
    screenshot(node.netns, url, artifacts("test_name") / "status-page.png")
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Optional

from common import HarnessError, ensure_packages, run, unique_name

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
WINDOW = "--window-size=1400,1000"


def artifacts(test: str) -> Path:
    """The test's output directory, kept after the run (not in the repository):
    $RWE2E_ARTIFACTS/<test>, default /tmp/rwe2e-artifacts/<test>."""
    path = Path(os.environ.get("RWE2E_ARTIFACTS", "/tmp/rwe2e-artifacts")) / test
    path.mkdir(parents=True, exist_ok=True)
    return path


def chromium() -> str:
    """The browser, installed from Debian if missing."""
    ensure_packages(["chromium"])
    path = shutil.which("chromium")
    if path is None:
        raise HarnessError("chromium is installed but not on PATH")
    return path


def _chromium(netns: str, args: list[str], timeout: float = 90) -> str:
    with tempfile.TemporaryDirectory(prefix=f"{unique_name()}-chromium-") as profile:
        argv = ["ip", "netns", "exec", netns, chromium(), *FLAGS, f"--user-data-dir={profile}", *args]
        return run(argv, timeout=timeout).stdout


def screenshot(netns: str, url: str, path: Path) -> Path:
    """A PNG of the page as Chromium renders it."""
    _chromium(netns, [WINDOW, f"--screenshot={path}", url])
    if not path.is_file() or path.stat().st_size == 0:
        raise HarnessError(f"chromium wrote no screenshot at {path}")
    return path


@dataclass
class Row:
    """One row of a table: its data-state, each cell's text and list items by field."""
    state: str
    cells: dict[str, str] = field(default_factory=dict)
    items: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Page:
    """What the DOM shows."""
    title: str = ""
    verdict: str = ""
    evaluated: str = ""
    refresh: Optional[str] = None
    links: list[str] = field(default_factory=list)
    tables: dict[str, list[Row]] = field(default_factory=dict)
    scripts: int = 0

    def route(self, destination: str) -> Optional[Row]:
        """The routes table's row of `destination`."""
        return next((r for r in self.tables.get("routes", []) if r.cells.get("destination") == destination), None)


class _Reader(HTMLParser):
    """Collects the page's tables (`table#id`, `tr[data-state]`, `td[data-field]`,
    `li` inside cells) and the elements the page names by id."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self.table: Optional[str] = None
        self.row: Optional[Row] = None
        self.cell: Optional[str] = None
        self.item: Optional[list[str]] = None
        self.text_of: Optional[str] = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.page.scripts += 1
        elif tag == "meta" and a.get("http-equiv", "").lower() == "refresh":
            self.page.refresh = a.get("content")
        elif tag == "a" and "href" in a:
            self.page.links.append(a["href"])
        elif tag == "table" and "id" in a:
            self.table = a["id"]
            self.page.tables[self.table] = []
        elif tag == "tr" and self.table and "data-state" in a:
            self.row = Row(a["data-state"])
            self.page.tables[self.table].append(self.row)
        elif tag == "td" and self.row is not None:
            self.cell = a.get("data-field", "")
            self.row.cells[self.cell] = ""
            self.row.items[self.cell] = []
        elif tag == "li" and self.cell is not None:
            self.item = []
        elif tag in ("title", "span", "time") and (tag == "title" or a.get("id") in ("verdict", "evaluated")):
            self.text_of = "title" if tag == "title" else a["id"]

    def handle_endtag(self, tag):
        if tag == "table":
            self.table = self.row = None
        elif tag == "tr":
            self.row = None
        elif tag == "td":
            self.cell = None
        elif tag == "li" and self.item is not None and self.cell is not None and self.row is not None:
            self.row.items[self.cell].append(" ".join("".join(self.item).split()))
            self.item = None
        elif tag in ("title", "span", "time"):
            self.text_of = None

    def handle_data(self, data):
        if self.row is not None and self.cell is not None:
            self.row.cells[self.cell] += data
            if self.item is not None:
                self.item.append(data)
        if self.text_of is not None:
            setattr(self.page, self.text_of, getattr(self.page, self.text_of) + data)


def parse(html: str) -> Page:
    """The page a DOM dump shows."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    for rows in reader.page.tables.values():
        for r in rows:
            r.cells = {k: " ".join(v.split()) for k, v in r.cells.items()}
    return reader.page


def load(netns: str, url: str) -> tuple[Page, str]:
    """Load `url` in Chromium inside `netns`: the page its DOM shows, and the DOM."""
    dom = _chromium(netns, ["--dump-dom", url])
    if "<html" not in dom:
        raise HarnessError(f"chromium --dump-dom {url}: no document: {dom[:300]!r}")
    return parse(dom), dom


def route_complaints(page: Page, drift: dict) -> list[str]:
    """Where the page's routes table and /drift disagree: the same routes, and for
    each its state and its reasons (`code text`, in /drift's order)."""
    rows = page.tables.get("routes")
    if rows is None:
        return ["the page has no routes table"]
    out = []
    if len(rows) != len(drift["routes"]):
        out.append(f"the page has {len(rows)} route rows, /drift {len(drift['routes'])} routes")
    for r in drift["routes"]:
        row = page.route(r["destination"])
        if row is None:
            out.append(f"route {r['destination']} of /drift is not on the page")
            continue
        for key in ("gateway", "device"):
            if row.cells.get(key) != (r[key] or "-"):
                out.append(f"route {r['destination']}: {key} {row.cells.get(key)!r} on the page, {r[key]!r} in /drift")
        if row.state != r["state"] or row.cells.get("state") != r["state"]:
            out.append(f"route {r['destination']}: {row.state!r} on the page, {r['state']!r} in /drift")
        want = [f"{c} {t}" for c, t in zip(r["reason_codes"], r["reasons"])]
        if row.items.get("reasons", []) != want:
            out.append(f"route {r['destination']}: reasons {row.items.get('reasons')} on the page, {want} in /drift")
    return out
