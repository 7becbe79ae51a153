"""FreeSWITCH transport: greenswitch's OutboundESLServer running the same handlers through the
same ``Call`` interface as FastAGI.

FreeSWITCH's dialplan sets ``pbxctl_route`` (the handler, like the AGI path) and
``pbxctl_params`` (``site=hz-gw&pref=HZ``, like the AGI query string), then
``socket <cti>:8084 async full``. What greenswitch gets wrong, fixed here:
* ``send()``, ``connect()``, ``playback()`` … wait forever: every wait here is bounded
  (``timeout``) and polls the session, so a FreeSWITCH that vanishes mid-command raises
  :class:`CallHangup` at once and a silent one :class:`CallTimeout` within the bound;
* the server's ``connect`` before the application runs is bounded as well.
greenswitch is gevent-based: the server runs its own hub (``serve_forever`` in one thread);
handlers run in that hub, so a slow database call (bounded by the store's timeouts) delays
other ESL sessions of the same process — run one ESL process per core if that matters.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import gevent
import gevent.event
from greenswitch import esl as gs

from ivr_scripts.call import CallHangup, CallTimeout, DialplanBreak
from ivr_scripts.peers import PeerFilter
from ivr_scripts.registry import HandlerContext, Registry
from ivr_scripts.session import Outcome, run_session
from pbxctl.core.dtmf import is_digits

log = logging.getLogger("pbxctl.esl")

ROUTE_VAR = "pbxctl_route"
PARAMS_VAR = "pbxctl_params"
DIGITS_VAR = "pbxctl_digits"
_POLL = 0.05


class EslCall:
    """One FreeSWITCH channel, as handlers see it (the ``Call`` protocol)."""

    def __init__(self, session: gs.OutboundSession, *, timeout: float = 10.0) -> None:
        self.session = session
        self.timeout = timeout
        self._env: dict[str, str] = dict(session.session_data or {})

    # -- identity -----------------------------------------------------------------------
    @property
    def uniqueid(self) -> str:
        return self._env.get("Unique-ID", self._env.get("variable_uuid", ""))

    @property
    def env(self) -> Mapping[str, str]:
        return self._env

    @property
    def params(self) -> Mapping[str, str]:
        return dict(parse_qsl(self._env.get(f"variable_{PARAMS_VAR}", "")))

    @property
    def route(self) -> str:
        return self._env.get(f"variable_{ROUTE_VAR}", "")

    @property
    def dnid(self) -> str:
        return (self._env.get("variable_pbxctl_did")
                or self._env.get("Caller-Destination-Number", ""))

    @property
    def caller(self) -> str:
        return self._env.get("Caller-Caller-ID-Number", "")

    # -- bounded waits --------------------------------------------------------------------
    def _wait(self, result: gevent.event.AsyncResult, what: str,
              timeout: float | None = None) -> Any:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if result.ready():
                try:
                    return result.get()
                except (gs.OutboundSessionHasGoneAway, gs.NotConnectedError) as exc:
                    raise CallHangup(f"FreeSWITCH session gone during {what}") from exc
            if not self.session.connected:
                raise CallHangup(f"FreeSWITCH session gone during {what}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise CallTimeout(f"FreeSWITCH did not answer {what} within "
                                  f"{self.timeout if timeout is None else timeout:g}s")
            result.wait(min(_POLL, left))

    def _send(self, data: str, what: str) -> Any:
        if not self.session.connected or self.session._lingering:
            raise CallHangup(f"FreeSWITCH session gone before {what}")
        result = gevent.event.AsyncResult()
        self.session._commands_sent.append(result)
        try:
            self.session.sock.send((data + "\n\n").encode("utf-8"))
        except OSError as exc:
            raise CallHangup(f"FreeSWITCH session gone sending {what}") from exc
        return self._wait(result, what)

    def _execute(self, app: str, arg: str = "", *, block: bool = False,
                 timeout: float | None = None) -> Any:
        """Run a dialplan application on the channel; ``block``: until it completed."""
        done = gevent.event.AsyncResult()
        if block:
            self.session.register_expected_event("CHANNEL_EXECUTE_COMPLETE",
                                                 "current_application", app, done)
        msg = f"sendmsg\ncall-command: execute\nexecute-app-name: {app}"
        if arg:
            if "\n" in arg or "\r" in arg:
                raise ValueError(f"{app} argument must be one line: {arg!r}")
            msg += f"\nexecute-app-arg: {arg}"
        reply = self._send(msg, app)
        if getattr(reply, "data", "").startswith("-ERR"):
            raise DialplanBreak(f"esl-{app}-refused")
        if block:
            return self._wait(done, f"{app} to complete", timeout)
        return reply

    # -- the Call interface ---------------------------------------------------------------
    def get_variable(self, name: str) -> str:
        reply = self._send(f"api uuid_getvar {self.uniqueid} {name}", f"getvar {name}")
        value = str(getattr(reply, "data", "") or "").strip()
        return "" if value in ("_undef_", "") or value.startswith("-ERR") else value

    def set_variable(self, name: str, value: str) -> None:
        self._execute("set", f"{name}={value}")

    def play(self, prompt: str, *, escape_digits: str = "") -> str:
        self._execute("playback", f"{prompt}.wav", block=True, timeout=self.timeout + 120)
        return ""

    def collect_digits(self, prompt: str, *, max_digits: int, timeout_ms: int) -> str:
        arg = (f"1 {max_digits} 1 {timeout_ms} # {prompt}.wav silence_stream://250 "
               f"{DIGITS_VAR} \\d+ {timeout_ms}")
        event = self._execute("play_and_get_digits", arg, block=True,
                              timeout=self.timeout + 120 + timeout_ms / 1000)
        return str(event.headers.get(f"variable_{DIGITS_VAR}", "") if event else "")

    def say_digits(self, digits: str) -> None:
        if not is_digits(digits):
            raise ValueError(f"not digits: {digits!r}")
        self._execute("say", f"en number iterated {digits}", block=True,
                      timeout=self.timeout + 30)

    def verbose(self, message: str, *, level: int = 1) -> None:
        self._execute("log", f"INFO {message}".replace("\n", " "))

    def hangup(self) -> None:
        self._execute("hangup", "NORMAL_CLEARING")


def serve_session(session: gs.OutboundSession, registry: Registry, context: HandlerContext,
                  *, timeout: float, peers: PeerFilter | None = None, peer: str = ""
                  ) -> Outcome:
    """One FreeSWITCH call through the shared dispatcher; a greenlet can be interrupted, so the
    budget is a gevent timeout raising :class:`CallTimeout` inside the handler. ``peers``:
    the session's ``site=`` must be a site of the ``peer`` address."""
    call = EslCall(session, timeout=timeout)

    def authorize() -> str | None:
        return peers.site_mismatch(peer, call.params.get("site", "")) if peers else None

    def budget(seconds: float) -> gevent.Timeout:
        return gevent.Timeout(seconds, CallTimeout(f"handler {call.route} over its budget"))

    return run_session(call, call.route, registry=registry, context=context, budget=budget,
                       transport="esl", authorize=authorize)


class EslServer(gs.OutboundESLServer):  # type: ignore[misc]
    """greenswitch's server with a bounded ``connect`` and our handlers."""

    def __init__(self, *, registry: Registry, context: HandlerContext, host: str, port: int,
                 timeout: float = 10.0, max_connections: int = 500,
                 peers: PeerFilter | None = None) -> None:
        server = self
        self.peers = peers or PeerFilter.loopback_only()

        class _App:
            def __init__(self, session: gs.OutboundSession) -> None:
                self.session = session

            def run(self) -> None:
                outcome = serve_session(self.session, registry, context, timeout=timeout,
                                        peers=server.peers,
                                        peer=str(getattr(self.session, "peer", "")))
                server.stats[outcome] = server.stats.get(outcome, 0) + 1

        super().__init__(bind_address=host, bind_port=port, application=_App,
                         max_connections=max_connections)
        self.timeout = timeout
        self.stats: dict[str, int] = {}

    def counters(self) -> dict[str, int]:
        return {"refused_peers": self.stats.get("refused_peers", 0),
                "over_capacity": self.stats.get("over_capacity", 0),
                "protocol_errors": self.stats.get("protocol_errors", 0),
                "active": self.connection_count}

    def listen(self) -> None:
        """greenswitch's loop, with what it lacks: the peer checked before a byte is read,
        over capacity closed at once (greenswitch first waits, unbounded, for the peer), and
        EMFILE backed off instead of ending the server."""
        # gevent's socket, as greenswitch uses: a stdlib one would block the whole hub.
        self.server = gs.socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind((self.bind_address, self.bind_port[0]))
        self.bound_port = self.server.getsockname()[1]
        self.server.setblocking(False)
        self.server.listen(1024)
        self._running = True
        while self._running:
            try:
                sock, address = self.server.accept()
            except BlockingIOError:
                gevent.sleep(0.05)
                continue
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self.stats["accept_errors"] = self.stats.get("accept_errors", 0) + 1
                    gevent.sleep(0.05)
                    continue
                if not self._running:
                    break
                raise
            if not self.peers.allows(str(address[0])):
                self.peers.refuse(str(address[0]))
                self.stats["refused_peers"] = self.stats.get("refused_peers", 0) + 1
                sock.close()
                continue
            if self.connection_count >= self.max_connections:
                self.stats["over_capacity"] = self.stats.get("over_capacity", 0) + 1
                sock.close()
                continue
            session = gs.OutboundSession(address, sock)
            session.peer = str(address[0])  # greenswitch keeps no peer address
            gevent.spawn(self._handle_call, session)
        with contextlib.suppress(OSError):
            self.server.close()
        gevent.joinall(list(self._greenlets), timeout=10)

    def _handle_call(self, session: gs.OutboundSession) -> None:
        try:
            reply = EslCall(session, timeout=self.timeout)._send("connect", "connect")
            session.session_data = reply.headers
            session._outbound_connected = True
            EslCall(session, timeout=self.timeout)._send("myevents", "myevents")
        except (CallHangup, CallTimeout) as exc:
            log.warning("ESL session from %s dropped before it started: %s",
                        getattr(session, "peer", "?"), exc)
            self.stats["protocol_errors"] = self.stats.get("protocol_errors", 0) + 1
            session.connected = False
            with contextlib.suppress(OSError):
                session.sock.close()
            return
        app = self.application(session)
        handler = gevent.spawn(app.run)
        self._greenlets.add(handler)
        handler.session = session
        handler.link(self._handle_call_finish)
        self.connection_count += 1

    def _handle_call_finish(self, handler: Any) -> None:
        """greenswitch's own ``stop()`` sends ``exit`` and waits for the reply forever: a
        silent FreeSWITCH would leak the session. Say exit (bounded), then close."""
        self._greenlets.discard(handler)
        self.connection_count -= 1
        session = handler.session
        with contextlib.suppress(CallHangup, CallTimeout):
            EslCall(session, timeout=1.0)._send("exit", "exit")
        session.connected = False
        session._run = False
        with contextlib.suppress(OSError):
            session.sock.shutdown(socket.SHUT_RDWR)
        session.sock.close()
