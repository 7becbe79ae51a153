"""The call-time relay: a FastAGI hop beside each gateway/LSS, so no caller waits on the WAN.

Asterisk waits on a FastAGI socket without any timeout (connect aside: a fixed 2 s), even after
the caller hung up. So the gateway never hands its channel to something far away: its dialplan
speaks FastAGI to this relay on the same host (loopback: connecting costs nothing, and a relay
that is not running is refused at once), and the relay forwards the session to the province CTI
over path A or B under its own deadlines:

- **connect**: each path gets ``connect_ms``; a path that failed is skipped (no wait at all)
  until the prober has seen it answer again; when every path is *silent* (no answer at all,
  not even a refusal) the relay says so (``PBXCTL_RELAY=silent``): the province's network is
  most likely gone, and the dialplan sends the call to the LSS at once;
- **command**: once Asterisk has answered a command (or the session began) the CTI must send
  its next command within ``command_ms`` — a frozen CTI costs a caller that much, not the
  length of the freeze;
- **session**: the whole session ends after ``session_s``.

When a deadline passes, the relay answers Asterisk itself — sets ``PBXCTL_RELAY`` to what went
wrong (and, before the CTI sent anything, ``PBXCTL_STATUS=FAIL`` with a reason) — and closes
both sides, so the dialplan takes its local branch at once. Asterisk's own replies are never
bounded here: they are local (a GET DATA waits for the caller, as it should).

One event loop (uvloop): thousands of sessions cost about 11 KiB each, and a healthy welcome
session pays +0.6 ms p50 / +0.8 ms p95 for the extra hop (bench/relay_overhead.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import json
import logging
import socket
import time
from collections import Counter
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ivr_scripts.agi import quote
from pbxctl.core import chanvars as V

if TYPE_CHECKING:  # the model is a lower floor; imported for types only (no start-up cost)
    from provisioning.model import Inventory

log = logging.getLogger("pbxctl.relay")

MAX_LINE = 8192
MAX_ENV_LINES = 128
ENV_TIMEOUT = 5.0  # Asterisk writes its whole environment at once: this is generous
RELAY_VAR = "PBXCTL_RELAY"  # what the relay did when it answered Asterisk itself
STATUS_REQUEST = b"RELAY STATUS\n"  # a monitoring client asks for the counters as JSON


@dataclass(frozen=True)
class Target:
    """A CTI path: where to connect and from which local address (path A / path B)."""

    name: str
    host: str
    port: int
    source: str | None = None


@dataclass(frozen=True)
class Deadlines:
    connect_ms: int = 500
    command_ms: int = 1500
    session_s: float = 300.0


@dataclass(frozen=True)
class RelaySettings:
    host: str
    port: int
    targets: tuple[Target, ...]
    deadlines: Deadlines = Deadlines()
    allow: tuple[str, ...] = ("127.0.0.0/8",)
    probe_interval_s: float = 1.0
    max_sessions: int = 10000


async def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write; wait for the socket only when its buffer is large (a line-at-a-time protocol
    would otherwise pay a trip through the event loop per line)."""
    writer.write(data)
    if writer.transport.get_write_buffer_size() > 65536:
        await writer.drain()


def _nodelay(writer: asyncio.StreamWriter) -> None:
    """Small request/response lines: Nagle would hold one back waiting for an ACK."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class DeadlineHit(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass
class PathState:
    target: Target
    up: bool = True  # optimistic at start: the first call finds out (bounded by connect_ms)
    since: float = field(default_factory=time.monotonic)
    # Why it is down: "silent" (a connect that got no answer at all: the network or host is
    # gone), "refused" (the host answered: no CTI listening) or "frozen" (a CTI that stopped
    # sending commands).
    why: str = ""


class Relay:
    """The relay server. ``await start()`` binds; ``await serve_forever()``; ``close()``."""

    def __init__(self, settings: RelaySettings) -> None:
        self.settings = settings
        self.paths = [PathState(t) for t in settings.targets]
        self.stats: Counter[str] = Counter()
        self._allow = [ipaddress.ip_network(a, strict=False) for a in settings.allow]
        self._server: asyncio.Server | None = None
        self._sessions = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._prober: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> tuple[str, int]:
        self._server = await asyncio.start_server(
            self._accept, self.settings.host, self.settings.port, limit=MAX_LINE,
            backlog=1024)
        self._prober = asyncio.create_task(self._probe_loop())
        sock = self._server.sockets[0].getsockname()
        return str(sock[0]), int(sock[1])

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    async def close(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prober
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):  # running sessions end now: Asterisk goes local
                task.cancel()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)

    def status(self) -> dict[str, object]:
        return {"sessions": self._sessions, "counters": dict(self.stats),
                "paths": {p.target.name: "up" if p.up else "down" for p in self.paths}}

    # -- one session ---------------------------------------------------------------------
    def _allowed(self, peer: str) -> bool:
        try:
            addr = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(addr in net for net in self._allow)

    async def _accept(self, ast_r: asyncio.StreamReader, ast_w: asyncio.StreamWriter) -> None:
        peer = ast_w.get_extra_info("peername")
        if not peer or not self._allowed(str(peer[0])):
            self.stats["refused_peer"] += 1
            log.warning("refused a connection from %s: not an allowed PBX address", peer)
            ast_w.close()
            return
        if self._sessions >= self.settings.max_sessions:
            self.stats["refused_busy"] += 1
            ast_w.close()
            return
        self._sessions += 1
        _nodelay(ast_w)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._session(ast_r, ast_w)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, OSError,
                TimeoutError) as exc:
            self.stats["broken"] += 1
            log.info("session ended early: %s", exc or type(exc).__name__)
        finally:
            self._sessions -= 1
            if task is not None:
                self._tasks.discard(task)
            ast_w.close()

    async def _session(self, ast_r: asyncio.StreamReader, ast_w: asyncio.StreamWriter) -> None:
        started = time.monotonic()
        first = await asyncio.wait_for(ast_r.readline(), ENV_TIMEOUT)
        if first == STATUS_REQUEST:
            data = self.status()
            data["sessions"] = self._sessions - 1  # not counting this status request
            ast_w.write(json.dumps(data).encode() + b"\n")
            await ast_w.drain()
            return
        env = [first]
        while env[-1] not in (b"\n", b"\r\n", b""):
            if len(env) > MAX_ENV_LINES:
                raise ValueError("AGI environment too long")
            env.append(await asyncio.wait_for(ast_r.readline(), ENV_TIMEOUT))
        if env[-1] == b"":
            return  # Asterisk went away before the session began
        self.stats["sessions"] += 1
        budget_end = started + self.settings.deadlines.session_s
        cti = await self._connect()
        if cti is None:
            self.stats["answered_locally"] += 1
            # Every path silent (no SYN-ACK, no RST): the province's network is most likely
            # gone, not only its CTI; the dialplan sends this call to the LSS at once rather
            # than Dial a province that qualify has not yet called dead.
            silent = all(p.why == "silent" for p in self.paths)
            await self._answer(ast_r, ast_w, {V.STATUS: V.STATUS_FAIL,
                                              V.FAIL_REASON: "cti-unreachable",
                                              RELAY_VAR: "silent" if silent else "connect"})
            return
        cti_r, cti_w, path = cti
        _nodelay(cti_w)
        sent_any = False
        try:
            await _send(cti_w, b"".join(env))
            while True:
                left = budget_end - time.monotonic()
                if left <= 0:
                    raise DeadlineHit("session")
                wait = min(self.settings.deadlines.command_ms / 1000, left)
                try:
                    command = await asyncio.wait_for(cti_r.readline(), wait)
                except TimeoutError:
                    raise DeadlineHit("command" if wait < left else "session") from None
                if not command:
                    self.stats["relayed"] += 1
                    return  # the CTI ended the session: Asterisk sees the close, as direct
                sent_any = True
                await _send(ast_w, command)
                if not await self._pass_reply(ast_r, cti_w, budget_end):
                    self.stats["caller_gone"] += 1
                    return
        except DeadlineHit as hit:
            self.stats[f"deadline_{hit.kind}"] += 1
            self.stats["answered_locally"] += 1
            log.warning("CTI %s: %s deadline passed; the gateway goes on locally",
                        path.target.name, hit.kind)
            # A CTI that stops answering is not asked by the next caller either, on any path
            # (both paths lead to the same server: a frozen process is frozen on both); the
            # prober puts each path back once a whole ping session runs there again.
            for each in self.paths:
                self._mark(each, up=False, why="frozen")
            if not sent_any:  # nothing ran yet: the dialplan's usual "CTI failed" branch
                await self._answer(ast_r, ast_w, {V.STATUS: V.STATUS_FAIL,
                                                  V.FAIL_REASON: "cti-timeout",
                                                  RELAY_VAR: hit.kind})
            else:  # mid-session: the dialplan's "session broke" branch (apology, agent)
                await self._answer(ast_r, ast_w, {RELAY_VAR: hit.kind})
        finally:
            cti_w.close()

    async def _pass_reply(self, ast_r: asyncio.StreamReader, cti_w: asyncio.StreamWriter,
                          budget_end: float) -> bool:
        """Asterisk's reply to one command, passed to the CTI whole (HANGUP notices and a
        multi-line 520 usage included). Not bounded by the command deadline: Asterisk is
        local, and a command such as GET DATA waits for the caller as long as it should."""
        while True:
            left = budget_end - time.monotonic()
            if left <= 0:
                raise DeadlineHit("session")
            try:
                line = await asyncio.wait_for(ast_r.readline(), left)
            except TimeoutError:
                raise DeadlineHit("session") from None
            if not line:
                return False
            await _send(cti_w, line)
            if line.strip() == b"HANGUP" or line.startswith(b"520-"):
                continue
            return True

    async def _answer(self, ast_r: asyncio.StreamReader, ast_w: asyncio.StreamWriter,
                      variables: dict[str, str]) -> None:
        """Set the variables the dialplan branches on, as any AGI script would, then end."""
        for name, value in variables.items():
            ast_w.write(f"SET VARIABLE {quote(name)} {quote(value)}\n".encode())
            await ast_w.drain()
            while True:
                reply = await asyncio.wait_for(ast_r.readline(), ENV_TIMEOUT)
                if not reply:
                    return
                if reply.strip() != b"HANGUP":
                    break

    # -- paths -----------------------------------------------------------------------------
    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter,
                                      PathState] | None:
        for path in [p for p in self.paths if p.up]:
            conn = await self._open(path.target)
            if isinstance(conn, tuple):
                return conn[0], conn[1], path
            self.stats["deadline_connect" if conn == "silent" else "refused_connect"] += 1
            self._mark(path, up=False, why=conn)
        if not any(p.up for p in self.paths):
            self.stats["all_paths_down"] += 1
        return None

    async def _open(self, target: Target
                    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | str:
        """The connection, or why not: "silent" (no answer within the deadline) or
        "refused" (an answer that was no)."""
        local = (target.source, 0) if target.source else None
        try:
            return await asyncio.wait_for(
                asyncio.open_connection(target.host, target.port, limit=MAX_LINE,
                                        local_addr=local),
                self.settings.deadlines.connect_ms / 1000)
        except TimeoutError:
            log.info("CTI %s (%s:%d): no answer to connect within %d ms", target.name,
                     target.host, target.port, self.settings.deadlines.connect_ms)
            return "silent"
        except OSError as exc:
            log.info("CTI %s (%s:%d) not reached: %s", target.name, target.host, target.port,
                     exc)
            return "silent" if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH) \
                else "refused"

    def _mark(self, path: PathState, *, up: bool, why: str = "") -> None:
        path.why = "" if up else why
        if path.up != up:
            log.warning("CTI path %s is %s", path.target.name,
                        "up" if up else f"down ({why})")
            path.up, path.since = up, time.monotonic()

    async def _probe_loop(self) -> None:
        """A path marked down is retried by this loop, never by a caller."""
        while True:
            await asyncio.sleep(self.settings.probe_interval_s)
            for path in [p for p in self.paths if not p.up]:
                if await self._ping(path.target):
                    self._mark(path, up=True)

    async def _ping(self, target: Target) -> bool:
        """A whole ping session, as `pbxctl agi health` does: a CTI that accepts but whose
        handlers are frozen is not up."""
        conn = await self._open(target)
        if isinstance(conn, str):
            return False
        reader, writer = conn
        deadline = self.settings.deadlines.command_ms / 1000
        try:
            writer.write(b"agi_network: yes\nagi_network_script: ping\nagi_request: "
                         b"agi://relay/ping\nagi_uniqueid: relay-probe\n\n")
            await writer.drain()
            while True:
                line = await asyncio.wait_for(reader.readline(), deadline)
                if not line:
                    return False
                if line.startswith(f"SET VARIABLE {quote(V.STATUS)} ".encode()):
                    return line.rstrip().endswith(quote(V.STATUS_OK).encode())
                writer.write(b"200 result=1\n")
                await writer.drain()
        except (TimeoutError, OSError):
            return False
        finally:
            writer.close()


def targets_from(cti: Sequence[str], port: int, sources: Sequence[str | None]
                 ) -> tuple[Target, ...]:
    """Path A, path B: the CTI's addresses with the gateway's own address on each path."""
    names = ("cti-a", "cti-b", "cti-c", "cti-d")
    return tuple(Target(names[i], host, port, sources[i] if i < len(sources) else None)
                 for i, host in enumerate(cti))


async def relay_status(host: str, port: int, *, timeout: float = 3.0) -> dict[str, object]:
    """The counters of a running relay (``pbxctl relay status``)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(STATUS_REQUEST)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        data = json.loads(line)
        assert isinstance(data, dict)
        return data
    finally:
        writer.close()


def settings_for_site(inv: Inventory, site_name: str, *, host: str = "127.0.0.1",
                      port: int | None = None, allow: Sequence[str] = ()) -> RelaySettings:
    """The relay beside one site of the inventory: the CTI on path A from the site's path-A
    address, on path B from its path-B address; the deadlines of ``options``."""
    site = inv.site(site_name)
    prov, opts = inv.province, inv.province.options
    targets = (Target("cti-a", str(prov.cti.a), prov.cti_port, str(site.host.a)),
               Target("cti-b", str(prov.cti.b), prov.cti_port, str(site.host.b)))
    return RelaySettings(
        host=host, port=opts.relay_port if port is None else port, targets=targets,
        deadlines=Deadlines(connect_ms=opts.cti_connect_timeout_ms,
                            command_ms=opts.cti_command_timeout_ms,
                            session_s=float(opts.cti_session_budget_s)),
        allow=("127.0.0.0/8", f"{site.host.a}/32", f"{site.host.b}/32", *allow))


def serve(settings: RelaySettings, *, environ: dict[str, str] | None = None) -> int:
    """Run until SIGTERM/SIGINT. Ready (sd_notify and the log line) once bound."""
    import signal

    from pbxctl.core.sdnotify import notify

    async def main() -> None:
        relay = Relay(settings)
        host, port = await relay.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("relay listening on %s:%d, CTI paths %s", host, port,
                 ", ".join(f"{t.name}={t.host}:{t.port}" for t in settings.targets))
        notify("READY=1", environ=environ)
        await stop.wait()
        notify("STOPPING=1", environ=environ)
        await relay.close()

    run_loop(main())
    return 0


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run the relay's loop on uvloop when it is installed (it is a dependency: it halves
    what each forwarded line costs, bench/relay_overhead.py), else on asyncio's own."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)
