"""Benchmark: concurrent two-way calls with recording on vs off, and the AMI consumer's lag.

    .venv/bin/python -m bench.recording_load [--levels 25,50,100,200,300] [--hold 6]

One sandboxed Asterisk (the default engine; PBXCTL_ASTERISK picks) on 127.0.0.1. A SIPp
caller (127.0.0.2) places N calls at once (ramped over 3 s, -l N); each is bridged by Dial
to a SIPp "agent" (127.0.0.3) that answers; both sides send real G.711 RTP (SIPp's
g711a.pcap) for --hold seconds. The two modes differ only in MixMonitor on the caller's
channel (the province records the same way, from answer). A level passes when every call
completes and, with recording on, every file holds at least --hold - 1 s of audio. Per level
it prints the Asterisk process's CPU seconds per call and, from an AMI subscriber running
throughout, the lag of events (receive time minus the Timestamp Asterisk stamped on them:
timestampevents=yes). Summary: the highest passing level per mode, their ratio (on/off), and
the CPU ratio at the highest level both passed. """

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pbxctl.core.net import free_port
from pbxctl.data.recordings import read_wav_header
from pbxctl.lab.sandbox.asterisk import AsteriskInstance
from pbxctl.lab.sandbox.sipp import SippProcess, pcap, scenario_path
from pbxctl.pbx.ami import AmiClient

CALLER_IP, AGENT_IP = "127.0.0.2", "127.0.0.3"
MODES = {"off": "1", "on": "2"}


def configs(sip_port: int, agent_port: int) -> dict[str, str]:
    pjsip = f"""[transport-udp]
type = transport
protocol = udp
bind = 127.0.0.1:{sip_port}

[pstn]
type = endpoint
context = from-pstn
disallow = all
allow = alaw
direct_media = no
rtp_symmetric = yes

[pstn-identify]
type = identify
endpoint = pstn
match = {CALLER_IP}

[agent]
type = aor
contact = sip:agent@{AGENT_IP}:{agent_port}

[agent]
type = endpoint
context = from-pstn
aors = agent
disallow = all
allow = alaw
direct_media = no

[agent-identify]
type = identify
endpoint = agent
match = {AGENT_IP}
"""
    ext = """[from-pstn]
exten => _1.,1,Dial(PJSIP/agent,10)
 same => n,Hangup()
exten => _2.,1,MixMonitor(bench-${UNIQUEID}.wav,b)
 same => n,Dial(PJSIP/agent,10)
 same => n,Hangup()
"""
    return {"pjsip.conf": pjsip, "extensions.conf": ext}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class LagMeter:
    lags: list[float] = field(default_factory=list)
    events: int = 0

    def consume(self, client: AmiClient, stop: threading.Event) -> None:
        with client.subscribe() as sub:
            while not stop.is_set():
                try:
                    msg = sub.wait_for(lambda m: True, timeout=0.5)
                except Exception:  # noqa: BLE001 -- WaitTimeout: nothing this half-second
                    continue
                now = time.time()
                self.events += 1
                if "Timestamp" in msg:
                    self.lags.append(now - float(msg["Timestamp"]))

    def take(self) -> tuple[int, list[float]]:
        events, lags = self.events, self.lags
        self.events, self.lags = 0, []
        return events, lags


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


@dataclass
class Level:
    mode: str
    n: int
    ok: int
    failed: int
    whole_recordings: int
    cpu_per_call: float
    events: int
    lag_p50_ms: float
    lag_p99_ms: float
    lag_max_ms: float

    @property
    def passed(self) -> bool:
        return self.ok == self.n and self.failed == 0 and (
            self.mode == "off" or self.whole_recordings == self.n)


def run_level(ast: AsteriskInstance, sip_port: int, agent_port: int, mode: str, n: int,
              hold: float, root: Path, meter: LagMeter) -> Level:
    assert ast.pid is not None
    work = root / f"{mode}-{n}"
    monitor = ast.spool / "monitor"
    if monitor.exists():
        shutil.rmtree(monitor)
    agent = SippProcess(scenario=scenario_path("uas_agent.xml"), workdir=work / "agent",
                        local_ip=AGENT_IP, local_port=agent_port, calls=n, timeout=120,
                        extra_args=("-aa",), keys={"audio": str(pcap("g711a.pcap"))})
    agent.start()
    caller = SippProcess(scenario=scenario_path("uac_hold_bye.xml"), workdir=work / "caller",
                         local_ip=CALLER_IP, remote=("127.0.0.1", sip_port),
                         service=MODES[mode] + "95598", calls=n, rate=max(1.0, n / 3),
                         concurrent=n, pause_ms=int(hold * 1000), timeout=hold + 90,
                         keys={"caller": "057188880000", "audio": str(pcap("g711a.pcap"))})
    meter.take()
    cpu0 = cpu_seconds(ast.pid)
    caller.start()
    res = caller.wait()
    cpu = cpu_seconds(ast.pid) - cpu0
    agent.stop()
    time.sleep(1.0)  # MixMonitor closes its files just after the hang-up
    events, lags = meter.take()
    whole = 0
    for f in monitor.glob("*.wav") if monitor.exists() else []:
        with contextlib.suppress(ValueError, OSError):
            whole += read_wav_header(f).audio_s >= hold - 1.0
    return Level(mode, n, res.successful, res.failed, whole, cpu / max(1, n), events,
                 pct(lags, 50) * 1000, pct(lags, 99) * 1000, max(lags, default=0.0) * 1000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--levels", default="25,50,100,200,300")
    ap.add_argument("--hold", type=float, default=6.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    root = Path(tempfile.mkdtemp(prefix="pbxrec-", dir="/tmp"))
    sip_port, agent_port = free_port(kind="udp"), free_port(AGENT_IP, kind="udp")
    ast = AsteriskInstance(name="rec", root=root / "ast", configs=configs(sip_port, agent_port))
    stop = threading.Event()
    results: list[Level] = []
    try:
        ast.start()
        assert ast.ami is not None
        ami = AmiClient(**asdict(ast.ami))
        ami.connect()
        meter = LagMeter()
        threading.Thread(target=meter.consume, args=(ami, stop), daemon=True).start()
        for n in levels:  # interleaved, so both modes see the same box at the same moment
            for mode in MODES:
                if any(r.mode == mode and not r.passed for r in results):
                    continue
                lv = run_level(ast, sip_port, agent_port, mode, n, args.hold, root, meter)
                results.append(lv)
                print(f"{mode:>3} {n:>4} concurrent: {lv.ok}/{n} ok, {lv.failed} failed, "
                      f"{lv.whole_recordings} whole recordings, {lv.cpu_per_call * 1000:.1f} "
                      f"ms Asterisk CPU/call; AMI {lv.events} events, lag p50 "
                      f"{lv.lag_p50_ms:.1f} ms p99 {lv.lag_p99_ms:.1f} ms max "
                      f"{lv.lag_max_ms:.1f} ms", flush=True)
        stop.set()
        ami.close()
    finally:
        ast.stop()
        shutil.rmtree(root, ignore_errors=True)
    report(results)


def report(results: list[Level]) -> None:
    best = {m: max((r.n for r in results if r.mode == m and r.passed), default=0)
            for m in MODES}
    print(f"\nhighest passing concurrency: recording off {best['off']}, on {best['on']}")
    if best["off"]:
        print(f"ratio on/off = {best['on'] / best['off']:.2f}")
    common = min(best.values())
    if common:
        on = next(r for r in results if r.mode == "on" and r.n == common)
        off = next(r for r in results if r.mode == "off" and r.n == common)
        print(f"Asterisk CPU per call at {common} concurrent: on {on.cpu_per_call * 1000:.1f} ms,"
              f" off {off.cpu_per_call * 1000:.1f} ms, ratio on/off "
              f"{on.cpu_per_call / max(off.cpu_per_call, 1e-9):.2f}")
        print(f"AMI lag at {common} concurrent with recording: p50 {on.lag_p50_ms:.1f} ms, "
              f"p99 {on.lag_p99_ms:.1f} ms, max {on.lag_max_ms:.1f} ms over {on.events} events")
    tested = max((r.n for r in results), default=0)
    if best["on"] == tested and best["off"] == tested:
        print(f"(both modes passed the highest level tried, {tested}: the box's limit is "
              "higher; raise --levels)")


if __name__ == "__main__":
    main()
