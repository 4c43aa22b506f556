#!/usr/bin/python3
"""Write docs/reliability.md from what the reliability tests and the fuzzer report.

Runs the fault, HTTP-abuse, secret, overrun and hostile-input tests with their
output shown, keeps the `figure:` lines they print, runs the fuzzer for
--fuzz-seconds (tests/fuzz.sh), and writes the figures with the machine and date.
Nothing in the document is typed by hand.

    sudo tests/bench/reliability.py [--fuzz-seconds 600]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
TESTS = ["intent_never_panics", "faults", "http_limits", "serve_netns", "secrets", "serve_systemd"]


def run_tests() -> tuple[list[str], list[str], int]:
    args = ["cargo", "test", "--release"]
    for t in TESTS:
        args += ["--test", t]
    out = subprocess.run(args + ["--", "--nocapture", "--test-threads=1"], cwd=REPO, capture_output=True, text=True)
    text = out.stdout + out.stderr
    if out.returncode != 0:
        sys.stderr.write(text[-4000:])
        raise SystemExit("tests failed; nothing written")
    figures = [line.split("figure: ", 1)[1] for line in text.splitlines() if "figure: " in line]
    passed = [m.group(1) for m in re.finditer(r"^test (\S+) \.\.\. ", text, re.M)]
    total = sum(int(n) for n in re.findall(r"test result: ok\. (\d+) passed", text))
    return figures, passed, total


def run_fuzz(seconds: int) -> str:
    out = subprocess.run(["bash", "tests/fuzz.sh"], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "FUZZ_SECONDS": str(seconds)})
    text = out.stdout + out.stderr
    done = re.search(r"Done (\d+) runs in (\d+) second", text)
    cov = re.findall(r"cov: (\d+) ft: (\d+) corp: (\d+)", text)
    status = "no crash, hang or memory limit hit" if out.returncode == 0 else "FAILED (see fuzz/artifacts)"
    runs = f"{int(done.group(1)):,} inputs in {done.group(2)} s" if done else "runs unknown"
    edges = f", {cov[-1][0]} coverage edges" if cov else ""
    return f"libFuzzer over bytes -> MachineConfig -> routes: {runs}{edges}, {status}."


def hostile(figure: str) -> bool:
    """A figure about hostile input rather than a fault while serving."""
    return "mutated" in figure or "refused by the binary" in figure


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fuzz-seconds", type=int, default=600)
    args = ap.parse_args()
    figures, passed, total = run_tests()
    fuzz = run_fuzz(args.fuzz_seconds)
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    lines = [
        "# Reliability",
        "",
        f"Written by `tests/bench/reliability.py` on {os.cpu_count()} x {cpu}, Linux {platform.release()}, "
        f"{time.strftime('%Y-%m-%d')}, from the output of the tests it ran; nothing here is typed by hand.",
        "",
        "## Hostile input",
        "",
        f"- {fuzz}",
        *[f"- {f}" for f in figures if hostile(f)],
        "",
        "## Faults while serving",
        "",
        *[f"- {f}" for f in figures if not hostile(f)],
        "",
        f"## Tests that passed ({total})",
        "",
        *[f"- `{t}`" for t in passed],
        "",
    ]
    (REPO / "docs").mkdir(exist_ok=True)
    (REPO / "docs/reliability.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
