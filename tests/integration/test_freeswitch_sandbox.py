"""A real FreeSWITCH 1.10.12, built by `make setup` from the vendored upstream sources, runs in a
private sandbox: every module pbxctl uses loads, the event socket answers with our password
(and refuses another), the SIP profile runs, a real SIPp call is answered, and SIGTERM ends it.
The first step of engine parity (issue: FreeSWITCH for real); the province on FreeSWITCH is
not proven yet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pbxctl.core.errors import ServiceStartError
from pbxctl.core.procs import pid_alive
from pbxctl.lab.sandbox.freeswitch import FreeSwitchInstance
from pbxctl.lab.sandbox.sipp import SippProcess, pcap, scenario_path
from pbxctl.pbx.esl_inbound import InboundEsl
from pbxctl.pbx.freeswitch_modules import MODULES

pytestmark = [pytest.mark.freeswitch]


@pytest.fixture(scope="module")
def fs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreeSwitchInstance]:
    instance = FreeSwitchInstance(name="fs", root=tmp_path_factory.mktemp("fs"))
    instance.start()
    yield instance
    instance.stop()


def test_it_runs_every_module_pbxctl_uses(fs: FreeSwitchInstance) -> None:
    with fs.esl() as esl:
        assert "FreeSWITCH Version 1.10.12-release" in esl.api("version")
        assert "is ready" in esl.api("status")
        for mod in MODULES:
            assert esl.api(f"module_exists {mod}").strip() == "true", mod
        assert any("lab" in line and "RUNNING" in line for line in esl.api("sofia status")
                   .splitlines())


def test_the_event_socket_refuses_another_password(fs: FreeSwitchInstance) -> None:
    with pytest.raises(ServiceStartError, match="login refused"):
        InboundEsl(host=fs.address, port=fs.esl_port, password="ClueCon", timeout=5).connect()


def test_a_sipp_call_is_answered(fs: FreeSwitchInstance, tmp_path: Path) -> None:
    sipp = SippProcess(scenario=scenario_path("uac_hold_bye.xml"), workdir=tmp_path,
                       local_ip=fs.address, remote=(fs.address, fs.sip_port), service="5000",
                       timeout=60, pause_ms=2000,
                       keys={"caller": "057188880000", "audio": str(pcap("g711a.pcap"))})
    sipp.start()
    result = sipp.wait()
    assert result.successful == 1 and result.failed == 0, result


def test_sigterm_ends_it(tmp_path: Path) -> None:
    instance = FreeSwitchInstance(name="fs-stop", root=tmp_path)
    instance.start()
    pid = instance.pid
    assert pid is not None and pid_alive(pid)
    instance.stop(grace=10)
    assert not pid_alive(pid)


def test_host_doctor_shows_the_build_its_modules_and_that_it_starts() -> None:
    import io
    import json

    from pbxctl.cli import main

    out, err = io.StringIO(), io.StringIO()
    main(["host", "doctor", "--start-freeswitch", "--json"], environ={}, stdout=out,
         stderr=err)  # the exit code is about Asterisk and the tools: not this test's point
    fs = json.loads(out.getvalue())["freeswitch"]
    assert fs["present"] and fs["version"].startswith("1.10.12"), fs
    assert fs["modules_missing"] == []
    assert fs["starts"]["ok"] is True and fs["starts"]["seconds"] > 0, fs


def test_the_upstream_pins_are_the_trees_of_the_vendored_sources() -> None:
    """Without ../shared, make setup fetches the upstream refs and accepts each only if its
    exported tree hashes to the pin (scripts/fetch-freeswitch-sources.sh). The fetch cannot
    run here (no route to GitHub); the pins are checked against the very sources that are
    built and tested, so a fetched build is a build of the same code."""
    import subprocess

    root = Path(__file__).parents[2]
    vendor = root.parent / "shared" / "vendor" / "freeswitch"
    assert (vendor / "SHA256SUMS").is_file(), f"no vendored FreeSWITCH sources at {vendor}"
    res = subprocess.run([str(root / "scripts" / "fetch-freeswitch-sources.sh"), "--check",
                          str(vendor)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("\nok ") + res.stdout.startswith("ok ") == 3, res.stdout
