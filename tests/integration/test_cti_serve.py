"""`pbxctl agi serve` and `pbxctl esl serve` as the systemd units run them: every setting from the
config file (two listen addresses, no 0.0.0.0), ready, answering, and a clean exit on SIGTERM.

The ESL peer is the protocol stand-in (tests/fakes): no FreeSWITCH runs in this suite yet."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from pathlib import Path

from pbxctl.core import chanvars as V
from pbxctl.core.net import free_port
from pbxctl.core.procs import wait_until
from tests.fakes.fake_freeswitch import FakeChannel, call_outbound

ADDRESSES = ("127.0.0.1", "127.0.0.2")  # path A and path B


def _start(noun: str, tmp_path: Path, port: int) -> tuple[subprocess.Popen[bytes], Path]:
    cfg = tmp_path / "pbxctl.yaml"
    cfg.write_text(f"{noun}:\n  host: [{', '.join(ADDRESSES)}]\n  port: {port}\n  grace: 2\n")
    log = tmp_path / f"{noun}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pbxctl", noun, "serve", "--config",
                                 str(cfg)], stdout=out, stderr=subprocess.STDOUT,
                                cwd=tmp_path)
    wait_until(lambda: "listening on" in log.read_text() or proc.poll() is not None,
               timeout=30, what=f"{noun} serve to listen")
    assert proc.poll() is None, log.read_text()
    return proc, log


def _stop(proc: subprocess.Popen[bytes], log: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, log.read_text()


def test_agi_serve_takes_its_addresses_from_the_config_file(tmp_path: Path) -> None:
    from ivr_scripts.health import report

    port = free_port()
    proc, log = _start("agi", tmp_path, port)
    try:
        for host in ADDRESSES:
            # A whole ping session on each address (report() raises on anything else), and
            # the server's own counters came back with it.
            _, counters = report(host, port, timeout=5.0)
            assert counters["active"] >= 1, counters  # this ping itself was running
        assert f"{ADDRESSES[0]}:{port}, {ADDRESSES[1]}:{port}" in log.read_text()
    finally:
        _stop(proc, log)


def test_esl_serve_is_a_real_command_that_runs_the_handlers(tmp_path: Path) -> None:
    port = free_port()
    proc, log = _start("esl", tmp_path, port)
    try:
        for host in ADDRESSES:
            ch = FakeChannel(uuid=str(uuid.uuid4()), variables={"pbxctl_route": "ping"})
            call_outbound(host, port, ch, timeout=10)
            assert ch.variables.get(V.STATUS) == V.STATUS_OK, log.read_text()
        ch = FakeChannel(uuid=str(uuid.uuid4()), variables={"pbxctl_route": "nope"})
        call_outbound(ADDRESSES[1], port, ch, timeout=10)
        assert (ch.variables[V.STATUS], ch.variables[V.FAIL_REASON]) == ("FAIL", "unknown-route")
    finally:
        _stop(proc, log)
