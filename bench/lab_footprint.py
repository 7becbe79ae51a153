"""What a whole-province lab costs: time to ready, memory of everything it started, time down.

    .venv/bin/python -m bench.lab_footprint [--prefectures all] [--keep]

Runs `pbxctl lab up --prefectures …` (the shipped example inventory) in its own lab
directory, then counts every process inside the lab's namespaces (`ip netns pids`: the
daemons, PBXs, phones and PostgreSQL with its workers, all started inside a node):
per kind of program, how many, the sum of their RSS and the sum of their PSS (proportional
set size: a page shared by n processes counts 1/n in each — the memory the lab really
holds; RSS counts shared program text and libraries once per process). Then `lab down`,
timed. Needs root and `make setup`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path


def _kb(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def kind(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [a.decode(errors="replace") for a in argv if a]
    if not words:
        return "?"
    prog = Path(words[0]).name
    if prog.startswith("python"):
        if "-m" in words:
            mod = words[words.index("-m") + 1]
            if mod != "pbxctl":
                return f"python -m {mod}"
            rest = words[words.index("-m") + 2:words.index("-m") + 4]
            return f"python pbxctl {' '.join(w for w in rest if not w.startswith('-'))}".strip()
        return "python"
    if prog == "postgres" or "postgres" in prog:
        return "postgres"
    return prog


def lab_pids(lab: Path) -> set[int]:
    data = json.loads((lab / "lab.json").read_text())
    tag = data["netns"]["tag"]
    out: set[int] = set()
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                           check=True).stdout.split()
    for ns in {n for n in names if n.startswith(f"pbx{tag}-")}:
        res = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                             check=False)
        out.update(int(p) for p in res.stdout.split() if p.isdigit())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--prefectures", default="all")
    ap.add_argument("--keep", action="store_true", help="leave the lab up")
    args = ap.parse_args()
    lab = Path(tempfile.mkdtemp(prefix="pbxctl-footprint-"))
    os.chmod(lab, 0o755)  # PostgreSQL runs as its own user inside
    env = {**os.environ, "PBXCTL_LAB_DIR": str(lab / "lab")}
    py = [sys.executable, "-m", "pbxctl"]
    avail0 = _kb(Path("/proc/meminfo"), "MemAvailable")
    t0 = time.monotonic()
    up = subprocess.run([*py, "lab", "up", "--prefectures", args.prefectures], env=env,
                        check=False)
    ready = time.monotonic() - t0
    if up.returncode != 0:
        print(f"lab up failed (exit {up.returncode})")
        subprocess.run([*py, "lab", "down"], env=env, check=False)
        return 1
    avail1 = _kb(Path("/proc/meminfo"), "MemAvailable")
    rows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for pid in lab_pids(lab / "lab"):
        row = rows[kind(pid)]
        row[0] += 1
        row[1] += _kb(Path(f"/proc/{pid}/status"), "VmRSS")
        row[2] += _kb(Path(f"/proc/{pid}/smaps_rollup"), "Pss")
    print(f"\nlab up --prefectures {args.prefectures}: ready in {ready:.1f} s\n")
    print(f"{'program':<40} {'procs':>5} {'RSS MB':>9} {'PSS MB':>9}")
    for name, (n, rss, pss) in sorted(rows.items(), key=lambda kv: -kv[1][1]):
        print(f"{name:<40} {n:>5} {rss / 1024:>9.1f} {pss / 1024:>9.1f}")
    total = [sum(r[i] for r in rows.values()) for i in range(3)]
    print(f"{'total':<40} {total[0]:>5} {total[1] / 1024:>9.1f} {total[2] / 1024:>9.1f}")
    # A cross-check from the kernel's side (includes page cache the lab's files filled, and
    # whatever else the machine did meanwhile: an upper bound, not a measure of the lab).
    print(f"MemAvailable before lab up − after: {(avail0 - avail1) / 1024:.0f} MB")
    if args.keep:
        print(f"\nlab left up: PBXCTL_LAB_DIR={lab / 'lab'} pbxctl lab down")
        return 0
    t1 = time.monotonic()
    down = subprocess.run([*py, "lab", "down"], env=env, check=False, capture_output=True)
    print(f"\nlab down: {time.monotonic() - t1:.1f} s (exit {down.returncode})")
    return down.returncode


if __name__ == "__main__":
    raise SystemExit(main())
