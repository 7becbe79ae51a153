"""The lab: real PostgreSQL, a real Asterisk gateway, our FastAGI server, a real SIPp call.

Top layer (like cli.py): it wires provisioning and ivr_scripts together. Everything it starts
is recorded by PID in ``<lab dir>/lab.json`` so ``lab down`` stops exactly that.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pbxctl.core.errors import LabStateError, ServiceStartError, WaitTimeout
from pbxctl.core.files import atomic_write
from pbxctl.core.net import free_port, tcp_accepts
from pbxctl.core.procs import pid_alive, spawn, stop_pid, tail, wait_until
from pbxctl.core.redact import redacted
from pbxctl.data.store import Store, StoreConfig
from pbxctl.lab.gateway_site import GatewayParams, gateway_configs
from pbxctl.lab.sandbox.asterisk import AsteriskInstance, find_asterisk, stop_by_pid
from pbxctl.lab.sandbox.postgres import PostgresCluster, find_pg_bindir
from pbxctl.lab.sandbox.sipp import SippProcess, pcap, scenario_path
from pbxctl.pbx.ami import AmiClient

DEFAULT_LAB_DIR = "/tmp/pbxctl-lab"
DEMO_DID = "95598"
DEMO_CALLER = "057188880000"

Progress = Callable[[str], None]


@dataclass
class LabState:
    root: str
    pg: dict[str, Any] = field(default_factory=dict)
    asterisk: list[dict[str, Any]] = field(default_factory=list)
    agi: dict[str, Any] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    netns: dict[str, Any] = field(default_factory=dict)  # a province in namespaces (netlab)

    @property
    def path(self) -> Path:
        return Path(self.root) / "lab.json"

    def save(self) -> None:
        atomic_write(self.path, json.dumps(asdict(self), indent=2, sort_keys=True), mode=0o600)

    @classmethod
    def load(cls, root: Path) -> LabState | None:
        try:
            return cls(**json.loads((root / "lab.json").read_text()))
        except FileNotFoundError:
            return None

    def pids(self) -> list[int]:
        out = [a["pid"] for a in self.asterisk if a.get("pid")]
        out += [p for p in (self.pg.get("pid"), self.agi.get("pid")) if p]
        if self.netns:
            from pbxctl.lab.netlab import NetState
            out += NetState(**self.netns).pids()
        return out


def lab_dir(environ: dict[str, str]) -> Path:
    return Path(environ.get("PBXCTL_LAB_DIR", DEFAULT_LAB_DIR))


def _start_agi_server(root: Path, conninfo: str, progress: Progress) -> dict[str, Any]:
    port = free_port("127.0.0.1")
    log = root / "agi" / "agi.log"
    argv = [sys.executable, "-m", "pbxctl", "agi", "serve", "--host", "127.0.0.1",
            "--port", str(port), "--dsn", conninfo, "--fixed-welcome", "hello-world"]
    proc = spawn(argv, log_path=log)
    deadline = time.monotonic() + 20
    while not tcp_accepts("127.0.0.1", port):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_pid(proc.pid)
            raise ServiceStartError("FastAGI server did not come up", hint=f"see {log}",
                                    detail=tail(log))
        time.sleep(0.05)
    progress(f"FastAGI server listening on 127.0.0.1:{port} (pid {proc.pid})")
    return {"pid": proc.pid, "host": "127.0.0.1", "port": port, "log": str(log)}


def lab_up(root: Path, *, progress: Progress, asterisk_bin: str | None = None,
           major: int | None = None, inventory: Path | None = None,
           prefectures: list[str] | None = None, hold_down: float | None = None,
           always_open: bool = False) -> LabState:
    """The one-site demo lab on loopback, or (``inventory``) a whole province in network
    namespaces with real links to cut (see netlab.py)."""
    existing = LabState.load(root)
    if existing is not None:
        if any(pid_alive(p) for p in existing.pids()):
            raise LabStateError(f"a lab is already up in {root}",
                                hint="run `pbxctl lab down` first")
        shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    state = LabState(root=str(root))
    state.save()
    try:
        if inventory is not None:
            from pbxctl.lab.netlab import netlab_up
            box: dict[str, Any] = {}

            def save() -> None:
                state.netns = box.get("netns", {})
                state.save()

            netlab_up(root, inventory, progress=progress, save=save, state_box=box,
                      prefectures=prefectures, major=major, hold_down=hold_down,
                      always_open=always_open)
        else:
            _bring_up(state, root, progress, asterisk_bin, major)
    except BaseException:
        progress("start-up failed: stopping what was started (files kept for inspection)")
        try:
            lab_down(root, progress=progress, keep_files=True)
        except LabStateError as cleanup:  # never mask the error that made us stop
            progress(f"cleanup: {cleanup}")
        raise
    return state


def _bring_up(state: LabState, root: Path, progress: Progress, asterisk_bin: str | None,
              major: int | None) -> None:
    binary = find_asterisk(major, path=asterisk_bin)  # fail before starting anything if missing
    pg = PostgresCluster(root=root / "pg")
    state.pg = {"datadir": str(pg.datadir), "log": str(pg.log_path)}
    state.save()
    endpoint = pg.start()
    state.pg.update(pid=pg.pid, port=endpoint.port, socket_dir=endpoint.socket_dir,
                    conninfo=endpoint.conninfo())
    state.save()
    progress(f"PostgreSQL {find_pg_bindir().parent.name} on 127.0.0.1:{endpoint.port} "
             f"(pid {pg.pid})")
    with Store(config=StoreConfig(conninfo=endpoint.conninfo())) as store:
        applied = store.migrate()
    progress(f"schema migrated ({len(applied)} migration(s) applied)")

    state.agi = _start_agi_server(root, endpoint.conninfo(), progress)
    state.save()

    sip_port = free_port("127.0.0.1", kind="udp")
    configs = gateway_configs(GatewayParams(address="127.0.0.1", sip_port=sip_port,
                                            agi_host=state.agi["host"],
                                            agi_port=state.agi["port"],
                                            pstn_address="127.0.0.1"))
    ast = AsteriskInstance(name="hz-gw", root=root / "hz-gw", configs=configs, binary=binary)
    record: dict[str, Any] = {"name": "hz-gw", "root": str(ast.root), "conf": str(ast.conf_path),
                              "binary": str(binary.path)}
    state.asterisk.append(record)
    state.save()
    ast.start()
    assert ast.ami is not None
    record.update(pid=ast.pid, sip=f"127.0.0.1:{sip_port}", ami=asdict(ast.ami))
    state.save()
    progress(f"Asterisk {binary.major} hz-gw SIP 127.0.0.1:{sip_port}, AMI :{ast.ami.port} "
             f"(pid {ast.pid})")

    state.calls.append(demo_call(ast, sip_port, root, endpoint.conninfo(), progress))
    state.save()


def demo_call(ast: AsteriskInstance, sip_port: int, root: Path, conninfo: str,
              progress: Progress) -> dict[str, Any]:
    """One real SIPp call (RTP from SIPp's g711a pcap) into the gateway; Asterisk's own
    UserEvent says which branch the dialplan took on the handler's variable."""
    assert ast.ami is not None
    with AmiClient(**asdict(ast.ami)) as ami, ami.subscribe() as events:
        sipp = SippProcess(scenario=scenario_path("uac_wait_bye.xml"), workdir=root / "sipp",
                           remote=("127.0.0.1", sip_port), service=DEMO_DID,
                           keys={"caller": DEMO_CALLER, "audio": str(pcap("g711a.pcap"))},
                           timeout=40)
        progress(f"calling DID {DEMO_DID} from {DEMO_CALLER} with SIPp")
        sipp.start()
        try:
            result = sipp.wait()
        finally:
            sipp.stop()
        event = events.wait_for(lambda m: m.get("UserEvent") == "PbxctlCall", timeout=10,
                                what="PbxctlCall UserEvent from the dialplan")
    with Store(config=StoreConfig(conninfo=conninfo)) as store:
        def logged() -> list[dict[str, object]]:
            return [r for r in store.agi_calls(limit=10) if r["dnid"] == DEMO_DID]

        # The server writes its call log off the call path: give it a moment.
        with contextlib.suppress(WaitTimeout):
            wait_until(lambda: bool(logged()), timeout=10, what="the call log row")
        rows = logged()
    return {
        "did": DEMO_DID,
        "caller": DEMO_CALLER,
        "sipp_successful": result.successful,
        "sipp_failed": result.failed,
        "rtp_pcap": "g711a.pcap",
        "branch": event.get("Branch", ""),
        "prompt": event.get("Prompt", ""),
        "playback": event.get("Playback", ""),
        "agi_rows_in_db": len(rows),
    }


def lab_down(root: Path, *, progress: Progress, keep_files: bool = False) -> list[int]:
    """Stop everything the lab recorded, by PID; returns the PIDs that were stopped."""
    state = LabState.load(root)
    if state is None:
        raise LabStateError(f"no lab in {root}", hint="nothing to stop")
    stopped: list[int] = []
    if state.netns:
        from pbxctl.lab.netlab import netlab_down
        stopped += netlab_down(state.netns, progress=progress)
    for ast in state.asterisk:
        pid = ast.get("pid")
        if pid and pid_alive(pid):
            stop_by_pid(ast["conf"], pid, binary=ast.get("binary"))
            stopped.append(pid)
            progress(f"stopped Asterisk {ast['name']} (pid {pid})")
    agi_pid = state.agi.get("pid")
    if agi_pid and pid_alive(agi_pid):
        stop_pid(agi_pid, grace=10.0)
        stopped.append(agi_pid)
        progress(f"stopped FastAGI server (pid {agi_pid})")
    pg_pid = state.pg.get("pid")
    if pg_pid and pid_alive(pg_pid):
        cluster = PostgresCluster(root=Path(state.pg["datadir"]).parent)
        cluster.pid = pg_pid
        cluster.stop()
        stopped.append(pg_pid)
        progress(f"stopped PostgreSQL (pid {pg_pid})")
    leftover = [p for p in state.pids() if pid_alive(p)]
    if leftover:
        raise LabStateError(f"processes still alive after lab down: {leftover}")
    if not keep_files:
        shutil.rmtree(root, ignore_errors=True)
    return stopped


def lab_status(root: Path) -> dict[str, Any]:
    state = LabState.load(root)
    if state is None:
        return {"up": False, "root": str(root)}
    data: dict[str, Any] = redacted(asdict(state))
    data["up"] = True
    data["alive"] = {str(p): pid_alive(p) for p in state.pids()}
    return data

