"""Real SIPp calls through rendered sites of the small inventory.

Central path: PSTN → hz-gw → FastAGI at the inventory's CTI address → province queue acd-HZ.
Fallback: FastAGI and the province both down → hz-gw still hands the call to the local
survivable server's queue lss-HZ.
"""

from __future__ import annotations

import re
import wave
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivr_scripts.fastagi import AgiServerConfig, FastAgiServer
from ivr_scripts.handlers import default_registry
from ivr_scripts.registry import HandlerContext
from ivr_scripts.routing import RoutingTable
from pbxctl.core.procs import wait_until
from pbxctl.lab.sandbox.asterisk import AsteriskInstance
from pbxctl.lab.sandbox.sipp import SippProcess, SippResult
from pbxctl.lab.sandbox.sipp_scenarios import dtmf_scenario, write_scenario
from pbxctl.pbx.ami import Message, Subscription
from pbxctl.pbx.asterisk_show import contacts
from provisioning.inventory import load_inventory
from provisioning.model import Inventory
from provisioning.secrets import ensure_secrets, secrets_path
from tests.conftest import SiteFactory, management_ami

pytestmark = [pytest.mark.asterisk, pytest.mark.sipp]


def _caller(inv: Inventory, workdir: Path, *, hold_ms: int) -> SippProcess:
    """A caller who presses 0 (an agent) at the menu after the local welcome, then holds.
    A lost digit changes nothing but the wait: no choice at the menu also means an agent."""
    hz = inv.prefecture("HZ")
    scenario = write_scenario(workdir, "press0", dtmf_scenario(
        [(3800, "0")], pcap_dir=workdir / "pcaps", hold_ms=hold_ms))
    return SippProcess(scenario=scenario, workdir=workdir,
                       local_ip=str(hz.pstn_gateway.a), remote=(str(hz.gateway.a), 5060),
                       service=hz.dids[0], timeout=60, keys={"caller": "057188880000"})


def _province_entry(events: Subscription) -> Message:
    """The call entered HZ's province ACD; with no HZ agent logged in in these tests it
    overflows to the supervisors at once, for that reason."""
    overflow = events.wait_for(lambda m: m.get("UserEvent") == "PbxctlOverflow", timeout=20,
                               what="the province ACD entry for HZ")
    assert (overflow["Prefecture"], overflow["Reason"]) == ("HZ", "no-agent-ready")
    return events.wait_for(lambda m: m.get("Event") == "QueueCallerJoin", timeout=20,
                           what="QueueCallerJoin on the province")


def _call_into_province(inv: Inventory, province: AsteriskInstance, gw: AsteriskInstance,
                        workdir: Path) -> tuple[Message, SippResult]:
    """Once the gateway sees the province on path A (qualify, 1 s), one caller through it;
    returns the province's QueueCallerJoin and SIPp's result."""
    wait_until(lambda: _contact_status(gw, "province-a") == "Avail", timeout=15,
               what="hz-gw to qualify province-a")
    ami = management_ami(province, str(inv.province.cti.a))
    try:
        with ami.subscribe() as events:
            caller = _caller(inv, workdir / "sipp", hold_ms=8000)
            caller.start()
            joined = _province_entry(events)
            return joined, caller.wait()
    finally:
        ami.close()


WEDNESDAY_NOON_SHANGHAI = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)


def _contact_status(ast: AsteriskInstance, aor: str) -> str:
    return contacts(ast.cli("pjsip show contacts")).get(aor, "")


def test_gateway_reaches_fastagi_of_inventory_then_province_queue(
        small_inventory_path: Path, site_factory: SiteFactory, short_tmp: Path) -> None:
    inv = load_inventory(small_inventory_path)
    secrets = ensure_secrets(inv, secrets_path(small_inventory_path), create=False)
    agi = FastAgiServer(registry=default_registry(),
                        context=HandlerContext(
                            routing=RoutingTable.from_inventory(inv),
                            clock=lambda: WEDNESDAY_NOON_SHANGHAI),  # HZ is open
                        config=AgiServerConfig(host=str(inv.province.cti.a),
                                               port=inv.province.cti_port))
    agi.start()
    try:
        province = site_factory(inv, secrets, "zj-pbx")
        gw = site_factory(inv, secrets, "hz-gw")
        site_factory(inv, secrets, "hz-lss")
        joined, result = _call_into_province(inv, province, gw, short_tmp)
    finally:
        agi.shutdown(grace=5)
    assert joined["Queue"] == "acd-supervisors"  # HZ's ACD, overflowing: no agent here
    assert joined["CallerIDNum"] == "057188880000"
    # The FastAGI server named in the inventory ran `welcome`, then `prompt_missing` (nothing
    # was published in this test, so the gateway reported the drift and played its default),
    # then `route` (the HZ DID during HZ's business hours).
    assert agi.stats["ok"] == 3 and agi.stats["failed"] == 0
    assert result.successful == 1 and result.failed == 0, result
    assert gw.error_lines() == [] and province.error_lines() == []


def test_fastagi_and_province_down_still_reach_the_local_queue(
        small_inventory_path: Path, site_factory: SiteFactory, short_tmp: Path) -> None:
    inv = load_inventory(small_inventory_path)
    secrets = ensure_secrets(inv, secrets_path(small_inventory_path), create=False)
    gw = site_factory(inv, secrets, "hz-gw")
    lss = site_factory(inv, secrets, "hz-lss")
    # Wait on qualify, not on the clock: the province is unreachable, the LSS reachable.
    wait_until(lambda: _contact_status(gw, "province-a") == "Unavail"
               and _contact_status(gw, "province-b") == "Unavail"
               and _contact_status(gw, "lss-a") == "Avail", timeout=15,
               what="hz-gw to qualify its trunks")
    gw_ami = management_ami(gw, str(inv.province.cti.a))
    lss_ami = management_ami(lss, str(inv.province.cti.a))
    try:
        with gw_ami.subscribe() as gw_events, lss_ami.subscribe() as lss_events:
            caller = _caller(inv, short_tmp / "sipp", hold_ms=8000)
            caller.start()
            joined = lss_events.wait_for(lambda m: m.get("Event") == "QueueCallerJoin",
                                         timeout=20, what="QueueCallerJoin on the LSS")
            switched = gw_events.wait_for(lambda m: m.get("UserEvent") == "PbxctlSurvivable",
                                          timeout=5, what="PbxctlSurvivable on the gateway")
            result = caller.wait()
    finally:
        gw_ami.close()
        lss_ami.close()
    assert joined["Queue"] == "lss-HZ"
    assert switched["Prefecture"] == "HZ" and switched["DialStatus"] == "CHANUNAVAIL"
    assert result.successful == 1 and result.failed == 0, result


def test_fastagi_down_province_up_plays_local_welcome_and_reaches_province_queue(
        small_inventory_path: Path, site_factory: SiteFactory, short_tmp: Path) -> None:
    """Losing the CTI server is not losing the province PBX: agents keep getting calls.
    The caller hears the gateway's own copy of the default welcome (not the hold prompt
    that stands in when no copy is on disk), after both CTI paths were tried."""
    inv = load_inventory(small_inventory_path)
    secrets = ensure_secrets(inv, secrets_path(small_inventory_path), create=False)
    province = site_factory(inv, secrets, "zj-pbx")
    gw = site_factory(inv, secrets, "hz-gw", verbose_log=True)
    welcome = short_tmp / "hz-gw" / "sounds" / "pbxctl" / "welcome-default" / "current.wav"
    welcome.parent.mkdir(parents=True, exist_ok=True)
    _silence_wav(welcome, seconds=2.0)
    joined, result = _call_into_province(inv, province, gw, short_tmp)
    assert joined["Queue"] == "acd-supervisors"
    assert result.successful == 1, result
    log = (gw.root / "log" / "messages").read_text()
    assert log.count(f"agi://{inv.province.cti.a}:{inv.province.cti_port}/welcome") >= 1
    assert f"agi://{inv.province.cti.b}:{inv.province.cti_port}/welcome" in log  # path B tried
    played = re.findall(r"Playing '([^']+)'", (gw.root / "log" / "full").read_text())
    assert played and played[0].startswith(str(welcome.with_suffix(""))), played
    assert not any("pls-hold-while-try" in p for p in played), played


def _silence_wav(path: Path, *, seconds: float) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * int(8000 * seconds))
