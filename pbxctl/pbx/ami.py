"""A small Asterisk Manager Interface client: typed, every wait bounded.

pyst2's manager merges QueueStatus replies, keeps one line of ``command()`` output and crashes
on ``channelvars``; this client reads the wire itself. A reader thread splits the stream into
messages; responses are routed to the action that carries their ActionID, events to every
subscription.
"""

from __future__ import annotations

import itertools
import logging
import queue
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

from pbxctl.core.errors import CommandFailed, ServiceStartError, WaitTimeout

Message = dict[str, str]
# One AMI message (a long `Command` output included) never comes near this; a peer that sends
# more without ending a message is broken or hostile.
MAX_MESSAGE = 4 * 1024 * 1024
log = logging.getLogger("pbxctl.ami")


def _header_value(value: object) -> str:
    text = str(value)
    if "\r" in text or "\n" in text:
        raise ValueError(f"AMI header value must be one line: {text!r}")
    return text


@dataclass(frozen=True)
class AmiEndpoint:
    """Where a PBX's manager interface listens and the user/secret to sign in with."""

    host: str
    port: int
    username: str
    secret: str


@dataclass
class AmiReply:
    response: Message
    events: list[Message] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.response.get("Response") in ("Success", "Goodbye")

    @property
    def output(self) -> list[str]:
        """The lines of a ``Command`` action's output (Asterisk ≥ 14 sends them as Output:)."""
        return self.response.get("Output", "").split("\n") if "Output" in self.response else []


class _Pending:
    def __init__(self, list_expected: bool) -> None:
        self.list_expected = list_expected
        self.response: Message | None = None
        self.events: list[Message] = []
        self.done = threading.Event()


class Subscription:
    """Events seen since the subscription started; ``wait_for`` bounded by a timeout.

    Bounded: only events ``keep`` accepts are queued (the reader thread filters, so a
    watcher that wants ContactStatus never holds a day of Newexten events), and at most
    ``maxlen`` are held — past that the oldest go, counted in ``dropped``."""

    def __init__(self, client: AmiClient, *, keep: Callable[[Message], bool] | None = None,
                 maxlen: int = 10000) -> None:
        self._client = client
        self._keep = keep
        self._q: queue.Queue[Message] = queue.Queue(maxsize=maxlen)
        self.seen: deque[Message] = deque(maxlen=maxlen)
        self.dropped = 0

    def _push(self, msg: Message) -> None:
        if self._keep is not None and not self._keep(msg):
            return
        try:
            self._q.put_nowait(msg)
        except queue.Full:  # nobody is reading: keep the newest, count the loss
            with suppress(queue.Empty):
                self._q.get_nowait()
                self.dropped += 1
            with suppress(queue.Full):
                self._q.put_nowait(msg)

    def _hold(self, msg: Message) -> None:
        if len(self.seen) == self.seen.maxlen:
            self.dropped += 1
        self.seen.append(msg)

    def wait_for(self, predicate: Callable[[Message], bool], *, timeout: float,
                 what: str = "AMI event") -> Message:
        for msg in self.seen:
            if predicate(msg):
                self.seen.remove(msg)
                return msg
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(f"no {what} within {timeout:g}s")
            try:
                msg = self._q.get(timeout=left)
            except queue.Empty:
                continue
            if predicate(msg):
                return msg
            self._hold(msg)

    def drain(self) -> list[Message]:
        while True:
            try:
                self._hold(self._q.get_nowait())
            except queue.Empty:
                return list(self.seen)


class AmiClient:
    """Connect with ``connect()``; close with ``close()`` (or use ``with``)."""

    def __init__(self, *, host: str, port: int, username: str, secret: str,
                 timeout: float = 10.0, source: str | None = None) -> None:
        self.host, self.port = host, port
        self.source = source  # local address to connect from (manager.conf permits by source)
        self._username, self._secret = username, secret
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._ids = itertools.count(1)
        self._pending: dict[str, _Pending] = {}
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self.connected = False

    # -- connection -----------------------------------------------------------
    def connect(self) -> None:
        try:
            sock = socket.create_connection(
                (self.host, self.port), timeout=self.timeout,
                source_address=(self.source, 0) if self.source else None)
        except OSError as exc:
            raise ServiceStartError(f"AMI {self.host}:{self.port} unreachable: {exc}",
                                    hint="is Asterisk running with manager enabled?") from exc
        sock.settimeout(self.timeout)
        banner = b""
        while not banner.endswith(b"\r\n"):
            chunk = sock.recv(1)
            if not chunk:
                raise ServiceStartError("AMI closed the connection before its banner")
            banner += chunk
        sock.settimeout(None)
        self._sock = sock
        self.connected = True
        self._reader = threading.Thread(target=self._read_loop, name="ami-reader", daemon=True)
        self._reader.start()
        reply = self.action("Login", Username=self._username, Secret=self._secret,
                            Events="on")
        if not reply.ok:
            self.close()
            raise ServiceStartError(f"AMI login refused: {reply.response.get('Message')}")

    def close(self) -> None:
        sock, self._sock = self._sock, None
        self.connected = False
        if sock is not None:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._reader is not None:
            self._reader.join(timeout=2)

    def __enter__(self) -> AmiClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading --------------------------------------------------------------
    def _read_loop(self) -> None:
        sock = self._sock
        assert sock is not None
        buf = b""
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                buf += data
                *messages, buf = buf.split(b"\r\n\r\n")
                for raw in messages:
                    self._dispatch(self._parse(raw))
                if len(buf) > MAX_MESSAGE:
                    log.warning("AMI %s:%s sent %d bytes without ending a message: closing",
                                self.host, self.port, len(buf))
                    break
        except OSError:
            pass
        finally:
            self.connected = False
            with self._lock:
                for pending in self._pending.values():
                    pending.done.set()

    @staticmethod
    def _parse(raw: bytes) -> Message:
        msg: Message = {}
        for line in raw.decode("utf-8", errors="replace").split("\r\n"):
            key, sep, value = line.partition(":")
            if not sep:
                continue
            key = key.strip()
            # Only the one space after the colon is the protocol's: a value keeps its own
            # leading/trailing blanks (a Getvar of "  x  " is "  x  "; command output keeps
            # its indentation, which parsers of CLI tables depend on).
            value = value[1:] if value.startswith(" ") else value
            # Repeated keys (Output:, ChanVariable:) are joined, not lost.
            msg[key] = f"{msg[key]}\n{value}" if key in msg else value
        return msg

    def _dispatch(self, msg: Message) -> None:
        action_id = msg.get("ActionID")
        with self._lock:
            pending = self._pending.get(action_id) if action_id else None
            subs = list(self._subs)
        if pending is not None:
            if "Response" in msg:
                pending.response = msg
                if not (pending.list_expected and msg.get("EventList") == "start"):
                    pending.done.set()
            elif "Event" in msg:
                pending.events.append(msg)
                if msg.get("EventList") == "Complete":
                    pending.done.set()
            return
        if "Event" in msg:
            for sub in subs:
                sub._push(msg)

    # -- actions --------------------------------------------------------------
    def action(self, name: str, *, timeout: float | None = None, **fields: object) -> AmiReply:
        """Send an action; wait (bounded) for its response and, for lists, all its events."""
        if self._sock is None:
            raise CommandFailed(f"AMI action {name}: not connected")
        action_id = f"pbxctl-{next(self._ids)}"
        pending = _Pending(list_expected=True)
        lines = [f"Action: {_header_value(name)}", f"ActionID: {action_id}"]
        for key, value in fields.items():
            if isinstance(value, dict):
                lines += [f"{key}: {_header_value(k)}={_header_value(v)}" for k, v in value.items()]
            else:
                lines.append(f"{key}: {_header_value(value)}")
        with self._lock:
            self._pending[action_id] = pending
        try:
            self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            limit = timeout if timeout is not None else self.timeout
            if not pending.done.wait(limit):
                raise WaitTimeout(f"AMI action {name} got no complete reply in {limit:g}s")
        finally:
            with self._lock:
                self._pending.pop(action_id, None)
        if pending.response is None:
            raise CommandFailed(f"AMI connection closed during action {name}")
        return AmiReply(pending.response, pending.events)

    def command(self, cli: str, *, timeout: float | None = None) -> list[str]:
        reply = self.action("Command", Command=cli, timeout=timeout)
        if not reply.ok:
            raise CommandFailed(f"AMI Command {cli!r}: {reply.response.get('Message')}")
        return reply.output

    def getvar(self, variable: str) -> str:
        """A global variable or a dialplan function's value (no channel)."""
        reply = self.action("Getvar", Variable=variable)
        if not reply.ok:
            raise CommandFailed(f"AMI Getvar {variable}: {reply.response.get('Message')}")
        return reply.response.get("Value", "")

    def setvar(self, variable: str, value: str, *, channel: str | None = None) -> None:
        if channel:
            reply = self.action("Setvar", Variable=variable, Value=value, Channel=channel)
        else:
            reply = self.action("Setvar", Variable=variable, Value=value)
        if not reply.ok:
            raise CommandFailed(f"AMI Setvar {variable}: {reply.response.get('Message')}")

    @contextmanager
    def subscribe(self, *, keep: Callable[[Message], bool] | None = None,
                  maxlen: int = 10000) -> Iterator[Subscription]:
        sub = Subscription(self, keep=keep, maxlen=maxlen)
        with self._lock:
            self._subs.append(sub)
        try:
            yield sub
        finally:
            with self._lock:
                self._subs.remove(sub)
