"""Loopback addresses and ports for sandboxed services."""

from __future__ import annotations

import ipaddress
import socket

from pbxctl.core.errors import InputError, PortInUseError


def require_loopback(address: str) -> str:
    """Sandboxes bind only to 127.0.0.0/8: nothing we start may listen elsewhere."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError as exc:
        raise InputError(f"not an IP address: {address!r}") from exc
    if not ip.is_loopback:
        raise InputError(f"sandbox address {address} is not a loopback address (127.0.0.0/8)")
    return address


def free_port(address: str = "127.0.0.1", *, kind: str = "tcp") -> int:
    """A port that is free for both TCP and UDP on ``address`` right now."""
    for _ in range(50):
        sock_type = socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, sock_type) as s:
            s.bind((address, 0))
            port = int(s.getsockname()[1])
        if port_is_free(address, port):
            return port
    raise PortInUseError(f"no free port found on {address} after 50 tries")


def port_is_free(address: str, port: int) -> bool:
    for sock_type in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, sock_type) as s:
            if sock_type == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((address, port))
            except OSError:
                return False
    return True


def require_free(address: str, port: int, *, what: str) -> None:
    if not port_is_free(address, port):
        raise PortInUseError(
            f"{what}: port {address}:{port} is already in use",
            hint=f"stop what holds it (`ss -lntup | grep :{port}`) or choose another port",
        )


def tcp_accepts(address: str, port: int, *, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False
