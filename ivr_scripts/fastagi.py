"""The FastAGI server: one thread per session, bounded everything; sessions run through the one
dispatcher in :mod:`ivr_scripts.session` (route, budget, status and failure reporting).

What an attacker or a broken peer cannot do to it:
- talk to it from an address that is not an allowed PBX (checked on accept, before a byte is
  read; closed, counted, logged once a minute per peer);
- hold more than ``max_sessions`` sessions: past the cap, new connections are closed at once
  and counted (never queued);
- keep a session in its environment block past ``env_timeout`` in total, or feed it a line
  longer than ``MAX_LINE`` (the session ends after at most that much is read);
- make the accept loop spin when the process is out of file descriptors (it backs off).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from ivr_scripts.agi import AgiSession
from ivr_scripts.call import CallHangup, CallTimeout, ProtocolError
from ivr_scripts.peers import PeerFilter
from ivr_scripts.registry import HandlerContext, Registry, route_of
from ivr_scripts.session import Outcome, log_event, run_session

log = logging.getLogger("pbxctl.agi")

# Measured: 5,000 sessions parked in a handler ≈ 280 MB RSS (≈ 56 kB each). 4,000 keeps the
# server near 220 MB at worst, far above any prefecture's concurrent AGI sessions.
DEFAULT_MAX_SESSIONS = 4000
PEER_ERROR_LOG_EVERY = 60.0


@dataclass(frozen=True)
class AgiServerConfig:
    host: str = "127.0.0.1"
    port: int = 4573
    backlog: int = 1024
    env_timeout: float = 5.0  # for the whole environment block, not per line
    read_timeout: float = 60.0
    max_sessions: int = DEFAULT_MAX_SESSIONS
    peers: PeerFilter = field(default_factory=PeerFilter.loopback_only)


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False

    def __init__(self, owner: FastAgiServer, config: AgiServerConfig) -> None:
        self.request_queue_size = config.backlog
        self.owner = owner
        self._emfile_logged = 0.0
        super().__init__((config.host, config.port), _RequestHandler, bind_and_activate=True)

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        try:
            sock, addr = self.socket.accept()
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                # The pending connection stays in the backlog; without a pause the selector
                # reports it at once again and the loop spins at 100% CPU.
                now = time.monotonic()
                if now - self._emfile_logged > PEER_ERROR_LOG_EVERY:
                    log.error("accept failed (%s): out of file descriptors; backing off",
                              errno.errorcode.get(exc.errno or 0, exc.errno))
                    self._emfile_logged = now
                self.owner._count("accept_errors")
                time.sleep(0.05)
            raise
        return sock, addr

    def process_request(self, request: socket.socket | tuple[bytes, socket.socket],
                        client_address: tuple[str, int] | str) -> None:
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread for it (out of threads): give its slot back
            self.owner._release()
            raise

    def verify_request(self, request: socket.socket | tuple[bytes, socket.socket],
                       client_address: tuple[str, int] | str) -> bool:
        assert isinstance(client_address, tuple)
        return self.owner._admit(str(client_address[0]))


class _RequestHandler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        assert isinstance(self.request, socket.socket)
        self.server.owner._session(self.request, str(self.client_address[0]))


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
        self._peer_errors_logged: dict[str, float] = {}
        self.stats = {"sessions": 0, "ok": 0, "failed": 0, "hangups": 0, "protocol_errors": 0,
                      "timeouts": 0, "refused_peers": 0, "over_capacity": 0,
                      "accept_errors": 0}

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def counters(self) -> dict[str, int]:
        with self._cond:
            return {**self.stats, "active": self._active}

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

    def _admit(self, peer: str) -> bool:
        """On accept, before reading: an allowed peer, and a free session slot (taken here,
        so the cap holds however fast connections arrive)."""
        if not self.config.peers.allows(peer):
            self.config.peers.refuse(peer)
            self._count("refused_peers")
            return False
        with self._cond:
            if self._active >= self.config.max_sessions:
                self.stats["over_capacity"] += 1
                return False
            self._active += 1
            self.stats["sessions"] += 1
        return True

    def _release(self) -> None:
        with self._cond:
            self._active -= 1
            self._cond.notify_all()

    def _session(self, sock: socket.socket, peer: str) -> None:
        try:
            self._run_session(sock, peer)
        finally:
            self._release()

    def _peer_error(self, peer: str, reason: str) -> None:
        """A peer's protocol error is its bug, not ours: one WARNING line, at most once a
        minute per peer, no traceback."""
        self._count("protocol_errors")
        now = time.monotonic()
        with self._cond:
            last = self._peer_errors_logged.get(peer)
            if last is not None and now - last < PEER_ERROR_LOG_EVERY:
                return
            self._peer_errors_logged[peer] = now
            if len(self._peer_errors_logged) > 10000:
                self._peer_errors_logged.clear()
        log.warning("bad AGI session from %s: %s (further ones from it counted, not logged, "
                    "for %gs)", peer, reason[:200], PEER_ERROR_LOG_EVERY)

    def _run_session(self, sock: socket.socket, peer: str) -> None:
        try:
            call = AgiSession.open(sock, env_timeout=self.config.env_timeout,
                                   read_timeout=self.config.read_timeout)
        except (CallHangup, CallTimeout, ProtocolError) as exc:
            self._peer_error(peer, str(exc))
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

        def authorize() -> str | None:
            return self.config.peers.site_mismatch(peer, call.params.get("site", ""))

        outcome = run_session(call, route, registry=self.registry, context=self.context,
                              budget=budget, transport="agi", authorize=authorize)
        self._count(_STAT[outcome])

    def _expire(self, sock: socket.socket, uniqueid: str, route: str) -> None:
        self._count("timeouts")
        log_event("agi_handler_timeout", uniqueid=uniqueid, route=route)
        with contextlib.suppress(OSError):  # the session may have ended meanwhile
            sock.shutdown(socket.SHUT_RDWR)


# Outcome → the counter it bumps (names kept from the server's first stats).
_STAT = {Outcome.OK: "ok", Outcome.FAILED: "failed", Outcome.HANGUP: "hangups",
         Outcome.TIMEOUT: "failed"}
