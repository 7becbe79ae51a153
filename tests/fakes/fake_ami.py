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

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._srv.close()

    def _serve(self) -> None:
        conn, _ = self._srv.accept()
        with conn:
            conn.sendall(b"Asterisk Call Manager/9.0.0\r\n")
            reader = conn.makefile("rb")
            blaster: threading.Thread | None = None
            while True:
                msg = self._read(reader)
                if msg is None:
                    return
                aid = msg.get("ActionID", "")
                action = msg.get("Action", "")
                if action == "Command":
                    out = "".join(f"Output: {line}\r\n" for line in CONTACTS.splitlines())
                    conn.sendall(f"Response: Success\r\nActionID: {aid}\r\n{out}\r\n".encode())
                else:
                    conn.sendall(f"Response: Success\r\nActionID: {aid}\r\n\r\n".encode())
                if action == "Login" and blaster is None:
                    blaster = threading.Thread(target=self._blast, args=(conn,), daemon=True)
                    blaster.start()

    def _blast(self, conn: socket.socket) -> None:
        batch: list[bytes] = []
        for ev in day_of_events(self.events):
            batch.append(ev)
            if len(batch) == 500:
                conn.sendall(b"".join(batch))
                batch.clear()
        conn.sendall(b"".join(batch))
        self.sent.set()

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
