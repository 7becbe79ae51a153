"""uvicorn for the console: tells the app it is stopping before uvicorn waits for open
connections, so event streams (which never end by themselves) close at once and a stop is
quick and clean instead of a cancellation after the graceful-shutdown timeout."""

from __future__ import annotations

import socket

import uvicorn

from pbxctl.console.app import ConsoleDeps


class ConsoleServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, *, deps: ConsoleDeps) -> None:
        super().__init__(config)
        self.deps = deps

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.deps.stopping.set()
        await super().shutdown(sockets)
