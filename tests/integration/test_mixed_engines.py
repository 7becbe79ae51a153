"""A mixed province, one model: a FreeSWITCH gateway (hz-gw) in front of an Asterisk 22
province (zj-pbx), both rendered from the same small inventory with the same secrets. They
see each other on path A (FreeSWITCH's OPTIONS ping, Asterisk's qualify), and a real SIPp
caller on HZ's DID crosses from one engine to the other into the province's ACD for HZ."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbxctl.core.procs import wait_until
from pbxctl.lab.sandbox.sipp import SippProcess, pcap, scenario_path
from pbxctl.lab.site import freeswitch_for
from pbxctl.pbx.asterisk_show import contacts
from provisioning.inventory import load_inventory
from provisioning.secrets import ensure_secrets, secrets_path
from tests.conftest import SiteFactory, management_ami

pytestmark = [pytest.mark.asterisk, pytest.mark.freeswitch, pytest.mark.sipp]


def test_a_freeswitch_gateway_routes_into_an_asterisk_province(
        small_inventory_path: Path, site_factory: SiteFactory, short_tmp: Path) -> None:
    inv = load_inventory(small_inventory_path)
    secrets = ensure_secrets(inv, secrets_path(small_inventory_path), create=False)
    province = site_factory(inv, secrets, "zj-pbx")
    gw = freeswitch_for(inv, inv.site("hz-gw"), secrets, short_tmp / "hz-gw",
                        prompt_dir=str(short_tmp / "sounds"))
    gw.start(timeout=60)
    try:
        wait_until(lambda: gw.gateway_up("province-a"), timeout=30, interval=0.5,
                   what="the FreeSWITCH gateway to see the Asterisk province on path A")
        wait_until(lambda: contacts(province.cli("pjsip show contacts")).get("gw-hz-a")
                   == "Avail", timeout=30, interval=0.5,
                   what="the Asterisk province to qualify the FreeSWITCH gateway")
        hz = inv.prefecture("HZ")
        ami = management_ami(province, str(inv.province.cti.a))
        try:
            with ami.subscribe() as events:
                caller = SippProcess(scenario=scenario_path("uac_hold_bye.xml"),
                                     workdir=short_tmp / "caller",
                                     local_ip=str(hz.pstn_gateway.a),
                                     remote=(str(hz.gateway.a), 5060), service=hz.dids[0],
                                     pause_ms=12000, timeout=60,
                                     keys={"caller": "057188880000",
                                           "audio": str(pcap("g711a.pcap"))})
                caller.start()
                try:
                    # No HZ agent has a phone here: the province's ACD for HZ sends the
                    # caller on to the supervisors at once, saying why.
                    entry = events.wait_for(lambda m: m.get("UserEvent") == "PbxctlOverflow",
                                            timeout=40, what="HZ's ACD entry on the province")
                    joined = events.wait_for(lambda m: m.get("Event") == "QueueCallerJoin",
                                             timeout=20, what="QueueCallerJoin on the province")
                    result = caller.wait()
                finally:
                    caller.stop()
        finally:
            ami.close()
    finally:
        gw.stop()
    assert (entry["Prefecture"], entry["Reason"]) == ("HZ", "no-agent-ready")
    assert joined["Queue"] == inv.province.supervisor_queue
    assert joined["CallerIDNum"].endswith("88880000")
    assert result.successful == 1 and result.failed == 0, result
    # No CTI runs and no prompt is published here: the gateway's `socket` to the CTI fails
    # and the local greeting and menu files are missing (the call goes on to the route);
    # anything else is a defect.
    assert [line for line in gw.log_lines("ERR") if "mod_event_socket.c" not in line
            and "Can't open file" not in line] == []
    assert province.error_lines() == []
