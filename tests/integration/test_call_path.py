"""Real SIPp calls (RTP from SIPp's pcap) through a sandboxed Asterisk into our FastAGI server.

The handler sets a channel variable; the dialplan acts on it. Asterisk's own UserEvent (over
AMI) reports which branch it took and what Playback returned.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr_scripts.call import Call
from ivr_scripts.calllog import CallLog
from ivr_scripts.registry import HandlerContext, Registry
from pbxctl.core import chanvars as V
from pbxctl.core.net import free_port
from pbxctl.core.procs import wait_until
from pbxctl.data.store import Store
from pbxctl.lab.sandbox.asterisk import AsteriskInstance
from pbxctl.lab.sandbox.sipp import SippProcess, SippResult, pcap, scenario_path
from pbxctl.pbx.ami import Message
from pbxctl.pbx.asterisk_modules import SUPPORTED
from tests.conftest import AgiFactory, AmiOf, GatewayFactory

pytestmark = [pytest.mark.asterisk, pytest.mark.sipp]


def call_gateway(ami_of: AmiOf, ast: AsteriskInstance, sip_port: int, workdir: Path, *,
                 did: str = "95598") -> tuple[SippResult, Message]:
    ami = ami_of(ast)
    with ami.subscribe() as events:
        sipp = SippProcess(scenario=scenario_path("uac_wait_bye.xml"), workdir=workdir,
                           remote=("127.0.0.1", sip_port), service=did,
                           keys={"caller": "057188880000", "audio": str(pcap("g711a.pcap"))},
                           timeout=40)
        sipp.start()
        try:
            result = sipp.wait()
        finally:
            sipp.stop()
        event = events.wait_for(lambda m: m.get("UserEvent") == "PbxctlCall", timeout=15)
    return result, event


@pytest.mark.pg
@pytest.mark.parametrize("major", SUPPORTED)  # the default engine and the compatibility one
def test_handler_variable_drives_the_dialplan(agi_server_factory: AgiFactory,
                                              gateway_factory: GatewayFactory, ami_of: AmiOf,
                                              store: Store, short_tmp: Path,
                                              major: int) -> None:
    call_log = CallLog(store=store)
    call_log.start()
    server = agi_server_factory(context=HandlerContext(
        store=store, call_log=call_log, fixed_welcome={"95598": "vm-goodbye"}))
    ast, sip_port = gateway_factory(agi_port=server.address[1], major=major)
    assert ast.cli("core show version").startswith(f"Asterisk {major}.")
    result, event = call_gateway(ami_of, ast, sip_port, short_tmp / "sipp")
    assert result.all_ok and result.successful == 1, result
    assert event["Branch"] == "central"
    assert event["Prompt"] == "vm-goodbye"  # the handler's choice, not the template default
    assert event["Playback"] == "SUCCESS"
    assert server.stats["ok"] == 1
    wait_until(lambda: call_log.written == 1, timeout=10, what="the call log entry")
    call_log.close()
    rows = [r for r in store.agi_calls()
            if r["outcome"] == "vm-goodbye" and r["uniqueid"] == event["Uniqueid"]]
    assert len(rows) == 1 and rows[0]["dnid"] == "95598"
    assert ast.error_lines() == []


def test_agi_server_down_takes_the_local_fallback(gateway_factory: GatewayFactory, ami_of: AmiOf,
                                                  short_tmp: Path) -> None:
    ast, sip_port = gateway_factory(agi_port=free_port())  # nothing listens there
    result, event = call_gateway(ami_of, ast, sip_port, short_tmp / "sipp")
    assert result.all_ok, result
    assert event["Branch"] == "local"
    assert event["AgiStatus"] == "FAILURE"
    assert event["Playback"] == "SUCCESS"


def test_handler_error_takes_the_local_fallback(agi_server_factory: AgiFactory,
                                                gateway_factory: GatewayFactory, ami_of: AmiOf,
                                                short_tmp: Path) -> None:
    def welcome(call: Call, ctx: HandlerContext) -> None:
        call.set_variable(V.WELCOME_PROMPT, "vm-goodbye")
        raise RuntimeError("catalogue exploded")

    server = agi_server_factory(registry=Registry([welcome]))
    ast, sip_port = gateway_factory(agi_port=server.address[1])
    result, event = call_gateway(ami_of, ast, sip_port, short_tmp / "sipp")
    assert result.all_ok, result
    assert (event["Branch"], event["AgiStatus"]) == ("local", "SUCCESS")
    assert event["FailReason"] == "error-RuntimeError"
    assert server.stats["failed"] == 1


def test_unknown_route_takes_the_local_fallback(agi_server_factory: AgiFactory,
                                                gateway_factory: GatewayFactory, ami_of: AmiOf,
                                                short_tmp: Path) -> None:
    server = agi_server_factory(registry=Registry([]))
    ast, sip_port = gateway_factory(agi_port=server.address[1])
    _, event = call_gateway(ami_of, ast, sip_port, short_tmp / "sipp")
    assert (event["Branch"], event["FailReason"]) == ("local", "unknown-route")
