"""The relay's settings from the inventory, its CLI's one-line errors, and its counters
reported as JSON — without a PBX (tests/integration/test_relay.py has the real sessions)."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from pbxctl.cli import main
from pbxctl.core.net import free_port
from pbxctl.services.relay import Relay, RelaySettings, Target, relay_status, settings_for_site
from provisioning.checks import InventoryError
from provisioning.inventory import load_inventory


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), environ={}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_paths_and_deadlines_come_from_the_inventory(small_inventory_path: Path) -> None:
    text = small_inventory_path.read_text().replace(
        "trunk_dial_timeout: 3}", "trunk_dial_timeout: 3, cti_command_timeout_ms: 900}")
    small_inventory_path.write_text(text)
    inv = load_inventory(small_inventory_path)
    s = settings_for_site(inv, "hz-gw")
    gw, cti = inv.site("hz-gw").host, inv.province.cti
    assert s.targets == (Target("cti-a", str(cti.a), inv.province.cti_port, str(gw.a)),
                         Target("cti-b", str(cti.b), inv.province.cti_port, str(gw.b)))
    assert (s.deadlines.connect_ms, s.deadlines.command_ms, s.deadlines.session_s) == (
        250, 900, 300.0)
    assert (s.host, s.port) == ("127.0.0.1", 4574)
    assert f"{gw.a}/32" in s.allow and "127.0.0.0/8" in s.allow


def test_a_deadline_out_of_range_names_file_line_and_field(small_inventory_path: Path) -> None:
    text = small_inventory_path.read_text().replace(
        "trunk_dial_timeout: 3}", "trunk_dial_timeout: 3, cti_connect_timeout_ms: 5}")
    small_inventory_path.write_text(text)
    with pytest.raises(InventoryError) as exc:
        load_inventory(small_inventory_path)
    [problem] = exc.value.problems
    assert "province.options.cti_connect_timeout_ms" in problem
    assert problem.startswith(f"{small_inventory_path}:12")


def test_serve_without_an_inventory_is_one_line_and_exit_2() -> None:
    code, _, err = run("relay", "serve")
    assert code == 2 and len(err.strip().splitlines()) <= 2
    assert "relay serve needs --inventory and --site" in err


def test_status_of_a_relay_that_is_not_there_says_so() -> None:
    code, _, err = run("relay", "status", "--port", str(free_port()), "--timeout", "1")
    assert code != 0 and "did not answer" in err and "pbxctl relay serve" in err


def test_status_reports_paths_and_counters_as_json() -> None:
    async def scenario() -> dict[str, object]:
        relay = Relay(RelaySettings(host="127.0.0.1", port=free_port(),
                                    targets=(Target("cti-a", "127.0.0.1", free_port()),)))
        await relay.start()
        try:
            relay.stats["deadline_command"] += 2
            return await relay_status("127.0.0.1", relay.settings.port)
        finally:
            await relay.close()

    got = asyncio.run(scenario())
    assert got == {"sessions": 0, "counters": {"deadline_command": 2},
                   "paths": {"cti-a": "up"}}
    json.dumps(got)  # what `relay status --json` prints


def test_status_show_states_the_bound_a_caller_can_wait(small_inventory_path: Path) -> None:
    # No PBX runs here: every site is unreachable (exit 1), but the header is printed first.
    code, out, err = run("status", "show", "--inventory", str(small_inventory_path),
                         "--site", "hz-gw", "--timeout", "1")
    assert code != 0 and "unreachable" in err
    assert ("CTI waits bounded by each gateway's relay (:4574): connect 250 ms per path, "
            "next command 1500 ms, session 300 s") in out
