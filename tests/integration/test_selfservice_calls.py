"""24x7 self-service end to end: SIPp caller with RFC 2833 DTMF (SIPp's pcaps) → rendered
gateway → our FastAGI server at the inventory's CTI address → real PostgreSQL; prompts
published by TTS onto the gateway's own disk. Evidence is Asterisk's own: its log of the files
it played, and the UserEvent carrying the channel variables the handler set."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivr_scripts import phrases
from ivr_scripts.catalog import PromptCatalog
from ivr_scripts.fastagi import AgiServerConfig, FastAgiServer
from ivr_scripts.handlers import default_registry
from ivr_scripts.registry import HandlerContext
from ivr_scripts.routing import RoutingTable
from pbxctl.core import chanvars as V
from pbxctl.core.net import free_port
from pbxctl.data.prompts import published_versions, rules
from pbxctl.data.selfservice import seed_sample_data
from pbxctl.data.store import Store
from pbxctl.lab.sandbox.asterisk import AsteriskInstance
from pbxctl.lab.sandbox.relay import CountingRelay
from pbxctl.lab.sandbox.sipp import SippProcess, SippResult
from pbxctl.lab.sandbox.sipp_scenarios import dtmf_scenario, write_scenario
from pbxctl.ops.publish import prompt_dir, publish
from pbxctl.pbx.ami import Message
from pbxctl.services.tts import TtsCache, check_audio
from provisioning.inventory import load_inventory
from provisioning.model import Inventory
from provisioning.sample import seed_input
from provisioning.secrets import ensure_secrets, secrets_path
from tests.conftest import SiteFactory, management_ami
from tests.handler_scenarios import SCENARIOS, WELCOME, Scenario, contiguous, seed_oracle_bill

pytestmark = [pytest.mark.asterisk, pytest.mark.sipp, pytest.mark.pg]

PLAYING = re.compile(
    r"Playing '([^']+?)(?:\.(?:wav|sln|ulaw|alaw|gsm))?' \((?:language|escape_digits)")
ACCOUNT = "3301010001"  # first sample account of HZ's first county
WEDNESDAY_NOON_SHANGHAI = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)  # HZ's agents are in
MENU_AT = 1500  # ms after the INVITE: during the welcome, which the caller may interrupt


@dataclass
class Stack:
    inv: Inventory
    store: Store
    gw: AsteriskInstance
    agi: FastAgiServer
    prompts: Path
    workdir: Path

    def played(self) -> list[str]:
        log = (self.gw.root / "log" / "full").read_text(errors="replace")
        return [m.group(1).removeprefix(str(self.prompts) + "/").removesuffix("/current")
                for m in PLAYING.finditer(log)]

    def welcome_ms(self) -> int:
        return int(check_audio(self.prompts / "welcome-default" / "current.wav") * 1000)

    def caller(self, name: str, steps: list[tuple[int, str]], *, hold_ms: int | None = None
               ) -> SippProcess:
        """A PSTN caller into HZ's gateway pressing ``steps``; it hangs up after ``hold_ms``
        or, if None, waits for the PBX to hang up."""
        hz = self.inv.prefecture("HZ")
        scenario = write_scenario(self.workdir, name, dtmf_scenario(
            steps, pcap_dir=self.workdir / f"{name}-pcaps", hold_ms=hold_ms,
            bye_timeout_ms=90000))
        return SippProcess(scenario=scenario, workdir=self.workdir,
                           local_ip=str(hz.pstn_gateway.a), remote=(str(hz.gateway.a), 5060),
                           service=hz.dids[0], keys={"caller": "057188880000"}, timeout=120)

    def call(self, steps: list[tuple[int, str]], name: str, *, hold_ms: int | None = None
             ) -> tuple[SippResult, Message]:
        ami = management_ami(self.gw, str(self.inv.province.cti.a))
        try:
            with ami.subscribe() as events:
                sipp = self.caller(name, steps, hold_ms=hold_ms)
                sipp.start()
                try:
                    result = sipp.wait()
                finally:
                    sipp.stop()
                event = events.wait_for(lambda m: m.get("UserEvent") == "PbxctlService",
                                        timeout=10, what="PbxctlService UserEvent")
        finally:
            ami.close()
        return result, event


@pytest.fixture
def stack(small_inventory_path: Path, site_factory: SiteFactory, fresh_db: Store,
          tts_cache_dir: Path, short_tmp: Path) -> Iterator[Stack]:
    inv = load_inventory(small_inventory_path)
    secrets = ensure_secrets(inv, secrets_path(small_inventory_path), create=False)
    seed_sample_data(fresh_db, seed_input(inv))
    seed_oracle_bill(fresh_db)
    phrases.init_system_prompts(fresh_db)
    publish(fresh_db, inv, short_tmp, cache=TtsCache(root=tts_cache_dir),
            sites=[inv.site("hz-gw")])
    catalog = PromptCatalog(load=lambda: (rules(fresh_db), published_versions(fresh_db)))
    assert catalog.prime()  # as `pbxctl agi serve` does at start
    agi = FastAgiServer(registry=default_registry(),
                        context=HandlerContext(
                            store=fresh_db, catalog=catalog,
                            routing=RoutingTable.from_inventory(inv),
                            clock=lambda: WEDNESDAY_NOON_SHANGHAI),
                        config=AgiServerConfig(host=str(inv.province.cti.a),
                                               port=inv.province.cti_port))
    agi.start()
    try:
        # The province PBX answers the gateway's trunk qualify: a gateway asks the CTI only
        # over a path on which the province is reachable.
        site_factory(inv, secrets, "zj-pbx")
        gw = site_factory(inv, secrets, "hz-gw", verbose_log=True)
        yield Stack(inv, fresh_db, gw, agi, prompt_dir(short_tmp, "hz-gw"), short_tmp / "sipp")
    finally:
        agi.shutdown(grace=5)


MENU_KEY = {"bill": "1", "outage": "2"}
# UserEvent PbxctlService field carrying each channel variable the handlers set.
EVENT_FIELD = {V.STATUS: "Status", V.NEXT: "Next", V.SVC_RESULT: "Result",
               V.ACCOUNT: "Account", V.BILL_AMOUNT: "Amount", V.BILL_PERIOD: "Period",
               V.BILL_DUE: "Due", V.OUTAGES: "Outages"}


def test_welcome_plays_the_catalogues_version_from_local_disk(stack: Stack) -> None:
    result, _ = stack.call([(MENU_AT, "2"), (2000, "#")], "welcome")
    assert result.successful == 1 and result.failed == 0, result
    assert stack.played()[0] == WELCOME[V.WELCOME_PROMPT]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_handlers_pass_the_shared_scenarios_over_fastagi(stack: Stack,
                                                         scenario: Scenario) -> None:
    """The same scenarios the FreeSWITCH/ESL tests run (tests/handler_scenarios.py), here
    as real calls: the menu key, then each input ended by # (later inputs after the
    "account-invalid" prompt has played)."""
    want = scenario.expect
    steps = [(MENU_AT, MENU_KEY[scenario.route])]
    steps += [(2000 if i == 0 else 4500, key + "#") for i, key in enumerate(scenario.keys)]
    # A caller handed to an agent waits in the province queue: they hang up themselves,
    # once the transfer prompt has played and the call is on its way to the queue.
    hold = 8000 if want.variables.get(V.NEXT) == V.NEXT_AGENT else None
    result, event = stack.call(steps, scenario.name, hold_ms=hold)
    assert result.successful == 1 and result.failed == 0, result
    assert {EVENT_FIELD[k]: event[EVENT_FIELD[k]] for k in want.variables} == {
        EVENT_FIELD[k]: v for k, v in want.variables.items()}
    played = stack.played()
    assert played[0] == "welcome-default/v1"  # the catalogue's version, from local disk
    assert contiguous(played, want.played), played
    assert stack.agi.stats["failed"] == 0


def test_missing_local_prompt_plays_local_default_and_reports_drift(stack: Stack) -> None:
    for f in (stack.prompts / "welcome-default").glob("v1.*"):
        f.unlink()
    ami = management_ami(stack.gw, str(stack.inv.province.cti.a))
    try:
        with ami.subscribe() as events:
            sipp = stack.caller("drift", [], hold_ms=stack.welcome_ms() + 1500)
            sipp.start()
            drift = events.wait_for(lambda m: m.get("UserEvent") == "PbxctlPromptDrift",
                                    timeout=15, what="PbxctlPromptDrift")
            result = sipp.wait()
    finally:
        ami.close()
    assert result.successful == 1, result  # the call did not fail on a missing prompt
    assert drift["Prompt"] == "welcome-default/v1"
    assert stack.played()[0] == "welcome-default"  # ../current: the local default
    rows = stack.store.execute("SELECT site, prompt, problem FROM prompt_drift")
    assert rows == [("hz-gw", "welcome-default/v1", "file missing at call time")]


@pytest.fixture
def relayed_stack(small_inventory_path: Path, site_factory: SiteFactory, fresh_db: Store,
                  tts_cache_dir: Path, short_tmp: Path) -> Iterator[tuple[Stack, CountingRelay]]:
    """As `stack`, but the CTI address is a byte-counting relay in front of the server."""
    inv = load_inventory(small_inventory_path)
    secrets = ensure_secrets(inv, secrets_path(small_inventory_path), create=False)
    phrases.init_system_prompts(fresh_db)
    publish(fresh_db, inv, short_tmp, cache=TtsCache(root=tts_cache_dir),
            sites=[inv.site("hz-gw")])
    catalog = PromptCatalog(load=lambda: (rules(fresh_db), published_versions(fresh_db)))
    catalog.prime()
    agi = FastAgiServer(registry=default_registry(),
                        context=HandlerContext(
                            store=fresh_db, catalog=catalog,
                            routing=RoutingTable.from_inventory(inv),
                            clock=lambda: WEDNESDAY_NOON_SHANGHAI),
                        config=AgiServerConfig(host="127.0.0.1", port=free_port()))
    agi.start()
    relay = CountingRelay(listen=(str(inv.province.cti.a), inv.province.cti_port),
                          target=agi.address)
    relay.start()
    try:
        site_factory(inv, secrets, "zj-pbx")  # answers the trunk qualify (see `stack`)
        gw = site_factory(inv, secrets, "hz-gw", verbose_log=True)
        yield (Stack(inv, fresh_db, gw, agi, prompt_dir(short_tmp, "hz-gw"),
                     short_tmp / "sipp"), relay)
    finally:
        relay.stop()
        agi.shutdown(grace=5)


def test_only_control_crosses_the_wan_during_a_welcome(
        relayed_stack: tuple[Stack, CountingRelay]) -> None:
    """Central control, local playback, measured: bytes between the gateway and the province
    during a welcome vs the bytes of the prompt the gateway played from its own disk."""
    stack, relay = relayed_stack
    sipp = stack.caller("welcome", [], hold_ms=stack.welcome_ms() + 1500)
    sipp.start()
    result = sipp.wait()
    assert result.successful == 1, result
    assert stack.played()[0] == "welcome-default/v1"
    audio = (stack.prompts / "welcome-default" / "v1.alaw").stat().st_size  # what was played
    assert relay.counts.sessions == 1
    ratio = relay.counts.total / audio
    print(f"\nwelcome: {relay.counts.total} bytes of AGI control crossed "
          f"({relay.counts.upstream} up, {relay.counts.downstream} down) vs {audio} bytes of "
          f"prompt audio played locally: ratio {ratio:.4f}")
    assert ratio < 0.05  # control is a few hundred bytes; the audio tens of kilobytes
