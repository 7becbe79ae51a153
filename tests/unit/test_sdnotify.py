"""`pbxctl agi serve` as systemd runs it (Type=notify, WatchdogSec): READY, then WATCHDOG
messages fed by a real AGI self-ping; SIGTERM gives STOPPING and a clean exit."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from pbxctl.core.net import free_port


def test_ready_and_watchdog_fed_by_self_check(tmp_path: Path) -> None:
    addr = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(addr)
    sock.settimeout(20)
    env = {**os.environ, "NOTIFY_SOCKET": addr, "WATCHDOG_USEC": "400000"}
    proc = subprocess.Popen([sys.executable, "-m", "pbxctl", "agi", "serve", "--port",
                             str(free_port())], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        seen = [sock.recv(100).decode() for _ in range(3)]
        assert seen == ["READY=1", "WATCHDOG=1", "WATCHDOG=1"]
        proc.send_signal(signal.SIGTERM)
        while (msg := sock.recv(100).decode()) == "WATCHDOG=1":
            pass
        assert msg == "STOPPING=1"
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
