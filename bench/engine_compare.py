"""The same call path on Asterisk 22 and on FreeSWITCH 1.10, side by side in one run.

PSTN caller (SIPp, RTP, RFC 2833 "0" during the welcome) → gateway → the CTI's welcome
(FastAGI to `pbxctl agi serve` / outbound ESL to `pbxctl esl serve`) → menu → the CTI's route
→ province ACD (no agent ready: the supervisors' queue, where the caller waits and hangs up).
Both engines run the rendered hz-gw and zj-pbx of the small test inventory on loopback, one
engine after the other (same addresses), against one PostgreSQL with the prompt catalogue.
Per engine and rate: calls placed, calls queued at the province, SIPp failures, setup delay
(the gateway's first event of the call → the caller queued at the province) p50/p95, CPU per
call of the two PBX processes and of our CTI process.

    .venv/bin/python -m bench.engine_compare [--rates 2,4,6] [--seconds 10]

Needs `make setup` (Asterisk 22, FreeSWITCH, PostgreSQL, SIPp); about 3 minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pbxctl.core.errors import WaitTimeout
from pbxctl.core.procs import wait_until

SMALL = Path(__file__).parents[1] / "tests" / "data" / "small" / "province.yaml"
CALLER = "05719"
HOLD_MS = 3000  # after pressing 0 the caller stays this long, then hangs up


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Events:
    """(arrival time, caller number) of each call's first gateway event and of its joining a
    queue at the province, filled by reader threads."""

    started: dict[str, float] = field(default_factory=dict)
    queued: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, which: dict[str, float], number: str) -> None:
        if number.startswith(CALLER):
            with self.lock:
                which.setdefault(number, time.monotonic())


@dataclass
class Engine:
    name: str
    pbx_pids: Callable[[], list[int]]
    cti_pid: Callable[[], int]
    listen: Callable[[Events, threading.Event], list[threading.Thread]]
    active: Callable[[], int]


def _stage(root: Path) -> tuple[Path, Any, Any, Any]:
    """Inventory (always open), secrets, a PostgreSQL with schema, sample data and the
    published prompt catalogue; the CTI config for both transports."""
    from pbxctl.cli import main as cli
    from pbxctl.lab.sandbox.postgres import PostgresCluster
    from provisioning.inventory import load_inventory
    from provisioning.secrets import ensure_secrets

    data = yaml.safe_load(SMALL.read_text())
    for p in data["prefectures"]:
        p.pop("business_hours", None)
    inv_path = root / "province.yaml"
    inv_path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    inv = load_inventory(inv_path)
    secrets = ensure_secrets(inv, root / "province.secrets.yaml")
    cluster = PostgresCluster(root=root / "pg")
    cluster.start()
    assert cluster.endpoint is not None
    dsn = cluster.endpoint.conninfo()
    env = {"PBXCTL_DSN": dsn, "PATH": os.environ.get("PATH", "")}
    for argv in (["db", "migrate", "--sample-data", "--inventory", str(inv_path)],
                 ["prompts", "init"],
                 ["prompts", "publish", "--inventory", str(inv_path), "--target",
                  str(root / "deploy")]):
        import io

        err = io.StringIO()
        if cli(argv, environ=env, stdout=io.StringIO(), stderr=err) != 0:
            raise SystemExit(f"pbxctl {' '.join(argv)}: {err.getvalue()}")
    cti = inv.province.cti
    config = root / "pbxctl.yaml"
    common = {"host": [str(cti.a), str(cti.b)], "inventory": str(inv_path), "grace": 2,
              "allow": ["127.0.0.1"]}
    from provisioning.render_freeswitch import ESL_PORT

    settings = {"database": {"dsn": dsn}, "agi": {**common, "port": inv.province.cti_port},
                "esl": {**common, "port": ESL_PORT}}
    # A deep copy: shared lists would be written as YAML aliases, which pbxctl refuses.
    config.write_text(yaml.safe_dump(json.loads(json.dumps(settings))))
    return config, inv, secrets, cluster


@contextmanager
def _serve(root: Path, config: Path, kind: str) -> Iterator[subprocess.Popen[bytes]]:
    log = root / f"{kind}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pbxctl", kind, "serve", "--config",
                                 str(config)], stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "listening on" in log.read_text() or proc.poll() is not None,
                   timeout=60, what=f"{kind} serve to listen")
        if proc.poll() is not None:
            raise SystemExit(log.read_text())
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def asterisk(root: Path, config: Path, inv: Any, secrets: Any) -> Iterator[Engine]:
    from pbxctl.lab.sandbox.asterisk import find_asterisk
    from pbxctl.lab.site import sandbox_for
    from pbxctl.pbx.ami import AmiClient
    from provisioning.render_asterisk import render_site

    binary = find_asterisk(22)
    boxes = []
    for name in ("zj-pbx", "hz-gw"):
        site = inv.site(name)
        files = render_site(inv, site, secrets, major=22,
                            prompt_dir=str(root / "deploy" / name / "sounds" / "pbxctl"))
        boxes.append(sandbox_for(site, files, secrets, root / "ast" / name, binary=binary))
    for box in boxes:
        box.start(timeout=60)
    province, gateway = boxes
    try:
        wait_until(lambda: "Avail" in gateway.cli("pjsip show contacts"), timeout=30,
                   interval=0.5, what="hz-gw to qualify the province")
        with _serve(root, config, "agi") as cti:
            src = str(inv.province.cti.a)

            def listen(ev: Events, stop: threading.Event) -> list[threading.Thread]:
                threads = []
                for box, which, event in ((gateway, ev.started, "Newchannel"),
                                          (province, ev.queued, "QueueCallerJoin")):
                    assert box.ami is not None
                    client = AmiClient(**asdict(box.ami), source=src)
                    client.connect()

                    def pump(c: AmiClient = client, w: dict[str, float] = which,
                             e: str = event) -> None:
                        with c.subscribe() as sub:
                            while not stop.is_set():
                                try:
                                    m = sub.wait_for(functools.partial(_is_event, e),
                                                     timeout=0.2)
                                except WaitTimeout:
                                    continue
                                ev.note(w, m.get("CallerIDNum", ""))
                        c.close()

                    threads.append(threading.Thread(target=pump, daemon=True))
                return threads

            def active() -> int:
                return sum(int(line.split()[0]) for box in boxes
                           for line in box.cli("core show channels count").splitlines()
                           if line.strip().endswith("active channels"))

            yield Engine("Asterisk 22 + FastAGI",
                         lambda: [int(b.pid) for b in boxes if b.pid], lambda: cti.pid,
                         listen, active)
    finally:
        for box in boxes:
            box.stop()


@contextmanager
def freeswitch(root: Path, config: Path, inv: Any, secrets: Any) -> Iterator[Engine]:
    from pbxctl.lab.site import freeswitch_for

    boxes = [freeswitch_for(inv, inv.site(name), secrets, root / "fs" / name,
                            prompt_dir=str(root / "deploy" / name / "sounds" / "pbxctl"))
             for name in ("zj-pbx", "hz-gw")]
    for box in boxes:
        box.start(timeout=60)
    province, gateway = boxes
    try:
        wait_until(lambda: gateway.gateway_up("province-a"), timeout=30, interval=0.5,
                   what="hz-gw to see the province")
        with province.esl() as esl:  # as on Asterisk: nobody ready, the supervisors' queue
            for a in [*inv.prefecture("HZ").agents, *inv.province.supervisors]:
                esl.api(f"callcenter_config agent set status {a.id} 'On Break'")
        with _serve(root, config, "esl") as cti:

            def listen(ev: Events, stop: threading.Event) -> list[threading.Thread]:
                threads = []
                for box, which, sub, pred in (
                        (gateway, ev.started, "CHANNEL_CREATE",
                         lambda e: e.get("Event-Name") == "CHANNEL_CREATE"),
                        (province, ev.queued, "CUSTOM callcenter::info",
                         lambda e: e.get("CC-Action") == "member-queue-start")):
                    client = box.esl(timeout=10)
                    client.connect()
                    client.subscribe(sub)

                    def pump(c: Any = client, w: dict[str, float] = which,
                             p: Callable[[dict[str, str]], bool] = pred) -> None:
                        while not stop.is_set():
                            try:
                                e = c.wait_event(p, timeout=0.5, what="an event")
                            except WaitTimeout:
                                continue
                            ev.note(w, e.get("Caller-Caller-ID-Number", ""))
                        c.close()

                    threads.append(threading.Thread(target=pump, daemon=True))
                return threads

            def active() -> int:
                total = 0
                for box in boxes:
                    with box.esl() as esl:
                        total += int(esl.api("show channels count").split()[0] or 0)
                return total

            yield Engine("FreeSWITCH 1.10 + ESL", lambda: [int(b.pid) for b in boxes if b.pid],
                         lambda: cti.pid, listen, active)
    finally:
        for box in boxes:
            box.stop()


def run_rate(engine: Engine, inv: Any, *, rate: float, seconds: float, workdir: Path
             ) -> dict[str, Any]:
    from pbxctl.lab.sandbox.sipp import SippProcess, pcap
    from pbxctl.lab.sandbox.sipp_scenarios import dtmf_scenario, write_scenario

    hz = inv.prefecture("HZ")
    xml = dtmf_scenario([(1500, "0")], pcap_dir=workdir / "pcaps", hold_ms=HOLD_MS,
                        speech_after=pcap("g711a.pcap"))
    xml = xml.replace("sip:[caller]@", "sip:[caller][call_number]@")  # one caller per call
    calls = max(1, int(rate * seconds))
    sipp = SippProcess(scenario=write_scenario(workdir, "load", xml), workdir=workdir,
                       local_ip=str(hz.pstn_gateway.a), remote=(str(hz.gateway.a), 5060),
                       service=hz.dids[0], calls=calls, rate=rate, keys={"caller": CALLER},
                       timeout=seconds + 120)
    ev, stop = Events(), threading.Event()
    threads = engine.listen(ev, stop)
    for t in threads:
        t.start()
    pbx0 = sum(cpu_s(p) for p in engine.pbx_pids())
    cti0 = cpu_s(engine.cti_pid())
    try:
        sipp.start()
        result = sipp.wait(timeout=seconds + HOLD_MS / 1000 + 120)
        # A call that never reached a queue is counted as failed below.
        with contextlib.suppress(WaitTimeout):
            wait_until(lambda: len(ev.queued) >= len(ev.started), timeout=10, interval=0.2,
                       what="the last queue events")
    finally:
        sipp.stop()
        stop.set()
        for t in threads:
            t.join(timeout=5)
    pbx_cpu = sum(cpu_s(p) for p in engine.pbx_pids()) - pbx0
    cti_cpu = cpu_s(engine.cti_pid()) - cti0
    setups = sorted(ev.queued[n] - ev.started[n] for n in ev.queued if n in ev.started)
    p95 = setups[min(len(setups) - 1, int(0.95 * len(setups)))] if setups else None
    return {"rate": rate, "placed": calls, "queued": len(setups), "sipp_failed": result.failed,
            "failed": calls - len(setups) + result.failed,
            "setup_p50_s": statistics.median(setups) if setups else None, "setup_p95_s": p95,
            "pbx_cpu_ms_per_call": 1000 * pbx_cpu / calls,
            "cti_cpu_ms_per_call": 1000 * cti_cpu / calls}


def _is_event(name: str, m: Any) -> bool:
    return bool(m.get("Event") == name)


def _idle(engine: Engine) -> bool:
    return engine.active() == 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="2,4,6")
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    root = Path(tempfile.mkdtemp(prefix="pbxengines-", dir="/tmp"))
    root.chmod(0o755)  # PostgreSQL runs as postgres
    config, inv, secrets, cluster = _stage(root)
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        for make in (asterisk, freeswitch):
            with make(root, config, inv, secrets) as engine:
                rows = []
                for rate in rates:
                    row = run_rate(engine, inv, rate=rate, seconds=args.seconds,
                                   workdir=root / "sipp" / f"{make.__name__}-{rate:g}")
                    print(f"  {engine.name:24} {rate:4g}/s: {row['queued']}/{row['placed']} "
                          f"queued, failed {row['failed']}", file=sys.stderr, flush=True)
                    rows.append(row)
                    wait_until(functools.partial(_idle, engine), timeout=120, interval=0.5,
                               what="the PBXs idle again")
                results[engine.name] = rows
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    names = list(results)
    print(f"{'rate':>5} | " + " | ".join(
        f"{n}: queued/placed p50 s p95 s PBX ms/call CTI ms/call" for n in names))
    for i, rate in enumerate(rates):
        cells = []
        for n in names:
            r = results[n][i]
            cells.append(f"{r['queued']:>3}/{r['placed']:<3} {r['setup_p50_s'] or 0:5.2f} "
                         f"{r['setup_p95_s'] or 0:5.2f} {r['pbx_cpu_ms_per_call']:7.1f} "
                         f"{r['cti_cpu_ms_per_call']:7.1f}")
        print(f"{rate:5g} | " + " | ".join(cells))
    for n in names:
        ok = [r["rate"] for r in results[n] if r["failed"] == 0]
        print(f"{n}: highest zero-failure rate {max(ok) if ok else 0:g}/s")
    a, b = (results[n] for n in names)
    pairs = [(x["cti_cpu_ms_per_call"], y["cti_cpu_ms_per_call"]) for x, y in zip(a, b, strict=True)
             if x["cti_cpu_ms_per_call"] and y["cti_cpu_ms_per_call"]]
    if pairs:
        print(f"CTI CPU per call, ESL / AGI: {statistics.median(y / x for x, y in pairs):.2f}")
    pairs = [(x["pbx_cpu_ms_per_call"], y["pbx_cpu_ms_per_call"]) for x, y in zip(a, b, strict=True)
             if x["pbx_cpu_ms_per_call"] and y["pbx_cpu_ms_per_call"]]
    if pairs:
        print(f"PBX CPU per call, FreeSWITCH / Asterisk: "
              f"{statistics.median(y / x for x, y in pairs):.2f}")


if __name__ == "__main__":
    main()
