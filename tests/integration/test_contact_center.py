"""The contact-center path with real SIP phones: SIPp agents register (digest auth) at the
province and answer; callers dial prefecture DIDs through their gateway; the province ACD
routes to that prefecture's agents, records the answered call (MixMonitor), and overflows to
the provincial supervisors when no agent of the prefecture is ready."""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pbxctl.ami import Message, Subscription
from pbxctl.asterisk_show import contacts
from pbxctl.callrecords import CALL_LOG_NAME
from pbxctl.calls_db import call_count, list_recordings, reconcile, verify
from pbxctl.collector import Collector, CollectorConfig
from pbxctl.netutil import free_port
from pbxctl.procs import wait_until
from pbxctl.sandbox.asterisk import AsteriskInstance
from pbxctl.sandbox.postgres import PostgresCluster
from pbxctl.sandbox.sipp import SippProcess, pcap, scenario_path
from pbxctl.sandbox.sipp_scenarios import dtmf_scenario, write_scenario
from pbxctl.store import Store, StoreConfig
from pbxctl.tts import check_audio
from provisioning.inventory import load_inventory
from provisioning.model import Inventory
from provisioning.secrets import Secrets, ensure_secrets, secrets_path

from ..conftest import SiteFactory, management_ami

pytestmark = [pytest.mark.asterisk, pytest.mark.sipp]


class Phones:
    """SIPp phones for seats: register with the seat's secret, then answer calls."""

    def __init__(self, inv: Inventory, secrets: Secrets, province: AsteriskInstance,
                 workdir: Path) -> None:
        self.inv, self.secrets, self.province, self.workdir = inv, secrets, province, workdir
        self.running: list[SippProcess] = []
        self._next = 101

    def login(self, seat_id: str, *, calls: int = 1) -> SippProcess:
        ip = f"127.201.1.{self._next}"  # phones sit on the province's switch-A network
        self._next += 1
        pbx = (str(self.inv.province.pbx.a), 5060)
        reg = SippProcess(scenario=scenario_path("register.xml"), workdir=self.workdir / seat_id,
                          local_ip=ip, local_port=5060, remote=pbx,
                          keys={"user": seat_id, "expires": "600"}, timeout=15,
                          extra_args=("-au", seat_id, "-ap", self.secrets.sip[seat_id])).run()
        assert reg.successful == 1, f"{seat_id} did not register: {reg.errors[-500:]}"
        uas = SippProcess(scenario=scenario_path("uas_agent.xml"),
                          workdir=self.workdir / seat_id, local_ip=ip, local_port=5060,
                          calls=calls, timeout=120, extra_args=("-aa",),
                          keys={"audio": str(pcap("g711a.pcap"))})
        uas.start()
        self.running.append(uas)
        wait_until(lambda: f"PJSIP/{seat_id}" in self._ready(), timeout=10,
                   what=f"{seat_id} ready in its queue")
        return uas

    def _ready(self) -> str:
        return "\n".join(line for line in self.province.cli("queue show").splitlines()
                         if "(Not in use)" in line)

    def stop(self) -> None:
        for p in self.running:
            p.stop()


@dataclass
class Center:
    inv: Inventory
    province: AsteriskInstance
    gateways: dict[str, AsteriskInstance]
    phones: Phones


@pytest.fixture
def center(small_inventory_path: Path, site_factory: SiteFactory, short_tmp: Path
           ) -> Iterator[Center]:
    inv = load_inventory(small_inventory_path)
    secrets = ensure_secrets(inv, secrets_path(small_inventory_path), create=False)
    province = site_factory(inv, secrets, "zj-pbx", verbose_log=True)
    def sees_province(ast: AsteriskInstance) -> bool:
        return contacts(ast.cli("pjsip show contacts")).get("province-a") == "Avail"

    gateways = {}
    for gw in ("hz-gw", "nb-gw"):
        gateways[gw] = ast = site_factory(inv, secrets, gw)
        wait_until(functools.partial(sees_province, ast), timeout=15,
                   what=f"{gw} to qualify the province")
    phones = Phones(inv, secrets, province, short_tmp / "phones")
    yield Center(inv, province, gateways, phones)
    phones.stop()


def _call(inv: Inventory, pref: str, workdir: Path, hold_ms: int = 6000, *, calls: int = 1,
          rate: float = 1.0, concurrent: int | None = None) -> SippProcess:
    p = inv.prefecture(pref)
    scenario = write_scenario(workdir, f"call-{pref}", dtmf_scenario(
        [(3800, "0")], pcap_dir=workdir / f"pcaps-{pref}", hold_ms=hold_ms,
        speech_after=pcap("g711a.pcap")))  # the caller speaks once connected
    return SippProcess(scenario=scenario, workdir=workdir / pref,
                       local_ip=str(p.pstn_gateway.a), remote=(str(p.gateway.a), 5060),
                       service=p.dids[0], timeout=60 + 10 * calls, calls=calls, rate=rate,
                       concurrent=concurrent, keys={"caller": f"{p.area_codes[0]}8888"})


def _connected(events: Subscription) -> Message:
    return events.wait_for(lambda m: m.get("Event") == "AgentConnect", timeout=30,
                           what="AgentConnect on the province")


def collect_all(ast: AsteriskInstance, store: Store, *, calls: int,
                timeout: float = 30.0) -> int:
    """Run the collector over one site until ``calls`` records are in the database."""
    collector = _collector(ast, store)
    wait_until(lambda: (collector.run_once().waiting == 0
                        and call_count(store, site=ast.name) >= calls),
               timeout=timeout, what=f"{calls} call records of {ast.name} collected")
    return call_count(store, site=ast.name)


def test_two_prefectures_reach_their_own_queue_and_agent_and_are_recorded(
        center: Center, short_tmp: Path, fresh_db: Store) -> None:
    inv, province, phones = center.inv, center.province, center.phones
    hz_phone = phones.login("hz-a001")
    nb_phone = phones.login("nb-a001")
    ami = management_ami(province, str(inv.province.cti.a))
    try:
        with ami.subscribe() as events:
            connects = []
            for pref in ("HZ", "NB"):
                caller = _call(inv, pref, short_tmp / "callers")
                caller.start()
                connects.append(_connected(events))
                assert caller.wait().successful == 1
    finally:
        ami.close()
    assert [(c["Queue"], c["Interface"]) for c in connects] == [
        ("acd-HZ", "PJSIP/hz-a001"), ("acd-NB", "PJSIP/nb-a001")]
    assert hz_phone.wait().successful == 1 and nb_phone.wait().successful == 1
    recordings = sorted((province.spool / "monitor").glob("*.wav"))
    assert len(recordings) == 2
    for rec in recordings:  # real audio from the moment the agent answered, not a bare header
        assert check_audio(rec) > 1.0, rec
    # The call records and the recording index reach PostgreSQL and agree with the files.
    assert collect_all(province, fresh_db, calls=2) == 2
    rows = list_recordings(fresh_db, site="zj-pbx")
    assert sorted((r.prefecture, r.queue, r.agent, r.did, r.status) for r in rows) == [
        ("HZ", "acd-HZ", "hz-a001", "057195598", "ok"),
        ("NB", "acd-NB", "nb-a001", "057495598", "ok")]
    for r in rows:
        assert abs(float(r.audio_s) - float(r.talk_s)) <= 1.0, r
        assert 5.0 <= float(r.talk_s) <= 9.0, r  # the caller holds ~6 s after being connected
        assert r.origin.startswith(("hz-gw-", "nb-gw-"))  # joined to the gateway's call
        assert verify(r).ok
    assert reconcile(fresh_db, site="zj-pbx", recordings_dir=province.spool / "monitor").clean


def test_no_ready_agent_overflows_to_the_supervisors(
        center: Center, short_tmp: Path) -> None:
    inv, province, phones = center.inv, center.province, center.phones
    sup_phone = phones.login("zj-sup01")  # no HZ agent is logged in
    ami = management_ami(province, str(inv.province.cti.a))
    try:
        with ami.subscribe() as events:
            caller = _call(inv, "HZ", short_tmp / "callers")
            caller.start()
            overflow = events.wait_for(lambda m: m.get("UserEvent") == "PbxctlOverflow",
                                       timeout=30, what="PbxctlOverflow")
            connect = _connected(events)
            assert caller.wait().successful == 1
    finally:
        ami.close()
    assert (overflow["Prefecture"], overflow["Reason"]) == ("HZ", "no-agent-ready")
    assert (connect["Queue"], connect["Interface"]) == ("acd-supervisors", "PJSIP/zj-sup01")
    assert sup_phone.wait().successful == 1


def test_database_outage_during_calls_loses_no_call_record_or_recording(
        center: Center, short_tmp: Path) -> None:
    """PostgreSQL is stopped while calls run and started again: every call still connects,
    and afterwards call records = calls and index rows = recording files, exactly."""
    inv, province, phones = center.inv, center.province, center.phones
    calls = 6
    for seat in ("hz-a001", "hz-a002", "zj-sup01"):
        phones.login(seat, calls=calls)
    cluster = PostgresCluster(root=short_tmp / "pg", port=free_port("127.0.0.1"))
    endpoint = cluster.start()
    store = Store(config=StoreConfig(conninfo=endpoint.conninfo(), retry_after=0.5))
    store.open()
    store.migrate()
    sites = [province, center.gateways["hz-gw"]]
    stop = threading.Event()
    threads = [threading.Thread(target=_collector(ast, store).follow,
                                kwargs={"stop": stop, "interval": 0.5}, daemon=True)
               for ast in sites]
    ami = management_ami(province, str(inv.province.cti.a))
    try:
        for t in threads:
            t.start()
        with ami.subscribe() as events:
            caller = _call(inv, "HZ", short_tmp / "callers", hold_ms=3000, calls=calls,
                           rate=0.3, concurrent=3)
            caller.start()
            for _ in range(2):
                _connected(events)
            cluster.kill()  # the database goes away in the middle of the run
            for _ in range(2):
                _connected(events)  # calls keep connecting and being recorded meanwhile
            cluster.start()
            result = caller.wait()
        assert (result.successful, result.failed) == (calls, 0)
        for ast in sites:  # one record per call at the gateway and at the province
            wait_until(functools.partial(_has_calls, store, ast.name, calls), timeout=60,
                       what=f"all call records of {ast.name} collected after the outage")
        answered = store.execute("SELECT uniqueid FROM call_records WHERE site = 'zj-pbx' "
                                 "AND answered_at IS NOT NULL ORDER BY uniqueid")
        files = sorted(p.name for p in (province.spool / "monitor").glob("*.wav"))
        rows = list_recordings(store, site="zj-pbx")
        assert len(answered) >= 4  # at least those seen connecting around the outage
        assert sorted(r.uniqueid for r in rows) == sorted(str(a[0]) for a in answered)
        assert sorted(Path(r.path).name for r in rows) == files
        assert all(r.status == "ok" and verify(r).ok for r in rows)
        assert reconcile(store, site="zj-pbx", recordings_dir=province.spool / "monitor").clean
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=20)
        ami.close()
        store.close()
        cluster.stop()


def _has_calls(store: Store, site: str, calls: int) -> bool:
    return call_count(store, site=site) == calls


def _collector(ast: AsteriskInstance, store: Store) -> Collector:
    return Collector(store=store, config=CollectorConfig(
        call_log=ast.root / "log" / CALL_LOG_NAME, recordings_dir=ast.spool / "monitor",
        state_dir=ast.root / "collector"))


@pytest.fixture
def full_recording_store(center: Center) -> Iterator[Path]:
    """The province's recording directory on a 64 KiB tmpfs that is already full."""
    if os.geteuid() != 0:
        pytest.fail("mounting a tiny filesystem needs root (CI runs as root)")
    monitor = center.province.spool / "monitor"
    monitor.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "pbxctl-full",
                    str(monitor)], check=True, capture_output=True)
    try:
        with contextlib.suppress(OSError), (monitor / "filler.bin").open("wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
        yield monitor
    finally:
        subprocess.run(["umount", "-l", str(monitor)], check=False, capture_output=True)


def test_full_recording_store_still_connects_and_marks_the_recording(
        center: Center, full_recording_store: Path, short_tmp: Path, fresh_db: Store) -> None:
    inv, province, phones = center.inv, center.province, center.phones
    phones.login("hz-a001")
    ami = management_ami(province, str(inv.province.cti.a))
    try:
        with ami.subscribe() as events:
            caller = _call(inv, "HZ", short_tmp / "callers", hold_ms=3000)
            caller.start()
            connect = _connected(events)
            assert caller.wait().successful == 1  # the call itself is not harmed
    finally:
        ami.close()
    assert connect["Interface"] == "PJSIP/hz-a001"
    collector = _collector(province, fresh_db)
    problems: list[str] = []

    def collected() -> bool:
        problems.extend(collector.run_once().problems)
        return call_count(fresh_db, site="zj-pbx") == 1

    wait_until(collected, timeout=30, what="the call record collected")
    [row] = list_recordings(fresh_db, site="zj-pbx")
    assert row.status in ("missing", "empty"), row
    assert problems and row.uniqueid in problems[0]  # reported, not only stored
    assert [r.uniqueid for r in list_recordings(fresh_db, status="failed")] == [row.uniqueid]
    assert not verify(row).ok
