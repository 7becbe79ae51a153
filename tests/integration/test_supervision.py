"""Supervision at the province with real phones: `pbxctl status` shows a live call from AMI,
supervisors listen in through feature codes that agents cannot use, and the status view
survives an Asterisk restart."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from pbxctl.cli import main
from pbxctl.core.procs import wait_until
from pbxctl.pbx.monitor import AmiTarget, ResilientAmi
from tests.conftest import management_ami
from tests.integration.conftest import Center, connected, place_call

pytestmark = [pytest.mark.asterisk, pytest.mark.sipp]


def _status(inventory: Path, *extra: str) -> tuple[int, list[dict[str, Any]], str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["status", "show", "--inventory", str(inventory), "--json", *extra], environ={},
                stdout=out, stderr=err)
    return code, json.loads(out.getvalue().splitlines()[-1]) if out.getvalue() else [], \
        err.getvalue()


def test_status_shows_the_live_call_and_a_supervisor_listens_in(
        center: Center, small_inventory_path: Path, short_tmp: Path) -> None:
    inv, province, phones = center.inv, center.province, center.phones
    agent = phones.login("hz-a001")
    ami = management_ami(province, str(inv.province.cti.a))
    try:
        with ami.subscribe() as events:
            caller = place_call(inv, "HZ", short_tmp / "callers", hold_ms=12000)
            caller.start()
            connected(events)
            code, sites, err = _status(small_inventory_path, "--site", "zj-pbx",
                                       "--site", "hz-gw")
            assert code == 0, err
            by_site = {s["site"]: s for s in sites}
            hz = next(q for q in by_site["zj-pbx"]["queues"] if q["name"] == "acd-HZ")
            assert (hz["busy"], hz["available"], hz["unavailable"], hz["waiting"]) == \
                (1, 0, 1, 0)  # hz-a002 is not logged in
            members = {(m["queue"], m["interface"]): m["state"]
                       for m in by_site["zj-pbx"]["members"]}
            assert members[("acd-HZ", "PJSIP/hz-a001")] == "busy"
            assert any(c["channel"].startswith("PJSIP/hz-a001-") and c["bridged"]
                       for c in by_site["zj-pbx"]["channels"])
            assert any(c["bridged"] for c in by_site["hz-gw"]["channels"])

            # An agent cannot use the supervisor codes: authenticated, the PBX answers 404
            # (no such number in the seats' context) — not 401/403, which would mean the
            # agent's own credentials failed …
            refused = phones.dial_refused("hz-a002", "*11101", code=404).run()
            assert (refused.successful, refused.failed) == (1, 0), refused.errors[-500:]
            # … while the same agent, same credentials, reaches a number seats may dial:
            # the supervisor's desk phone answers it.
            desk = phones.login("zj-sup01", in_queue=False)
            allowed = phones.dial("hz-a002", "8001", hold_ms=1000).run()
            assert (allowed.successful, allowed.failed) == (1, 0), allowed.errors[-500:]
            assert desk.wait().successful == 1
            # … a supervisor can.
            spy = phones.dial("zj-sup01", "*11101", hold_ms=3000)
            spy.start()
            start = events.wait_for(lambda m: m.get("Event") == "ChanSpyStart", timeout=20,
                                    what="ChanSpyStart")
            assert start["SpyeeChannel"].startswith("PJSIP/hz-a001-")
            assert start["SpyerChannel"].startswith("PJSIP/zj-sup01-")
            assert spy.wait().successful == 1
            assert caller.wait().successful == 1
    finally:
        ami.close()
    assert agent.wait().successful == 1


def test_status_reports_a_down_site_and_recovers_after_a_restart(
        center: Center) -> None:
    gw = center.gateways["hz-gw"]
    assert gw.ami is not None
    link = ResilientAmi(AmiTarget("hz-gw", str(center.inv.prefecture("HZ").gateway.a),
                                  gw.ami.port, gw.ami.username, gw.ami.secret,
                                  str(center.inv.province.cti.a)),
                        timeout=3.0, max_backoff=1.0)
    try:
        assert link.status().reachable
        gw.stop()
        down = link.status()
        assert not down.reachable and down.error
        gw.start()
        wait_until(lambda: link.status().reachable, timeout=30,
                   what="AMI view of hz-gw back after its restart")
        assert link.reconnects == 2
    finally:
        link.close()
