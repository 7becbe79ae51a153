"""A TCP relay that counts the bytes it carries: put it on an address between two sites to
measure what crosses the link (e.g. FastAGI control between a gateway and the province)."""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class Counts:
    upstream: int = 0    # client → server (e.g. Asterisk → FastAGI server)
    downstream: int = 0  # server → client
    sessions: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def total(self) -> int:
        return self.upstream + self.downstream


class CountingRelay:
    def __init__(self, *, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.listen_addr, self.target = listen, target
        self.counts = Counts()
        self._sock: socket.socket | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(self.listen_addr)
        sock.listen(128)
        sock.settimeout(0.2)
        self._sock = sock
        threading.Thread(target=self._accept, daemon=True, name="relay").start()

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.counts.lock:
                self.counts.sessions += 1
            for src, dst, up in ((client, server, True), (server, client, False)):
                threading.Thread(target=self._pipe, args=(src, dst, up), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        try:
            while data := src.recv(65536):
                with self.counts.lock:
                    if up:
                        self.counts.upstream += len(data)
                    else:
                        self.counts.downstream += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):  # the other side may be gone already
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()
