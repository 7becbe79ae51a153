"""systemd notifications (READY, WATCHDOG) without a dependency: a datagram to NOTIFY_SOCKET.

The watchdog is fed only while a real AGI ping to our own server succeeds, so systemd
restarts a server that still accepts connections but no longer runs handlers.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping

log = logging.getLogger("pbxctl.agi")


def notify(message: str, *, environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    address = env.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.sendto(message.encode(), address)
        except OSError as exc:
            log.warning("sd_notify %s failed: %s", message, exc)
            return False
    return True


def start_watchdog(healthy: Callable[[], bool], *, environ: Mapping[str, str] | None = None
                   ) -> threading.Event | None:
    """Feed systemd's watchdog at half its period while ``healthy()``; returns a stop event."""
    env = os.environ if environ is None else environ
    usec = int(env.get("WATCHDOG_USEC", "0") or 0)
    if usec <= 0:
        return None
    stop = threading.Event()
    period = usec / 1e6 / 2

    def loop() -> None:
        while not stop.wait(period):
            if healthy():
                notify("WATCHDOG=1", environ=env)
            else:
                log.error("self-check failed: not feeding the watchdog")

    threading.Thread(target=loop, name="watchdog", daemon=True).start()
    return stop
