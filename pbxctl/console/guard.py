"""Who may connect at all: an ASGI wrapper refusing clients outside the allowed networks
before any route (or the reverse proxy's forwarded address, when the proxy is trusted)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any

log = logging.getLogger("pbxctl.console")
Network = IPv4Network | IPv6Network


class AllowClients:
    def __init__(self, app: Any, allow: Sequence[Network]) -> None:
        self.app = app
        self.allow = tuple(allow)

    def allowed(self, host: str | None) -> bool:
        try:
            addr = ip_address(host or "")
        except ValueError:
            return False
        return any(addr in net for net in self.allow)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            host = client[0] if client else None
            if not self.allowed(host):
                log.warning("refused a client outside console.allow: %s", host)
                await send({"type": "http.response.start", "status": 403,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
                await send({"type": "http.response.body",
                            "body": b"403: this address may not use the console\n"})
                return
        await self.app(scope, receive, send)
