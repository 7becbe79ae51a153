"""An AMI peer for soaks: answers Login, Command, Setvar and UserEvent, then sends as many
events as asked, as fast as the socket takes them.

A stand-in, said plainly: a real Asterisk cannot be made to emit a million events in seconds
on demand (a day of a busy gateway's events, fast-forwarded). Everything else the watcher does
is tested against real Asterisk."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

CONTACTS = ("  Contact:  province-a/sip:127.0.0.1:5060   0a1b2c3d4e Avail   1.0\n"
            "  Contact:  province-b/sip:127.0.0.2:5060   0a1b2c3d4f Avail   1.0\n")


def day_of_events(count: int) -> Iterator[bytes]:
    """Mostly dialplan noise, one ContactStatus (a qualify still Reachable) in ten."""
    for i in range(count):
        if i % 10 == 0:
            yield (f"Event: ContactStatus\r\nURI: sip:127.0.0.1\r\nContactStatus: Reachable\r\n"
                   f"AOR: province-{'ab'[i % 20 // 10]}\r\nRoundtripUsec: 812\r\n\r\n").encode()
        else:
            yield (f"Event: Newexten\r\nChannel: PJSIP/pstn-{i:08x}\r\nContext: pbxctl-menu\r\n"
                   f"Exten: s\r\nPriority: {i % 30}\r\nApplication: Playback\r\n"
                   f"AppData: pbxctl/welcome/current\r\nUniqueid: 1790000000.{i}\r\n\r\n"
                   ).encode()


class FakeAmi:
    def __init__(self, *, events: int) -> None:
        self.events = events
        self.sent = threading.Event()
        self._srv = socket.create_server(("127.0.0.1", 0))
        self.port = self._srv.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._send_lock = threading.Lock()  # replies and events never interleave, as in Asterisk

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._srv.close()

    def _serve(self) -> None:
        conn, _ = self._srv.accept()
        with conn:
            self._send(conn, b"Asterisk Call Manager/9.0.0\r\n")
            reader = conn.makefile("rb")
            blaster: threading.Thread | None = None
            while True:
                msg = self._read(reader)
                if msg is None:
                    return
                aid = msg.get("ActionID", "")
                action = msg.get("Action", "")
                if action == "Getvar":  # the watcher's first look at the two AORs
                    var = msg.get("Variable", "")
                    value = ("Reachable" if var.startswith("PJSIP_CONTACT(")
                             else var[len("PJSIP_AOR("):].split(",")[0] + "/sip:127.0.0.1:5060")
                    self._send(conn, f"Response: Success\r\nActionID: {aid}\r\n"
                                 f"Variable: {var}\r\nValue: {value}\r\n\r\n".encode())
                    continue
                if action == "Command":
                    out = "".join(f"Output: {line}\r\n" for line in CONTACTS.splitlines())
                    self._send(conn, f"Response: Success\r\nActionID: {aid}\r\n{out}\r\n".encode())
                else:
                    self._send(conn, f"Response: Success\r\nActionID: {aid}\r\n\r\n".encode())
                if action == "Login" and blaster is None:
                    blaster = threading.Thread(target=self._blast, args=(conn,), daemon=True)
                    blaster.start()

    def _blast(self, conn: socket.socket) -> None:
        batch: list[bytes] = []
        for ev in day_of_events(self.events):
            batch.append(ev)
            if len(batch) == 500:
                self._send(conn, b"".join(batch))
                batch.clear()
        # The last word: path B goes down. Whatever a storm cost, the watcher must end up
        # knowing this.
        batch.append(b"Event: ContactStatus\r\nURI: sip:127.0.0.2\r\n"
                     b"ContactStatus: Unreachable\r\nAOR: province-b\r\n\r\n")
        self._send(conn, b"".join(batch))
        self.sent.set()

    def _send(self, conn: socket.socket, data: bytes) -> None:
        with self._send_lock:
            conn.sendall(data)

    @staticmethod
    def _read(reader: object) -> dict[str, str] | None:
        msg: dict[str, str] = {}
        while True:
            line = reader.readline()  # type: ignore[attr-defined]
            if not line:
                return None
            line = line.decode().rstrip("\r\n")
            if not line:
                return msg
            key, _, value = line.partition(":")
            msg[key.strip()] = value.strip()
