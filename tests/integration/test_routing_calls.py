"""The route handler on real calls: the CTI picks the prefecture queue (here by the caller's
area code on a number no prefecture owns) and keeps callers out of a closed prefecture."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivr_scripts.fastagi import AgiServerConfig, FastAgiServer
from ivr_scripts.handlers import default_registry
from ivr_scripts.phrases import all_system_prompts
from ivr_scripts.registry import HandlerContext
from ivr_scripts.routing import RoutingTable
from pbxctl.data.selfservice import seed_sample_data
from pbxctl.data.store import Store
from provisioning.sample import seed_input
from tests.conftest import management_ami
from tests.integration.conftest import Center, connected, place_call

pytestmark = [pytest.mark.asterisk, pytest.mark.sipp]

WEDNESDAY_NOON_SHANGHAI = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
SUNDAY_NOON_SHANGHAI = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)


@pytest.fixture
def cti(center: Center) -> Iterator[Callable[[datetime], FastAgiServer]]:
    servers: list[FastAgiServer] = []

    def start(now: datetime, store: Store | None = None) -> FastAgiServer:
        context = HandlerContext(routing=RoutingTable.from_inventory(center.inv),
                                 clock=lambda: now, store=store)
        server = FastAgiServer(registry=default_registry(), context=context,
                               config=AgiServerConfig(host=str(center.inv.province.cti.a),
                                                      port=center.inv.province.cti_port))
        server.start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.shutdown(grace=2)


def test_a_province_wide_number_goes_to_the_callers_prefecture(
        center: Center, cti: Callable[[datetime], FastAgiServer], short_tmp: Path) -> None:
    inv = center.inv
    cti(WEDNESDAY_NOON_SHANGHAI)
    nb_phone = center.phones.login("nb-a001")
    gw_ami = management_ami(center.gateways["hz-gw"], str(inv.province.cti.a))
    ami = management_ami(center.province, str(inv.province.cti.a))
    try:
        with ami.subscribe() as events, gw_ami.subscribe() as gw_events:
            # A Ningbo caller dials 95598 (no prefecture owns it) and lands on Hangzhou's gateway.
            caller = place_call(inv, "HZ", short_tmp / "callers", did="95598",
                                caller="057412345678")
            caller.start()
            routed = gw_events.wait_for(lambda m: m.get("UserEvent") == "PbxctlRoute",
                                        timeout=30, what="PbxctlRoute on hz-gw")
            connect = connected(events)
            assert caller.wait().successful == 1
    finally:
        ami.close()
        gw_ami.close()
    assert (routed["Queue"], routed["Reason"]) == ("acd-NB", "area")
    assert (connect["Queue"], connect["Interface"]) == ("acd-NB", "PJSIP/nb-a001")
    assert nb_phone.wait().successful == 1


@pytest.mark.pg
def test_a_closed_prefecture_sends_the_caller_back_to_self_service(
        center: Center, cti: Callable[..., FastAgiServer], fresh_db: Store,
        short_tmp: Path) -> None:
    """The caller asks for an agent on a Sunday, hears "closed", is back in the menu and
    keys 2 then #: the outage self-service runs at the province and finds their area's two
    outages; no agent is tried."""
    inv = center.inv
    seed_sample_data(fresh_db, seed_input(inv))  # two outages in Hangzhou
    server = cti(SUNDAY_NOON_SHANGHAI, fresh_db)  # Hangzhou's agents work Monday to Friday
    center.phones.login("hz-a001")
    # The gateway's own copy of every IVR prompt (A-law silence: 1 s for "closed" and the
    # menu, 0.2 s for the rest), so the caller's keys land where they would in service.
    for prompt in all_system_prompts():
        folder = short_tmp / "hz-gw" / "sounds" / "pbxctl" / prompt
        folder.mkdir(parents=True, exist_ok=True)
        seconds = 1.0 if prompt in ("closed", "ivr-menu") else 0.2
        (folder / "current.alaw").write_bytes(b"\xd5" * int(8000 * seconds))
    gw_ami = management_ami(center.gateways["hz-gw"], str(inv.province.cti.a))
    try:
        with gw_ami.subscribe() as events:
            caller = place_call(inv, "HZ", short_tmp / "callers", hold_ms=12000,
                                steps=[(3800, "0"), (2500, "2"), (2500, "#")])
            caller.start()
            closed = events.wait_for(lambda m: m.get("UserEvent") == "PbxctlClosed",
                                     timeout=30, what="PbxctlClosed on hz-gw")
            service = events.wait_for(lambda m: m.get("UserEvent") == "PbxctlService",
                                      timeout=30, what="PbxctlService after the menu")
            caller.wait()
            seen = events.drain()
    finally:
        gw_ami.close()
    assert (closed["Prefecture"], closed["AfterHours"], closed["Tries"]) == (
        "HZ", "selfservice", "1")
    assert (service["Service"], service["By"], service["AgiStatus"]) == (
        "outage", "province", "SUCCESS")
    assert (service["Status"], service["Next"], service["Outages"]) == ("OK", "done", "2")
    assert not any(m.get("UserEvent") == "PbxctlRoute" for m in seen)  # no agent was tried
    assert server.stats["failed"] == 0
