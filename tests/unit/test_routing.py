"""The route decision (pure): account, DID, area code, gateway; business hours in local time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivr_scripts.routing import RoutingTable
from pbxctl.core.errors import InputError
from provisioning.inventory import load_inventory

SMALL = Path(__file__).parents[1] / "data" / "small" / "province.yaml"
# 2026-11-25 is a Wednesday; 03:00 UTC is 11:00 in Shanghai, 13:00 UTC is 21:00 there.
WED_11_LOCAL = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
WED_21_LOCAL = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)
SUN_11_LOCAL = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def table() -> RoutingTable:
    return RoutingTable.from_inventory(load_inventory(SMALL))


def decide(table: RoutingTable, *, did: str = "057195598", caller: str = "05718888",
           account: str | None = None, gw: str = "HZ", now: datetime = WED_11_LOCAL
           ) -> tuple[str, str, bool]:
    d = table.decide(gateway_prefecture=gw, did=did, caller=caller,
                     account_prefecture=account, now=now)
    return d.queue, d.reason, d.open


def test_the_account_wins_over_the_did(table: RoutingTable) -> None:
    assert decide(table, account="NB") == ("acd-NB", "account", True)


def test_a_known_did_routes_to_its_prefecture(table: RoutingTable) -> None:
    assert decide(table, did="057495598", gw="HZ") == ("acd-NB", "did", True)


@pytest.mark.parametrize("caller", ["05748888", "+8657412345678", "8657412345678"])
def test_an_unknown_did_routes_by_the_callers_area_code(table: RoutingTable,
                                                        caller: str) -> None:
    assert decide(table, did="95598", caller=caller) == ("acd-NB", "area", True)


def test_otherwise_the_gateways_own_prefecture(table: RoutingTable) -> None:
    assert decide(table, did="95598", caller="13800000000", gw="NB") == (
        "acd-NB", "gateway", True)


def test_an_unknown_account_prefecture_is_ignored(table: RoutingTable) -> None:
    assert decide(table, account="XX") == ("acd-HZ", "did", True)


def test_business_hours_are_local_time_and_days(table: RoutingTable) -> None:
    assert decide(table, now=WED_11_LOCAL)[2] is True
    assert decide(table, now=WED_21_LOCAL)[2] is False  # HZ closes at 20:00 Shanghai time
    assert decide(table, now=SUN_11_LOCAL)[2] is False  # HZ works Monday to Friday
    assert decide(table, did="057495598", now=SUN_11_LOCAL)[2] is True  # NB: no hours = 24x7


def test_no_prefecture_at_all_is_a_lookup_error(table: RoutingTable) -> None:
    with pytest.raises(LookupError):
        decide(table, did="95598", caller="13800000000", gw="??")


def test_bad_after_hours_and_time_zone_are_named_with_their_line(tmp_path: Path) -> None:
    text = SMALL.read_text().replace(
        'close: "20:00"}', 'close: "20:00", after_hours: voicemail}').replace(
        "trunk_dial_timeout: 3}", "trunk_dial_timeout: 3, timezone: Mars/Olympus}")
    bad = tmp_path / "province.yaml"
    bad.write_text(text)
    with pytest.raises(InputError) as info:
        load_inventory(bad)
    msg = str(info.value.detail or "") + info.value.message
    assert "after_hours" in msg and "timezone" in msg and "province.yaml:" in msg
