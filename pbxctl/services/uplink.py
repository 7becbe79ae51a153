"""Active-backup uplinks for a server on two switches (what the bonding driver would do).

Every server sits on switch A and switch B (the patent's hot-standby pair), which are joined
by an inter-switch link. Its addresses live on ``host``, whose veth peer is a port of a
local bridge ``br0``; the bridge's other ports are the links to the switches. Those are
*isolated* (the server never forwards between the switches, so no loop can form even for a
moment); the active one floods and learns, a backup is *locked* (drops what it receives)
and floods nothing. When the active link loses carrier another takes over within
milliseconds, with the same MAC and the same addresses, and a gratuitous ARP re-teaches the
switches: calls already up keep their SIP dialogs and RTP. When the primary link returns it
is used again (as bonding's ``primary_reselect=always``).

Here because the machines this runs on have no bonding/team driver; on a host that has one,
``mode=active-backup miimon=100 primary=…`` does the same job. The choice is the pure
:func:`choose`; :func:`run` follows ``ip monitor link`` (events, no polling) and applies it
with ``bridge link set``. Each change is logged with a wall-clock stamp so drills can time
it.
"""

from __future__ import annotations

import json
import logging
import re
import select
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pbxctl.core.errors import CommandFailed

log = logging.getLogger("pbxctl.services.uplink")

ACTIVE_FLAGS = ("locked", "off", "learning", "on", "flood", "on", "mcast_flood", "on",
                "bcast_flood", "on")
BACKUP_FLAGS = ("locked", "on", "learning", "off", "flood", "off", "mcast_flood", "off",
                "bcast_flood", "off")
HOST_DEV = "host"
_LINK_LINE = re.compile(r"^\d+:\s+([^:@\s]+)(?:@\S+)?:\s+<([^>]*)>")


def choose(ports: Sequence[str], carrier: dict[str, bool], active: str | None) -> str | None:
    """The port to forward on: the first (primary) that has carrier; if none has, keep the
    current one (nothing better exists, and flipping would only add churn)."""
    for port in ports:
        if carrier.get(port):
            return port
    return active


def parse_link_line(line: str) -> tuple[str, bool] | None:
    """``ip -o link``/``ip monitor link`` line → (interface, has carrier)."""
    m = _LINK_LINE.match(line.strip())
    if not m:
        return None
    flags = m.group(2).split(",")
    return m.group(1), "LOWER_UP" in flags and "NO-CARRIER" not in flags


@dataclass
class Change:
    active: str
    previous: str | None
    reason: str
    at: float  # time.time(): drills compare it with the moment they cut a link


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)


def read_carrier(ports: Sequence[str]) -> dict[str, bool]:
    res = _run(["ip", "-o", "link", "show"])
    if res.returncode != 0:
        raise CommandFailed(f"ip link show: {res.stderr.strip()}")
    seen = dict(filter(None, (parse_link_line(line) for line in res.stdout.splitlines())))
    missing = [p for p in ports if p not in seen]
    if missing:
        raise CommandFailed(f"uplink port(s) not found: {', '.join(missing)}",
                            hint="check --ports against `ip link`")
    return {p: seen[p] for p in ports}


def _bridge_port(port: str, flags: Sequence[str]) -> None:
    res = _run(["bridge", "link", "set", "dev", port, *flags])
    if res.returncode != 0:
        raise CommandFailed(f"bridge link set dev {port}: {res.stderr.strip()}",
                            hint="the port must be enslaved to the server's bridge")


def apply(ports: Sequence[str], active: str) -> None:
    for port in ports:  # backups first: never two ports flooding, even isolated ones
        if port != active:
            _bridge_port(port, ("isolated", "on", *BACKUP_FLAGS))
            # What br0 learned behind a backup must go, or replies would still leave by it.
            _run(["ip", "link", "set", "dev", port, "type", "bridge_slave", "fdb_flush"])
    _bridge_port(active, ("isolated", "on", *ACTIVE_FLAGS))
    announce(HOST_DEV)


def announce(dev: str) -> None:
    """Gratuitous ARP for each of ``dev``'s addresses: the switches learn the new port now,
    not at the next frame the server happens to send."""
    res = _run(["ip", "-j", "addr", "show", "dev", dev])
    if res.returncode != 0:
        return  # a server without the lab's host device: nothing to announce from
    info = json.loads(res.stdout or "[]")
    if not info:
        return
    mac = bytes.fromhex(info[0]["address"].replace(":", ""))
    addrs = [a["local"] for a in info[0].get("addr_info", []) if a.get("family") == "inet"]
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806)) as sock:
        sock.bind((dev, 0))
        for addr in addrs:
            ip = socket.inet_aton(addr)
            arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, ip, b"\0" * 6, ip)
            sock.send(b"\xff" * 6 + mac + struct.pack("!H", 0x0806) + arp)


def _describe(carrier: dict[str, bool]) -> str:
    return ", ".join(f"{p} {'up' if up else 'DOWN'}" for p, up in carrier.items())


# Gratuitous ARPs repeated after a change (seconds after it), as bonding's num_grat_arp with
# peer_notif_delay: one announcement lost while a switch port settles would leave a switch
# forwarding to the dead side until the host happens to send through it again.
REANNOUNCE_AFTER = (0.2, 0.6, 1.5, 3.0)


def run(ports: Sequence[str], *, stop: threading.Event,
        on_change: Callable[[Change], None] | None = None, tick: float = 0.5) -> None:
    """Keep the right port forwarding until ``stop`` is set."""
    carrier = read_carrier(ports)
    active = choose(ports, carrier, None) or ports[0]
    apply(ports, active)
    again = [time.monotonic() + d for d in REANNOUNCE_AFTER]
    _report(Change(active, None, f"start: {_describe(carrier)}", time.time()), on_change)
    mon = subprocess.Popen(["ip", "-o", "monitor", "link"], stdout=subprocess.PIPE, text=True)
    try:
        assert mon.stdout is not None
        # Re-read once the monitor is listening: a change in between would otherwise be lost.
        carrier = read_carrier(ports)
        while not stop.is_set():
            now = time.monotonic()
            if again and again[0] <= now:
                again = [t for t in again if t > now]
                announce(HOST_DEV)
            wait = min(tick, max(0.0, again[0] - now)) if again else tick
            ready, _, _ = select.select([mon.stdout], [], [], wait)
            if ready:
                line = mon.stdout.readline()
                if not line:
                    raise CommandFailed("`ip monitor link` ended")
                got = parse_link_line(line)
                if got is None or got[0] not in carrier:
                    continue
                carrier[got[0]] = got[1]
            best = choose(ports, carrier, active)
            if best is not None and best != active:
                apply(ports, best)
                again = [time.monotonic() + d for d in REANNOUNCE_AFTER]
                change = Change(best, active, _describe(carrier), time.time())
                active = best
                _report(change, on_change)
    finally:
        mon.terminate()
        mon.wait(timeout=5)


def _report(change: Change, on_change: Callable[[Change], None] | None) -> None:
    log.warning("uplink active=%s (was %s): %s", change.active, change.previous, change.reason)
    if on_change:
        on_change(change)
