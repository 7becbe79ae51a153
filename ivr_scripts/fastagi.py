"""The FastAGI server: one thread per session, bounded reads; sessions run through the one
dispatcher in :mod:`ivr_scripts.session` (route, budget, status and failure reporting)."""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from ivr_scripts.agi import AgiSession
from ivr_scripts.call import CallHangup, CallTimeout, ProtocolError
from ivr_scripts.registry import HandlerContext, Registry, route_of
from ivr_scripts.session import Outcome, log_event, run_session

log = logging.getLogger("pbxctl.agi")


@dataclass(frozen=True)
class AgiServerConfig:
    host: str = "127.0.0.1"
    port: int = 4573
    backlog: int = 1024
    env_timeout: float = 5.0
    read_timeout: float = 60.0


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False

    def __init__(self, owner: FastAgiServer, config: AgiServerConfig) -> None:
        self.request_queue_size = config.backlog
        self.owner = owner
        super().__init__((config.host, config.port), _RequestHandler, bind_and_activate=True)


class _RequestHandler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.server.owner._session(self.request)


class FastAgiServer:
    """``start()`` binds and serves in a background thread; ``shutdown()`` refuses new
    sessions and waits (bounded) for running ones."""

    def __init__(self, *, registry: Registry, context: HandlerContext,
                 config: AgiServerConfig = AgiServerConfig()) -> None:
        self.registry = registry
        self.context = context
        self.config = config
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._active = 0
        self._cond = threading.Condition()
        self.stats = {"sessions": 0, "ok": 0, "failed": 0, "hangups": 0, "protocol_errors": 0,
                      "timeouts": 0}

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._server = _Server(self, self.config)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.2}, name="fastagi",
                                        daemon=True)
        self._thread.start()

    def serve_forever(self) -> None:
        self._server = _Server(self, self.config)
        self._server.serve_forever(poll_interval=0.2)

    def shutdown(self, *, grace: float = 10.0) -> int:
        """Stop accepting, wait up to ``grace`` s for running sessions; returns those left."""
        if self._server is None:
            return 0
        self._server.shutdown()
        self._server.server_close()
        deadline = time.monotonic() + grace
        with self._cond:
            while self._active and time.monotonic() < deadline:
                self._cond.wait(timeout=max(0.0, deadline - time.monotonic()))
            return self._active

    def _count(self, key: str) -> None:
        with self._cond:
            self.stats[key] += 1

    def _session(self, sock: socket.socket) -> None:
        with self._cond:
            self._active += 1
            self.stats["sessions"] += 1
        try:
            self._run_session(sock)
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def _run_session(self, sock: socket.socket) -> None:
        try:
            call = AgiSession.open(sock, env_timeout=self.config.env_timeout,
                                   read_timeout=self.config.read_timeout)
        except (CallHangup, CallTimeout, ProtocolError) as exc:
            self._count("protocol_errors")
            log_event("agi_bad_session", error=str(exc))
            return
        route = route_of(call.env.get("agi_network_script", ""))

        @contextlib.contextmanager
        def budget(seconds: float) -> Iterator[None]:
            # A thread cannot be interrupted: over budget, cut the socket. Asterisk continues
            # the dialplan with our status variable unset, i.e. on its fallback; the stuck
            # handler fails on its next socket operation.
            timer = threading.Timer(seconds, self._expire, args=(sock, call.uniqueid, route))
            timer.daemon = True
            timer.start()
            try:
                yield
            finally:
                timer.cancel()

        outcome = run_session(call, route, registry=self.registry, context=self.context,
                              budget=budget, transport="agi")
        self._count(_STAT[outcome])

    def _expire(self, sock: socket.socket, uniqueid: str, route: str) -> None:
        self._count("timeouts")
        log_event("agi_handler_timeout", uniqueid=uniqueid, route=route)
        with contextlib.suppress(OSError):  # the session may have ended meanwhile
            sock.shutdown(socket.SHUT_RDWR)


# Outcome → the counter it bumps (names kept from the server's first stats).
_STAT = {Outcome.OK: "ok", Outcome.FAILED: "failed", Outcome.HANGUP: "hangups",
         Outcome.TIMEOUT: "failed"}
