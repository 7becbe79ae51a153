"""Count what crosses a node's link, by kind: SIP, AGI (FastAGI), RTP, other.

The tour's proof of "central control, local playback": during a call, the bytes between a
prefecture's gateway and the province are control (AGI, SIP qualify) and no audio, while
the caller hears prompts from the gateway's disk. A raw packet socket on the node's "host"
interface sees every frame of the node's addresses; run inside the node's namespace:

    ip netns exec NS python -m pbxctl.lab.wanmeter --iface host --peer 10.211.1.10 …

It counts until SIGTERM, then prints one JSON object. Linux only (AF_PACKET), root.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import signal
import socket
import struct
import sys
import threading
from dataclasses import asdict, dataclass

ETH_P_ALL = 0x0003
SIP_PORT = 5060
AGI_PORT = 4573


@dataclass
class Counts:
    sip: int = 0
    agi: int = 0
    rtp: int = 0
    other: int = 0
    packets: int = 0


def classify(frame: bytes, peers: set[str]) -> tuple[str, int] | None:
    """(kind, bytes) of one Ethernet frame to or from a peer; None for anything else."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    proto = ip[9]
    src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
    if peers and src not in peers and dst not in peers:
        return None
    size = len(frame)
    if proto not in (6, 17) or len(ip) < ihl + 4:
        return ("other", size)
    sport, dport = struct.unpack_from(">HH", ip, ihl)
    ports = {sport, dport}
    if SIP_PORT in ports:
        return ("sip", size)
    if proto == 6 and AGI_PORT in ports:
        return ("agi", size)
    if proto == 17:
        return ("rtp", size)  # every other UDP flow of a PBX is media
    return ("other", size)


def count(iface: str, peers: set[str], stop: threading.Event) -> Counts:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((iface, 0))
    sock.settimeout(0.2)
    counts = Counts()
    try:
        while not stop.is_set():
            try:
                frame, addr = sock.recvfrom(65535)
            except TimeoutError:
                continue
            if addr[2] == socket.PACKET_OUTGOING or addr[2] == socket.PACKET_HOST:
                hit = classify(frame, peers)
                if hit:
                    kind, size = hit
                    setattr(counts, kind, getattr(counts, kind) + size)
                    counts.packets += 1
    finally:
        sock.close()
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pbxctl.lab.wanmeter")
    parser.add_argument("--iface", default="host")
    parser.add_argument("--peer", action="append", default=[],
                        help="count only traffic to or from this address (repeatable)")
    args = parser.parse_args(argv)
    peers = {str(ipaddress.ip_address(p)) for p in args.peer}
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("counting", flush=True, file=sys.stderr)
    result = count(args.iface, peers, stop)
    print(json.dumps(asdict(result)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
