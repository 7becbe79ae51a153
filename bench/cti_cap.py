"""The CTI's session cap, measured: `pbxctl agi serve` (a real process) with N sessions parked in
a handler (each waiting for Asterisk's reply), its RSS before and after, and what happens to
the next connection past the cap.

    .venv/bin/python -m bench.cti_cap [--sessions 4000]
"""

from __future__ import annotations

import argparse
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pbxctl.core.net import free_port
from pbxctl.core.procs import wait_until

ENV = (b"agi_network: yes\nagi_network_script: welcome\nagi_uniqueid: 1.1\n"
       b"agi_dnid: 95598\n\n")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=4000)
    args = ap.parse_args()
    n = args.sessions
    resource.setrlimit(resource.RLIMIT_NOFILE, (n + 1024, n + 1024))
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="pbxctl-cap-"))
    cfg = work / "pbxctl.yaml"
    cfg.write_text(f"agi:\n  host: [127.0.0.1]\n  port: {port}\n  max_sessions: {n}\n"
                   f"  fixed_welcome: beep\n  grace: 1\n")
    log = (work / "agi.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "pbxctl", "agi", "serve", "--config",
                             str(cfg)], stdout=log, stderr=log)
    wait_until(lambda: "listening on" in (work / "agi.log").read_text(), timeout=30,
               what="agi serve")
    idle = rss_kb(proc.pid)
    held = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(ENV)
        held.append(s)
    for s in held:  # each session has sent its first command: it is parked in the handler
        s.recv(200)
    parked = rss_kb(proc.pid)
    extra = socket.create_connection(("127.0.0.1", port), timeout=10)
    extra.settimeout(5)
    started = time.monotonic()
    refused = extra.recv(10) == b""
    took_ms = (time.monotonic() - started) * 1000
    print(f"{n:,} sessions parked: agi serve RSS {idle / 1024:.1f} MB → {parked / 1024:.1f} MB "
          f"({(parked - idle) / n:.1f} kB per session); session {n + 1:,}: "
          f"{'closed at once' if refused else 'served'} in {took_ms:.1f} ms")
    for s in [*held, extra]:
        s.close()
    proc.terminate()
    try:
        proc.wait(timeout=60)  # thousands of threads to end
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
