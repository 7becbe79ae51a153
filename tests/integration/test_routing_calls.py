"""The route handler on real calls: the CTI picks the prefecture queue (here by the caller's
area code on a number no prefecture owns) and keeps callers out of a closed prefecture."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivr_scripts.fastagi import AgiServerConfig, FastAgiServer
from ivr_scripts.handlers import default_registry
from ivr_scripts.registry import HandlerContext
from ivr_scripts.routing import RoutingTable
from tests.conftest import management_ami
from tests.integration.conftest import Center, connected, place_call

pytestmark = [pytest.mark.asterisk, pytest.mark.sipp]

WEDNESDAY_NOON_SHANGHAI = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
SUNDAY_NOON_SHANGHAI = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)


@pytest.fixture
def cti(center: Center) -> Iterator[Callable[[datetime], FastAgiServer]]:
    servers: list[FastAgiServer] = []

    def start(now: datetime) -> FastAgiServer:
        context = HandlerContext(routing=RoutingTable.from_inventory(center.inv),
                                 clock=lambda: now)
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


def test_a_closed_prefecture_sends_the_caller_back_to_self_service(
        center: Center, cti: Callable[[datetime], FastAgiServer], short_tmp: Path) -> None:
    inv = center.inv
    server = cti(SUNDAY_NOON_SHANGHAI)  # Hangzhou's agents work Monday to Friday
    center.phones.login("hz-a001")
    gw_ami = management_ami(center.gateways["hz-gw"], str(inv.province.cti.a))
    try:
        with gw_ami.subscribe() as events:
            caller = place_call(inv, "HZ", short_tmp / "callers", hold_ms=2000)
            caller.start()
            closed = events.wait_for(lambda m: m.get("UserEvent") == "PbxctlClosed",
                                     timeout=30, what="PbxctlClosed on hz-gw")
            caller.wait()
            seen = events.drain()
    finally:
        gw_ami.close()
    assert (closed["Prefecture"], closed["AfterHours"], closed["Tries"]) == (
        "HZ", "selfservice", "1")
    assert not any(m.get("UserEvent") == "PbxctlRoute" for m in seen)  # no agent was tried
    assert server.stats["ok"] >= 1 and server.stats["failed"] == 0
