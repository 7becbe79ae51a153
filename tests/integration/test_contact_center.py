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
from pathlib import Path

import pytest

from pbxctl.core.net import free_port
from pbxctl.core.procs import wait_until
from pbxctl.data.callrecords import CALL_LOG_NAME
from pbxctl.data.calls import call_count, list_recordings, reconcile, verify
from pbxctl.data.store import Store, StoreConfig
from pbxctl.lab.sandbox.asterisk import AsteriskInstance
from pbxctl.lab.sandbox.postgres import PostgresCluster
from pbxctl.services.collector import Collector, CollectorConfig
from pbxctl.services.tts import check_audio
from tests.conftest import management_ami
from tests.integration.conftest import Center, agent_hangs_up, connected, place_call

pytestmark = [pytest.mark.asterisk, pytest.mark.sipp, pytest.mark.pg]


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
                caller = place_call(inv, pref, short_tmp / "callers")
                caller.start()
                connects.append(connected(events))
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
            caller = place_call(inv, "HZ", short_tmp / "callers")
            caller.start()
            overflow = events.wait_for(lambda m: m.get("UserEvent") == "PbxctlOverflow",
                                       timeout=30, what="PbxctlOverflow")
            connect = connected(events)
            assert caller.wait().successful == 1
    finally:
        ami.close()
    assert (overflow["Prefecture"], overflow["Reason"]) == ("HZ", "no-agent-ready")
    assert (connect["Queue"], connect["Interface"]) == ("acd-supervisors", "PJSIP/zj-sup01")
    assert sup_phone.wait().successful == 1


def test_database_outage_during_20_calls_loses_no_call_record_or_recording(
        center: Center, short_tmp: Path) -> None:
    """PostgreSQL is killed while 20 calls run and started again: every one of the 20 calls
    reaches an agent (20 AgentConnect events), and afterwards there are exactly 20 call records
    at the gateway and at the province, 20 answered, 20 recording rows and 20 files."""
    inv, province, phones = center.inv, center.province, center.phones
    calls = 20
    agent = agent_hangs_up(short_tmp / "scenarios", talk_ms=2500)
    for seat in ("hz-a001", "hz-a002", "zj-sup01"):
        phones.login(seat, calls=calls, scenario=agent)
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
        with ami.subscribe(keep=lambda m: m.get("Event") == "AgentConnect") as events:
            # Callers stay until the agent hangs up (hold_ms=None: wait for the BYE), so a
            # call that never reached a seat ends as a SIPp failure, not a success.
            caller = place_call(inv, "HZ", short_tmp / "callers", hold_ms=None, calls=calls,
                                rate=1.0, concurrent=3)
            caller.start()
            agents = [connected(events) for _ in range(2)]
            cluster.kill()  # the database goes away in the middle of the run
            agents += [connected(events) for _ in range(3)]  # calls go on meanwhile
            cluster.start()
            result = caller.wait()
            agents += [connected(events) for _ in range(calls - len(agents))]
            assert events.drain() == [] and events.dropped == 0  # no 21st connection
        assert (result.successful, result.failed) == (calls, 0)
        assert len({a["Uniqueid"] for a in agents}) == calls  # 20 distinct callers connected
        for ast in sites:  # one record per call at the gateway and at the province
            wait_until(functools.partial(_has_calls, store, ast.name, calls), timeout=60,
                       what=f"all call records of {ast.name} collected after the outage")
        answered = store.execute("SELECT uniqueid FROM call_records WHERE site = 'zj-pbx' "
                                 "AND answered_at IS NOT NULL ORDER BY uniqueid")
        files = sorted(p.name for p in (province.spool / "monitor").glob("*.wav"))
        rows = list_recordings(store, site="zj-pbx")
        assert len(answered) == calls
        assert len(rows) == calls and len(files) == calls
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
            caller = place_call(inv, "HZ", short_tmp / "callers", hold_ms=3000)
            caller.start()
            connect = connected(events)
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


def test_all_agents_busy_sends_the_next_caller_to_a_supervisor_in_time(
        center: Center, short_tmp: Path) -> None:
    inv, province, phones = center.inv, center.province, center.phones
    phones.login("hz-a001")
    phones.login("zj-sup01")
    ami = management_ami(province, str(inv.province.cti.a))
    try:
        with ami.subscribe() as events:
            first = place_call(inv, "HZ", short_tmp / "first", hold_ms=15000)
            first.start()
            busy = connected(events)  # Hangzhou's only logged-in agent is now on a call
            second = place_call(inv, "HZ", short_tmp / "second", hold_ms=3000)
            second.start()
            overflow = events.wait_for(lambda m: m.get("UserEvent") == "PbxctlOverflow",
                                       timeout=30, what="PbxctlOverflow")
            sup = connected(events)
            assert second.wait().successful == 1 and first.wait().successful == 1
    finally:
        ami.close()
    assert (busy["Queue"], busy["Interface"]) == ("acd-HZ", "PJSIP/hz-a001")
    assert (overflow["Prefecture"], overflow["Reason"]) == ("HZ", "no-agent-ready")
    assert (sup["Queue"], sup["Interface"]) == ("acd-supervisors", "PJSIP/zj-sup01")
    # Asterisk's own count of the seconds the caller waited: with no agent ready the call
    # goes to the supervisors at once (not after overflow_wait = 60 s; the caller, holding
    # 3 s after pressing 0, would have hung up long before).
    assert int(sup["HoldTime"]) <= 1
