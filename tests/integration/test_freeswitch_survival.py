"""Dual paths and survivability on FreeSWITCH, with real SIPp calls through a real FreeSWITCH
gateway, province and local survivable server (all three rendered from the small inventory,
each on its own loopback addresses):

* path A lost (the province's switch-A profile stopped): the gateway's OPTIONS ping says
  `province-a` DOWN, and the next caller reaches the province over path B;
* the province lost (its process frozen: nothing answers, nothing is refused — what a WAN cut
  or a hung PBX looks like from the gateway): both province trunks go DOWN, and the next
  caller is queued on the LSS and connected to the prefecture's agent there (survivable
  mode: a trunk FreeSWITCH knows is down is skipped with no per-call wait);
* the province back: both trunks UP again, and the next caller is the province's (failback).

Every state change is FreeSWITCH's own event (`sofia::gateway_state`, `callcenter::info`) read
over the sites' inbound event sockets. The detection times are printed, never asserted:
docs/freeswitch.md has them. The namespace lab (`pbxctl lab up`) and `pbxctl drill` still
drive Asterisk sites only."""

from __future__ import annotations

import functools
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pbxctl.core.procs import wait_until
from pbxctl.lab.sandbox.freeswitch import FreeSwitchInstance
from pbxctl.lab.sandbox.sipp import SippProcess, pcap, scenario_path
from pbxctl.lab.site import freeswitch_for
from pbxctl.pbx.esl_inbound import InboundEsl
from provisioning.inventory import load_inventory
from provisioning.model import Inventory
from provisioning.secrets import Secrets, ensure_secrets
from tests.integration.conftest import agent_hangs_up

pytestmark = [pytest.mark.freeswitch, pytest.mark.sipp]

SMALL = Path(__file__).parents[1] / "data" / "small" / "province.yaml"
TRUNKS = ("province-a", "province-b", "lss-a", "lss-b")


@dataclass
class Trio:
    inv: Inventory
    secrets: Secrets
    root: Path
    province: FreeSwitchInstance
    lss: FreeSwitchInstance
    gateway: FreeSwitchInstance


@pytest.fixture(scope="module")
def trio() -> Iterator[Trio]:
    root = Path(tempfile.mkdtemp(prefix="pbxfss-", dir="/tmp"))
    shutil.copy(SMALL, root / "province.yaml")
    inv = load_inventory(root / "province.yaml")
    secrets = ensure_secrets(inv, root / "province.secrets.yaml")
    sites = {name: freeswitch_for(inv, inv.site(name), secrets, root / name,
                                  prompt_dir=str(root / "sounds"))
             for name in ("zj-pbx", "hz-lss", "hz-gw")}
    started: list[FreeSwitchInstance] = []
    try:
        for box in sites.values():
            box.start(timeout=60)
            started.append(box)
        gw = sites["hz-gw"]
        for trunk in TRUNKS:  # pinged every 5 s: all four up before the first call
            wait_until(functools.partial(gw.gateway_up, trunk), timeout=30, interval=0.5,
                       what=f"hz-gw to see {trunk} up")
        yield Trio(inv, secrets, root, sites["zj-pbx"], sites["hz-lss"], gw)
    finally:
        for box in reversed(started):
            box.stop()
        shutil.rmtree(root, ignore_errors=True)


def _caller(trio: Trio, workdir: Path, number: str, *, hold_ms: int | None) -> SippProcess:
    """A PSTN caller on HZ's DID: hangs up after ``hold_ms`` (waiting in a queue is enough),
    or, with None, waits for the BYE of a seat that talked to them."""
    hz = trio.inv.prefecture("HZ")
    keys = {"caller": number, "audio": str(pcap("g711a.pcap"))}
    if hold_ms is None:
        return SippProcess(scenario=scenario_path("uac_wait_bye.xml"), workdir=workdir,
                           local_ip=str(hz.pstn_gateway.a), remote=(str(hz.gateway.a), 5060),
                           service=hz.dids[0], timeout=90, keys=keys)
    return SippProcess(scenario=scenario_path("uac_hold_bye.xml"), workdir=workdir,
                       local_ip=str(hz.pstn_gateway.a), remote=(str(hz.gateway.a), 5060),
                       service=hz.dids[0], pause_ms=hold_ms, timeout=60, keys=keys)


def _queued_on(site: FreeSwitchInstance, trio: Trio, workdir: Path, number: str
               ) -> tuple[dict[str, str], float]:
    """One caller who waits in a queue and hangs up; the member-queue-start it caused on
    ``site`` (the caller's call must succeed: no failed new call) and the seconds from the
    caller's start to it."""
    with site.esl(timeout=10) as events:
        events.subscribe("CUSTOM callcenter::info")
        caller = _caller(trio, workdir, number, hold_ms=4000)
        started = time.monotonic()
        caller.start()
        try:
            joined = events.wait_event(
                lambda e: e.get("CC-Action") == "member-queue-start"
                and e.get("Caller-Caller-ID-Number") == number, timeout=45,
                what=f"caller {number} queued on {site.name}")
            took = time.monotonic() - started
            result = caller.wait()
        finally:
            caller.stop()
    assert result.successful == 1 and result.failed == 0, result
    return joined, took


def _gateway_events(trio: Trio) -> InboundEsl:
    client = trio.gateway.esl(timeout=10)
    client.connect()
    client.subscribe("CUSTOM sofia::gateway_state")
    return client


def _until_state(events: InboundEsl, trunks: set[str], status: str, *, timeout: float,
                 what: str) -> float:
    """Wait until every trunk in ``trunks`` reports Ping-Status ``status``; monotonic time of
    the last such event."""
    left = set(trunks)
    last = time.monotonic()
    deadline = time.monotonic() + timeout
    while left:
        ev = events.wait_event(lambda e: e.get("Gateway") in left
                               and e.get("Ping-Status") == status,
                               timeout=max(0.1, deadline - time.monotonic()), what=what)
        left.discard(ev["Gateway"])
        last = time.monotonic()
    return last


def test_path_a_lost_calls_reach_the_province_over_path_b(trio: Trio, tmp_path: Path) -> None:
    events = _gateway_events(trio)
    try:
        with trio.province.esl() as esl:
            # sofia refuses to stop a profile up for less than 10 s ("Please wait N seconds").
            wait_until(lambda: "stopping: switch-a" in esl.api("sofia profile switch-a stop"),
                       timeout=20, interval=1.0, what="the province's switch-a profile to stop")
        lost = time.monotonic()
        seen = _until_state(events, {"province-a"}, "DOWN", timeout=30,
                            what="hz-gw to mark province-a down")
        print(f"path A lost → province-a DOWN at the gateway in {seen - lost:.1f} s")
        joined, took = _queued_on(trio.province, trio, tmp_path / "b", "057188881001")
        print(f"path A down: queued on the province over path B after {took:.1f} s")
        assert joined["variable_sofia_profile_name"] == "switch-b", joined
        assert joined["CC-Queue"] == trio.inv.prefecture("HZ").queue
    finally:
        with trio.province.esl() as esl:
            esl.api("sofia profile switch-a start")
        try:
            _until_state(events, {"province-a"}, "UP", timeout=30,
                         what="hz-gw to see province-a up again")
        finally:
            events.close()


def test_the_province_lost_the_lss_queues_and_connects_then_calls_fail_back(
        trio: Trio, tmp_path: Path) -> None:
    """Frozen province: a caller who arrives before the gateway has noticed (its INVITEs to
    path A, then B, time out after the transaction timeout) still reaches the LSS and its
    agent; once both trunks are DOWN the next caller goes to the LSS with no such wait; the
    province back, the next caller is the province's again."""
    hz = trio.inv.prefecture("HZ")
    agent, phone = "hz-a001", "127.201.1.131"
    reg = SippProcess(scenario=scenario_path("register.xml"), workdir=tmp_path / "reg",
                      local_ip=phone, local_port=5060, remote=(str(hz.lss.a), 5060),
                      keys={"user": agent, "expires": "600"}, timeout=15,
                      extra_args=("-au", agent, "-ap", trio.secrets.sip[agent])).run()
    assert reg.successful == 1, reg.errors[-500:]
    assert trio.province.pid is not None
    uas = SippProcess(scenario=agent_hangs_up(tmp_path / "uas", talk_ms=2000),
                      workdir=tmp_path / "uas", local_ip=phone, local_port=5060, calls=1,
                      timeout=90, extra_args=("-aa",), keys={"audio": str(pcap("g711a.pcap"))})
    uas.start()
    events = _gateway_events(trio)
    try:
        with trio.lss.esl(timeout=10) as lss_events:
            lss_events.subscribe("CUSTOM callcenter::info")
            os.kill(trio.province.pid, signal.SIGSTOP)  # frozen: no answer, no refusal
            try:
                lost = time.monotonic()
                caller = _caller(trio, tmp_path / "early", "057188881002", hold_ms=None)
                caller.start()
                try:
                    joined = lss_events.wait_event(
                        lambda e: e.get("CC-Action") == "member-queue-start", timeout=45,
                        what="the caller queued on the LSS")
                    early = time.monotonic() - lost
                    bridged = lss_events.wait_event(
                        lambda e: e.get("CC-Action") == "bridge-agent-start", timeout=45,
                        what="the LSS connecting the caller to its agent")
                    result = caller.wait()
                finally:
                    caller.stop()
                assert uas.wait().successful == 1
                assert result.successful == 1 and result.failed == 0, result
                assert (bridged["CC-Queue"], bridged["CC-Agent"]) == (hz.lss_queue, agent)
                assert joined["variable_pbxctl_mode"] == "survivable"
                seen = _until_state(events, {"province-a", "province-b"}, "DOWN", timeout=40,
                                    what="hz-gw to mark both province trunks down")
                print(f"province frozen → both trunks DOWN at the gateway in "
                      f"{seen - lost:.1f} s; a caller arriving at once was queued on the LSS "
                      f"after {early:.1f} s")
                _, took = _queued_on(trio.lss, trio, tmp_path / "late", "057188881004")
                print(f"survivable, trunks known down: queued on the LSS after {took:.1f} s")
            finally:
                os.kill(trio.province.pid, signal.SIGCONT)
        back = time.monotonic()
        seen = _until_state(events, {"province-a", "province-b"}, "UP", timeout=40,
                            what="hz-gw to see the province up again")
        print(f"province back → both trunks UP at the gateway in {seen - back:.1f} s")
    finally:
        events.close()
        uas.stop()
    joined, took = _queued_on(trio.province, trio, tmp_path / "back", "057188881003")
    print(f"failback: queued on the province after {took:.1f} s")
    assert joined["CC-Queue"] == hz.queue and joined["variable_pbxctl_mode"] == "central"
