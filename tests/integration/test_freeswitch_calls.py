"""Real SIPp calls through a real FreeSWITCH gateway (rendered from the small inventory) into a
real `pbxctl esl serve` with the prompt catalogue and self-service data in PostgreSQL — the
FreeSWITCH rows of "central control, local playback" and of 24x7 self-service:

* the CTI answers over the `socket` application: the gateway plays the catalogue's choice from
  its **own disk** (the file `prompts publish` put there);
* the catalogue names a file this disk lacks: drift is reported to the CTI (prompt_missing,
  stored in PostgreSQL) and the caller hears the local default;
* bill and outage self-service by RFC 2833 DTMF and wrong input three times: the scenarios
  the Asterisk tests run (tests/handler_scenarios.py), the handlers in `esl serve`;
* the CTI is down on both paths: the local default plays.

What the gateway did is read from FreeSWITCH's own events (CHANNEL_EXECUTE_COMPLETE of each
playback, with the channel's variables) over its inbound event socket."""

from __future__ import annotations

import functools
import io
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pbxctl.cli import main
from pbxctl.core import chanvars as V
from pbxctl.core.net import free_port
from pbxctl.core.procs import wait_until
from pbxctl.data.orders import create, dispatch, get, history
from pbxctl.data.selfservice import seed_sample_data
from pbxctl.data.store import Store
from pbxctl.lab.sandbox.freeswitch import FreeSwitchInstance
from pbxctl.lab.sandbox.postgres import PostgresCluster
from pbxctl.lab.sandbox.sipp import SippProcess, scenario_path
from pbxctl.lab.sandbox.sipp_scenarios import dtmf_scenario, write_scenario
from pbxctl.lab.site import freeswitch_for
from pbxctl.pbx.esl_inbound import opened
from pbxctl.services.order_notifier import EslDialer, OrderNotifier
from pbxctl.services.tts import TtsCache
from provisioning.inventory import load_inventory
from provisioning.model import Inventory
from provisioning.render_freeswitch import ESL_INBOUND_PORT, ESL_PORT
from provisioning.sample import seed_input
from provisioning.secrets import Secrets, ensure_secrets
from tests.conftest import new_database
from tests.handler_scenarios import (
    ORACLE_ACCOUNT,
    SCENARIOS,
    Scenario,
    contiguous,
    seed_oracle_bill,
)

pytestmark = [pytest.mark.freeswitch, pytest.mark.pg, pytest.mark.sipp]

SMALL = Path(__file__).parents[1] / "data" / "small" / "province.yaml"
HZ_ACCOUNT = "3301010001"  # sample data: a Hangzhou customer in county HZXS
MENU_AT = 1500  # ms after the INVITE: during the welcome, which the caller may interrupt


@dataclass
class Stage:
    inv: Inventory
    root: Path
    store: Store
    gw: FreeSwitchInstance
    prompt_dir: Path
    config: Path
    secrets: Secrets
    cti: subprocess.Popen[bytes] | None = None
    cti_log: Path | None = None

    def start_cti(self, config: Path | None = None) -> None:
        # A log per start: "listening on" must be this process's, not an earlier one's.
        self.cti_log = self.root / f"esl-{len(list(self.root.glob('esl-*.log')))}.log"
        with self.cti_log.open("wb") as out:
            self.cti = subprocess.Popen([sys.executable, "-m", "pbxctl", "esl", "serve",
                                         "--config", str(config or self.config)],
                                        stdout=out, stderr=subprocess.STDOUT)
        log = self.cti_log
        wait_until(lambda: "listening on" in log.read_text() or self.cti is None
                   or self.cti.poll() is not None, timeout=30, what="esl serve to listen")
        assert self.cti.poll() is None, log.read_text()

    def stop_cti(self) -> None:
        if self.cti is not None and self.cti.poll() is None:
            self.cti.send_signal(signal.SIGTERM)
            assert self.cti.wait(timeout=30) == 0, self.cti_log and self.cti_log.read_text()
        self.cti = None


def _cli(*argv: str, env: dict[str, str]) -> str:
    out, err = io.StringIO(), io.StringIO()
    assert main(list(argv), environ=env, stdout=out, stderr=err) == 0, err.getvalue()
    return out.getvalue()


@pytest.fixture(scope="module")
def stage(pg_cluster: PostgresCluster, tts_cache_dir: Path) -> Iterator[Stage]:
    root = Path(tempfile.mkdtemp(prefix="pbxfs-", dir="/tmp"))
    inv_path = root / "province.yaml"
    shutil.copy(SMALL, inv_path)
    inv = load_inventory(inv_path)
    secrets = ensure_secrets(inv, root / "province.secrets.yaml")
    store = new_database(pg_cluster)
    seed_sample_data(store, seed_input(inv))
    seed_oracle_bill(store)
    env = {"PBXCTL_DSN": store.config.conninfo}
    _cli("prompts", "init", env=env)
    _cli("prompts", "publish", "--inventory", str(inv_path), "--target", str(root / "deploy"),
         "--cache", str(tts_cache_dir), env=env)
    cti = inv.province.cti
    config = root / "pbxctl.yaml"
    # On one loopback every PBX connects from 127.0.0.1 (the lab's namespaces give each its
    # own address): allowed here besides the inventory's PBXs.
    config.write_text(f'database: {{dsn: "{store.config.conninfo}"}}\n'
                      f"esl: {{host: [{cti.a}, {cti.b}], port: {ESL_PORT}, "
                      f"inventory: {inv_path}, allow: [127.0.0.1], grace: 2}}\n")
    site = inv.site("hz-gw")
    prompt_dir = root / "deploy" / "hz-gw" / "sounds" / "pbxctl"
    gw = freeswitch_for(inv, site, secrets, root / "hz-gw", prompt_dir=str(prompt_dir))
    gw.start(timeout=60)
    st = Stage(inv, root, store, gw, prompt_dir, config, secrets)
    try:
        yield st
    finally:
        st.stop_cti()
        gw.stop()
        store.close()
        shutil.rmtree(root, ignore_errors=True)


def _welcome_of_one_call(stage: Stage, workdir: Path) -> dict[str, str]:
    """One caller dials the DID, presses 0 (an agent) during the welcome and waits for the
    gateway's BYE (no province runs in this module: the apology, then the gateway hangs
    up). Returns the CHANNEL_EXECUTE_COMPLETE of the menu prompt the greeting plays in."""
    hz = stage.inv.prefecture("HZ")
    with stage.gw.esl(timeout=10) as events:
        events.subscribe("CHANNEL_EXECUTE_COMPLETE")
        # 0 during the welcome: straight to the route (no province here: the apology, BYE).
        scenario = write_scenario(workdir, "press0", dtmf_scenario(
            [(MENU_AT, "0")], pcap_dir=workdir / "pcaps", hold_ms=None, bye_timeout_ms=60000))
        sipp = SippProcess(scenario=scenario, workdir=workdir,
                           local_ip=str(hz.pstn_gateway.a), remote=(str(hz.gateway.a), 5060),
                           service=hz.dids[0], timeout=90, keys={"caller": "057188880000"})
        sipp.start()
        try:
            played = events.wait_event(
                lambda e: e.get("Application") == "play_and_get_digits"
                and bool(e.get("variable_pbxctl_welcome")), timeout=45,
                what="the welcome and menu on hz-gw")
            result = sipp.wait()
        finally:
            sipp.stop()
    assert result.successful == 1 and result.failed == 0, result
    return played


def test_the_ctis_choice_plays_from_the_gateways_own_disk(stage: Stage, tmp_path: Path) -> None:
    stage.start_cti()
    played = _welcome_of_one_call(stage, tmp_path)
    prompt = played[f"variable_{V.WELCOME_PROMPT}"]
    assert played[f"variable_{V.STATUS}"] == V.STATUS_OK
    assert played["variable_pbxctl_welcome"] == "central"
    assert played["variable_pbxctl_greeting"] == f"{stage.prompt_dir}/{prompt}.wav"
    assert f"file_string://{stage.prompt_dir}/{prompt}.wav!" in played["Application-Data"]
    assert (stage.prompt_dir / f"{prompt}.wav").is_file()
    # The CTI's own call log has the call, by FreeSWITCH's channel id.
    uid = played["Unique-ID"]

    def logged() -> bool:
        return bool(stage.store.execute(
            "SELECT 1 FROM agi_calls WHERE uniqueid = %s AND outcome = %s", (uid, prompt)))

    wait_until(logged, timeout=15, what="the welcome in the CTI's call log")
    # No province or LSS runs in this module: the route's "Gateway … is down!" is expected.
    assert [line for line in stage.gw.log_lines("ERR") if "is down!" not in line] == []


def test_a_prompt_missing_on_disk_is_reported_and_the_local_default_plays(
        stage: Stage, tmp_path: Path) -> None:
    if stage.cti is None:
        stage.start_cti()
    chosen = _welcome_of_one_call(stage, tmp_path / "first")[f"variable_{V.WELCOME_PROMPT}"]
    (stage.prompt_dir / f"{chosen}.wav").rename(tmp_path / "kept.wav")
    try:
        played = _welcome_of_one_call(stage, tmp_path / "second")
    finally:
        (tmp_path / "kept.wav").rename(stage.prompt_dir / f"{chosen}.wav")
    assert played["variable_pbxctl_welcome"] == "drift"
    assert played["variable_pbxctl_greeting"] == \
        f"{stage.prompt_dir}/welcome-default/current.wav"
    uid = played["Unique-ID"]
    rows = stage.store.execute("SELECT site, prompt FROM prompt_drift WHERE uniqueid = %s",
                               (uid,))
    assert [tuple(r) for r in rows] == [("hz-gw", chosen)]


MENU_KEY = {"bill": "1", "outage": "2"}
# Field of the gateway's pbxctl::service event carrying each variable the handlers set.
EVENT_FIELD = {V.STATUS: "Status", V.NEXT: "Next", V.SVC_RESULT: "Result",
               V.ACCOUNT: "Account", V.BILL_AMOUNT: "Amount", V.BILL_PERIOD: "Period",
               V.BILL_DUE: "Due", V.OUTAGES: "Outages"}


def _prompt_of(event: dict[str, str], prompt_dir: Path) -> str:
    """The prompt id a playback / play_and_get_digits played (its folder), '' if none."""
    data = event.get("Application-Data", "")
    if event.get("Application") == "play_and_get_digits":
        data = data.split(" ")[5] if len(data.split(" ")) > 5 else ""
    data = data.removeprefix("file_string://").split("!")[-1]
    return data.removeprefix(f"{prompt_dir}/").removesuffix(".wav").removesuffix("/current")


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_the_shared_self_service_scenarios_over_esl(stage: Stage, tmp_path: Path,
                                                    scenario: Scenario) -> None:
    """The scenarios the Asterisk tests run over FastAGI (tests/handler_scenarios.py), here
    as real calls through FreeSWITCH: the menu key during the welcome, then each input ended
    by #; the handler runs in `esl serve` and plays from the gateway's disk."""
    if stage.cti is None:
        stage.start_cti()
    want = scenario.expect
    steps = [(MENU_AT, MENU_KEY[scenario.route])]
    steps += [(2000 if i == 0 else 4500, key + "#") for i, key in enumerate(scenario.keys)]
    hz = stage.inv.prefecture("HZ")
    played: list[str] = []
    with stage.gw.esl(timeout=10) as events:
        events.subscribe("CHANNEL_EXECUTE_COMPLETE", "CUSTOM", "pbxctl::service")
        sipp = SippProcess(
            scenario=write_scenario(tmp_path, scenario.name, dtmf_scenario(
                steps, pcap_dir=tmp_path / "pcaps", hold_ms=None, bye_timeout_ms=90000)),
            workdir=tmp_path, local_ip=str(hz.pstn_gateway.a),
            remote=(str(hz.gateway.a), 5060), service=hz.dids[0],
            keys={"caller": "057188880000"}, timeout=120)
        sipp.start()
        try:
            def seen(e: dict[str, str]) -> bool:
                if e.get("Application") in ("playback", "play_and_get_digits"):
                    played.append(_prompt_of(e, stage.prompt_dir))
                return e.get("Event-Subclass") == "pbxctl::service"

            event = events.wait_event(seen, timeout=90, what="the pbxctl::service event")
            result = sipp.wait()
        finally:
            sipp.stop()
    assert result.successful == 1 and result.failed == 0, result
    assert {EVENT_FIELD[k]: event[EVENT_FIELD[k]] for k in want.variables} == {
        EVENT_FIELD[k]: v for k, v in want.variables.items()}
    assert event["By"] == V.SVC_BY_PROVINCE
    assert contiguous(played, want.played), played


def test_with_the_database_down_a_bill_caller_hears_the_apology_and_goes_to_an_agent(
        stage: Stage, tmp_path: Path) -> None:
    """The CTI answers but its PostgreSQL does not (a DSN to a port nothing listens on): the
    bill handler apologises and sends the caller on to an agent; nothing is dropped."""
    stage.stop_cti()
    dead = tmp_path / "dead-db.yaml"
    dead.write_text(stage.config.read_text().replace(
        stage.store.config.conninfo,
        f"host=127.0.0.1 port={free_port()} dbname=pbxctl user=postgres connect_timeout=1"))
    stage.start_cti(dead)
    try:
        hz = stage.inv.prefecture("HZ")
        with stage.gw.esl(timeout=10) as events:
            events.subscribe("CUSTOM", "pbxctl::service")
            sipp = SippProcess(
                scenario=write_scenario(tmp_path, "dbdown", dtmf_scenario(
                    [(MENU_AT, "1"), (2000, ORACLE_ACCOUNT + "#")], pcap_dir=tmp_path / "pcaps",
                    hold_ms=None, bye_timeout_ms=90000)),
                workdir=tmp_path, local_ip=str(hz.pstn_gateway.a),
                remote=(str(hz.gateway.a), 5060), service=hz.dids[0],
                keys={"caller": "057188880000"}, timeout=120)
            sipp.start()
            try:
                event = events.wait_event(lambda e: e.get("Event-Subclass") == "pbxctl::service",
                                          timeout=90, what="the pbxctl::service event")
                result = sipp.wait()
            finally:
                sipp.stop()
    finally:
        stage.stop_cti()
    assert result.successful == 1 and result.failed == 0, result
    assert (event["Service"], event["Status"], event["Next"], event["Result"]) == (
        "bill", V.STATUS_OK, V.NEXT_AGENT, "store-unavailable")


def test_with_the_cti_down_on_both_paths_the_local_default_plays(stage: Stage,
                                                                 tmp_path: Path) -> None:
    stage.stop_cti()
    played = _welcome_of_one_call(stage, tmp_path)
    assert played["variable_pbxctl_welcome"] == "local"
    assert played.get(f"variable_{V.STATUS}", "") == ""
    assert played["variable_pbxctl_greeting"] == \
        f"{stage.prompt_dir}/welcome-default/current.wav"


def test_a_work_order_call_over_the_event_socket_is_accepted_by_the_seat(
        stage: Stage, tmp_path: Path, tts_cache_dir: Path) -> None:
    """A FreeSWITCH province: the dispatcher originates the notify call over the province's
    inbound event socket (`bgapi originate`, EslDialer); the county terminal seat's phone (a
    registered SIPp UAS) answers during the Mandarin summary played from the province's disk,
    presses 1, and `esl serve`'s order_answer handler accepts the order."""
    inv, store = stage.inv, stage.store
    if stage.cti is None:
        stage.start_cti()
    pbx = str(inv.province.pbx.a)
    province_prompts = stage.root / "deploy" / "zj-pbx" / "sounds" / "pbxctl"
    province = freeswitch_for(inv, inv.site("zj-pbx"), stage.secrets, stage.root / "zj-pbx",
                              prompt_dir=str(province_prompts))
    province.start(timeout=60)
    try:
        seat, phone = "hzxs-t01", "127.201.1.111"
        reg = SippProcess(scenario=scenario_path("register.xml"), workdir=tmp_path / "reg",
                          local_ip=phone, local_port=5060, remote=(pbx, 5060),
                          keys={"user": seat, "expires": "600"}, timeout=15,
                          extra_args=("-au", seat, "-ap", stage.secrets.sip[seat])).run()
        assert reg.successful == 1, reg.errors[-500:]
        order = dispatch(store, inv, create(store, inv, type="repair", account_no=HZ_ACCOUNT,
                                            created_by="hz-a001").id, actor="hz-a001")
        assert order.seat == seat

        connect = functools.partial(opened, host=pbx, port=ESL_INBOUND_PORT,
                                    password=stage.secrets.ami["zj-pbx"],
                                    source=str(inv.province.cti.a))

        notifier = OrderNotifier(store=store, inv=inv, dialer=EslDialer(connect),
                                 prompt_dir=province_prompts, tts=TtsCache(root=tts_cache_dir))
        answer = SippProcess(
            scenario=write_scenario(tmp_path / "seat", "seat", dtmf_scenario(
                [(1500, "1")], pcap_dir=tmp_path / "seat" / "pcaps", head="uas")),
            workdir=tmp_path / "seat", local_ip=phone, local_port=5060, calls=1, timeout=90)
        answer.start()
        try:
            with province.esl(timeout=10) as events:
                events.subscribe("CUSTOM", "pbxctl::order-answer")
                [line] = notifier.run_once()
                assert line.startswith(f"order {order.id}: call 1 to {seat} (originated (job ")
                answered = events.wait_event(
                    lambda e: e.get("Event-Subclass") == "pbxctl::order-answer", timeout=60,
                    what="the seat's answer to the notify call")
            assert answer.wait().successful == 1
        finally:
            answer.stop()
    finally:
        province.stop()
    assert (answered["Order"], answered["Key"], answered["Status"], answered["Result"]) == (
        str(order.id), "1", V.STATUS_OK, "accepted"), answered
    assert get(store, order.id).status == "accepted"
    steps = [(e.event, e.actor) for e in history(store, order.id)]
    assert steps[-2:] == [("notify", "dispatcher"), ("accepted", f"{seat} (phone)")]
    assert (province_prompts / "orders" / f"order-{order.id}.wav").is_file()
