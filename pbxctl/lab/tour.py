"""`make demo`'s guided tour: what the patent asks, shown with real calls in the province lab.

Runs inside the first prefecture's PSTN node (the CLI re-enters it, like `lab call`). Each
step is a real call or action; its row says what the patent asks, what happened (measured)
and the proof (call ids, recording path and bytes, order id). A step that fails is a red row
and makes the tour exit non-zero; later steps still run where they do not depend on it.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pbxctl.core.errors import PbxctlError, ServiceStartError, WaitTimeout
from pbxctl.core.procs import wait_until
from pbxctl.lab.labcall import CallPlan, CallReport, lab_store, place
from pbxctl.lab.netlab import NetState, node_names
from pbxctl.lab.phones import PhoneSpec, dial_process
from pbxctl.lab.province import pbxctl, phones_of, set_phone_mode
from pbxctl.lab.sandbox.netns import ns_exec
from pbxctl.pbx.ami import AmiClient
from provisioning.inventory import load_inventory
from provisioning.model import Inventory, Prefecture
from provisioning.secrets import ensure_secrets, secrets_path

WELCOME_LISTEN_S = 6.0
NEW_WELCOME = "欢迎致电国网浙江电力客服中心，本通电话为演示新版欢迎词。"


@dataclass
class Row:
    step: str
    patent: str
    happened: str
    proof: str
    ok: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Tour:
    def __init__(self, state: NetState, *, root: Path, emit: Callable[[Row], None],
                 progress: Callable[[str], None]) -> None:
        self.state, self.root, self.emit, self.progress = state, root, emit, progress
        self.inv: Inventory = load_inventory(Path(state.inventory))
        self.pref: Prefecture = self.inv.prefecture(state.prefectures[0])
        self.rows: list[Row] = []
        self.last_agent_call: CallReport | None = None
        self.only: set[str] = set()  # step numbers to run (default: all)

    # -- helpers ---------------------------------------------------------------------------
    def _row(self, row: Row) -> None:
        self.rows.append(row)
        self.emit(row)

    def call(self, name: str, keys: list[str], *, talk: float = 3.0,
             hangup_after: float | None = None, second: bool = False) -> CallReport:
        """``second``: a call placed while another runs (its own caller number and ports)."""
        plan = CallPlan(prefecture=self.pref.code, did=self.pref.dids[0],
                        caller=f"{self.pref.area_codes[0]}8888000{int(second)}"[:12], keys=keys,
                        talk=talk, hangup_after=hangup_after,
                        sip_port=5070 if second else 5060,
                        control_port=5299 if second else 5199)
        return place(self.state, plan, workdir=self.root / "tour" / name,
                     progress=self.progress)

    @contextlib.contextmanager
    def meter(self, node: str, peers: list[str]) -> Iterator[dict[str, int]]:
        """Bytes by kind (sip, agi, rtp, other) between ``node`` and ``peers`` meanwhile."""
        proc = subprocess.Popen([*ns_exec(self.state.ns(node)), sys.executable,
                                 "-m", "pbxctl.lab.wanmeter",
                                 *(a for p in peers for a in ("--peer", p))],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None and proc.stdout is not None
        result: dict[str, int] = {}
        try:
            line = proc.stderr.readline()  # "counting": the socket is bound
            if "counting" not in line:
                raise ServiceStartError(f"packet meter on {node} did not start: {line.strip()}")
            yield result
        finally:
            proc.terminate()
            out, _ = proc.communicate(timeout=10)
            result.update(json.loads(out or "{}"))

    def _catalog_age_s(self) -> float:
        cti = self.inv.province.cti
        out = pbxctl(Path(self.state.config), "agi", "health", "--host", str(cti.a), "--port",
                     str(self.inv.province.cti_port), "--json", ns=self.state.ns("pbx"))
        age = json.loads(out).get("catalog_age_ms", -1)
        return float(age) / 1000 if age >= 0 else -1.0

    def gateway_addrs(self) -> list[str]:
        return [str(self.pref.gateway.a), str(self.pref.gateway.b)]

    def step(self, name: str, patent: str, fn: Callable[[], tuple[str, str, bool]]) -> bool:
        if self.only and name.split()[0] not in self.only:
            return True
        self.progress(f"step {name}: {patent}")
        try:
            happened, proof, ok = fn()
        except (PbxctlError, OSError, KeyError, IndexError, ValueError) as exc:
            happened, proof, ok = f"error: {exc}", "", False
        self._row(Row(name, patent, happened, proof, ok))
        return ok

    # -- the steps -------------------------------------------------------------------------
    def welcome(self) -> tuple[str, str, bool]:
        """A caller who listens to the welcome for a few seconds and hangs up."""
        pstn_node = node_names(self.pref.code)["pstn"]
        with self.meter("pbx", self.gateway_addrs()) as wan, \
                self.meter(pstn_node, self.gateway_addrs()) as caller:
            report = self.call("welcome", [], hangup_after=WELCOME_LISTEN_S)
        w = report.welcome
        gw = self.pref.gateway.name
        local = self.root / gw / "sounds" / "pbxctl" / f"{w.get('prompt', '?')}.wav"
        ok = (w.get("branch") == "central" and local.is_file() and wan.get("rtp") == 0
              and caller.get("rtp", 0) > 0)
        size = local.stat().st_size if local.is_file() else 0
        return (f"CTI chose {w.get('prompt')} ({w.get('branch')}); {gw} played it from "
                f"its own disk. Over the WAN ({gw} ↔ province) meanwhile: AGI "
                f"{wan.get('agi')} B, SIP {wan.get('sip')} B (both with the 1 s qualify and CTI "
                f"probes), audio {wan.get('rtp')} B; audio to the caller {caller.get('rtp')} B",
                f"call {w.get('gateway_call')}; {local} ({size} B)", ok)

    def bill(self) -> tuple[str, str, bool]:
        account = self._sample_account()
        report = self.call("bill", ["1", account + "#"])
        svc = next((s for s in report.services if s.get("Service") == "bill"), {})
        db = svc.get("db", {})
        ok = bool(db) and (svc.get("Amount"), svc.get("Period"), svc.get("Due")) == (
            db.get("amount"), db.get("period"), db.get("due"))
        return (f"account {svc.get('Account')}: {svc.get('Period')} {svc.get('Amount')} "
                f"due {svc.get('Due')} read back; PostgreSQL has {db}",
                f"call {report.welcome.get('gateway_call')}", ok)

    def _sample_account(self) -> str:
        store = lab_store(self.state)
        try:
            rows = store.execute("SELECT a.account_no FROM accounts a JOIN bills b USING "
                                 "(account_no) WHERE a.prefecture = %s AND NOT b.paid ORDER BY "
                                 "a.account_no LIMIT 1", (self.pref.code,))
        finally:
            store.close()
        return str(rows[0][0])

    def outage(self, *, second: bool = False) -> tuple[str, str, bool]:
        report = self.call("outage", ["2", "#"], second=second)
        svc = next((s for s in report.services if s.get("Service") == "outage"), {})
        ok = svc.get("Status") == "OK" and report.sipp.get("successful") == 1
        return (f"outage query for the caller's area: {svc.get('Outages') or 'none'} "
                f"outage(s) read out ({svc.get('Result') or svc.get('Status')})",
                f"call {report.welcome.get('gateway_call')}", ok)

    def agent(self) -> tuple[str, str, bool]:
        report = self.call("agent", ["0"], talk=4.0)
        self.last_agent_call = report
        rec = report.recording
        joined = [r for r in report.records if r["origin"] == report.welcome.get("gateway_call")]
        ok = (report.served_by == "province" and bool(report.agent) and rec.get("status") == "ok"
              and bool(joined))
        queue = report.route.get("queue", "")
        return (f"queued in {queue} ({report.route.get('reason')}), answered by "
                f"{report.agent}, recorded; {len(report.records)} call records joined",
                f"{rec.get('path', '-')} ({rec.get('bytes', 0)} B, {rec.get('status', '-')}); "
                f"records {', '.join(r['site'] + ':' + r['uniqueid'] for r in report.records)}",
                ok)

    def overflow(self) -> tuple[str, str, bool]:
        net = asdict(self.state)
        agents = [s.id for s in self.pref.agents]
        for a in agents:
            set_phone_mode(net, a, "busy")
        try:
            report = self.call("overflow", ["0"], talk=2.0)
        finally:
            for a in agents:
                set_phone_mode(net, a, "free")
        over = [s for s in report.timeline if s.what == "overflow"]
        ok = bool(over) and report.agent in {s.id for s in self.inv.province.supervisors}
        return (f"all {len(agents)} {self.pref.code} agents busy → overflow "
                f"({over[0].detail.get('reason') if over else 'none'}) → answered by "
                f"supervisor {report.agent or '-'}",
                f"call {report.welcome.get('gateway_call')}", ok)

    def work_order(self) -> tuple[str, str, bool]:
        call = self.last_agent_call
        if call is None or not call.agent:
            return ("no agent call to file an order from (step 4 failed)", "", False)
        phones = phones_of(asdict(self.state))
        spec = PhoneSpec(**{k: v for k, v in phones[call.agent].items()
                            if k in PhoneSpec.__dataclass_fields__})
        sec = ensure_secrets(self.inv, secrets_path(Path(self.state.inventory)), create=False)
        account = self._sample_account()
        node = phones[call.agent]["node"]
        sipp = dial_process(spec, sec.sip[spec.seat], number="*9",
                            registrar=str(self.inv.province.pbx.a),
                            steps=[(2500, "1"), (3000, account + "#")],
                            workdir=self.root / "tour" / "star9",
                            netns=self.state.ns(node))
        store = lab_store(self.state)
        try:
            before = int(str(store.execute("SELECT coalesce(max(id), 0) FROM work_orders")[0][0]))
            sipp.run()
            wait_until(lambda: bool(store.execute("SELECT 1 FROM work_orders WHERE id > %s",
                                                  (before,))),
                       timeout=60, what="the agent's work order in PostgreSQL")
            oid = int(str(store.execute("SELECT min(id) FROM work_orders WHERE id > %s",
                                        (before,))[0][0]))
            with contextlib.suppress(WaitTimeout):  # the row below says what it became
                wait_until(lambda: store.execute("SELECT status FROM work_orders WHERE id = %s",
                                                 (oid,))[0][0] == "accepted",
                           timeout=90, what=f"order {oid} accepted by its county seat")
            status, seat, linked, rec = store.execute(
                "SELECT status, seat, call_linkedid, recording FROM work_orders WHERE id = %s",
                (oid,))[0]
            events = [str(r[0]) for r in store.execute(
                "SELECT event FROM work_order_events WHERE order_id = %s ORDER BY id", (oid,))]
        finally:
            store.close()
        ok = status == "accepted" and bool(rec)
        return (f"{call.agent} pressed *9 → order {oid} → dispatcher rang {seat} → the seat "
                f"pressed 1: {status} ({' → '.join(events)})",
                f"order {oid}; call {linked}; recording {rec}", ok)

    def new_welcome(self) -> tuple[str, str, bool]:
        cfg = Path(self.state.config)
        added = pbxctl(cfg, "prompts", "add", "welcome-default", "--text", NEW_WELCOME)
        version = added.split()[1]  # "welcome-default v2 added …"
        pbxctl(cfg, "prompts", "publish", "--inventory", self.state.inventory, "--target",
               str(self.root))
        published = time.monotonic()
        # The CTI reads the catalogue every few seconds off the call path: wait until its
        # snapshot is younger than the publication (its health ping reports the age).
        wait_until(lambda: 0 <= self._catalog_age_s() < time.monotonic() - published,
                   timeout=30, what="the CTI to load the new catalogue")
        gw = self.pref.gateway.name
        with self.meter("pbx", self.gateway_addrs()) as wan:
            report = self.call("new-welcome", [], hangup_after=WELCOME_LISTEN_S)
        prompt = report.welcome.get("prompt", "")
        local = self.root / gw / "sounds" / "pbxctl" / f"{prompt}.wav"
        size = local.stat().st_size if local.is_file() else 0
        ok = prompt == f"welcome-default/{version}" and size > 0 and wan.get("rtp") == 0
        return (f"published {version} centrally; the next call got {prompt} ({size} B) from {gw}'s "
                f"disk; over the WAN meanwhile: AGI {wan.get('agi')} B, audio "
                f"{wan.get('rtp')} B",
                f"call {report.welcome.get('gateway_call')}; {local}", ok)

    def wan_cut(self) -> tuple[str, str, bool]:
        gw = self.state.sites[self.pref.gateway.name]
        source = self.state.nodes[node_names(self.pref.code)["pstn"]]["a"]
        ami = AmiClient(**gw["ami"], source=source)
        ami.connect()
        try:
            with ami.subscribe(keep=lambda m: m.get("UserEvent") == "PbxctlMode") as events:
                cut = time.time()
                self._links(up=False)
                try:
                    events.wait_for(lambda m: m.get("Mode") == "survivable", timeout=30,
                                    what="survivable mode on the gateway")
                    detect = time.time() - cut
                    # Self-service in the cut (the prefecture's own IVR, from its replica),
                    # at the same time as a caller who wants an agent.
                    account = self._sample_account()
                    with ThreadPoolExecutor(max_workers=1) as pool:
                        bill_call = pool.submit(self.call, "survivable-bill",
                                                ["1", account + "#"], second=True)
                        report = self.call("survivable", ["0"], talk=3.0)
                        bill = bill_call.result()
                finally:
                    self._links(up=True)
                back = time.time()
                events.wait_for(lambda m: m.get("Mode") == "central",
                                timeout=self.state.hold_down + 60, what="failback to central")
                failback = time.time() - back
        finally:
            ami.close()
        svc = next((s for s in bill.services if s.get("Service") == "bill"), {})
        db = svc.get("db", {})
        ivr_ok = svc.get("By") == "ivr" and bool(db) and svc.get("Amount") == db.get("amount")
        ok = report.served_by == "lss" and bool(report.agent) and ivr_ok
        return (f"WAN cut: survivable in {detect:.1f} s; call served by the LSS, agent "
                f"{report.agent or '-'} answered; bill query answered by the "
                f"{'prefecture IVR' if svc.get('By') == 'ivr' else svc.get('By') or '?'} from "
                f"its replica: {svc.get('Amount') or '-'} (province: {db.get('amount', '-')}); "
                f"WAN back: failback after {failback:.1f} s (hold-down "
                f"{self.state.hold_down:g} s)",
                f"calls {report.welcome.get('gateway_call')}, "
                f"{bill.welcome.get('gateway_call')}", ok)

    def _links(self, *, up: bool) -> None:
        for veth in self.state.nodes["pbx"]["links"].values():
            subprocess.run(["ip", "-n", f"pbx{self.state.tag}-sw", "link", "set", veth,
                            "up" if up else "down"], check=True, capture_output=True, timeout=10)

    def run(self) -> list[Row]:
        self.step("1 welcome", "central control, local playback", self.welcome)
        # Steps 2 and 3 are two callers at the same time (each prompt read back takes ~30 s;
        # self-service serves callers in parallel anyway): each still gets its own row.
        with ThreadPoolExecutor(max_workers=1) as pool:
            beside = (pool.submit(self.outage, second=True)
                      if not self.only or "3" in self.only else None)
            self.step("2 bill query", "24x7 self-service: bill by DTMF", self.bill)
            self.step("3 outage query", "24x7 self-service: outages in the caller's area",
                      beside.result if beside is not None else self.outage)
        self.step("4 agent", "queue, connect, record (with a database)", self.agent)
        self.step("5 overflow", "supervisor seats take overflow", self.overflow)
        self.step("6 work order", "county terminal seats receive and act on work orders",
                  self.work_order)
        self.step("7 new welcome", "the catalogue is central, playback stays local",
                  self.new_welcome)
        self.step("8 WAN cut", "the local survivable server keeps queuing and connecting; "
                  "the prefecture IVR keeps self-service",
                  self.wan_cut)
        return self.rows
