"""The CTI trusts no one, with a real `pbxctl agi serve` process and real sockets:

- a peer that is not a PBX of the inventory is closed before a byte is read, counted, and shows
  in `pbxctl agi health`; an allowed PBX cannot speak for another site;
- 1,000 slowloris sockets and an endless-line peer do not stop a healthy session from being
  served (its latency is printed, not asserted), and the endless line ends its session;
- past the session cap new connections are closed at once and counted;
- with its file descriptors used up the server backs off instead of spinning.
"""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr_scripts.health import report
from pbxctl.cli import main
from pbxctl.core.net import free_port
from pbxctl.core.procs import wait_until

SMALL = Path(__file__).parents[1] / "data" / "small" / "province.yaml"
HZ_GW = "127.211.1.10"      # a gateway of the small inventory (path A)
STRANGER = "127.99.0.1"     # loopback, but no PBX of the inventory
CTI = "127.201.1.20"


class Cti:
    def __init__(self, tmp_path: Path, *, extra: str = "", nofile: int = 8192) -> None:
        self.port = free_port(CTI)
        cfg = tmp_path / "pbxctl.yaml"
        cfg.write_text(f"agi:\n  host: [{CTI}]\n  port: {self.port}\n  inventory: {SMALL}\n"
                       f"  allow: [127.0.0.1]\n  grace: 1\n{extra}")
        self.log = tmp_path / "agi.log"

        def limits() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pbxctl", "agi", "serve", "--config", str(cfg)],
                stdout=out, stderr=subprocess.STDOUT, preexec_fn=limits, cwd=tmp_path)
        wait_until(lambda: "listening on" in self.log.read_text() or self.proc.poll() is not None,
                   timeout=30, what="agi serve to listen")
        assert self.proc.poll() is None, self.log.read_text()

    def counters(self) -> dict[str, int]:
        return report(CTI, self.port, timeout=10)[1]

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


@pytest.fixture
def cti(tmp_path: Path) -> Iterator[Cti]:
    server = Cti(tmp_path)
    yield server
    server.stop()


def _connect(source: str, port: int) -> socket.socket:
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(10)
    s.connect((CTI, port))
    return s


def _session(source: str, port: int, route: str, params: str = "") -> list[str]:
    """One AGI session as a PBX at ``source`` would run it; the commands the CTI sent."""
    with _connect(source, port) as s:
        s.sendall(f"agi_network: yes\nagi_network_script: {route}?{params}\n"
                  f"agi_uniqueid: 1.{time.monotonic_ns()}\nagi_callerid: 0571\n"
                  f"agi_dnid: 057195598\n\n".encode())
        reader, commands = s.makefile("rb"), []
        while line := reader.readline(4096).decode():
            commands.append(line.strip())
            s.sendall(b"200 result=1\n")
    return commands


def test_a_stranger_is_closed_unread_counted_and_reported(cti: Cti) -> None:
    for _ in range(3):
        with _connect(STRANGER, cti.port) as s:
            s.sendall(b"agi_network: yes\n")
            assert s.recv(100) == b""  # closed, no reply
    assert any("PBXCTL_STATUS\" \"OK" in c for c in _session(HZ_GW, cti.port, "ping"))
    assert cti.counters()["refused_peers"] == 3
    out, err = io.StringIO(), io.StringIO()
    assert main(["agi", "health", "--host", CTI, "--port", str(cti.port), "--json"],
                environ={}, stdout=out, stderr=err) == 0
    assert json.loads(out.getvalue())["refused_peers"] == 3
    # One log line for the stranger, not one per attempt.
    assert cti.log.read_text().count(f"refused {STRANGER}") == 1


def test_an_allowed_pbx_cannot_speak_for_another_site(cti: Cti) -> None:
    own = _session(HZ_GW, cti.port, "welcome", "site=hz-gw&pref=HZ")
    other = _session(HZ_GW, cti.port, "welcome", "site=nb-gw&pref=NB")
    assert any('"PBXCTL_STATUS" "OK"' in c for c in own)
    assert any('"PBXCTL_FAIL_REASON" "peer-not-site"' in c for c in other)
    assert not any('"PBXCTL_STATUS" "OK"' in c for c in other)


def test_slowloris_and_an_endless_line_do_not_starve_a_healthy_session(cti: Cti) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4096), max(hard, 4096)))
    slow = []
    try:
        for _ in range(1000):
            s = _connect(HZ_GW, cti.port)
            s.sendall(b"agi_network: yes\n")  # ... and then nothing
            slow.append(s)
        endless = _connect(HZ_GW, cti.port)
        endless.settimeout(30)
        closed_by_server = False
        try:
            for _ in range(20000):  # at most 80 MB: far past any bounded read
                endless.sendall(b"x" * 4096)
        except (BrokenPipeError, ConnectionResetError):
            closed_by_server = True
        assert closed_by_server, "an endless line must end its session"
        started = time.monotonic()
        commands = _session(HZ_GW, cti.port, "ping")
        latency_ms = (time.monotonic() - started) * 1000
        assert any('"PBXCTL_STATUS" "OK"' in c for c in commands)
        print(f"\nhealthy ping under 1,000 slowloris + an endless line: {latency_ms:.1f} ms")
        counters = cti.counters()
        assert counters["protocol_errors"] >= 1 and counters["over_capacity"] == 0
    finally:
        for s in slow:
            s.close()
    # 1,001 bad sessions from one peer: one WARNING line about it, no traceback.
    wait_until(lambda: cti.counters()["protocol_errors"] >= 1001, timeout=60,
               what="the slowloris sessions to end")
    log = cti.log.read_text()
    assert log.count(f"bad AGI session from {HZ_GW}") == 1 and "Traceback" not in log


def test_past_the_cap_new_connections_are_closed_at_once(tmp_path: Path) -> None:
    server = Cti(tmp_path, extra="  max_sessions: 20\n")
    held = []
    try:
        for _ in range(20):
            s = _connect(HZ_GW, server.port)
            s.sendall(b"agi_network: yes\n")
            held.append(s)
        # Accepts are admitted in order: these five come after the twenty that fill the cap.
        refused = 0
        for _ in range(5):
            with _connect(HZ_GW, server.port) as s:
                s.settimeout(2)
                refused += s.recv(10) == b""
        assert refused == 5
        for s in held:
            s.close()
        wait_until(lambda: _ok(server), timeout=15, what="slots to free up")
        assert server.counters()["over_capacity"] >= 5
    finally:
        for s in held:
            s.close()
        server.stop()


def _ok(server: Cti) -> bool:
    try:
        server.counters()
        return True
    except Exception:  # noqa: BLE001 -- refused while the slots are still held
        return False


def test_out_of_file_descriptors_backs_off_instead_of_spinning(tmp_path: Path) -> None:
    server = Cti(tmp_path, nofile=64)
    held = []
    try:
        before = server.cpu_seconds()
        started = time.monotonic()
        for _ in range(80):  # more than the server can accept
            s = _connect(HZ_GW, server.port)
            held.append(s)
        # The sessions it accepted end at their environment deadline (5 s): wait for that.
        wait_until(lambda: any(_closed(s) for s in held), timeout=30,
                   what="the server to end the silent sessions")
        used = server.cpu_seconds() - before
        window = time.monotonic() - started
        print(f"\nCTI CPU while out of descriptors: {used:.2f} s over {window:.1f} s")
        assert used < window / 2, "the accept loop spins on EMFILE"
        assert "out of file descriptors" in server.log.read_text()
    finally:
        for s in held:
            s.close()
        server.stop()


def _closed(s: socket.socket) -> bool:
    s.settimeout(0.01)
    try:
        return s.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True
