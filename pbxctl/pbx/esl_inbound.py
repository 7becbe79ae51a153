"""A small inbound ESL client for ops (`pbxctl status --freeswitch`): auth, then ``api``
commands; every wait bounded, typed errors. Plain sockets, no gevent: greenswitch's
InboundESL waits without timeouts."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from pbxctl.core.errors import CommandFailed, ServiceStartError, WaitTimeout


@dataclass
class EslReply:
    headers: dict[str, str]
    body: str


class InboundEsl:
    def __init__(self, *, host: str, port: int, password: str, timeout: float = 5.0,
                 source: str | None = None) -> None:
        self.host, self.port, self.password, self.timeout = host, port, password, timeout
        self.source = source
        self._sock: socket.socket | None = None
        self._buf = b""

    def connect(self) -> None:
        try:
            # source: the event socket's ACL names the hosts that may connect (the CTI's).
            self._sock = socket.create_connection(
                (self.host, self.port), timeout=self.timeout,
                source_address=(self.source, 0) if self.source else None)
        except OSError as exc:
            raise ServiceStartError(f"FreeSWITCH ESL {self.host}:{self.port} unreachable: {exc}",
                                    hint="is mod_event_socket loaded and listening?") from exc
        self._sock.settimeout(self.timeout)
        hello = self._read()
        if hello.headers.get("Content-Type") != "auth/request":
            raise CommandFailed(f"ESL {self.host}:{self.port}: expected auth/request, got "
                                f"{hello.headers.get('Content-Type')!r}")
        reply = self._command(f"auth {self.password}")
        if not reply.headers.get("Reply-Text", "").startswith("+OK"):
            self.close()
            raise ServiceStartError(f"ESL login refused: {reply.headers.get('Reply-Text')}",
                                    hint="check the event_socket password")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> InboundEsl:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self) -> EslReply:
        assert self._sock is not None
        try:
            while b"\n\n" not in self._buf:
                data = self._sock.recv(65536)
                if not data:
                    raise CommandFailed("FreeSWITCH closed the ESL connection")
                self._buf += data
            head, self._buf = self._buf.split(b"\n\n", 1)
            headers = dict(line.split(": ", 1) for line in head.decode().split("\n")
                           if ": " in line)
            length = int(headers.get("Content-Length", "0"))
            while len(self._buf) < length:
                data = self._sock.recv(65536)
                if not data:
                    raise CommandFailed("FreeSWITCH closed the ESL connection mid-reply")
                self._buf += data
            body, self._buf = self._buf[:length], self._buf[length:]
        except TimeoutError as exc:
            raise WaitTimeout(f"FreeSWITCH ESL sent nothing within {self.timeout:g}s") from exc
        return EslReply({k: unquote(v) for k, v in headers.items()}, body.decode())

    def _command(self, line: str) -> EslReply:
        if "\n" in line or "\r" in line:
            raise ValueError(f"ESL command must be one line: {line!r}")
        assert self._sock is not None
        self._sock.sendall(f"{line}\n\n".encode())
        while True:
            reply = self._read()
            if reply.headers.get("Content-Type") in ("command/reply", "api/response"):
                return reply

    def api(self, command: str) -> str:
        reply = self._command(f"api {command}")
        if reply.body.startswith("-ERR"):
            raise CommandFailed(f"ESL api {command}: {reply.body.strip()}")
        return reply.body

    def bgapi(self, command: str) -> str:
        """Run ``command`` in the background; returns its Job-UUID (the outcome arrives as a
        BACKGROUND_JOB event)."""
        reply = self._command(f"bgapi {command}")
        text = reply.headers.get("Reply-Text", "")
        if not text.startswith("+OK"):
            raise CommandFailed(f"ESL bgapi {command.split(' ', 1)[0]}: {text}")
        return reply.headers.get("Job-UUID", text.removeprefix("+OK Job-UUID: "))

    def subscribe(self, *events: str) -> None:
        """Receive these events on this connection (``CHANNEL_EXECUTE_COMPLETE``, ``CUSTOM
        callcenter::info``…); read them with wait_event. Replies to later commands on the
        same connection skip events, so keep one connection for events alone."""
        for name in events:
            if not name.replace("_", "").replace("::", "").replace(" ", "").replace(
                    "-", "").isalnum():
                raise ValueError(f"not an event name: {name!r}")
        reply = self._command(f"event plain {' '.join(events)}")
        if not reply.headers.get("Reply-Text", "").startswith("+OK"):
            raise CommandFailed(f"ESL event {' '.join(events)}: {reply.headers.get('Reply-Text')}")

    def wait_event(self, predicate: Callable[[dict[str, str]], bool], *, timeout: float,
                   what: str) -> dict[str, str]:
        """The next subscribed event for which ``predicate`` holds (headers, URL-decoded)."""
        assert self._sock is not None
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WaitTimeout(f"no {what} within {timeout:g}s")
                self._sock.settimeout(left)
                try:
                    reply = self._read()
                except WaitTimeout:
                    raise WaitTimeout(f"no {what} within {timeout:g}s") from None
                if reply.headers.get("Content-Type") != "text/event-plain":
                    continue
                event = {k: unquote(v) for k, v in (line.split(": ", 1) for line in
                                                     reply.body.split("\n") if ": " in line)}
                if predicate(event):
                    return event
        finally:
            self._sock.settimeout(self.timeout)

    def channels(self) -> list[dict[str, Any]]:
        data = json.loads(self.api("show channels as json") or "{}")
        rows = data.get("rows", [])
        return list(rows) if isinstance(rows, list) else []


def opened(*, host: str, port: int, password: str, source: str | None = None,
           timeout: float = 5.0) -> InboundEsl:
    """A signed-in client (the callers that want one per action pass this as a factory with
    functools.partial); the caller closes it."""
    client = InboundEsl(host=host, port=port, password=password, timeout=timeout, source=source)
    client.connect()
    return client
