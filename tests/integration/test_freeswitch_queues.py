"""Real SIPp calls through a real FreeSWITCH gateway into a real FreeSWITCH province (both
rendered from the small inventory): the caller hears the local welcome (no CTI runs here),
the gateway bridges to the province over path A, the province's mod_callcenter queue of the
prefecture rings the agent's registered phone (a SIPp UAS that registered with its seat's
digest secret), the agent answers and talks, and the call is recorded on the province.

What happened is read from FreeSWITCH's own events over each site's inbound event socket
(mod_callcenter's ``callcenter::info``), and the recording from the province's disk."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import shutil
import tempfile
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select

from pbxctl.cli import main
from pbxctl.console.app import ConsoleDeps, ConsoleSettings
from pbxctl.console.calls_esl import EslCallFeed
from pbxctl.console.live import OrderFeed
from pbxctl.console.passwords import hash_password
from pbxctl.core.errors import PbxctlError
from pbxctl.core.procs import wait_until
from pbxctl.data.callrecords import FREESWITCH_CALL_LOG
from pbxctl.data.console_auth import set_password
from pbxctl.lab.sandbox.freeswitch import FreeSwitchInstance
from pbxctl.lab.sandbox.postgres import PostgresCluster
from pbxctl.lab.sandbox.sipp import SippProcess, pcap, scenario_path
from pbxctl.lab.site import freeswitch_for
from pbxctl.pbx import freeswitch_show as show
from pbxctl.pbx.esl_inbound import InboundEsl, opened
from provisioning.inventory import load_inventory
from provisioning.model import Inventory
from provisioning.render_freeswitch import ESL_INBOUND_PORT
from provisioning.secrets import Secrets, ensure_secrets
from tests.browser import serve, sign_in, wait_js
from tests.conftest import new_database
from tests.integration.conftest import agent_hangs_up

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = [pytest.mark.freeswitch, pytest.mark.sipp]

SMALL = Path(__file__).parents[1] / "data" / "small" / "province.yaml"


@dataclass
class Sites:
    inv: Inventory
    secrets: Secrets
    root: Path
    province: FreeSwitchInstance
    gateway: FreeSwitchInstance


def _site(inv: Inventory, secrets: Secrets, name: str, root: Path) -> FreeSwitchInstance:
    return freeswitch_for(inv, inv.site(name), secrets, root / name,
                          prompt_dir=str(root / "sounds"))


@pytest.fixture(scope="module")
def sites() -> Iterator[Sites]:
    root = Path(tempfile.mkdtemp(prefix="pbxfsq-", dir="/tmp"))
    shutil.copy(SMALL, root / "province.yaml")
    inv = load_inventory(root / "province.yaml")
    secrets = ensure_secrets(inv, root / "province.secrets.yaml")
    province = _site(inv, secrets, "zj-pbx", root)
    gateway = _site(inv, secrets, "hz-gw", root)
    province.start(timeout=60)
    try:
        gateway.start(timeout=60)
        try:
            # The gateway pings its trunks every 5 s (FreeSWITCH's floor): path A up first.
            wait_until(lambda: gateway.gateway_up("province-a"), timeout=30, interval=0.5,
                       what="hz-gw to see the province on path A")
            yield Sites(inv, secrets, root, province, gateway)
        finally:
            gateway.stop()
    finally:
        province.stop()
        shutil.rmtree(root, ignore_errors=True)


def _register(sites: Sites, seat: str, address: str, workdir: Path) -> None:
    reg = SippProcess(scenario=scenario_path("register.xml"), workdir=workdir / "reg",
                      local_ip=address, local_port=5060,
                      remote=(str(sites.inv.province.pbx.a), 5060),
                      keys={"user": seat, "expires": "600"}, timeout=15,
                      extra_args=("-au", seat, "-ap", sites.secrets.sip[seat])).run()
    assert reg.successful == 1, f"{seat} did not register: {reg.errors[-500:]}"


def _seat_phone(tmp_path: Path, address: str, *, talk_ms: int) -> SippProcess:
    """A registered seat's phone: answers one call, talks, hangs up itself."""
    return SippProcess(scenario=agent_hangs_up(tmp_path / "uas", talk_ms=talk_ms),
                       workdir=tmp_path / "uas", local_ip=address, local_port=5060, calls=1,
                       timeout=120, extra_args=("-aa",), keys={"audio": str(pcap("g711a.pcap"))})


def _caller(sites: Sites, tmp_path: Path, number: str) -> SippProcess:
    """A PSTN caller on HZ's DID through the FreeSWITCH gateway, waiting for the BYE."""
    hz = sites.inv.prefecture("HZ")
    return SippProcess(scenario=scenario_path("uac_wait_bye.xml"), workdir=tmp_path / "caller",
                       local_ip=str(hz.pstn_gateway.a), remote=(str(hz.gateway.a), 5060),
                       service=hz.dids[0], timeout=90,
                       keys={"caller": number, "audio": str(pcap("g711a.pcap"))})


def test_a_caller_reaches_the_prefectures_agent_and_the_call_is_recorded(
        sites: Sites, tmp_path: Path) -> None:
    hz = sites.inv.prefecture("HZ")
    agent, phone = "hz-a001", "127.201.1.101"
    _register(sites, agent, phone, tmp_path / agent)
    with sites.province.esl() as esl:
        assert show.users(esl.api("list_users")) >= {agent}
        assert "sofia/" in esl.api(f"sofia_contact {agent}@pbxctl")  # registered
    uas = _seat_phone(tmp_path, phone, talk_ms=3000)
    uas.start()
    try:
        with sites.province.esl(timeout=10) as events:
            events.subscribe("CUSTOM callcenter::info")
            caller = _caller(sites, tmp_path, "057188880000")
            caller.start()
            try:
                joined = events.wait_event(
                    lambda e: e.get("CC-Action") == "member-queue-start", timeout=45,
                    what="the caller entering a queue on the province")
                bridged = events.wait_event(
                    lambda e: e.get("CC-Action") == "bridge-agent-start", timeout=45,
                    what="an agent bridged on the province")
                ended = events.wait_event(
                    lambda e: e.get("CC-Action") == "bridge-agent-end", timeout=45,
                    what="the agent's call ending")
                result = caller.wait()
            finally:
                caller.stop()
        assert uas.wait().successful == 1
    finally:
        uas.stop()
    assert result.successful == 1 and result.failed == 0, result
    assert joined["CC-Queue"] == hz.queue
    assert (bridged["CC-Queue"], bridged["CC-Agent"]) == (hz.queue, agent)
    assert ended["CC-Agent"] == agent
    # Recorded on the province from the moment the agent answered: a real WAV, some seconds.
    uid = bridged["CC-Member-Session-UUID"]
    rec = sites.province.root / "recordings" / f"pbxctl-{uid}.wav"
    wait_until(rec.is_file, timeout=15, what=f"the recording {rec.name}")
    with wave.open(str(rec)) as w:
        seconds = w.getnframes() / w.getframerate()
    assert seconds >= 2.0, seconds


def test_with_no_agent_ready_the_supervisors_take_the_call(sites: Sites, tmp_path: Path
                                                            ) -> None:
    """Every HZ agent on break (FreeSWITCH's pause) → the province's supervisors' queue at
    once, the reason on the caller's channel; a supervisor's phone answers."""
    hz = sites.inv.prefecture("HZ")
    sup, phone = "zj-sup01", "127.201.1.102"
    with sites.province.esl() as esl:
        for a in hz.agents:
            assert "+OK" in esl.api(f"callcenter_config agent set status {a.id} 'On Break'")
    try:
        _register(sites, sup, phone, tmp_path / sup)
        uas = _seat_phone(tmp_path, phone, talk_ms=2000)
        uas.start()
        try:
            with sites.province.esl(timeout=10) as events:
                events.subscribe("CUSTOM callcenter::info")
                caller = _caller(sites, tmp_path, "057188880001")
                caller.start()
                try:
                    joined = events.wait_event(
                        lambda e: e.get("CC-Action") == "member-queue-start", timeout=45,
                        what="the caller entering a queue on the province")
                    bridged = events.wait_event(
                        lambda e: e.get("CC-Action") == "bridge-agent-start", timeout=45,
                        what="a supervisor bridged on the province")
                    result = caller.wait()
                finally:
                    caller.stop()
            assert uas.wait().successful == 1
        finally:
            uas.stop()
    finally:
        with sites.province.esl() as esl:
            for a in hz.agents:
                esl.api(f"callcenter_config agent set status {a.id} Available")
    assert result.successful == 1 and result.failed == 0, result
    supervisors = sites.inv.province.supervisor_queue
    assert joined["CC-Queue"] == supervisors  # never entered acd-HZ: nobody was ready there
    assert joined["variable_pbxctl_overflow"] == "no-agent-ready"
    assert (bridged["CC-Queue"], bridged["CC-Agent"]) == (supervisors, sup)


def test_status_reads_a_freeswitch_site_with_its_secret_from_the_secrets_file(
        sites: Sites) -> None:
    """`pbxctl status show --freeswitch SITE --inventory INV`: the site's event socket as
    rendered, its password from the inventory's secrets file (never argv, never a default);
    from an address the site's ACL does not list, refused."""
    inv = str(sites.root / "province.yaml")
    pbx = str(sites.inv.province.pbx.a)

    def status(*extra: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(["status", "show", "--freeswitch", "zj-pbx", "--inventory", inv, *extra],
                     environ={}, stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    code, out, err = status("--source", pbx, "--json")
    assert code == 0, err
    got = json.loads(out)
    assert got["site"] == "zj-pbx" and isinstance(got["channels"], list)
    assert all(ch.get("uuid") for ch in got["channels"])  # rows of `show channels`
    code, _, err = status("--source", "127.0.0.1")  # not the site, not a CTI host
    assert code != 0 and "ESL" in err and len(err.strip().splitlines()) <= 3, err
    code, _, err = status("--source", pbx, "--json", "--freeswitch", "nope")
    assert code == 2 and "no such site" in err


@pytest.mark.pg
@pytest.mark.browser
def test_the_console_pops_the_call_freeswitch_bridged_and_pauses_the_agent(
        sites: Sites, pg_cluster: PostgresCluster, browser: WebDriver, tmp_path: Path) -> None:
    """The web console on a FreeSWITCH province (EslCallFeed: mod_callcenter's events over the
    province's event socket): hz-a001 signed in sees the call pop when FreeSWITCH bridges it
    to their phone; pausing from the page puts the agent On Break in mod_callcenter."""
    store = new_database(pg_cluster)  # its own: sessions and logins touch no other test
    password = "fs-console-pass-1"
    set_password(store, login="hz-a001", password_hash=hash_password(password), admin=False)
    pbx = str(sites.inv.province.pbx.a)

    connect = functools.partial(opened, host=pbx, port=ESL_INBOUND_PORT,
                                password=sites.secrets.ami["zj-pbx"], source=pbx)

    deps = ConsoleDeps(store=store, inventory=sites.inv,
                       feed=OrderFeed(store.config.conninfo),
                       settings=ConsoleSettings(cookie_secure=False),
                       calls=EslCallFeed(connect))
    phone = "127.201.1.103"
    try:
        with serve(deps) as url:
            sign_in(browser, url, "hz-a001", password)  # live: the event socket is read
            _register(sites, "hz-a001", phone, tmp_path / "reg")
            uas = _seat_phone(tmp_path, phone, talk_ms=4000)
            uas.start()
            try:
                caller = _caller(sites, tmp_path, "057188880077")
                caller.start()
                try:
                    wait_js(browser, "document.body.dataset.popped", timeout=45,
                            what="the screen pop of the call FreeSWITCH bridged")
                    assert "057188880077" in browser.find_element(By.ID, "pop").text
                    assert caller.wait().successful == 1
                finally:
                    caller.stop()
            finally:
                uas.stop()
            # Pause from the page: mod_callcenter's status of hz-a001 follows, and back.
            Select(browser.find_element(By.ID, "pause-reason")).select_by_value("meal")
            browser.find_element(By.ID, "set-paused").click()
            wait_js(browser, "document.getElementById('agent-state').dataset.state === "
                             "'paused'", what="the paused state")
            with sites.province.esl() as esl:
                assert esl.api("callcenter_config agent get status hz-a001").strip() == \
                    "On Break"
            browser.find_element(By.ID, "set-ready").click()
            wait_js(browser, "document.getElementById('agent-state').dataset.state === "
                             "'ready'", what="the ready state")
            with sites.province.esl() as esl:
                assert esl.api("callcenter_config agent get status hz-a001").strip() == \
                    "Available"
    finally:
        store.close()


@pytest.mark.pg
def test_each_switch_logs_one_record_per_call_collected_once_the_database_is_back(
        sites: Sites, pg_cluster: PostgresCluster, tmp_path: Path) -> None:
    """mod_cdr_csv writes pbxctl's call-log line on each switch (the gateway's call, the
    province's ACD call); `pbxctl calls collect --engine freeswitch` with PostgreSQL down
    moves nothing and loses nothing, then moves both records and the recording's index row;
    rotating the call log is FreeSWITCH's own (`cdr_csv rotate` over its event socket)."""
    store = new_database(pg_cluster)
    agent, phone, number = "hz-a001", "127.201.1.104", "057188880055"
    _register(sites, agent, phone, tmp_path / agent)
    uas = _seat_phone(tmp_path, phone, talk_ms=2500)
    uas.start()
    try:
        caller = _caller(sites, tmp_path, number)
        caller.start()
        try:
            result = caller.wait()
        finally:
            caller.stop()
        assert uas.wait().successful == 1
    finally:
        uas.stop()
    assert result.successful == 1, result
    logs = {name: getattr(sites, role).root / "log" / FREESWITCH_CALL_LOG
            for role, name in (("gateway", "hz-gw"), ("province", "zj-pbx"))}
    def logged(path: Path) -> bool:
        return path.is_file() and f"caller={number}" in path.read_text()

    for name, path in logs.items():  # written at hang-up, once the channel is reported
        wait_until(functools.partial(logged, path), timeout=20,
                   what=f"{name}'s call record of {number}")

    def collect(name: str, dsn: str, *extra: str) -> tuple[int, str, str]:
        site = sites.province if name == "zj-pbx" else sites.gateway
        out, err = io.StringIO(), io.StringIO()
        code = main(["calls", "collect", "--engine", "freeswitch", "--dsn", dsn,
                     "--log-dir", str(site.root / "log"),
                     "--recordings", str(site.root / "recordings"),
                     "--state", str(tmp_path / f"state-{name}"),
                     "--esl-host", site.address, "--esl-port", str(ESL_INBOUND_PORT),
                     "--esl-source", site.address, "--json", *extra],
                    environ={"PBXCTL_COLLECTOR_ESL_SECRET": sites.secrets.ami[name]},
                    stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    down = f"host={tmp_path} port=1 connect_timeout=1"
    for name in logs:
        code, _, err = collect(name, down)
        assert code == 9 and "nothing is lost" in err, err
    dsn = store.config.conninfo
    try:
        for name in logs:
            code, out, err = collect(name, dsn, "--rotate-bytes", "1")
            assert code == 0, err
            assert json.loads(out)["rejected"] == 0
        rows = store.execute(
            "SELECT site, uniqueid, origin, did, prefecture, mode, queue, agent,"
            " answered_at IS NOT NULL, talk_s, hangup_cause FROM call_records"
            " WHERE caller = %s ORDER BY site", (number,))
        assert [r[0] for r in rows] == ["hz-gw", "zj-pbx"], rows  # one per switch, no legs
        gw, acd = rows
        hz = sites.inv.prefecture("HZ")
        assert (gw[3], gw[4], gw[7]) == (hz.dids[0], "HZ", "")
        assert acd[2] == gw[1]  # the province's record names the gateway's call
        assert acd[3:8] == (hz.dids[0], "HZ", "central", hz.queue, agent)
        assert acd[8] and float(str(acd[9])) >= 1.0 and acd[10] == "16", acd
        recs = store.execute("SELECT path, status, audio_s FROM recordings WHERE site = %s"
                             " AND uniqueid = %s", ("zj-pbx", acd[1]))
        assert recs and Path(str(recs[0][0])).name == f"pbxctl-{acd[1]}.wav", recs
        assert recs[0][1] == "ok" and float(str(recs[0][2])) >= 1.0, recs
        # Everything collected, past 1 byte: FreeSWITCH renamed the log and reopened a new one.
        for name, path in logs.items():
            assert path.is_file() and path.stat().st_size == 0, name
            assert list(path.parent.glob(path.name + ".*")), name
        again = [json.loads(collect(name, dsn)[1])["calls"] for name in logs]
        assert again == [0, 0]  # the rotated files drain to nothing new
        assert len(store.execute("SELECT 1 FROM call_records WHERE caller = %s",
                                 (number,))) == 2
    finally:
        store.close()


@contextlib.contextmanager
def _agent_on_a_call(sites: Sites, tmp_path: Path, *, phone: str, number: str
                     ) -> Iterator[InboundEsl]:
    """hz-a001's registered phone talks to a real caller for 8 s; yields the province's event
    connection (CHANNEL_EXECUTE and pbxctl::spy subscribed) once the agent is bridged, and
    leaves when the caller and the agent's phone have both ended the call well."""
    _register(sites, "hz-a001", phone, tmp_path / "hz-a001")
    uas = _seat_phone(tmp_path / "agent", phone, talk_ms=8000)
    uas.start()
    try:
        with sites.province.esl(timeout=10) as events:
            events.subscribe("CHANNEL_EXECUTE", "CUSTOM callcenter::info pbxctl::spy")
            caller = _caller(sites, tmp_path, number)
            caller.start()
            try:
                events.wait_event(lambda e: e.get("CC-Action") == "bridge-agent-start"
                                  and e.get("CC-Agent") == "hz-a001", timeout=45,
                                  what="hz-a001 bridged to the caller")
                yield events
                assert caller.wait().successful == 1
            finally:
                caller.stop()
        assert uas.wait().successful == 1
    finally:
        uas.stop()


def _spied(events: InboundEsl) -> tuple[dict[str, str], dict[str, str]]:
    """The supervisor's pbxctl::spy event and the eavesdrop its channel then runs."""
    said = events.wait_event(lambda e: e.get("Event-Subclass") == "pbxctl::spy", timeout=30,
                             what="the supervisor's spy code")
    spied = events.wait_event(lambda e: e.get("Application") == "eavesdrop", timeout=30,
                              what="the supervisor's phone eavesdropping")
    return said, spied


def test_the_console_whispers_to_an_agent_on_a_call(sites: Sites, tmp_path: Path) -> None:
    """The console's whisper on a FreeSWITCH province (EslCallFeed.spy): the supervisor's
    phone is originated into *2<ext> in the province's supervisors context, which
    eavesdrops on hz-a001's call with the whisper flag (speak to the agent only)."""
    sup, sup_phone = "zj-sup01", "127.201.1.106"
    ext = next(a.extension for a in sites.inv.prefecture("HZ").agents if a.id == "hz-a001")
    _register(sites, sup, sup_phone, tmp_path / sup)
    pbx = str(sites.inv.province.pbx.a)

    connect = functools.partial(opened, host=pbx, port=ESL_INBOUND_PORT,
                                password=sites.secrets.ami["zj-pbx"], source=pbx)

    sup_uas = _seat_phone(tmp_path / "sup", sup_phone, talk_ms=2000)
    sup_uas.start()
    try:
        with _agent_on_a_call(sites, tmp_path, phone="127.201.1.105",
                              number="057188880066") as events:
            EslCallFeed(connect).spy(supervisor=sup, agent="hz-a001", mode="whisper",
                                     code=f"*2{ext}")
            said, spied = _spied(events)
            assert sup_uas.wait().successful == 1
    finally:
        sup_uas.stop()
    assert (said["Supervisor"], said["Agent"], said["Mode"]) == (sup, "hz-a001", "whisper")
    assert spied["variable_eavesdrop_require_group"] == "hz-a001"
    assert spied["variable_eavesdrop_whisper_aleg"] == "true", spied
    assert spied.get("variable_eavesdrop_whisper_bleg", "") != "true"
    with pytest.raises(PbxctlError, match="not a spy code"):
        EslCallFeed(connect).spy(supervisor=sup, agent="hz-a001", mode="listen",
                                 code="*1 &system(x)")


def test_a_supervisor_dials_the_listen_code_of_an_agent_on_a_call(sites: Sites,
                                                                   tmp_path: Path) -> None:
    """The supervisors' own code: zj-sup01's phone dials *1<ext> (digest auth) and listens to
    hz-a001's call — eavesdrop limited to the agent's group, which mod_callcenter's agent
    leg carries; no whisper flag."""
    sup = "zj-sup01"
    ext = next(a.extension for a in sites.inv.prefecture("HZ").agents if a.id == "hz-a001")
    # FreeSWITCH challenges an INVITE as a proxy (407), Asterisk as a UAS (401).
    text = scenario_path("uac_auth_hold.xml").read_text(encoding="iso-8859-1")
    dial = tmp_path / "uac_auth_407.xml"
    dial.write_text(text.replace('<recv response="401" auth="true"/>',
                                 '<recv response="407" auth="true"/>'), encoding="iso-8859-1")
    with _agent_on_a_call(sites, tmp_path, phone="127.201.1.107",
                          number="057188880067") as events:
        listener = SippProcess(
            scenario=dial, workdir=tmp_path / "sup", local_ip="127.201.1.108",
            remote=(str(sites.inv.province.pbx.a), 5060), service=f"*1{ext}", pause_ms=2000,
            timeout=30, keys={"caller": sup, "audio": str(pcap("g711a.pcap"))},
            extra_args=("-au", sup, "-ap", sites.secrets.sip[sup]))
        listener.start()
        try:
            said, spied = _spied(events)
            assert listener.wait().successful == 1
        finally:
            listener.stop()
    assert (said["Supervisor"], said["Agent"], said["Mode"]) == (sup, "hz-a001", "listen")
    assert spied["variable_eavesdrop_require_group"] == "hz-a001"
    assert spied.get("variable_eavesdrop_whisper_aleg", "") != "true"  # listen only
