"""Faults on the FastAGI path, each with real parts: the call is never dropped.

- the FastAGI server process killed mid-session (SIGKILL while waiting for the caller's digits)
- the FastAGI server unreachable (SYNs dropped: a listener whose accept queue is full)
- a handler that hangs (over its time budget)
- PostgreSQL stopped while callers use self-service
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr_scripts.call import Call
from ivr_scripts.fastagi import AgiServerConfig, FastAgiServer
from ivr_scripts.health import check
from ivr_scripts.phrases import init_system_prompts
from ivr_scripts.registry import HandlerContext, Registry
from pbxctl.core.procs import stop_pid, wait_until
from pbxctl.data.selfservice import seed_sample_data
from pbxctl.data.store import Store, StoreConfig
from pbxctl.lab.sandbox.asterisk import AsteriskInstance
from pbxctl.lab.sandbox.postgres import PostgresCluster
from pbxctl.lab.sandbox.sipp import SippProcess
from pbxctl.lab.sandbox.sipp_scenarios import dtmf_scenario, write_scenario
from pbxctl.ops.publish import publish
from pbxctl.pbx.ami import AmiClient, Message, Subscription
from pbxctl.pbx.asterisk_show import contacts
from pbxctl.services.relay import Relay, settings_for_site
from pbxctl.services.tts import TtsCache
from provisioning.inventory import load_inventory
from provisioning.model import Inventory
from provisioning.sample import seed_input
from provisioning.secrets import Secrets, ensure_secrets, secrets_path
from tests.conftest import SiteFactory, management_ami

pytestmark = [pytest.mark.asterisk, pytest.mark.sipp, pytest.mark.pg]

ACCOUNT = "3301010001"


def _contact_ok(ast: AsteriskInstance, aor: str) -> bool:
    return contacts(ast.cli("pjsip show contacts")).get(aor) == "Avail"


class Lab:
    def __init__(self, inv: Inventory, secrets: Secrets, province: AsteriskInstance,
                 gw: AsteriskInstance, workdir: Path) -> None:
        self.inv, self.secrets, self.province, self.gw, self.workdir = (
            inv, secrets, province, gw, workdir)
        self.menu_at = 0  # ms after the call starts when the menu is listening

    def ami(self, ast: AsteriskInstance) -> AmiClient:
        return management_ami(ast, str(self.inv.province.cti.a))

    def caller(self, name: str, steps: list[tuple[int, str]], hold_ms: int, *,
               calls: int = 1, rate: float = 1.0) -> SippProcess:
        hz = self.inv.prefecture("HZ")
        scenario = write_scenario(self.workdir, name, dtmf_scenario(
            steps, pcap_dir=self.workdir / f"{name}-pcaps", hold_ms=hold_ms))
        return SippProcess(scenario=scenario, workdir=self.workdir / name,
                           local_ip=str(hz.pstn_gateway.a), remote=(str(hz.gateway.a), 5060),
                           service=hz.dids[0], timeout=90, keys={"caller": "057188880000"},
                           calls=calls, rate=rate, concurrent=calls if calls > 1 else None)


@pytest.fixture
def lab(small_inventory_path: Path, site_factory: SiteFactory, short_tmp: Path) -> Lab:
    inv = load_inventory(small_inventory_path)
    secrets = ensure_secrets(inv, secrets_path(small_inventory_path), create=False)
    province = site_factory(inv, secrets, "zj-pbx")
    gw = site_factory(inv, secrets, "hz-gw", verbose_log=True)
    wait_until(lambda: _contact_ok(gw, "province-a"), timeout=15, what="province-a qualified")
    return Lab(inv, secrets, province, gw, short_tmp / "sipp")


def _queue_join(events: Subscription, timeout: float = 40) -> Message:
    """The caller reached HZ's province ACD; with no HZ agent logged in here it overflows to
    the supervisors at once (its reason is in the PbxctlOverflow event)."""
    overflow = events.wait_for(lambda m: m.get("UserEvent") == "PbxctlOverflow",
                               timeout=timeout, what="the province ACD entry for HZ")
    assert (overflow["Prefecture"], overflow["Reason"]) == ("HZ", "no-agent-ready")
    return events.wait_for(lambda m: m.get("Event") == "QueueCallerJoin", timeout=timeout,
                           what="QueueCallerJoin on the province")


def test_hung_handler_is_cut_by_its_budget_and_the_call_goes_on(lab: Lab) -> None:
    def welcome(call: Call, ctx: HandlerContext) -> None:
        entered.set()
        threading_event.wait(60)  # hangs far past its budget

    import threading

    threading_event, entered = threading.Event(), threading.Event()
    ctx = HandlerContext()
    server = FastAgiServer(registry=Registry([(welcome, 1.0)]), context=ctx,
                           config=AgiServerConfig(host=str(lab.inv.province.cti.a),
                                                  port=lab.inv.province.cti_port))
    server.start()
    ami = lab.ami(lab.province)
    try:
        with ami.subscribe() as events:
            caller = lab.caller("hung", [(6000, "0")], hold_ms=6000)
            caller.start()
            joined = _queue_join(events)
            result = caller.wait()
    finally:
        threading_event.set()
        ami.close()
        server.shutdown(grace=5)
    assert entered.is_set() and server.stats["timeouts"] >= 1
    assert joined["Queue"] == "acd-supervisors" and result.successful == 1, result
    assert "__PBXCTL_WELCOME=local" in (lab.gw.root / "log" / "full").read_text()


@pytest.fixture
def syn_dropping_listeners(lab: Lab) -> Iterator[None]:
    """Listeners on both CTI addresses whose accept queues are full: the kernel drops new SYNs,
    as for a host that is gone, so Asterisk's connect runs into its own 2 s limit."""
    socks: list[socket.socket] = []
    for addr in (lab.inv.province.cti.a, lab.inv.province.cti.b):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((str(addr), lab.inv.province.cti_port))
        listener.listen(0)
        socks.append(listener)
        for _ in range(3):  # fill the queue; a blocked attempt gives up after 0.3 s
            filler = socket.socket()
            filler.settimeout(0.3)
            try:
                filler.connect((str(addr), lab.inv.province.cti_port))
            except OSError:
                filler.close()
                break
            socks.append(filler)
    yield
    for s in socks:
        s.close()


def test_unreachable_server_costs_a_bounded_delay_and_the_call_proceeds(
        lab: Lab, syn_dropping_listeners: None) -> None:
    ami = lab.ami(lab.province)
    try:
        with ami.subscribe() as events:
            caller = lab.caller("unreachable", [(9000, "0")], hold_ms=6000)
            caller.start()
            joined = _queue_join(events)
            result = caller.wait()
    finally:
        ami.close()
    assert joined["Queue"] == "acd-supervisors" and result.successful == 1, result
    log = (lab.gw.root / "log" / "full").read_text()
    # Asterisk's own record of the bound: one 2 s connect limit per CTI address, then local;
    # the route stage does not ask a CTI this call already found unreachable.
    assert log.count("timed out after MAX_AGI_CONNECT (2000) milliseconds") == 2
    assert "__PBXCTL_WELCOME=local" in log


@pytest.fixture
def private_pg() -> Iterator[PostgresCluster]:
    root = Path(tempfile.mkdtemp(prefix="pbxpgf-", dir="/tmp"))
    cluster = PostgresCluster(root=root)
    cluster.start()
    yield cluster
    cluster.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def agi_process(lab: Lab, private_pg: PostgresCluster, tts_cache_dir: Path, short_tmp: Path
                ) -> Iterator[subprocess.Popen[bytes]]:
    """`pbxctl agi serve` as its own process at the inventory's CTI address, with a store
    holding sample data and prompts published on the gateway."""
    assert private_pg.endpoint is not None
    dsn = private_pg.endpoint.conninfo()
    with Store(config=StoreConfig(conninfo=dsn)) as store:
        store.migrate()
        seed_sample_data(store, seed_input(lab.inv))
        init_system_prompts(store)
        publish(store, lab.inv, short_tmp, cache=TtsCache(root=tts_cache_dir),
                sites=[lab.inv.site("hz-gw")])
    lab.menu_at = 1500  # during the welcome, which the caller may interrupt
    host, port = str(lab.inv.province.cti.a), lab.inv.province.cti_port
    with open(short_tmp / "agi.log", "wb") as errlog:
        proc = subprocess.Popen([sys.executable, "-m", "pbxctl", "agi", "serve", "--host", host,
                                 "--port", str(port), "--dsn", dsn],
                                stdout=subprocess.DEVNULL, stderr=errlog, start_new_session=True)

    def healthy() -> bool:
        try:
            check(host, port, timeout=1.0)
            return True
        except Exception:  # noqa: BLE001 -- not up yet
            return False

    try:
        wait_until(healthy, timeout=20, what="pbxctl agi serve to answer ping")
        yield proc
    finally:
        if proc.poll() is None:
            stop_pid(proc.pid)
        proc.wait(timeout=5)


def _bill_call(lab: Lab, name: str) -> SippProcess:
    return lab.caller(name, [(lab.menu_at, "1"), (2500, ACCOUNT + "#")], hold_ms=8000)


def test_server_killed_mid_session_continues_on_the_local_fallback(
        lab: Lab, agi_process: subprocess.Popen[bytes]) -> None:
    gw_ami, pr_ami = lab.ami(lab.gw), lab.ami(lab.province)
    try:
        with gw_ami.subscribe() as gw_events, pr_ami.subscribe() as pr_events:
            caller = lab.caller("killed", [(lab.menu_at, "1")], hold_ms=15000)
            caller.start()
            # The bill handler is waiting for the caller's account digits: kill it there.
            gw_events.wait_for(lambda m: m.get("Event") == "AGIExecStart"
                               and m.get("Command", "").startswith("GET DATA"),
                               timeout=30, what="bill handler waiting for digits")
            os.kill(agi_process.pid, signal.SIGKILL)
            service = gw_events.wait_for(lambda m: m.get("UserEvent") == "PbxctlService",
                                         timeout=20, what="PbxctlService")
            joined = _queue_join(pr_events)
            result = caller.wait()
    finally:
        gw_ami.close()
        pr_ami.close()
    assert service["Service"] == "bill" and service["Status"] == ""  # the session broke
    assert joined["Queue"] == "acd-supervisors"  # apology, then an agent
    assert result.successful == 1 and result.failed == 0, result


def test_database_stopped_under_20_bill_calls_each_gets_the_apology_and_an_agent(
        lab: Lab, agi_process: subprocess.Popen[bytes], private_pg: PostgresCluster) -> None:
    """PostgreSQL is killed while the first of 20 bill callers types the account: every one
    of the 20 hears the apology and reaches the supervisors' queue, none is dropped."""
    calls = 20
    gw_ami, pr_ami = lab.ami(lab.gw), lab.ami(lab.province)
    try:
        with gw_ami.subscribe() as gw_events, pr_ami.subscribe() as pr_events:
            caller = lab.caller("dbdown", [(lab.menu_at, "1"), (2500, ACCOUNT + "#")],
                                hold_ms=8000, calls=calls, rate=2.0)
            caller.start()
            gw_events.wait_for(lambda m: m.get("Event") == "AGIExecStart"
                               and m.get("Command", "").startswith("GET DATA"),
                               timeout=30, what="bill handler waiting for digits")
            private_pg.kill()  # before any caller's account has been looked up
            services = [gw_events.wait_for(lambda m: m.get("UserEvent") == "PbxctlService",
                                           timeout=40, what=f"PbxctlService {i + 1}/{calls}")
                        for i in range(calls)]
            joined = [_queue_join(pr_events) for _ in range(calls)]
            result = caller.wait()
    finally:
        gw_ami.close()
        pr_ami.close()
    assert len({s["Uniqueid"] for s in services}) == calls
    assert [s["Result"] for s in services] == ["store-unavailable"] * calls
    assert all(s["Status"] == "OK" and s["Next"] == "agent" for s in services)
    assert len({j["Uniqueid"] for j in joined}) == calls
    assert (result.successful, result.failed) == (calls, 0), result
    played = (lab.gw.root / "log" / "full").read_text()
    assert played.count("/apology/current") == calls


@pytest.fixture
def relay_on_gateway(lab: Lab) -> Iterator[Relay]:
    """The gateway's call-time relay, as `pbxctl relay serve --site hz-gw` runs it (the
    gateway's dialplan asks 127.0.0.1:4574 first)."""
    import asyncio
    import threading

    relay = Relay(settings_for_site(lab.inv, "hz-gw"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(relay.start(), loop).result(10)
    yield relay
    asyncio.run_coroutine_threadsafe(relay.close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)


def test_cti_frozen_while_the_caller_types_gets_them_the_apology_and_an_agent(
        lab: Lab, agi_process: subprocess.Popen[bytes], relay_on_gateway: Relay) -> None:
    """The CTI process freezes (SIGSTOP: its sockets stay open, nothing answers) while a
    bill caller types the account. Without the relay the caller would sit in silence until
    the CTI woke up; with it, the session ends at the command deadline, the caller hears the
    apology and reaches an agent while the CTI is still frozen."""
    gw_ami, pr_ami = lab.ami(lab.gw), lab.ami(lab.province)
    frozen = False
    try:
        with gw_ami.subscribe() as gw_events, pr_ami.subscribe() as pr_events:
            caller = _bill_call(lab, "frozen")
            caller.start()
            gw_events.wait_for(lambda m: m.get("Event") == "AGIExecStart"
                               and m.get("Command", "").startswith("GET DATA"),
                               timeout=30, what="bill handler waiting for digits")
            os.kill(agi_process.pid, signal.SIGSTOP)
            frozen = True
            service = gw_events.wait_for(lambda m: m.get("UserEvent") == "PbxctlService",
                                         timeout=20, what="PbxctlService")
            joined = _queue_join(pr_events)
            assert agi_process.poll() is None  # still frozen, not dead: the relay did it
            result = caller.wait()
    finally:
        if frozen:
            os.kill(agi_process.pid, signal.SIGCONT)
        gw_ami.close()
        pr_ami.close()
    assert (service["Service"], service["By"], service["Status"]) == ("bill", "province", "")
    assert joined["Queue"] == "acd-supervisors"  # apology, then an agent
    assert (result.successful, result.failed) == (1, 0), result
    assert relay_on_gateway.stats["deadline_command"] == 1
    assert "/apology/current" in (lab.gw.root / "log" / "full").read_text()
