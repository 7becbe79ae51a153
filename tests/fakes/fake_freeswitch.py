"""A protocol-speaking stand-in for FreeSWITCH's outbound ``socket`` — for tests only.

No real FreeSWITCH can run here (it is in no Debian suite and no reachable registry), so this
peer speaks the real ESL wire format from FreeSWITCH's side: it connects to the outbound ESL
server like ``socket host:port async full`` does, answers ``connect`` with the channel data,
``myevents``/``linger`` with ``command/reply``, ``api uuid_getvar`` with an ``api/response``
carrying a Content-Length body, and executes ``sendmsg`` applications: ``set`` changes its
variables, ``playback`` and ``play_and_get_digits`` are recorded and answered with a
``CHANNEL_EXECUTE_COMPLETE`` event (``text/event-plain``, URL-encoded values,
Content-Length), the latter with the scripted digits. It can vanish mid-command (close the
socket instead of replying) or go silent (keep the socket, never reply).
What it does not prove: media, timing, or FreeSWITCH's own dialplan behaviour.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from dataclasses import dataclass, field
from urllib.parse import quote


@dataclass
class FakeChannel:
    uuid: str
    variables: dict[str, str]
    caller: str = "057188880000"
    destination: str = "057195598"
    digits: list[str] = field(default_factory=list)  # one entry per play_and_get_digits
    vanish_at: int | None = None  # close the socket at this sendmsg (1-based), no reply
    silent_at: int | None = None  # at this sendmsg: never reply, keep the socket open
    played: list[str] = field(default_factory=list)
    executed: list[tuple[str, str]] = field(default_factory=list)
    closed_by_server: bool = False


def _headers(pairs: dict[str, str]) -> str:
    return "".join(f"{k}: {quote(v, safe='')}\n" for k, v in pairs.items())


class _Peer:
    def __init__(self, sock: socket.socket, ch: FakeChannel) -> None:
        self.sock, self.ch = sock, ch
        self.buf = b""
        self.sendmsgs = 0

    def read_block(self) -> str | None:
        while b"\n\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data
        block, self.buf = self.buf.split(b"\n\n", 1)
        return block.decode("utf-8")

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode("utf-8"))

    def reply(self, text: str = "+OK", extra: dict[str, str] | None = None) -> None:
        self.send(f"Content-Type: command/reply\nReply-Text: {text}\n"
                  + (_headers(extra) if extra else "") + "\n")

    def channel_data(self) -> dict[str, str]:
        data = {"Event-Name": "CHANNEL_DATA", "Unique-ID": self.ch.uuid,
                "Caller-Caller-ID-Number": self.ch.caller,
                "Caller-Destination-Number": self.ch.destination,
                "Channel-Name": f"sofia/switch-a/{self.ch.caller}"}
        data.update({f"variable_{k}": v for k, v in self.ch.variables.items()})
        data["variable_uuid"] = self.ch.uuid
        return data

    def event(self, name: str, extra: dict[str, str]) -> None:
        body = _headers({**self.channel_data(), "Event-Name": name, **extra}) + "\n"
        raw = body.encode("utf-8")
        self.send(f"Content-Length: {len(raw)}\nContent-Type: text/event-plain\n\n")
        self.sock.sendall(raw)

    def api(self, body: str) -> None:
        raw = body.encode("utf-8")
        self.send(f"Content-Type: api/response\nContent-Length: {len(raw)}\n\n")
        self.sock.sendall(raw)

    def execute(self, app: str, arg: str) -> None:
        self.ch.executed.append((app, arg))
        if app == "set":
            key, _, value = arg.partition("=")
            self.ch.variables[key] = value
        elif app == "playback":
            self.ch.played.append(arg)
        elif app == "play_and_get_digits":
            parts = arg.split(" ")
            self.ch.played.append(parts[5])
            self.ch.variables[parts[7]] = self.ch.digits.pop(0) if self.ch.digits else ""
        self.event("CHANNEL_EXECUTE_COMPLETE", {"Application": app,
                                                "Application-Data": arg,
                                                "variable_current_application": app})

    def serve(self) -> None:
        while True:
            block = self.read_block()
            if block is None:
                self.ch.closed_by_server = True
                return
            first, *rest = block.split("\n")
            if first == "connect":
                self.reply("+OK", self.channel_data())
            elif first in ("myevents", "linger") or first.startswith(("linger ", "event ")):
                self.reply("+OK")
            elif first.startswith("api uuid_getvar "):
                name = first.split(" ")[3]
                self.api(self.ch.variables.get(name, "_undef_"))
            elif first == "exit":
                self.reply("+OK bye")
                return
            elif first == "sendmsg":
                self.sendmsgs += 1
                if self.sendmsgs == self.ch.vanish_at:
                    return  # the channel is gone: socket closed, no reply
                if self.sendmsgs == self.ch.silent_at:  # hung: never replies again
                    while self.sock.recv(65536):
                        pass
                    self.ch.closed_by_server = True
                    return
                hdr = dict(line.split(": ", 1) for line in rest if ": " in line)
                self.reply("+OK")
                self.execute(hdr.get("execute-app-name", ""), hdr.get("execute-app-arg", ""))
            else:
                self.reply(f"-ERR command not found: {first}")


def call_outbound(host: str, port: int, channel: FakeChannel, *,
                  timeout: float = 30.0) -> FakeChannel:
    """Place one outbound-socket session against the server; returns when it ends."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        with contextlib.suppress(TimeoutError, OSError):
            _Peer(sock, channel).serve()
    return channel


class FakeEventSocket:
    """FreeSWITCH's inbound event socket as ops tools see it: ``auth/request``, ``auth``,
    ``api show channels as json`` (api/response with Content-Length). Test use only."""

    def __init__(self, *, password: str, channels: list[dict[str, str]]) -> None:
        self.password, self.channels = password, channels
        self._srv = socket.create_server(("127.0.0.1", 0))
        self.port = self._srv.getsockname()[1]
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._srv.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._srv.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            peer = _Peer(conn, FakeChannel(uuid="", variables={}))
            peer.send("Content-Type: auth/request\n\n")
            authed = False
            while (block := peer.read_block()) is not None:
                if block.startswith("auth "):
                    authed = block[5:] == self.password
                    peer.reply("+OK accepted" if authed else "-ERR invalid")
                    if not authed:
                        return
                elif not authed:
                    peer.reply("-ERR not authenticated")
                elif block == "api show channels as json":
                    peer.api(json.dumps({"row_count": len(self.channels),
                                         "rows": self.channels}))
                elif block == "exit":
                    peer.reply("+OK bye")
                    return
                else:
                    peer.api(f"-ERR {block.split(' ', 2)[-1]} Command not found!\n")
