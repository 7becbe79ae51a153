"""Health check of a FastAGI server: speak AGI to it as Asterisk would, on the ping route.

This catches what a TCP connect cannot: a server that accepts but whose handlers are stuck.
"""

from __future__ import annotations

import socket
import time

from pbxctl.core import chanvars as V
from pbxctl.core.errors import ServiceStartError, WaitTimeout


def check(host: str, port: int, *, timeout: float = 3.0) -> float:
    """Milliseconds for a full ping session; raises a typed error with what went wrong."""
    return report(host, port, timeout=timeout)[0]


def report(host: str, port: int, *, timeout: float = 3.0) -> tuple[float, dict[str, int]]:
    """The ping session's milliseconds and the counters the server reported with it."""
    started = time.monotonic()
    counters: dict[str, int] = {}
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise ServiceStartError(f"FastAGI {host}:{port} refused or unreachable: {exc}",
                                hint="is `pbxctl agi serve` running there?") from exc
    with sock:
        sock.settimeout(timeout)
        sock.sendall(b"agi_network: yes\nagi_network_script: ping\nagi_request: "
                     b"agi://health/ping\nagi_uniqueid: health-check\n\n")
        reader = sock.makefile("rb")
        try:
            line = reader.readline(1024)
            health = f'SET VARIABLE "{V.HEALTH}" "'.encode()
            if line.startswith(health):
                for pair in line[len(health):].rstrip(b'"\r\n').decode().split():
                    key, _, value = pair.partition("=")
                    if value.isdigit():
                        counters[key] = int(value)
                sock.sendall(b"200 result=1\n")
                line = reader.readline(1024)
            expected = f'SET VARIABLE "{V.STATUS}" "{V.STATUS_OK}"'.encode()
            if not line.startswith(expected):
                raise ServiceStartError(f"FastAGI {host}:{port} answered {line[:80]!r}, "
                                        f"not {expected.decode()}")
            sock.sendall(b"200 result=1\n")
        except TimeoutError as exc:
            raise WaitTimeout(f"FastAGI {host}:{port} accepted but did not run ping within "
                              f"{timeout:g}s", hint="the server may be hung: restart it") from exc
    return (time.monotonic() - started) * 1000, counters
