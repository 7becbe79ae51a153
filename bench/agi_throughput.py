"""Benchmark: calls/s at zero failures and call-setup delay, three paths side by side, one run.

    .venv/bin/python -m bench.agi_throughput [--seconds 8] [--rates 5,10,25,50,...,400]

One sandboxed Asterisk (default engine) on 127.0.0.1; SIPp on the same 2-core box places
calls (no caller audio) that end when the PBX hangs up. The three dialplans differ only in
how the welcome prompt is chosen, and the choice happens *before* Answer, so SIPp's
INVITE→200 time is the call-setup delay including it:
  plain  Set(prompt) — no AGI at all (the baseline)
  agi    AGI(agi://…/welcome) on our FastAGI server (`pbxctl agi serve`, its own process)
  fork   AGI(bench/fork_agi.py): the same handler as a fork-per-call script
Each rate runs for --seconds; a path stops at its first rate with a failed call or an AGI
fallback. Prints the highest clean rate per path, setup delay p50/p95 at each clean rate, and
the ratios asked for: agi/plain (target ≥ 0.9) and agi/fork.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ivr_scripts.health import check
from pbxctl.core.net import free_port
from pbxctl.core.procs import stop_pid, wait_until
from pbxctl.lab.sandbox.asterisk import AsteriskInstance
from pbxctl.lab.sandbox.sipp import SippProcess
from pbxctl.lab.sandbox.sipp_scenarios import dtmf_scenario, write_scenario
from provisioning.templates import render

FORK = Path(__file__).with_name("fork_agi.py")
PATHS = {"plain": "1", "agi": "2", "fork": "3"}


def dialplan(agi_port: int) -> str:
    def agi_ctx(name: str, app: str) -> str:
        return (f"[bench-{name}]\n"
                "exten => s,1,Set(PBXCTL_STATUS=)\n"
                f" same => n,{app}\n"
                ' same => n,GotoIf($["${PBXCTL_STATUS}" = "OK"]?ok)\n'
                " same => n,Set(GLOBAL(FALLBACKS)=$[${GLOBAL(FALLBACKS)} + 1])\n"
                " same => n,Set(PBXCTL_WELCOME_PROMPT=beep)\n"
                " same => n(ok),Answer()\n"
                " same => n,Playback(${PBXCTL_WELCOME_PROMPT})\n"
                " same => n,Hangup()\n\n")
    return ("[globals]\nFALLBACKS=0\n\n[from-pstn]\n"
            "exten => _1.,1,Goto(bench-plain,s,1)\n"
            "exten => _2.,1,Goto(bench-agi,s,1)\n"
            "exten => _3.,1,Goto(bench-fork,s,1)\n\n"
            "[bench-plain]\n"
            "exten => s,1,Set(PBXCTL_WELCOME_PROMPT=beep)\n"
            " same => n,Answer()\n"
            " same => n,Playback(${PBXCTL_WELCOME_PROMPT})\n"
            " same => n,Hangup()\n\n"
            + agi_ctx("agi", f"AGI(agi://127.0.0.1:{agi_port}/welcome)")
            + agi_ctx("fork", f"AGI({sys.executable},{FORK})"))


def rtts(workdir: Path) -> list[float]:
    out: list[float] = []
    for f in workdir.glob("*_rtt.csv"):
        with open(f) as fh:
            for row in csv.DictReader(fh, delimiter=";"):
                try:
                    out.append(float(row["response_time_ms"]))
                except (KeyError, ValueError):
                    continue
    return out


def fallbacks(ast: AsteriskInstance) -> int:
    text = ast.cli("dialplan show globals")
    for line in text.splitlines():
        if "FALLBACKS=" in line:
            return int(line.split("=", 1)[1].strip() or 0)
    return 0


def trial(ast: AsteriskInstance, sip_port: int, path: str, rate: int, seconds: float,
          root: Path) -> tuple[int, int, int, int, list[float]]:
    workdir = root / f"{path}-{rate}"
    scen = write_scenario(workdir, "call", dtmf_scenario([], pcap_dir=workdir / "p",
                                                         bye_timeout_ms=30000))
    before = fallbacks(ast)
    calls = int(rate * seconds)
    sipp = SippProcess(scenario=scen, workdir=workdir, remote=("127.0.0.1", sip_port),
                       service=PATHS[path] + "95598", calls=calls, rate=rate,
                       concurrent=5000, keys={"caller": "057188880000"},
                       timeout=seconds + 60, extra_args=("-trace_rtt", "-rtt_freq", "1"))
    sipp.start()
    result = sipp.wait()
    return calls, result.successful, result.failed, fallbacks(ast) - before, rtts(workdir)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--rates", default="5,10,25,50,100,150,200,250,300,350,400")
    args = ap.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    root = Path(tempfile.mkdtemp(prefix="pbxbench-", dir="/tmp"))
    agi_port = free_port()
    agi = subprocess.Popen([sys.executable, "-m", "pbxctl", "agi", "serve", "--port",
                            str(agi_port), "--fixed-welcome", "beep"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    sip_port = free_port(kind="udp")
    pjsip = render("asterisk/lab_pjsip.conf.j2", address="127.0.0.1", sip_port=sip_port,
                   pstn_address="127.0.0.1")
    ast = AsteriskInstance(name="bench", root=root / "ast",
                           configs={"pjsip.conf": pjsip, "extensions.conf": dialplan(agi_port)})
    try:
        wait_until(lambda: _ok(agi_port), timeout=20, what="FastAGI server")
        ast.start()
        results: dict[str, list[tuple[int, int, int, int, int, list[float]]]] = {}
        for path in PATHS:
            results[path] = []
            for rate in rates:
                calls, ok, failed, fb, rt = trial(ast, sip_port, path, rate, args.seconds, root)
                results[path].append((rate, calls, ok, failed, fb, rt))
                print(f"{path:>5} {rate:>4} cps: {ok}/{calls} ok, {failed} failed, {fb} AGI "
                      f"fallbacks, setup p50 {pct(rt, 50):.1f} ms p95 {pct(rt, 95):.1f} ms",
                      flush=True)
                if failed or fb or ok < calls:
                    break
                time.sleep(2)  # let the previous calls drain before the next rate
        report(results)
    finally:
        ast.stop()
        stop_pid(agi.pid)
        shutil.rmtree(root, ignore_errors=True)


def _ok(port: int) -> bool:
    try:
        check("127.0.0.1", port, timeout=1)
        return True
    except Exception:  # noqa: BLE001 -- not up yet
        return False


def report(results: dict[str, list[tuple[int, int, int, int, int, list[float]]]]) -> None:
    best: dict[str, int] = {}
    for path, rows in results.items():
        clean = [r for r in rows if r[3] == 0 and r[4] == 0 and r[2] == r[1]]
        best[path] = max((r[0] for r in clean), default=0)
    print("\nhighest rate with zero failures (calls/s):",
          ", ".join(f"{p} {best[p]}" for p in best))
    if best["plain"]:
        print(f"ratio agi/plain = {best['agi'] / best['plain']:.2f} (target >= 0.9)")
    if best["fork"]:
        print(f"ratio agi/fork  = {best['agi'] / best['fork']:.2f}")
    common = min(best.values())
    if common:
        print(f"setup delay at {common} cps (INVITE→200, includes the welcome decision):")
        base = None
        for path, rows in results.items():
            rt = next(r[5] for r in rows if r[0] == common)
            p95 = pct(rt, 95)
            base = p95 if path == "plain" else base
            extra = "" if path == "plain" or base is None else f" (+{p95 - base:.1f} ms)"
            print(f"  {path:>5}: p50 {pct(rt, 50):.1f} ms, p95 {p95:.1f} ms{extra}")


if __name__ == "__main__":
    main()
