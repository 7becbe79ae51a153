"""Calls per second through the WHOLE path in the province lab, with the CTI and without it.

PSTN (SIPp, RTP, RFC 2833 "0" during the welcome) → gateway → CTI welcome (AGI) → menu → CTI
route (AGI) → province queue → an agent of the phone bank answers → the caller talks, hangs up.
The same lab with the CTI bypassed: the gateway's global PBXCTL_CTI_DOWN=1 (what the
survivability watcher sets when the CTI hangs) — local welcome from the same disk, the
prefecture's own queue, no AGI. Both side by side in one run, at increasing rates; per rate:
calls placed, calls an agent answered, SIPp failures, setup delay (gateway's first event →
AgentConnect at the province) p50/p95, CTI CPU per call.

    .venv/bin/python -m bench.province_load [--agents 40] [--rates 2,4,6,8] [--seconds 20]

Needs root (the namespace lab) and `make setup`. It brings its own lab up and down (HZ only,
with ``--agents`` agents generated into a copy of the small test inventory).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from pbxctl.core.procs import wait_until

SMALL = Path(__file__).parents[1] / "tests" / "data" / "small"
CALLER = "05719"
HOLD_MS = 4000  # the caller talks this long after pressing 0 (the agent answers within it)


def make_inventory(root: Path, agents: int) -> Path:
    data = yaml.safe_load((SMALL / "province.yaml").read_text())
    hz = next(p for p in data["prefectures"] if p["code"] == "HZ")
    hz["agents"] = [{"id": f"hz-a{i:03d}", "name": f"坐席{i}", "extension": str(6000 + i)}
                    for i in range(1, agents + 1)]
    hz.pop("business_hours", None)
    data["province"]["options"]["agent_ring_timeout"] = 15
    inv = root / "inv" / "province.yaml"
    inv.parent.mkdir(parents=True)
    inv.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return inv


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_rate(state: Any, *, rate: float, seconds: float, workdir: Path) -> dict[str, Any]:
    from pbxctl.lab.drill import Recorder, Timeline
    from pbxctl.lab.sandbox.sipp import SippProcess, pcap
    from pbxctl.lab.sandbox.sipp_scenarios import dtmf_scenario, write_scenario
    from pbxctl.pbx.ami import AmiClient

    src = state.nodes["hzpstn"]["a"]
    gw, pbx = state.sites["hz-gw"], state.sites["zj-pbx"]
    xml = dtmf_scenario([(1500, "0")], pcap_dir=workdir / "pcaps", hold_ms=HOLD_MS,
                        speech_after=pcap("g711a.pcap"))
    xml = xml.replace("sip:[caller]@", "sip:[caller][call_number]@")  # one caller per call
    scenario = write_scenario(workdir, "load", xml)
    calls = max(1, int(rate * seconds))
    sipp = SippProcess(scenario=scenario, workdir=workdir, local_ip=src,
                       remote=(gw["ami"]["host"], 5060), service="057195598", calls=calls,
                       rate=rate, keys={"caller": CALLER}, in_namespace=True,
                       control_port=5198, timeout=seconds + 90)
    clients = [AmiClient(**gw["ami"], source=src), AmiClient(**pbx["ami"], source=src)]
    for c in clients:
        c.connect()
    timelines = [Timeline(), Timeline()]
    recorders = [Recorder(c, t) for c, t in zip(clients, timelines, strict=True)]
    cti0 = cpu_s(int(state.cti["pid"]))
    try:
        for r in recorders:
            r.__enter__()
        sipp.start()
        result = sipp.wait(timeout=seconds + HOLD_MS / 1000 + 120)
        time.sleep(1.0)  # the last AgentConnect/Hangup events are on their way
    finally:
        sipp.stop()
        for r in recorders:
            r.__exit__()
        for c in clients:
            c.close()
    cti_cpu = cpu_s(int(state.cti["pid"])) - cti0
    first: dict[str, float] = {}
    for t, m in timelines[0].events:
        num = m.get("CallerIDNum", "")
        if m.get("Event") == "Newchannel" and num.startswith(CALLER):
            first.setdefault(num, t)
    answered: dict[str, float] = {}
    for t, m in timelines[1].events:
        num = m.get("CallerIDNum", "")
        if m.get("Event") == "AgentConnect" and num in first:
            answered.setdefault(num, t)
    setups = sorted(answered[n] - first[n] for n in answered)
    p95 = setups[min(len(setups) - 1, int(0.95 * len(setups)))] if setups else None
    return {"rate": rate, "placed": calls, "answered": len(answered),
            "sipp_failed": result.failed, "failed": calls - len(answered) + result.failed,
            "setup_p50_s": statistics.median(setups) if setups else None, "setup_p95_s": p95,
            "cti_cpu_ms_per_call": 1000 * cti_cpu / calls}


def _active(state: Any, site: str) -> int:
    from pbxctl.lab.netlab import asterisk_cli

    out = asterisk_cli(state, site, "core show channels count")
    return next((int(line.split()[0]) for line in out.splitlines()
                 if line.strip().endswith("active calls")), 0)


def measure(labdir: Path, rates: list[float], seconds: float) -> dict[str, Any]:
    """Inside the PSTN node: every rate with the CTI, then every rate without it."""
    from pbxctl.lab.lifecycle import LabState
    from pbxctl.lab.netlab import NetState, asterisk_cli

    lab = LabState.load(labdir)
    assert lab is not None
    state = NetState(**lab.netns)
    out: dict[str, Any] = {}
    for mode, flag in (("cti", "0"), ("bypass", "1")):
        asterisk_cli(state, "hz-gw", f"dialplan set global PBXCTL_CTI_DOWN {flag}")
        rows = []
        for rate in rates:
            row = run_rate(state, rate=rate, seconds=seconds,
                           workdir=labdir / "bench" / f"{mode}-{rate:g}")
            print(f"  {mode:6} {rate:4g}/s: {row['answered']}/{row['placed']} answered, "
                  f"failed {row['failed']}, setup p50 {row['setup_p50_s']}", file=sys.stderr,
                  flush=True)
            rows.append(row)
            # The next rate starts on an idle province: every call of this one has ended
            # (an overloaded rate leaves callers queued for a while).
            wait_until(lambda: all(_active(state, site) == 0 for site in ("zj-pbx", "hz-gw")),
                       timeout=180, what="the lab idle again")
        out[mode] = rows
    asterisk_cli(state, "hz-gw", "dialplan set global PBXCTL_CTI_DOWN 0")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=40)
    ap.add_argument("--rates", default="2,4,6,8")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--inside", help=argparse.SUPPRESS)  # the lab dir, when re-entered
    args = ap.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    if args.inside:
        print(json.dumps(measure(Path(args.inside), rates, args.seconds)))
        return
    from pbxctl.cli import main as cli
    from pbxctl.lab.lifecycle import LabState

    root = Path(tempfile.mkdtemp(prefix="pbxbench-", dir="/tmp"))
    root.chmod(0o755)
    inv = make_inventory(root, args.agents)
    shutil.copy(SMALL / "secrets.yaml", inv.parent / "province.secrets.yaml")
    environ = {**os.environ, "PBXCTL_LAB_DIR": str(root / "lab")}
    t0 = time.monotonic()
    err = io.StringIO()
    code = cli(["lab", "up", "--inventory", str(inv), "--prefectures", "HZ", "--json"],
               environ=environ, stdout=io.StringIO(), stderr=err)
    try:
        if code != 0:
            raise SystemExit(err.getvalue())
        print(f"lab up with {args.agents} HZ agents: {time.monotonic() - t0:.1f} s",
              file=sys.stderr)
        lab = LabState.load(root / "lab")
        assert lab is not None
        ns = f"pbx{lab.netns['tag']}-hzpstn"
        res = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m",
                              "bench.province_load", "--inside", str(root / "lab"),
                              "--rates", args.rates, "--seconds", str(args.seconds)],
                             stdout=subprocess.PIPE, text=True, check=True,
                             cwd=Path(__file__).parents[1])
        data = json.loads(res.stdout)
    finally:
        cli(["lab", "down"], environ=environ, stdout=io.StringIO(), stderr=io.StringIO())
        shutil.rmtree(root, ignore_errors=True)
    print(f"{'rate':>5} | {'CTI: answered/placed':>20} {'p50 s':>6} {'p95 s':>6} "
          f"{'CTI ms/call':>11} | {'bypass: answered/placed':>23} {'p50 s':>6} {'p95 s':>6}")
    best = {}
    for mode in ("cti", "bypass"):
        ok = [r["rate"] for r in data[mode] if r["failed"] == 0]
        best[mode] = max(ok) if ok else 0.0
    for a, b in zip(data["cti"], data["bypass"], strict=True):
        print(f"{a['rate']:5g} | {a['answered']:>9}/{a['placed']:<10} {a['setup_p50_s'] or 0:6.2f} "
              f"{a['setup_p95_s'] or 0:6.2f} {a['cti_cpu_ms_per_call']:11.1f} | "
              f"{b['answered']:>11}/{b['placed']:<11} {b['setup_p50_s'] or 0:6.2f} "
              f"{b['setup_p95_s'] or 0:6.2f}")
    ratio = best["cti"] / best["bypass"] if best["bypass"] else float("nan")
    print(f"highest rate with zero failed calls: CTI {best['cti']:g}/s, bypass "
          f"{best['bypass']:g}/s, ratio {ratio:.2f} (target >= 0.95)")


if __name__ == "__main__":
    main()
