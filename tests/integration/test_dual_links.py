"""Dual links with real link cuts: the province, a prefecture gateway and its local
survivable server (LSS) each in their own network namespace, linked to two switches
(bridges). Cutting the gateway's switch-A link: qualify reports the dead path, a new call
reaches the province over switch B, and path A is used again once the link is back.
Cutting the province off both switches (a WAN cut): new calls go to the LSS.
(A first slice of the survivability work.)"""

from __future__ import annotations

import functools
import os
import secrets as pysecrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pbxctl.asterisk_show import contacts
from pbxctl.procs import wait_until
from pbxctl.sandbox.asterisk import AsteriskInstance
from pbxctl.sandbox.netns import NetLab, lab_namespaces
from pbxctl.sandbox.sipp import SippProcess, pcap, scenario_path
from provisioning.inventory import load_inventory
from provisioning.model import Inventory
from provisioning.render_asterisk import render_site
from provisioning.sandbox_site import sandbox_for
from provisioning.secrets import ensure_secrets

pytestmark = [pytest.mark.asterisk, pytest.mark.sipp]

SMALL = Path(__file__).parents[1] / "data" / "small"


@dataclass
class Lab:
    net: NetLab
    inv: Inventory
    province: AsteriskInstance
    gw: AsteriskInstance
    lss: AsteriskInstance
    workdir: Path


def _inventory(tmp: Path) -> Path:
    """The small province on private addresses: inside namespaces the lab owns."""
    text = (SMALL / "province.yaml").read_text()
    for lo, priv in (("127.201.", "10.201."), ("127.211.", "10.211."), ("127.212.", "10.212.")):
        text = text.replace(lo, priv)
    (tmp / "province.yaml").write_text(text)
    shutil.copy(SMALL / "secrets.yaml", tmp / "province.secrets.yaml")
    os.chmod(tmp / "province.secrets.yaml", 0o600)
    return tmp / "province.yaml"


@pytest.fixture
def lab(short_tmp: Path) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.fail("network namespaces need root (CI runs as root)")
    path = _inventory(short_tmp)
    inv = load_inventory(path)
    sec = ensure_secrets(inv, short_tmp / "province.secrets.yaml", create=False)
    hz, prov = inv.prefecture("HZ"), inv.province
    net = NetLab(tag=pysecrets.token_hex(2))
    started: list[AsteriskInstance] = []
    try:
        for sw in ("a", "b"):
            net.add_switch(sw, [getattr(prov, f"network_{sw}"), getattr(hz, f"network_{sw}")])
        # The CTI addresses live on the province node with nothing listening: refused at once.
        net.add_node("pbx", {sw: [prov.pbx.addr(sw), prov.cti.addr(sw)] for sw in ("a", "b")})
        net.add_node("gw", {sw: [hz.gateway.addr(sw)] for sw in ("a", "b")})
        net.add_node("pstn", {sw: [hz.pstn_gateway.addr(sw)] for sw in ("a", "b")})
        net.add_node("lss", {sw: [hz.lss.addr(sw)] for sw in ("a", "b")})
        asts = {}
        for node, name in (("pbx", "zj-pbx"), ("gw", "hz-gw"), ("lss", "hz-lss")):
            site = inv.site(name)
            ast = sandbox_for(site, render_site(inv, site, sec, prompt_dir=str(
                short_tmp / name / "sounds")), sec, short_tmp / name, netns=net.ns(node))
            started.append(ast)
            ast.start()
            asts[name] = ast
        yield Lab(net, inv, asts["zj-pbx"], asts["hz-gw"], asts["hz-lss"], short_tmp)
    finally:
        for ast in started:
            ast.stop()
        net.teardown()
    assert lab_namespaces(net.tag) == []  # nothing left behind


def _status(ast: AsteriskInstance, aor: str) -> str:
    return contacts(ast.cli("pjsip show contacts")).get(aor, "")


def _caller(lab: Lab, path: str) -> SippProcess:
    """A PSTN caller into HZ's gateway over switch ``path``, staying 16 s."""
    hz = lab.inv.prefecture("HZ")
    return SippProcess(scenario=scenario_path("uac_hold_bye.xml"),
                       workdir=lab.workdir / f"caller-{path}",
                       local_ip=str(hz.pstn_gateway.addr(path)),
                       remote=(str(hz.gateway.addr(path)), 5060), service=hz.dids[0],
                       pause_ms=16000, timeout=60, netns=lab.net.ns("pstn"),
                       keys={"caller": "057188880000", "audio": str(pcap("g711a.pcap"))})


def test_switch_a_cut_is_detected_and_new_calls_use_switch_b(lab: Lab) -> None:
    gw, province = lab.gw, lab.province
    wait_until(lambda: _status(gw, "province-a") == "Avail" == _status(gw, "province-b"),
               timeout=20, what="both paths to the province qualified")
    lab.net.set_link("gw", "a", up=False)
    cut = time.monotonic()
    wait_until(lambda: _status(gw, "province-a") == "Unavail", timeout=15,
               what="the dead path reported by qualify")
    detected = time.monotonic() - cut
    assert _status(gw, "province-b") == "Avail"
    print(f"switch A loss detected by qualify after {detected:.2f} s")  # informational

    caller = _caller(lab, "b")
    caller.start()
    wait_until(lambda: "PJSIP/gw-hz-b-" in province.cli("core show channels concise"),
               timeout=30, what="the call at the province, over switch B")
    assert "PJSIP/gw-hz-a-" not in province.cli("core show channels concise")
    result = caller.wait()
    assert (result.successful, result.failed) == (1, 0)

    lab.net.set_link("gw", "a", up=True)
    wait_until(lambda: _status(gw, "province-a") == "Avail", timeout=20,
               what="path A back in use after the link returns")


def test_a_wan_cut_sends_new_calls_to_the_local_survivable_server(lab: Lab) -> None:
    gw = lab.gw
    wait_until(lambda: _status(gw, "lss-a") == "Avail" == _status(gw, "province-a"),
               timeout=20, what="the gateway qualifying the province and its LSS")
    for sw in ("a", "b"):  # the province is gone from both switches
        lab.net.set_link("pbx", sw, up=False)
    wait_until(lambda: _status(gw, "province-a") == "Unavail" == _status(gw, "province-b"),
               timeout=15, what="both paths to the province reported dead")
    caller = _caller(lab, "a")
    caller.start()
    wait_until(lambda: "PJSIP/gw-a-" in lab.lss.cli("core show channels concise"),
               timeout=30, what="the call queued at the LSS")
    assert "lss-HZ" in lab.lss.cli("queue show lss-HZ")
    result = caller.wait()
    assert (result.successful, result.failed) == (1, 0)


def _is(ast: AsteriskInstance, aor: str, want: str) -> bool:
    return _status(ast, aor) == want


def _mode(gw: AsteriskInstance) -> str:
    for line in gw.cli("dialplan show globals").splitlines():
        if "PBXCTL_SURVIVABLE=" in line:
            return line.split("=", 1)[1].strip()
    return ""


def test_survivable_mode_holds_through_flapping_and_fails_back_after_the_hold_down(
        lab: Lab) -> None:
    gw, hz, hold = lab.gw, lab.inv.prefecture("HZ"), 4
    assert gw.ami is not None
    log = lab.workdir / "survive.log"
    with log.open("wb") as out:
        watcher = subprocess.Popen(
            ["ip", "netns", "exec", lab.net.ns("gw"), sys.executable, "-m", "pbxctl",
             "survive", "--ami-host", str(hz.gateway.a), "--hold-down", str(hold)],
            stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PBXCTL_AMI_SECRET": gw.ami.secret})
    try:
        wait_until(lambda: _status(gw, "province-a") == "Avail" == _status(gw, "province-b"),
                   timeout=20, what="both province paths up")
        for sw in ("a", "b"):
            lab.net.set_link("pbx", sw, up=False)
        wait_until(lambda: _mode(gw) == "1", timeout=15,
                   what="the watcher switching the gateway to survivable mode")
        caller = _caller(lab, "a")
        caller.start()
        wait_until(lambda: "PJSIP/gw-a-" in lab.lss.cli("core show channels concise"),
                   timeout=30, what="the call at the LSS")
        assert caller.wait().successful == 1
        # The WAN flaps: back, lost again within the hold-down, back for good.
        for up in (True, False, True):
            for sw in ("a", "b"):
                lab.net.set_link("pbx", sw, up=up)
            want = "Avail" if up else "Unavail"
            wait_until(functools.partial(_is, gw, "province-a", want), timeout=15,
                       what=f"qualify seeing the province {want}")
            assert _mode(gw) == "1"  # reachable again, but not yet for the hold-down
        wait_until(lambda: _mode(gw) == "0", timeout=hold + 10,
                   what="failback after the hold-down")
        switches = [line for line in log.read_text().splitlines() if line.startswith("mode ")]
        assert [s.split(":")[0] for s in switches] == ["mode survivable", "mode central"]
        caller = _caller(lab, "b")
        caller.start()
        wait_until(lambda: "PJSIP/gw-hz-" in lab.province.cli("core show channels concise"),
                   timeout=30, what="calls at the province again")
        assert caller.wait().successful == 1
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)
