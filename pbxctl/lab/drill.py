"""`pbxctl drill`: a fault in the namespace lab while SIPp places calls, and what it cost.

Runs inside the prefecture's PSTN node (the CLI re-enters it): SIPp there places calls into
the gateway at a steady rate, each streaming RTP for its whole length like a real media
gateway; the gateway's AMI says what became of each call (DialEnd to the province or the
LSS), the uplink keepers' logs and the survivability watcher's events say when the fault was
seen. The fault is real: links set down on the switch side, in the lab's switch namespace.

Faults:
* ``link-down``: every link of the prefecture's nodes to one switch goes down (that
  prefecture's switch A dies); the province stays on both switches.
* ``wan-cut``: the province disappears from both switches (the WAN to it is gone).
* ``flap``: the WAN goes down and up every ``period/2`` s, ``flaps`` times, then stays up.
* ``cti-hang``: the province's FastAGI server is frozen (SIGSTOP): it still accepts
  connections but answers nothing, which no SIP check sees; then it resumes (SIGCONT).

Per call: start (SIPp), served (the gateway's Dial answered by the province or the LSS),
end (SIPp's own BYE answered, or never: the far end hung up on it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pbxctl.core.errors import UsageError, WaitTimeout
from pbxctl.lab.netlab import NetState, node_names
from pbxctl.lab.sandbox.sipp import PCAP_DIR, SippProcess, scenario_path
from pbxctl.lab.sandbox.sipp_scenarios import DIGIT_PCAP, renumbered_pcap
from pbxctl.pbx.ami import AmiClient, Message

FAULTS = ("link-down", "wan-cut", "flap", "cti-hang")
CALLER_PREFIX = "05719"  # + SIPp's call number; 0571 keeps the calls in Hangzhou's area
DRILL_KEYS, DRILL_KEYS_MS = 4, 10800  # uac_drill.xml presses 0 four times in its first 10.8 s


@dataclass
class DrillPlan:
    fault: str
    prefecture: str
    switch: str = "a"
    rate: float = 1.0  # new calls per second
    hold: float = 20.0  # seconds each caller stays
    before: float = 8.0  # calls placed before the fault
    outage: float = 20.0  # how long the fault lasts
    after: float = 0.0  # calls placed after the restore (default: hold-down + 10 s)
    flaps: int = 3
    period: float = 4.0


@dataclass
class CallOutcome:
    number: int
    start: float
    up: float | None = None
    served: float | None = None
    served_by: str = ""  # province | lss
    done: float | None = None
    cut_at: float | None = None  # the gateway hung up its trunk leg (dead audio)


@dataclass
class DrillReport:
    fault: str
    prefecture: str
    calls: int
    fault_at: float
    restored_at: float
    detect_s: float | None
    recover_s: float | None  # fault → first call placed after it and served at normal speed
    failed_new_calls: int  # placed after the fault, never reached a queue
    dropped_established: int  # served before the fault, cut off by it
    dead_audio_teardown_s: float | None  # fault → last such call torn down (rtp_timeout)
    baseline_setup_s: float | None  # median start → served before the fault
    max_setup_in_window_s: float | None  # worst start → served for calls during the fault
    slow_after_detection: int  # placed after detection, setup > baseline + 1.5 s
    failback_s: float | None  # restore → new calls to the province again
    mode_switches: int
    served_by: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # The gateway's call-time relay during the drill: its counters' increase (deadline hits,
    # sessions it answered itself); empty when the gateway has no relay.
    relay: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Timeline:
    """Every AMI event of the gateway with the wall-clock moment it arrived."""

    events: list[tuple[float, Message]] = field(default_factory=list)

    def first(self, pred: Callable[[Message], bool], *, after: float) -> float | None:
        return next((t for t, m in list(self.events) if t >= after and pred(m)), None)


class Recorder:
    """Fills a Timeline from an AMI connection in the background."""

    def __init__(self, client: AmiClient, timeline: Timeline) -> None:
        self.client, self.timeline = client, timeline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Timeline:
        self._thread.start()
        return self.timeline

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        with self.client.subscribe() as sub:
            while not self._stop.is_set():
                try:
                    msg = sub.wait_for(lambda _m: True, timeout=0.2)
                except WaitTimeout:
                    continue
                self.timeline.events.append((time.time(), msg))


def _set(state: NetState, node: str, switch: str, up: bool) -> None:
    veth = state.nodes[node]["links"][switch]
    subprocess.run(["ip", "-n", f"pbx{state.tag}-sw", "link", "set", veth,
                    "up" if up else "down"], check=True, capture_output=True, timeout=10)


def _fault_links(state: NetState, plan: DrillPlan) -> list[tuple[str, str]]:
    if plan.fault == "link-down":
        inv_nodes = [n for n in state.nodes if n.startswith(plan.prefecture.lower())]
        return [(n, plan.switch) for n in inv_nodes]
    if plan.fault == "cti-hang":
        return []
    return [("pbx", "a"), ("pbx", "b")]


def run_drill(state: NetState, plan: DrillPlan, *, workdir: Path, gateway: str,
              did: str, progress: Callable[[str], None]) -> DrillReport:
    if plan.fault not in FAULTS:
        raise UsageError(f"unknown fault {plan.fault!r}; one of {', '.join(FAULTS)}")
    if plan.prefecture not in state.prefectures:
        raise UsageError(f"prefecture {plan.prefecture} is not in this lab "
                         f"({', '.join(state.prefectures)})")
    gw = state.sites[gateway]
    pstn = node_names(plan.prefecture)["pstn"]
    after = plan.after or state.hold_down + 10
    flapping = plan.flaps * plan.period if plan.fault == "flap" else 0.0
    total = plan.before + plan.outage + flapping + after
    calls = max(1, int(total * plan.rate))
    workdir.mkdir(parents=True, exist_ok=True)
    stream = workdir / "silence.alaw"
    stream.write_bytes(bytes([0xD5]) * 8000)  # one second of A-law silence, looped
    log_file = workdir / "calls.log"
    log_file.unlink(missing_ok=True)
    # rtp_stream's file is read when the scenario loads, before -key values apply.
    scenario = workdir / "uac_drill.xml"
    text = scenario_path("uac_drill.xml").read_text().replace("[stream]", str(stream))
    seq, ts = 1000, 160000
    for i in range(1, DRILL_KEYS + 1):
        dst = workdir / f"dtmf0-{i}.pcap"
        seq, ts = renumbered_pcap(PCAP_DIR / DIGIT_PCAP["0"], dst, seq=seq, ts=ts)
        text = text.replace(f"[dtmf{i}]", str(dst))
    scenario.write_text(text)
    sipp = SippProcess(scenario=scenario, workdir=workdir,
                       local_ip=state.nodes[pstn]["a"], remote=(gw["ami"]["host"], 5060),
                       service=did, calls=calls, rate=plan.rate,
                       pause_ms=max(1000, int(plan.hold * 1000) - DRILL_KEYS_MS),
                       timeout=total + plan.hold + 120,
                       keys={"caller": CALLER_PREFIX},
                       extra_args=("-trace_logs", "-log_file", str(log_file)),
                       netns=state.ns(pstn))
    client = AmiClient(**gw["ami"])
    client.connect()
    cuts = _fault_links(state, plan)
    relay_before = relay_counters(state, gateway)
    try:
        with Recorder(client, Timeline()) as events:
            sipp.start()
            t0 = time.time()
            progress(f"{calls} calls at {plan.rate:g}/s, {plan.hold:g} s each; fault "
                     f"{plan.fault} in {plan.before:g} s")
            _sleep_until(t0 + plan.before)
            fault_at = time.time()
            _apply(state, plan, cuts, up=False)
            progress(f"fault: {plan.fault} ({_describe(state, plan, cuts)})")
            restored_at = _run_outage(state, plan, cuts, fault_at, progress)
            progress(f"restored; calls continue for {after:g} s")
            try:
                sipp.wait(timeout=total + plan.hold + 150)
            finally:
                sipp.stop()
            time.sleep(0.5)  # the last DialEnd/Hangup events are already on their way
            report = build_report(state, plan, events, log_file, fault_at=fault_at,
                                  restored_at=restored_at, placed=calls)
            after_counts = relay_counters(state, gateway)
            report.relay = {k: v - relay_before.get(k, 0) for k, v in after_counts.items()
                            if v - relay_before.get(k, 0)}
            return report
    finally:
        _apply(state, plan, cuts, up=True)
        client.close()


def relay_counters(state: NetState, gateway: str) -> dict[str, int]:
    """The counters of the relay beside ``gateway`` (asked inside its namespace), or {}."""
    import json
    import sys

    from pbxctl.lab.sandbox.netns import ns_exec

    node = state.sites[gateway]["node"]
    res = subprocess.run([*ns_exec(state.ns(node)), sys.executable, "-m", "pbxctl", "relay",
                          "status", "--json", "--timeout", "3"],
                         capture_output=True, text=True, timeout=20, check=False)
    if res.returncode != 0:
        return {}
    counters = json.loads(res.stdout.splitlines()[-1]).get("counters", {})
    return {str(k): int(v) for k, v in counters.items()}


def _sleep_until(t: float) -> None:
    while (left := t - time.time()) > 0:
        time.sleep(min(left, 0.2))


def _apply(state: NetState, plan: DrillPlan, cuts: list[tuple[str, str]], *, up: bool) -> None:
    if plan.fault == "cti-hang":
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(state.cti["pid"]), signal.SIGCONT if up else signal.SIGSTOP)
    for node, sw in cuts:
        _set(state, node, sw, up)


def _describe(state: NetState, plan: DrillPlan, cuts: list[tuple[str, str]]) -> str:
    if plan.fault == "cti-hang":
        return f"CTI FastAGI server pid {state.cti.get('pid')} frozen"
    return ", ".join(f"{n}/{s}" for n, s in cuts) + " down"


def _run_outage(state: NetState, plan: DrillPlan, cuts: list[tuple[str, str]],
                fault_at: float, progress: Callable[[str], None]) -> float:
    if plan.fault == "flap":
        _sleep_until(fault_at + plan.outage)  # first a real outage: survivable mode
        for i in range(plan.flaps):
            _apply(state, plan, cuts, up=True)
            _sleep_until(time.time() + plan.period / 2)
            _apply(state, plan, cuts, up=False)
            progress(f"flap {i + 1}/{plan.flaps}")
            _sleep_until(time.time() + plan.period / 2)
    else:
        _sleep_until(fault_at + plan.outage)
    _apply(state, plan, cuts, up=True)
    return time.time()


def _parse_calls(path: Path) -> dict[int, CallOutcome]:
    calls: dict[int, CallOutcome] = {}
    text = path.read_text(errors="replace") if path.exists() else ""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 4 or parts[0] not in ("start", "up", "done"):
            continue
        n, t = int(parts[1]), float(parts[2]) + float(parts[3]) / 1e6
        call = calls.setdefault(n, CallOutcome(n, t))
        if parts[0] == "start":
            call.start = t
        else:
            setattr(call, parts[0], t)
    return calls


def _serving(events: Timeline, calls: dict[int, CallOutcome]) -> None:
    """Fill in when and where the gateway got each call answered, and trunk hangups."""
    number_of: dict[str, int] = {}
    trunk_of: dict[str, int] = {}
    for t, m in list(events.events):
        ev = m.get("Event")
        num = m.get("CallerIDNum", "")
        if ev == "Newchannel" and num.startswith(CALLER_PREFIX):
            number_of[m.get("Uniqueid", "")] = int(num[len(CALLER_PREFIX):] or 0)
        elif ev == "DialEnd" and m.get("DialStatus") == "ANSWER":
            n = number_of.get(m.get("Uniqueid", ""))
            dest = m.get("DestChannel", "")
            if n in calls and calls[n].served is None:
                calls[n].served = t
                calls[n].served_by = "lss" if "/lss-" in dest else "province"
                trunk_of[m.get("DestUniqueid", "")] = n
        elif ev == "Hangup" and m.get("Uniqueid") in trunk_of:
            n = trunk_of[m.get("Uniqueid", "")]
            calls[n].cut_at = t


def build_report(state: NetState, plan: DrillPlan, events: Timeline, log_file: Path, *,
                 fault_at: float, restored_at: float, placed: int) -> DrillReport:
    """What the drill cost, from SIPp's per-call log and the gateway's events."""
    calls = _parse_calls(log_file)
    _serving(events, calls)
    notes: list[str] = []
    detect = _seen_after(state, plan, events, fault_at, failing=True)
    before = [c for c in calls.values() if c.start < fault_at]
    during = [c for c in calls.values() if fault_at <= c.start]
    setups = [c.served - c.start for c in before if c.served]
    baseline = statistics.median(setups) if setups else None
    window = [c for c in during if c.start < restored_at + 5]
    failed = [c for c in during if c.served is None]
    dropped = [c for c in before if c.served and c.served < fault_at and c.done is None]
    cut_times = [c.cut_at - fault_at for c in dropped if c.cut_at]
    # Recovered: the first call placed after the fault that was served as fast as before.
    normal = [c.start for c in during if c.served and baseline is not None
              and c.served - c.start <= baseline + 1.0]
    recover = (min(normal) - fault_at) if normal else None
    slow = 0
    if detect is not None and baseline is not None:
        slow = sum(1 for c in during if c.start > fault_at + detect and c.served
                   and c.served - c.start > baseline + 1.5)
    window_setups = [c.served - c.start for c in window if c.served]
    failback = _seen_after(state, plan, events, restored_at, failing=False)
    switches = sum(1 for t, m in events.events
                   if m.get("UserEvent") == "PbxctlMode" and t >= fault_at)
    served_by: dict[str, int] = {}
    for c in calls.values():
        if c.served:
            served_by[c.served_by] = served_by.get(c.served_by, 0) + 1
    if len(calls) < placed:
        notes.append(f"SIPp logged {len(calls)} of {placed} calls")
    if not setups:
        notes.append("no call was served before the fault: nothing to compare with")
    if failed:
        notes.append("failed: calls " + ", ".join(str(c.number) for c in failed[:20]))
    return DrillReport(
        fault=plan.fault, prefecture=plan.prefecture, calls=len(calls), fault_at=fault_at,
        restored_at=restored_at, detect_s=detect, recover_s=recover,
        failed_new_calls=len(failed), dropped_established=len(dropped),
        dead_audio_teardown_s=max(cut_times) if cut_times else None,
        baseline_setup_s=baseline,
        max_setup_in_window_s=max(window_setups) if window_setups else None,
        slow_after_detection=slow, failback_s=failback, mode_switches=switches,
        served_by=served_by, notes=notes)


def _uplink_changes(state: NetState, node: str) -> list[tuple[float, str]]:
    path = Path(state.uplinks[node]["log"])
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("uplink at="):
            fields = dict(kv.split("=", 1) for kv in line.split()[1:3])
            out.append((float(fields["at"]), fields["active"]))
    return out


def _seen_after(state: NetState, plan: DrillPlan, events: Timeline, since: float, *,
                failing: bool) -> float | None:
    """Seconds from ``since`` to the first sign that the fault was seen (``failing``) or
    that things are back: the gateway's uplink flip, survivable/central mode, CTI bypass."""
    if plan.fault == "link-down":
        primary = f"eth{plan.switch}"
        hits = [t for t, active in _uplink_changes(state, node_names(plan.prefecture)["gateway"])
                if t >= since and (active != primary) == failing]
        return (hits[0] - since) if hits else None
    if plan.fault == "cti-hang":
        want = ("PbxctlCti", "Down", "1" if failing else "0")
    else:
        want = ("PbxctlMode", "Mode", "survivable" if failing else "central")
    t = events.first(lambda m: m.get("UserEvent") == want[0] and m.get(want[1]) == want[2],
                     after=since)
    return (t - since) if t else None


def targets(report: DrillReport, *, hold_down: float,
            rtp_timeout: float) -> list[tuple[str, str, bool]]:
    """The issue's targets, each (name, wanted, met)."""
    out = [
        ("calls placed and served before the fault", "all logged, ≥ 1 served",
         report.baseline_setup_s is not None and not any("SIPp logged" in n
                                                         for n in report.notes)),
        ("detection", "≤ 3 s", report.detect_s is not None and report.detect_s <= 3.0),
        ("failed new calls", "0", report.failed_new_calls == 0),
        ("slow calls after detection", "0 (no FastAGI connect wait once detected)",
         report.slow_after_detection == 0),
    ]
    if report.fault in ("link-down", "cti-hang"):
        out.append(("dropped established calls", "0", report.dropped_established == 0))
    if report.fault == "cti-hang":
        # The probe trusts the CTI again after two good pings in a row (≈ 2 s).
        out.append(("CTI used again after it resumes", "≤ 3 s",
                    report.failback_s is not None and report.failback_s <= 3.0))
    elif report.fault != "link-down":
        out.append(("failback", f"≤ hold-down + 3 = {hold_down + 3:g} s",
                    report.failback_s is not None and report.failback_s <= hold_down + 3))
        if report.dropped_established:
            out.append(("dead-audio teardown", f"≤ rtp_timeout + 2 = {rtp_timeout + 2:g} s",
                        report.dead_audio_teardown_s is not None
                        and report.dead_audio_teardown_s <= rtp_timeout + 2))
    if report.fault == "flap":
        out.append(("mode switches", "≤ 2 (one out, one back)", report.mode_switches <= 2))
    return out
