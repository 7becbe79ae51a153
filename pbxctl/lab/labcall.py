"""`pbxctl lab call`: one real call from a prefecture's PSTN node, and its timeline across sites.

Runs inside the PSTN node (the CLI re-enters it, like a drill): SIPp places the call with RTP
and RFC 2833 DTMF (key groups with pauses between them); the gateway's and the province's
AMI say what happened, in order; PostgreSQL says what was kept (call records of both sites
joined by the gateway's linkedid, the recording index, the bill read back). The caller talks
``talk`` seconds with whoever answers, then the gateway hangs the call up (as a caller
putting the phone down would); a self-service call that the PBX ends itself just ends.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pbxctl.core import chanvars as V
from pbxctl.core.errors import PbxctlError, UsageError, WaitTimeout
from pbxctl.core.procs import wait_until
from pbxctl.data.store import Store
from pbxctl.lab.drill import Recorder, Timeline
from pbxctl.lab.netlab import NetState, node_names
from pbxctl.lab.province import store_of
from pbxctl.lab.sandbox.sipp import SippProcess, pcap
from pbxctl.lab.sandbox.sipp_scenarios import dtmf_scenario, write_scenario
from pbxctl.pbx.ami import AmiClient, Message

FIRST_KEYS_MS = 1500  # during the welcome, which a caller may interrupt
NEXT_KEYS_MS = (2000, 4500)  # after the menu key; between later groups (prompts play)


@dataclass
class CallPlan:
    prefecture: str
    did: str
    caller: str
    keys: list[str] = field(default_factory=list)  # DTMF groups, e.g. ["1", "3301010001#"]
    talk: float = 5.0
    timeout: float = 120.0
    hangup_after: float | None = None  # the caller hangs up this long after the gateway answers
    # The caller's SIP port on the PSTN node (media: +100..+103) and SIPp's control port: a
    # second call at the same time needs its own.
    sip_port: int = 5060
    control_port: int = 5199


@dataclass
class Step:
    t: float  # seconds from the INVITE
    site: str
    what: str
    detail: dict[str, str] = field(default_factory=dict)


@dataclass
class CallReport:
    ok: bool
    prefecture: str
    did: str
    caller: str
    keys: list[str]
    sipp: dict[str, int]
    timeline: list[Step]
    welcome: dict[str, str] = field(default_factory=dict)
    services: list[dict[str, Any]] = field(default_factory=list)
    route: dict[str, str] = field(default_factory=dict)
    agent: str = ""
    served_by: str = ""  # province | lss | self-service
    records: list[dict[str, Any]] = field(default_factory=list)
    recording: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def steps_for(keys: list[str]) -> list[tuple[int, str]]:
    out = []
    for i, group in enumerate(keys):
        pause = FIRST_KEYS_MS if i == 0 else NEXT_KEYS_MS[0] if i == 1 else NEXT_KEYS_MS[1]
        out.append((pause, group))
    return out


def parse_keys(text: str) -> list[str]:
    groups = text.split()
    for g in groups:
        bad = [c for c in g if c not in "0123456789*#"]
        if bad:
            raise UsageError(f"--keys {text!r}: {bad[0]!r} is not a DTMF key (0-9, *, #)")
    return groups


def _ami(state: NetState, site: str, source: str) -> AmiClient:
    client = AmiClient(**state.sites[site]["ami"], source=source, timeout=3.0)
    client.connect()
    return client


def lab_store(state: NetState) -> Store:
    """The lab's PostgreSQL, through its socket directory (reachable from any namespace)."""
    return store_of(state.pg)


def place(state: NetState, plan: CallPlan, *, workdir: Path,
          progress: Callable[[str], None]) -> CallReport:
    if plan.prefecture not in state.prefectures:
        raise UsageError(f"prefecture {plan.prefecture} is not in this lab "
                         f"({', '.join(state.prefectures)})")
    from provisioning.inventory import load_inventory

    inv = load_inventory(Path(state.inventory))
    pref = inv.prefecture(plan.prefecture)
    gw_name, pbx_name, lss_name = pref.gateway.name, inv.province.pbx.name, pref.lss.name
    pstn = node_names(plan.prefecture)["pstn"]
    source = state.nodes[pstn]["a"]
    workdir.mkdir(parents=True, exist_ok=True)
    scenario = write_scenario(workdir, "call", dtmf_scenario(
        steps_for(plan.keys), pcap_dir=workdir / "pcaps", hold_ms=None,
        bye_timeout_ms=int(plan.timeout * 1000), speech_after=pcap("g711a.pcap")))
    sipp = SippProcess(scenario=scenario, workdir=workdir, local_ip=source,
                       remote=(str(pref.gateway.a), 5060), service=plan.did,
                       keys={"caller": plan.caller}, timeout=plan.timeout + 30,
                       in_namespace=True, local_port=plan.sip_port,
                       control_port=plan.control_port)
    clients = {gw_name: _ami(state, gw_name, source)}
    for other in (pbx_name, lss_name):
        try:  # the province is unreachable when the WAN is cut: the call goes on without it
            clients[other] = _ami(state, other, source)
        except PbxctlError as exc:
            progress(f"{other}'s events not followed: {exc.message}")
    timelines = {name: Timeline() for name in clients}
    recorders = [Recorder(c, timelines[n]) for n, c in clients.items()]
    try:
        for r in recorders:
            r.__enter__()
        t0 = time.time()
        sipp.start()
        progress(f"calling {plan.did} from {plan.caller} on {pstn} (keys: "
                 f"{' '.join(plan.keys) or 'none'})")
        gw_chan = _hang_up_after_talk(clients[gw_name], timelines, plan, gw_name, t0, progress)
        try:
            result = sipp.wait(timeout=plan.timeout + 45)
        finally:
            sipp.stop()
        time.sleep(0.3)  # the last Hangup events are already on their way
    finally:
        for r in recorders:
            r.__exit__()
        for c in clients.values():
            c.close()
    report = build(timelines, plan=plan, t0=t0, gw=gw_name, pbx=pbx_name, lss=lss_name,
                   gw_channel=gw_chan)
    report.sipp = {"successful": result.successful, "failed": result.failed}
    _join_records(state, report, gw=gw_name, progress=progress)
    report.ok = (result.successful == 1 and not report.problems)
    return report


def _hang_up_after_talk(ami: AmiClient, timelines: dict[str, Timeline], plan: CallPlan,
                        gw: str, t0: float, progress: Callable[[str], None]) -> str:
    """Once someone answers (an agent at the province or the LSS), talk, then hang up the
    gateway's PSTN channel. Returns that channel's name."""
    state: dict[str, str] = {}

    def watch() -> None:
        deadline = t0 + plan.timeout
        answered_at: float | None = None
        while time.time() < deadline:
            for t, m in list(timelines[gw].events):
                if t < t0:
                    continue
                if (m.get("Event") == "Newchannel" and not state.get("channel")
                        and m.get("CallerIDNum") == plan.caller):
                    state["channel"] = m.get("Channel", "")
                    state["uniqueid"] = m.get("Uniqueid", "")
                    state["arrived"] = str(t)
                if (m.get("Event") == "Hangup" and m.get("Uniqueid")
                        and m.get("Uniqueid") == state.get("uniqueid")):
                    return
            if answered_at is None:
                answered_at = next((t for name, tl in timelines.items() if name != gw
                                    for t, m in list(tl.events)
                                    if t >= t0 and m.get("Event") == "AgentConnect"
                                    and m.get("CallerIDNum") == plan.caller), None)
                if answered_at is not None:
                    progress(f"an agent answered; talking {plan.talk:g} s")
            early = (plan.hangup_after is not None and "arrived" in state
                     and time.time() >= float(state["arrived"]) + plan.hangup_after)
            if early or (answered_at is not None and time.time() >= answered_at + plan.talk):
                # The call may have ended by itself meanwhile.
                with contextlib.suppress(PbxctlError, OSError):
                    ami.action("Hangup", Channel=state["channel"], timeout=5)
                return
            time.sleep(0.1)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    thread.join(timeout=plan.timeout + 10)
    return state.get("channel", "")


def _ev(m: Message) -> str:
    return m.get("UserEvent") or m.get("Event", "")


def build(timelines: dict[str, Timeline], *, plan: CallPlan, t0: float, gw: str, pbx: str,
          lss: str, gw_channel: str) -> CallReport:
    """The call's steps in time order, from the events of the sites it crossed."""
    report = CallReport(ok=False, prefecture=plan.prefecture, did=plan.did, caller=plan.caller,
                        keys=plan.keys, sipp={}, timeline=[])
    steps: list[Step] = []
    gw_ids: set[str] = set()
    for t, m in timelines[gw].events:
        if t < t0:
            continue
        ev = _ev(m)
        if ev == "Newchannel" and m.get("Channel") == gw_channel:
            gw_ids.add(m.get("Uniqueid", ""))
            report.welcome["gateway_call"] = m.get("Linkedid", "")
            steps.append(Step(t - t0, gw, "call arrives",
                              {"did": m.get("Exten", ""), "caller": m.get("CallerIDNum", "")}))
        elif m.get("Linkedid") not in (report.welcome.get("gateway_call"), None):
            continue
        elif ev == "DTMFEnd" and m.get("Uniqueid") in gw_ids and m.get("Direction") == "Received":
            steps.append(Step(t - t0, gw, f"key {m.get('Digit')}", {}))
        elif (ev == "VarSet" and m.get("Uniqueid") in gw_ids
              and m.get("Variable", "").lstrip("_") in ("PBXCTL_WELCOME", V.WELCOME_PROMPT)):
            key = "branch" if m.get("Variable", "").lstrip("_") == "PBXCTL_WELCOME" else "prompt"
            report.welcome[key] = m.get("Value", "")
            if key == "branch":
                steps.append(Step(t - t0, gw, f"welcome: {m.get('Value')}",
                                  {"prompt": report.welcome.get("prompt", "(local default)")}))
        elif ev == "PbxctlService":
            svc = {k: m.get(k, "") for k in ("Service", "By", "Status", "Result", "Account",
                                              "Amount", "Period", "Due", "Outages", "Next")}
            report.services.append(svc)
            steps.append(Step(t - t0, gw, f"self-service {svc['Service']}: {svc['Result']}",
                              svc))
        elif ev == "PbxctlRoute":
            report.route = {"queue": m.get("Queue", ""), "reason": m.get("Reason", "")}
            steps.append(Step(t - t0, gw, "route", dict(report.route)))
        elif ev == "PbxctlSurvivable":
            report.served_by = "lss"
            steps.append(Step(t - t0, gw, "survivable: to the LSS",
                              {"dial_status": m.get("DialStatus", "")}))
        elif ev == "PbxctlPromptDrift":
            steps.append(Step(t - t0, gw, "prompt drift", {"prompt": m.get("Prompt", "")}))
        elif ev == "Hangup" and m.get("Uniqueid") in gw_ids:
            steps.append(Step(t - t0, gw, "hang-up", {"cause": m.get("Cause-txt", "")}))
    for site in (pbx, lss):
        for t, m in timelines.get(site, Timeline()).events:
            if t < t0 or (m.get("CallerIDNum") != plan.caller and _ev(m) not in (
                    "PbxctlOverflow",)):
                continue
            ev = _ev(m)
            if ev == "QueueCallerJoin":
                steps.append(Step(t - t0, site, "queued", {"queue": m.get("Queue", ""),
                                                           "position": m.get("Position", "")}))
            elif ev == "PbxctlOverflow":
                steps.append(Step(t - t0, site, "overflow", {"reason": m.get("Reason", ""),
                                                             "prefecture": m.get("Prefecture",
                                                                                 "")}))
            elif ev == "AgentConnect":
                agent = m.get("Interface", "").split("/", 1)[-1]
                report.agent = agent
                report.served_by = report.served_by or ("province" if site == pbx else "lss")
                steps.append(Step(t - t0, site, "agent answers",
                                  {"agent": agent, "queue": m.get("Queue", ""),
                                   "hold_s": m.get("HoldTime", "")}))
    report.timeline = sorted(steps, key=lambda s: s.t)
    if not report.served_by and report.services:
        report.served_by = "self-service"
    return report


def _join_records(state: NetState, report: CallReport, *, gw: str,
                  progress: Callable[[str], None]) -> None:
    """The call records of every site this call crossed (joined by the gateway's linkedid),
    the recording index row, and each bill read back, from PostgreSQL."""
    origin = report.welcome.get("gateway_call", "")
    if not origin:
        report.problems.append("the gateway never saw the call")
        return
    store = lab_store(state)
    try:
        want_sites = 1 + (1 if report.agent else 0)

        def rows() -> list[tuple[Any, ...]]:
            return store.execute(
                "SELECT site, uniqueid, origin, queue, agent, mode, overflow, talk_s "
                "FROM call_records WHERE (site = %s AND linkedid = %s) OR origin = %s "
                "ORDER BY started_at", (gw, origin, origin))

        try:
            wait_until(lambda: len({r[0] for r in rows()}) >= want_sites, timeout=30,
                       what="the call records of every site in PostgreSQL")
        except WaitTimeout as exc:
            report.problems.append(exc.message)
        report.records = [dict(zip(("site", "uniqueid", "origin", "queue", "agent", "mode",
                                    "overflow", "talk_s"), (str(v) for v in r), strict=True))
                          for r in rows()]
        if report.agent:
            answered = [r for r in report.records if r["agent"]]
            if answered:
                r = answered[0]
                try:
                    wait_until(lambda: bool(store.execute(
                        "SELECT 1 FROM recordings WHERE site = %s AND uniqueid = %s",
                        (r["site"], r["uniqueid"]))), timeout=30,
                        what="the recording index row")
                    path, size, status = (str(v) for v in store.execute(
                        "SELECT path, size_bytes, status FROM recordings WHERE site = %s AND "
                        "uniqueid = %s", (r["site"], r["uniqueid"]))[0])
                    report.recording = {"site": r["site"], "path": str(path),
                                        "bytes": int(size), "status": str(status)}
                except WaitTimeout as exc:
                    report.problems.append(exc.message)
            else:
                report.problems.append("no call record names the agent who answered")
        for svc in report.services:
            if svc.get("Service") == "bill" and svc.get("Account"):
                found = store.execute(
                    "SELECT period, amount::text, due_date::text FROM bills WHERE account_no = "
                    "%s AND NOT paid ORDER BY period DESC LIMIT 1", (svc["Account"],))
                svc["db"] = dict(zip(("period", "amount", "due"), found[0], strict=True)) \
                    if found else {}
        progress(f"PostgreSQL: {len(report.records)} call record(s)"
                 + (f", recording {report.recording.get('status')}" if report.recording
                    else ""))
    finally:
        store.close()
