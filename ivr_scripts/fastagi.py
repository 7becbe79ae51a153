"""The FastAGI server: one thread per session, bounded reads, one failure path.

Every session ends in exactly one of:
- handler ran: ``PBXCTL_STATUS=OK``
- handler raised :class:`DialplanBreak` or any error, or the route is unknown:
  ``PBXCTL_STATUS=FAIL`` and ``PBXCTL_FAIL_REASON=<token>``; the dialplan goes to its fallback
- the caller hung up / the peer vanished: nothing more is sent.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import socketserver
import threading
import time
from dataclasses import dataclass

from pbxctl import chanvars as V

from .agi import AgiSession
from .call import CallHangup, CallTimeout, DialplanBreak, ProtocolError
from .registry import HandlerContext, Registry, UnknownRoute, route_of

log = logging.getLogger("pbxctl.agi")


@dataclass(frozen=True)
class AgiServerConfig:
    host: str = "127.0.0.1"
    port: int = 4573
    backlog: int = 1024
    env_timeout: float = 5.0
    read_timeout: float = 60.0


def _log_event(event: str, **fields: object) -> None:
    log.info(json.dumps({"event": event, **fields}, ensure_ascii=False, sort_keys=True))


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
        started = time.monotonic()
        try:
            call = AgiSession.open(sock, env_timeout=self.config.env_timeout,
                                   read_timeout=self.config.read_timeout)
        except (CallHangup, CallTimeout, ProtocolError) as exc:
            self._count("protocol_errors")
            _log_event("agi_bad_session", error=str(exc))
            return
        route = route_of(call.env.get("agi_network_script", ""))
        ids = {"uniqueid": call.uniqueid, "route": route}
        watchdog: threading.Timer | None = None
        try:
            try:
                handler, budget = self.registry.entry(route)
            except UnknownRoute:
                raise DialplanBreak("unknown-route") from None
            # A handler over budget: cut the socket. Asterisk continues the dialplan with our
            # status variable unset, i.e. on its fallback; the stuck thread fails on its next
            # socket operation.
            watchdog = threading.Timer(budget, self._expire, args=(sock, ids))
            watchdog.daemon = True
            watchdog.start()
            handler(call, self.context)
            call.set_variable(V.STATUS, V.STATUS_OK)
            self._count("ok")
            _log_event("agi_ok", ms=round((time.monotonic() - started) * 1000, 1), **ids)
        except CallHangup:
            self._count("hangups")
            _log_event("agi_hangup", **ids)
        except DialplanBreak as brk:
            self._fail(call, brk.reason, ids)
        except Exception as exc:  # one failure path for every handler error
            log.exception("handler %s failed", route)
            self._fail(call, f"error-{type(exc).__name__}", ids)
        finally:
            if watchdog is not None:
                watchdog.cancel()

    def _expire(self, sock: socket.socket, ids: dict[str, str]) -> None:
        self._count("timeouts")
        _log_event("agi_handler_timeout", **ids)
        with contextlib.suppress(OSError):  # the session may have ended meanwhile
            sock.shutdown(socket.SHUT_RDWR)

    def _fail(self, call: AgiSession, reason: str, ids: dict[str, str]) -> None:
        self._count("failed")
        _log_event("agi_fail", reason=reason, **ids)
        try:
            call.set_variable(V.FAIL_REASON, reason)
            call.set_variable(V.STATUS, V.STATUS_FAIL)
        except (CallHangup, CallTimeout, ProtocolError):
            pass
